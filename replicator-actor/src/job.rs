//! One replication job as its actor stores it, and the work one alarm does.
//!
//! The record is the whole truth about a job: its parameters, state,
//! progress (from [`shared::replication::job`]) and error count. The actor
//! writes it after every batch; an alarm reads it, runs a bounded number of
//! batches and schedules the next alarm, so a job survives restarts and
//! evictions with at most one batch redone.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use shared::date::iso8601;
use shared::error::CouchResult;
use shared::replication::checkpoint::backoff_ms;
use shared::replication::docs::{self, Terminal};
use shared::replication::job::{self, Ends, Progress, Step};
use shared::replication::params::RepParams;
use shared::replication::peer::{RepError, Transport};
use shared::sql::Sql;
use shared::user::UserCtx;

/// CouchDB 3's job and document states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    Crashing,
    Completed,
    Failed,
}

impl JobState {
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobState::Pending | JobState::Running | JobState::Crashing
        )
    }
}

/// Why a job exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// `POST /_replicate`.
    Replicate,
    /// A document in `_replicator`.
    Doc { doc_id: String },
}

/// A dated event, as `_scheduler/jobs` lists a job's `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub ms: u64,
    pub kind: String,
    pub reason: Option<String>,
}

/// CouchDB keeps this many events per job.
const MAX_EVENTS: usize = 10;

/// An error kept for `_scheduler` and for a waiting `_replicate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredError {
    pub status: u16,
    pub error: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub params: RepParams,
    pub origin: Origin,
    /// Whose rights the job uses on local databases.
    pub user: UserCtx,
    pub state: JobState,
    /// Bumped by every (re)start; a run that finds another generation
    /// stored was superseded and stops without writing.
    pub generation: u64,
    pub progress: Option<Progress>,
    /// Consecutive failures (reset by a successful batch).
    pub failures: u32,
    pub last_error: Option<StoredError>,
    /// When the next attempt is due (crashing jobs).
    pub next_run_ms: u64,
    pub start_ms: u64,
    pub updated_ms: u64,
    /// The answer to a one-shot `_replicate`, once completed.
    pub result: Option<Value>,
    pub events: Vec<Event>,
}

impl JobRecord {
    pub fn new(id: String, params: RepParams, origin: Origin, user: UserCtx, now: u64) -> Self {
        let mut r = JobRecord {
            id,
            params,
            origin,
            user,
            state: JobState::Pending,
            generation: 0,
            progress: None,
            failures: 0,
            last_error: None,
            next_run_ms: now,
            start_ms: now,
            updated_ms: now,
            result: None,
            events: Vec::new(),
        };
        r.event(now, "added", None);
        r
    }

    fn event(&mut self, ms: u64, kind: &str, reason: Option<String>) {
        self.events.insert(
            0,
            Event {
                ms,
                kind: kind.into(),
                reason,
            },
        );
        self.events.truncate(MAX_EVENTS);
    }

    /// Records a failed attempt: `_replicate` one-shots fail for good (the
    /// waiting client gets the error, as CouchDB answers it); other jobs
    /// crash and retry after an exponential backoff.
    pub fn fail(&mut self, e: &RepError, now: u64) {
        self.failures += 1;
        self.updated_ms = now;
        self.last_error = Some(StoredError {
            status: e.status,
            error: e.error.clone(),
            reason: e.reason.clone(),
        });
        let one_shot_request = self.origin == Origin::Replicate && !self.params.continuous;
        if one_shot_request {
            self.state = JobState::Failed;
            self.event(now, "crashed", Some(e.summary()));
        } else {
            self.state = JobState::Crashing;
            self.next_run_ms = now + backoff_ms(self.failures);
            self.event(now, "crashed", Some(e.summary()));
        }
    }

    pub fn backoff_remaining(&self, now: u64) -> u64 {
        self.next_run_ms.saturating_sub(now)
    }

