//! What the replicator's actor needs from the platform it runs on: other
//! actors, databases as replication ends, the alarm, timers, the clock and
//! the log. `binding` implements it for Workers; tests implement it in
//! memory.

use serde_json::Value;
use shared::actor_call::ReplicatorCall;
use shared::error::CouchResult;
use shared::replication::params::Endpoint;
use shared::replication::peer::Transport;
use shared::user::UserCtx;

/// What the actor needs from the platform it runs on.
#[allow(async_fn_in_trait)]
pub trait Runtime {
    type Db<'a>: Transport
    where
        Self: 'a;
    /// A replication end: a database of this server (acting as `user`)
    /// or one at a URL.
    fn peer<'a>(&'a self, end: &'a Endpoint, user: &UserCtx) -> Self::Db<'a>;
    /// A call to another instance of this class (a job, or the registry):
    /// its status and body; an error only when it could not be reached.
    async fn call(&self, actor: &str, call: &ReplicatorCall) -> CouchResult<(u16, Value)>;
    /// This server's uuid.
    async fn server_uuid(&self) -> CouchResult<String>;
    /// The server admin's name (`COUCHDB_USER`).
    fn admin_name(&self) -> Option<String>;
    fn now(&self) -> u64;
    /// Sets this instance's alarm `in_ms` from now.
    async fn set_alarm(&self, in_ms: u64) -> CouchResult<()>;
    async fn delete_alarm(&self) -> CouchResult<()>;
    async fn sleep(&self, ms: u64);
    fn log(&self, message: &str);
}
