//! The entry Worker: authenticates, answers server endpoints, and forwards
//! database requests to their actors.

use crate::auth::{self, AuthState, Authenticated, UserStore};
use crate::replication;
use crate::server::{self, Route};
use futures::future::join_all;
use platform::worker_http::to_worker;
use platform::{call_catalog, env_text, send};
use serde_json::{json, Map, Value};
use shared::actor_call::{CatalogCall, CALL_ORIGIN};
use shared::config::Config;
use shared::error::{CouchError, CouchResult};
use shared::http::{
    encode_segment, split_path, Request as CouchRequest, Response as CouchResponse,
};
use shared::user::{UserCtx, USER_CTX_HEADER};
use shared::users::{USERS_DB, USER_PREFIX};
use std::cell::RefCell;
use worker::{event, Context, Env, Headers, Request, Response, Result};

thread_local! {
    /// The server uuid, fetched from the catalog once per isolate.
    static SERVER_UUID: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Lockout counters and verified-password cache of this isolate,
    /// shared by its concurrent requests.
    static AUTH_STATE: &'static RefCell<AuthState> = Box::leak(Box::default());
}

fn now_secs() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

/// The configuration, read once per isolate: a deployment's vars and
/// secrets do not change under a running isolate.
fn config(env: &Env) -> &'static Config {
    thread_local! {
        static CONFIG: std::cell::OnceCell<&'static Config> = const { std::cell::OnceCell::new() };
    }
    CONFIG
        .with(|c| *c.get_or_init(|| Box::leak(Box::new(Config::from_lookup(|k| env_text(env, k))))))
}

/// Once per isolate: events logged with `tracing` (design functions'
/// `log()`, map exceptions) go to the console, which is the Worker's log.
/// No timestamps: the platform stamps each line, and `std::time` is not
/// available on wasm32.
#[event(start)]
fn start() {
    use tracing_subscriber::prelude::*;
    let console = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .without_time()
        .with_writer(tracing_web::MakeConsoleWriter);
    let _ = tracing_subscriber::registry().with(console).try_init();
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let cfg = config(&env);
    let head = req.inner().method() == "HEAD";
    let origin = req.headers().get("origin").ok().flatten();
    if let Some(r) = preflight(cfg, &req, origin.as_deref())? {
        return Ok(r);
    }
    let (result, set_cookie) = handle(&mut req, &env, cfg).await;
    let mut extra: Vec<(String, String)> = set_cookie
        .into_iter()
        .map(|c| ("set-cookie".into(), c))
        .collect();
    if let Some(cors) = &cfg.cors {
        extra.extend(cors.response_headers(origin.as_deref()));
    }
    let plain = extra.is_empty();
    extra.push(("date".into(), shared::http::http_date(now_secs())));
    match result {
        // A WebSocket upgrade needs no date.
        Ok(Handled::Forwarded(r)) if plain && r.status_code() == 101 => Ok(r),
        Ok(Handled::Forwarded(r)) => with_headers(r, &extra),
        Ok(Handled::Local(mut r)) => {
            r.headers.extend(extra);
            to_worker(r, head)
        }
        Err(e) => {
            let mut r = CouchResponse::error(&e);
            r.headers.extend(extra);
            to_worker(r, head)
        }
    }
}

/// Answers a CORS preflight, when CORS is on.
fn preflight(cfg: &Config, req: &Request, origin: Option<&str>) -> Result<Option<Response>> {
    let (Some(cors), "OPTIONS") = (&cfg.cors, req.inner().method().as_str()) else {
        return Ok(None);
    };
    let Some(method) = req.headers().get("access-control-request-method")? else {
        return Ok(None);
    };
    let headers = Headers::new();
    for (k, v) in cors.preflight(origin, &method).unwrap_or_default() {
        headers.append(&k, &v)?;
    }
    Ok(Some(
        Response::empty()?.with_status(204).with_headers(headers),
    ))
}

/// Copies a forwarded response with extra headers.
fn with_headers(r: Response, extra: &[(String, String)]) -> Result<Response> {
    let headers = Headers::new();
    for (k, v) in r.headers().entries() {
        headers.append(&k, &v)?;
    }
    for (k, v) in extra {
        headers.append(k, v)?;
    }
    Ok(r.with_headers(headers))
}

enum Handled {
    Local(CouchResponse),
    Forwarded(Response),
}

/// Reads user documents from the `_users` actor, as the server admin.
struct UsersActor<'a> {
    env: &'a Env,
}

impl UserStore for UsersActor<'_> {
    async fn user_doc(&self, name: &str) -> CouchResult<Option<Map<String, Value>>> {
        let path = format!(
            "/{USERS_DB}/{}",
            encode_segment(&format!("{USER_PREFIX}{name}"))
        );
        let mut resp =
            actor_request(self.env, USERS_DB, "GET", &path, &UserCtx::admin("_router")).await?;
        match resp.status_code() {
            200 => Ok(resp.json().await.ok()),
            404 => Ok(None),
            s => Err(CouchError::internal(format!("_users answered {s}"))),
        }
    }
}

