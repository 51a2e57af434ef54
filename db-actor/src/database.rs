//! A database's lifecycle and info: create, delete, `GET /db`,
//! `_revs_limit`, `_security`.

use crate::build_budget::Builds;
use crate::remote::RemoteBlobs;
use crate::store::{Kept, Stats, Store};
use serde_json::{json, Value};
use shared::config::{Limits, DEFAULT_REVS_LIMIT};
use shared::doc::IncomingDoc;
use shared::error::{CouchError, CouchResult};
use shared::http::Request;
use shared::security::Security;
use shared::seq;
use shared::sql::{in_transaction, Sql};
use shared::user::UserCtx;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What one actor's requests keep of its storage between them.
#[derive(Default)]
pub struct ActorCache {
    meta: RefCell<Option<Rc<DbMeta>>>,
    kept: Rc<Kept>,
}

/// The engine of one database: CouchDB semantics over a [`Store`].
pub struct Database<'a> {
    pub store: Store<'a>,
    pub limits: Limits,
    /// `meta` as last read, for this request only...
    local: RefCell<Option<Rc<DbMeta>>>,
    /// ...or shared across requests by the actor, which sees every write.
    shared: Option<&'a RefCell<Option<Rc<DbMeta>>>>,
    /// The R2 bucket for large attachment contents, when one is bound.
    pub remote: Option<&'a RemoteBlobs>,
    /// A reader from whom documents' credentials are hidden (`_replicator`
    /// documents of other owners), set per request.
    pub redact_for: RefCell<Option<UserCtx>>,
    /// This invocation's budget for view index building, and the views it
    /// left for the actor's alarm.
    pub builds: Builds,
    /// How far committed transactions moved the update sequence, and how
    /// far the one still open has (for the node's write counts).
    seq_advanced: Cell<u64>,
    seq_advancing: Cell<u64>,
}

/// What identifies a database incarnation, read from `meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbMeta {
    pub name: String,
    /// Random tag of this incarnation, part of every sequence string.
    pub instance: String,
    pub revs_limit: u64,
    pub security: Value,
    /// Created with `?partitioned=true`: ids are `partition:docid`.
    pub partitioned: bool,
}

impl DbMeta {
    pub fn seq(&self, n: u64) -> String {
        seq::format(n, &self.instance)
    }
}

impl<'a> Database<'a> {
    pub fn new(sql: &'a dyn Sql, limits: Limits) -> Self {
        Database {
            store: Store::new(sql),
            limits,
            local: RefCell::new(None),
            shared: None,
            remote: None,
            redact_for: RefCell::new(None),
            builds: Builds::new(limits.view_build_batch),
            seq_advanced: Cell::new(0),
            seq_advancing: Cell::new(0),
        }
    }

