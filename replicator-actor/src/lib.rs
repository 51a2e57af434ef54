//! The replicator actors: one Durable Object per replication job, and one
//! registry of jobs and `_replicator` documents (the same class under the
//! name [`shared::actor_call::REGISTRY_NAME`]).
//!
//! The protocol itself is in [`shared::replication`]; this crate stores
//! jobs ([`job`]), keeps the registry ([`registry`]) and, in `binding`,
//! drives jobs with alarms over Durable Object stubs and `fetch`.

pub mod job;
pub mod registry;

#[cfg(target_arch = "wasm32")]
pub mod binding;

#[cfg(target_arch = "wasm32")]
pub use binding::ReplicatorActor;
