//! The Worker runtime under [`Actor`]: Durable Object stubs for other
//! actors and local databases, `fetch` for databases at URLs, the alarm,
//! timers and the console. The class itself only translates requests
//! into [`ReplicatorCall`]s.

use crate::actor::Actor;
use crate::runtime::Runtime;
use platform::do_sql::DoSql;
use platform::worker_http::to_worker;
use platform::{call_catalog, call_replicator, db_stub, env_text, send};
use serde_json::{json, Value};
use shared::actor_call::{CatalogCall, ReplicatorCall, CALL_ORIGIN};
use shared::error::{CouchError, CouchResult};
use shared::http::{encode_segment, Response as CouchResponse};
use shared::replication::params::Endpoint;
use shared::replication::peer::{PeerRequest, PeerResponse, RepError, Transport};
use shared::user::{UserCtx, USER_CTX_HEADER};
use std::time::Duration;
use worker::{
    durable_object, DurableObject, Env, Headers, Method, Request, RequestInit, Response, Result,
    State,
};

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
pub struct LocalDb<'a> {
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
pub struct RemoteDb<'a> {
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
pub enum AnyDb<'a> {
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
async fn server_uuid(env: &Env) -> Result<String> {
    let mut resp = call_catalog(env, &CatalogCall::Uuid, "").await?;
    let v: Value = resp.json().await?;
    Ok(v["uuid"].as_str().unwrap_or_default().to_string())
}

/// The actor's platform: its state (for the alarm) and the environment
/// (for stubs and settings).
pub struct Workers {
    state: State,
    env: Env,
}

impl Runtime for Workers {
    type Db<'a> = AnyDb<'a>;

    fn peer<'a>(&'a self, end: &'a Endpoint, user: &UserCtx) -> AnyDb<'a> {
        transport(&self.env, end, user)
    }

    async fn call(&self, actor: &str, call: &ReplicatorCall) -> CouchResult<(u16, Value)> {
        call_replicator(&self.env, actor, call)
            .await
            .map_err(internal)
    }

    async fn server_uuid(&self) -> CouchResult<String> {
        server_uuid(&self.env).await.map_err(internal)
    }

    fn admin_name(&self) -> Option<String> {
        env_text(&self.env, "COUCHDB_USER")
    }

    fn now(&self) -> u64 {
        now_ms()
    }

    async fn set_alarm(&self, in_ms: u64) -> CouchResult<()> {
        let storage = self.state.storage();
        storage.set_alarm(in_ms as i64).await.map_err(internal)
    }

    async fn delete_alarm(&self) -> CouchResult<()> {
        self.state.storage().delete_alarm().await.map_err(internal)
    }

    async fn sleep(&self, ms: u64) {
        worker::Delay::from(Duration::from_millis(ms)).await;
    }

    fn log(&self, message: &str) {
        worker::console_error!("{message}");
    }
}

#[durable_object]
pub struct ReplicatorActor {
    actor: Actor<DoSql, Workers>,
}

impl DurableObject for ReplicatorActor {
    fn new(state: State, env: Env) -> Self {
        let sql = DoSql::new(&state);
        ReplicatorActor {
            actor: Actor::new(sql, Workers { state, env }),
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
        let reply = match call {
            Ok(call) => self.actor.handle(call).await,
            Err(e) => Err(e),
        };
        let out = match reply {
            Ok(v) => CouchResponse::json(200, &v),
            Err(e) => CouchResponse::error(&e),
        };
        to_worker(out, false)
    }

    async fn alarm(&self) -> Result<Response> {
        self.actor
            .alarm()
            .await
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        Response::empty()
    }
}
