//! Storage of full-text search indexes, over the same SQL interface as
//! the rest of the database.
//!
//! Every index has a row in `search_indexes` (its signature and how far
//! it is built) and two tables of its own, made when it is: an FTS5 table
//! `search_fts_{id}` whose rows are documents' tokens (see
//! `shared::search::plan::token`), and the `fts5vocab` table
//! `search_vocab_{id}` over it, whose `instance` rows are (term,
//! document) pairs in term order, for string ranges. `search_docs` gives
//! each indexed document of each index a row id (the FTS5 rowid, and
//! Lucene's document number in `order`); `search_values` holds the
//! documents' field values for numeric ranges, sorting, stored fields,
//! facets and highlights.

use shared::error::CouchResult;
use shared::search::document::{FieldValue, Indexed};
use shared::search::plan::{Bound, Plan};
use shared::search::results::Hit;
use shared::sql::{Sql, Value, MAX_BOUND_PARAMS};
use std::collections::HashMap;

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS search_indexes (id INTEGER PRIMARY KEY, sig TEXT NOT NULL UNIQUE, \
     seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS search_docs (id INTEGER PRIMARY KEY, idx INTEGER NOT NULL, \
     doc_id TEXT NOT NULL, UNIQUE (idx, doc_id))",
    "CREATE TABLE IF NOT EXISTS search_values (doc INTEGER NOT NULL, idx INTEGER NOT NULL, \
     field TEXT NOT NULL, num REAL, str TEXT, store INTEGER NOT NULL, facet INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS search_values_by_field ON search_values (idx, field, num)",
    "CREATE INDEX IF NOT EXISTS search_values_by_doc ON search_values (doc)",
];

pub const TABLES: &[&str] = &["search_indexes", "search_docs", "search_values"];

/// An indexed document's id and field values: (name, value, stored).
pub type StoredRow = (String, Vec<(String, FieldValue, bool)>);

pub struct SearchStore<'a> {
    pub sql: &'a dyn Sql,
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn field_value(num: &Value, text: &Value) -> FieldValue {
    match (num, text) {
        (Value::Real(n), _) => FieldValue::Number(*n),
        (Value::Integer(n), _) => FieldValue::Number(*n as f64),
        (_, Value::Text(s)) => FieldValue::Text(s.clone()),
        _ => FieldValue::Text(String::new()),
    }
}

