//! The Durable Object class. One instance per job (named by the job id)
//! and one registry (named [`REGISTRY_NAME`]), reached only from the
//! router and the `_replicator` database's actor through the typed
//! [`ReplicatorCall`]s.
//!
//! Alarms do the work: a job's alarm runs batches for a bounded time and
//! sets the next alarm; the registry's alarm reads `_replicator` changes.
//! A completed document job writes its state into its document, and the
//! registry a document's failure, both as [`docs::system_user`].

use crate::job::{self, Budget, JobRecord, JobState, JobStore, Next, Origin};
use crate::registry::{Action, Registry, REPLICATOR_DB};
use futures::channel::oneshot;
use futures::future::{select, Either};
use platform::do_sql::DoSql;
use platform::worker_http::to_worker;
use platform::{call_catalog, call_replicator, db_stub, env_text, send};
use serde_json::{json, Value};
use shared::actor_call::{CatalogCall, ReplicatorCall, CALL_ORIGIN, REGISTRY_NAME};
use shared::error::CouchError;
use shared::http::{encode_segment, Response as CouchResponse};
use shared::replication::docs;
use shared::replication::job::Ends;
use shared::replication::params::{Endpoint, RepParams};
use shared::replication::peer::{Peer, PeerRequest, PeerResponse, RepError, Transport};
use shared::sql::Sql;
use shared::user::{UserCtx, USER_CTX_HEADER};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use worker::{
    durable_object, DurableObject, Env, Headers, Method, Request, RequestInit, Response, Result,
    State,
};

/// Work an alarm does before yielding to the next one: bounded so a
/// Durable Object invocation stays far below its limits (subrequests,
/// wall time) and so restarts and stops take effect promptly.
const BUDGET: Budget = Budget {
    work_ms: 20_000,
    longpoll_ms: 25_000,
    max_batches: 100,
};

/// A run that dies mid-batch (eviction, crash) is retried by this alarm,
/// set before the work starts.
const WATCHDOG_MS: i64 = 60_000;

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

fn internal(e: impl std::fmt::Display) -> CouchError {
    CouchError::internal(e.to_string().lines().next().unwrap_or_default().to_string())
}

/// A request to another actor of this Worker (the URL's host is ignored).
fn method(m: &str) -> Method {
    Method::from(m.to_string())
}

fn transport_error(e: impl std::fmt::Display) -> RepError {
    RepError::transient(
        "connection_error",
        e.to_string().lines().next().unwrap_or_default().to_string(),
    )
}

/// A database of this server, through its actor (no HTTP round trip
/// through the router), with the job's user as the request's user.
struct LocalDb<'a> {
    env: &'a Env,
    db: String,
    user: UserCtx,
}

impl Transport for LocalDb<'_> {
    async fn send(&self, req: PeerRequest) -> std::result::Result<PeerResponse, RepError> {
        if req.root {
            let uuid = server_uuid(self.env).await.map_err(transport_error)?;
            return Ok(PeerResponse {
                status: 200,
                body: json!({"couchdb": "Welcome", "uuid": uuid})
                    .to_string()
                    .into_bytes(),
            });
        }
        let stub = db_stub(self.env, &self.db).map_err(transport_error)?;
        let headers = Headers::new();
        let set = |k: &str, v: &str| headers.set(k, v).map_err(transport_error);
        set(USER_CTX_HEADER, &self.user.to_header())?;
        set("content-type", "application/json")?;
        set("accept", "application/json")?;
        let sep = if req.path.is_empty() { "" } else { "/" };
        let url = format!(
            "{CALL_ORIGIN}/{}{sep}{}{}",
            encode_segment(&self.db),
            req.path,
            req.query_string()
        );
        let resp = send(&stub, req.method, &url, headers, req.body.as_deref())
            .await
            .map_err(transport_error)?;
        peer_response(resp).await
    }
}

/// A peer's answer, read whole.
async fn peer_response(mut resp: Response) -> std::result::Result<PeerResponse, RepError> {
    let body = resp.bytes().await.map_err(transport_error)?;
    Ok(PeerResponse {
        status: resp.status_code(),
        body,
    })
}

/// A database at a URL, over `fetch`.
struct RemoteDb<'a> {
    url: &'a str,
    headers: &'a [(String, String)],
}

