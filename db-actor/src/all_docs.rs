//! `_all_docs`, `_design_docs` and `_local_docs`: the id-ordered indexes.

use crate::database::Database;
use serde_json::{json, Value};
use shared::all_docs::{AllDocsQuery, KeyRange};
use shared::doc_read::ReadOpts;
use shared::error::CouchResult;
use shared::rev::Rev;

/// Which id index a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    All,
    Design,
    Local,
}

impl Index {
    /// The id range the index itself covers.
    fn bounds(self) -> (Option<&'static str>, Option<&'static str>) {
        match self {
            Index::All => (None, None),
            Index::Design => (Some("_design/"), Some("_design0")),
            Index::Local => (None, None),
        }
    }

    /// The ids the index lists.
    fn span(self) -> KeyRange {
        let (lo, hi) = self.bounds();
        KeyRange {
            lo: lo.map(|s| (s.to_string(), true)),
            hi: hi.map(|s| (s.to_string(), false)),
            empty: false,
        }
    }
}

/// Intersects the query's bounds with the index's span.
fn id_range(q: &AllDocsQuery, index: Index) -> KeyRange {
    let mut r = KeyRange::from_query(q);
    let (span_lo, span_hi) = index.bounds();
    if let Some(lo) = span_lo {
        if r.lo.as_ref().is_none_or(|(l, _)| l.as_str() < lo) {
            r.lo = Some((lo.to_string(), true));
        }
    }
    if let Some(hi) = span_hi {
        if r.hi.as_ref().is_none_or(|(h, _)| h.as_str() >= hi) {
            r.hi = Some((hi.to_string(), false));
        }
    }
    r
}

/// The part of the index before the first row a query returns (for `offset`).
fn before_range(range: &KeyRange, span: KeyRange, descending: bool) -> KeyRange {
    if range.empty {
        return span;
    }
    if descending {
        match &range.hi {
            Some((h, incl)) => KeyRange {
                lo: Some((h.clone(), !incl)),
                ..span
            },
            None => KeyRange {
                empty: true,
                ..span
            },
        }
    } else {
        match &range.lo {
            Some((l, incl)) => KeyRange {
                hi: Some((l.clone(), !incl)),
                ..span
            },
            None => KeyRange {
                empty: true,
                ..span
            },
        }
    }
}

