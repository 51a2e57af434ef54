//! `/_node/{node}/...`: the node's own endpoints, for server admins. The
//! node is `_local` or its name ([`NODE_NAME`], as `_membership` lists
//! it). `_config` reads and writes the values of [`shared::node_config`],
//! kept by the catalog.

use crate::auth;
use crate::cluster::Cluster;
use serde_json::{json, Value};
use shared::actor_call::{ReplicatorCall, REGISTRY_NAME};
use shared::config::Config;
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};
use shared::node_config::{self, ConfigRequest, NODE_NAME};
use shared::stats::Stats;
use shared::user::UserCtx;

/// Answers a request for `/_node/{rest...}`.
pub async fn answer(
    cfg: &Config,
    req: &Request,
    user: &UserCtx,
    rest: &[String],
    cluster: &impl Cluster,
    now: u64,
) -> CouchResult<Response> {
    auth::require_admin(user)?;
    let Some((node, rest)) = rest.split_first() else {
        return Err(CouchError::not_found("missing"));
    };
    if !node_config::is_this_node(node) {
        return Err(CouchError::not_found(format!("unknown node {node}")));
    }
    let read = |req: &Request| allow_read(req);
    match rest.split_first() {
        None => Ok(Response::json(200, &json!({"name": NODE_NAME}))),
        Some((what, rest)) if what == "_config" => config(cfg, req, rest, cluster).await,
        Some((what, path)) if what == "_stats" => {
            read(req)?;
            let stats = cluster.stats().await?;
            let all = stats.to_json(&gauges(cluster, &stats, now).await?);
            let picked = path
                .iter()
                .try_fold(&all, |v, p| v.get(p))
                .ok_or_else(|| CouchError::not_found("missing"))?;
            Ok(Response::json(200, picked))
        }
        Some((what, _)) if what == "_prometheus" => {
            read(req)?;
            let stats = cluster.stats().await?;
            let text = stats.prometheus(&gauges(cluster, &stats, now).await?);
            Ok(Response {
                status: 200,
                headers: vec![(
                    "content-type".into(),
                    "text/plain; version=0.0.4; charset=utf-8".into(),
                )],
                body: text.into_bytes(),
            })
        }
        Some((what, _)) if what == "_system" => {
            read(req)?;
            let (uptime, memory) = cluster.system();
            Ok(Response::json(
                200,
                &json!({"uptime": uptime, "memory": {"total": memory}}),
            ))
        }
        Some((what, _)) if what == "_versions" => {
            read(req)?;
            Ok(Response::json(200, &versions()))
        }
        Some((what, _)) => Err(CouchError::not_implemented(format!(
            "/_node/{{node}}/{what} is not supported by this server yet"
        ))),
    }
}

fn allow_read(req: &Request) -> CouchResult<()> {
    crate::server::allow(req, &["GET", "HEAD"])
}

/// `_versions`: the engines Settee runs design functions and collation
/// on, in CouchDB's shape.
fn versions() -> Value {
    json!({
        "javascript_engine": {"name": "quickjs", "version": "rquickjs 0.14.0"},
        "collation_driver": {
            "name": "icu4x",
            "library_version": "2.4.0",
            "collation_algorithm_version": "UCA, CLDR root",
        },
        "couchdb_version": shared::config::COUCHDB_VERSION,
    })
}

/// `couchdb.open_databases` and `couch_replicator.jobs.*` (the registry's
/// jobs by state).
async fn gauges(
    cluster: &impl Cluster,
    stats: &Stats,
    now: u64,
) -> CouchResult<Vec<(String, u64)>> {
    let jobs = cluster
        .replicator(REGISTRY_NAME, ReplicatorCall::Jobs)
        .await?;
    let jobs = jobs.as_array().map_or(&[][..], |v| v);
    let count = |state: &str| jobs.iter().filter(|j| j["state"] == state).count() as u64;
    Ok(vec![
        ("couchdb.open_databases".into(), stats.open_databases(now)),
        ("couch_replicator.jobs.running".into(), count("running")),
        ("couch_replicator.jobs.pending".into(), count("pending")),
        ("couch_replicator.jobs.crashed".into(), count("crashing")),
        ("couch_replicator.jobs.total".into(), jobs.len() as u64),
    ])
}

/// One value as `GET /_node/{node}/_config/{section}/{key}` shows it: the
/// one written through `_config`, else the Worker vars' or the default.
async fn shown(cluster: &impl Cluster, section: &str, key: &str) -> CouchResult<Option<Value>> {
    let env = |k: &str| cluster.var(k);
    Ok(node_config::sections(&cluster.config_overlay().await?, env)
        .get(section)
        .and_then(|s| s.get(key))
        .cloned())
}

/// `/_node/{node}/_config[/{section}[/{key}]]`, with CouchDB's convention
/// that every value is a JSON string.
async fn config(
    cfg: &Config,
    req: &Request,
    rest: &[String],
    cluster: &impl Cluster,
) -> CouchResult<Response> {
    let call = ConfigRequest::parse(&req.method, rest, &req.body, cfg.users.iterations)?;
    let env = |k: &str| cluster.var(k);
    let reply = match call {
        ConfigRequest::All => {
            Value::Object(node_config::sections(&cluster.config_overlay().await?, env))
        }
        ConfigRequest::Section(section) => {
            node_config::sections(&cluster.config_overlay().await?, env)
                .remove(&section)
                .unwrap_or_else(|| json!({}))
        }
        ConfigRequest::Get { section, key } => shown(cluster, &section, &key)
            .await?
            .ok_or_else(node_config::unknown_value)?,
        ConfigRequest::Put {
            section,
            key,
            value,
        } => {
            // The value it replaces, as CouchDB answers: the one written
            // before, else the one the Worker vars gave.
            let shown = shown(cluster, &section, &key).await?;
            let old = cluster.set_config(&section, &key, Some(&value)).await?;
            old.map(Value::from).or(shown).unwrap_or_else(|| json!(""))
        }
        ConfigRequest::Delete { section, key } => {
            match cluster.set_config(&section, &key, None).await? {
                Some(old) => json!(old),
                None => return Err(node_config::unknown_value()),
            }
        }
        ConfigRequest::Reload => json!({"ok": true}),
    };
    Ok(Response::json(200, &reply))
}
