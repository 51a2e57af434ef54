//! Map/reduce views over the database: index maintenance from the update
//! sequence and queries (ranges, keys, grouping, reduce). Definitions and
//! built-in reduces are in `shared::view`, reduce functions in
//! [`crate::reducer`]; functions are compiled and their failures mapped by
//! [`crate::design`].

use crate::database::Database;
use crate::design::{compile_query, failure, Role};
use crate::js::JsError;
use crate::reducer::{Reducer, Row};
use crate::store::{DocRecord, ViewBound, ViewRange, ViewRow};
use serde_json::{json, Map, Value};
use shared::active_tasks::BuildStep;
use shared::doc_read::ReadOpts;
use shared::error::{CouchError, CouchResult};
use shared::http::Request;
use shared::partition;
use shared::view::{self, GroupLevel, IndexKind, IndexName, Update, ViewDef, ViewQuery};
use std::cell::RefCell;

/// Documents mapped per transaction while an index catches up: at most
/// this many, and about [`BATCH_BYTES`] of bodies. Fewer, larger
/// transactions cost less: each is a savepoint in which SQLite copies
/// every index page it first changes to a sub-journal.
const BATCH: u64 = 2000;
/// The bodies a batch should hold, which sizes the next batch from the
/// last one's (the first is [`FIRST_BATCH`] documents).
const BATCH_BYTES: u64 = 8 << 20;
const FIRST_BATCH: u64 = 200;
/// Rows read per statement while reducing.
const SCAN_PAGE: u64 = 5_000;

/// What a background build round did.
#[derive(Default)]
pub struct Refresh {
    /// Views whose build failed, for the log.
    pub failures: Vec<CouchError>,
    /// Views the budget did not reach the end of (another round is due),
    /// with how far each came in the round (for `_active_tasks`).
    pub unfinished: Vec<(IndexName, BuildStep)>,
}

/// A view resolved from its design document.
pub(crate) struct Resolved {
    name: IndexName,
    pub(crate) def: ViewDef,
    pub(crate) ddoc: Map<String, Value>,
}

/// An index a background round builds.
enum Build {
    View(Resolved),
    Search(crate::search::SearchIndex),
}

impl Build {
    fn name(&self) -> &IndexName {
        match self {
            Build::View(v) => &v.name,
            Build::Search(s) => &s.name,
        }
    }

    fn signature(&self) -> String {
        match self {
            Build::View(v) => v.def.signature(&v.ddoc),
            Build::Search(s) => s.def.signature(),
        }
    }

    /// The index's storage id and how far it is built.
    fn index(&self, db: &Database) -> CouchResult<(i64, u64)> {
        match self {
            Build::View(_) => db.store.view_index(&self.signature()),
            Build::Search(_) => db.search_store().index(&self.signature()),
        }
    }

    fn update(&self, db: &Database, idx: i64, seq: u64) -> CouchResult<bool> {
        match self {
            Build::View(v) => db.update_index(v, idx, seq),
            Build::Search(s) => db.update_search(s, idx, seq),
        }
    }
}

/// JSON text of the documents one map call gets, at most this long (a
/// larger document goes alone).
const MAP_BATCH_BYTES: usize = 1 << 20;

/// Documents gathered for one call of a map function, as a JSON array
/// written around their stored bodies (not parsed and encoded again).
#[derive(Default)]
pub(crate) struct MapBatch {
    json: Vec<u8>,
    ids: Vec<String>,
}