    /// Keeps attachment contents above `remote.threshold` in the bucket.
    pub fn with_remote(mut self, remote: &'a RemoteBlobs) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Keeps `meta` and what the store keeps in `cache` across requests.
    /// Only for the one actor that owns the storage: every change of
    /// either goes through it.
    pub fn with_cache(mut self, cache: &'a ActorCache) -> Self {
        self.shared = Some(&cache.meta);
        self.store.kept = cache.kept.clone();
        self
    }

    fn cache(&self) -> &RefCell<Option<Rc<DbMeta>>> {
        self.shared.unwrap_or(&self.local)
    }

    fn forget_meta(&self) {
        self.cache().replace(None);
    }

    /// Runs `f` as one transaction: it applies fully or leaves no trace.
    pub fn transact<T>(&self, f: impl FnOnce() -> CouchResult<T>) -> CouchResult<T> {
        let done = in_transaction(self.store.sql, f);
        let advanced = self.seq_advancing.take();
        if done.is_ok() {
            self.seq_advanced.set(self.seq_advanced.get() + advanced);
        } else {
            // What was read inside may describe writes now undone.
            self.store.forget_kept();
        }
        done
    }

    /// Counts a transaction's sequence advance, once it commits.
    pub(crate) fn note_seq_advance(&self, n: u64) {
        self.seq_advancing.set(self.seq_advancing.get() + n);
    }

    /// How many updates this database's committed transactions made.
    pub fn seq_advanced(&self) -> u64 {
        self.seq_advanced.get()
    }

    /// The database's identity and settings, or 404 if it does not exist.
    pub fn meta(&self) -> CouchResult<Rc<DbMeta>> {
        if let Some(m) = self.cache().borrow().as_ref() {
            return Ok(m.clone());
        }
        let mut meta = DbMeta {
            name: String::new(),
            instance: String::new(),
            revs_limit: DEFAULT_REVS_LIMIT,
            security: Security::admin_only().to_json(),
            partitioned: false,
        };
        let mut found = false;
        for (k, v) in self.store.meta_values(&[
            "name",
            "instance",
            "revs_limit",
            "security",
            "partitioned",
        ])? {
            match k.as_str() {
                "name" => {
                    found = true;
                    meta.name = v.into_string().unwrap_or_default();
                }
                "instance" => meta.instance = v.into_string().unwrap_or_default(),
                "partitioned" => meta.partitioned = v.as_i64() == Some(1),
                "security" => {
                    if let Some(sec) = v.into_string().and_then(|s| serde_json::from_str(&s).ok()) {
                        meta.security = sec;
                    }
                }
                _ => meta.revs_limit = v.as_i64().map_or(DEFAULT_REVS_LIMIT, |n| n.max(1) as u64),
            }
        }
        if !found {
            return Err(CouchError::db_not_found());
        }
        let meta = Rc::new(meta);
        self.cache().replace(Some(meta.clone()));
        Ok(meta)
    }

    pub fn exists(&self) -> CouchResult<bool> {
        Ok(self.store.meta_string("name")?.is_some())
    }

    /// `PUT /db`: 412 if it exists.
    pub fn create(&self, name: &str, instance: &str) -> CouchResult<()> {
        self.forget_meta();
        self.transact(|| {
            if self.exists()? {
                return Err(CouchError::db_exists());
            }
            self.store.set_meta("name", name.into())?;
            self.store.set_meta("instance", instance.into())?;
            self.store.set_meta(
                "security",
                Security::admin_only().to_json().to_string().into(),
            )?;
            self.store.save_stats(&Stats::default())
        })
    }

    /// Records the `q` a database was created with (`PUT /db?q=N`), which
    /// `GET /db` reports as CouchDB does, though one actor holds it all.
    pub fn set_shard_count(&self, q: u64) -> CouchResult<()> {
        self.store.set_meta("q", q.into())
    }

    /// Makes a database just created a partitioned one.
    pub fn set_partitioned(&self) -> CouchResult<()> {
        self.forget_meta();
        self.store.set_meta("partitioned", 1i64.into())
    }

    /// `q` as created (1 unless `PUT /db?q=N` said otherwise).
    pub fn shard_count(&self) -> CouchResult<u64> {
        Ok(self
            .store
            .meta("q")?
            .and_then(|v| v.as_i64())
            .map_or(1, |q| q.max(1) as u64))
    }

    /// Checks a document id as CouchDB does, with the partitioned form in
    /// a partitioned database.
    pub fn check_id(&self, id: &str) -> CouchResult<()> {
        shared::doc::validate_id(id)?;
        if self.meta()?.partitioned {
            shared::partition::validate_docid(id)?;
        }
        Ok(())
    }

    /// A design document may ask for partitioned views only in a
    /// partitioned database (CouchDB checks it on every write).
    pub fn check_design(&self, id: &str, doc: &IncomingDoc) -> CouchResult<()> {
        let asks =
            doc.body.get("options").and_then(|o| o.get("partitioned")) == Some(&Value::Bool(true));
        if shared::doc::is_design(id) && !doc.deleted && asks && !self.meta()?.partitioned {
            return Err(CouchError::new(
                400,
                "invalid_design_doc",
                "partitioned option cannot be true in a non-partitioned database.",
            ));
        }
        Ok(())
    }

    /// What every `/db/_partition/{p}/...` request needs: a partitioned
    /// database and a valid partition name.
    pub fn check_partition(&self, p: &str) -> CouchResult<Rc<DbMeta>> {
        let meta = self.meta()?;
        if !meta.partitioned {
            return Err(CouchError::bad_request("database is not partitioned"));
        }
        shared::partition::validate_partition(p)?;
        Ok(meta)
    }

    /// The partition a query is narrowed to: the path's
    /// (`/db/_partition/{p}/...`, already checked), else the one `given` in
    /// the query string or Mango body, as CouchDB's router turns the one
    /// into the other. Both, differing, is CouchDB's 400.
    pub fn query_partition(
        &self,
        path: Option<&str>,
        given: Option<&str>,
    ) -> CouchResult<Option<String>> {
        match (path, given) {
            (Some(p), Some(g)) if p != g => Err(CouchError::bad_request(
                "Conflicting value for `partition` in query string",
            )),
            (Some(p), _) => Ok(Some(p.to_string())),
            (None, Some(g)) => {
                if !self.meta()?.partitioned {
                    return Err(CouchError::bad_request(
                        "partition specified on non-partitioned db",
                    ));
                }
                shared::partition::validate_partition(g)?;
                Ok(Some(g.to_string()))
            }
            (None, None) => Ok(None),
        }
    }

    /// `GET /db/_partition/{p}`.
    pub fn partition_info(&self, p: &str) -> CouchResult<Value> {
        let meta = self.check_partition(p)?;
        let (first, after) = shared::partition::id_range(p);
        let (live, deleted, bytes) = self.store.id_range_stats(&first, &after)?;
        Ok(json!({
            "db_name": meta.name,
            "partition": p,
            "doc_count": live,
            "doc_del_count": deleted,
            "sizes": {"active": bytes, "external": bytes},
        }))
    }

    /// `DELETE /db`: everything goes, so a recreated database starts empty.
    pub fn delete(&self) -> CouchResult<()> {
        self.meta()?;
        self.forget_meta();
        self.store.wipe()
    }

    /// `GET /db`.
    pub fn info(&self) -> CouchResult<Value> {
        let meta = self.meta()?;
        let stats = self.store.stats()?;
        Ok(json!({
            "db_name": meta.name,
            "purge_seq": meta.seq(self.purge_seq()?),
            "update_seq": meta.seq(stats.update_seq),
            "sizes": {
                "file": self.store.sql.database_size(),
                "external": stats.body_bytes,
                "active": stats.body_bytes,
            },
            "props": if meta.partitioned { json!({"partitioned": true}) } else { json!({}) },
            "doc_del_count": stats.doc_del_count,
            "doc_count": stats.doc_count,
            "disk_format_version": 8,
            "compact_running": false,
            "cluster": {"q": self.shard_count()?, "n": 1, "w": 1, "r": 1},
            "instance_start_time": "0",
        }))
    }

    /// An `ETag` for an answer that only the database's documents, the
    /// reader and the request decide (`_changes`, `_all_docs`): it moves
    /// with every write and purge, and differs per incarnation.
    pub fn state_etag(&self, req: &Request) -> CouchResult<String> {
        let meta = self.meta()?;
        let seqs = format!("{} {}", self.store.stats()?.update_seq, self.purge_seq()?);
        Ok(shared::http::request_etag(
            req,
            &[meta.instance.as_bytes(), seqs.as_bytes()],
        ))
    }

    pub fn revs_limit(&self) -> CouchResult<u64> {
        Ok(self.meta()?.revs_limit)
    }

    /// `PUT /db/_revs_limit` with a positive integer body.
    pub fn set_revs_limit(&self, body: &Value) -> CouchResult<()> {
        self.meta()?;
        let n = body
            .as_i64()
            .filter(|n| *n > 0)
            .ok_or_else(|| CouchError::bad_request("Rev limit has to be an integer"))?;
        self.forget_meta();
        self.store.set_meta("revs_limit", n.into())
    }

    pub fn security(&self) -> CouchResult<Value> {
        Ok(self.meta()?.security.clone())
    }

    /// `PUT /db/_security`: `admins` and `members`, each with `names` and
    /// `roles` lists of strings.
    pub fn set_security(&self, body: &Value) -> CouchResult<()> {
        self.meta()?;
        Security::validate(body)?;
        self.forget_meta();
        self.store.set_meta("security", body.to_string().into())
    }
}
