//! A database's lifecycle and info: create, delete, `GET /db`,
//! `_revs_limit`, `_security`.

use crate::store::{Stats, Store};
use serde_json::{json, Value};
use shared::config::{Limits, DEFAULT_REVS_LIMIT};
use shared::error::{CouchError, CouchResult};
use shared::seq;
use shared::sql::{in_transaction, Sql};

/// CouchDB 3's `default_security = admin_only`.
fn default_security() -> Value {
    json!({"members": {"roles": ["_admin"]}, "admins": {"roles": ["_admin"]}})
}

/// The engine of one database: CouchDB semantics over a [`Store`].
pub struct Database<'a> {
    pub store: Store<'a>,
    pub limits: Limits,
}

/// What identifies a database incarnation, read from `meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbMeta {
    pub name: String,
    /// Random tag of this incarnation, part of every sequence string.
    pub instance: String,
    pub revs_limit: u64,
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
        }
    }

    /// Runs `f` as one transaction: it applies fully or leaves no trace.
    pub fn transact<T>(&self, f: impl FnOnce() -> CouchResult<T>) -> CouchResult<T> {
        in_transaction(self.store.sql, f)
    }

    /// The database's identity, or 404 if it does not exist.
    pub fn meta(&self) -> CouchResult<DbMeta> {
        let mut meta = DbMeta {
            name: String::new(),
            instance: String::new(),
            revs_limit: DEFAULT_REVS_LIMIT,
        };
        let mut found = false;
        for (k, v) in self
            .store
            .meta_values(&["name", "instance", "revs_limit"])?
        {
            match k.as_str() {
                "name" => {
                    found = true;
                    meta.name = v.into_string().unwrap_or_default();
                }
                "instance" => meta.instance = v.into_string().unwrap_or_default(),
                _ => meta.revs_limit = v.as_i64().map_or(DEFAULT_REVS_LIMIT, |n| n.max(1) as u64),
            }
        }
        if !found {
            return Err(CouchError::db_not_found());
        }
        Ok(meta)
    }

    pub fn exists(&self) -> CouchResult<bool> {
        Ok(self.store.meta_string("name")?.is_some())
    }

    /// `PUT /db`: 412 if it exists.
    pub fn create(&self, name: &str, instance: &str) -> CouchResult<()> {
        self.transact(|| {
            if self.exists()? {
                return Err(CouchError::db_exists());
            }
            self.store.set_meta("name", name.into())?;
            self.store.set_meta("instance", instance.into())?;
            self.store
                .set_meta("security", default_security().to_string().into())?;
            self.store.save_stats(&Stats::default())
        })
    }

    /// `DELETE /db`: everything goes, so a recreated database starts empty.
    pub fn delete(&self) -> CouchResult<()> {
        self.meta()?;
        self.store.wipe()
    }

    /// `GET /db`.
    pub fn info(&self) -> CouchResult<Value> {
        let meta = self.meta()?;
        let stats = self.store.stats()?;
        Ok(json!({
            "db_name": meta.name,
            "purge_seq": meta.seq(0),
            "update_seq": meta.seq(stats.update_seq),
            "sizes": {
                "file": self.store.sql.database_size(),
                "external": stats.body_bytes,
                "active": stats.body_bytes,
            },
            "props": {},
            "doc_del_count": stats.doc_del_count,
            "doc_count": stats.doc_count,
            "disk_format_version": 8,
            "compact_running": false,
            "cluster": {"q": 1, "n": 1, "w": 1, "r": 1},
            "instance_start_time": "0",
        }))
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
            .ok_or_else(|| CouchError::bad_request("`_revs_limit` must be a positive integer"))?;
        self.store.set_meta("revs_limit", n.into())
    }

    pub fn security(&self) -> CouchResult<Value> {
        self.meta()?;
        Ok(self
            .store
            .meta_string("security")?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_else(default_security))
    }

    /// `PUT /db/_security`: `admins` and `members`, each with `names` and
    /// `roles` lists of strings.
    pub fn set_security(&self, body: &Value) -> CouchResult<()> {
        self.meta()?;
        let obj = body
            .as_object()
            .ok_or_else(|| CouchError::bad_request("Security object must be a JSON object"))?;
        for section in ["admins", "members"] {
            let Some(s) = obj.get(section) else { continue };
            for list in ["names", "roles"] {
                let ok = match s.get(list) {
                    None => true,
                    Some(Value::Array(a)) => a.iter().all(Value::is_string),
                    Some(_) => false,
                };
                if !ok || !s.is_object() {
                    return Err(CouchError::bad_request(format!(
                        "{section}.{list} must be a JSON list of strings"
                    )));
                }
            }
        }
        self.store.set_meta("security", body.to_string().into())
    }
}
