//! Mango in the database actor: `_find`, `_explain` and `_index` over the
//! JSON indexes kept in SQLite (`store.rs`), planned by `shared::mango`.
//!
//! Index definitions live in `"language": "query"` design documents, so they
//! replicate like CouchDB's; the rows are derived state. Before a query
//! (unless `update: false`) the chosen index catches up with the documents
//! changed since its own update sequence, in batches of one transaction each.

use crate::database::Database;
use crate::store::MangoScan;
use serde_json::{json, Map, Value};
use shared::all_docs::KeyRange;
use shared::doc::IncomingDoc;
use shared::doc_read::ReadOpts;
use shared::error::{CouchError, CouchResult};
use shared::mango::{
    all_docs_index_json, names_index, plan, selector_hints, Access, Bookmark, FindQuery, JsonIndex,
    NewIndex, NewTextIndex, Plan, SCAN_WARNING, SCAN_WARNING_RATIO,
};
use shared::search::index_def::Kind;
use shared::search::mango_text::{self, TextIndex};
use shared::search::request::SearchQuery;

/// Rows read per index scan step: small enough that `limit` stops work
/// early, large enough to keep statements few.
const BATCH: u64 = 200;
/// Documents indexed per transaction while an index catches up.
const BUILD_BATCH: u64 = 500;

/// The largest `LIMIT` SQLite is given (JavaScript's safe integers).
const NO_LIMIT: u64 = (1 << 53) - 1;

/// Checks (and may refuse) a design document write: the caller's access rules.
pub type WriteCheck<'f> = dyn Fn(&str, &mut IncomingDoc) -> CouchResult<()> + 'f;

fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

fn index_not_found() -> CouchError {
    CouchError::not_found("Index not found")
}

#[derive(Default)]
struct Stats {
    keys: u64,
    docs: u64,
    results: u64,
}

