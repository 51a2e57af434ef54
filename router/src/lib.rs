//! The entry Worker: the only code that faces clients.
//!
//! It authenticates, answers server-level endpoints, and forwards each
//! `/{db}/...` request to that database's actor. The bundle it builds also
//! carries the actor classes, linked in from their crates.

pub mod auth;
pub mod cluster;
pub mod dispatch;
pub mod fauxton;
pub mod node;
pub mod replication;
pub mod server;

#[cfg(target_arch = "wasm32")]
mod binding;

/// Keeps the actor crates linked so their Durable Object classes are
/// exported from this Worker's bundle.
#[cfg(target_arch = "wasm32")]
pub use db_actor::binding::{CatalogActor, DbActor};
#[cfg(target_arch = "wasm32")]
pub use replicator_actor::ReplicatorActor;