impl MapBatch {
    /// Adds a document as CouchDB's indexer opens it: the body with `_id`,
    /// `_rev` and its conflicts (for the classic conflicts view), and
    /// `_local_seq` if the view asks. False for a body that is not a JSON
    /// object, which no map sees.
    pub(crate) fn add(&mut self, rec: &DocRecord, body: &[u8], local_seq: bool) -> bool {
        let Some(inner) = body.trim_ascii_start().strip_prefix(b"{") else {
            return false;
        };
        if self.json.capacity() == 0 {
            self.json.reserve(MAP_BATCH_BYTES + (64 << 10));
        }
        let inner = inner.trim_ascii_start();
        self.json
            .push(if self.ids.is_empty() { b'[' } else { b',' });
        self.json.extend_from_slice(b"{\"_id\":");
        serde_json::to_writer(&mut self.json, &rec.id).expect("json");
        self.json.extend_from_slice(b",\"_rev\":\"");
        self.json
            .extend_from_slice(rec.winner.to_string().as_bytes());
        self.json.push(b'"');
        for (key, deleted) in [("_conflicts", false), ("_deleted_conflicts", true)] {
            let c = rec.conflicts(deleted);
            if !c.is_empty() {
                self.json
                    .extend_from_slice(format!(",\"{key}\":").as_bytes());
                serde_json::to_writer(&mut self.json, &c).expect("json");
            }
        }
        if local_seq {
            self.json
                .extend_from_slice(format!(",\"_local_seq\":{}", rec.seq).as_bytes());
        }
        if !inner.starts_with(b"}") {
            self.json.push(b',');
        }
        self.json.extend_from_slice(inner);
        self.ids.push(rec.id.clone());
        true
    }

    pub(crate) fn full(&self) -> bool {
        self.json.len() >= MAP_BATCH_BYTES || self.ids.len() as u64 >= BATCH
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Hands `f` the batch's documents as a JSON array, and their ids,
    /// then leaves the batch empty for the next ones (its buffer kept).
    pub(crate) fn with_json<T>(
        &mut self,
        f: impl FnOnce(&str, Vec<String>) -> CouchResult<T>,
    ) -> CouchResult<T> {
        self.json.push(b']');
        let ids = std::mem::take(&mut self.ids);
        let out = match std::str::from_utf8(&self.json) {
            Ok(text) => f(text, ids),
            Err(_) => Err(CouchError::new(
                500,
                "invalid_json",
                "a stored body is not UTF-8",
            )),
        };
        self.json.clear();
        out
    }

    /// Maps the batch, adding each document's rows to `rows` and leaving
    /// the batch empty. A document whose map throws is skipped, as CouchDB
    /// skips it; a sandbox budget running out fails the build.
    fn run(
        &mut self,
        def: &ViewDef,
        ddoc: &Value,
        rows: &mut Vec<(i64, ViewRow)>,
    ) -> CouchResult<()> {
        // Compiled once per isolate (see `compile_query`), not per batch.
        let compiled = compile_query(&def.map, ddoc, "map")?;
        let (engine, f) = &*compiled;
        self.with_json(|text, ids| {
            let results = engine
                .map_many(*f, text)
                .map_err(|err| failure("map", Role::Query, &err))?;
            for (id, result) in ids.into_iter().zip(results) {
                match result {
                    Ok(emitted) => rows.extend(doc_rows(def, &id, emitted)),
                    Err(thrown) => tracing::info!(
                        doc = %id,
                        "map function raised exception ({}): document skipped",
                        JsError::Thrown(thrown)
                    ),
                }
            }
            Ok(())
        })
    }
}

/// One document's view rows, numbered in index order: rows with equal keys
/// sort by value in Erlang's term order (the raw collation), as CouchDB's
/// updater sorts them.
fn doc_rows(def: &ViewDef, id: &str, emitted: Vec<(Value, Value)>) -> Vec<(i64, ViewRow)> {
    let mut sorted: Vec<(ViewRow, Value)> = emitted
        .into_iter()
        .map(|(k, val)| {
            let row = ViewRow {
                sort_key: def.row_key(id, &k),
                doc_id: id.to_string(),
                key: k.to_string(),
                value: val.to_string(),
            };
            (row, val)
        })
        .collect();
    if sorted.len() > 1 {
        sorted.sort_by(|(x, a), (y, b)| {
            x.sort_key.cmp(&y.sort_key).then_with(|| {
                shared::collate::encode_key_raw(a).cmp(&shared::collate::encode_key_raw(b))
            })
        });
    }
    sorted
        .into_iter()
        .enumerate()
        .map(|(n, (row, _))| (n as i64, row))
        .collect()
}

thread_local! {
    /// Views whose background update failed, by signature: not retried in
    /// the background (an edited map has a new signature).
    static STALLED: RefCell<std::collections::HashSet<String>> = RefCell::default();
}

impl Database<'_> {
    /// The body of `_design/{ddoc}`, or CouchDB's 404 `missing`.
    pub fn design_doc(&self, ddoc: &str) -> CouchResult<Map<String, Value>> {
        self.meta()?;
        self.winner_body(&format!("_design/{ddoc}"))?
            .ok_or_else(|| CouchError::not_found("missing"))
    }

