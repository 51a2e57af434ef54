//! The entry Worker's events: the request's path of [`crate::dispatch`]
//! over Worker requests, with CORS, cookies and `Date` on every answer.

mod actors;

use crate::auth::AuthState;
use crate::cluster::Cluster;
use crate::dispatch::{self, Answer, Target};
use crate::fauxton;
use actors::{forward, internal, Workers};
use platform::call_catalog;
use platform::env_text;
use platform::worker_http::{self, to_worker};
use shared::actor_call::CatalogCall;
use shared::config::Config;
use shared::error::{CouchError, CouchResult};
use shared::http::{Head, Request as CouchRequest, Response as CouchResponse};
use shared::node_config::{self, Overlay};
use shared::stats::Stats;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{event, Context, Env, Headers, Result};

thread_local! {
    /// Lockout counters and verified-password cache of this isolate,
    /// shared by its concurrent requests.
    static AUTH_STATE: &'static RefCell<AuthState> = Box::leak(Box::default());
}

fn now_secs() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

/// The configuration of this isolate: the Worker's vars and secrets with
/// the values written through `_config` over them, and the header that
/// hands the database actors their share of those values.
struct Current {
    config: Rc<Config>,
    actor_settings: Option<String>,
    read_ms: f64,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Current>>> = const { RefCell::new(None) };
    /// What this isolate counted since it last handed its counts over.
    static PENDING_STATS: RefCell<Stats> = RefCell::new(Stats::default());
    /// When this isolate started (ms since the epoch).
    static STARTED_MS: f64 = js_sys::Date::now();
}

/// How long an isolate keeps the `_config` values before reading them
/// again: a write through this isolate applies at once, through another
/// within this time.
const CONFIG_TTL_MS: f64 = 5_000.0;

/// Forgets the cached configuration (after a `_config` write).
fn config_changed() {
    CURRENT.with(|c| *c.borrow_mut() = None);
}

async fn current(env: &Env) -> Rc<Current> {
    let now = js_sys::Date::now();
    if let Some(c) = CURRENT.with(|c| c.borrow().clone()) {
        if now - c.read_ms < CONFIG_TTL_MS {
            return c;
        }
    }
    // The read of the `_config` values carries this isolate's counts.
    let delta = PENDING_STATS.with(|s| s.take());
    let workers = Workers { env };
    let overlay = match workers.catalog(CatalogCall::Sync(delta.clone()), "").await {
        Ok(v) => serde_json::from_value(v).unwrap_or_default(),
        Err(e) => {
            PENDING_STATS.with(|s| s.borrow_mut().merge(&delta));
            worker::console_error!("reading _config from the catalog failed: {}", e.reason);
            Overlay::new()
        }
    };
    let c = Rc::new(Current {
        config: Rc::new(Config::with_overlay(&overlay, |k| env_text(env, k))),
        actor_settings: node_config::actor_settings(&overlay),
        read_ms: now,
    });
    CURRENT.with(|slot| *slot.borrow_mut() = Some(c.clone()));
    c
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
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    let started = js_sys::Date::now();
    let head = worker_http::head(&req);
    let method = head.method.clone();
    let resp = respond(&req, head, env).await;
    let status = resp.as_ref().map_or(500, |r| r.status());
    let ms = js_sys::Date::now() - started;
    PENDING_STATS.with(|s| s.borrow_mut().request(&method, status, ms));
    resp
}

async fn respond(req: &web_sys::Request, head: Head, env: Env) -> Result<web_sys::Response> {
    let current = current(&env).await;
    let cfg = &*current.config;
    let is_head = head.method == "HEAD";
    let origin = head.header("origin").map(str::to_string);
    if let Some(r) = preflight(cfg, &head, origin.as_deref())? {
        return Ok(r);
    }
    let (result, set_cookie) = handle(req, head, &env, &current).await;
    let mut extra: Vec<(String, String)> = set_cookie
        .into_iter()
        .map(|c| ("set-cookie".into(), c))
        .collect();
    if let Some(cors) = &cfg.cors {
        extra.extend(cors.response_headers(origin.as_deref()));
    }
    let plain = extra.is_empty();
    extra.push(("date".into(), shared::http::http_date(now_secs())));
    let local = |mut r: CouchResponse| -> Result<web_sys::Response> {
        r.headers.extend(extra.iter().cloned());
        Ok(to_worker(r, is_head)?.into())
    };
    match result {
        // A WebSocket upgrade needs no date.
        Ok(Handled::Forwarded(r)) if plain && r.status() == 101 => Ok(r),
        Ok(Handled::Forwarded(r)) => Ok(worker_http::with_headers(&r, &extra)?),
        Ok(Handled::Local(r)) => local(r),
        Err(e) => local(CouchResponse::error(&e)),
    }
}

