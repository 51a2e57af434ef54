//! `/_node/{node}/...`: the node's own endpoints, for server admins. The
//! node is `_local` or its name ([`NODE_NAME`], as `_membership` lists
//! it). `_config` reads and writes the values of [`shared::node_config`],
//! kept by the catalog.

use crate::auth;
use crate::cluster::Cluster;
use serde_json::{json, Value};
use shared::config::Config;
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};
use shared::node_config::{self, ConfigRequest, NODE_NAME};
use shared::user::UserCtx;

/// Answers a request for `/_node/{rest...}`.
pub async fn answer(
    cfg: &Config,
    req: &Request,
    user: &UserCtx,
    rest: &[String],
    cluster: &impl Cluster,
) -> CouchResult<Response> {
    auth::require_admin(user)?;
    let Some((node, rest)) = rest.split_first() else {
        return Err(CouchError::not_found("missing"));
    };
    if !node_config::is_this_node(node) {
        return Err(CouchError::not_found(format!("unknown node {node}")));
    }
    match rest.split_first() {
        None => Ok(Response::json(200, &json!({"name": NODE_NAME}))),
        Some((what, rest)) if what == "_config" => config(cfg, req, rest, cluster).await,
        Some((what, _)) => Err(CouchError::not_implemented(format!(
            "/_node/{{node}}/{what} is not supported by this server yet"
        ))),
    }
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
        ConfigRequest::Get { section, key } => {
            node_config::sections(&cluster.config_overlay().await?, env)
                .get(&section)
                .and_then(|s| s.get(&key))
                .cloned()
                .ok_or_else(node_config::unknown_value)?
        }
        ConfigRequest::Put {
            section,
            key,
            value,
        } => {
            let old = cluster.set_config(&section, &key, Some(&value)).await?;
            json!(old.unwrap_or_default())
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
