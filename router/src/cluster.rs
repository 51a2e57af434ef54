//! The actors the router calls (besides forwarding a database's requests):
//! the catalog, database actors for their info, the replicator, and
//! `_users` through [`UserStore`]. The binding reaches them through
//! Durable Object stubs; tests, in memory.

use crate::auth::UserStore;
use serde_json::Value;
use shared::actor_call::{CatalogCall, ReplicatorCall};
use shared::error::CouchResult;
use shared::node_config::Overlay;
use shared::stats::Stats;
use shared::user::UserCtx;

/// The actors the router calls, besides forwarding.
#[allow(async_fn_in_trait)]
pub trait Cluster: UserStore {
    /// This server's uuid.
    async fn server_uuid(&self) -> CouchResult<String>;
    /// A catalog call's JSON answer, or the error it carries.
    async fn catalog(&self, call: CatalogCall, query: &str) -> CouchResult<Value>;
    /// `GET /{db}` as `user`: `None` when it fails (missing, forbidden).
    async fn db_info(&self, name: &str, user: &UserCtx) -> Option<Value>;
    /// A replicator call's JSON answer, or the error it carries.
    async fn replicator(&self, actor: &str, call: ReplicatorCall) -> CouchResult<Value>;
    /// The values written through `_config` (fresh: not a cached copy).
    async fn config_overlay(&self) -> CouchResult<Overlay>;
    /// Writes (`Some`) or deletes one `_config` value; answers the one it
    /// replaced. The router's own configuration follows at once.
    async fn set_config(
        &self,
        section: &str,
        key: &str,
        value: Option<&str>,
    ) -> CouchResult<Option<String>>;
    /// A Worker var or secret: the settings under the `_config` values.
    fn var(&self, name: &str) -> Option<String>;
    /// The node's statistics: every isolate's counts the catalog has, with
    /// this isolate's not handed over yet.
    async fn stats(&self) -> CouchResult<Stats>;
    /// What the runtime tells of the isolate answering (`_system`):
    /// seconds since it started, its memory in bytes.
    fn system(&self) -> (u64, u64);
}
