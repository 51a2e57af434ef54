//! Full-text search as CouchDB's `_search` defines it (Clouseau's Lucene
//! behind it there; SQLite's FTS5 in the database actor here): the parts
//! that need no storage.
//!
//! - [`query`]: Lucene's classic query syntax, parsed to a tree.
//! - [`analyzer`]: how text becomes terms, per analyzer name.
//! - [`plan`]: a query as FTS5 `MATCH` expressions and ranges.
//! - [`index_def`]: an index as a design document defines it.
//! - [`mango_text`]: Mango `text` indexes: documents' typed fields, selectors as queries.
//! - [`document`]: what an index keeps of a document.
//! - [`request`]: a query's parameters.
//! - [`results`]: ordering, paging, facets and highlights of the matches.

pub mod analyzer;
pub mod document;
pub mod index_def;
pub mod mango_text;
pub mod plan;
pub mod query;
pub mod request;
pub mod results;