impl Database<'_> {
    /// Answers an `_all_docs`-style query as CouchDB's JSON body.
    pub fn all_docs(&self, q: &AllDocsQuery, index: Index) -> CouchResult<Vec<u8>> {
        let meta = self.meta()?;
        let stats = self.store.stats()?;
        let mut rows: Vec<Vec<u8>> = Vec::new();
        let (total, offset): (Value, Value) = if let Some(keys) = &q.keys {
            let iter: Box<dyn Iterator<Item = &Value>> = if q.descending {
                Box::new(keys.iter().rev())
            } else {
                Box::new(keys.iter())
            };
            let limit = q.limit.unwrap_or(u64::MAX) as usize;
            for key in iter.skip(q.skip as usize).take(limit) {
                rows.push(self.key_row(key, q, index)?);
            }
            (self.total_rows(index, stats.doc_count)?, Value::Null)
        } else {
            let range = id_range(q, index);
            let limit = q.limit.unwrap_or(u64::MAX);
            if index == Index::Local {
                for (id, rev, body) in self.store.local_docs(&range, q.descending, q.skip, limit)? {
                    rows.push(local_row(&id, rev, q.include_docs.then_some(&body[..])));
                }
                (Value::Null, Value::Null)
            } else {
                for (id, rev) in self.store.live_ids(&range, q.descending, q.skip, limit)? {
                    rows.push(self.doc_row(&id, &rev, false, q)?);
                }
                // A partition's counts are its own: their cost does not grow
                // with the other partitions.
                let (span, total) = match &q.partition {
                    Some(p) => {
                        let span = shared::partition::scope_ids(KeyRange::default(), p);
                        let total = json!(self.store.count_live(&span)?);
                        (span, total)
                    }
                    None => (index.span(), self.total_rows(index, stats.doc_count)?),
                };
                let before = self
                    .store
                    .count_live(&before_range(&range, span, q.descending))?;
                (total, json!(before + q.skip))
            }
        };
        let mut out = Vec::with_capacity(rows.iter().map(|r| r.len() + 2).sum::<usize>() + 64);
        out.extend_from_slice(format!("{{\"total_rows\":{total},\"offset\":{offset},").as_bytes());
        if q.update_seq {
            out.extend_from_slice(
                format!("\"update_seq\":{},", json!(meta.seq(stats.update_seq))).as_bytes(),
            );
        }
        out.extend_from_slice(b"\"rows\":[");
        for (i, r) in rows.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            out.extend_from_slice(r);
        }
        out.extend_from_slice(b"\n]}");
        Ok(out)
    }

    fn total_rows(&self, index: Index, doc_count: u64) -> CouchResult<Value> {
        Ok(match index {
            Index::All => json!(doc_count),
            Index::Design => json!(self.store.count_live(&KeyRange {
                lo: Some(("_design/".into(), true)),
                hi: Some(("_design0".into(), false)),
                empty: false,
            })?),
            Index::Local => Value::Null,
        })
    }

    /// One row of a `keys` query: the document, a deleted marker, or
    /// `not_found`.
    fn key_row(&self, key: &Value, q: &AllDocsQuery, index: Index) -> CouchResult<Vec<u8>> {
        let not_found =
            || serde_json::to_vec(&json!({"key": key, "error": "not_found"})).expect("json");
        let Some(id) = key.as_str() else {
            return Ok(not_found());
        };
        if index == Index::Local {
            return Ok(match self.store.local_doc(id)? {
                Some((rev, body)) => local_row(id, rev, q.include_docs.then_some(&body[..])),
                None => not_found(),
            });
        }
        match self.store.load_doc(id)? {
            Some(rec) if index == Index::All || id.starts_with("_design/") => {
                self.doc_row(id, &rec.winner.to_string(), rec.deleted, q)
            }
            _ => Ok(not_found()),
        }
    }

    fn doc_row(
        &self,
        id: &str,
        rev: &str,
        deleted: bool,
        q: &AllDocsQuery,
    ) -> CouchResult<Vec<u8>> {
        let mut row = row_head(id, rev, deleted);
        if q.include_docs {
            row.extend_from_slice(b",\"doc\":");
            if deleted {
                row.extend_from_slice(b"null");
            } else {
                let rev: Rev = rev.parse()?;
                let doc = if q.conflicts || q.attachments || q.att_encoding_info {
                    let rec = self.require_doc(id)?;
                    let opts = ReadOpts {
                        conflicts: q.conflicts,
                        attachments: q.attachments,
                        att_encoding_info: q.att_encoding_info,
                        ..Default::default()
                    };
                    self.render_rev(&rec, &rev, &opts)?
                } else {
                    let body = self.stored_body(id, &rev)?;
                    body.map(|b| shared::doc::render(id, &rev.to_string(), false, &b, &[]))
                };
                row.extend_from_slice(doc.as_deref().unwrap_or(b"null"));
            }
        }
        row.push(b'}');
        Ok(row)
    }
}

fn local_row(id: &str, rev: u64, body: Option<&[u8]>) -> Vec<u8> {
    let rev = format!("0-{rev}");
    let mut row = row_head(id, &rev, false);
    if let Some(body) = body {
        row.extend_from_slice(b",\"doc\":");
        row.extend_from_slice(&shared::doc::render(id, &rev, false, body, &[]));
    }
    row.push(b'}');
    row
}

/// A row up to its value: `{"id":…,"key":…,"value":{"rev":…}` (the
/// caller adds `doc` and the closing brace). Written directly: it is
/// built once per row of every page.
fn row_head(id: &str, rev: &str, deleted: bool) -> Vec<u8> {
    let quoted = serde_json::to_vec(id).expect("a string serialises");
    let mut row = Vec::with_capacity(2 * quoted.len() + rev.len() + 48);
    row.extend_from_slice(b"{\"id\":");
    row.extend_from_slice(&quoted);
    row.extend_from_slice(b",\"key\":");
    row.extend_from_slice(&quoted);
    row.extend_from_slice(b",\"value\":{\"rev\":");
    serde_json::to_writer(&mut row, rev).expect("a string serialises");
    if deleted {
        row.extend_from_slice(b",\"deleted\":true");
    }
    row.push(b'}');
    row
}