impl Transport for RemoteDb<'_> {
    async fn send(&self, req: PeerRequest) -> std::result::Result<PeerResponse, RepError> {
        let base = if req.root {
            let u = worker::Url::parse(self.url).map_err(transport_error)?;
            format!("{}/", u.origin().ascii_serialization())
        } else {
            self.url.to_string()
        };
        let url = format!("{base}{}{}", req.path, req.query_string());
        let headers = Headers::new();
        for (k, v) in self.headers {
            headers.set(k, v).map_err(transport_error)?;
        }
        headers
            .set("content-type", "application/json")
            .map_err(transport_error)?;
        headers
            .set("accept", "application/json")
            .map_err(transport_error)?;
        let mut init = RequestInit::new();
        init.with_method(method(req.method)).with_headers(headers);
        if let Some(b) = req.body {
            init.with_body(Some(js_sys::Uint8Array::from(b.as_slice()).into()));
        }
        let request = Request::new_with_init(&url, &init).map_err(transport_error)?;
        let resp = worker::Fetch::Request(request)
            .send()
            .await
            .map_err(transport_error)?;
        peer_response(resp).await
    }
}

/// Either kind of end.
enum AnyDb<'a> {
    Local(LocalDb<'a>),
    Remote(RemoteDb<'a>),
}

impl Transport for AnyDb<'_> {
    async fn send(&self, req: PeerRequest) -> std::result::Result<PeerResponse, RepError> {
        match self {
            AnyDb::Local(l) => l.send(req).await,
            AnyDb::Remote(r) => r.send(req).await,
        }
    }
}

fn transport<'a>(env: &'a Env, e: &'a Endpoint, user: &UserCtx) -> AnyDb<'a> {
    match e {
        Endpoint::Local { db } => AnyDb::Local(LocalDb {
            env,
            db: db.clone(),
            user: user.clone(),
        }),
        Endpoint::Remote { url, headers } => AnyDb::Remote(RemoteDb { url, headers }),
    }
}

/// This server's uuid, from the catalog.
pub async fn server_uuid(env: &Env) -> Result<String> {
    let mut resp = call_catalog(env, &CatalogCall::Uuid, "").await?;
    let v: Value = resp.json().await?;
    Ok(v["uuid"].as_str().unwrap_or_default().to_string())
}

/// `_replicator` as the system reaches it, for writing states.
fn replicator_db(env: &Env) -> LocalDb<'_> {
    LocalDb {
        env,
        db: REPLICATOR_DB.into(),
        user: docs::system_user(),
    }
}

/// Writes a `_replicator` document (its body carries the `_rev` it
/// replaces) and answers the status: 409 if it changed meanwhile, 404 if
/// it was deleted (neither is an error).
async fn put_replicator_doc(
    env: &Env,
    doc_id: &str,
    body: &Value,
) -> std::result::Result<u16, RepError> {
    let req = PeerRequest::new("PUT", encode_segment(doc_id)).json(body);
    let r = replicator_db(env).send(req).await?;
    if r.status >= 400 && r.status != 404 && r.status != 409 {
        worker::console_error!(
            "recording the state of _replicator/{doc_id}: HTTP {}",
            r.status
        );
    }
    Ok(r.status)
}

