//! Full-text search over the database, as CouchDB's `_search` (Clouseau)
//! and `_nouveau` answer it, on SQLite's FTS5 ([`crate::search_store`]):
//! indexes follow the update sequence as views do (built in batches
//! within the invocation's budget, continued by the actor's alarm,
//! dropped by `_view_cleanup`); queries are parsed and planned by
//! `shared::search`, matched here, and ordered, paged and faceted by
//! `shared::search::results`.

use crate::database::Database;
use crate::design::{compile_query, failure, Role};
use crate::js::JsError;
use crate::search_store::SearchStore;
use crate::store::DocRecord;
use crate::views::MapBatch;
use serde_json::{json, Map, Value};
use shared::doc_read::ReadOpts;
use shared::error::{CouchError, CouchResult};
use shared::search::document::{FieldValue, Indexed};
use shared::search::index_def::{Kind, SearchDef, Source};
use shared::search::mango_text::TextDef;
use shared::search::request::{pack_bookmark, SearchQuery, SortKey};
use shared::search::results::{self, Highlight, Hit};
use shared::search::{plan, query};
use shared::view::{IndexKind, IndexName};
use std::collections::{HashMap, HashSet};

/// A search index resolved from its design document.
pub struct SearchIndex {
    pub name: IndexName,
    pub def: SearchDef,
    pub ddoc: Map<String, Value>,
}

impl SearchIndex {
    /// Every search and Nouveau index of a design document (`ddoc` with
    /// or without `_design/`).
    pub fn all(ddoc: &str, body: &Map<String, Value>) -> Vec<SearchIndex> {
        let ddoc = ddoc.trim_start_matches("_design/");
        [Kind::Search, Kind::Nouveau]
            .into_iter()
            .flat_map(|kind| {
                SearchDef::all(body, kind)
                    .into_iter()
                    .map(move |(name, def)| SearchIndex {
                        name: IndexName {
                            ddoc: ddoc.to_string(),
                            kind: IndexKind::Search(kind),
                            name,
                        },
                        def,
                        ddoc: body.clone(),
                    })
            })
            .collect()
    }
}