impl SearchStore<'_> {
    /// The storage id and sequence of the index with signature `sig`,
    /// made empty when new.
    pub fn index(&self, sig: &str) -> CouchResult<(i64, u64)> {
        if let Some(r) = self.sql.query_row(
            "SELECT id, seq FROM search_indexes WHERE sig = ?",
            &[sig.into()],
        )? {
            return Ok((int(&r[0]), int(&r[1]) as u64));
        }
        self.sql.exec(
            "INSERT INTO search_indexes (sig, seq) VALUES (?, 0)",
            &[sig.into()],
        )?;
        let id = self
            .sql
            .query_i64("SELECT id FROM search_indexes WHERE sig = ?", &[sig.into()])?;
        self.sql.exec(
            &format!("CREATE VIRTUAL TABLE search_fts_{id} USING fts5(t, tokenize = 'ascii')"),
            &[],
        )?;
        self.sql.exec(
            &format!(
                "CREATE VIRTUAL TABLE search_vocab_{id} USING fts5vocab(search_fts_{id}, instance)"
            ),
            &[],
        )?;
        Ok((id, 0))
    }

    /// How far the index with signature `sig` is built, if it exists.
    pub fn seq(&self, sig: &str) -> CouchResult<Option<u64>> {
        Ok(self
            .sql
            .query_row(
                "SELECT seq FROM search_indexes WHERE sig = ?",
                &[sig.into()],
            )?
            .map(|r| int(&r[0]) as u64))
    }

    pub fn set_seq(&self, idx: i64, seq: u64) -> CouchResult<()> {
        self.sql.exec(
            "UPDATE search_indexes SET seq = ? WHERE id = ?",
            &[seq.into(), idx.into()],
        )?;
        Ok(())
    }

    pub fn signatures(&self) -> CouchResult<Vec<(i64, String)>> {
        Ok(self
            .sql
            .query("SELECT id, sig FROM search_indexes", &[])?
            .into_iter()
            .map(|r| (int(&r[0]), r[1].as_str().unwrap_or_default().to_string()))
            .collect())
    }

    pub fn drop_index(&self, idx: i64) -> CouchResult<()> {
        self.sql
            .exec(&format!("DROP TABLE IF EXISTS search_vocab_{idx}"), &[])?;
        self.sql
            .exec(&format!("DROP TABLE IF EXISTS search_fts_{idx}"), &[])?;
        for t in [
            "search_values WHERE idx",
            "search_docs WHERE idx",
            "search_indexes WHERE id",
        ] {
            self.sql
                .exec(&format!("DELETE FROM {t} = ?"), &[idx.into()])?;
        }
        Ok(())
    }

    /// Drops every index's own tables (the database is being wiped).
    pub fn drop_all(&self) -> CouchResult<()> {
        for (idx, _) in self.signatures()? {
            self.drop_index(idx)?;
        }
        Ok(())
    }

    /// Removes documents `doc_ids` from an index.
    pub fn remove(&self, idx: i64, doc_ids: &[&str]) -> CouchResult<()> {
        for chunk in doc_ids.chunks(MAX_BOUND_PARAMS - 1) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut params: Vec<Value> = vec![idx.into()];
            params.extend(chunk.iter().map(|&id| id.into()));
            let rows = self.sql.query(
                &format!(
                    "DELETE FROM search_docs WHERE idx = ? AND doc_id IN ({marks}) RETURNING id"
                ),
                &params,
            )?;
            if rows.is_empty() {
                continue;
            }
            let gone: Vec<Value> = rows.iter().map(|r| int(&r[0]).into()).collect();
            let marks = vec!["?"; gone.len()].join(", ");
            self.sql.exec(
                &format!("DELETE FROM search_fts_{idx} WHERE rowid IN ({marks})"),
                &gone,
            )?;
            self.sql.exec(
                &format!("DELETE FROM search_values WHERE doc IN ({marks})"),
                &gone,
            )?;
        }
        Ok(())
    }

    /// Adds documents (none of them in the index) with what they
    /// indexed, several rows per statement. Row ids are given here, after
    /// the largest so far (one writer: the transaction's).
    pub fn add(&self, idx: i64, docs: &[(&str, Indexed)]) -> CouchResult<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let first = self
            .sql
            .query_i64("SELECT coalesce(max(id), 0) FROM search_docs", &[])?
            + 1;
        let rows: Vec<(i64, &str, &Indexed)> = docs
            .iter()
            .enumerate()
            .map(|(n, (id, d))| (first + n as i64, *id, d))
            .collect();
        self.insert_rows(
            "search_docs (id, idx, doc_id)",
            3,
            rows.iter()
                .map(|(row, id, _)| vec![(*row).into(), idx.into(), (*id).into()]),
        )?;
        self.insert_rows(
            &format!("search_fts_{idx} (rowid, t)"),
            2,
            rows.iter()
                .filter(|(_, _, d)| !d.text.is_empty())
                .map(|(row, _, d)| vec![(*row).into(), d.text.as_str().into()]),
        )?;
        self.insert_rows(
            "search_values (doc, idx, field, num, str, store, facet)",
            7,
            rows.iter().flat_map(|(row, _, d)| {
                d.fields.iter().map(move |f| {
                    let (num, text) = match &f.value {
                        FieldValue::Number(n) => (Value::Real(*n), Value::Null),
                        FieldValue::Text(s) => (Value::Null, Value::Text(s.clone())),
                    };
                    vec![
                        (*row).into(),
                        idx.into(),
                        f.name.as_str().into(),
                        num,
                        text,
                        f.store.into(),
                        f.facet.into(),
                    ]
                })
            }),
        )
    }

    /// Inserts rows of `columns` values each into `table`, as many per
    /// statement as the platform's parameter limit allows.
    fn insert_rows(
        &self,
        table: &str,
        columns: usize,
        rows: impl Iterator<Item = Vec<Value>>,
    ) -> CouchResult<()> {
        let per = MAX_BOUND_PARAMS / columns;
        let mark = format!("({})", vec!["?"; columns].join(", "));
        let mut params: Vec<Value> = Vec::with_capacity(per * columns);
        let flush = |params: &mut Vec<Value>| -> CouchResult<()> {
            if params.is_empty() {
                return Ok(());
            }
            let marks = vec![mark.as_str(); params.len() / columns].join(", ");
            self.sql
                .exec(&format!("INSERT INTO {table} VALUES {marks}"), params)?;
            params.clear();
            Ok(())
        };
        for row in rows {
            params.extend(row);
            if params.len() == per * columns {
                flush(&mut params)?;
            }
        }
        flush(&mut params)
    }

    /// Documents in the index.
    pub fn count(&self, idx: i64) -> CouchResult<u64> {
        Ok(self.sql.query_i64(
            "SELECT count(*) FROM search_docs WHERE idx = ?",
            &[idx.into()],
        )? as u64)
    }

    /// The documents a plan matches, each with its score: FTS5's `bm25`
    /// for terms (negated: higher is better), summed where clauses
    /// combine; 1 for ranges and `*:*`, which Lucene scores constantly.
    pub fn matches(&self, idx: i64, plan: &Plan) -> CouchResult<HashMap<i64, f64>> {
        let scored = |sql: String, params: Vec<Value>| -> CouchResult<HashMap<i64, f64>> {
            Ok(self
                .sql
                .query(&sql, &params)?
                .into_iter()
                .map(|r| {
                    let score = match &r[1] {
                        Value::Real(f) => *f,
                        v => v.as_i64().unwrap_or(1) as f64,
                    };
                    (int(&r[0]), score)
                })
                .collect())
        };
        Ok(match plan {
            Plan::Nothing => HashMap::new(),
            Plan::All => scored(
                "SELECT id, 1 FROM search_docs WHERE idx = ?".into(),
                vec![idx.into()],
            )?,
            Plan::Match(m) => scored(
                format!(
                    "SELECT rowid, -bm25(search_fts_{idx}) FROM search_fts_{idx} \
                     WHERE search_fts_{idx} MATCH ?"
                ),
                vec![m.as_str().into()],
            )?,
            Plan::Range {
                field,
                lower,
                upper,
                numeric: true,
            } => {
                let mut sql =
                    "SELECT DISTINCT doc, 1 FROM search_values WHERE idx = ? AND field = ? \
                     AND num IS NOT NULL"
                        .to_string();
                let mut params: Vec<Value> = vec![idx.into(), field.as_str().into()];
                for (b, op) in [(lower, ">"), (upper, "<")] {
                    if let Some(Bound { value, inclusive }) = b {
                        let n: f64 = value.parse().unwrap_or(0.0);
                        // JSON has no infinities: an infinite end is no
                        // bound outward and excludes everything inward.
                        if n.is_infinite() {
                            if (n > 0.0) == (op == ">") {
                                sql.push_str(" AND 0");
                            }
                            continue;
                        }
                        let eq = if *inclusive { "=" } else { "" };
                        sql.push_str(&format!(" AND num {op}{eq} ?"));
                        params.push(Value::Real(n));
                    }
                }
                scored(sql, params)?
            }
            Plan::Range {
                field,
                lower,
                upper,
                numeric: false,
            } => {
                // Terms of the field sort between its token prefix and
                // the prefix's end (`z` is the separator, `{` follows it).
                use shared::search::plan::token;
                let low = match lower {
                    Some(b) => (token(field, &b.value), b.inclusive),
                    None => (token(field, ""), true),
                };
                let high = match upper {
                    Some(b) => (token(field, &b.value), b.inclusive),
                    None => (
                        format!("{}{{", token(field, "").trim_end_matches('z')),
                        false,
                    ),
                };
                let op = |incl: bool, o: &str| format!("{o}{}", if incl { "=" } else { "" });
                scored(
                    format!(
                        "SELECT DISTINCT doc, 1 FROM search_vocab_{idx} WHERE term {} ? AND term {} ?",
                        op(low.1, ">"),
                        op(high.1, "<")
                    ),
                    vec![low.0.into(), high.0.into()],
                )?
            }
            Plan::And(plans) => {
                let mut sets = plans.iter().map(|p| self.matches(idx, p));
                let mut acc = sets.next().transpose()?.unwrap_or_default();
                for s in sets {
                    let s = s?;
                    acc = acc
                        .into_iter()
                        .filter_map(|(row, score)| s.get(&row).map(|o| (row, score + o)))
                        .collect();
                }
                acc
            }
            Plan::Or(plans) => {
                let mut acc: HashMap<i64, f64> = HashMap::new();
                for p in plans {
                    for (row, score) in self.matches(idx, p)? {
                        *acc.entry(row).or_default() += score;
                    }
                }
                acc
            }
            Plan::AndNot(base, not) => {
                let not = self.matches(idx, not)?;
                let mut base = self.matches(idx, base)?;
                base.retain(|row, _| !not.contains_key(row));
                base
            }
        })
    }

    /// Every value of `field` in the index, by document.
    pub fn values(&self, idx: i64, field: &str) -> CouchResult<Vec<(i64, FieldValue)>> {
        Ok(self
            .sql
            .query(
                "SELECT doc, num, str FROM search_values WHERE idx = ? AND field = ? ORDER BY rowid",
                &[idx.into(), field.into()],
            )?
            .into_iter()
            .map(|r| (int(&r[0]), field_value(&r[1], &r[2])))
            .collect())
    }

    /// Documents of partition `p`.
    pub fn in_partition(&self, idx: i64, p: &str) -> CouchResult<Vec<i64>> {
        Ok(self
            .sql
            .query(
                "SELECT id FROM search_docs WHERE idx = ? AND doc_id >= ? AND doc_id < ?",
                &[idx.into(), format!("{p}:").into(), format!("{p};").into()],
            )?
            .iter()
            .map(|r| int(&r[0]))
            .collect())
    }

    /// Documents that have the string `value` in `field` (drilldown).
    pub fn having(&self, idx: i64, field: &str, value: &str) -> CouchResult<Vec<i64>> {
        Ok(self
            .sql
            .query(
                "SELECT doc FROM search_values WHERE idx = ? AND field = ? AND str = ?",
                &[idx.into(), field.into(), value.into()],
            )?
            .iter()
            .map(|r| int(&r[0]))
            .collect())
    }

    /// The document ids of some indexed documents, by row.
    pub fn doc_ids(&self, rows: &[i64]) -> CouchResult<HashMap<i64, String>> {
        let mut out = HashMap::with_capacity(rows.len());
        for chunk in rows.chunks(MAX_BOUND_PARAMS) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let params: Vec<Value> = chunk.iter().map(|&r| r.into()).collect();
            for mut r in self.sql.query(
                &format!("SELECT id, doc_id FROM search_docs WHERE id IN ({marks})"),
                &params,
            )? {
                let id = std::mem::replace(&mut r[1], Value::Null)
                    .into_string()
                    .unwrap_or_default();
                out.insert(int(&r[0]), id);
            }
        }
        Ok(out)
    }

    /// The document ids and field values of some hits: every field when
    /// `all`, else only the stored ones.
    pub fn rows(&self, hits: &[Hit], all: bool) -> CouchResult<HashMap<i64, StoredRow>> {
        let rows: Vec<i64> = hits.iter().map(|h| h.row).collect();
        let mut out: HashMap<i64, StoredRow> = self
            .doc_ids(&rows)?
            .into_iter()
            .map(|(row, id)| (row, (id, Vec::new())))
            .collect();
        for chunk in rows.chunks(MAX_BOUND_PARAMS) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let params: Vec<Value> = chunk.iter().map(|&r| r.into()).collect();
            let only = if all { "" } else { " AND store = 1" };
            for r in self.sql.query(
                &format!(
                    "SELECT doc, field, num, str, store FROM search_values \
                     WHERE doc IN ({marks}){only} ORDER BY rowid"
                ),
                &params,
            )? {
                if let Some((_, fields)) = out.get_mut(&int(&r[0])) {
                    fields.push((
                        r[1].as_str().unwrap_or_default().to_string(),
                        field_value(&r[2], &r[3]),
                        int(&r[4]) == 1,
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Sizes for `_search_info`: documents and FTS5 rows' bytes, about.
    pub fn disk_size(&self, idx: i64) -> CouchResult<u64> {
        let n = self.sql.query_i64(
            &format!("SELECT coalesce(sum(length(t)), 0) FROM search_fts_{idx}"),
            &[],
        )?;
        let v = self.sql.query_i64(
            "SELECT coalesce(sum(length(field) + coalesce(length(str), 8)), 0) FROM search_values WHERE idx = ?",
            &[idx.into()],
        )?;
        Ok((n + v) as u64)
    }
}
