//! The registry: one actor that knows every job (for `_scheduler/jobs`,
//! `_scheduler/docs` and `_active_tasks`) and turns `_replicator`
//! documents into jobs, as CouchDB's document processor does.
//!
//! Job actors report their summary after each change of state or batch.
//! The `_replicator` database's actor tells the registry after each write;
//! the registry then reads that database's `_changes` from its stored
//! cursor and starts, restarts or stops the jobs the documents describe.
//!
//! As CouchDB 3 does, documents whose recorded state is `completed` or
//! `failed` start nothing, and a change to nothing but the state members
//! leaves an active job alone, so the replicator's own writes of a state
//! never run a job again.

use serde_json::{json, Map, Value};
use shared::date::iso8601;
use shared::error::CouchResult;
use shared::replication::docs::{self, Terminal};
use shared::replication::id::job_id;
use shared::replication::params::RepParams;
use shared::sql::Sql;

pub use shared::replication::REPLICATOR_DB;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, summary TEXT NOT NULL)",
    // A `_replicator` document: its job, or why it has none (`failed`), or
    // the completion it records (`completed`, its `_scheduler/docs` entry
    // while no job is known), and its content's fingerprint.
    "CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY, job_id TEXT, rev TEXT NOT NULL, failed TEXT, updated_ms INTEGER NOT NULL, completed TEXT, fingerprint TEXT)",
    "CREATE TABLE IF NOT EXISTS registry_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
];

/// Columns `docs` gained after its first version, added to older tables.
const DOCS_ADDED: &[&str] = &["completed", "fingerprint"];

pub struct Registry<'a> {
    sql: &'a dyn Sql,
}

/// What a `_replicator` change asks the registry to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Stop and forget this job.
    Stop(String),
    /// (Re)start a job for the document.
    Start {
        job_id: String,
        doc_id: String,
        params: Box<RepParams>,
        /// The document's `owner`: the job acts as this user on local
        /// databases.
        owner: Option<String>,
    },
    /// Write this body (with the `_rev` it replaces) as the document, as
    /// the system: its state, once it failed. A conflict means a newer
    /// revision, which is processed on its own.
    Record { doc_id: String, body: Value },
}

/// What a document maps to: its job, or why it has none, or the
/// completion it records.
#[derive(Default)]
struct Mapping<'a> {
    job_id: Option<&'a str>,
    failed: Option<&'a str>,
    completed: Option<Value>,
}

/// What the registry knew of a document before a change.
struct Known {
    job_id: Option<String>,
    rev: Option<String>,
    fingerprint: Option<String>,
}

