//! The database actor's storage: every table and every SQL statement of a
//! database lives here, behind the [`Sql`] interface.
//!
//! Layout:
//! - `meta`: the database's identity and settings (name, instance tag,
//!   `_revs_limit`, `_security`).
//! - `stats`: one row of counters updated with every write (update
//!   sequence, live and deleted document counts, body bytes).
//! - `docs`: one row per document: its winning revision, whether that is a
//!   deletion, the sequence of its latest change (unique, so a document
//!   appears once in `_changes`), and its revision tree.
//! - `bodies`: the JSON body of every leaf revision, and of revisions that
//!   stopped being leaves until `_compact` drops them (as CouchDB keeps
//!   them readable until compaction). Bodies larger than one SQLite value
//!   are split into parts.
//! - `local_docs`: `_local` documents, which have no history and no sequence.
//! - `att_blobs`: attachment contents, addressed by digest (one copy for
//!   every revision and document that has the same bytes), in parts below
//!   the per-value limit. Unreferenced ones go at compaction.
//! - `att_info`: how a blob is stored when not as plain bytes (gzip for
//!   CouchDB's compressible types); no row means identity.
//! - `att_remote`: contents kept in the R2 bucket (`crate::remote`); while
//!   `staged`, the bytes are still in `att_blobs` awaiting upload.
//! - `mango_indexes`: one row per Mango JSON index built so far: its design
//!   document and name, the signature of its definition (a changed
//!   definition is rebuilt from scratch) and the update sequence it is
//!   current to.
//! - `mango_rows`: one row per indexed document: the index, the document's
//!   composite key (`shared::mango`, memcmp-ordered) and its id, so a query
//!   is a range scan of the primary key.
//! - `view_indexes`: one row per map/reduce view index, by the signature
//!   of its definition (`shared::view::ViewDef::signature`), with the
//!   update sequence it is current to.
//! - `view_rows`: the emitted rows: the index, the key's collation
//!   encoding (memcmp-ordered BLOB, so ranges are index scans), the
//!   document id, the emit's position in that document, and the key and
//!   value as JSON.
//! - `reduction_trees`, `reductions`, `reductions_dirty`: stored
//!   reductions (`crate::reductions`): one tree per view index and reduce
//!   that has them, each block's reduction by level and starting row, and
//!   the rows written since the tree was last brought up to date.

use shared::all_docs::KeyRange;
use shared::doc::is_design;
use shared::error::{CouchError, CouchResult};
use shared::rev::Rev;
use shared::rev_tree::RevTree;
use shared::sql::json_rows::{Cell as JsonCell, JsonRows};
use shared::sql::{Row, Sql, Value, MAX_BOUND_PARAMS, MAX_VALUE_BYTES};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// Bytes per stored body part: below the platform's per-value limit with
/// room for the row's other columns.
pub const BODY_PART_BYTES: usize = MAX_VALUE_BYTES - 64 * 1024;

/// The most an index row (its keys, id and value together) may hold: a
/// Durable Object's SQLite refuses larger rows, and one document emitting
/// a huge key must not make every query of its view fail. Larger rows are
/// left out and logged, as CouchDB leaves out what a map function fails on.
pub const INDEX_ROW_BYTES: usize = BODY_PART_BYTES;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v)",
    "CREATE TABLE IF NOT EXISTS stats (id INTEGER PRIMARY KEY CHECK (id = 0), \
     update_seq INTEGER NOT NULL, doc_count INTEGER NOT NULL, \
     doc_del_count INTEGER NOT NULL, body_bytes INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, \
     rev TEXT NOT NULL, deleted INTEGER NOT NULL, tree BLOB NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS docs_by_seq ON docs (seq)",
    "CREATE INDEX IF NOT EXISTS docs_deleted ON docs (id) WHERE deleted = 1",
    "CREATE TABLE IF NOT EXISTS bodies (doc_id TEXT NOT NULL, rev TEXT NOT NULL, \
     part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (doc_id, rev, part))",
    "CREATE TABLE IF NOT EXISTS local_docs (id TEXT PRIMARY KEY, rev INTEGER NOT NULL, \
     body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS att_blobs (digest TEXT NOT NULL, part INTEGER NOT NULL, \
     data BLOB NOT NULL, PRIMARY KEY (digest, part))",
    "CREATE TABLE IF NOT EXISTS att_info (digest TEXT PRIMARY KEY, encoding TEXT NOT NULL, \
     encoded_length INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS att_remote (digest TEXT PRIMARY KEY, staged INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS mango_indexes (id INTEGER PRIMARY KEY, ddoc TEXT NOT NULL, \
     name TEXT NOT NULL, sig TEXT NOT NULL, seq INTEGER NOT NULL, UNIQUE (ddoc, name))",
    "CREATE TABLE IF NOT EXISTS mango_rows (idx INTEGER NOT NULL, key BLOB NOT NULL, \
     doc_id TEXT NOT NULL, PRIMARY KEY (idx, key, doc_id)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS mango_rows_by_doc ON mango_rows (idx, doc_id)",
    "CREATE TABLE IF NOT EXISTS view_indexes (id INTEGER PRIMARY KEY, sig TEXT NOT NULL UNIQUE, \
     seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS view_rows (idx INTEGER NOT NULL, key BLOB NOT NULL, \
     doc_id TEXT NOT NULL, n INTEGER NOT NULL, key_json TEXT NOT NULL, value_json TEXT NOT NULL, \
     PRIMARY KEY (idx, key, doc_id, n)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS view_rows_by_doc ON view_rows (idx, doc_id)",
    // Each view index's row count, kept with its rows (a view query's
    // `total_rows`); an index without one is counted once when asked.
    "CREATE TABLE IF NOT EXISTS view_counts (idx INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reduction_trees (id INTEGER PRIMARY KEY, idx INTEGER NOT NULL, \
     reducer TEXT NOT NULL, UNIQUE (idx, reducer))",
    "CREATE TABLE IF NOT EXISTS reductions (tree INTEGER NOT NULL, level INTEGER NOT NULL, \
     key BLOB NOT NULL, doc_id TEXT NOT NULL, n INTEGER NOT NULL, red TEXT NOT NULL, \
     PRIMARY KEY (tree, level, key, doc_id, n)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS reductions_dirty (tree INTEGER NOT NULL, key BLOB NOT NULL, \
     doc_id TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (tree, key, doc_id, n)) WITHOUT ROWID",
];

const TABLES: &[&str] = &[
    "meta",
    "stats",
    "docs",
    "bodies",
    "local_docs",
    "att_blobs",
    "att_info",
    "att_remote",
    "mango_indexes",
    "mango_rows",
    "view_indexes",
    "view_rows",
    "view_counts",
    "reduction_trees",
    "reductions",
    "reductions_dirty",
];

/// A Mango index's bookkeeping row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MangoIndexRow {
    pub id: i64,
    pub ddoc: String,
    pub name: String,
    pub sig: String,
    pub seq: u64,
}

/// The key range of a Mango index scan: `(bound, inclusive)` ends, and
/// where a previous page stopped (exclusive).
#[derive(Debug, Clone, Default)]
pub struct MangoScan<'k> {
    pub lower: Option<(&'k [u8], bool)>,
    pub upper: Option<(&'k [u8], bool)>,
    pub after: Option<(&'k [u8], &'k str)>,
    pub descending: bool,
}

/// A document's row.
#[derive(Debug, Clone)]
pub struct DocRecord {
    pub id: String,
    pub seq: u64,
    pub winner: Rev,
    pub deleted: bool,
    pub tree: RevTree,
}

impl DocRecord {
    /// The leaves other than the winner: live ones (`_conflicts`) or
    /// deleted ones (`_deleted_conflicts`).
    pub fn conflicts(&self, deleted: bool) -> Vec<String> {
        self.tree
            .leaves()
            .into_iter()
            .filter(|l| l.deleted == deleted && l.rev != self.winner)
            .map(|l| l.rev.to_string())
            .collect()
    }
}

/// Values a store read and keeps until it writes them (or a transaction
/// that may have rolls back): asked by most requests, they change only
/// through this store.
#[derive(Debug, Default)]
pub struct Kept {
    /// [`Store::design_seq`]: asked once per document written (by
    /// `validate_doc_update`), it changes only with a design document.
    design_seq: Cell<Option<u64>>,
    /// [`Store::stats`]: read by every write and most queries.
    stats: Cell<Option<Stats>>,
}

/// The counters kept in `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub update_seq: u64,
    pub doc_count: u64,
    pub doc_del_count: u64,
    pub body_bytes: u64,
}

/// Upserting a document's row: the columns, then (after the rows) what a
/// row for an existing id changes.
const SAVE_DOC: &str = "INSERT INTO docs (id, seq, rev, deleted, tree)";
/// The rows of [`Store::doc_rows`], in `SAVE_DOC`'s columns.
const DOC_ROWS: &str = "SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, \
     unhex(j.value ->> 4) FROM json_each(?) j";
const SAVE_DOC_CONFLICT: &str = "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, \
     rev = excluded.rev, deleted = excluded.deleted, tree = excluded.tree";