impl Database<'_> {
    pub(crate) fn search_store(&self) -> SearchStore<'_> {
        SearchStore {
            sql: self.store.sql,
        }
    }

    pub(crate) fn resolve_search(
        &self,
        ddoc: &str,
        kind: Kind,
        name: &str,
    ) -> CouchResult<SearchIndex> {
        let body = self.design_doc(ddoc)?;
        Ok(SearchIndex {
            def: SearchDef::from_design_doc(&body, kind, name)?,
            name: IndexName {
                ddoc: ddoc.to_string(),
                kind: IndexKind::Search(kind),
                name: name.to_string(),
            },
            ddoc: body,
        })
    }

    /// Brings a search index up to the update sequence, as far as the
    /// budget goes (false if it ran out). Design documents are not
    /// indexed (as in CouchDB); a document whose function throws is left
    /// out and logged.
    pub(crate) fn update_search(&self, s: &SearchIndex, idx: i64, seq: u64) -> CouchResult<bool> {
        let ddoc = Value::Object(s.ddoc.clone());
        let store = self.search_store();
        let fresh = seq == 0;
        let nouveau = s.def.kind == Kind::Nouveau;
        if let Source::Mango(text) = &s.def.source {
            return self.update_mango_text(s, text, idx, seq);
        }
        let Source::Js(function) = &s.def.source else {
            unreachable!("the other source");
        };
        let run = |batch: &mut MapBatch| -> CouchResult<()> {
            let compiled = compile_query(function, &ddoc, "index")?;
            let (engine, f) = &*compiled;
            batch.with_json(|json, ids| {
                let results = engine
                    .index_many(*f, json, nouveau)
                    .map_err(|e| failure("index", Role::Query, &e))?;
                let mut docs = Vec::with_capacity(ids.len());
                for (id, result) in ids.iter().zip(results) {
                    match result {
                        Ok(fields) => {
                            docs.push((id.as_str(), Indexed::new(fields, &s.def.analyzer)))
                        }
                        Err(thrown) => tracing::info!(
                            doc = %id,
                            "search index function raised exception ({}): document skipped",
                            JsError::Thrown(thrown)
                        ),
                    }
                }
                store.add(idx, &docs)
            })
        };
        let mut batch = MapBatch::default();
        let step = |recs: &[(DocRecord, Option<Vec<u8>>)]| -> CouchResult<()> {
            reindex(&store, idx, fresh, recs, |rec, body| {
                if batch.add(rec, body, false) && batch.full() {
                    run(&mut batch)?;
                }
                Ok(())
            })?;
            if !batch.is_empty() {
                run(&mut batch)?;
            }
            Ok(())
        };
        self.follow_changes(seq, step, |seq| store.set_seq(idx, seq))
    }

    /// [`Self::update_search`] for a Mango `text` index, whose fields come
    /// from each document's JSON, no function run.
    fn update_mango_text(
        &self,
        s: &SearchIndex,
        text: &TextDef,
        idx: i64,
        seq: u64,
    ) -> CouchResult<bool> {
        let store = self.search_store();
        let fresh = seq == 0;
        let step = |recs: &[(DocRecord, Option<Vec<u8>>)]| -> CouchResult<()> {
            let mut docs = Vec::with_capacity(recs.len());
            reindex(&store, idx, fresh, recs, |rec, body| {
                let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(body) else {
                    return Ok(());
                };
                doc.insert("_id".into(), json!(rec.id));
                doc.insert("_rev".into(), json!(rec.winner.to_string()));
                if let Some(fields) = text.entries(&Value::Object(doc)) {
                    docs.push((rec.id.as_str(), Indexed::new(fields, &s.def.analyzer)));
                }
                Ok(())
            })?;
            store.add(idx, &docs)
        };
        self.follow_changes(seq, step, |seq| store.set_seq(idx, seq))
    }

    /// The index of `s`, updated unless the query says not to; a build
    /// longer than the budget is left to the alarm, as for views.
    fn fresh_search(&self, s: &SearchIndex, stale: bool) -> CouchResult<i64> {
        let (idx, seq) = self.transact(|| self.search_store().index(&s.def.signature()))?;
        if !stale && !self.update_search(s, idx, seq)? {
            self.builds.wait_for(s.name.clone());
            return Err(CouchError::new(
                500,
                "timeout",
                "The search index is still being built; retry the request",
            ));
        }
        Ok(idx)
    }

    /// `GET|POST /db/_design/{ddoc}/_search/{name}` (and `_nouveau`).
    pub fn search(
        &self,
        ddoc: &str,
        kind: Kind,
        name: &str,
        q: &SearchQuery,
    ) -> CouchResult<Value> {
        let s = self.resolve_search(ddoc, kind, name)?;
        let Matched {
            idx,
            parsed,
            matched,
        } = self.matched(&s, q)?;
        let store = self.search_store();
        let hits: Vec<Hit> = matched
            .iter()
            .map(|(&row, &score)| Hit { row, score })
            .collect();
        // Each document's first value of each field sorted by.
        let mut sort_values: HashMap<&str, HashMap<i64, FieldValue>> = HashMap::new();
        for k in &q.sort {
            if let SortKey::Field { name, .. } = k {
                let mut firsts = HashMap::new();
                for (row, v) in store.values(idx, name)? {
                    firsts.entry(row).or_insert(v);
                }
                sort_values.insert(name, firsts);
            }
        }
        let value_of = |row: i64, f: &str| sort_values.get(f).and_then(|m| m.get(&row)).cloned();
        let page = results::page(
            &hits,
            &q.sort,
            q.after.as_deref(),
            q.limit as usize,
            &value_of,
        );
        let page_hits: Vec<Hit> = page.iter().map(|(h, _)| h.clone()).collect();
        let highlighting = q.highlight_fields.as_ref().filter(|f| !f.is_empty());
        let mut data = store.rows(&page_hits, highlighting.is_some())?;
        let terms: Vec<(String, _)> = highlighting
            .into_iter()
            .flatten()
            .map(|f| (f.clone(), results::query_terms(&parsed, f, &s.def.analyzer)))
            .collect();
        let h = Highlight {
            pre: &q.highlight_pre_tag,
            post: &q.highlight_post_tag,
            number: q.highlight_number as usize,
            size: q.highlight_size as usize,
        };
        let mut rows = Vec::with_capacity(page.len());
        for (hit, order) in &page {
            let Some((id, values)) = data.remove(&hit.row) else {
                continue;
            };
            let mut row = Map::new();
            row.insert("id".into(), json!(id));
            row.insert(
                "order".into(),
                match kind {
                    Kind::Search => json!(order),
                    Kind::Nouveau => nouveau_order(order),
                },
            );
            let mut highlights = Map::new();
            for (field, t) in &terms {
                let mut frags = Vec::new();
                for (_, v, _) in values.iter().filter(|(n, _, _)| n == field) {
                    if let FieldValue::Text(text) = v {
                        frags.extend(results::highlight(
                            text,
                            s.def.analyzer.for_field(field),
                            t,
                            &h,
                        ));
                    }
                }
                highlights.insert(field.clone(), json!(frags));
            }
            let stored: Vec<(String, FieldValue)> = values
                .into_iter()
                .filter(|(_, _, store)| *store)
                .map(|(n, v, _)| (n, v))
                .collect();
            row.insert(
                "fields".into(),
                Value::Object(results::stored_fields(stored, q.include_fields.as_deref())),
            );
            if !terms.is_empty() {
                row.insert("highlights".into(), Value::Object(highlights));
            }
            if q.include_docs {
                let doc = match self.get_doc(&id, None, &ReadOpts::default()) {
                    Ok((_, body)) => serde_json::from_slice(&body)?,
                    Err(_) => Value::Null,
                };
                row.insert("doc".into(), doc);
            }
            rows.push(Value::Object(row));
        }
        let bookmark = match page.last() {
            Some((_, order)) => pack_bookmark(order),
            None => pack_bookmark(q.after.as_deref().unwrap_or_default()),
        };
        // Facets count every match, not only the page's.
        let facet_values = |f: &str| -> CouchResult<Vec<(i64, FieldValue)>> {
            Ok(store
                .values(idx, f)?
                .into_iter()
                .filter(|(row, _)| matched.contains_key(row))
                .collect())
        };
        let load = |fields: Vec<&String>| -> CouchResult<HashMap<String, Vec<(i64, FieldValue)>>> {
            fields
                .into_iter()
                .map(|f| Ok((f.clone(), facet_values(f)?)))
                .collect()
        };
        let counts = match &q.counts {
            Some(fields) => {
                let loaded = load(fields.iter().collect())?;
                Some(results::counts(fields, &|f| {
                    loaded.get(f).cloned().unwrap_or_default()
                }))
            }
            None => None,
        };
        let ranges = match &q.ranges {
            Some(spec) => {
                let spec = match kind {
                    Kind::Search => spec.clone(),
                    Kind::Nouveau => nouveau_ranges(spec)?,
                };
                let loaded = load(spec.keys().collect())?;
                Some(results::ranges(&spec, &|f| {
                    loaded.get(f).cloned().unwrap_or_default()
                })?)
            }
            None => None,
        };
        Ok(match kind {
            Kind::Search => {
                let mut out = json!({
                    "total_rows": hits.len(),
                    "bookmark": bookmark,
                    "rows": rows,
                });
                if let Some(c) = counts {
                    out["counts"] = c;
                }
                if let Some(r) = ranges {
                    out["ranges"] = r;
                }
                out
            }
            Kind::Nouveau => json!({
                "total_hits_relation": "EQUAL_TO",
                "total_hits": hits.len(),
                "ranges": ranges,
                "counts": counts,
                "hits": rows,
                "bookmark": bookmark,
            }),
        })
    }

    /// The documents a query matches in an index brought up to date (or
    /// as it is, `stale`), with their scores: its `q`, narrowed by its
    /// `drilldown` and `partition`.
    fn matched(&self, s: &SearchIndex, q: &SearchQuery) -> CouchResult<Matched> {
        let partitioned = self.meta()?.partitioned;
        match (&q.partition, partitioned) {
            (Some(_), false) => {
                return Err(CouchError::bad_request(
                    "`partition` not supported on this index",
                ))
            }
            (Some(p), true) => shared::partition::validate_partition(p)?,
            _ => {}
        }
        let idx = self.fresh_search(s, q.stale)?;
        let store = self.search_store();
        let parsed = query::parse(&q.q).map_err(|e| e.to_couch(&q.q))?;
        let mut matched = store.matches(idx, &plan::plan(&parsed, &s.def.analyzer)?)?;
        for list in &q.drilldown {
            let mut having: HashSet<i64> = HashSet::new();
            for v in &list[1..] {
                having.extend(store.having(idx, &list[0], v)?);
            }
            matched.retain(|row, _| having.contains(row));
        }
        if let Some(p) = &q.partition {
            let inside: HashSet<i64> = store.in_partition(idx, p)?.into_iter().collect();
            matched.retain(|row, _| inside.contains(row));
        }
        Ok(Matched {
            idx,
            parsed,
            matched,
        })
    }

    /// The ids of every document a query matches, best first (then in
    /// index order), for Mango's text cursor.
    pub(crate) fn search_ids(&self, s: &SearchIndex, q: &SearchQuery) -> CouchResult<Vec<String>> {
        let Matched { matched, .. } = self.matched(s, q)?;
        let mut hits: Vec<(i64, f64)> = matched.into_iter().collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let rows: Vec<i64> = hits.iter().map(|(row, _)| *row).collect();
        let mut ids = self.search_store().doc_ids(&rows)?;
        Ok(rows.iter().filter_map(|r| ids.remove(r)).collect())
    }

    /// `GET /db/_design/{ddoc}/_search_info/{name}` (and
    /// `_nouveau_info`).
    pub fn search_info(&self, ddoc: &str, kind: Kind, name: &str) -> CouchResult<Value> {
        let s = self.resolve_search(ddoc, kind, name)?;
        let sig = s.def.signature();
        let store = self.search_store();
        let update_seq = self.store.stats()?.update_seq;
        let (seq, docs, size) = match self.transact(|| store.seq(&sig))? {
            Some(seq) => {
                let (idx, _) = store.index(&sig)?;
                (seq, store.count(idx)?, store.disk_size(idx)?)
            }
            None => (0, 0, 0),
        };
        let full = format!("_design/{ddoc}/{name}");
        Ok(match kind {
            Kind::Search => json!({
                "name": full,
                "search_index": {
                    "pending_seq": update_seq,
                    "doc_del_count": 0,
                    "doc_count": docs,
                    "disk_size": size,
                    "committed_seq": seq,
                }
            }),
            Kind::Nouveau => json!({
                "name": full,
                "search_index": {
                    "update_seq": seq,
                    "purge_seq": 0,
                    "num_docs": docs,
                    "disk_size": size,
                    "signature": sig,
                }
            }),
        })
    }

    /// Drops the search indexes no design document defines (part of
    /// `_view_cleanup`).
    pub(crate) fn search_cleanup(&self) -> CouchResult<()> {
        let mut live = HashSet::new();
        for (id, ddoc) in self.design_docs()? {
            live.extend(
                SearchIndex::all(&id, &ddoc)
                    .iter()
                    .map(|s| s.def.signature()),
            );
        }
        let store = self.search_store();
        for (idx, sig) in store.signatures()? {
            if !live.contains(&sig) {
                store.drop_index(idx)?;
            }
        }
        Ok(())
    }

    /// Removes a purged document from every search index.
    pub(crate) fn unindex_search(&self, doc_id: &str) -> CouchResult<()> {
        let store = self.search_store();
        for (idx, _) in store.signatures()? {
            store.remove(idx, &[doc_id])?;
        }
        Ok(())
    }
}

