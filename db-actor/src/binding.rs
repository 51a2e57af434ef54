//! The Durable Object classes: `DbActor` (one per database) and
//! `CatalogActor` (the single list of databases).

use crate::api::{self, DbEvent, Reply};
use crate::catalog::Catalog;
use crate::changes::Framing;
use crate::database::DbMeta;
use crate::do_sql::DoSql;
use crate::worker_http::{from_worker, to_worker};
use crate::Database;
use futures::channel::oneshot;
use futures::future::{select, Either};
use serde::{Deserialize, Serialize};
use shared::changes::ChangesQuery;
use shared::config::Limits;
use shared::http::Response as CouchResponse;
use shared::users::UsersConfig;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

/// Binding name of the catalog's namespace, and the catalog's one name.
pub const CATALOG_BINDING: &str = "CATALOG";
pub const CATALOG_NAME: &str = "catalog";

struct Inner {
    state: State,
    sql: DoSql,
    /// The database's meta, kept between requests (this actor makes every
    /// change to it).
    meta: RefCell<Option<DbMeta>>,
    env: Env,
    limits: Limits,
    users: UsersConfig,
    /// Long-polls waiting for the next write.
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

impl Inner {
    fn db(&self) -> Database<'_> {
        Database::new(&self.sql, self.limits).with_cache(&self.meta)
    }

    /// Tells every waiting feed and WebSocket subscriber about a write.
    fn wake(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
        self.push_to_sockets();
    }

    /// Sends each WebSocket subscriber what changed since its cursor.
    /// Subscribers with the same parameters and cursor (the common case:
    /// all caught up) share one read.
    fn push_to_sockets(&self) {
        let mut pages: HashMap<(String, u64), (Vec<String>, u64)> = HashMap::new();
        for ws in self.state.get_websockets() {
            let Ok(Some(mut sub)) = ws.deserialize_attachment::<Subscriber>() else {
                continue;
            };
            let key = (sub.params.clone(), sub.cursor);
            if !pages.contains_key(&key) {
                let rows = self.rows_since(&sub.params, sub.cursor);
                pages.insert(key.clone(), rows);
            }
            let (rows, last) = &pages[&key];
            if rows.is_empty() {
                continue;
            }
            for r in rows {
                let _ = ws.send_with_str(r);
            }
            sub.cursor = *last;
            let _ = ws.serialize_attachment(&sub);
        }
    }

    /// Every change after `cursor` a subscription selects, as messages,
    /// and the cursor after them (errors are sent as a message too).
    fn rows_since(&self, params: &str, mut cursor: u64) -> (Vec<String>, u64) {
        let mut out = Vec::new();
        let q = match api::subscription_query(params) {
            Ok(q) => q,
            Err(e) => return (vec![e.to_json().to_string()], cursor),
        };
        loop {
            match api::feed_batch(&self.db(), &q, cursor, 0) {
                Ok(step) => {
                    out.extend(
                        step.page
                            .rows
                            .iter()
                            .map(|r| String::from_utf8_lossy(r).into_owned()),
                    );
                    cursor = step.page.last;
                    if step.caught_up() {
                        return (out, cursor);
                    }
                }
                Err(e) => {
                    out.push(e.to_json().to_string());
                    return (out, cursor);
                }
            }
        }
    }

    /// Starts a subscription on an accepted socket: its backlog now, the
    /// rest as writes happen.
    fn start_subscription(&self, ws: &WebSocket, params: String, since: u64) -> Result<()> {
        let (rows, cursor) = self.rows_since(&params, since);
        for r in &rows {
            ws.send_with_str(r)?;
        }
        ws.serialize_attachment(&Subscriber { params, cursor })
    }

    fn subscribe(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().push(tx);
        rx
    }

    /// Tells the replicator registry that `_replicator` changed (documents
    /// written by any means: PUT, `_bulk_docs`, replication into it). The
    /// registry reads the changes itself, in its own alarm.
    async fn poke_replicator(&self) {
        use shared::replication::{REGISTRY_NAME, REPLICATOR_BINDING};
        let poke = async {
            let stub = self
                .env
                .durable_object(REPLICATOR_BINDING)?
                .get_by_name(REGISTRY_NAME)?;
            let mut init = worker::RequestInit::new();
            init.with_method(worker::Method::Post);
            let req = Request::new_with_init("https://replicator/registry/poke", &init)?;
            stub.fetch_with_request(req).await
        };
        if let Err(e) = poke.await {
            worker::console_error!("poking the replicator registry failed: {e}");
        }
    }