    pub(crate) fn resolve(&self, ddoc_name: &str, name: &str) -> CouchResult<Resolved> {
        let ddoc = self.design_doc(ddoc_name)?;
        let def = ViewDef::from_design_doc(&ddoc, name, self.meta()?.partitioned)?;
        Ok(Resolved {
            name: IndexName::view(ddoc_name, name),
            def,
            ddoc,
        })
    }

    /// Brings a view's index up to the update sequence, as far as this
    /// invocation's budget goes: false if it ran out first. Documents
    /// whose map throws are skipped (as in CouchDB); a function stopped by
    /// a sandbox budget fails the request, leaving the index where its last
    /// batch ended.
    fn update_index(&self, v: &Resolved, idx: i64, seq: u64) -> CouchResult<bool> {
        let ddoc = Value::Object(v.ddoc.clone());
        // Built from nothing in this call, each document comes once and
        // has no rows to replace.
        let fresh = seq == 0;
        let mut batch = MapBatch::default();
        let step = |recs: &[(DocRecord, Option<Vec<u8>>)]| -> CouchResult<()> {
            let mut rows: Vec<(i64, ViewRow)> = Vec::with_capacity(recs.len());
            for (rec, body) in recs {
                // Design documents belong to no partition.
                let design = rec.id.starts_with("_design/");
                let skip_design = design && (!v.def.include_design || v.def.partitioned);
                let Some(body) = body.as_deref().filter(|_| !rec.deleted && !skip_design) else {
                    continue;
                };
                if !batch.add(rec, body, v.def.local_seq) {
                    continue;
                }
                if batch.full() {
                    batch.run(&v.def, &ddoc, &mut rows)?;
                }
            }
            if !batch.is_empty() {
                batch.run(&v.def, &ddoc, &mut rows)?;
            }
            if !fresh {
                let ids: Vec<&str> = recs.iter().map(|(r, _)| r.id.as_str()).collect();
                self.store.delete_view_rows(idx, &ids)?;
            }
            self.store.insert_view_rows(idx, &rows)
        };
        self.follow_changes(seq, step, |seq| self.store.set_view_seq(idx, seq))
    }

    /// Brings an index that is at `seq` up to the update sequence in
    /// batches, one transaction each, as far as this invocation's budget
    /// goes: false if it ran out first. `step` indexes a batch of changed
    /// documents (with their winning bodies), `set_seq` records how far
    /// the index is, in the same transaction.
    pub(crate) fn follow_changes(
        &self,
        mut seq: u64,
        mut step: impl FnMut(&[(DocRecord, Option<Vec<u8>>)]) -> CouchResult<()>,
        set_seq: impl Fn(u64) -> CouchResult<()>,
    ) -> CouchResult<bool> {
        let mut size = FIRST_BATCH;
        loop {
            let left = self.builds.left();
            let want = size.min(left).max(1);
            let done = self.transact(|| {
                let recs = self.store.docs_with_bodies(seq, want)?;
                if recs.is_empty() {
                    return Ok(true);
                }
                if left == 0 {
                    return Ok(false);
                }
                let bytes: usize = recs
                    .iter()
                    .filter_map(|(_, b)| b.as_ref().map(Vec::len))
                    .sum();
                let per_doc = (bytes / recs.len()).max(1) as u64;
                size = (BATCH_BYTES / per_doc).clamp(1, BATCH);
                for (_, body) in &recs {
                    self.builds.spend(body.as_ref().map_or(0, Vec::len));
                }
                step(&recs)?;
                seq = recs.last().map_or(seq, |(r, _)| r.seq);
                set_seq(seq)?;
                Ok((recs.len() as u64) < want)
            })?;
            if done {
                return Ok(true);
            }
            if self.builds.left() == 0 {
                return Ok(false);
            }
        }
    }