/// The peer a lockout is counted against.
fn peer(req: &Request) -> String {
    let h = req.headers();
    h.get("cf-connecting-ip")
        .ok()
        .flatten()
        .or_else(|| h.get("x-forwarded-for").ok().flatten())
        .unwrap_or_else(|| "local".into())
}

/// The request's method, after any `X-HTTP-Method-Override`.
fn method(req: &Request) -> String {
    let header = req.headers().get("x-http-method-override").ok().flatten();
    shared::http::effective_method(&req.inner().method(), header.as_deref())
}

fn couch_request(req: &Request, url: &worker::Url) -> CouchRequest {
    let mut creq = CouchRequest::new(&method(req), url.path(), url.query().unwrap_or(""));
    creq.headers = req.headers().entries().collect();
    creq.set_origin(url.scheme(), url.host_str(), url.port());
    creq
}

async fn handle(
    req: &mut Request,
    env: &Env,
    cfg: &Config,
) -> (CouchResult<Handled>, Option<String>) {
    let url = match req.url() {
        Ok(u) => u,
        Err(e) => return (Err(internal(e)), None),
    };
    let mut creq = couch_request(req, &url);
    // No admin party: without an admin only the welcome and `_up` answer.
    if cfg.admin.is_none() && !matches!(url.path(), "/" | "/_up") {
        return (Err(auth::not_configured()), None);
    }
    let store = UsersActor { env };
    let peer = peer(req);
    let now = now_secs();
    let state = AUTH_STATE.with(|s| *s);
    let auth = auth::authenticate(cfg, &creq, &store, state, &peer, now).await;
    let auth = match auth {
        Ok(a) => a,
        Err(e) => return (Err(e), None),
    };
    let set_cookie = auth.set_cookie.clone();
    (
        route(req, env, cfg, &url, &mut creq, &auth, &peer, now).await,
        set_cookie,
    )
}

#[allow(clippy::too_many_arguments)]
async fn route(
    req: &mut Request,
    env: &Env,
    cfg: &Config,
    url: &worker::Url,
    creq: &mut CouchRequest,
    auth: &Authenticated,
    peer: &str,
    now: u64,
) -> CouchResult<Handled> {
    let user = &auth.user;
    let path = split_path(url.path());
    let route = server::route(&path)?;
    let open_route = matches!(route, Route::Up | Route::Session);
    if cfg.require_valid_user && user.name.is_none() && !open_route {
        return Err(CouchError::unauthorized("Authentication required."));
    }
    if let Route::Database(name) = route {
        check_size(req, cfg)?;
        return forward(req, env, &name, user).await.map(Handled::Forwarded);
    }
    let method = creq.method.clone();
    if matches!(method.as_str(), "POST" | "PUT" | "DELETE") {
        check_size(req, cfg)?;
        creq.body = req.bytes().await.unwrap_or_default();
    }
    let resp = match route {
        Route::Welcome => {
            server::allow(creq, &["GET", "HEAD"])?;
            CouchResponse::json(200, &server::welcome(&server_uuid(env).await?))
        }
        Route::Up => server::up(),
        Route::Uuids => {
            server::allow(creq, &["GET", "HEAD"])?;
            server::uuids(creq)?
        }
        Route::Session => match method.as_str() {
            "GET" | "HEAD" => auth::session_info(cfg, auth),
            "POST" => {
                let store = UsersActor { env };
                let state = AUTH_STATE.with(|s| *s);
                auth::login(cfg, creq, &store, state, peer, now).await?
            }
            "DELETE" => auth::logout(),
            _ => return Err(CouchError::method_not_allowed("GET,HEAD,POST,DELETE")),
        },
        Route::Membership => {
            auth::require_admin(user)?;
            server::membership()
        }
        Route::ClusterSetup => {
            auth::require_admin(user)?;
            server::allow(creq, &["GET", "HEAD"])?;
            server::cluster_setup()
        }
        Route::ActiveTasks => {
            auth::require_admin(user)?;
            CouchResponse::json(200, &replication::active_tasks(env).await?)
        }
        Route::Replicate => {
            auth::require_admin(user)?;
            server::allow(creq, &["POST"])?;
            replication::replicate(env, creq, user).await?
        }
        Route::Scheduler(rest) => {
            auth::require_admin(user)?;
            server::allow(creq, &["GET", "HEAD"])?;
            replication::scheduler(env, &rest).await?
        }
        Route::DbUpdates => {
            server::allow(creq, &["GET", "HEAD"])?;
            auth::require_admin(user)?;
            let resp = call_catalog(env, &CatalogCall::Updates, url.query().unwrap_or(""))
                .await
                .map_err(internal)?;
            return Ok(Handled::Forwarded(resp));
        }
        Route::AllDbs => {
            server::allow(creq, &["GET", "HEAD"])?;
            if cfg.admin_only_all_dbs {
                auth::require_admin(user)?;
            }
            CouchResponse::json(200, &catalog_list(env, url.query().unwrap_or("")).await?)
        }
        Route::DbsInfo => {
            server::allow(creq, &["GET", "HEAD", "POST"])?;
            if cfg.admin_only_all_dbs {
                auth::require_admin(user)?;
            }
            let names = match server::dbs_info_keys(creq)? {
                Some(keys) => keys,
                None => serde_json::from_value(catalog_list(env, url.query().unwrap_or("")).await?)
                    .map_err(|_| CouchError::internal("catalog answered a non-list"))?,
            };
            CouchResponse::json(200, &dbs_info(env, &names, user).await)
        }
        Route::Unsupported(what) => {
            if matches!(what.as_str(), "_node" | "_config" | "_stats" | "_reshard") {
                auth::require_admin(user)?;
            }
            return Err(CouchError::not_implemented(format!(
                "{what} is not supported by this server yet"
            )));
        }
        Route::Database(_) => unreachable!("handled above"),
    };
    Ok(Handled::Local(resp))
}

