//! CouchDB replication as pure Rust: parameters, ids, checkpoints and the
//! batch loop, written against a [`peer::Transport`] so the replicator
//! actor runs it over Durable Object stubs and `fetch`, and native tests
//! run it over the database engine.
//!
//! - [`params`]: the `_replicate` body / `_replicator` document.
//! - [`id`]: the job id (CouchDB's v4 inputs) and the checkpoint id
//!   (PouchDB's, so checkpoints are shared with PouchDB).
//! - [`checkpoint`]: the `_local` checkpoint document, choosing the start
//!   sequence from both ends' histories, backoff, dates.
//! - [`peer`]: the protocol spoken to one end.
//! - [`job`]: one batch at a time, with all state in a storable value.
//! - [`docs`]: the `_replicator` database's owner and credentials rules,
//!   and the terminal states the replicator writes into its documents.

pub mod checkpoint;
pub mod docs;
pub mod id;
pub mod job;
pub mod params;
pub mod peer;

/// The database whose documents define replication jobs.
pub const REPLICATOR_DB: &str = "_replicator";