    /// `GET|POST /db/_design/{ddoc}/_view/{view}`.
    pub fn query_view(&self, ddoc: &str, name: &str, q: &ViewQuery) -> CouchResult<Value> {
        let v = self.resolve(ddoc, name)?;
        let q = self.scoped(&v, q)?;
        let idx = self.fresh_index(&v, &q)?;
        self.run_query(&v, idx, &q)
    }

    /// A query as it runs on view `v`: a partition query only on a
    /// partitioned view (and a global one only on a global view), limited
    /// to `partition_query_limit` rows.
    fn scoped(&self, v: &Resolved, q: &ViewQuery) -> CouchResult<ViewQuery> {
        view::check_partition(v.def.partitioned, q)?;
        let mut q = q.clone();
        if q.partition.is_some() {
            q.limit = Some(partition::query_limit(
                q.limit,
                self.limits.partition_query_limit,
            )?);
        }
        Ok(q)
    }

    /// `POST /db/_temp_view`: a map (and reduce) sent with the query, as
    /// CouchDB 1.x offered and PouchDB's `query(fn)` on a remote database
    /// still uses (CouchDB 2 dropped it). Its index is an ordinary one keyed
    /// by the map's signature, shared with any design view of the same map,
    /// kept and updated between queries, and dropped by `_view_cleanup`. A
    /// build longer than this invocation's budget answers `timeout`, and a
    /// retry continues where it stopped.
    pub fn query_temp_view(&self, req: &Request, body: &Map<String, Value>) -> CouchResult<Value> {
        self.meta()?;
        let mut view = Map::new();
        let mut rest = body.clone();
        for k in ["map", "reduce"] {
            if let Some(src) = rest.shift_remove(k) {
                view.insert(k.into(), src);
            }
        }
        let language = rest.shift_remove("language").unwrap_or(json!("javascript"));
        let options = rest.shift_remove("options");
        let mut ddoc = Map::new();
        ddoc.insert("language".into(), language);
        if let Some(o) = options {
            ddoc.insert("options".into(), o);
        }
        ddoc.insert("views".into(), json!({ "temp": view }));
        let def = ViewDef::from_design_doc(&ddoc, "temp", false)
            .map_err(|_| CouchError::bad_request("`map` member must be a function source"))?;
        let q = ViewQuery::from_request(req, Some(&rest))?;
        let v = Resolved {
            name: IndexName::view("_temp_view", "temp"),
            def,
            ddoc,
        };
        let (idx, seq) = self.transact(|| self.store.view_index(&v.def.signature(&v.ddoc)))?;
        if !self.update_index(&v, idx, seq)? {
            return Err(CouchError::new(
                500,
                "timeout",
                "The temporary view's index is still being built; retry the request",
            ));
        }
        self.run_query(&v, idx, &q)
    }

    /// `POST .../_view/{view}/queries` (or a `queries` body to `_view`):
    /// many queries of one view.
    pub fn query_view_multi(
        &self,
        ddoc: &str,
        name: &str,
        queries: Option<&Value>,
        partition: Option<&str>,
    ) -> CouchResult<Value> {
        let queries = queries
            .and_then(Value::as_array)
            .ok_or_else(|| CouchError::bad_request("`queries` member must be an array"))?;
        let v = self.resolve(ddoc, name)?;
        let parsed = queries
            .iter()
            .map(|q| match q {
                Value::Object(o) => Ok(ViewQuery {
                    partition: partition.map(str::to_string),
                    ..ViewQuery::from_object(o)?
                }),
                _ => Err(CouchError::bad_request("Each query must be a JSON object")),
            })
            .collect::<CouchResult<Vec<_>>>()?;
        let mut results = Vec::new();
        for q in &parsed {
            let q = self.scoped(&v, q)?;
            let idx = self.fresh_index(&v, &q)?;
            results.push(self.run_query(&v, idx, &q)?);
        }
        Ok(json!({ "results": results }))
    }