impl<'a> Registry<'a> {
    pub fn new(sql: &'a dyn Sql) -> CouchResult<Self> {
        for s in SCHEMA {
            sql.exec(s, &[])?;
        }
        let ddl = sql
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'docs'",
                &[],
            )?
            .and_then(|mut r| r.swap_remove(0).into_string())
            .unwrap_or_default();
        for col in DOCS_ADDED {
            if !ddl.contains(&format!(" {col} ")) {
                sql.exec(&format!("ALTER TABLE docs ADD COLUMN {col} TEXT"), &[])?;
            }
        }
        Ok(Registry { sql })
    }

    pub fn report(&self, summary: &Value) -> CouchResult<()> {
        let id = summary["id"].as_str().unwrap_or_default();
        self.sql.exec(
            "INSERT INTO jobs (id, summary) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET summary = excluded.summary",
            &[id.into(), summary.to_string().into()],
        )?;
        Ok(())
    }

    pub fn remove(&self, id: &str) -> CouchResult<()> {
        self.sql
            .exec("DELETE FROM jobs WHERE id = ?", &[id.into()])?;
        Ok(())
    }

    /// Every job's summary, by id.
    pub fn jobs(&self) -> CouchResult<Vec<Value>> {
        Ok(self
            .sql
            .query("SELECT summary FROM jobs ORDER BY id", &[])?
            .into_iter()
            .filter_map(|mut r| r.swap_remove(0).into_string())
            .filter_map(|s| serde_json::from_str(&s).ok())
            .collect())
    }

    pub fn job(&self, id: &str) -> CouchResult<Option<Value>> {
        Ok(self
            .sql
            .query_row("SELECT summary FROM jobs WHERE id = ?", &[id.into()])?
            .and_then(|mut r| r.swap_remove(0).into_string())
            .and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// `_replicator` documents with their job's summary, or their failure.
    /// Ids of the `_replicator` documents the registry knows.
    pub fn doc_ids(&self) -> CouchResult<Vec<String>> {
        Ok(self
            .sql
            .query("SELECT doc_id FROM docs", &[])?
            .into_iter()
            .filter_map(|r| r[0].as_str().map(String::from))
            .collect())
    }

    pub fn docs(&self) -> CouchResult<Vec<Value>> {
        let rows = self.sql.query(
            "SELECT d.doc_id, d.failed, d.updated_ms, j.summary, d.completed FROM docs d LEFT JOIN jobs j ON j.id = d.job_id ORDER BY d.doc_id",
            &[],
        )?;
        let json = |v: &shared::sql::Value| {
            v.as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
        };
        Ok(rows
            .into_iter()
            .map(|r| {
                let doc_id = r[0].as_str().unwrap_or_default().to_string();
                let failed = r[1].as_str().map(String::from);
                let updated = r[2].as_i64().unwrap_or(0) as u64;
                match (json(&r[3]), json(&r[4])) {
                    (None, Some(completed)) if failed.is_none() => completed,
                    (summary, _) => doc_view(&doc_id, failed, updated, summary),
                }
            })
            .collect())
    }

    pub fn since(&self) -> CouchResult<String> {
        Ok(self
            .sql
            .query_row("SELECT v FROM registry_meta WHERE k = 'since'", &[])?
            .and_then(|mut r| r.swap_remove(0).into_string())
            .unwrap_or_else(|| "0".into()))
    }

    pub fn set_since(&self, seq: &str) -> CouchResult<()> {
        self.sql.exec(
            "INSERT INTO registry_meta (k, v) VALUES ('since', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            &[seq.into()],
        )?;
        Ok(())
    }

    fn known(&self, doc_id: &str) -> CouchResult<Known> {
        let row = self.sql.query_row(
            "SELECT job_id, rev, fingerprint FROM docs WHERE doc_id = ?",
            &[doc_id.into()],
        )?;
        let col = |i: usize| row.as_ref().and_then(|r| r[i].as_str().map(String::from));
        Ok(Known {
            job_id: col(0),
            rev: col(1),
            fingerprint: col(2),
        })
    }

    fn job_active(&self, id: &str) -> CouchResult<bool> {
        Ok(self.job(id)?.is_some_and(|s| {
            matches!(
                s["state"].as_str(),
                Some("pending" | "running" | "crashing")
            )
        }))
    }

    /// Stores what the registry knows of a document.
    fn record(
        &self,
        doc_id: &str,
        rev: &str,
        fingerprint: Option<&str>,
        m: Mapping,
        now: u64,
    ) -> CouchResult<()> {
        self.sql.exec(
            "INSERT INTO docs (doc_id, job_id, rev, failed, updated_ms, completed, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (doc_id) DO UPDATE SET job_id = excluded.job_id, rev = excluded.rev, failed = excluded.failed, updated_ms = excluded.updated_ms, completed = excluded.completed, fingerprint = excluded.fingerprint",
            &[
                doc_id.into(),
                m.job_id.map(String::from).into(),
                rev.into(),
                m.failed.map(String::from).into(),
                now.into(),
                m.completed.as_ref().map(Value::to_string).into(),
                fingerprint.map(String::from).into(),
            ],
        )?;
        Ok(())
    }

    /// Decides what one `_replicator` change means, and records the
    /// document's new mapping. `row` is a `_changes` row with
    /// `include_docs`.
    pub fn apply_change(
        &self,
        row: &Value,
        server_uuid: &str,
        now: u64,
    ) -> CouchResult<Vec<Action>> {
        let Some(doc_id) = row["id"].as_str() else {
            return Ok(vec![]);
        };
        if doc_id.starts_with("_design/") {
            return Ok(vec![]);
        }
        let old = self.known(doc_id)?;
        let rev = row["doc"]["_rev"]
            .as_str()
            .or_else(|| row["changes"][0]["rev"].as_str())
            .unwrap_or_default()
            .to_string();
        let deleted = row["deleted"].as_bool().unwrap_or(false) || row["doc"].is_null();
        let mut actions = Vec::new();
        let stop_old = |actions: &mut Vec<Action>| {
            if let Some(j) = &old.job_id {
                actions.push(Action::Stop(j.clone()));
            }
        };
        if deleted {
            stop_old(&mut actions);
            self.sql
                .exec("DELETE FROM docs WHERE doc_id = ?", &[doc_id.into()])?;
            return Ok(actions);
        }
        if old.rev.as_deref() == Some(rev.as_str()) {
            return Ok(actions);
        }
        let empty = Map::new();
        let doc = row["doc"].as_object();
        let fp = doc.map(docs::fingerprint);
        let fp = fp.as_deref();
        match doc.and_then(docs::recorded) {
            // Recorded complete: nothing runs; the job that completed (if
            // known) still answers for it in `_scheduler/docs`.
            Some(Terminal::Completed(stats)) => {
                let m = Mapping {
                    job_id: old.job_id.as_deref(),
                    completed: Some(completed_view(doc_id, doc.unwrap_or(&empty), stats)),
                    ..Mapping::default()
                };
                self.record(doc_id, &rev, fp, m, now)?;
                return Ok(actions);
            }
            Some(Terminal::Failed(reason)) => {
                stop_old(&mut actions);
                let m = Mapping {
                    failed: Some(&reason),
                    ..Mapping::default()
                };
                self.record(doc_id, &rev, fp, m, now)?;
                return Ok(actions);
            }
            None => {}
        }
        if let Some(j) = &old.job_id {
            if docs::is_state_only(old.fingerprint.as_deref(), doc.unwrap_or(&empty))
                && self.job_active(j)?
            {
                let m = Mapping {
                    job_id: Some(j),
                    ..Mapping::default()
                };
                self.record(doc_id, &rev, fp, m, now)?;
                return Ok(actions);
            }
        }
        let parsed = doc
            .ok_or_else(|| shared::CouchError::bad_request("not an object"))
            .and_then(RepParams::parse);
        match parsed {
            Ok(params) => {
                let id = job_id(server_uuid, &params);
                if let Some(j) = old.job_id.as_ref().filter(|j| **j != id) {
                    actions.push(Action::Stop(j.clone()));
                }
                let m = Mapping {
                    job_id: Some(&id),
                    ..Mapping::default()
                };
                self.record(doc_id, &rev, fp, m, now)?;
                actions.push(Action::Start {
                    job_id: id,
                    doc_id: doc_id.to_string(),
                    params: Box::new(params),
                    owner: row["doc"][docs::OWNER].as_str().map(String::from),
                });
            }
            Err(e) => {
                stop_old(&mut actions);
                let m = Mapping {
                    failed: Some(&e.reason),
                    ..Mapping::default()
                };
                self.record(doc_id, &rev, fp, m, now)?;
                let failed = Terminal::Failed(e.reason);
                if let Some(body) = doc.and_then(|d| docs::with_terminal(d, &failed, now)) {
                    actions.push(Action::Record {
                        doc_id: doc_id.to_string(),
                        body: Value::Object(body),
                    });
                }
            }
        }
        Ok(actions)
    }
}

/// The `_scheduler/docs` entry of a document recorded complete, from the
/// document itself, as CouchDB shows one whose job it no longer holds.
fn completed_view(doc_id: &str, doc: &Map<String, Value>, mut stats: Map<String, Value>) -> Value {
    let time = doc.get(docs::STATE_TIME).cloned().unwrap_or(Value::Null);
    let start = stats.shift_remove("start_time").unwrap_or(time.clone());
    let end = |field: &str| {
        shared::replication::params::Endpoint::parse(field, doc.get(field).unwrap_or(&Value::Null))
            .map(|e| json!(e.display()))
            .unwrap_or(Value::Null)
    };
    json!({
        "database": REPLICATOR_DB, "doc_id": doc_id, "id": null, "node": "settee",
        "source": end("source"), "target": end("target"), "state": "completed",
        "info": stats, "error_count": 0, "start_time": start, "last_updated": time,
    })
}

/// A `_scheduler/docs` entry.
fn doc_view(doc_id: &str, failed: Option<String>, updated_ms: u64, s: Option<Value>) -> Value {
    if let Some(reason) = failed {
        return json!({
            "database": REPLICATOR_DB, "doc_id": doc_id, "id": null, "node": "settee",
            "source": null, "target": null, "state": "failed",
            "info": {"error": reason}, "error_count": 1,
            "last_updated": iso8601(updated_ms), "start_time": iso8601(updated_ms),
        });
    }
    let s = s.unwrap_or_else(|| json!({"state": "initializing"}));
    let state = s["state"].clone();
    let info = match state.as_str() {
        Some("crashing") | Some("failed") => json!({
            "error": s["error"], "backoff_ms": s["backoff_ms"], "next_run": s["next_run"],
        }),
        _ => stats_info(&s),
    };
    json!({
        "database": REPLICATOR_DB,
        "doc_id": doc_id,
        "id": s["id"],
        "node": "settee",
        "source": s["source"],
        "target": s["target"],
        "state": state,
        "info": info,
        "error_count": s["error_count"],
        "last_updated": s["last_updated"],
        "start_time": s["start_time"],
    })
}

fn stats_info(s: &Value) -> Value {
    json!({
        "revisions_checked": s["revisions_checked"],
        "missing_revisions_found": s["missing_revisions_found"],
        "docs_read": s["docs_read"],
        "docs_written": s["docs_written"],
        "changes_pending": s["changes_pending"],
        "doc_write_failures": s["doc_write_failures"],
        "checkpointed_source_seq": s["checkpointed_source_seq"],
        "through_seq": s["through_seq"],
    })
}

/// `_scheduler/jobs`: the jobs that are not finished, as CouchDB lists
/// only jobs the scheduler holds.
pub fn jobs_view(summaries: &[Value]) -> Value {
    let jobs: Vec<Value> = summaries
        .iter()
        .filter(|s| {
            matches!(
                s["state"].as_str(),
                Some("pending" | "running" | "crashing")
            )
        })
        .map(|s| {
            json!({
                "database": s["database"],
                "doc_id": s["doc_id"],
                "id": s["id"],
                "node": "settee",
                "pid": s["id"],
                "source": s["source"],
                "target": s["target"],
                "user": s["user"],
                "start_time": s["start_time"],
                "history": s["history"],
                "info": stats_info(s),
            })
        })
        .collect();
    json!({"total_rows": jobs.len(), "offset": 0, "jobs": jobs})
}

/// `_active_tasks` rows for the replications that are running.
pub fn active_tasks(summaries: &[Value]) -> Vec<Value> {
    summaries
        .iter()
        .filter(|s| s["state"] == "running")
        .map(|s| {
            json!({
                "type": "replication",
                "node": "settee",
                "pid": s["id"],
                "replication_id": s["id"],
                "doc_id": s["doc_id"],
                "database": s["database"],
                "user": s["user"],
                "source": s["source"],
                "target": s["target"],
                "continuous": s["continuous"],
                "checkpoint_interval": s["checkpoint_interval"],
                "docs_read": s["docs_read"],
                "docs_written": s["docs_written"],
                "doc_write_failures": s["doc_write_failures"],
                "missing_revisions_found": s["missing_revisions_found"],
                "revisions_checked": s["revisions_checked"],
                "changes_pending": s["changes_pending"],
                "checkpointed_source_seq": s["checkpointed_source_seq"],
                "through_seq": s["through_seq"],
                "source_seq": s["through_seq"],
                "started_on": s["start_ms"].as_u64().map(|m| m / 1000),
                "updated_on": s["updated_ms"].as_u64().map(|m| m / 1000),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::sqlite::SqliteSql;

    #[test]
    fn replicator_docs_become_actions() {
        let sql = SqliteSql::memory();
        let reg = Registry::new(&sql).unwrap();
        let row =
            |rev: &str, doc: Value| json!({"id": "r1", "changes": [{"rev": rev}], "doc": doc});
        let a = reg
            .apply_change(
                &row(
                    "1-a",
                    json!({"_id": "r1", "_rev": "1-a", "source": "a", "target": "b"}),
                ),
                "u",
                1,
            )
            .unwrap();
        let Action::Start { job_id: first, .. } = &a[0] else {
            panic!("{a:?}")
        };
        // The same revision again (a replayed feed): nothing.
        assert!(reg
            .apply_change(
                &row(
                    "1-a",
                    json!({"_id": "r1", "_rev": "1-a", "source": "a", "target": "b"})
                ),
                "u",
                2
            )
            .unwrap()
            .is_empty());
        // An edit to another target: the old job stops, a new one starts.
        let a = reg
            .apply_change(
                &row(
                    "2-b",
                    json!({"_id": "r1", "_rev": "2-b", "source": "a", "target": "c"}),
                ),
                "u",
                3,
            )
            .unwrap();
        assert_eq!(a[0], Action::Stop(first.clone()));
        let Action::Start { job_id: second, .. } = &a[1] else {
            panic!("{a:?}")
        };
        assert_ne!(first, second);
        // An invalid edit: stopped, reported failed, and the failure is
        // written into the document at that revision.
        let a = reg
            .apply_change(
                &row("3-c", json!({"_id": "r1", "_rev": "3-c", "source": 1})),
                "u",
                4,
            )
            .unwrap();
        assert_eq!(a[0], Action::Stop(second.clone()));
        let Action::Record { doc_id, body } = &a[1] else {
            panic!("{a:?}")
        };
        assert_eq!(doc_id, "r1");
        assert_eq!(body["_rev"], "3-c");
        assert_eq!(body["_replication_state"], "failed");
        assert!(body["_replication_state_reason"]
            .as_str()
            .unwrap()
            .contains("source"));
        let docs = reg.docs().unwrap();
        assert_eq!(docs[0]["state"], "failed");
        // That write comes back as a change: nothing more to do.
        let mut written = body.clone();
        written["_rev"] = json!("4-w");
        assert!(reg
            .apply_change(&row("4-w", written), "u", 5)
            .unwrap()
            .is_empty());
        assert_eq!(reg.docs().unwrap()[0]["state"], "failed");
        // Deleted: forgotten.
        let a = reg
            .apply_change(&json!({"id": "r1", "deleted": true, "changes": [{"rev": "5-d"}], "doc": {"_id": "r1", "_deleted": true}}), "u", 6)
            .unwrap();
        assert!(a.is_empty());
        assert!(reg.docs().unwrap().is_empty());
    }

    #[test]
    fn recorded_and_state_only_changes_start_nothing() {
        let sql = SqliteSql::memory();
        let reg = Registry::new(&sql).unwrap();
        // Schema set-up is idempotent.
        Registry::new(&sql).unwrap();
        let row =
            |id: &str, doc: Value| json!({"id": id, "changes": [{"rev": doc["_rev"]}], "doc": doc});
        let live =
            json!({"_id": "l", "_rev": "1-a", "source": "a", "target": "b", "continuous": true});
        let a = reg.apply_change(&row("l", live.clone()), "u", 1).unwrap();
        let Action::Start { job_id, .. } = &a[0] else {
            panic!("{a:?}")
        };
        reg.report(&json!({"id": job_id, "state": "running"}))
            .unwrap();
        // Only state members changed while the job runs: left alone.
        let mut touched = live.clone();
        touched["_rev"] = json!("2-b");
        touched["_replication_state"] = json!("triggered");
        assert!(reg
            .apply_change(&row("l", touched), "u", 2)
            .unwrap()
            .is_empty());
        // The job finished: the same content starts it again, as removing
        // the state members of a completed document does in CouchDB.
        reg.report(&json!({"id": job_id, "state": "completed"}))
            .unwrap();
        let mut again = live.clone();
        again["_rev"] = json!("3-c");
        let a = reg.apply_change(&row("l", again), "u", 3).unwrap();
        assert!(matches!(&a[0], Action::Start { .. }), "{a:?}");

        // A document recorded complete starts nothing, even unknown to the
        // registry (read again from the start), and shows as completed.
        let done = json!({"_id": "d", "_rev": "2-x", "source": "http://u:p@h/a", "target": "b",
            "_replication_state": "completed", "_replication_state_time": "2026-12-04T05:00:00Z",
            "_replication_stats": {"docs_written": 7, "start_time": "2026-12-04T04:59:00Z"}});
        assert!(reg
            .apply_change(&row("d", done), "u", 4)
            .unwrap()
            .is_empty());
        let view = reg
            .docs()
            .unwrap()
            .into_iter()
            .find(|d| d["doc_id"] == "d")
            .unwrap();
        assert_eq!(view["state"], "completed");
        assert_eq!(view["info"], json!({"docs_written": 7}));
        assert_eq!(view["start_time"], "2026-12-04T04:59:00Z");
        assert_eq!(view["last_updated"], "2026-12-04T05:00:00Z");
        assert_eq!(view["source"], "http://h/a/");
        // A recorded failure starts nothing either.
        let failed = json!({"_id": "f", "_rev": "2-y", "source": "a", "target": "b",
            "_replication_state": "failed", "_replication_state_reason": "bad"});
        assert!(reg
            .apply_change(&row("f", failed), "u", 5)
            .unwrap()
            .is_empty());
        let view = reg
            .docs()
            .unwrap()
            .into_iter()
            .find(|d| d["doc_id"] == "f")
            .unwrap();
        assert_eq!(
            (view["state"].as_str(), view["info"]["error"].as_str()),
            (Some("failed"), Some("bad"))
        );
    }

    #[test]
    fn older_docs_tables_gain_the_new_columns() {
        let sql = SqliteSql::memory();
        sql.exec(
            "CREATE TABLE docs (doc_id TEXT PRIMARY KEY, job_id TEXT, rev TEXT NOT NULL, failed TEXT, updated_ms INTEGER NOT NULL)",
            &[],
        )
        .unwrap();
        sql.exec(
            "INSERT INTO docs (doc_id, rev, failed, updated_ms) VALUES ('x', '1-a', 'bad', 1)",
            &[],
        )
        .unwrap();
        let reg = Registry::new(&sql).unwrap();
        assert_eq!(reg.docs().unwrap()[0]["state"], "failed");
        let doc = json!({"_id": "y", "_rev": "1-a", "source": "a", "target": "b"});
        let a = reg
            .apply_change(&json!({"id": "y", "doc": doc}), "u", 2)
            .unwrap();
        assert!(matches!(&a[0], Action::Start { .. }), "{a:?}");
    }

    #[test]
    fn views_filter_by_state() {
        let s = vec![
            json!({"id": "a", "state": "running", "docs_read": 3}),
            json!({"id": "b", "state": "completed"}),
        ];
        assert_eq!(jobs_view(&s)["total_rows"], 1);
        let t = active_tasks(&s);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0]["type"], "replication");
        assert_eq!(t[0]["docs_read"], 3);
    }
}