/// The storage engine of one database.
pub struct Store<'a> {
    pub sql: &'a dyn Sql,
    /// Writes of many documents held back to go out several rows per
    /// statement (see [`Store::buffer_writes`]); `None` writes at once.
    pending: RefCell<Option<Pending>>,
    /// Records and bodies a read-only request of many documents read
    /// ahead (see [`Store::read_ahead`]); `None` reads each when asked.
    reads: RefCell<Option<ReadAhead>>,
    /// What it read and keeps, shared with the actor's later requests
    /// (see [`crate::database::ActorCache`]).
    pub(crate) kept: Rc<Kept>,
}

/// What [`Store::read_ahead`] and [`Store::read_ahead_bodies`] found:
/// a record per id asked (`None`: no such document), and bodies by
/// document id and revision, each handed out once.
#[derive(Default)]
struct ReadAhead {
    records: HashMap<String, Option<DocRecord>>,
    bodies: HashMap<(String, String), Vec<u8>>,
}

/// Ends a read-ahead when dropped, so an early error cannot leave stale
/// records behind for a later request.
pub struct ReadAheadGuard<'s, 'a>(&'s Store<'a>);

impl Drop for ReadAheadGuard<'_, '_> {
    fn drop(&mut self) {
        self.0.reads.borrow_mut().take();
    }
}

/// Documents and bodies waiting for [`Store::flush_writes`], and the
/// records of the documents about to be written, read ahead together.
#[derive(Default)]
struct Pending {
    /// Every id held back, with its record (`None`: a new document).
    read_ahead: HashMap<String, Option<DocRecord>>,
    docs: Vec<DocRecord>,
    bodies: Vec<BodyPart>,
}

/// A row of `bodies`: document id, revision, part number, bytes.
type BodyPart = (String, String, i64, Vec<u8>);

fn text(row: &mut Row, i: usize) -> String {
    std::mem::replace(&mut row[i], Value::Null)
        .into_string()
        .unwrap_or_default()
}

/// Joins the first column of part rows (in order); `None` without rows.
fn join_parts(rows: Vec<Row>) -> Option<Vec<u8>> {
    if rows.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for mut r in rows {
        out.extend(
            std::mem::replace(&mut r[0], Value::Null)
                .into_bytes()
                .unwrap_or_default(),
        );
    }
    Some(out)
}

/// Splits a value into parts below the per-value limit (an empty value is
/// one empty part, so it still has a row).
fn split_parts(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        vec![data]
    } else {
        data.chunks(BODY_PART_BYTES).collect()
    }
}

fn int(row: &Row, i: usize) -> u64 {
    row[i].as_i64().unwrap_or(0).max(0) as u64
}

impl<'a> Store<'a> {
    pub fn new(sql: &'a dyn Sql) -> Self {
        Store {
            sql,
            pending: RefCell::new(None),
            reads: RefCell::new(None),
            kept: Rc::default(),
        }
    }

    /// Holds back the writes of the documents `ids` (each written once,
    /// and read by nothing else before [`Self::flush_writes`]), after
    /// reading their records ahead, 99 ids per statement: a `_bulk_docs`
    /// of a thousand documents then takes a few dozen statements, not
    /// three thousand.
    pub fn buffer_writes(&self, ids: &[&str]) -> CouchResult<()> {
        let pending = Pending {
            read_ahead: self.records_of(ids)?,
            ..Pending::default()
        };
        *self.pending.borrow_mut() = Some(pending);
        Ok(())
    }

    /// The records of `ids`, 99 ids per statement (`None`: no document).
    fn records_of(&self, ids: &[&str]) -> CouchResult<HashMap<String, Option<DocRecord>>> {
        let mut found: HashMap<String, Option<DocRecord>> =
            ids.iter().map(|&id| (id.to_string(), None)).collect();
        let select = "SELECT id, seq, rev, deleted, tree FROM docs WHERE id IN {ids}";
        for row in self.exec_per_ids(&[], ids, select)? {
            let rec = Self::record_from_row(row)?;
            found.insert(rec.id.clone(), Some(rec));
        }
        Ok(found)
    }

    /// Reads the records of `ids` ahead for a request that only reads
    /// (`_bulk_get`, `_revs_diff`): [`Self::load_doc`] answers from them
    /// until the guard is dropped. Nothing may be written meanwhile.
    pub fn read_ahead(&self, ids: &[&str]) -> CouchResult<ReadAheadGuard<'_, 'a>> {
        let records = self.records_of(ids)?;
        *self.reads.borrow_mut() = Some(ReadAhead {
            records,
            bodies: HashMap::new(),
        });
        Ok(ReadAheadGuard(self))
    }

    /// Within a [`Self::read_ahead`], reads the bodies of these revisions
    /// (document id, revision), 49 per statement, for [`Self::body`].
    pub fn read_ahead_bodies(&self, mut wanted: Vec<(&str, String)>) -> CouchResult<()> {
        // A revision asked twice is read once (its parts would repeat).
        wanted.sort_unstable();
        wanted.dedup();
        let mut bodies: HashMap<(String, String), Vec<u8>> = HashMap::new();
        for chunk in wanted.chunks(MAX_BOUND_PARAMS / 2) {
            let marks = vec!["(?, ?)"; chunk.len()].join(", ");
            let params: Vec<Value> = chunk
                .iter()
                .flat_map(|(id, rev)| [(*id).into(), rev.as_str().into()])
                .collect();
            // Joining the list to the table (not `IN`) lets SQLite look
            // each pair up by the primary key instead of scanning.
            for mut row in self.sql.query(
                &format!(
                    "SELECT b.doc_id, b.rev, b.data FROM (VALUES {marks}) AS w \
                     CROSS JOIN bodies b ON b.doc_id = w.column1 AND b.rev = w.column2 \
                     ORDER BY b.doc_id, b.rev, b.part"
                ),
                &params,
            )? {
                let key = (text(&mut row, 0), text(&mut row, 1));
                let data = std::mem::replace(&mut row[2], Value::Null)
                    .into_bytes()
                    .unwrap_or_default();
                bodies.entry(key).or_default().extend(data);
            }
        }
        if let Some(reads) = self.reads.borrow_mut().as_mut() {
            reads.bodies.extend(bodies);
        }
        Ok(())
    }

    /// Forgets what [`Self::buffer_writes`] held back (its transaction
    /// failed), and writes at once from then on.
    pub fn discard_writes(&self) {
        self.pending.borrow_mut().take();
    }

    /// Writes what [`Self::buffer_writes`] held back, several rows per
    /// statement, and writes at once from then on.
    pub fn flush_writes(&self) -> CouchResult<()> {
        let Some(p) = self.pending.borrow_mut().take() else {
            return Ok(());
        };
        self.write_bodies(p.bodies)?;
        let (new, known): (Vec<DocRecord>, Vec<DocRecord>) = p
            .docs
            .into_iter()
            .partition(|r| matches!(p.read_ahead.get(&r.id), Some(None)));
        self.write_docs(&known)?;
        self.insert_new_docs(&new)
    }

    /// Inserts the rows of documents that had none, several per statement.
    /// `OR IGNORE` spares SQLite the statement journal (see
    /// [`Self::write_bodies`]); the rows it inserted are counted, so a row
    /// found there after all is an error, not a silent loss.
    fn insert_new_docs(&self, recs: &[DocRecord]) -> CouchResult<()> {
        let insert = "INSERT OR IGNORE INTO docs (id, seq, rev, deleted, tree)";
        let inserted = self.exec_json_rows(
            &format!("{insert} {DOC_ROWS} RETURNING 1"),
            &format!("{insert} VALUES (?, ?, ?, ?, ?) RETURNING 1"),
            &[],
            Self::doc_rows(recs),
        )?;
        if inserted.len() != recs.len() {
            return Err(CouchError::internal(
                "a new document's row or sequence was taken",
            ));
        }
        Ok(())
    }

    /// Writes body parts, several per statement (all of one statement's
    /// under 1 MB unless one part alone is bigger). A revision's body
    /// never changes once stored, so a part already there is kept: with
    /// `OR IGNORE` no statement can abort halfway, and SQLite keeps no
    /// statement journal for it (that journal, written to a file for
    /// statements of many rows, was a tenth of a bulk load's time).
    fn write_bodies(&self, parts: Vec<BodyPart>) -> CouchResult<()> {
        const BATCH_BYTES: usize = 1 << 20;
        let mut parts = parts.into_iter().peekable();
        while parts.peek().is_some() {
            let mut params: Vec<Value> = Vec::new();
            let mut bytes = 0;
            while let Some(next) = parts.peek() {
                let full = params.len() + 4 > MAX_BOUND_PARAMS;
                if full || (!params.is_empty() && bytes + next.3.len() > BATCH_BYTES) {
                    break;
                }
                let (id, rev, part, data) = parts.next().expect("peeked");
                bytes += data.len();
                params.extend([id.into(), rev.into(), part.into(), data.into()]);
            }
            let marks = vec!["(?, ?, ?, ?)"; params.len() / 4].join(", ");
            self.sql.exec(
                &format!("INSERT OR IGNORE INTO bodies (doc_id, rev, part, data) VALUES {marks}"),
                &params,
            )?;
        }
        Ok(())
    }

