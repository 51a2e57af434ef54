//! The glue between Settee's actors and the Workers runtime, shared by
//! every Worker crate so none borrows it from another: Worker settings,
//! the [`shared::sql::Sql`] adapter over Durable Object SQLite, HTTP
//! conversion, and calls between actors built from
//! [`shared::actor_call`]'s typed operations (no actor URL is typed by
//! hand).
//!
//! Only the wasm build has anything here; native builds test the logic
//! these adapters carry in `shared` and the actor crates.

#[cfg(target_arch = "wasm32")]
pub mod do_sql;
#[cfg(target_arch = "wasm32")]
pub mod worker_http;

#[cfg(target_arch = "wasm32")]
mod calls;
#[cfg(target_arch = "wasm32")]
pub use calls::*;