    /// The `_replicator` document `doc` with this job's completion written
    /// in, as CouchDB 3's `update_doc_completed` writes it. `None` unless
    /// this is a document's completed job and `doc` still describes it (an
    /// edit meanwhile started another), or when `doc` already says so.
    pub fn doc_update(&self, doc: &Map<String, Value>, now: u64) -> Option<Map<String, Value>> {
        let finished =
            self.state == JobState::Completed && matches!(self.origin, Origin::Doc { .. });
        if !finished || RepParams::parse(doc).ok().as_ref() != Some(&self.params) {
            return None;
        }
        let p = self.progress.as_ref();
        let s = p.map(|p| p.stats).unwrap_or_default();
        let stats = [
            ("revisions_checked", json!(s.missing_checked)),
            ("missing_revisions_found", json!(s.missing_found)),
            ("docs_read", json!(s.docs_read)),
            ("docs_written", json!(s.docs_written)),
            ("doc_write_failures", json!(s.doc_write_failures)),
            (
                "checkpointed_source_seq",
                json!(p.map(|p| &p.checkpointed_seq)),
            ),
            ("start_time", json!(iso8601(self.start_ms))),
        ];
        let stats = stats.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        docs::with_terminal(doc, &Terminal::Completed(stats), now)
    }

    /// Everything the registry keeps for `_scheduler/jobs`,
    /// `_scheduler/docs` and `_active_tasks`.
    pub fn summary(&self) -> Value {
        let p = self.progress.as_ref();
        let stats = p.map(|p| p.stats).unwrap_or_default();
        let (doc_id, database) = match &self.origin {
            Origin::Doc { doc_id } => (json!(doc_id), json!("_replicator")),
            Origin::Replicate => (Value::Null, Value::Null),
        };
        let error = self
            .last_error
            .as_ref()
            .map(|e| format!("{}: {}", e.error, e.reason));
        json!({
            "id": self.id,
            "doc_id": doc_id,
            "database": database,
            "source": self.params.source.display(),
            "target": self.params.target.display(),
            "continuous": self.params.continuous,
            "state": self.state,
            "user": self.user.name,
            "start_time": iso8601(self.start_ms),
            "start_ms": self.start_ms,
            "last_updated": iso8601(self.updated_ms),
            "updated_ms": self.updated_ms,
            "error_count": self.failures,
            "error": error,
            "next_run": (self.state == JobState::Crashing).then(|| iso8601(self.next_run_ms)),
            "backoff_ms": (self.state == JobState::Crashing)
                .then(|| shared::replication::checkpoint::backoff_ms(self.failures)),
            "checkpoint_interval": self.params.checkpoint_interval_ms,
            "docs_read": stats.docs_read,
            "docs_written": stats.docs_written,
            "doc_write_failures": stats.doc_write_failures,
            "missing_revisions_found": stats.missing_found,
            "revisions_checked": stats.missing_checked,
            "changes_pending": p.and_then(|p| p.pending),
            "checkpointed_source_seq": p.map(|p| p.checkpointed_seq.clone()),
            "through_seq": p.map(|p| p.seq.clone()),
            "history": self.events.iter().map(|e| {
                let mut v = json!({"timestamp": iso8601(e.ms), "type": e.kind});
                if let Some(r) = &e.reason { v["reason"] = json!(r); }
                v
            }).collect::<Vec<_>>(),
        })
    }
}

/// The job's storage in its actor's SQLite: one row, the record as JSON
/// (far below the 2 MB value limit: `doc_ids` is the only unbounded part,
/// and a record that outgrows it fails to save with the limit's error).
pub struct JobStore<'a> {
    sql: &'a dyn Sql,
}

