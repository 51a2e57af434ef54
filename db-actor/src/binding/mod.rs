//! The Durable Object classes: `DbActor` (one per database) and
//! `CatalogActor` (the single list of databases). Everything here
//! translates between the Workers runtime and the engine; the logic it
//! drives (requests, bucket sync, build scheduling, subscriptions, feeds'
//! pages) is in the runtime-neutral modules and tested natively.

mod catalog_actor;
mod database_actor;
mod feeds;
mod runtime;

pub use catalog_actor::CatalogActor;
pub use database_actor::DbActor;
