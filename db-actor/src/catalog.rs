//! The catalog: a single, strongly consistent actor that knows which
//! databases exist (for `_all_dbs` and `_dbs_info`) and holds the server's
//! stable uuid. Database actors report creations and deletions to it.
//!
//! It also keeps `_db_updates`: a feed in which each database appears once,
//! with its latest event (`created`, `updated` or `deleted`) and the
//! sequence of that event, as CouchDB 3's feed does.
//!
//! Its HTTP interface is internal (reached only through its binding):
//! `GET /list?startkey&endkey&limit&skip&descending&inclusive_end`,
//! `POST /add`, `POST /remove` and `POST /updated` with `{"name"}`,
//! `GET /uuid`, and `GET /updates` with `_db_updates`' parameters.
//!
//! And it keeps the values written through `/_node/{node}/_config`
//! (`GET /config`, `POST /set_config`), which the router lays over the
//! Worker's settings, and the node's statistics: isolates hand their
//! counts over with `POST /sync` (which answers the `_config` values, so
//! the router's periodic read of those carries its counts), `GET /stats`
//! reads the totals.

use crate::feed::{self, ChangeSource};
use crate::reply::Reply;
use serde_json::json;
use shared::active_tasks::IndexerTask;
use shared::actor_call::CatalogCall;
use shared::all_docs::{AllDocsQuery, KeyRange};
use shared::changes::ChangesPage;
use shared::changes::ChangesQuery;
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};
use shared::node_config::Overlay;
use shared::seq::Since;
use shared::sql::Sql;
use shared::stats::Stats;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS dbs (name TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS catalog_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS db_updates (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
     name TEXT NOT NULL UNIQUE, type TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS config (section TEXT NOT NULL, key TEXT NOT NULL, \
     value TEXT NOT NULL, PRIMARY KEY (section, key))",
    "CREATE TABLE IF NOT EXISTS indexer_tasks (db TEXT NOT NULL, ddoc TEXT NOT NULL, \
     task TEXT NOT NULL, PRIMARY KEY (db, ddoc))",
];

/// The tag of `_db_updates` sequences (`N-dbu`): opaque to clients.
const SEQ_TAG: &str = "dbu";

pub struct Catalog<'a> {
    sql: &'a dyn Sql,
}

impl<'a> Catalog<'a> {
    pub fn new(sql: &'a dyn Sql) -> CouchResult<Self> {
        for s in SCHEMA {
            sql.exec(s, &[])?;
        }
        Ok(Catalog { sql })
    }

