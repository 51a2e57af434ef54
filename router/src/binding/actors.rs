//! The actors as the router reaches them: the [`Cluster`] over Durable
//! Object stubs, and requests forwarded to a database's actor.

use crate::auth::UserStore;
use crate::cluster::Cluster;
use platform::{call_catalog, call_replicator, env_text, send, worker_http};
use serde_json::{Map, Value};
use shared::actor_call::{CatalogCall, ReplicatorCall, CALL_ORIGIN};
use shared::error::{CouchError, CouchResult};
use shared::http::encode_segment;
use shared::node_config::{Overlay, SETTINGS_HEADER};
use shared::stats::Stats;
use shared::user::{UserCtx, USER_CTX_HEADER};
use shared::users::{USERS_DB, USER_PREFIX};
use std::cell::RefCell;
use worker::{Env, Headers, Response};

thread_local! {
    /// The server uuid, fetched from the catalog once per isolate.
    static SERVER_UUID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The actors, as the router reaches them.
pub(super) struct Workers<'a> {
    pub(super) env: &'a Env,
}

impl UserStore for Workers<'_> {
    /// Reads user documents from the `_users` actor, as the server admin.
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

impl Cluster for Workers<'_> {
    async fn server_uuid(&self) -> CouchResult<String> {
        if let Some(u) = SERVER_UUID.with(|s| s.borrow().clone()) {
            return Ok(u);
        }
        let body = self.catalog(CatalogCall::Uuid, "").await?;
        let uuid = body["uuid"].as_str().unwrap_or_default().to_string();
        SERVER_UUID.with(|s| *s.borrow_mut() = Some(uuid.clone()));
        Ok(uuid)
    }

    async fn catalog(&self, call: CatalogCall, query: &str) -> CouchResult<Value> {
        let mut resp = call_catalog(self.env, &call, query)
            .await
            .map_err(internal)?;
        let body: Value = resp.json().await.map_err(internal)?;
        CouchError::check_reply(resp.status_code(), body)
    }

    async fn db_info(&self, name: &str, user: &UserCtx) -> Option<Value> {
        let path = format!("/{}", encode_segment(name));
        let mut resp = actor_request(self.env, name, "GET", &path, user)
            .await
            .ok()?;
        if resp.status_code() != 200 {
            return None;
        }
        resp.json().await.ok()
    }

    async fn config_overlay(&self) -> CouchResult<Overlay> {
        let v = self.catalog(CatalogCall::Config, "").await?;
        serde_json::from_value(v).map_err(internal)
    }

    async fn set_config(
        &self,
        section: &str,
        key: &str,
        value: Option<&str>,
    ) -> CouchResult<Option<String>> {
        let call = CatalogCall::SetConfig {
            section: section.to_string(),
            key: key.to_string(),
            value: value.map(str::to_string),
        };
        let v = self.catalog(call, "").await?;
        super::config_changed();
        Ok(v["old"].as_str().map(str::to_string))
    }

    fn var(&self, name: &str) -> Option<String> {
        env_text(self.env, name)
    }

    async fn stats(&self) -> CouchResult<Stats> {
        let v = self.catalog(CatalogCall::Stats, "").await?;
        let mut total: Stats = serde_json::from_value(v).map_err(internal)?;
        super::PENDING_STATS.with(|s| total.merge(&s.borrow()));
        Ok(total)
    }

    fn system(&self) -> (u64, u64) {
        let started = super::STARTED_MS.with(|t| *t);
        let uptime = ((js_sys::Date::now() - started) / 1000.0) as u64;
        let memory = core::arch::wasm32::memory_size(0) as u64 * 65_536;
        (uptime, memory)
    }

    async fn replicator(&self, actor: &str, call: ReplicatorCall) -> CouchResult<Value> {
        let (status, v) = call_replicator(self.env, actor, &call)
            .await
            .map_err(internal)?;
        CouchError::check_reply(status, v)
    }
}

/// A runtime failure as a 500, with the first line of its message only
/// (no stack traces to clients).
pub(super) fn internal(e: impl std::fmt::Display) -> CouchError {
    let msg = e.to_string();
    CouchError::internal(msg.lines().next().unwrap_or_default().to_string())
}

fn db_stub(env: &Env, name: &str) -> CouchResult<worker::Stub> {
    platform::db_stub(env, name).map_err(internal)
}

/// Sends a request to a database's actor, with the user context in a header
/// no client can set (any copy the client sent is dropped).
pub(super) async fn forward(
    req: &web_sys::Request,
    url: &str,
    method: &str,
    env: &Env,
    name: &str,
    user: &UserCtx,
    settings: Option<&str>,
) -> CouchResult<web_sys::Response> {
    let user = user.to_header();
    let target = shared::http::target_header(url);
    let mut extra = vec![
        (USER_CTX_HEADER, user.as_str()),
        (shared::http::TARGET_HEADER, target.as_str()),
    ];
    if let Some(s) = settings {
        extra.push((SETTINGS_HEADER, s));
    }
    let with_body = method != "GET" && method != "HEAD";
    let stub = db_stub(env, name)?;
    worker_http::forward(stub, req, url, method, &extra, with_body)
        .await
        .map_err(|e| internal(format!("{e:?}")))
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