    /// Upserts document rows, several per statement.
    fn write_docs(&self, recs: &[DocRecord]) -> CouchResult<()> {
        // `WHERE true` tells the upsert's `ON CONFLICT` from a join's `ON`.
        self.exec_json_rows(
            &format!("{SAVE_DOC} {DOC_ROWS} WHERE true {SAVE_DOC_CONFLICT}"),
            &format!("{SAVE_DOC} VALUES (?, ?, ?, ?, ?) {SAVE_DOC_CONFLICT}"),
            &[],
            Self::doc_rows(recs),
        )?;
        Ok(())
    }

    pub fn init_schema(&self) -> CouchResult<()> {
        for s in SCHEMA.iter().chain(crate::search_store::SCHEMA) {
            self.sql.exec(s, &[])?;
        }
        Ok(())
    }

    /// Drops and recreates every table: the database is gone and a
    /// recreation starts empty.
    pub fn wipe(&self) -> CouchResult<()> {
        self.forget_kept();
        crate::search_store::SearchStore { sql: self.sql }.drop_all()?;
        for t in TABLES.iter().chain(crate::search_store::TABLES) {
            self.sql.exec(&format!("DROP TABLE IF EXISTS {t}"), &[])?;
        }
        self.init_schema()
    }

    // --- meta -----------------------------------------------------------

    pub fn meta(&self, key: &str) -> CouchResult<Option<Value>> {
        Ok(self
            .sql
            .query_row("SELECT v FROM meta WHERE k = ?", &[key.into()])?
            .map(|mut r| r.swap_remove(0)))
    }

    pub fn set_meta(&self, key: &str, value: Value) -> CouchResult<()> {
        self.sql.exec(
            "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            &[key.into(), value],
        )?;
        Ok(())
    }

    /// Live documents, deleted ones and the live bodies' bytes with ids in
    /// `[first, after)`: a partition's, read from its id range alone.
    pub fn id_range_stats(&self, first: &str, after: &str) -> CouchResult<(u64, u64, u64)> {
        let counts = self.sql.query_row(
            "SELECT COALESCE(SUM(deleted = 0), 0), COALESCE(SUM(deleted), 0) FROM docs \
             WHERE id >= ? AND id < ?",
            &[first.into(), after.into()],
        )?;
        let bytes = self.sql.query_row(
            "SELECT COALESCE(SUM(LENGTH(b.data)), 0) FROM docs d JOIN bodies b \
             ON b.doc_id = d.id AND b.rev = d.rev WHERE d.id >= ? AND d.id < ? AND d.deleted = 0",
            &[first.into(), after.into()],
        )?;
        let (live, deleted) = counts.map_or((0, 0), |r| (int(&r, 0), int(&r, 1)));
        Ok((live, deleted, bytes.map_or(0, |r| int(&r, 0))))
    }

    /// Several meta values in one statement: `(key, value)` for those set.
    pub fn meta_values(&self, keys: &[&str]) -> CouchResult<Vec<(String, Value)>> {
        let marks = vec!["?"; keys.len()].join(", ");
        let params: Vec<Value> = keys.iter().map(|k| (*k).into()).collect();
        Ok(self
            .sql
            .query(
                &format!("SELECT k, v FROM meta WHERE k IN ({marks})"),
                &params,
            )?
            .into_iter()
            .map(|mut r| (text(&mut r, 0), r.swap_remove(1)))
            .collect())
    }

    pub fn meta_string(&self, key: &str) -> CouchResult<Option<String>> {
        Ok(self.meta(key)?.and_then(Value::into_string))
    }

    // --- stats ----------------------------------------------------------