/// Answers a CORS preflight, when CORS is on.
fn preflight(cfg: &Config, head: &Head, origin: Option<&str>) -> Result<Option<web_sys::Response>> {
    let (Some(cors), "OPTIONS") = (&cfg.cors, head.method.as_str()) else {
        return Ok(None);
    };
    let Some(method) = head.header("access-control-request-method") else {
        return Ok(None);
    };
    let mut r = CouchResponse::empty(204);
    r.headers = cors.preflight(origin, method).unwrap_or_default();
    Ok(Some(to_worker(r, false)?.into()))
}

enum Handled {
    Local(CouchResponse),
    Forwarded(web_sys::Response),
}

/// The request with its path as the client sent it: a URL parser (WHATWG
/// parsing) would resolve `.` and `%2E%2E` segments first.
/// Its method is the one `X-HTTP-Method-Override` asks for.
fn couch_request(method: &str, url: &str, headers: Vec<(String, String)>) -> CouchRequest {
    let (path, query) = shared::http::path_and_query(url);
    let method = shared::http::effective_method(
        method,
        shared::http::header_in(&headers, "x-http-method-override"),
    );
    let mut creq = CouchRequest::new(&method, path, query);
    creq.headers = headers;
    creq.set_origin(url);
    creq
}

async fn handle(
    req: &web_sys::Request,
    head: Head,
    env: &Env,
    current: &Current,
) -> (CouchResult<Handled>, Option<String>) {
    let cfg = &*current.config;
    let Head {
        method,
        url,
        headers,
    } = head;
    let mut creq = couch_request(&method, &url, headers);
    let cluster = Workers { env };
    let peer = crate::auth::client_address(&creq);
    let now = now_secs();
    let state = AUTH_STATE.with(|s| *s);
    let auth = dispatch::authenticate(cfg, &creq, &cluster, state, &peer, now).await;
    let auth = match auth {
        Ok(a) => a,
        Err(e) => return (Err(e), None),
    };
    let set_cookie = auth.set_cookie.clone();
    let handled = async {
        let route = match dispatch::target(cfg, &creq, &auth.user)? {
            Target::Database(name) => {
                let settings = current.actor_settings.as_deref();
                return forward(req, &url, &creq.method, env, &name, &auth.user, settings)
                    .await
                    .map(Handled::Forwarded);
            }
            Target::Server(route) => route,
        };
        if dispatch::reads_body(&creq) {
            creq.body = worker_http::body(req).await;
        }
        match dispatch::answer(cfg, &creq, &auth, route, &cluster, state, &peer, now).await? {
            Answer::Reply(r) => Ok(Handled::Local(r)),
            Answer::Asset(path) => asset(env, &path).await,
            Answer::DbUpdates => call_catalog(env, &CatalogCall::Updates, &creq.query_string())
                .await
                .map(|r| Handled::Forwarded(r.into()))
                .map_err(internal),
        }
    };
    (handled.await, set_cookie)
}

/// A file of Fauxton's release, from the static assets, with the headers
/// [`fauxton::headers`] gives it.
async fn asset(env: &Env, path: &str) -> CouchResult<Handled> {
    let Ok(assets) = env.assets(fauxton::ASSETS_BINDING) else {
        return Ok(Handled::Local(fauxton::not_installed()));
    };
    let resp = assets
        .fetch(format!("https://assets{path}"), None)
        .await
        .map_err(internal)?;
    if resp.status_code() != 200 {
        return Err(CouchError::not_found("missing"));
    }
    let headers = Headers::new();
    for (k, v) in fauxton::headers(path) {
        headers.set(&k, &v).map_err(internal)?;
    }
    Ok(Handled::Forwarded(resp.with_headers(headers).into()))
}