struct Inner {
    state: State,
    env: Env,
    sql: DoSql,
    /// `_replicate` requests waiting for this job to finish.
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

#[durable_object]
pub struct ReplicatorActor {
    inner: Rc<Inner>,
}

fn json_reply(status: u16, v: &Value) -> Result<Response> {
    to_worker(CouchResponse::json(status, v), false)
}

fn error_reply(e: &CouchError) -> Result<Response> {
    to_worker(CouchResponse::error(e), false)
}

impl DurableObject for ReplicatorActor {
    fn new(state: State, env: Env) -> Self {
        let sql = DoSql::new(&state);
        ReplicatorActor {
            inner: Rc::new(Inner {
                state,
                env,
                sql,
                waiters: RefCell::new(Vec::new()),
            }),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let url = req.url()?;
        let body: Value = if req.method() == Method::Post {
            req.json().await.unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        let call = ReplicatorCall::parse(
            req.method().as_ref(),
            url.path(),
            url.query().unwrap_or(""),
            body,
        );
        let result = match call {
            Err(e) => Err(e),
            Ok(ReplicatorCall::JobStart(body)) => self.inner.start(body).await,
            Ok(ReplicatorCall::JobStop) => self.inner.stop().await,
            Ok(ReplicatorCall::JobStatus) => self.inner.status(),
            Ok(ReplicatorCall::JobWait { ms }) => self.inner.wait(ms).await,
            Ok(ReplicatorCall::Report(summary)) => self
                .inner
                .registry(|r| r.report(&summary).map(|_| json!({"ok": true}))),
            Ok(ReplicatorCall::Remove(id)) => self
                .inner
                .registry(|r| r.remove(&id).map(|_| json!({"ok": true}))),
            Ok(ReplicatorCall::Jobs) => self.inner.registry(|r| r.jobs().map(Value::from)),
            Ok(ReplicatorCall::Docs) => self.inner.registry(|r| r.docs().map(Value::from)),
            Ok(ReplicatorCall::Poke) => match self.inner.registry(|_| Ok(json!({"ok": true}))) {
                Ok(v) => {
                    self.inner.state.storage().set_alarm(0i64).await?;
                    Ok(v)
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(v) => json_reply(200, &v),
            Err(e) => error_reply(&e),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let is_registry = self
            .inner
            .sql
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'registry_meta'",
                &[],
            )
            .map(|r| r.is_some())
            .unwrap_or(false);
        if is_registry {
            if let Err(e) = self.inner.process_replicator_db().await {
                worker::console_error!("_replicator processing failed: {e}");
                self.inner.state.storage().set_alarm(5_000i64).await?;
            }
        } else {
            self.inner.run_job().await?;
        }
        Response::empty()
    }
}

impl Inner {
    fn store(&self) -> std::result::Result<JobStore<'_>, CouchError> {
        JobStore::new(&self.sql)
    }

    fn registry(
        &self,
        f: impl FnOnce(&Registry) -> std::result::Result<Value, CouchError>,
    ) -> std::result::Result<Value, CouchError> {
        f(&Registry::new(&self.sql)?)
    }

    fn wake(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }

    async fn report(&self, rec: &JobRecord) {
        let r = call_replicator(
            &self.env,
            REGISTRY_NAME,
            &ReplicatorCall::Report(rec.summary()),
        )
        .await;
        if let Err(e) = r {
            worker::console_error!("reporting job {} failed: {e}", rec.id);
        }
    }

    /// Starts the job, or restarts it with new parameters. An identical
    /// job that is still active is left running (a repeated `_replicate`
    /// joins it, as in CouchDB).
    async fn start(&self, body: Value) -> std::result::Result<Value, CouchError> {
        let id = body["id"].as_str().unwrap_or_default().to_string();
        let params: RepParams = serde_json::from_value(body["params"].clone()).map_err(internal)?;
        let origin: Origin = serde_json::from_value(body["origin"].clone()).map_err(internal)?;
        let user: UserCtx = serde_json::from_value(body["user"].clone()).unwrap_or_default();
        let store = self.store()?;
        let old = store.load()?;
        if let Some(old) = &old {
            if old.state.is_active() && old.params == params && old.origin == origin {
                return Ok(old.summary());
            }
        }
        let now = now_ms();
        let mut rec = JobRecord::new(id, params, origin, user, now);
        rec.generation = old.map_or(0, |o| o.generation + 1);
        store.save(&rec)?;
        self.state
            .storage()
            .set_alarm(0i64)
            .await
            .map_err(internal)?;
        self.report(&rec).await;
        Ok(rec.summary())
    }

    async fn stop(&self) -> std::result::Result<Value, CouchError> {
        let store = self.store()?;
        let old = store.load()?;
        store.delete()?;
        self.state
            .storage()
            .delete_alarm()
            .await
            .map_err(internal)?;
        if let Some(old) = &old {
            let remove = ReplicatorCall::Remove(old.id.clone());
            let _ = call_replicator(&self.env, REGISTRY_NAME, &remove).await;
        }
        self.wake();
        Ok(json!({"ok": true, "existed": old.is_some()}))
    }

    fn status(&self) -> std::result::Result<Value, CouchError> {
        match self.store()?.load()? {
            Some(r) => Ok(waited(&r)),
            None => Err(CouchError::not_found("missing")),
        }
    }

    /// Answers once the job is finished (or stopped), or after `ms`.
    async fn wait(&self, ms: u64) -> std::result::Result<Value, CouchError> {
        let active = matches!(self.store()?.load()?, Some(r) if r.state.is_active());
        if active {
            let (tx, rx) = oneshot::channel();
            self.waiters.borrow_mut().push(tx);
            let delay = worker::Delay::from(Duration::from_millis(ms));
            if let Either::Right(_) = select(rx, delay).await {
                // Timed out: the caller asks again.
            }
        }
        match self.store()?.load()? {
            Some(r) => Ok(waited(&r)),
            None => Ok(json!({"state": "stopped"})),
        }
    }

    /// One alarm of a job: a bounded run of batches, then the next alarm.
    async fn run_job(&self) -> Result<()> {
        let store = self
            .store()
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        let Ok(Some(mut rec)) = store.load() else {
            return Ok(());
        };
        if !rec.state.is_active() {
            return Ok(());
        }
        let now = now_ms();
        if rec.next_run_ms > now {
            self.state
                .storage()
                .set_alarm((rec.next_run_ms - now) as i64)
                .await?;
            return Ok(());
        }
        self.state.storage().set_alarm(WATCHDOG_MS).await?;
        let generation = rec.generation;
        let (src, tgt) = (
            Peer::new(transport(&self.env, &rec.params.source, &rec.user)),
            Peer::new(transport(&self.env, &rec.params.target, &rec.user)),
        );
        let ends = Ends {
            source: &src,
            target: &tgt,
        };
        let host = AlarmHost {
            inner: self,
            store: &store,
            generation,
        };
        let mut work = rec.clone();
        let next = job::run(&mut work, &ends, &host, BUDGET).await;
        rec = work;
        if !store.current(generation) {
            // Stopped or restarted meanwhile: the new generation owns the alarm.
            return Ok(());
        }
        match next {
            Next::At(t) => {
                let delay = t.saturating_sub(now_ms());
                self.state.storage().set_alarm(delay as i64).await?;
            }
            Next::Stop => self.state.storage().delete_alarm().await?,
        }
        if rec.state == JobState::Completed {
            self.record_completion(&rec).await;
        }
        if !rec.state.is_active() || rec.state == JobState::Crashing {
            self.wake();
        }
        Ok(())
    }

    /// Writes a completed document job's state into its document, as
    /// CouchDB 3 does, retrying on the newer revision after a conflict.
    async fn record_completion(&self, rec: &JobRecord) {
        let Origin::Doc { doc_id } = &rec.origin else {
            return;
        };
        for _ in 0..5 {
            let get = PeerRequest::new("GET", encode_segment(doc_id));
            let doc = match replicator_db(&self.env).send(get).await {
                Ok(r) if r.status == 200 => r.json().ok(),
                _ => None,
            };
            let Some(body) = doc.as_ref().and_then(Value::as_object) else {
                return;
            };
            let Some(body) = rec.doc_update(body, now_ms()) else {
                return;
            };
            match put_replicator_doc(&self.env, doc_id, &Value::Object(body)).await {
                Ok(409) => continue,
                Ok(_) => return,
                Err(e) => {
                    worker::console_error!("recording job {} in _replicator/{doc_id}: {e}", rec.id);
                    return;
                }
            }
        }
    }

    /// The registry's alarm: reads `_replicator` changes since its cursor
    /// and starts, restarts or stops the jobs the documents describe.
    async fn process_replicator_db(&self) -> std::result::Result<(), CouchError> {
        let uuid = server_uuid(&self.env).await.map_err(internal)?;
        let db = Peer::new(LocalDb {
            env: &self.env,
            db: REPLICATOR_DB.into(),
            user: UserCtx::admin("_replicator"),
        });
        loop {
            let since = Registry::new(&self.sql)?.since()?;
            let req = PeerRequest::new("GET", "_changes")
                .query("since", since)
                .query("include_docs", "true")
                .query("limit", "100");
            let r = db.transport.send(req).await.map_err(|e| e.to_couch())?;
            if r.status == 404 {
                // `_replicator` was deleted: its documents' jobs stop, as in
                // CouchDB, and a new one is read from its start.
                let ids = Registry::new(&self.sql)?.doc_ids()?;
                for id in ids {
                    let gone = serde_json::json!({"id": id, "deleted": true});
                    let actions = Registry::new(&self.sql)?.apply_change(&gone, &uuid, now_ms())?;
                    for a in actions {
                        self.act(a).await?;
                    }
                }
                Registry::new(&self.sql)?.set_since("0")?;
                return Ok(());
            }
            let body = r.json().map_err(|e| e.to_couch())?;
            let rows = body["results"].as_array().cloned().unwrap_or_default();
            for row in &rows {
                let actions = Registry::new(&self.sql)?.apply_change(row, &uuid, now_ms())?;
                for a in actions {
                    self.act(a).await?;
                }
            }
            let last = match &body["last_seq"] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            Registry::new(&self.sql)?.set_since(&last)?;
            if rows.len() < 100 {
                return Ok(());
            }
        }
    }

    /// Whom a `_replicator` document's job acts as on local databases: its
    /// owner with the roles of their `_users` document, so a user cannot
    /// replicate what they could not read. The server admin, and documents
    /// from before owners were kept, act as admin.
    async fn owner_ctx(&self, owner: Option<&str>) -> std::result::Result<UserCtx, CouchError> {
        let admin = env_text(&self.env, "COUCHDB_USER");
        let Some(name) = owner.filter(|o| Some(*o) != admin.as_deref()) else {
            return Ok(UserCtx::admin(owner.unwrap_or("_replicator")));
        };
        let users = Peer::new(LocalDb {
            env: &self.env,
            db: shared::users::USERS_DB.into(),
            user: UserCtx::admin("_replicator"),
        });
        let id = format!("{}{name}", shared::users::USER_PREFIX);
        let r = users
            .transport
            .send(PeerRequest::new("GET", encode_segment(&id)))
            .await
            .map_err(|e| e.to_couch())?;
        let roles = match r.status {
            200 => UserCtx::roles_from(r.json().map_err(|e| e.to_couch())?.get("roles")),
            _ => vec![],
        };
        Ok(UserCtx {
            name: Some(name.to_string()),
            roles,
        })
    }

    async fn act(&self, a: Action) -> std::result::Result<(), CouchError> {
        match a {
            Action::Stop(id) => {
                call_replicator(&self.env, &id, &ReplicatorCall::JobStop)
                    .await
                    .map_err(internal)?;
                Registry::new(&self.sql)?.remove(&id)?;
            }
            Action::Start {
                job_id,
                doc_id,
                params,
                owner,
            } => {
                let user = self.owner_ctx(owner.as_deref()).await?;
                let body = json!({
                    "id": job_id,
                    "params": params,
                    "origin": Origin::Doc { doc_id },
                    "user": user,
                });
                call_replicator(&self.env, &job_id, &ReplicatorCall::JobStart(body))
                    .await
                    .map_err(internal)?;
            }
            // Best effort, as in CouchDB: a conflict means a newer revision,
            // which is processed on its own.
            Action::Record { doc_id, body } => {
                if let Err(e) = put_replicator_doc(&self.env, &doc_id, &body).await {
                    worker::console_error!("recording the state of _replicator/{doc_id}: {e}");
                }
            }
        }
        Ok(())
    }
}

/// A job's run inside an alarm: records are stored in the actor's
/// SQLite and reported to the registry, unless the job was superseded.
struct AlarmHost<'a> {
    inner: &'a Inner,
    store: &'a JobStore<'a>,
    generation: u64,
}

impl job::Host for AlarmHost<'_> {
    fn now(&self) -> u64 {
        now_ms()
    }

    async fn save(&self, rec: &JobRecord) -> bool {
        if !self.store.current(self.generation) || self.store.save(rec).is_err() {
            return false;
        }
        self.inner.report(rec).await;
        true
    }

    fn new_session(&self) -> String {
        shared::uuids::random_hex()
    }

    async fn pause(&self) {
        worker::Delay::from(Duration::from_millis(1)).await;
    }
}

/// What a waiting `_replicate` learns: the state, and the result or error.
fn waited(r: &JobRecord) -> Value {
    json!({
        "id": r.id,
        "state": r.state,
        "result": r.result,
        "error": r.last_error,
        "summary": r.summary(),
    })
}