    /// The last sequence at which any design document changed (0 if none
    /// ever existed): what caches of design documents are keyed by.
    pub fn design_seq(&self) -> CouchResult<u64> {
        if let Some(seq) = self.kept.design_seq.get() {
            return Ok(seq);
        }
        let row = self.sql.query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM docs WHERE id >= '_design/' AND id < '_design0'",
            &[],
        )?;
        let seq = row.map_or(0, |r| int(&r, 0));
        self.kept.design_seq.set(Some(seq));
        Ok(seq)
    }

    /// Forgets the remembered [`Self::design_seq`]: a design document
    /// changed.
    pub fn forget_design_seq(&self) {
        self.kept.design_seq.set(None);
    }

    /// Forgets everything [`Kept`]: a transaction that may have changed
    /// it rolled back, or the tables are gone.
    pub fn forget_kept(&self) {
        self.kept.design_seq.set(None);
        self.kept.stats.set(None);
    }

    fn touched(&self, id: &str) {
        if is_design(id) {
            self.forget_design_seq();
        }
    }

    pub fn stats(&self) -> CouchResult<Stats> {
        if let Some(stats) = self.kept.stats.get() {
            return Ok(stats);
        }
        let row = self.sql.query_row(
            "SELECT update_seq, doc_count, doc_del_count, body_bytes FROM stats WHERE id = 0",
            &[],
        )?;
        let stats = row.map_or_else(Stats::default, |r| Stats {
            update_seq: int(&r, 0),
            doc_count: int(&r, 1),
            doc_del_count: int(&r, 2),
            body_bytes: int(&r, 3),
        });
        self.kept.stats.set(Some(stats));
        Ok(stats)
    }

    pub fn save_stats(&self, s: &Stats) -> CouchResult<()> {
        self.sql.exec(
            "INSERT INTO stats (id, update_seq, doc_count, doc_del_count, body_bytes) \
             VALUES (0, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET update_seq = excluded.update_seq, \
             doc_count = excluded.doc_count, doc_del_count = excluded.doc_del_count, \
             body_bytes = excluded.body_bytes",
            &[
                s.update_seq.into(),
                s.doc_count.into(),
                s.doc_del_count.into(),
                s.body_bytes.into(),
            ],
        )?;
        self.kept.stats.set(Some(*s));
        Ok(())
    }

    // --- documents ------------------------------------------------------

    pub fn load_doc(&self, id: &str) -> CouchResult<Option<DocRecord>> {
        if let Some(rec) = self
            .pending
            .borrow()
            .as_ref()
            .and_then(|p| p.read_ahead.get(id))
        {
            return Ok(rec.clone());
        }
        if let Some(rec) = self.reads.borrow().as_ref().and_then(|r| r.records.get(id)) {
            return Ok(rec.clone());
        }
        let row = self.sql.query_row(
            "SELECT id, seq, rev, deleted, tree FROM docs WHERE id = ?",
            &[id.into()],
        )?;
        row.map(Self::record_from_row).transpose()
    }

    fn record_from_row(mut r: Row) -> CouchResult<DocRecord> {
        let tree = RevTree::from_bytes(r[4].as_bytes().unwrap_or_default())?;
        Ok(DocRecord {
            id: text(&mut r, 0),
            seq: int(&r, 1),
            winner: text(&mut r, 2).parse()?,
            deleted: int(&r, 3) != 0,
            tree,
        })
    }

    pub fn save_doc(&self, rec: &DocRecord) -> CouchResult<()> {
        self.touched(&rec.id);
        if let Some(p) = self.pending.borrow_mut().as_mut() {
            p.docs.push(rec.clone());
            return Ok(());
        }
        self.write_docs(std::slice::from_ref(rec))
    }

    /// Document rows as [`DOC_ROWS`] reads them.
    fn doc_rows(recs: &[DocRecord]) -> Vec<Vec<Value>> {
        recs.iter()
            .map(|rec| {
                vec![
                    rec.id.as_str().into(),
                    rec.seq.into(),
                    rec.winner.to_string().into(),
                    rec.deleted.into(),
                    rec.tree.to_bytes().into(),
                ]
            })
            .collect()
    }

    /// Removes a document's row (its bodies are the caller's to delete).
    pub fn delete_doc(&self, id: &str) -> CouchResult<()> {
        self.touched(id);
        self.sql
            .exec("DELETE FROM docs WHERE id = ?", &[id.into()])?;
        Ok(())
    }

    /// Documents changed after `since`, in sequence order (or reverse),
    /// at most `limit`.
    pub fn docs_by_seq(
        &self,
        since: u64,
        descending: bool,
        limit: u64,
    ) -> CouchResult<Vec<DocRecord>> {
        let sql = if descending {
            "SELECT id, seq, rev, deleted, tree FROM docs WHERE seq > ? ORDER BY seq DESC LIMIT ?"
        } else {
            "SELECT id, seq, rev, deleted, tree FROM docs WHERE seq > ? ORDER BY seq LIMIT ?"
        };
        self.sql
            .query(sql, &[since.into(), limit.into()])?
            .into_iter()
            .map(Self::record_from_row)
            .collect()
    }

    /// [`Self::docs_by_seq`] ascending, each with its winning revision's
    /// body (`None` for a deletion or a body not kept): one statement for
    /// the batch, where indexers would otherwise read each body alone.
    /// A body of several parts has the rest read after.
    pub fn docs_with_bodies(
        &self,
        since: u64,
        limit: u64,
    ) -> CouchResult<Vec<(DocRecord, Option<Vec<u8>>)>> {
        let rows = self.sql.query(
            "SELECT d.id, d.seq, d.rev, d.deleted, d.tree, b.data FROM docs d \
             LEFT JOIN bodies b ON b.doc_id = d.id AND b.rev = d.rev AND b.part = 0 \
             WHERE d.seq > ? ORDER BY d.seq LIMIT ?",
            &[since.into(), limit.into()],
        )?;
        rows.into_iter()
            .map(|mut r| {
                let first = std::mem::replace(&mut r[5], Value::Null).into_bytes();
                let rec = Self::record_from_row(r)?;
                let body = match first {
                    Some(b) if b.len() >= BODY_PART_BYTES => self.body(&rec.id, &rec.winner)?,
                    other => other,
                };
                Ok((rec, body))
            })
            .collect()
    }

    /// Up to `limit` documents whose latest change is before `before`,
    /// newest first (descending scans in batches).
    pub fn docs_before(&self, before: u64, limit: u64) -> CouchResult<Vec<DocRecord>> {
        self.sql
            .query(
                "SELECT id, seq, rev, deleted, tree FROM docs WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                &[before.into(), limit.into()],
            )?
            .into_iter()
            .map(Self::record_from_row)
            .collect()
    }

    pub fn count_since(&self, since: u64) -> CouchResult<u64> {
        Ok(self
            .sql
            .query_i64("SELECT count(*) FROM docs WHERE seq > ?", &[since.into()])?
            .max(0) as u64)
    }

    /// Live documents with ids in `range`, ascending or descending, after
    /// skipping `skip`, at most `limit`: `(id, winning rev)` pairs.
    pub fn live_ids(
        &self,
        range: &KeyRange,
        descending: bool,
        skip: u64,
        limit: u64,
    ) -> CouchResult<Vec<(String, String)>> {
        let rows = self.range_rows(
            "id, rev",
            "docs WHERE deleted = 0",
            range,
            descending,
            skip,
            limit,
        )?;
        Ok(rows
            .into_iter()
            .map(|mut r| (text(&mut r, 0), text(&mut r, 1)))
            .collect())
    }

    /// Rows of `columns` from `from` (a table and its conditions) whose id
    /// falls in `range`, in id order.
    fn range_rows(
        &self,
        columns: &str,
        from: &str,
        range: &KeyRange,
        descending: bool,
        skip: u64,
        limit: u64,
    ) -> CouchResult<Vec<Row>> {
        let (cond, mut params) = range.sql_condition("id");
        let order = if descending { "DESC" } else { "ASC" };
        let sql =
            format!("SELECT {columns} FROM {from}{cond} ORDER BY id {order} LIMIT ? OFFSET ?");
        params.push(limit.into());
        params.push(skip.into());
        Ok(self.sql.query(&sql, &params)?)
    }

    /// How many live documents fall in `range`.
    pub fn count_live(&self, range: &KeyRange) -> CouchResult<u64> {
        // All ids in range (the primary key's index alone), less the
        // deleted ones (a partial index of those): filtering on `deleted`
        // would read every row of the range from the table, which made
        // `offset` cost as much as the page it numbers.
        let (cond, mut params) = range.sql_condition("id");
        params.extend(params.clone());
        let sql = format!(
            "SELECT (SELECT count(*) FROM docs WHERE 1{cond}) - \
             (SELECT count(*) FROM docs WHERE deleted = 1{cond})"
        );
        Ok(self.sql.query_i64(&sql, &params)?.max(0) as u64)
    }

    // --- bodies ---------------------------------------------------------

    /// The stored body of a revision, if it is still kept (leaves, and
    /// superseded revisions until compaction).
    pub fn body(&self, id: &str, rev: &Rev) -> CouchResult<Option<Vec<u8>>> {
        if let Some(reads) = self.reads.borrow_mut().as_mut() {
            if let Some(body) = reads.bodies.remove(&(id.to_string(), rev.to_string())) {
                return Ok(Some(body));
            }
        }
        let rows = self.sql.query(
            "SELECT data FROM bodies WHERE doc_id = ? AND rev = ? ORDER BY part",
            &[id.into(), rev.to_string().into()],
        )?;
        Ok(join_parts(rows))
    }

    pub fn put_body(&self, id: &str, rev: &Rev, body: &[u8]) -> CouchResult<()> {
        let rev = rev.to_string();
        let parts: Vec<BodyPart> = split_parts(body)
            .into_iter()
            .enumerate()
            .map(|(i, part)| (id.to_string(), rev.clone(), i as i64, part.to_vec()))
            .collect();
        if let Some(p) = self.pending.borrow_mut().as_mut() {
            p.bodies.extend(parts);
            return Ok(());
        }
        self.write_bodies(parts)
    }

    /// A stored body's size in bytes (0 when not kept).
    pub fn body_size(&self, id: &str, rev: &Rev) -> CouchResult<u64> {
        let size = self.sql.query_i64(
            "SELECT coalesce(sum(length(data)), 0) FROM bodies WHERE doc_id = ? AND rev = ?",
            &[id.into(), rev.to_string().into()],
        )?;
        Ok(size.max(0) as u64)
    }

    /// The revisions of a document whose bodies are kept.
    pub fn body_revs(&self, id: &str) -> CouchResult<std::collections::HashSet<String>> {
        Ok(self
            .sql
            .query(
                "SELECT rev FROM bodies WHERE doc_id = ? AND part = 0",
                &[id.into()],
            )?
            .into_iter()
            .map(|mut r| text(&mut r, 0))
            .collect())
    }

    /// Drops a body; returns its size in bytes.
    pub fn delete_body(&self, id: &str, rev: &Rev) -> CouchResult<u64> {
        let params = [id.into(), rev.to_string().into()];
        let size = self.sql.query_i64(
            "SELECT coalesce(sum(length(data)), 0) FROM bodies WHERE doc_id = ? AND rev = ?",
            &params,
        )?;
        if size > 0 {
            self.sql
                .exec("DELETE FROM bodies WHERE doc_id = ? AND rev = ?", &params)?;
        }
        Ok(size.max(0) as u64)
    }

    // --- attachment contents --------------------------------------------

    /// Whether a content is stored, here or in the bucket.
    pub fn has_blob(&self, digest: &str) -> CouchResult<bool> {
        Ok(self
            .sql
            .query_row(
                "SELECT 1 FROM att_blobs WHERE digest = ? AND part = 0 \
                 UNION ALL SELECT 1 FROM att_remote WHERE digest = ?",
                &[digest.into(), digest.into()],
            )?
            .is_some())
    }

    /// Stores content under its digest, unless it is already there;
    /// gzip-encoded when `compress` is a level.
    /// `remote` content is staged for upload to the bucket, as sent.
    pub fn put_blob(
        &self,
        digest: &str,
        data: &[u8],
        compress: Option<u32>,
        remote: bool,
    ) -> CouchResult<()> {
        if self.has_blob(digest)? {
            return Ok(());
        }
        if remote {
            self.sql.exec(
                "INSERT INTO att_remote (digest, staged) VALUES (?, 1)",
                &[digest.into()],
            )?;
        }
        let gz = compress
            .filter(|_| !remote)
            // Even when it does not shrink, as CouchDB (clients see the
            // `encoding` in `att_encoding_info`).
            .map(|level| shared::attachments::gzip(data, level));
        if let Some(gz) = &gz {
            self.sql.exec(
                "INSERT INTO att_info (digest, encoding, encoded_length) VALUES (?, 'gzip', ?)",
                &[digest.into(), (gz.len() as i64).into()],
            )?;
        }
        let stored = gz.as_deref().unwrap_or(data);
        for (i, part) in split_parts(stored).into_iter().enumerate() {
            self.sql.exec(
                "INSERT INTO att_blobs (digest, part, data) VALUES (?, ?, ?)",
                &[digest.into(), (i as i64).into(), part.to_vec().into()],
            )?;
        }
        Ok(())
    }

    /// How a blob is stored: `Some((encoding, encoded_length))` unless as
    /// plain bytes.
    pub fn blob_encoding(&self, digest: &str) -> CouchResult<Option<(String, u64)>> {
        Ok(self
            .sql
            .query_row(
                "SELECT encoding, encoded_length FROM att_info WHERE digest = ?",
                &[digest.into()],
            )?
            .and_then(|mut r| {
                let len = r.pop()?.as_i64()?;
                Some((r.pop()?.into_string()?, len as u64))
            }))
    }

    /// A blob's content, decoded.
    pub fn blob(&self, digest: &str) -> CouchResult<Option<Vec<u8>>> {
        let rows = self.sql.query(
            "SELECT data FROM att_blobs WHERE digest = ? ORDER BY part",
            &[digest.into()],
        )?;
        let Some(data) = join_parts(rows) else {
            return Ok(None);
        };
        match self.blob_encoding(digest)? {
            Some(_) => shared::attachments::gunzip(&data).map(Some).map_err(|_| {
                CouchError::internal(format!("stored attachment {digest} is corrupt"))
            }),
            None => Ok(Some(data)),
        }
    }

    /// Every stored content's digest, local or remote.
    pub fn blob_digests(&self) -> CouchResult<Vec<String>> {
        Ok(self
            .sql
            .query(
                "SELECT digest FROM att_blobs WHERE part = 0 \
                 UNION SELECT digest FROM att_remote",
                &[],
            )?
            .into_iter()
            .filter_map(|mut r| r.swap_remove(0).into_string())
            .collect())
    }

    /// Drops a content; true if a copy in the bucket must go too.
    pub fn delete_blob(&self, digest: &str) -> CouchResult<bool> {
        let uploaded = self.remote_state(digest)? == Some(false);
        for table in ["att_blobs", "att_info", "att_remote"] {
            self.sql.exec(
                &format!("DELETE FROM {table} WHERE digest = ?"),
                &[digest.into()],
            )?;
        }
        Ok(uploaded)
    }

    /// `Some(staged)` for a content kept in the bucket.
    pub fn remote_state(&self, digest: &str) -> CouchResult<Option<bool>> {
        Ok(self
            .sql
            .query_row(
                "SELECT staged FROM att_remote WHERE digest = ?",
                &[digest.into()],
            )?
            .map(|r| r.first().and_then(|v| v.as_i64()) == Some(1)))
    }

    /// Contents waiting for upload to the bucket.
    pub fn staged_remote(&self) -> CouchResult<Vec<String>> {
        Ok(self
            .sql
            .query("SELECT digest FROM att_remote WHERE staged = 1", &[])?
            .into_iter()
            .filter_map(|mut r| r.swap_remove(0).into_string())
            .collect())
    }

    /// The content is in the bucket now: drop the local copy.
    pub fn unstage(&self, digest: &str) -> CouchResult<()> {
        self.sql
            .exec("DELETE FROM att_blobs WHERE digest = ?", &[digest.into()])?;
        self.sql.exec(
            "UPDATE att_remote SET staged = 0 WHERE digest = ?",
            &[digest.into()],
        )?;
        Ok(())
    }

    /// Every stored body's document and revision.
    pub fn body_keys(&self) -> CouchResult<Vec<(String, String)>> {
        Ok(self
            .sql
            .query(
                "SELECT doc_id, rev FROM bodies WHERE part = 0 ORDER BY doc_id",
                &[],
            )?
            .into_iter()
            .map(|mut r| (text(&mut r, 0), text(&mut r, 1)))
            .collect())
    }

    // --- local documents ------------------------------------------------

    pub fn local_doc(&self, id: &str) -> CouchResult<Option<(u64, Vec<u8>)>> {
        let row = self.sql.query_row(
            "SELECT rev, body FROM local_docs WHERE id = ?",
            &[id.into()],
        )?;
        Ok(row.map(|mut r| {
            let body = std::mem::replace(&mut r[1], Value::Null)
                .into_bytes()
                .unwrap_or_default();
            (int(&r, 0), body)
        }))
    }

    pub fn put_local_doc(&self, id: &str, rev: u64, body: &[u8]) -> CouchResult<()> {
        if body.len() > MAX_VALUE_BYTES {
            return Err(CouchError::document_too_large(id));
        }
        self.sql.exec(
            "INSERT INTO local_docs (id, rev, body) VALUES (?, ?, ?) ON CONFLICT (id) \
             DO UPDATE SET rev = excluded.rev, body = excluded.body",
            &[id.into(), rev.into(), body.to_vec().into()],
        )?;
        Ok(())
    }

    pub fn delete_local_doc(&self, id: &str) -> CouchResult<()> {
        self.sql
            .exec("DELETE FROM local_docs WHERE id = ?", &[id.into()])?;
        Ok(())
    }

    /// Local documents in id order: `(id, rev, body)`.
    pub fn local_docs(
        &self,
        range: &KeyRange,
        descending: bool,
        skip: u64,
        limit: u64,
    ) -> CouchResult<Vec<(String, u64, Vec<u8>)>> {
        Ok(self
            .range_rows(
                "id, rev, body",
                "local_docs WHERE 1 = 1",
                range,
                descending,
                skip,
                limit,
            )?
            .into_iter()
            .map(|mut r| {
                let body = std::mem::replace(&mut r[2], Value::Null)
                    .into_bytes()
                    .unwrap_or_default();
                (text(&mut r, 0), int(&r, 1), body)
            })
            .collect())
    }

    // --- Mango indexes ----------------------------------------------------

    pub fn mango_indexes(&self) -> CouchResult<Vec<MangoIndexRow>> {
        Ok(self
            .sql
            .query("SELECT id, ddoc, name, sig, seq FROM mango_indexes", &[])?
            .into_iter()
            .map(|mut r| MangoIndexRow {
                id: r[0].as_i64().unwrap_or(0),
                ddoc: text(&mut r, 1),
                name: text(&mut r, 2),
                sig: text(&mut r, 3),
                seq: int(&r, 4),
            })
            .collect())
    }

    /// Registers an empty index (current to sequence 0); returns its id.
    pub fn add_mango_index(&self, ddoc: &str, name: &str, sig: &str) -> CouchResult<i64> {
        self.sql.exec(
            "INSERT INTO mango_indexes (ddoc, name, sig, seq) VALUES (?, ?, ?, 0)",
            &[ddoc.into(), name.into(), sig.into()],
        )?;
        Ok(self.sql.query_i64(
            "SELECT id FROM mango_indexes WHERE ddoc = ? AND name = ?",
            &[ddoc.into(), name.into()],
        )?)
    }

    pub fn drop_mango_index(&self, id: i64) -> CouchResult<()> {
        self.sql
            .exec("DELETE FROM mango_rows WHERE idx = ?", &[id.into()])?;
        self.sql
            .exec("DELETE FROM mango_indexes WHERE id = ?", &[id.into()])?;
        Ok(())
    }

    pub fn set_mango_seq(&self, id: i64, seq: u64) -> CouchResult<()> {
        self.sql.exec(
            "UPDATE mango_indexes SET seq = ? WHERE id = ?",
            &[seq.into(), id.into()],
        )?;
        Ok(())
    }

    /// Replaces a document's row in an index (`None`: it is not indexed).
    pub fn set_mango_row(&self, idx: i64, doc_id: &str, key: Option<Vec<u8>>) -> CouchResult<()> {
        self.set_mango_rows(idx, true, &[(doc_id, key)])
    }

    /// Sets documents' rows in an index (`None`: not indexed), replacing
    /// their old ones when `replace`; several rows per statement. The old
    /// rows are gone first, so `OR IGNORE` only spares SQLite the
    /// statement journal (see [`Self::write_bodies`]).
    pub fn set_mango_rows(
        &self,
        idx: i64,
        replace: bool,
        rows: &[(&str, Option<Vec<u8>>)],
    ) -> CouchResult<()> {
        if replace {
            let ids: Vec<&str> = rows.iter().map(|(id, _)| *id).collect();
            // Named: SQLite's planner may otherwise scan the whole index
            // by primary-key prefix, which made index builds quadratic.
            self.exec_per_docs(
                idx,
                &ids,
                "DELETE FROM mango_rows INDEXED BY mango_rows_by_doc \
                 WHERE idx = ? AND doc_id IN {ids}",
            )?;
        }
        let kept: Vec<(&str, &Vec<u8>)> = rows
            .iter()
            .filter_map(|(id, key)| Some((*id, key.as_ref()?)))
            .filter(|(id, key)| {
                let fits = key.len() + id.len() <= INDEX_ROW_BYTES;
                if !fits {
                    tracing::warn!("index row of {id} left out: {} bytes", key.len());
                }
                fits
            })
            .collect();
        self.exec_json_rows(
            "INSERT OR IGNORE INTO mango_rows (idx, key, doc_id) \
             SELECT ?, unhex(j.value ->> 0), j.value ->> 1 FROM json_each(?) j",
            "INSERT OR IGNORE INTO mango_rows (idx, key, doc_id) VALUES (?, ?, ?)",
            &[idx.into()],
            kept.into_iter()
                .map(|(id, key)| vec![key.clone().into(), id.into()])
                .collect(),
        )?;
        Ok(())
    }

    /// Up to `limit` `(key, doc id)` rows of an index within `scan`, in key
    /// (then id) order.
    pub fn mango_scan(
        &self,
        idx: i64,
        scan: &MangoScan,
        limit: u64,
    ) -> CouchResult<Vec<(Vec<u8>, String)>> {
        let mut sql = String::from("SELECT key, doc_id FROM mango_rows WHERE idx = ?");
        let mut params: Vec<Value> = vec![idx.into()];
        // A resumed scan seeks to where it stopped: with the bound it
        // started from as well, SQLite seeks to that bound and reads every
        // earlier page again. (Keys compare bytewise, in SQL as here.)
        // `starts`: whether the bound is where the scan starts, which a
        // resumed scan drops once it is strictly past it.
        let keep = |k: &[u8], starts: bool| match scan.after {
            Some((after, _)) if starts && scan.descending => after >= k,
            Some((after, _)) if starts => after <= k,
            _ => true,
        };
        if let Some((k, incl)) = scan.lower.filter(|(k, _)| keep(k, !scan.descending)) {
            sql.push_str(if incl {
                " AND key >= ?"
            } else {
                " AND key > ?"
            });
            params.push(k.to_vec().into());
        }
        if let Some((k, incl)) = scan.upper.filter(|(k, _)| keep(k, scan.descending)) {
            sql.push_str(if incl {
                " AND key <= ?"
            } else {
                " AND key < ?"
            });
            params.push(k.to_vec().into());
        }
        if let Some((k, id)) = scan.after {
            sql.push_str(if scan.descending {
                " AND (key, doc_id) < (?, ?)"
            } else {
                " AND (key, doc_id) > (?, ?)"
            });
            params.push(k.to_vec().into());
            params.push(id.into());
        }
        sql.push_str(if scan.descending {
            " ORDER BY key DESC, doc_id DESC LIMIT ?"
        } else {
            " ORDER BY key, doc_id LIMIT ?"
        });
        params.push(limit.into());
        Ok(self
            .sql
            .query(&sql, &params)?
            .into_iter()
            .map(|mut r| {
                let key = std::mem::replace(&mut r[0], Value::Null)
                    .into_bytes()
                    .unwrap_or_default();
                (key, text(&mut r, 1))
            })
            .collect())
    }

    // --- View indexes -----------------------------------------------------

    /// The storage id and sequence of the index with signature `sig`,
    /// registered empty when new.
    pub fn view_index(&self, sig: &str) -> CouchResult<(i64, u64)> {
        let rows = self.sql.query(
            "SELECT id, seq FROM view_indexes WHERE sig = ?",
            &[sig.into()],
        )?;
        if let Some(r) = rows.first() {
            return Ok((r[0].as_i64().unwrap_or(0), int(r, 1)));
        }
        self.sql.exec(
            "INSERT INTO view_indexes (sig, seq) VALUES (?, 0)",
            &[sig.into()],
        )?;
        Ok((
            self.sql
                .query_i64("SELECT id FROM view_indexes WHERE sig = ?", &[sig.into()])?,
            0,
        ))
    }

    pub fn set_view_seq(&self, idx: i64, seq: u64) -> CouchResult<()> {
        self.sql.exec(
            "UPDATE view_indexes SET seq = ? WHERE id = ?",
            &[seq.into(), idx.into()],
        )?;
        Ok(())
    }

    /// How far the index with signature `sig` is built, if it exists.
    pub fn view_seq(&self, sig: &str) -> CouchResult<Option<u64>> {
        let row = self
            .sql
            .query_row("SELECT seq FROM view_indexes WHERE sig = ?", &[sig.into()])?;
        Ok(row.map(|r| int(&r, 0)))
    }

    /// Signatures of every view index built so far.
    pub fn view_signatures(&self) -> CouchResult<Vec<(i64, String)>> {
        Ok(self
            .sql
            .query("SELECT id, sig FROM view_indexes", &[])?
            .into_iter()
            .map(|mut r| (r[0].as_i64().unwrap_or(0), text(&mut r, 1)))
            .collect())
    }

    pub fn drop_view_index(&self, idx: i64) -> CouchResult<()> {
        for tree in self.reduction_trees(idx)? {
            self.clear_reduction_tree(tree)?;
        }
        self.sql
            .exec("DELETE FROM reduction_trees WHERE idx = ?", &[idx.into()])?;
        self.sql
            .exec("DELETE FROM view_rows WHERE idx = ?", &[idx.into()])?;
        self.sql
            .exec("DELETE FROM view_counts WHERE idx = ?", &[idx.into()])?;
        self.sql
            .exec("DELETE FROM view_indexes WHERE id = ?", &[idx.into()])?;
        Ok(())
    }

    /// Removes the rows of documents `doc_ids` from a view index (noting
    /// them for its stored reductions, if it has them).
    pub fn delete_view_rows(&self, idx: i64, doc_ids: &[&str]) -> CouchResult<()> {
        if !self.reduction_trees(idx)?.is_empty() {
            self.note_reduction_rows(idx, doc_ids)?;
        }
        // Named, as for `mango_rows`.
        let gone = self.exec_per_docs(
            idx,
            doc_ids,
            "DELETE FROM view_rows INDEXED BY view_rows_by_doc \
             WHERE idx = ? AND doc_id IN {ids} RETURNING 1",
        )?;
        self.add_view_count(idx, -(gone as i64))
    }

    /// Moves a view index's kept row count by `delta` (if it has one yet).
    fn add_view_count(&self, idx: i64, delta: i64) -> CouchResult<()> {
        if delta != 0 {
            self.sql.exec(
                "UPDATE view_counts SET n = n + ? WHERE idx = ?",
                &[delta.into(), idx.into()],
            )?;
        }
        Ok(())
    }

    /// Runs a statement on `idx` and documents `doc_ids` (see
    /// [`Self::exec_per_ids`]). Returns how many rows the statements
    /// returned (for one with `RETURNING`).
    fn exec_per_docs(&self, idx: i64, doc_ids: &[&str], sql: &str) -> CouchResult<u64> {
        Ok(self.exec_per_ids(&[idx.into()], doc_ids, sql)?.len() as u64)
    }

    /// Runs `template` over `ids`, whose `{ids}` becomes a list of them
    /// read from one JSON parameter (after `head`), or one bound id for an
    /// id too long for that.
    fn exec_per_ids(&self, head: &[Value], ids: &[&str], template: &str) -> CouchResult<Vec<Row>> {
        self.exec_json_rows(
            &template.replace("{ids}", "(SELECT value FROM json_each(?))"),
            &template.replace("{ids}", "(?)"),
            head,
            ids.iter().map(|&id| vec![id.into()]).collect(),
        )
    }

    /// Runs `batched` once per JSON batch of `rows` (see
    /// [`shared::sql::json_rows`]), bound after `head`, and `single` for
    /// each row too long for one batch, its cells bound after `head`: the
    /// rows every statement returned.
    fn exec_json_rows(
        &self,
        batched: &str,
        single: &str,
        head: &[Value],
        rows: Vec<Vec<Value>>,
    ) -> CouchResult<Vec<Row>> {
        let mut out = Vec::new();
        let mut batch = JsonRows::new();
        for row in rows {
            let cells: Vec<JsonCell<'_>> = row.iter().map(JsonCell::from).collect();
            if !batch.push(&cells) {
                let params: Vec<Value> = head.iter().cloned().chain(row).collect();
                out.extend(self.sql.query(single, &params)?);
            }
        }
        for (text, _) in batch.finish() {
            let mut params = head.to_vec();
            params.push(text.into());
            out.extend(self.sql.query(batched, &params)?);
        }
        Ok(out)
    }

    /// Adds rows to a view index: `(n, row)` with `n` the emit's position
    /// in its document, several rows per statement (noted for its stored
    /// reductions, if it has them). A document's old rows are deleted
    /// first, so no row is there already: `OR IGNORE` only spares SQLite
    /// the statement journal (see [`Self::write_bodies`]).
    pub fn insert_view_rows(&self, idx: i64, rows: &[(i64, ViewRow)]) -> CouchResult<()> {
        let kept: Vec<&(i64, ViewRow)> = rows
            .iter()
            .filter(|(_, r)| {
                let size = r.sort_key.len() + r.key.len() + r.value.len() + r.doc_id.len();
                if size > INDEX_ROW_BYTES {
                    tracing::warn!("view row of {} left out: {size} bytes", r.doc_id);
                }
                size <= INDEX_ROW_BYTES
            })
            .collect();
        let insert = "INSERT OR IGNORE INTO view_rows (idx, key, doc_id, n, key_json, value_json)";
        self.exec_json_rows(
            &format!(
                "{insert} SELECT ?, unhex(j.value ->> 0), j.value ->> 1, j.value ->> 2, \
                 j.value ->> 3, j.value ->> 4 FROM json_each(?) j"
            ),
            &format!("{insert} VALUES (?, ?, ?, ?, ?, ?)"),
            &[idx.into()],
            kept.iter()
                .map(|(n, r)| {
                    vec![
                        r.sort_key.clone().into(),
                        r.doc_id.as_str().into(),
                        (*n).into(),
                        r.key.as_str().into(),
                        r.value.as_str().into(),
                    ]
                })
                .collect(),
        )?;
        self.add_view_count(idx, kept.len() as i64)?;
        if !kept.is_empty() && !self.reduction_trees(idx)?.is_empty() {
            let mut ids: Vec<&str> = kept.iter().map(|(_, r)| r.doc_id.as_str()).collect();
            ids.dedup();
            self.note_reduction_rows(idx, &ids)?;
        }
        Ok(())
    }

    /// Rows of a view index within `range`, in its direction, after
    /// skipping `offset`.
    pub fn view_scan(
        &self,
        idx: i64,
        range: &ViewRange,
        offset: u64,
        limit: u64,
    ) -> CouchResult<Vec<ViewRow>> {
        Ok(self
            .view_page(idx, range, None, offset, limit)?
            .into_iter()
            .map(|(row, _)| row)
            .collect())
    }

    /// Rows of `range` after `after` (a previous page's last position), so
    /// that reading a whole range page by page costs one index seek per
    /// page rather than an ever longer `OFFSET`; with the page's last
    /// position.
    pub fn view_scan_after(
        &self,
        idx: i64,
        range: &ViewRange,
        after: Option<&ViewPos>,
        limit: u64,
    ) -> CouchResult<(Vec<ViewRow>, Option<ViewPos>)> {
        let rows = self.view_page(idx, range, after, 0, limit)?;
        let last = rows.last().map(|(r, n)| ViewPos {
            key: r.sort_key.clone(),
            doc_id: r.doc_id.clone(),
            n: *n,
        });
        Ok((rows.into_iter().map(|(r, _)| r).collect(), last))
    }

    /// The first row of a range, in its direction.
    pub fn view_first(&self, idx: i64, range: &ViewRange) -> CouchResult<Option<ViewRow>> {
        Ok(self
            .view_page(idx, range, None, 0, 1)?
            .pop()
            .map(|(r, _)| r))
    }

    /// How many rows `counted` holds, and the first row of `next` (the
    /// range after it), in one statement: a grouped reduce's step from one
    /// group to the next.
    pub fn view_count_then_first(
        &self,
        idx: i64,
        counted: &ViewRange,
        next: Option<&ViewRange>,
    ) -> CouchResult<(u64, Option<ViewRow>)> {
        let (cond, mut params) = counted.condition();
        params.insert(0, idx.into());
        let mut sql =
            format!("SELECT COUNT(*), NULL, NULL, NULL, NULL FROM view_rows WHERE idx = ?{cond}");
        if let Some(next) = next {
            // `LIMIT 1` written out: a bound limit in this subquery made
            // SQLite prepare the statement again on every run (a third of
            // a grouped query's time, which runs one per group).
            let (page, more) = Self::view_page_select(idx, next, None);
            sql.push_str(&format!(" UNION ALL SELECT * FROM ({page} LIMIT 1)"));
            params.extend(more);
        }
        let mut rows = self.sql.query(&sql, &params)?.into_iter();
        let count = rows.next().and_then(|r| r[0].as_i64()).unwrap_or(0).max(0) as u64;
        Ok((count, rows.next().map(|r| Self::view_row(r).0)))
    }

    /// The statement reading a range's rows (after `after`) in order.
    fn view_page_sql(
        idx: i64,
        range: &ViewRange,
        after: Option<&ViewPos>,
        offset: u64,
        limit: u64,
    ) -> (String, Vec<Value>) {
        let (mut sql, mut params) = Self::view_page_select(idx, range, after);
        sql.push_str(" LIMIT ? OFFSET ?");
        params.push(limit.min(i64::MAX as u64).into());
        params.push(offset.into());
        (sql, params)
    }

    /// [`Self::view_page_sql`] without its limit.
    fn view_page_select(
        idx: i64,
        range: &ViewRange,
        after: Option<&ViewPos>,
    ) -> (String, Vec<Value>) {
        // Past `after`, a row inside the range, the start bound adds
        // nothing; kept, SQLite seeks from it instead of from `after` and
        // every page re-reads the rows of the pages before it.
        let (mut cond, mut params) = range.condition_from(after.is_none());
        let order = if range.descending { "DESC" } else { "ASC" };
        if let Some(pos) = after {
            let past = if range.descending { "<" } else { ">" };
            cond.push_str(&format!(" AND (key, doc_id, n) {past} (?, ?, ?)"));
            params.push(pos.key.clone().into());
            params.push(pos.doc_id.as_str().into());
            params.push(pos.n.into());
        }
        let sql = format!(
            "SELECT key, doc_id, key_json, value_json, n FROM view_rows WHERE idx = ?{cond} \
             ORDER BY key {order}, doc_id {order}, n {order}"
        );
        params.insert(0, idx.into());
        (sql, params)
    }

    /// A row of [`Self::view_page_sql`]'s, with its emit number.
    fn view_row(mut r: Row) -> (ViewRow, i64) {
        let row = ViewRow {
            sort_key: std::mem::replace(&mut r[0], Value::Null)
                .into_bytes()
                .unwrap_or_default(),
            doc_id: text(&mut r, 1),
            key: text(&mut r, 2),
            value: text(&mut r, 3),
        };
        (row, r[4].as_i64().unwrap_or(0))
    }

    /// Rows of a range with their emit numbers.
    fn view_page(
        &self,
        idx: i64,
        range: &ViewRange,
        after: Option<&ViewPos>,
        offset: u64,
        limit: u64,
    ) -> CouchResult<Vec<(ViewRow, i64)>> {
        let (sql, params) = Self::view_page_sql(idx, range, after, offset, limit);
        Ok(self
            .sql
            .query(&sql, &params)?
            .into_iter()
            .map(Self::view_row)
            .collect())
    }

    /// How many rows of a view index lie within `range` (all: the default
    /// range).
    pub fn view_count(&self, idx: i64, range: &ViewRange) -> CouchResult<u64> {
        let (cond, mut params) = range.condition();
        if cond.is_empty() {
            return self.view_total(idx);
        }
        params.insert(0, idx.into());
        Ok(self
            .sql
            .query_i64(
                &format!("SELECT COUNT(*) FROM view_rows WHERE idx = ?{cond}"),
                &params,
            )?
            .max(0) as u64)
    }

    /// Every row of a view index: the kept count, made by counting once.
    fn view_total(&self, idx: i64) -> CouchResult<u64> {
        let kept = self
            .sql
            .query_row("SELECT n FROM view_counts WHERE idx = ?", &[idx.into()])?;
        if let Some(row) = kept {
            return Ok(int(&row, 0));
        }
        let n = self.sql.query_i64(
            "SELECT COUNT(*) FROM view_rows WHERE idx = ?",
            &[idx.into()],
        )?;
        self.sql.exec(
            "INSERT INTO view_counts (idx, n) VALUES (?, ?)",
            &[idx.into(), n.into()],
        )?;
        Ok(n.max(0) as u64)
    }
}

