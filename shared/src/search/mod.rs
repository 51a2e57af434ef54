//! Full-text search as CouchDB's `_search` defines it (Clouseau's Lucene
//! behind it there; SQLite's FTS5 in the database actor here): the parts
//! that need no storage.
//!
//! - [`query`]: Lucene's classic query syntax, parsed to a tree.
//! - [`analyzer`]: how text becomes terms, per analyzer name.

pub mod analyzer;
pub mod query;
