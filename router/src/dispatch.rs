//! A request's path through the router, apart from the Worker runtime:
//! authenticate ([`authenticate`]), decide where it goes ([`target`]:
//! a database's actor, or a server endpoint), and answer server endpoints
//! ([`answer`]). What the router reaches — the catalog, database actors,
//! the replicator, `_users` — comes through a [`Cluster`], so all of it runs
//! under `cargo test`; the binding forwards database requests and streams
//! `_db_updates` itself.

use crate::auth::{self, AuthState, Authenticated};
use crate::cluster::Cluster;
use crate::fauxton::{self, Asset};
use crate::node;
use crate::replication;
use crate::server::{self, Route};
use futures::future::join_all;
use serde_json::{json, Value};
use shared::active_tasks::{IndexerTask, STALE_AFTER_SECS};
use shared::actor_call::CatalogCall;
use shared::config::Config;
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};
use shared::node_config::NODE_NAME;
use shared::user::UserCtx;
use std::cell::RefCell;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// To this database's actor, unchanged.
    Database(String),
    /// To a server endpoint, once its body is read.
    Server(Route),
}

/// A server endpoint's answer.
#[derive(Debug)]
pub enum Answer {
    Reply(Response),
    /// A file of Fauxton's release, from the static assets
    /// ([`crate::fauxton`]).
    Asset(String),
    /// `_db_updates`, streamed from the catalog with the request's query.
    DbUpdates,
}

/// Authenticates a request. No admin party: without an admin only the
/// welcome and `_up` answer.
pub async fn authenticate(
    cfg: &Config,
    req: &Request,
    cluster: &impl Cluster,
    state: &RefCell<AuthState>,
    peer: &str,
    now: u64,
) -> CouchResult<Authenticated> {
    let open = req.path.is_empty() || req.path == ["_up"];
    if cfg.admin.is_none() && !open {
        return Err(auth::not_configured());
    }
    auth::authenticate(cfg, req, cluster, state, peer, now).await
}

/// Decides where an authenticated request goes, refusing what no route
/// takes: anonymous requests under `require_valid_user`, and bodies over
/// `max_http_request_size` (by their `Content-Length`, before reading).
pub fn target(cfg: &Config, req: &Request, user: &UserCtx) -> CouchResult<Target> {
    let route = server::route(&req.path)?;
    let open_route = matches!(route, Route::Up | Route::Session);
    if cfg.require_valid_user && user.name.is_none() && !open_route {
        return Err(CouchError::unauthorized("Authentication required."));
    }
    if matches!(route, Route::Database(_)) || reads_body(req) {
        check_size(req, cfg)?;
    }
    Ok(match route {
        Route::Database(name) => Target::Database(name),
        route => Target::Server(route),
    })
}

/// `_active_tasks`: index builds the database actors reported (and still
/// report), then running replications.
async fn active_tasks(cluster: &impl Cluster, now: u64) -> CouchResult<Value> {
    let builds: Vec<IndexerTask> =
        serde_json::from_value(cluster.catalog(CatalogCall::Tasks, "").await?)
            .map_err(|e| CouchError::internal(format!("catalog tasks: {e}")))?;
    let mut rows: Vec<Value> = builds
        .iter()
        .filter(|t| t.updated_on + STALE_AFTER_SECS >= now)
        .map(|t| t.row(NODE_NAME))
        .collect();
    if let Value::Array(replications) = replication::active_tasks(cluster).await? {
        rows.extend(replications);
    }
    Ok(Value::Array(rows))
}

/// True when a server endpoint reads the request's body.
pub fn reads_body(req: &Request) -> bool {
    matches!(req.method.as_str(), "POST" | "PUT" | "DELETE")
}

fn check_size(req: &Request, cfg: &Config) -> CouchResult<()> {
    let len = req
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok());
    match len {
        Some(n) if n > cfg.limits.max_http_request_size => Err(CouchError::request_too_large()),
        _ => Ok(()),
    }
}