impl Store<'_> {
    // --- Stored reductions -------------------------------------------------

    /// The stored-reduction trees of a view index.
    pub fn reduction_trees(&self, idx: i64) -> CouchResult<Vec<i64>> {
        Ok(self
            .sql
            .query(
                "SELECT id FROM reduction_trees WHERE idx = ?",
                &[idx.into()],
            )?
            .into_iter()
            .map(|r| r[0].as_i64().unwrap_or(0))
            .collect())
    }

    /// The tree of a view index and reduce, if it has one.
    pub fn reduction_tree(&self, idx: i64, reducer: &str) -> CouchResult<Option<i64>> {
        Ok(self
            .sql
            .query_row(
                "SELECT id FROM reduction_trees WHERE idx = ? AND reducer = ?",
                &[idx.into(), reducer.into()],
            )?
            .and_then(|r| r[0].as_i64()))
    }

    /// Registers a tree for a view index and reduce; from now on the
    /// index's writes are noted for it.
    pub fn add_reduction_tree(&self, idx: i64, reducer: &str) -> CouchResult<i64> {
        self.sql.exec(
            "INSERT OR IGNORE INTO reduction_trees (idx, reducer) VALUES (?, ?)",
            &[idx.into(), reducer.into()],
        )?;
        Ok(self.reduction_tree(idx, reducer)?.unwrap_or(0))
    }

    /// Empties a tree: its blocks and its noted changes.
    pub fn clear_reduction_tree(&self, tree: i64) -> CouchResult<()> {
        for table in ["reductions", "reductions_dirty"] {
            self.sql.exec(
                &format!("DELETE FROM {table} WHERE tree = ?"),
                &[tree.into()],
            )?;
        }
        Ok(())
    }

    /// Notes the current rows of documents `doc_ids` as changed, for each
    /// of the view's trees (before their rows go, and after new ones come).
    pub fn note_reduction_rows(&self, idx: i64, doc_ids: &[&str]) -> CouchResult<()> {
        self.exec_per_docs(
            idx,
            doc_ids,
            "INSERT OR IGNORE INTO reductions_dirty (tree, key, doc_id, n) \
             SELECT t.id, r.key, r.doc_id, r.n FROM reduction_trees t \
             JOIN view_rows r INDEXED BY view_rows_by_doc ON r.idx = t.idx \
             WHERE t.idx = ? AND r.doc_id IN {ids}",
        )?;
        Ok(())
    }

    /// Up to `limit` changed positions, in index order.
    pub fn reduction_dirty(&self, tree: i64, limit: u64) -> CouchResult<Vec<ViewPos>> {
        Ok(self
            .sql
            .query(
                "SELECT key, doc_id, n FROM reductions_dirty WHERE tree = ? \
                 ORDER BY key, doc_id, n LIMIT ?",
                &[tree.into(), limit.into()],
            )?
            .into_iter()
            .map(pos_from_row)
            .collect())
    }

    pub fn clear_reduction_dirty(&self, tree: i64) -> CouchResult<()> {
        self.sql.exec(
            "DELETE FROM reductions_dirty WHERE tree = ?",
            &[tree.into()],
        )?;
        Ok(())
    }

    /// Which of `positions` are rows of the index now.
    pub fn view_rows_exist(&self, idx: i64, positions: &[ViewPos]) -> CouchResult<Vec<ViewPos>> {
        let select = "SELECT key, doc_id, n FROM view_rows WHERE idx = ? AND (key, doc_id, n)";
        Ok(self
            .exec_json_rows(
                &format!("{select} IN (SELECT {POS_CELLS} FROM json_each(?) j)"),
                &format!("{select} = (?, ?, ?)"),
                &[idx.into()],
                positions.iter().map(|p| pos_params(p).to_vec()).collect(),
            )?
            .into_iter()
            .map(pos_from_row)
            .collect())
    }

    /// How many blocks a tree has at a level.
    pub fn reduction_blocks(&self, tree: i64, level: i64) -> CouchResult<u64> {
        Ok(self
            .sql
            .query_i64(
                "SELECT count(*) FROM reductions WHERE tree = ? AND level = ?",
                &[tree.into(), level.into()],
            )?
            .max(0) as u64)
    }

    /// Writes block reductions: `(level, start, reduction JSON)`.
    pub fn put_reductions(&self, tree: i64, blocks: &[(i64, ViewPos, String)]) -> CouchResult<()> {
        self.exec_json_rows(
            &format!(
                "INSERT OR REPLACE INTO reductions (key, doc_id, n, tree, level, red) \
                 SELECT {POS_CELLS}, ?, j.value ->> 3, j.value ->> 4 FROM json_each(?) j"
            ),
            "INSERT OR REPLACE INTO reductions (tree, key, doc_id, n, level, red) \
             VALUES (?, ?, ?, ?, ?, ?)",
            &[tree.into()],
            blocks
                .iter()
                .map(|(level, p, red)| {
                    let mut row = pos_params(p).to_vec();
                    row.extend([(*level).into(), red.as_str().into()]);
                    row
                })
                .collect(),
        )?;
        Ok(())
    }

    pub fn delete_reduction(&self, tree: i64, level: i64, p: &ViewPos) -> CouchResult<()> {
        let mut params: Vec<Value> = vec![tree.into(), level.into()];
        params.extend(pos_params(p));
        self.sql.exec(
            "DELETE FROM reductions WHERE tree = ? AND level = ? AND key = ? AND doc_id = ? AND n = ?",
            &params,
        )?;
        Ok(())
    }

    /// The start of the level's block holding `p`: its last block start at
    /// or before `p` (`before`: strictly before it).
    pub fn reduction_block_of(
        &self,
        tree: i64,
        level: i64,
        p: &ViewPos,
        before: bool,
    ) -> CouchResult<Option<ViewPos>> {
        let op = if before { "<" } else { "<=" };
        let mut params: Vec<Value> = vec![tree.into(), level.into()];
        params.extend(pos_params(p));
        Ok(self
            .sql
            .query_row(
                &format!(
                    "SELECT key, doc_id, n FROM reductions WHERE tree = ? AND level = ? \
                     AND (key, doc_id, n) {op} (?, ?, ?) ORDER BY key DESC, doc_id DESC, n DESC LIMIT 1"
                ),
                &params,
            )?
            .map(pos_from_row))
    }

    /// Up to `limit` block starts and reductions of a level from `from` on
    /// (`after`: strictly after it).
    pub fn reductions_from(
        &self,
        tree: i64,
        level: i64,
        from: &ViewPos,
        after: bool,
        limit: u64,
    ) -> CouchResult<Vec<(ViewPos, String)>> {
        let op = if after { ">" } else { ">=" };
        let mut params: Vec<Value> = vec![tree.into(), level.into()];
        params.extend(pos_params(from));
        params.push(limit.into());
        self.positioned(
            &format!(
                "SELECT key, doc_id, n, red FROM reductions WHERE tree = ? AND level = ? \
                 AND (key, doc_id, n) {op} (?, ?, ?) ORDER BY key, doc_id, n LIMIT ?"
            ),
            &params,
        )
    }

    /// Rows of `(key, doc_id, n, text)`: positions with their text.
    fn positioned(&self, sql: &str, params: &[Value]) -> CouchResult<Vec<(ViewPos, String)>> {
        Ok(self
            .sql
            .query(sql, params)?
            .into_iter()
            .map(|mut r| {
                let t = text(&mut r, 3);
                (pos_from_row(r), t)
            })
            .collect())
    }

    /// Up to `limit` rows from `from` on (`after`: strictly after it;
    /// `None`: from the first): positions, value JSON, and with `keys` key
    /// JSON.
    pub fn view_rows_from(
        &self,
        idx: i64,
        from: Option<&ViewPos>,
        after: bool,
        limit: u64,
        keys: bool,
    ) -> CouchResult<Vec<(ViewPos, String, Option<String>)>> {
        let mut params: Vec<Value> = vec![idx.into()];
        let cond = match from {
            Some(p) => {
                params.extend(pos_params(p));
                if after {
                    " AND (key, doc_id, n) > (?, ?, ?)"
                } else {
                    " AND (key, doc_id, n) >= (?, ?, ?)"
                }
            }
            None => "",
        };
        params.push(limit.into());
        let key = if keys { ", key_json" } else { "" };
        Ok(self
            .sql
            .query(
                &format!(
                    "SELECT key, doc_id, n, value_json{key} FROM view_rows WHERE idx = ?{cond} \
                     ORDER BY key, doc_id, n LIMIT ?"
                ),
                &params,
            )?
            .into_iter()
            .map(|mut r| {
                let value = text(&mut r, 3);
                let key = keys.then(|| text(&mut r, 4));
                (pos_from_row(r), value, key)
            })
            .collect())
    }

    /// The first and the last row of a view range in index order (none
    /// when it is empty), whichever way the range runs.
    pub fn view_range_ends(
        &self,
        idx: i64,
        range: &ViewRange,
    ) -> CouchResult<Option<(ViewPos, ViewPos)>> {
        let flipped = ViewRange {
            start: range.end.clone(),
            end: range.start.clone(),
            descending: !range.descending,
        };
        let first = |r: &ViewRange| -> CouchResult<Option<ViewPos>> {
            Ok(self
                .view_page(idx, r, None, 0, 1)?
                .into_iter()
                .next()
                .map(|(r, n)| ViewPos {
                    key: r.sort_key,
                    doc_id: r.doc_id,
                    n,
                }))
        };
        let (a, b) = (first(range)?, first(&flipped)?);
        let (lo, hi) = if range.descending { (b, a) } else { (a, b) };
        Ok(lo.zip(hi))
    }
}