    /// The index of a view, updated unless the query says not to. A build
    /// longer than this invocation's budget is left to the actor's alarm:
    /// the query fails with `timeout` and notes the view in
    /// [`crate::build_budget::Builds`], so the actor can wait for the build and run it again.
    fn fresh_index(&self, v: &Resolved, q: &ViewQuery) -> CouchResult<i64> {
        let (idx, seq) = self.transact(|| self.store.view_index(&v.def.signature(&v.ddoc)))?;
        match q.update {
            Update::True if !self.update_index(v, idx, seq)? => {
                self.builds.wait_for(v.name.clone());
                Err(CouchError::new(
                    500,
                    "timeout",
                    "The view index is still being built; retry the request",
                ))
            }
            Update::Lazy => {
                self.builds.update_later(v.name.clone());
                Ok(idx)
            }
            _ => Ok(idx),
        }
    }

    /// Every row a query may see, in its direction: a partition query's
    /// partition, else the whole index.
    fn scope(q: &ViewQuery) -> ViewRange {
        let Some(p) = q.partition.as_deref() else {
            return ViewRange {
                descending: q.descending,
                ..ViewRange::default()
            };
        };
        let (lo, hi) = partition::key_range(p);
        let low = ViewBound {
            key: lo,
            doc_id: None,
            inclusive: true,
        };
        let high = ViewBound {
            key: hi,
            doc_id: None,
            inclusive: false,
        };
        let (start, end) = if q.descending {
            (high, low)
        } else {
            (low, high)
        };
        ViewRange {
            start: Some(start),
            end: Some(end),
            descending: q.descending,
        }
    }

    /// The rows between two keys of a query; an end it leaves open is the
    /// end of its [`Self::scope`].
    fn range(
        def: &ViewDef,
        q: &ViewQuery,
        start: Option<&Value>,
        end: Option<&Value>,
    ) -> ViewRange {
        let prefix = q.partition.as_deref().map(partition::key_prefix);
        let key = |k: &Value| match &prefix {
            Some(p) => [p.as_slice(), &def.encode(k)].concat(),
            None => def.encode(k),
        };
        let scope = Self::scope(q);
        ViewRange {
            start: start
                .map(|k| ViewBound {
                    key: key(k),
                    doc_id: q.start_docid.clone(),
                    inclusive: true,
                })
                .or(scope.start),
            end: end
                .map(|k| ViewBound {
                    key: key(k),
                    doc_id: q.end_docid.clone(),
                    inclusive: q.inclusive_end,
                })
                .or(scope.end),
            descending: q.descending,
        }
    }

    /// The ranges a query reads: one per key of `keys`, else one.
    fn ranges(def: &ViewDef, q: &ViewQuery) -> Vec<ViewRange> {
        match &q.keys {
            Some(keys) => keys
                .iter()
                .map(|k| {
                    // Each key keeps the document id bounds, as CouchDB's
                    // `key_opts` (`startkey_docid` applies within every key).
                    let exact = ViewQuery {
                        inclusive_end: true,
                        ..q.clone()
                    };
                    Self::range(def, &exact, Some(k), Some(k))
                })
                .collect(),
            None => vec![Self::range(def, q, q.start.as_ref(), q.end.as_ref())],
        }
    }

    fn run_query(&self, v: &Resolved, idx: i64, q: &ViewQuery) -> CouchResult<Value> {
        let reduce = q.check(v.def.reduce.is_some(), v.def.raw)?;
        let mut out = if reduce {
            self.reduced(v, idx, q)?
        } else {
            self.mapped(v, idx, q)?
        };
        if q.update_seq {
            let seq = self.store.stats()?.update_seq;
            out["update_seq"] = json!(self.meta()?.seq(seq));
        }
        Ok(out)
    }

