//! What the replicator's Durable Object does, apart from the Worker
//! runtime: one instance per job (named by the job id) and one registry
//! (named [`REGISTRY_NAME`]), both answering [`ReplicatorCall`]s.
//!
//! Alarms do the work. A job's alarm runs batches for a bounded time and
//! sets the next alarm; a completed document job writes its state into
//! its `_replicator` document. The registry's alarm reads `_replicator`
//! changes ([`doc_processor`]). Everything the runtime provides — other
//! actors, databases and URLs as [`Transport`]s, the alarm, timers, the
//! clock — comes through [`Runtime`], so the whole lifecycle runs under
//! `cargo test`.

use crate::doc_processor;
use crate::job::{self, Budget, JobRecord, JobState, JobStore, Next, Origin};
use crate::registry::Registry;
use crate::runtime::Runtime;
use futures::channel::oneshot;
use futures::future::{select, Either};
use serde_json::{json, Value};
use shared::actor_call::{ReplicatorCall, REGISTRY_NAME};
use shared::error::{CouchError, CouchResult};
use shared::replication::job::Ends;
use shared::replication::params::RepParams;
use shared::replication::peer::Peer;
use shared::sql::Sql;
use shared::user::UserCtx;
use std::cell::RefCell;

/// Work an alarm does before yielding to the next one: bounded so a
/// Durable Object invocation stays far below its limits (subrequests,
/// wall time) and so restarts and stops take effect promptly.
pub const BUDGET: Budget = Budget {
    work_ms: 20_000,
    longpoll_ms: 25_000,
    max_batches: 100,
};

/// A run that dies mid-batch (eviction, crash) is retried by this alarm,
/// set before the work starts.
pub const WATCHDOG_MS: u64 = 60_000;

/// One instance: its storage, its runtime, and the `_replicate` requests
/// waiting for its job to finish.
pub struct Actor<S: Sql, R: Runtime> {
    pub sql: S,
    pub rt: R,
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

fn internal(e: impl std::fmt::Display) -> CouchError {
    CouchError::internal(e.to_string())
}

impl<S: Sql, R: Runtime> Actor<S, R> {
    pub fn new(sql: S, rt: R) -> Self {
        Actor {
            sql,
            rt,
            waiters: RefCell::new(Vec::new()),
        }
    }

    /// Answers one call, as the job or as the registry.
    pub async fn handle(&self, call: ReplicatorCall) -> CouchResult<Value> {
        let ok = || json!({"ok": true});
        match call {
            ReplicatorCall::JobStart(body) => self.start(body).await,
            ReplicatorCall::JobStop => self.stop().await,
            ReplicatorCall::JobStatus => self.status(),
            ReplicatorCall::JobWait { ms } => self.wait(ms).await,
            ReplicatorCall::Report(summary) => self.registry()?.report(&summary).map(|_| ok()),
            ReplicatorCall::Remove(id) => self.registry()?.remove(&id).map(|_| ok()),
            ReplicatorCall::Jobs => self.registry()?.jobs().map(Value::from),
            ReplicatorCall::Docs => self.registry()?.docs().map(Value::from),
            ReplicatorCall::Poke => {
                self.registry()?;
                self.rt.set_alarm(0).await?;
                Ok(ok())
            }
        }
    }

    /// The alarm: the registry reads `_replicator`; a job runs.
    pub async fn alarm(&self) -> CouchResult<()> {
        let is_registry = self
            .sql
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'registry_meta'",
                &[],
            )?
            .is_some();
        if !is_registry {
            return self.run_job().await;
        }
        if let Err(e) = doc_processor::process(&self.registry()?, &self.rt).await {
            self.rt.log(&format!("_replicator processing failed: {e}"));
            self.rt.set_alarm(5_000).await?;
        }
        Ok(())
    }