/// A runtime failure as a 500, with the first line of its message only
/// (no stack traces to clients).
fn internal(e: impl std::fmt::Display) -> CouchError {
    let msg = e.to_string();
    CouchError::internal(msg.lines().next().unwrap_or_default().to_string())
}

fn js_internal(e: wasm_bindgen::JsValue) -> CouchError {
    internal(format!("{e:?}"))
}

/// Refuses bodies larger than `max_http_request_size` before reading them.
fn check_size(req: &Request, cfg: &Config) -> CouchResult<()> {
    let len = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    match len {
        Some(n) if n > cfg.limits.max_http_request_size => Err(CouchError::request_too_large()),
        _ => Ok(()),
    }
}

fn db_stub(env: &Env, name: &str) -> CouchResult<worker::Stub> {
    platform::db_stub(env, name).map_err(internal)
}

/// Sends a request to a database's actor, with the user context in a header
/// no client can set (any copy the client sent is dropped).
async fn forward(req: &Request, env: &Env, name: &str, user: &UserCtx) -> CouchResult<Response> {
    let headers = web_sys::Headers::new().map_err(js_internal)?;
    for (k, v) in req.headers().entries() {
        if !k.starts_with("x-settee-") {
            headers.append(&k, &v).map_err(js_internal)?;
        }
    }
    headers
        .set(USER_CTX_HEADER, &user.to_header())
        .map_err(js_internal)?;
    let init = web_sys::RequestInit::new();
    let method = method(req);
    init.set_method(&method);
    init.set_headers(&headers);
    if method != "GET" && method != "HEAD" {
        if let Some(body) = req.inner().body() {
            init.set_body(&body);
        }
    }
    let inner =
        web_sys::Request::new_with_str_and_init(&req.inner().url(), &init).map_err(js_internal)?;
    db_stub(env, name)?
        .fetch_with_request(Request::from(inner))
        .await
        .map_err(internal)
}

/// A bodiless request from the router itself to a database actor.
async fn actor_request(
    env: &Env,
    db: &str,
    method: &str,
    path: &str,
    user: &UserCtx,
) -> CouchResult<Response> {
    let headers = Headers::new();
    headers
        .set(USER_CTX_HEADER, &user.to_header())
        .map_err(internal)?;
    let url = format!("{CALL_ORIGIN}{path}");
    send(&db_stub(env, db)?, method, &url, headers, None)
        .await
        .map_err(internal)
}

/// A catalog call's JSON answer, or the error it carries.
async fn catalog_fetch(env: &Env, call: CatalogCall, query: &str) -> CouchResult<Value> {
    let mut resp = call_catalog(env, &call, query).await.map_err(internal)?;
    let body: Value = resp.json().await.map_err(internal)?;
    CouchError::check_reply(resp.status_code(), body)
}

async fn catalog_list(env: &Env, query: &str) -> CouchResult<Value> {
    catalog_fetch(env, CatalogCall::List, query).await
}

pub(crate) async fn server_uuid(env: &Env) -> CouchResult<String> {
    if let Some(u) = SERVER_UUID.with(|s| s.borrow().clone()) {
        return Ok(u);
    }
    let body = catalog_fetch(env, CatalogCall::Uuid, "").await?;
    let uuid = body["uuid"].as_str().unwrap_or_default().to_string();
    SERVER_UUID.with(|s| *s.borrow_mut() = Some(uuid.clone()));
    Ok(uuid)
}

/// `_dbs_info`: each database's info, fetched from the actors in parallel.
async fn dbs_info(env: &Env, names: &[String], user: &UserCtx) -> Value {
    let infos = join_all(names.iter().map(|n| db_info(env, n, user))).await;
    Value::Array(
        names
            .iter()
            .zip(infos)
            .map(|(name, info)| match info {
                Some(info) => json!({"key": name, "info": info}),
                None => json!({"key": name, "error": "not_found"}),
            })
            .collect(),
    )
}

async fn db_info(env: &Env, name: &str, user: &UserCtx) -> Option<Value> {
    shared::db_name::validate(name).ok()?;
    let path = format!("/{}", encode_segment(name));
    let mut resp = actor_request(env, name, "GET", &path, user).await.ok()?;
    if resp.status_code() != 200 {
        return None;
    }
    resp.json().await.ok()
}