    fn mapped(&self, v: &Resolved, idx: i64, q: &ViewQuery) -> CouchResult<Value> {
        let total = self.store.view_count(idx, &Self::scope(q))?;
        let ranges = Self::ranges(&v.def, q);
        let limit = q.limit.unwrap_or(u64::MAX);
        let rows = if ranges.len() == 1 {
            self.store.view_scan(idx, &ranges[0], q.skip, limit)?
        } else {
            let mut all = Vec::new();
            for r in &ranges {
                all.extend(self.store.view_scan(idx, r, 0, u64::MAX)?);
            }
            all.into_iter()
                .skip(q.skip as usize)
                .take(limit.min(usize::MAX as u64) as usize)
                .collect()
        };
        let offset = match (&q.keys, ranges.first().and_then(|r| r.start.as_ref())) {
            (None, Some(start)) => {
                let before = ViewRange {
                    end: Some(ViewBound {
                        inclusive: false,
                        ..start.clone()
                    }),
                    ..Self::scope(q)
                };
                self.store.view_count(idx, &before)? + q.skip
            }
            _ => q.skip,
        };
        let read = ReadOpts {
            conflicts: q.conflicts,
            attachments: q.attachments,
            att_encoding_info: q.att_encoding_info,
            ..ReadOpts::default()
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let key: Value = serde_json::from_str(&r.key)?;
            let value: Value = serde_json::from_str(&r.value)?;
            let mut row = json!({"id": r.doc_id, "key": key, "value": value});
            if q.include_docs {
                // A value with an `_id` links to another document, one with
                // a `_rev` to a revision (of the row's document by default).
                let id = value.get("_id").and_then(Value::as_str);
                let rev = value
                    .get("_rev")
                    .and_then(Value::as_str)
                    .and_then(|r| r.parse().ok());
                let id = id.map_or_else(|| r.doc_id.clone(), str::to_string);
                row["doc"] = match self.get_doc(&id, rev.as_ref(), &read) {
                    Ok((_, body)) => serde_json::from_slice(&body)?,
                    Err(_) => Value::Null,
                };
            }
            out.push(row);
        }
        Ok(json!({"total_rows": total, "offset": offset, "rows": out}))
    }