/// A position as [`pos_params`] writes it, read from a [`JsonRows`] row.
const POS_CELLS: &str = "unhex(j.value ->> 0), j.value ->> 1, j.value ->> 2";

fn pos_params(p: &ViewPos) -> [Value; 3] {
    [p.key.clone().into(), p.doc_id.as_str().into(), p.n.into()]
}

fn pos_from_row(mut r: Row) -> ViewPos {
    ViewPos {
        key: std::mem::replace(&mut r[0], Value::Null)
            .into_bytes()
            .unwrap_or_default(),
        doc_id: text(&mut r, 1),
        n: r[2].as_i64().unwrap_or(0),
    }
}

/// One stored view row; `key` and `value` are JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRow {
    pub sort_key: Vec<u8>,
    pub doc_id: String,
    pub key: String,
    pub value: String,
}

/// Where a row sits in its index (key, document id, emit number): where
/// the next page of a scan starts. Ordered as SQLite orders the index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ViewPos {
    pub key: Vec<u8>,
    pub doc_id: String,
    pub n: i64,
}

/// One end of a view scan: an encoded key, optionally narrowed by a
/// document id, and whether rows equal to it are inside.
#[derive(Debug, Clone, Default)]
pub struct ViewBound {
    pub key: Vec<u8>,
    pub doc_id: Option<String>,
    pub inclusive: bool,
}