    /// Tells the catalog that this database was created or deleted.
    async fn report(&self, op: &str, name: &str) -> Result<()> {
        let stub = self
            .env
            .durable_object(CATALOG_BINDING)?
            .get_by_name(CATALOG_NAME)?;
        let body = serde_json::json!({ "name": name }).to_string();
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::Post)
            .with_body(Some(body.into()));
        let req = Request::new_with_init(&format!("https://catalog/{op}"), &init)?;
        stub.fetch_with_request(req).await?;
        Ok(())
    }
}

pub fn limits_from_env(env: &Env) -> Limits {
    Limits::from_lookup(|k| env.var(k).ok().map(|v| v.to_string()))
}

/// `PASSWORD_ITERATIONS` and `ALLOW_SIGNUP`, as the router reads them.
fn users_from_env(env: &Env) -> UsersConfig {
    let var = |k: &str| env.var(k).ok().map(|v| v.to_string());
    let d = UsersConfig::default();
    UsersConfig {
        iterations: var("PASSWORD_ITERATIONS")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(d.iterations),
        allow_signup: var("ALLOW_SIGNUP").map_or(d.allow_signup, |v| v.trim() != "false"),
    }
}

/// One CouchDB database.
#[durable_object]
pub struct DbActor {
    inner: Rc<Inner>,
}

impl DurableObject for DbActor {
    fn new(state: State, env: Env) -> Self {
        let sql = DoSql::new(&state);
        let limits = limits_from_env(&env);
        let users = users_from_env(&env);
        let inner = Inner {
            sql,
            env,
            limits,
            users,
            waiters: RefCell::new(Vec::new()),
            meta: RefCell::new(None),
            state,
        };
        if let Err(e) = inner.db().store.init_schema() {
            worker::console_error!("schema initialisation failed: {e}");
        }
        DbActor {
            inner: Rc::new(inner),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let head = req.inner().method() == "HEAD";
        let creq = from_worker(&mut req).await?;
        let name = creq.path.first().cloned().unwrap_or_default();
        let outcome = {
            let db = self.inner.db();
            let instance = || shared::uuids::next()[24..].to_string();
            api::handle(&db, &creq, &instance, self.inner.users)
        };
        match outcome.event {
            Some(DbEvent::Created) => self.inner.report("add", &name).await?,
            Some(DbEvent::Deleted) => {
                self.inner.wake();
                self.inner.report("remove", &name).await?;
            }
            Some(DbEvent::Updated) => self.inner.wake(),
            None => {}
        }
        if outcome.event.is_some() && name == shared::replication::REPLICATOR_DB {
            self.inner.poke_replicator().await;
        }
        match outcome.reply {
            Reply::Done(r) => to_worker(r, head),
            Reply::Wait { query, since } => long_poll(self.inner.clone(), query, since),
            Reply::Feed {
                framing,
                query,
                since,
            } => live_feed(self.inner.clone(), framing, query, since),
            Reply::Subscribe { params, since } => {
                let pair = WebSocketPair::new()?;
                // Accepted through the hibernation API: idle subscribers
                // keep no isolate awake.
                self.inner.state.accept_web_socket(&pair.server);
                self.inner.start_subscription(&pair.server, params, since)?;
                Response::from_websocket(pair.client)
            }
        }
    }

    /// A subscriber may send `{"since": SEQ}` to resume from a sequence.
    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let WebSocketIncomingMessage::String(text) = message else {
            return Ok(());
        };
        let Ok(Some(sub)) = ws.deserialize_attachment::<Subscriber>() else {
            return Ok(());
        };
        let since = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("since").cloned())
            .map(|v| shared::seq::since_from_json(&v));
        match since {
            Some(Ok(shared::seq::Since::Seq(n))) => {
                self.inner.start_subscription(&ws, sub.params, n)
            }
            Some(Ok(shared::seq::Since::Now)) => {
                let now = self
                    .inner
                    .db()
                    .store
                    .stats()
                    .map(|s| s.update_seq)
                    .unwrap_or(sub.cursor);
                self.inner.start_subscription(&ws, sub.params, now)
            }
            _ => ws.send_with_str(
                shared::error::CouchError::bad_request("send {\"since\": SEQ} to resume")
                    .to_json()
                    .to_string(),
            ),
        }
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        reason: String,
        _clean: bool,
    ) -> Result<()> {
        // 1005 (no code) and 1006 (abnormal) may not be sent back: answer 1000.
        let code = match code {
            1005 | 1006 => 1000,
            c => c as u16,
        };
        let _ = ws.close(Some(code), Some(reason));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        let _ = ws.close(Some(1011), Some("error"));
        Ok(())
    }
}

/// What a WebSocket subscriber keeps across hibernation: its query and
/// the last sequence it was sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Subscriber {
    params: String,
    cursor: u64,
}