impl Database<'_> {
    /// The live design documents, by id, with their bodies.
    pub(crate) fn design_docs(&self) -> CouchResult<Vec<(String, Map<String, Value>)>> {
        let range = KeyRange {
            lo: Some(("_design/".into(), true)),
            hi: Some(("_design0".into(), false)),
            empty: false,
        };
        let mut out = Vec::new();
        for (id, _) in self.store.live_ids(&range, false, 0, NO_LIMIT)? {
            if let Some(body) = self.winner_body(&id)? {
                out.push((id, body));
            }
        }
        Ok(out)
    }

    /// Every JSON and every text index the database's design documents
    /// define, each in (ddoc, name) order: the design documents read once.
    pub fn mango_indexes(&self) -> CouchResult<(Vec<JsonIndex>, Vec<TextIndex>)> {
        let partitioned = self.meta()?.partitioned;
        let ddocs = self.design_docs()?;
        let json = ddocs
            .iter()
            .flat_map(|(id, body)| JsonIndex::from_design_doc(id, body, partitioned))
            .collect();
        let text = ddocs
            .iter()
            .flat_map(|(id, body)| TextIndex::from_design_doc(id, body, partitioned))
            .collect();
        Ok((json, text))
    }

    /// The storage id of `def`, (re)registering it when it is new or its
    /// definition changed; rows of indexes no longer defined are dropped.
    fn index_storage(&self, defs: &[JsonIndex], def: &JsonIndex) -> CouchResult<(i64, u64)> {
        self.transact(|| {
            let mut found = None;
            for row in self.store.mango_indexes()? {
                let current = defs
                    .iter()
                    .any(|d| d.ddoc == row.ddoc && d.name == row.name && d.signature() == row.sig);
                if !current {
                    self.store.drop_mango_index(row.id)?;
                } else if row.ddoc == def.ddoc && row.name == def.name {
                    found = Some((row.id, row.seq));
                }
            }
            match found {
                Some(f) => Ok(f),
                None => Ok((
                    self.store
                        .add_mango_index(&def.ddoc, &def.name, &def.signature())?,
                    0,
                )),
            }
        })
    }

    /// Brings an index up to the database's update sequence: each changed
    /// document's row is replaced by one for its winning revision (none
    /// when deleted, a design document, missing a field or filtered out).
    fn catch_up(&self, idx: i64, mut seq: u64, def: &JsonIndex) -> CouchResult<()> {
        // Built from nothing, no document has a row to replace.
        let fresh = seq == 0;
        loop {
            let done = self.transact(|| {
                // The batch's bodies come in one statement, its rows go
                // out several per statement.
                let recs = self.store.docs_with_bodies(seq, BUILD_BATCH)?;
                let mut rows = Vec::with_capacity(recs.len());
                for (rec, body) in &recs {
                    let key = body
                        .as_deref()
                        .filter(|_| !rec.deleted && !rec.id.starts_with("_design/"))
                        .and_then(|b| serde_json::from_slice::<Map<String, Value>>(b).ok())
                        .and_then(|mut body| {
                            body.insert("_id".into(), json!(rec.id));
                            body.insert("_rev".into(), json!(rec.winner.to_string()));
                            def.key(&Value::Object(body))
                        });
                    rows.push((rec.id.as_str(), key));
                }
                self.store.set_mango_rows(idx, !fresh, &rows)?;
                seq = recs.last().map_or(seq, |(r, _)| r.seq);
                self.store.set_mango_seq(idx, seq)?;
                Ok((recs.len() as u64) < BUILD_BATCH)
            })?;
            if done {
                return Ok(());
            }
        }
    }

    /// The query and its plan. A partition query may use only partitioned
    /// indexes, within the partition's rows; a global one only global
    /// indexes, as CouchDB's planner chooses.
    fn planned(&self, body: &Map<String, Value>, partition: Option<&str>) -> CouchResult<Planned> {
        let partitioned_db = self.meta()?.partitioned;
        let q = FindQuery::parse(body)?;
        let (mut indexes, mut texts) = self.mango_indexes()?;
        indexes.retain(|i| i.partitioned == partition.is_some());
        texts.retain(|t| t.partitioned == partition.is_some());
        let full_text = q.selector.fields().iter().any(|f| f == "$default");
        let planned = match text_plan(&q, &texts) {
            Some(p) if full_text => Ok(p),
            None if full_text => {
                return Err(CouchError::new(
                    400,
                    "no_usable_index",
                    "No text index exists for this `$text` selector: create one with \
                     POST /db/_index and \"type\": \"text\".",
                ))
            }
            text => match plan(&q, &indexes) {
                // As CouchDB's cursor prefers index types: JSON, then text,
                // then `_all_docs`.
                Ok(p)
                    if matches!(p.access, Access::AllDocs(_))
                        && q.use_index.first().is_none_or(|d| d != "_all_docs") =>
                {
                    Ok(text.unwrap_or(p))
                }
                Err(e) if e.error == "no_usable_index" && text.is_some() => Ok(text.expect("some")),
                other => other,
            },
        };
        let mut p = planned.map_err(|e| {
            if partitioned_db {
                shared::mango::in_partitioned_db(e, partition.is_some())
            } else {
                e
            }
        })?;
        if let Some(part) = partition {
            p.access = match p.access {
                Access::Json(i, b) => Access::Json(i, shared::partition::scope_bounds(b, part)),
                Access::AllDocs(r) => Access::AllDocs(shared::partition::scope_ids(r, part)),
                text @ Access::Text(..) => text,
            };
        }
        Ok(Planned {
            q,
            indexes,
            texts,
            plan: p,
        })
    }

    /// `POST /db/_find`, or `/db/_partition/{p}/_find`.
    pub fn find(&self, body: &Map<String, Value>, partition: Option<&str>) -> CouchResult<Value> {
        let started = now_ms();
        let Planned {
            q,
            indexes,
            texts,
            plan: p,
        } = self.planned(body, partition)?;
        self.meta()?;
        let opts = ReadOpts {
            conflicts: q.conflicts,
            ..Default::default()
        };
        let mut stats = Stats::default();
        let mut docs: Vec<Value> = Vec::new();
        let mut last: Option<Bookmark> = None;
        let mut skipped = 0;
        // Loads a document, matches it and keeps it; false once `limit` is reached.
        let mut take = |id: &str, key: &[u8], stats: &mut Stats| -> CouchResult<bool> {
            let Some(rec) = self.store.load_doc(id)? else {
                return Ok(true);
            };
            if rec.deleted {
                return Ok(true);
            }
            let Some(json) = self.render_rev(&rec, &rec.winner, &opts)? else {
                return Ok(true);
            };
            stats.docs += 1;
            let doc: Value = serde_json::from_slice(&json)?;
            if !q.selector.matches(&doc) {
                return Ok(true);
            }
            if skipped < q.skip {
                skipped += 1;
                return Ok(true);
            }
            docs.push(q.project(doc));
            last = Some(Bookmark {
                key: key.to_vec(),
                id: id.to_string(),
            });
            Ok((docs.len() as u64) < q.limit)
        };
        let after = q.bookmark.clone();
        if q.limit > 0 {
            match &p.access {
                Access::Json(i, bounds) => {
                    let def = &indexes[*i];
                    let (idx, seq) = self.index_storage(&indexes, def)?;
                    if q.update {
                        self.catch_up(idx, seq, def)?;
                    }
                    let mut cursor = after.map(|b| (b.key, b.id));
                    let mut more_rows = !bounds.empty;
                    'scan: while more_rows {
                        let scan = MangoScan {
                            lower: bounds.lower.as_ref().map(|(k, i)| (k.as_slice(), *i)),
                            upper: bounds.upper.as_ref().map(|(k, i)| (k.as_slice(), *i)),
                            after: cursor.as_ref().map(|(k, id)| (k.as_slice(), id.as_str())),
                            descending: p.descending,
                        };
                        let rows = self.store.mango_scan(idx, &scan, BATCH)?;
                        let full = rows.len() as u64 == BATCH;
                        for (key, id) in rows {
                            stats.keys += 1;
                            let more = take(&id, &key, &mut stats)?;
                            cursor = Some((key, id));
                            if !more {
                                break 'scan;
                            }
                        }
                        more_rows = full;
                    }
                }
                Access::Text(i, query) => {
                    let ids = self.text_candidates(&texts[*i], query, &q, partition)?;
                    let from = after.map_or(0, |b| position(&b.key));
                    for (n, id) in ids.iter().enumerate().skip(from) {
                        stats.keys += 1;
                        if !take(id, &((n + 1) as u64).to_be_bytes(), &mut stats)? {
                            break;
                        }
                    }
                }
                Access::AllDocs(range) => {
                    let mut range = range.clone();
                    if let Some(b) = after {
                        resume_after(&mut range, b.id, p.descending);
                    }
                    'all: while !range.empty {
                        let rows = self.store.live_ids(&range, p.descending, 0, BATCH)?;
                        let full = rows.len() as u64 == BATCH;
                        for (id, _) in rows {
                            // Design documents are not data: CouchDB's
                            // `_all_docs` cursor passes over them.
                            if shared::doc::is_design(&id) {
                                resume_after(&mut range, id, p.descending);
                                continue;
                            }
                            stats.keys += 1;
                            let more = take(&id, &[], &mut stats)?;
                            resume_after(&mut range, id, p.descending);
                            if !more {
                                break 'all;
                            }
                        }
                        if !full {
                            break;
                        }
                    }
                }
            }
        }
        stats.results = docs.len() as u64;
        let bookmark = match last {
            Some(b) => b.encode(),
            None => q.bookmark_raw.clone().unwrap_or_else(|| "nil".into()),
        };
        let mut warnings = p.warnings.clone();
        if matches!(p.access, Access::Json(..))
            && stats.docs > SCAN_WARNING_RATIO * stats.results.max(1)
        {
            warnings.push(SCAN_WARNING.into());
        }
        let mut out = json!({"docs": docs, "bookmark": bookmark});
        if !warnings.is_empty() {
            out["warning"] = json!(warnings.join("\n"));
        }
        if q.execution_stats {
            out["execution_stats"] = json!({
                "total_keys_examined": stats.keys,
                "total_docs_examined": stats.docs,
                "total_quorum_docs_examined": 0,
                "results_returned": stats.results,
                "execution_time_ms": now_ms() - started,
            });
        }
        Ok(out)
    }

    /// `POST /db/_explain`: the plan `_find` would run, without running it.
    pub fn explain(
        &self,
        body: &Map<String, Value>,
        partition: Option<&str>,
    ) -> CouchResult<Value> {
        let Planned { q, plan: p, .. } = self.planned(body, partition)?;
        let mut out = json!({
            "dbname": self.meta()?.name.clone(),
            "index": p.index_json,
            "partitioned": partition.is_some(),
            "selector": q.selector.to_json(),
            "opts": q.opts_json(),
            "limit": q.limit,
            "skip": q.skip,
            "fields": q.fields.clone().map_or_else(|| json!("all_fields"), |f| json!(f)),
        });
        let (start_key, end_key) = match &p.access {
            Access::Json(_, b) => (json!(b.start_key), json!(b.end_key)),
            Access::AllDocs(r) => (
                r.lo.as_ref().map_or(Value::Null, |(k, _)| json!(k)),
                r.hi.as_ref().map_or(json!("<MAX>"), |(k, _)| json!(k)),
            ),
            // A text index's plan is its Lucene query, as CouchDB's
            // text cursor explains it.
            Access::Text(_, query) => {
                out["query"] = json!(query);
                out["partition"] = json!(partition);
                out["sort"] = q.opts_json()["sort"].clone();
                out["bookmark"] = json!(q.bookmark_raw.clone().unwrap_or_else(|| "nil".into()));
                out["index_candidates"] = json!(p.candidates);
                out["selector_hints"] = selector_hints(&q.selector);
                return Ok(out);
            }
        };
        let (start_key, end_key) = if p.descending {
            (end_key, start_key)
        } else {
            (start_key, end_key)
        };
        out["mrargs"] = json!({
            "include_docs": true,
            "view_type": "map",
            "reduce": false,
            "partition": partition,
            "start_key": start_key,
            "end_key": end_key,
            "direction": if p.descending { "rev" } else { "fwd" },
            "stable": q.stable,
            "update": if q.update { "true" } else { "false" },
            "conflicts": "undefined",
        });
        out["covering"] = json!(false);
        out["index_candidates"] = json!(p.candidates);
        out["selector_hints"] = selector_hints(&q.selector);
        Ok(out)
    }

    /// `GET /db/_index`, with `skip` and `limit` over the whole list.
    pub fn list_indexes(&self, skip: u64, limit: Option<u64>) -> CouchResult<Value> {
        self.meta()?;
        let mut all = vec![all_docs_index_json()];
        let partitioned = self.meta()?.partitioned;
        for (id, body) in self.design_docs()? {
            all.extend(
                JsonIndex::from_design_doc(&id, &body, partitioned)
                    .iter()
                    .map(JsonIndex::to_json),
            );
            all.extend(
                TextIndex::from_design_doc(&id, &body, partitioned)
                    .iter()
                    .map(TextIndex::to_json),
            );
        }
        let total = all.len();
        let page: Vec<Value> = all
            .into_iter()
            .skip(skip as usize)
            .take(limit.unwrap_or(NO_LIMIT) as usize)
            .collect();
        Ok(json!({"total_rows": total, "indexes": page}))
    }

    /// `POST /db/_index`: adds the index's view to its design document
    /// (created if needed); `exists` when an identical one is there.
    pub fn create_index(
        &self,
        body: &Map<String, Value>,
        check: &WriteCheck,
    ) -> CouchResult<Value> {
        let db_partitioned = self.meta()?.partitioned;
        if let Some(text) = NewTextIndex::parse(body)? {
            return self.create_text_index(text, check);
        }
        let mut new = NewIndex::parse(body)?;
        if new.partitioned == Some(true) && !db_partitioned {
            return Err(CouchError::new(
                400,
                "invalid_design_doc",
                "partitioned option cannot be true in a non-partitioned database.",
            ));
        }
        let current = match self.store.load_doc(&new.index.ddoc)? {
            Some(rec) if !rec.deleted => Some(rec),
            _ => None,
        };
        // One design document's indexes are all partitioned or all global.
        let ddoc_partitioned = match &current {
            Some(_) => {
                let body = self.winner_body(&new.index.ddoc)?.unwrap_or_default();
                db_partitioned && !shared::view::design_says_global(&body)
            }
            None => new.partitioned.unwrap_or(db_partitioned),
        };
        if new.partitioned.is_some_and(|p| p != ddoc_partitioned) {
            return Err(CouchError::new(
                400,
                "invalid_partitioned_option",
                format!(
                    "Requested partitioned option does not match existing value on design document {}",
                    new.index.ddoc
                ),
            ));
        }
        new.index.partitioned = ddoc_partitioned;
        let index = &new.index;
        let reply = |result: &str| json!({"result": result, "id": index.ddoc, "name": index.name});
        let (mut ddoc, existing) = self.index_ddoc(&index.ddoc, new.partitioned)?;
        if existing
            && JsonIndex::from_design_doc(&index.ddoc, &ddoc, db_partitioned)
                .iter()
                .any(|e| e.name == index.name && e.signature() == index.signature())
        {
            return Ok(reply("exists"));
        }
        let views = member(&mut ddoc, "views");
        views[&index.name] = new.view_json();
        self.save_design(&index.ddoc, Value::Object(ddoc), check)?;
        Ok(reply("created"))
    }

    /// `DELETE /db/_index/{ddoc}/json/{name}`: removes the view, and the
    /// design document with its last view.
    pub fn delete_index(
        &self,
        ddoc: &str,
        text: bool,
        name: &str,
        check: &WriteCheck,
    ) -> CouchResult<Value> {
        let partitioned = self.meta()?.partitioned;
        let ddoc = if ddoc.starts_with("_design/") {
            ddoc.to_string()
        } else {
            format!("_design/{ddoc}")
        };
        let rec = self.store.load_doc(&ddoc)?.ok_or_else(index_not_found)?;
        let mut body = self.winner_body(&ddoc)?.ok_or_else(index_not_found)?;
        let found = if text {
            TextIndex::from_design_doc(&ddoc, &body, partitioned)
                .iter()
                .any(|i| i.name == name)
        } else {
            JsonIndex::from_design_doc(&ddoc, &body, partitioned)
                .iter()
                .any(|i| i.name == name)
        };
        if !found {
            return Err(index_not_found());
        }
        let member = if text { "indexes" } else { "views" };
        let list = body
            .get_mut(member)
            .and_then(Value::as_object_mut)
            .ok_or_else(index_not_found)?;
        list.shift_remove(name);
        let now_empty = ["views", "indexes"].iter().all(|m| {
            body.get(*m)
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
        });
        body.insert("_rev".into(), json!(rec.winner.to_string()));
        if now_empty {
            body = Map::new();
            body.insert("_rev".into(), json!(rec.winner.to_string()));
            body.insert("_deleted".into(), json!(true));
        }
        self.save_design(&ddoc, Value::Object(body), check)?;
        Ok(json!({"ok": true}))
    }

    /// `POST /db/_index` for a `text` index: an entry of its design
    /// document's `indexes`, as CouchDB stores it.
    fn create_text_index(&self, new: NewTextIndex, check: &WriteCheck) -> CouchResult<Value> {
        let reply = |result: &str| json!({"result": result, "id": new.ddoc, "name": new.name});
        let (mut ddoc, existing) = self.index_ddoc(&new.ddoc, new.partitioned)?;
        if existing
            && ddoc.get("indexes").and_then(|i| i.get(&new.name)) == Some(&new.def.stored_json())
        {
            return Ok(reply("exists"));
        }
        let indexes = member(&mut ddoc, "indexes");
        indexes[&new.name] = new.def.stored_json();
        self.save_design(&new.ddoc, Value::Object(ddoc), check)?;
        Ok(reply("created"))
    }

    /// The ids of the documents a text index finds for a query, best
    /// first (by the query's `sort` when it has one: then only those the
    /// selector matches, sorted in CouchDB's collation).
    fn text_candidates(
        &self,
        t: &TextIndex,
        query: &str,
        q: &FindQuery,
        partition: Option<&str>,
    ) -> CouchResult<Vec<String>> {
        let s =
            self.resolve_search(t.ddoc.trim_start_matches("_design/"), Kind::Search, &t.name)?;
        let sq = SearchQuery {
            q: query.to_string(),
            limit: 0,
            stale: !q.update,
            partition: partition.map(str::to_string),
            ..SearchQuery::default()
        };
        let mut ids = self.search_ids(&s, &sq)?;
        if !q.sort.is_empty() {
            let mut docs: Vec<(String, Value)> = Vec::new();
            for id in ids {
                let doc = self.winner_doc(&id)?;
                if !doc.is_null() && q.selector.matches(&doc) {
                    docs.push((id, doc));
                }
            }
            let paths: Vec<(Vec<String>, bool)> = q
                .sort
                .iter()
                .map(|f| {
                    // A text index's sort may name a field's type too.
                    let name = match f.name.rsplit_once(':') {
                        Some((n, "string" | "number" | "boolean")) => n,
                        _ => f.name.as_str(),
                    };
                    Ok((shared::selector::field_path(name)?, f.desc))
                })
                .collect::<CouchResult<_>>()?;
            docs.sort_by(|(_, a), (_, b)| {
                for (path, desc) in &paths {
                    let at = |d: &Value| {
                        shared::selector::value_at(d, path)
                            .cloned()
                            .unwrap_or(Value::Null)
                    };
                    let o = shared::collate::compare(&at(a), &at(b));
                    let o = if *desc { o.reverse() } else { o };
                    if o != std::cmp::Ordering::Equal {
                        return o;
                    }
                }
                std::cmp::Ordering::Equal
            });
            ids = docs.into_iter().map(|(id, _)| id).collect();
        }
        Ok(ids)
    }

    /// The design document a new index goes into, and whether it exists:
    /// the current one (with its `_rev`), which must be a `query` one, or
    /// a new `query` design document with the `partitioned` option given.
    fn index_ddoc(
        &self,
        id: &str,
        partitioned: Option<bool>,
    ) -> CouchResult<(Map<String, Value>, bool)> {
        if let Some(rec) = self.store.load_doc(id)?.filter(|rec| !rec.deleted) {
            let mut body = self.winner_body(id)?.unwrap_or_default();
            let lang = body.get("language").cloned().unwrap_or(Value::Null);
            if lang != "query" {
                return Err(CouchError::new(
                    400,
                    "invalid_ddoc_lang",
                    format!("Existing design doc has an invalid language: {lang}"),
                ));
            }
            body.insert("_rev".into(), json!(rec.winner.to_string()));
            return Ok((body, true));
        }
        let mut m = Map::new();
        m.insert("language".into(), json!("query"));
        if let Some(p) = partitioned {
            m.insert("options".into(), json!({ "partitioned": p }));
        }
        Ok((m, false))
    }

    fn save_design(&self, id: &str, body: Value, check: &WriteCheck) -> CouchResult<()> {
        let mut doc = IncomingDoc::parse(body)?;
        check(id, &mut doc)?;
        self.save_one(id, &doc, true).map_err(|e| {
            if e.status == 409 {
                CouchError::new(
                    500,
                    "error_saving_ddoc",
                    "Encountered a conflict while saving the design document.",
                )
            } else {
                e
            }
        })?;
        Ok(())
    }
}