    fn reduced(&self, v: &Resolved, idx: i64, q: &ViewQuery) -> CouchResult<Value> {
        let reducer = Reducer::new(
            v.def.reduce.as_deref().expect("checked"),
            &Value::Object(v.ddoc.clone()),
        )?;
        let level = q.group_level.unwrap_or(GroupLevel::Level(0));
        let limit = q.limit.unwrap_or(u64::MAX).min(usize::MAX as u64) as usize;
        // One group over one range: from the stored reductions. Where they
        // fail (a value the reduce refuses), the rows are reduced as they
        // are read, which says where.
        if let (GroupLevel::Level(0), None) = (level, &q.keys) {
            let range = &Self::ranges(&v.def, q)[0];
            if let Some(value) = reducer.stored(self.stored_reduction(idx, &reducer, range))? {
                let rows: Vec<Value> = value
                    .map(|value| json!({"key": null, "value": value}))
                    .into_iter()
                    .skip(q.skip as usize)
                    .take(limit)
                    .collect();
                return Ok(json!({ "rows": rows }));
            }
        }
        let (keys, values) = reducer.reads();
        // A partition query's rows all start with its prefix.
        let skip = q
            .partition
            .as_deref()
            .map_or(0, |p| partition::key_prefix(p).len());
        // A group is identified by the start of its rows' encoded keys (rows
        // come in that order): the whole key for exact groups, the leading
        // items for `group_level`, nothing for a single group.
        let identity = |sort_key: &[u8]| -> usize {
            match level {
                GroupLevel::Level(0) => 0,
                GroupLevel::Exact => sort_key.len(),
                GroupLevel::Level(n) => {
                    shared::collate::array_prefix(&sort_key[skip..], n as usize, v.def.raw)
                        .map_or(sort_key.len(), |len| skip + len)
                }
            }
        };
        let want = (q.skip as usize).saturating_add(limit);
        let mut ranges = Self::ranges(&v.def, q);
        let mut groups: Vec<Value> = Vec::new();
        // Large groups are reduced range by range, from counts or stored
        // reductions; what the walk leaves is scanned row by row.
        if q.keys.is_none() && level != GroupLevel::Level(0) {
            let walked = self.walk_groups(idx, &reducer, &ranges[0], level, &identity, want)?;
            groups = walked.groups;
            ranges = walked.rest.into_iter().collect();
        }
        let mut current: Option<(Vec<u8>, Value)> = None;
        let mut members: Vec<Row> = Vec::new();
        // Closes the current group; says how many groups there are now.
        let mut flush = |current: &mut Option<(Vec<u8>, Value)>,
                         members: &mut Vec<Row>|
         -> CouchResult<usize> {
            let rows = std::mem::take(members);
            if let Some((_, key)) = current.take() {
                let value = reducer.reduce(rows)?;
                groups.push(json!({"key": key, "value": value}));
            }
            Ok(groups.len())
        };
        'scan: for range in ranges {
            let mut after = None;
            loop {
                let (page, last) =
                    self.store
                        .view_scan_after(idx, &range, after.as_ref(), SCAN_PAGE)?;
                let full = page.len() as u64 == SCAN_PAGE;
                after = last;
                for r in page {
                    let id = &r.sort_key[..identity(&r.sort_key)];
                    if current.as_ref().is_some_and(|(e, _)| e.as_slice() != id)
                        && flush(&mut current, &mut members)? >= want
                    {
                        break 'scan;
                    }
                    let parse = |json: &str, wanted: bool| -> CouchResult<Value> {
                        Ok(if wanted {
                            serde_json::from_str(json)?
                        } else {
                            Value::Null
                        })
                    };
                    if current.is_none() {
                        let key: Value = serde_json::from_str(&r.key)?;
                        current = Some((id.to_vec(), view::group_key(&key, level)));
                    }
                    members.push((parse(&r.key, keys)?, r.doc_id, parse(&r.value, values)?));
                }
                if !full {
                    break;
                }
            }
            if q.keys.is_some() {
                flush(&mut current, &mut members)?;
            }
        }
        flush(&mut current, &mut members)?;
        let rows: Vec<Value> = groups
            .into_iter()
            .skip(q.skip as usize)
            .take(limit)
            .collect();
        Ok(json!({ "rows": rows }))
    }

    /// One round of background index building, as the actor's alarm runs
    /// it: first the indexes queries are waiting for (`wanted`), then every
    /// view and search index of every design document without
    /// `"autoupdate": false`, as far as the budget goes. So the first
    /// query after a bulk load finds its index built.
    pub fn refresh_views(&self, wanted: &[IndexName]) -> CouchResult<Refresh> {
        let mut out = Refresh::default();
        let partitioned = self.meta()?.partitioned;
        let mut builds: Vec<(Build, bool)> = Vec::new();
        for w in wanted {
            match self.build_of(w) {
                Ok(b) => builds.push((b, true)),
                Err(e) => out.failures.push(e),
            }
        }
        // A round with views that queries wait for builds only those, so
        // the queries answer once they are done rather than after the
        // others' share of the round too; the next round (which
        // `BuildScheduler::round` then arms) updates the rest.
        let auto = if wanted.is_empty() {
            self.design_docs()?
        } else {
            Vec::new()
        };
        for (id, ddoc) in auto {
            if ddoc.get("autoupdate") == Some(&Value::Bool(false)) {
                continue;
            }
            let ddoc_name = id.trim_start_matches("_design/").to_string();
            for (view, def) in ViewDef::all(&ddoc, partitioned) {
                let name = IndexName::view(ddoc_name.clone(), view);
                if !wanted.contains(&name) {
                    let ddoc = ddoc.clone();
                    builds.push((Build::View(Resolved { name, def, ddoc }), false));
                }
            }
            for s in crate::search::SearchIndex::all(&ddoc_name, &ddoc) {
                if !wanted.contains(&s.name) {
                    builds.push((Build::Search(s), false));
                }
            }
        }
        // Index builds write only index rows: the sequence they chase
        // stays where it is for the whole round.
        let update_seq = self.store.stats()?.update_seq;
        for (b, asked) in builds {
            let sig = b.signature();
            if !asked && STALLED.with(|s| s.borrow().contains(&sig)) {
                continue;
            }
            let (idx, seq_before) = match self.transact(|| b.index(self)) {
                Ok(found) => found,
                Err(e) => {
                    out.failures.push(e);
                    continue;
                }
            };
            let built = match self.builds.left() {
                0 => Ok(false),
                _ => b.update(self, idx, seq_before),
            };
            match built {
                Ok(true) => {}
                Ok(false) => {
                    let step = BuildStep {
                        seq_before,
                        seq_after: b.index(self)?.1,
                        update_seq,
                    };
                    out.unfinished.push((b.name().clone(), step));
                }
                Err(e) => {
                    // A function stopped by a sandbox budget would stop
                    // again on every write: only queries retry it.
                    STALLED.with(|s| s.borrow_mut().insert(sig));
                    out.failures.push(e);
                }
            }
        }
        Ok(out)
    }

    fn build_of(&self, name: &IndexName) -> CouchResult<Build> {
        Ok(match name.kind {
            IndexKind::View => Build::View(self.resolve(&name.ddoc, &name.name)?),
            IndexKind::Search(kind) => {
                Build::Search(self.resolve_search(&name.ddoc, kind, &name.name)?)
            }
        })
    }

    /// Whether any design document defines a view or a search index (else
    /// writes need no background index building).
    pub fn has_views(&self) -> CouchResult<bool> {
        let partitioned = self.meta()?.partitioned;
        Ok(self.design_docs()?.iter().any(|(id, ddoc)| {
            !ViewDef::all(ddoc, partitioned).is_empty()
                || !crate::search::SearchIndex::all(id, ddoc).is_empty()
        }))
    }

    /// What a view answer's `ETag` adds to its rows when documents are
    /// included: the database's update sequence.
    pub fn etag_salt(&self) -> CouchResult<String> {
        Ok(self.store.stats()?.update_seq.to_string())
    }

    /// `POST /db/_view_cleanup`: drops indexes no design document uses.
    pub fn view_cleanup(&self) -> CouchResult<()> {
        let mut live = std::collections::HashSet::new();
        let partitioned = self.meta()?.partitioned;
        for (_, ddoc) in self.design_docs()? {
            live.extend(
                ViewDef::all(&ddoc, partitioned)
                    .iter()
                    .map(|(_, d)| d.signature(&ddoc)),
            );
        }
        self.transact(|| {
            for (idx, sig) in self.store.view_signatures()? {
                if !live.contains(&sig) {
                    self.store.drop_view_index(idx)?;
                }
            }
            self.search_cleanup()
        })
    }

    /// `GET /db/_design/{ddoc}/_info`. `update_seq` is how far all of the
    /// design document's indexes are built (the least of them).
    pub fn design_info(&self, ddoc: &str) -> CouchResult<Value> {
        let body = self.design_doc(ddoc)?;
        let partitioned = self.meta()?.partitioned;
        let sigs: Vec<String> = ViewDef::all(&body, partitioned)
            .iter()
            .map(|(_, d)| d.signature(&body))
            .collect();
        let mut built = None::<u64>;
        for sig in &sigs {
            let seq = self.store.view_seq(sig)?.unwrap_or(0);
            built = Some(built.map_or(seq, |b| b.min(seq)));
        }
        let signature = sigs.join("");
        let update_seq = built.unwrap_or(self.store.stats()?.update_seq);
        let pending = self.store.count_since(update_seq)?;
        Ok(json!({
            "name": ddoc,
            "view_index": {
                "signature": &signature[..signature.len().min(32)],
                "language": body.get("language").cloned().unwrap_or(json!("javascript")),
                "update_seq": update_seq,
                // Changed documents the indexes have yet to see (one shard, so
                // the minimum, preferred and total are the same).
                "updates_pending": {"minimum": pending, "preferred": pending, "total": pending},
                "collator_versions": [shared::collate::COLLATOR_VERSION],
                "purge_seq": 0,
                "updater_running": false,
                "compact_running": false,
                "waiting_clients": 0,
                "waiting_commit": false,
                "sizes": {"active": 0, "external": 0, "file": 0},
            }
        }))
    }
}