    pub fn add(&self, name: &str) -> CouchResult<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO dbs (name) VALUES (?)",
            &[name.into()],
        )?;
        self.record(name, "created")
    }

    pub fn remove(&self, name: &str) -> CouchResult<()> {
        self.sql
            .exec("DELETE FROM dbs WHERE name = ?", &[name.into()])?;
        self.set_tasks(name, &[])?;
        self.record(name, "deleted")
    }

    /// A database was written to (reports of unknown databases, late
    /// after a deletion, are dropped).
    pub fn updated(&self, name: &str) -> CouchResult<()> {
        let known = self
            .sql
            .query_row("SELECT 1 FROM dbs WHERE name = ?", &[name.into()])?
            .is_some();
        if known {
            self.record(name, "updated")?;
        }
        Ok(())
    }

    /// Moves a database to the end of the feed with its latest event.
    fn record(&self, name: &str, kind: &str) -> CouchResult<()> {
        self.sql.exec(
            "INSERT OR REPLACE INTO db_updates (name, type) VALUES (?, ?)",
            &[name.into(), kind.into()],
        )?;
        Ok(())
    }

    fn last_update_seq(&self) -> CouchResult<u64> {
        Ok(self
            .sql
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM db_updates", &[])?
            .and_then(|r| r.first().and_then(|v| v.as_i64()))
            .unwrap_or(0) as u64)
    }

    /// Answers `GET /updates` (`_db_updates`) and the other operations.
    pub fn serve(&self, req: &Request) -> Reply {
        let call = CatalogCall::parse(req);
        if matches!(call, Ok(CatalogCall::Updates)) {
            let started = ChangesQuery::from_request(req, None).and_then(|q| {
                let since = match q.since {
                    Since::Seq(n) => n,
                    Since::Now => self.last_update_seq()?,
                };
                feed::reply(self, q, since)
            });
            return started.unwrap_or_else(|e| Reply::Done(Response::error(&e)));
        }
        Reply::Done(shared::http::respond(
            call.and_then(|c| self.answer(req, c)),
        ))
    }

    /// Database names in order, with `_all_dbs`' range options.
    pub fn list(&self, q: &AllDocsQuery) -> CouchResult<Vec<String>> {
        let (cond, mut params) = KeyRange::from_query(q).sql_condition("name");
        let order = if q.descending { "DESC" } else { "ASC" };
        params.push(q.limit.unwrap_or(u64::MAX).into());
        params.push(q.skip.into());
        let sql = format!(
            "SELECT name FROM dbs WHERE 1 = 1{cond} ORDER BY name {order} LIMIT ? OFFSET ?"
        );
        Ok(self
            .sql
            .query(&sql, &params)?
            .into_iter()
            .filter_map(|mut r| r.swap_remove(0).into_string())
            .collect())
    }

    /// The server's uuid, created on first use and stable thereafter
    /// (PouchDB keys replication checkpoints on it).
    pub fn server_uuid(&self) -> CouchResult<String> {
        if let Some(mut r) = self
            .sql
            .query_row("SELECT v FROM catalog_meta WHERE k = 'uuid'", &[])?
        {
            return Ok(r.swap_remove(0).into_string().unwrap_or_default());
        }
        let uuid = uuid_hex();
        self.sql.exec(
            "INSERT INTO catalog_meta (k, v) VALUES ('uuid', ?)",
            &[uuid.as_str().into()],
        )?;
        Ok(uuid)
    }

    /// The values written through `_config`.
    pub fn config(&self) -> CouchResult<Overlay> {
        let mut out = Overlay::new();
        for r in self
            .sql
            .query("SELECT section, key, value FROM config", &[])?
        {
            let mut it = r.into_iter().map(|v| v.into_string().unwrap_or_default());
            let (s, k, v) = (it.next(), it.next(), it.next());
            if let (Some(s), Some(k), Some(v)) = (s, k, v) {
                out.entry(s).or_default().insert(k, v);
            }
        }
        Ok(out)
    }

    /// Sets or deletes one value; answers the one it replaced.
    pub fn set_config(
        &self,
        section: &str,
        key: &str,
        value: Option<&str>,
    ) -> CouchResult<Option<String>> {
        let old = self
            .sql
            .query_row(
                "SELECT value FROM config WHERE section = ? AND key = ?",
                &[section.into(), key.into()],
            )?
            .and_then(|mut r| r.swap_remove(0).into_string());
        match value {
            Some(v) => self.sql.exec(
                "INSERT INTO config (section, key, value) VALUES (?, ?, ?) \
                 ON CONFLICT (section, key) DO UPDATE SET value = excluded.value",
                &[section.into(), key.into(), v.into()],
            )?,
            None => self.sql.exec(
                "DELETE FROM config WHERE section = ? AND key = ?",
                &[section.into(), key.into()],
            )?,
        };
        Ok(old)
    }

    /// The node's statistics so far.
    /// A database's index builds in progress, replacing its earlier ones.
    pub fn set_tasks(&self, db: &str, tasks: &[IndexerTask]) -> CouchResult<()> {
        self.sql
            .exec("DELETE FROM indexer_tasks WHERE db = ?", &[db.into()])?;
        for t in tasks {
            self.sql.exec(
                "INSERT OR REPLACE INTO indexer_tasks (db, ddoc, task) VALUES (?, ?, ?)",
                &[
                    db.into(),
                    t.design_document.as_str().into(),
                    serde_json::to_string(t)?.into(),
                ],
            )?;
        }
        Ok(())
    }

    /// Every index build in progress, by database and design document.
    pub fn tasks(&self) -> CouchResult<Vec<IndexerTask>> {
        Ok(self
            .sql
            .query("SELECT task FROM indexer_tasks ORDER BY db, ddoc", &[])?
            .into_iter()
            .filter_map(|mut r| r.swap_remove(0).into_string())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect())
    }

    pub fn stats(&self) -> CouchResult<Stats> {
        Ok(self
            .sql
            .query_row("SELECT v FROM catalog_meta WHERE k = 'stats'", &[])?
            .and_then(|mut r| r.swap_remove(0).into_string())
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default())
    }

    /// Adds an isolate's counts to the node's.
    pub fn add_stats(&self, delta: &Stats) -> CouchResult<()> {
        if delta.is_empty() {
            return Ok(());
        }
        let mut total = self.stats()?;
        total.merge(delta);
        let text =
            serde_json::to_string(&total).map_err(|e| CouchError::internal(e.to_string()))?;
        self.sql.exec(
            "INSERT INTO catalog_meta (k, v) VALUES ('stats', ?) \
             ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            &[text.into()],
        )?;
        Ok(())
    }

    /// Serves the catalog's internal HTTP interface.
    pub fn handle(&self, req: &Request) -> Response {
        shared::http::respond(CatalogCall::parse(req).and_then(|c| self.answer(req, c)))
    }

    /// Answers a call already read from `req` (whose query it may need).
    fn answer(&self, req: &Request, call: CatalogCall) -> CouchResult<Response> {
        match call {
            CatalogCall::List => {
                let q = AllDocsQuery::from_request(req, None)?;
                Ok(Response::json(200, &self.list(&q)?))
            }
            CatalogCall::Uuid => Ok(Response::json(200, &json!({"uuid": self.server_uuid()?}))),
            CatalogCall::Added(name) => self.add(&name).map(|_| Response::ok()),
            CatalogCall::Removed(name) => self.remove(&name).map(|_| Response::ok()),
            CatalogCall::Updated(name) => self.updated(&name).map(|_| Response::ok()),
            CatalogCall::Config => Ok(Response::json(200, &self.config()?)),
            CatalogCall::Sync(delta) => {
                self.add_stats(&delta)?;
                Ok(Response::json(200, &self.config()?))
            }
            CatalogCall::Stats => Ok(Response::json(200, &self.stats()?)),
            CatalogCall::Indexing { database, tasks } => {
                self.set_tasks(&database, &tasks).map(|_| Response::ok())
            }
            CatalogCall::Tasks => Ok(Response::json(200, &self.tasks()?)),
            CatalogCall::SetConfig {
                section,
                key,
                value,
            } => {
                let old = self.set_config(&section, &key, value.as_deref())?;
                Ok(Response::json(200, &json!({ "old": old })))
            }
            // Served as a feed by `serve`, never here.
            CatalogCall::Updates => Err(CouchError::bad_request("_db_updates is a feed")),
        }
    }
}