impl<'a> JobStore<'a> {
    pub fn new(sql: &'a dyn Sql) -> CouchResult<Self> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS job (k INTEGER PRIMARY KEY CHECK (k = 1), record TEXT NOT NULL)",
            &[],
        )?;
        Ok(JobStore { sql })
    }

    pub fn load(&self) -> CouchResult<Option<JobRecord>> {
        let row = self
            .sql
            .query_row("SELECT record FROM job WHERE k = 1", &[])?;
        Ok(row
            .and_then(|mut r| r.swap_remove(0).into_string())
            .and_then(|s| serde_json::from_str(&s).ok()))
    }

    pub fn save(&self, r: &JobRecord) -> CouchResult<()> {
        let text =
            serde_json::to_string(r).map_err(|e| shared::CouchError::internal(e.to_string()))?;
        self.sql.exec(
            "INSERT INTO job (k, record) VALUES (1, ?) ON CONFLICT (k) DO UPDATE SET record = excluded.record",
            &[text.into()],
        )?;
        Ok(())
    }

    pub fn delete(&self) -> CouchResult<()> {
        self.sql.exec("DELETE FROM job", &[])?;
        Ok(())
    }

    /// Whether `generation` is still the stored one (the job was not
    /// restarted or stopped meanwhile).
    pub fn current(&self, generation: u64) -> bool {
        matches!(self.load(), Ok(Some(r)) if r.generation == generation)
    }
}

/// Limits of one alarm's run.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Stop starting batches after this long (ms).
    pub work_ms: u64,
    /// How long a caught-up continuous job long-polls the source.
    pub longpoll_ms: u64,
    pub max_batches: u32,
}

/// What the actor should do after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wake again at this time.
    At(u64),
    /// Nothing more (completed, failed, or superseded).
    Stop,
}

/// What a run needs from the actor around it.
#[allow(async_fn_in_trait)]
pub trait Host {
    fn now(&self) -> u64;
    /// Stores the record (and tells the registry); false when the job was
    /// stopped or restarted meanwhile, which ends the run.
    async fn save(&self, rec: &JobRecord) -> bool;
    fn new_session(&self) -> String;
    /// Called between batches: lets the runtime serve other requests (on
    /// one local workerd, every actor shares one event loop).
    async fn pause(&self) {}
}

/// Runs a job for one alarm: opens the session if needed, replicates
/// batches within the budget, saving the record after each.
pub async fn run<S: Transport, T: Transport>(
    rec: &mut JobRecord,
    ends: &Ends<'_, S, T>,
    host: &impl Host,
    budget: Budget,
) -> Next {
    let now = || host.now();
    let started = now();
    if rec.progress.is_none() {
        match job::start(&rec.params, ends, host.new_session(), now()).await {
            Ok(p) => {
                rec.progress = Some(p);
                rec.state = JobState::Running;
                rec.event(now(), "started", None);
                rec.updated_ms = now();
                if !host.save(rec).await {
                    return Next::Stop;
                }
            }
            Err(e) => return failed(rec, &e, now(), host).await,
        }
    } else if rec.state != JobState::Running {
        rec.state = JobState::Running;
        rec.event(now(), "started", None);
    }
    for _ in 0..budget.max_batches {
        let Some(mut progress) = rec.progress.clone() else {
            return Next::Stop;
        };
        let outcome = job::step(
            &rec.params,
            &mut progress,
            ends,
            &now,
            Some(budget.longpoll_ms),
        )
        .await;
        match outcome {
            Ok(step) => {
                rec.progress = Some(progress);
                rec.failures = 0;
                rec.updated_ms = now();
                if step == Step::Done {
                    rec.state = JobState::Completed;
                    rec.result = rec.progress.as_ref().map(|p| job::result_body(p, now()));
                    rec.event(now(), "completed", None);
                    host.save(rec).await;
                    return Next::Stop;
                }
                if !host.save(rec).await {
                    return Next::Stop;
                }
                if step == Step::Idle || now().saturating_sub(started) >= budget.work_ms {
                    return Next::At(now());
                }
                host.pause().await;
            }
            Err(e) => return failed(rec, &e, now(), host).await,
        }
    }
    Next::At(now())
}

async fn failed(rec: &mut JobRecord, e: &RepError, now: u64, host: &impl Host) -> Next {
    // The progress is kept: the retry continues from the last batch that
    // reached the target.
    rec.fail(e, now);
    if !host.save(rec).await || rec.state == JobState::Failed {
        return Next::Stop;
    }
    Next::At(rec.next_run_ms)
}
