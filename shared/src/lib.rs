//! CouchDB semantics as pure Rust, shared by the router and the actors.
//!
//! Nothing here knows about the Workers runtime: every module is unit-tested
//! natively. Each module is one CouchDB concept.

pub mod active_tasks;
pub mod actor_call;
pub mod all_docs;
pub mod approx_distinct;
pub mod attachments;
pub mod changes;
pub mod collate;
pub mod config;
pub mod cors;
pub mod date;
pub mod db_name;
pub mod design_doc;
pub mod doc;
pub mod doc_read;
pub mod erlang_term;
pub mod error;
pub mod http;
pub mod jwt;
pub mod mango;
pub mod multipart;
pub mod node_config;
pub mod partition;
pub mod password;
pub mod purge;
pub mod replication;
pub mod rev;
pub mod rev_tree;
pub mod search;
pub mod security;
pub mod selector;
pub mod seq;
pub mod session;
pub mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod stats;
pub mod user;
pub mod users;
pub mod uuids;
pub mod view;
pub mod xorshift;

pub use error::{CouchError, CouchResult};