impl ChangeSource for Catalog<'_> {
    fn page(&self, q: &ChangesQuery, since: u64) -> CouchResult<ChangesPage> {
        let limit = q.limit.unwrap_or(u64::MAX);
        let rows = if q.descending {
            let below = if since == 0 { u64::MAX } else { since };
            self.sql.query(
                "SELECT seq, name, type FROM db_updates WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                &[below.into(), limit.into()],
            )?
        } else {
            self.sql.query(
                "SELECT seq, name, type FROM db_updates WHERE seq > ? ORDER BY seq LIMIT ?",
                &[since.into(), limit.into()],
            )?
        };
        let mut page = ChangesPage {
            rows: Vec::with_capacity(rows.len()),
            seqs: Vec::with_capacity(rows.len()),
            last_seq: String::new(),
            last: since,
            pending: 0,
        };
        for mut r in rows {
            let kind = r.pop().and_then(|v| v.into_string()).unwrap_or_default();
            let name = r.pop().and_then(|v| v.into_string()).unwrap_or_default();
            let seq = r.pop().and_then(|v| v.as_i64()).unwrap_or(0) as u64;
            let seq_str = shared::seq::format(seq, SEQ_TAG);
            page.rows.push(
                json!({"db_name": name, "type": kind, "seq": seq_str})
                    .to_string()
                    .into_bytes(),
            );
            page.seqs.push(seq_str);
            page.last = seq;
        }
        if !q.descending {
            page.pending = self
                .sql
                .query_row(
                    "SELECT COUNT(*) FROM db_updates WHERE seq > ?",
                    &[page.last.into()],
                )?
                .and_then(|r| r.first().and_then(|v| v.as_i64()))
                .unwrap_or(0) as u64;
        }
        page.last_seq = shared::seq::format(page.last, SEQ_TAG);
        Ok(page)
    }
}