/// One batch of changes for a search index: the documents' old entries
/// removed (unless the index is being built from nothing), then each live
/// document's body handed to `each`. Design documents are not indexed,
/// as in CouchDB.
fn reindex<'r>(
    store: &SearchStore,
    idx: i64,
    fresh: bool,
    recs: &'r [(DocRecord, Option<Vec<u8>>)],
    mut each: impl FnMut(&'r DocRecord, &'r [u8]) -> CouchResult<()>,
) -> CouchResult<()> {
    if !fresh {
        let ids: Vec<&str> = recs.iter().map(|(r, _)| r.id.as_str()).collect();
        store.remove(idx, &ids)?;
    }
    for (rec, body) in recs {
        if let Some(body) = body
            .as_deref()
            .filter(|_| !rec.deleted && !rec.id.starts_with("_design/"))
        {
            each(rec, body)?;
        }
    }
    Ok(())
}

/// What a query matched, and where.
struct Matched {
    idx: i64,
    parsed: query::Query,
    matched: HashMap<i64, f64>,
}

/// Nouveau's `order`: each value with its type.
fn nouveau_order(order: &[Value]) -> Value {
    Value::Array(
        order
            .iter()
            .map(|v| match v {
                Value::Number(_) => json!({"@type": "double", "value": v}),
                Value::String(_) => json!({"@type": "string", "value": v}),
                _ => json!({"@type": "null"}),
            })
            .collect(),
    )
}

/// Nouveau's `ranges` (`{"price": [{"label", "min", "max",
/// "min_inclusive", "max_inclusive"}]}`) as `_search`'s range queries.
fn nouveau_ranges(spec: &Map<String, Value>) -> CouchResult<Map<String, Value>> {
    let bad = || CouchError::bad_request("ranges must map fields to lists of {label, min, max}");
    let mut out = Map::new();
    for (field, list) in spec {
        let mut named = Map::new();
        for r in list.as_array().ok_or_else(bad)? {
            let label = r.get("label").and_then(Value::as_str).ok_or_else(bad)?;
            let end = |k: &str| {
                r.get(k)
                    .filter(|v| v.is_number())
                    .map_or("*".to_string(), Value::to_string)
            };
            let incl = |k: &str| r.get(k).and_then(Value::as_bool).unwrap_or(true);
            named.insert(
                label.to_string(),
                json!(format!(
                    "{}{} TO {}{}",
                    if incl("min_inclusive") { "[" } else { "{" },
                    end("min"),
                    end("max"),
                    if incl("max_inclusive") { "]" } else { "}" },
                )),
            );
        }
        out.insert(field.clone(), Value::Object(named));
    }
    Ok(out)
}