/// Answers a server endpoint.
#[allow(clippy::too_many_arguments)]
pub async fn answer(
    cfg: &Config,
    req: &Request,
    auth: &Authenticated,
    route: Route,
    cluster: &impl Cluster,
    state: &RefCell<AuthState>,
    peer: &str,
    now: u64,
) -> CouchResult<Answer> {
    let user = &auth.user;
    let query = &req.query_string();
    let resp = match route {
        Route::Welcome => {
            server::allow(req, &["GET", "HEAD"])?;
            Response::json(200, &server::welcome(&cluster.server_uuid().await?))
        }
        Route::Up => server::up(),
        Route::Uuids => {
            server::allow(req, &["GET", "HEAD"])?;
            server::uuids(req)?
        }
        Route::Session => match req.method.as_str() {
            "GET" | "HEAD" => auth::session_info(cfg, auth),
            "POST" => auth::login(cfg, req, cluster, state, peer, now).await?,
            "DELETE" => auth::logout(),
            _ => return Err(CouchError::method_not_allowed("GET,HEAD,POST,DELETE")),
        },
        Route::Membership => {
            auth::require_admin(user)?;
            server::membership()
        }
        Route::ClusterSetup => {
            auth::require_admin(user)?;
            server::cluster_setup(req)?
        }
        Route::ActiveTasks => {
            auth::require_admin(user)?;
            Response::json(200, &active_tasks(cluster, now).await?)
        }
        Route::Replicate => {
            auth::require_admin(user)?;
            server::allow(req, &["POST"])?;
            replication::replicate(cluster, req, user).await?
        }
        Route::Scheduler(rest) => {
            auth::require_admin(user)?;
            server::allow(req, &["GET", "HEAD"])?;
            replication::scheduler(cluster, &rest).await?
        }
        Route::DbUpdates => {
            server::allow(req, &["GET", "HEAD"])?;
            auth::require_admin(user)?;
            return Ok(Answer::DbUpdates);
        }
        Route::AllDbs => {
            server::allow(req, &["GET", "HEAD"])?;
            if cfg.admin_only_all_dbs {
                auth::require_admin(user)?;
            }
            Response::json(200, &cluster.catalog(CatalogCall::List, query).await?)
        }
        Route::DbsInfo => {
            server::allow(req, &["GET", "HEAD", "POST"])?;
            if cfg.admin_only_all_dbs {
                auth::require_admin(user)?;
            }
            let names = match server::dbs_info_keys(req)? {
                Some(keys) => keys,
                None => serde_json::from_value(cluster.catalog(CatalogCall::List, query).await?)
                    .map_err(|_| CouchError::internal("catalog answered a non-list"))?,
            };
            Response::json(200, &dbs_info(cluster, &names, user).await)
        }
        Route::Utils(rest) => match fauxton::resolve(req, &rest)? {
            Asset::File(path) => return Ok(Answer::Asset(path)),
            Asset::Redirect(to) => Response::empty(301).with_header("location", to),
        },
        Route::Node(rest) => node::answer(cfg, req, user, &rest, cluster, now).await?,
        Route::SearchAnalyze => server::search_analyze(req)?,
        Route::Unsupported(what) => {
            if matches!(what.as_str(), "_reshard") {
                auth::require_admin(user)?;
            }
            return Err(CouchError::not_implemented(format!(
                "{what} is not supported by this server yet"
            )));
        }
        Route::Database(name) => {
            return Err(CouchError::internal(format!(
                "{name} is a database: its requests are forwarded"
            )))
        }
    };
    Ok(Answer::Reply(resp))
}

/// `_dbs_info`: each database's info, fetched from the actors in parallel.
async fn dbs_info(cluster: &impl Cluster, names: &[String], user: &UserCtx) -> Value {
    let infos = join_all(names.iter().map(|n| async move {
        shared::db_name::validate(n).ok()?;
        cluster.db_info(n, user).await
    }))
    .await;
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
