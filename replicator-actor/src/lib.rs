//! The replicator actors: one Durable Object per replication job, and one
//! registry of jobs and `_replicator` documents (the same class under the
//! name [`shared::actor_call::REGISTRY_NAME`]).
//!
//! The protocol itself is in [`shared::replication`]; this crate stores
//! jobs ([`job`]), keeps the registry ([`registry`]), processes
//! `_replicator` documents ([`doc_processor`]) and answers calls and
//! alarms ([`actor`], over a [`runtime::Runtime`]); `binding` is that
//! runtime on Workers: Durable Object stubs, `fetch`, alarms.

pub mod actor;
pub mod doc_processor;
pub mod job;
pub mod registry;
pub mod runtime;

#[cfg(target_arch = "wasm32")]
pub mod binding;

#[cfg(target_arch = "wasm32")]
pub use binding::ReplicatorActor;
