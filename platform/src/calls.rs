//! Worker settings and the stubs and requests actors use to reach each other.

use shared::actor_call::{
    CatalogCall, ReplicatorCall, CATALOG_BINDING, CATALOG_NAME, DB_BINDING, REPLICATOR_BINDING,
};
use worker::{Env, Headers, Method, Request, RequestInit, Response, Result, Stub};

/// A Worker setting as a secret, else as a plain var (admins and keys are
/// secrets in production and `.dev.vars` text locally).
pub fn env_text(env: &Env, key: &str) -> Option<String> {
    env.secret(key)
        .ok()
        .map(|s| s.to_string())
        .or_else(|| env.var(key).ok().map(|v| v.to_string()))
}

/// The actor of database `name`.
pub fn db_stub(env: &Env, name: &str) -> Result<Stub> {
    env.durable_object(DB_BINDING)?.get_by_name(name)
}

/// The catalog, the one actor that knows every database.
pub fn catalog_stub(env: &Env) -> Result<Stub> {
    env.durable_object(CATALOG_BINDING)?
        .get_by_name(CATALOG_NAME)
}

/// A replication job's actor, or the registry.
pub fn replicator_stub(env: &Env, name: &str) -> Result<Stub> {
    env.durable_object(REPLICATOR_BINDING)?.get_by_name(name)
}

/// Sends one request to an actor.
pub async fn send(
    stub: &Stub,
    method: &str,
    url: &str,
    headers: Headers,
    body: Option<&[u8]>,
) -> Result<Response> {
    let mut init = RequestInit::new();
    init.with_method(Method::from(method.to_string()))
        .with_headers(headers);
    if let Some(b) = body {
        init.with_body(Some(js_sys::Uint8Array::from(b).into()));
    }
    stub.fetch_with_request(Request::new_with_init(url, &init)?)
        .await
}

/// Makes a catalog call; `query` is a raw query string (empty for none).
pub async fn call_catalog(env: &Env, call: &CatalogCall, query: &str) -> Result<Response> {
    let headers = Headers::new();
    let body = call.body();
    if body.is_some() {
        headers.set("content-type", "application/json")?;
    }
    send(
        &catalog_stub(env)?,
        call.method(),
        &call.url(query),
        headers,
        body.as_deref(),
    )
    .await
}

/// Makes a call on the replicator actor `name` (a job id, or
/// [`shared::actor_call::REGISTRY_NAME`]) and answers its status and JSON.
pub async fn call_replicator(
    env: &Env,
    name: &str,
    call: &ReplicatorCall,
) -> Result<(u16, serde_json::Value)> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let body = call.body();
    let mut resp = send(
        &replicator_stub(env, name)?,
        call.method(),
        &call.url(),
        headers,
        body.as_deref(),
    )
    .await?;
    let v = resp.json().await.unwrap_or(serde_json::Value::Null);
    Ok((resp.status_code(), v))
}