    fn registry(&self) -> CouchResult<Registry<'_>> {
        Registry::new(&self.sql)
    }

    fn store(&self) -> CouchResult<JobStore<'_>> {
        JobStore::new(&self.sql)
    }

    fn wake(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }

    async fn report(&self, rec: &JobRecord) {
        let call = ReplicatorCall::Report(rec.summary());
        if let Err(e) = self.rt.call(REGISTRY_NAME, &call).await {
            self.rt
                .log(&format!("reporting job {} failed: {}", rec.id, e.reason));
        }
    }

    /// Starts the job, or restarts it with new parameters. An identical
    /// job that is still active is left running (a repeated `_replicate`
    /// joins it, as in CouchDB).
    async fn start(&self, body: Value) -> CouchResult<Value> {
        let id = body["id"].as_str().unwrap_or_default().to_string();
        let params: RepParams = serde_json::from_value(body["params"].clone()).map_err(internal)?;
        let origin: Origin = serde_json::from_value(body["origin"].clone()).map_err(internal)?;
        let user: UserCtx = serde_json::from_value(body["user"].clone()).unwrap_or_default();
        let store = self.store()?;
        let old = store.load()?;
        if let Some(old) = &old {
            if old.state.is_active() && old.params == params && old.origin == origin {
                return Ok(old.summary());
            }
        }
        let mut rec = JobRecord::new(id, params, origin, user, self.rt.now());
        rec.generation = old.map_or(0, |o| o.generation + 1);
        store.save(&rec)?;
        self.rt.set_alarm(0).await?;
        self.report(&rec).await;
        Ok(rec.summary())
    }

    async fn stop(&self) -> CouchResult<Value> {
        let store = self.store()?;
        let old = store.load()?;
        store.delete()?;
        self.rt.delete_alarm().await?;
        if let Some(old) = &old {
            let remove = ReplicatorCall::Remove(old.id.clone());
            if let Err(e) = self.rt.call(REGISTRY_NAME, &remove).await {
                self.rt
                    .log(&format!("removing job {} failed: {}", old.id, e.reason));
            }
        }
        self.wake();
        Ok(json!({"ok": true, "existed": old.is_some()}))
    }

    fn status(&self) -> CouchResult<Value> {
        match self.store()?.load()? {
            Some(r) => Ok(waited(&r)),
            None => Err(CouchError::not_found("missing")),
        }
    }

    /// Answers once the job is finished (or stopped), or after `ms`.
    async fn wait(&self, ms: u64) -> CouchResult<Value> {
        let active = matches!(self.store()?.load()?, Some(r) if r.state.is_active());
        if active {
            let (tx, rx) = oneshot::channel();
            self.waiters.borrow_mut().push(tx);
            let timeout = std::pin::pin!(self.rt.sleep(ms));
            if let Either::Right(_) = select(rx, timeout).await {
                // Timed out: the caller asks again.
            }
        }
        match self.store()?.load()? {
            Some(r) => Ok(waited(&r)),
            None => Ok(json!({"state": "stopped"})),
        }
    }

    /// One alarm of a job: a bounded run of batches, then the next alarm.
    async fn run_job(&self) -> CouchResult<()> {
        let store = self.store()?;
        let Ok(Some(rec)) = store.load() else {
            return Ok(());
        };
        if !rec.state.is_active() {
            return Ok(());
        }
        let now = self.rt.now();
        if rec.next_run_ms > now {
            return self.rt.set_alarm(rec.next_run_ms - now).await;
        }
        self.rt.set_alarm(WATCHDOG_MS).await?;
        let generation = rec.generation;
        let src = Peer::new(self.rt.peer(&rec.params.source, &rec.user));
        let tgt = Peer::new(self.rt.peer(&rec.params.target, &rec.user));
        let ends = Ends {
            source: &src,
            target: &tgt,
        };
        let host = AlarmHost {
            actor: self,
            store: &store,
            generation,
        };
        let mut work = rec.clone();
        let next = job::run(&mut work, &ends, &host, BUDGET).await;
        if !store.current(generation) {
            // Stopped or restarted meanwhile: the new generation owns the alarm.
            return Ok(());
        }
        match next {
            Next::At(t) => self.rt.set_alarm(t.saturating_sub(self.rt.now())).await?,
            Next::Stop => self.rt.delete_alarm().await?,
        }
        if work.state == JobState::Completed {
            doc_processor::record_completion(&self.rt, &work).await;
        }
        if !work.state.is_active() || work.state == JobState::Crashing {
            self.wake();
        }
        Ok(())
    }
}

/// A job's run inside an alarm: records are stored in the actor's
/// SQLite and reported to the registry, unless the job was superseded.
struct AlarmHost<'a, S: Sql, R: Runtime> {
    actor: &'a Actor<S, R>,
    store: &'a JobStore<'a>,
    generation: u64,
}

impl<S: Sql, R: Runtime> job::Host for AlarmHost<'_, S, R> {
    fn now(&self) -> u64 {
        self.actor.rt.now()
    }

    async fn save(&self, rec: &JobRecord) -> bool {
        if !self.store.current(self.generation) || self.store.save(rec).is_err() {
            return false;
        }
        self.actor.report(rec).await;
        true
    }

    fn new_session(&self) -> String {
        shared::uuids::random_hex()
    }

    async fn pause(&self) {
        self.actor.rt.sleep(1).await;
    }
}

/// What a waiting `_replicate` learns: the state, and the result or error.
fn waited(r: &JobRecord) -> Value {
    json!({
        "id": r.id,
        "state": r.state,
        "result": r.result,
        "error": r.last_error,
        "summary": r.summary(),
    })
}