fn uuid_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::sqlite::SqliteSql;

    #[test]
    fn keeps_each_databases_latest_index_builds() {
        let sql = SqliteSql::memory();
        let c = Catalog::new(&sql).unwrap();
        let task = |db: &str, ddoc: &str, done| IndexerTask {
            database: db.into(),
            design_document: ddoc.into(),
            changes_done: done,
            total_changes: 100,
            started_on: 1,
            updated_on: 2,
        };
        let report = |db: &str, tasks: Vec<IndexerTask>| {
            let call = CatalogCall::Indexing {
                database: db.into(),
                tasks,
            };
            assert_eq!(c.handle(&call.to_request("")).status, 200);
        };
        c.add("a").unwrap();
        report(
            "a",
            vec![task("a", "_design/x", 10), task("a", "_design/y", 5)],
        );
        report("b", vec![task("b", "_design/x", 1)]);
        report("a", vec![task("a", "_design/x", 20)]);
        let listed = c.handle(&CatalogCall::Tasks.to_request("")).json_body();
        let got: Vec<IndexerTask> = serde_json::from_value(listed).unwrap();
        assert_eq!(
            got,
            vec![task("a", "_design/x", 20), task("b", "_design/x", 1)]
        );
        c.remove("a").unwrap();
        report("b", vec![]);
        assert_eq!(c.tasks().unwrap(), vec![]);
    }

    #[test]
    fn lists_with_ranges_and_keeps_uuid() {
        let sql = SqliteSql::memory();
        let c = Catalog::new(&sql).unwrap();
        for n in ["b", "a", "d", "c"] {
            c.add(n).unwrap();
        }
        c.add("a").unwrap();
        c.remove("d").unwrap();
        let list = |qs: &str| {
            let r = c.handle(&CatalogCall::List.to_request(qs));
            assert_eq!(r.status, 200);
            r.json_body()
        };
        assert_eq!(list(""), json!(["a", "b", "c"]));
        assert_eq!(list("descending=true&limit=2"), json!(["c", "b"]));
        assert_eq!(list("startkey=%22b%22"), json!(["b", "c"]));
        assert_eq!(list("endkey=%22b%22&inclusive_end=false"), json!(["a"]));
        assert_eq!(list("skip=1"), json!(["b", "c"]));
        let u = c.server_uuid().unwrap();
        assert_eq!(u.len(), 32);
        assert_eq!(c.server_uuid().unwrap(), u);
        let r = c.handle(&Request::new("POST", "/add", "").with_body("{}"));
        assert_eq!(r.status, 400);
    }

    fn updates(c: &Catalog, qs: &str) -> serde_json::Value {
        match c.serve(&CatalogCall::Updates.to_request(qs)) {
            Reply::Done(r) => r.json_body(),
            _ => panic!("a normal feed answers at once"),
        }
    }

    #[test]
    fn db_updates_list_each_database_once_with_its_latest_event() {
        let sql = SqliteSql::memory();
        let c = Catalog::new(&sql).unwrap();
        c.add("a").unwrap();
        c.add("b").unwrap();
        c.updated("a").unwrap();
        c.remove("b").unwrap();
        c.updated("never-created").unwrap();
        let all = updates(&c, "");
        let rows: Vec<(String, String)> = all["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["db_name"].as_str().unwrap().into(),
                    r["type"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("a".into(), "updated".into()),
                ("b".into(), "deleted".into())
            ]
        );
        assert_eq!(all["last_seq"], all["results"][1]["seq"]);
        // Resuming from a sequence lists only what came after it.
        let first = all["results"][0]["seq"].as_str().unwrap();
        let after = updates(&c, &format!("since={first}"));
        assert_eq!(after["results"].as_array().unwrap().len(), 1);
        c.add("c").unwrap();
        let after = updates(&c, &format!("since={}", all["last_seq"].as_str().unwrap()));
        assert_eq!(after["results"][0]["db_name"], "c");
        assert_eq!(after["results"][0]["type"], "created");
        let limited = updates(&c, "limit=1");
        assert_eq!(
            (
                limited["results"].as_array().unwrap().len(),
                &limited["pending"]
            ),
            (1, &json!(2))
        );
        let down = updates(&c, "descending=true&limit=1");
        assert_eq!(down["results"][0]["db_name"], "c");
        assert_eq!(updates(&c, "since=now")["results"], json!([]));
        // A long-poll with nothing new waits; a bad parameter is a 400.
        assert!(matches!(
            c.serve(&Request::new("GET", "/updates", "feed=longpoll&since=now")),
            Reply::Wait { .. }
        ));
        assert!(matches!(
            c.serve(&Request::new("GET", "/updates", "since=junk")),
            Reply::Done(r) if r.status == 400
        ));
    }
}
