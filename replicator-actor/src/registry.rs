//! The registry: one actor that knows every job (for `_scheduler/jobs`,
//! `_scheduler/docs` and `_active_tasks`) and turns `_replicator`
//! documents into jobs, as CouchDB's document processor does.
//!
//! Job actors report their summary after each change of state or batch.
//! The `_replicator` database's actor tells the registry after each write;
//! the registry then reads that database's `_changes` from its stored
//! cursor and starts, restarts or stops the jobs the documents describe.

use serde_json::{json, Value};
use shared::error::CouchResult;
use shared::replication::checkpoint::iso8601;
use shared::replication::id::job_id;
use shared::replication::params::RepParams;
use shared::sql::Sql;

pub use shared::replication::REPLICATOR_DB;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, summary TEXT NOT NULL)",
    // A `_replicator` document: its job, or why it has none (`failed`).
    "CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY, job_id TEXT, rev TEXT NOT NULL, failed TEXT, updated_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS registry_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
];

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
}

impl<'a> Registry<'a> {
    pub fn new(sql: &'a dyn Sql) -> CouchResult<Self> {
        for s in SCHEMA {
            sql.exec(s, &[])?;
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
            "SELECT d.doc_id, d.failed, d.updated_ms, j.summary FROM docs d LEFT JOIN jobs j ON j.id = d.job_id ORDER BY d.doc_id",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let doc_id = r[0].as_str().unwrap_or_default().to_string();
                let failed = r[1].as_str().map(String::from);
                let updated = r[2].as_i64().unwrap_or(0) as u64;
                let summary = r[3]
                    .as_str()
                    .and_then(|s| serde_json::from_str::<Value>(s).ok());
                doc_view(&doc_id, failed, updated, summary)
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
        let old = self.sql.query_row(
            "SELECT job_id, rev FROM docs WHERE doc_id = ?",
            &[doc_id.into()],
        )?;
        let old_job = old.as_ref().and_then(|r| r[0].as_str().map(String::from));
        let old_rev = old.as_ref().and_then(|r| r[1].as_str().map(String::from));
        let rev = row["doc"]["_rev"]
            .as_str()
            .or_else(|| row["changes"][0]["rev"].as_str())
            .unwrap_or_default()
            .to_string();
        let deleted = row["deleted"].as_bool().unwrap_or(false) || row["doc"].is_null();
        let mut actions = Vec::new();
        if deleted {
            if let Some(j) = old_job {
                actions.push(Action::Stop(j));
            }
            self.sql
                .exec("DELETE FROM docs WHERE doc_id = ?", &[doc_id.into()])?;
            return Ok(actions);
        }
        if old_rev.as_deref() == Some(rev.as_str()) {
            return Ok(actions);
        }
        let parsed = row["doc"]
            .as_object()
            .ok_or_else(|| shared::CouchError::bad_request("not an object"))
            .and_then(RepParams::parse);
        match parsed {
            Ok(params) => {
                let id = job_id(server_uuid, &params);
                if let Some(j) = old_job.filter(|j| *j != id) {
                    actions.push(Action::Stop(j));
                }
                self.sql.exec(
                    "INSERT INTO docs (doc_id, job_id, rev, failed, updated_ms) VALUES (?, ?, ?, NULL, ?) ON CONFLICT (doc_id) DO UPDATE SET job_id = excluded.job_id, rev = excluded.rev, failed = NULL, updated_ms = excluded.updated_ms",
                    &[doc_id.into(), id.clone().into(), rev.into(), now.into()],
                )?;
                actions.push(Action::Start {
                    job_id: id,
                    doc_id: doc_id.to_string(),
                    params: Box::new(params),
                    owner: row["doc"][shared::replication::docs::OWNER]
                        .as_str()
                        .map(String::from),
                });
            }
            Err(e) => {
                if let Some(j) = old_job {
                    actions.push(Action::Stop(j));
                }
                self.sql.exec(
                    "INSERT INTO docs (doc_id, job_id, rev, failed, updated_ms) VALUES (?, NULL, ?, ?, ?) ON CONFLICT (doc_id) DO UPDATE SET job_id = NULL, rev = excluded.rev, failed = excluded.failed, updated_ms = excluded.updated_ms",
                    &[doc_id.into(), rev.into(), e.reason.into(), now.into()],
                )?;
            }
        }
        Ok(actions)
    }
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
        // An invalid edit: stopped, reported failed.
        let a = reg
            .apply_change(
                &row("3-c", json!({"_id": "r1", "_rev": "3-c", "source": 1})),
                "u",
                4,
            )
            .unwrap();
        assert_eq!(a, vec![Action::Stop(second.clone())]);
        let docs = reg.docs().unwrap();
        assert_eq!(docs[0]["state"], "failed");
        // Deleted: forgotten.
        let a = reg
            .apply_change(&json!({"id": "r1", "deleted": true, "changes": [{"rev": "4-d"}], "doc": {"_id": "r1", "_deleted": true}}), "u", 5)
            .unwrap();
        assert!(a.is_empty());
        assert!(reg.docs().unwrap().is_empty());
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
