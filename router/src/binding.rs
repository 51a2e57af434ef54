//! The entry Worker: authenticates, answers server endpoints, and forwards
//! database requests to their actors.

use crate::auth::{self, Admin};
use crate::server::{self, Route};
use db_actor::binding::{limits_from_env, CATALOG_BINDING, CATALOG_NAME};
use db_actor::worker_http::to_worker;
use futures::future::join_all;
use serde_json::{json, Value};
use shared::error::{CouchError, CouchResult};
use shared::http::{
    encode_segment, split_path, Request as CouchRequest, Response as CouchResponse,
};
use shared::user::{UserCtx, USER_CTX_HEADER};
use std::cell::RefCell;
use worker::{event, Context, Env, Request, Response, Result};

/// Binding name of the database actors' namespace.
const DB_BINDING: &str = "DB";

thread_local! {
    /// The server uuid, fetched from the catalog once per isolate.
    static SERVER_UUID: RefCell<Option<String>> = const { RefCell::new(None) };
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let head = req.inner().method() == "HEAD";
    match handle(req, &env).await {
        Ok(Handled::Forwarded(r)) => Ok(r),
        Ok(Handled::Local(r)) => to_worker(r, head),
        Err(e) => to_worker(CouchResponse::error(&e), head),
    }
}

enum Handled {
    Local(CouchResponse),
    Forwarded(Response),
}

fn env_lookup(env: &Env, key: &str) -> Option<String> {
    env.secret(key)
        .ok()
        .map(|s| s.to_string())
        .or_else(|| env.var(key).ok().map(|v| v.to_string()))
}

async fn handle(mut req: Request, env: &Env) -> CouchResult<Handled> {
    let url = req.url().map_err(internal)?;
    let method = req.inner().method();
    let admin = Admin::from_lookup(|k| env_lookup(env, k));
    let user = auth::authenticate(
        admin.as_ref(),
        req.headers()
            .get("authorization")
            .map_err(internal)?
            .as_deref(),
    )?;
    let path = split_path(url.path());
    let route = server::route(&path)?;
    if let Route::Database(name) = route {
        if admin.is_none() {
            return Err(auth::not_configured());
        }
        if !user.is_admin() {
            return Err(CouchError::unauthorized(
                "You are not authorized to access this db.",
            ));
        }
        check_size(&req, env)?;
        return forward(&req, env, &name, &user)
            .await
            .map(Handled::Forwarded);
    }
    let mut creq = CouchRequest::new(&method, url.path(), url.query().unwrap_or(""));
    creq.headers = req.headers().entries().collect();
    if method == "POST" {
        check_size(&req, env)?;
        creq.body = req.bytes().await.unwrap_or_default();
    }
    let resp = match route {
        Route::Welcome => {
            server::allow(&creq, &["GET", "HEAD"])?;
            CouchResponse::json(200, &server::welcome(&server_uuid(env).await?))
        }
        Route::Up => server::up(),
        Route::Uuids => {
            server::allow(&creq, &["GET", "HEAD"])?;
            server::uuids(&creq)?
        }
        Route::Session => {
            server::allow(&creq, &["GET", "HEAD"])?;
            server::session(&user)
        }
        Route::Membership => {
            auth::require_admin(&user)?;
            server::membership()
        }
        Route::ActiveTasks => {
            auth::require_admin(&user)?;
            CouchResponse::json(200, &json!([]))
        }
        Route::AllDbs => {
            server::allow(&creq, &["GET", "HEAD"])?;
            auth::require_admin(&user)?;
            let list = catalog_list(env, url.query().unwrap_or("")).await?;
            CouchResponse::json(200, &list)
        }
        Route::DbsInfo => {
            server::allow(&creq, &["GET", "HEAD", "POST"])?;
            auth::require_admin(&user)?;
            let names = match server::dbs_info_keys(&creq)? {
                Some(keys) => keys,
                None => serde_json::from_value(catalog_list(env, url.query().unwrap_or("")).await?)
                    .map_err(|_| CouchError::internal("catalog answered a non-list"))?,
            };
            CouchResponse::json(200, &dbs_info(env, &names, &user).await)
        }
        Route::Unsupported(what) => {
            return Err(CouchError::not_implemented(format!(
                "{what} is not supported by this server yet"
            )))
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

/// Refuses bodies larger than `max_http_request_size` before reading them.
fn check_size(req: &Request, env: &Env) -> CouchResult<()> {
    let limits = limits_from_env(env);
    let len = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    match len {
        Some(n) if n > limits.max_http_request_size => Err(CouchError::request_too_large()),
        _ => Ok(()),
    }
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
    let method = req.inner().method();
    init.set_method(&method);
    init.set_headers(&headers);
    if method != "GET" && method != "HEAD" {
        if let Some(body) = req.inner().body() {
            init.set_body(&body);
        }
    }
    let inner =
        web_sys::Request::new_with_str_and_init(&req.inner().url(), &init).map_err(js_internal)?;
    let stub = env
        .durable_object(DB_BINDING)
        .and_then(|ns| ns.get_by_name(name))
        .map_err(internal)?;
    stub.fetch_with_request(Request::from(inner))
        .await
        .map_err(internal)
}

fn js_internal(e: wasm_bindgen::JsValue) -> CouchError {
    internal(format!("{e:?}"))
}

async fn catalog_fetch(env: &Env, path: &str) -> CouchResult<Value> {
    let stub = env
        .durable_object(CATALOG_BINDING)
        .and_then(|ns| ns.get_by_name(CATALOG_NAME))
        .map_err(internal)?;
    let mut resp = stub
        .fetch_with_str(&format!("https://catalog/{path}"))
        .await
        .map_err(internal)?;
    let body: Value = resp.json().await.map_err(internal)?;
    if resp.status_code() >= 400 {
        return Err(CouchError::new(
            resp.status_code(),
            body["error"].as_str().unwrap_or("error"),
            body["reason"].as_str().unwrap_or(""),
        ));
    }
    Ok(body)
}

async fn catalog_list(env: &Env, query: &str) -> CouchResult<Value> {
    catalog_fetch(env, &format!("list?{query}")).await
}

async fn server_uuid(env: &Env) -> CouchResult<String> {
    if let Some(u) = SERVER_UUID.with(|s| s.borrow().clone()) {
        return Ok(u);
    }
    let body = catalog_fetch(env, "uuid").await?;
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
    let stub = env
        .durable_object(DB_BINDING)
        .ok()?
        .get_by_name(name)
        .ok()?;
    let headers = worker::Headers::new();
    headers.set(USER_CTX_HEADER, &user.to_header()).ok()?;
    let mut init = worker::RequestInit::new();
    init.with_headers(headers);
    let url = format!("https://db/{}", encode_segment(name));
    let req = Request::new_with_init(&url, &init).ok()?;
    let mut resp = stub.fetch_with_request(req).await.ok()?;
    if resp.status_code() != 200 {
        return None;
    }
    resp.json().await.ok()
}