/// A design document's member `name` as an object (made one if it is
/// not).
fn member<'a>(ddoc: &'a mut Map<String, Value>, name: &str) -> &'a mut Value {
    let m = ddoc.entry(name).or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m
}

/// A query, the indexes it was planned among, and its plan.
struct Planned {
    q: FindQuery,
    indexes: Vec<JsonIndex>,
    texts: Vec<TextIndex>,
    plan: Plan,
}

/// The plan of `q` on a text index: the one `use_index` names, else the
/// first usable; `None` when none is.
fn text_plan(q: &FindQuery, texts: &[TextIndex]) -> Option<Plan> {
    let usable = |t: &TextIndex| t.def.usable(&q.selector);
    let i = texts
        .iter()
        .position(|t| usable(t) && names_index(&t.ddoc, &t.name, &q.use_index))
        .or_else(|| texts.iter().position(usable))?;
    Some(Plan {
        access: Access::Text(i, mango_text::query(&q.selector)),
        descending: false,
        warnings: Vec::new(),
        candidates: Vec::new(),
        index_json: texts[i].to_json(),
    })
}

/// Where a text index bookmark resumes: after this many candidates.
fn position(key: &[u8]) -> usize {
    key.try_into().map_or(0, |b| u64::from_be_bytes(b) as usize)
}

/// Narrows an id range to the ids after `id` in scan order.
fn resume_after(range: &mut KeyRange, id: String, descending: bool) {
    if descending {
        if range.hi.as_ref().is_none_or(|(h, _)| id <= *h) {
            range.hi = Some((id, false));
        }
    } else if range.lo.as_ref().is_none_or(|(l, _)| id >= *l) {
        range.lo = Some((id, false));
    }
}