/// The rows a view query covers, in index order or reversed.
#[derive(Debug, Clone, Default)]
pub struct ViewRange {
    pub start: Option<ViewBound>,
    pub end: Option<ViewBound>,
    pub descending: bool,
}

impl ViewRange {
    /// The SQL condition (` AND ...`) and its parameters.
    fn condition(&self) -> (String, Vec<Value>) {
        self.condition_from(true)
    }

    /// [`Self::condition`], with the start bound only if `start`.
    fn condition_from(&self, start: bool) -> (String, Vec<Value>) {
        let mut sql = String::new();
        let mut params = Vec::new();
        let start = self.start.as_ref().filter(|_| start);
        // Moving forward, rows come after the start and before the end.
        for (bound, after) in [
            (start, !self.descending),
            (self.end.as_ref(), self.descending),
        ] {
            let Some(b) = bound else { continue };
            let op = match (after, b.inclusive) {
                (true, true) => ">=",
                (true, false) => ">",
                (false, true) => "<=",
                (false, false) => "<",
            };
            match &b.doc_id {
                // A row value, which SQLite seeks to in the index (an `OR`
                // of the key and the document id it would scan up to).
                Some(id) => {
                    sql.push_str(&format!(" AND (key, doc_id) {op} (?, ?)"));
                    params.push(b.key.clone().into());
                    params.push(id.as_str().into());
                }
                None => {
                    sql.push_str(&format!(" AND key {op} ?"));
                    params.push(b.key.clone().into());
                }
            }
        }
        (sql, params)
    }
}
