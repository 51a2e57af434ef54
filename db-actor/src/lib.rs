//! The database actor: one Durable Object per CouchDB database.
//!
//! Everything but `binding` is runtime-neutral and tested natively over
//! `rusqlite`; `binding` is the Durable Object classes, over the `platform`
//! crate's SQLite and HTTP adapters.

pub mod access;
pub mod actor;
pub mod all_docs;
pub mod api;
pub mod attachments;
pub mod bucket_sync;
pub mod build_budget;
pub mod build_scheduler;
pub mod bulk;
pub mod catalog;
pub mod changes;
pub mod database;
pub mod design;
pub mod documents;
pub mod feed;
pub mod groups;
pub mod js;
pub mod local_docs;
pub mod mango;
pub mod purge;
pub mod reducer;
pub mod reductions;
pub mod remote;
pub mod reply;
pub mod search;
pub mod search_store;
pub mod store;
pub mod subscriptions;
pub mod views;

#[cfg(target_arch = "wasm32")]
pub mod binding;

pub use database::Database;