/// Waits for the next write to this database, or `tick_ms`; true if a
/// write came. A receiver fires once: subscribe again after it does.
async fn next_change_or(rx: &mut oneshot::Receiver<()>, tick_ms: u64) -> bool {
    let delay = worker::Delay::from(Duration::from_millis(tick_ms.clamp(1, u32::MAX as u64)));
    matches!(select(rx, delay).await, Either::Left(_))
}

/// How long to wait before the next heartbeat or the timeout.
fn tick(q: &ChangesQuery, remaining: u64) -> u64 {
    q.heartbeat.unwrap_or(remaining).min(remaining).max(1)
}

fn streaming(
    stream: impl futures::Stream<Item = Result<Vec<u8>>> + 'static,
    content_type: &str,
) -> Result<Response> {
    let headers = worker::Headers::new();
    headers.set("content-type", content_type)?;
    headers.set("cache-control", "must-revalidate")?;
    headers.set("server", shared::http::SERVER_HEADER)?;
    Ok(Response::from_stream(stream)?.with_headers(headers))
}

/// Answers a long-poll as a stream: heartbeat newlines while waiting, then
/// the changes once there are some (or the timeout passes).
fn long_poll(inner: Rc<Inner>, q: ChangesQuery, since: u64) -> Result<Response> {
    let rx = inner.subscribe();
    let remaining = q.wait_ms();
    let state = Some((inner, q, rx, remaining));
    let stream = futures::stream::unfold(state, move |state| async move {
        let (inner, q, mut rx, mut remaining) = state?;
        loop {
            let t = tick(&q, remaining);
            if next_change_or(&mut rx, t).await {
                let page = inner.db().changes(&q, since);
                if matches!(&page, Ok(p) if p.rows.is_empty()) {
                    rx = inner.subscribe();
                    continue;
                }
                let body =
                    shared::http::respond(page.map(|p| CouchResponse::raw_json(200, p.to_json())));
                return Some((Ok(body.body), None));
            }
            remaining = remaining.saturating_sub(t);
            if remaining == 0 {
                let body = api::changes_response(&inner.db(), &q, since);
                return Some((Ok(body.body), None));
            }
            return Some((Ok(b"\n".to_vec()), Some((inner, q, rx, remaining))));
        }
    });
    streaming(stream, "application/json")
}

/// Where a live feed is.
struct Live {
    inner: Rc<Inner>,
    q: ChangesQuery,
    framing: Framing,
    cursor: u64,
    sent: u64,
    remaining: u64,
}

/// A continuous or event-source feed: batches of rows as they come,
/// heartbeats while idle, the end marker at the limit or timeout. Holds at
/// most one batch in memory; a closed connection drops the stream.
fn live_feed(inner: Rc<Inner>, framing: Framing, q: ChangesQuery, since: u64) -> Result<Response> {
    let remaining = q.wait_ms();
    let live = Live {
        inner,
        q,
        framing,
        cursor: since,
        sent: 0,
        remaining,
    };
    let stream = futures::stream::unfold(Some(live), |state| async move {
        let mut st = state?;
        loop {
            let step = match api::feed_batch(&st.inner.db(), &st.q, st.cursor, st.sent) {
                Ok(s) => s,
                Err(e) => return Some((Ok(CouchResponse::error(&e).body), None)),
            };
            let mut out = st.framing.rows(&step.page);
            st.cursor = step.page.last;
            st.sent += step.page.rows.len() as u64;
            if step.limit_reached {
                out.extend(st.framing.end(&step.page.last_seq, step.page.pending));
                return Some((Ok(out), None));
            }
            if !out.is_empty() {
                return Some((Ok(out), Some(st)));
            }
            let mut rx = st.inner.subscribe();
            let t = tick(&st.q, st.remaining);
            if next_change_or(&mut rx, t).await {
                continue;
            }
            st.remaining = st.remaining.saturating_sub(t);
            if st.remaining == 0 {
                let end = st.framing.end(&step.page.last_seq, step.page.pending);
                return Some((Ok(end), None));
            }
            let beat = st.framing.heartbeat().to_vec();
            return Some((Ok(beat), Some(st)));
        }
    });
    streaming(stream, framing.content_type())
}

/// The list of databases and the server's uuid.
#[durable_object]
pub struct CatalogActor {
    sql: DoSql,
}

impl DurableObject for CatalogActor {
    fn new(state: State, _env: Env) -> Self {
        CatalogActor {
            sql: DoSql::new(&state),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let creq = from_worker(&mut req).await?;
        let resp = match Catalog::new(&self.sql) {
            Ok(c) => c.handle(&creq),
            Err(e) => CouchResponse::error(&e),
        };
        to_worker(resp, false)
    }
}
