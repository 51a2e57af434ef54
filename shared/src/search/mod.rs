//! Full-text search as CouchDB's `_search` defines it (Clouseau's Lucene
//! behind it there; SQLite's FTS5 in the database actor here): the parts
//! that need no storage.
//!
//! - [`query`]: Lucene's classic query syntax, parsed to a tree.
//! - [`analyzer`]: how text becomes terms, per analyzer name.
//! - [`plan`]: a query as FTS5 `MATCH` expressions and ranges.

pub mod analyzer;
pub mod plan;
pub mod query;
