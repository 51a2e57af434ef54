//! When view indexes are built: in the actor's alarm, never beyond one
//! invocation's CPU budget.
//!
//! A query that finds its view behind maps what its own budget allows
//! (see [`crate::build_budget::Builds`]); if that is not enough it asks the
//! scheduler for the view, waits, and runs again once a round has brought
//! every view it waits for up to date. Each alarm runs one round: the
//! wanted views if there are any (and another round after it), else every
//! auto-updated one, and sets another alarm while any is unfinished. The alarm and the timer are a [`BuildHost`], so
//! the whole hand-off runs natively.

use crate::database::Database;
use crate::views::Refresh;
use futures::channel::oneshot;
use futures::future::{select, Either};
use shared::active_tasks::{self, BuildStep, IndexerTask};
use shared::doc::DESIGN_PREFIX;
use shared::view::IndexName;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// How long a query waits for a build round before looking again (in case
/// an alarm was lost with an earlier instance).
pub const BUILD_WAIT_MS: u64 = 30_000;
/// Documents a query that waited for a build may map itself when it runs
/// again: enough for the writes that came meanwhile, far below a budget.
pub const RERUN_BUILD_BUDGET: u64 = 1_000;

/// What the scheduler needs of the runtime.
#[allow(async_fn_in_trait)]
pub trait BuildHost {
    /// Has the alarm run as soon as possible.
    async fn set_alarm(&self) -> Result<(), String>;
    async fn sleep(&self, ms: u64);
    /// Seconds since the epoch.
    fn now(&self) -> u64;
    /// Hands the database's index builds in progress to `_active_tasks`
    /// (all of them; an empty list when the last one finished).
    async fn report_tasks(&self, db: &str, tasks: Vec<IndexerTask>);
}

/// One actor's pending builds.
#[derive(Default)]
pub struct BuildScheduler {
    /// Views the next round must build: queries wait for them (or asked
    /// for them with `update=lazy`).
    wanted: RefCell<Vec<IndexName>>,
    /// Queries waiting for a round to finish the views they need.
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
    /// An alarm is set (a hint: one set by an earlier instance is unknown).
    armed: Cell<bool>,
    /// Builds the rounds are in the middle of, by design document id:
    /// the index sequence and time each began at.
    begun: RefCell<BTreeMap<String, (u64, u64)>>,
}

/// What one run of a request gives: its answer, the views it must wait
/// for, and the views it wants updated afterwards.
pub type Run<T> = (T, Vec<IndexName>, Vec<IndexName>);

impl BuildScheduler {
    /// Has the next round build `views` (besides every auto-updated view).
    pub async fn want(&self, host: &impl BuildHost, views: Vec<IndexName>) -> Result<(), String> {
        {
            let mut wanted = self.wanted.borrow_mut();
            for v in views {
                if !wanted.contains(&v) {
                    wanted.push(v);
                }
            }
        }
        if !self.armed.replace(true) {
            if let Err(e) = host.set_alarm().await {
                self.armed.set(false);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Answers a request whose runs may need views built: `run(rerun)`
    /// answers it once (`rerun`: it waited before, so its own budget should
    /// be [`RERUN_BUILD_BUDGET`]); while it names views to wait for, they
    /// are wanted and the request runs again after the round that finishes
    /// them (or after [`BUILD_WAIT_MS`]).
    pub async fn answer<T>(
        &self,
        host: &impl BuildHost,
        mut run: impl FnMut(bool) -> Run<T>,
    ) -> Result<T, String> {
        let (mut out, mut awaited, mut lazy) = run(false);
        while !awaited.is_empty() {
            let (tx, rx) = oneshot::channel();
            self.waiters.borrow_mut().push(tx);
            self.want(host, awaited).await?;
            let timer = std::pin::pin!(host.sleep(BUILD_WAIT_MS));
            if let Either::Right(_) = select(rx, timer).await {
                tracing::warn!(
                    "a query waited {BUILD_WAIT_MS} ms for an index build; looking again"
                );
            }
            (out, awaited, lazy) = run(true);
        }
        if !lazy.is_empty() {
            self.want(host, lazy).await?;
        }
        Ok(out)
    }

    /// One round, as the alarm runs it. Waiting queries run again once no
    /// view they wait for is unfinished; another alarm follows while any
    /// view is.
    pub async fn round(&self, host: &impl BuildHost, db: &Database<'_>) -> Result<(), String> {
        self.armed.set(false);
        let wanted = self.wanted.take();
        let name = db.meta().map(|m| m.name.clone()).unwrap_or_default();
        let round = db.refresh_views(&wanted).unwrap_or_else(|e| {
            tracing::error!("view update in {name} failed: {}", e.reason);
            Refresh::default()
        });
        for e in &round.failures {
            tracing::error!("view update in {name} failed: {}", e.reason);
        }
        let still: Vec<IndexName> = round
            .unfinished
            .iter()
            .map(|(v, _)| v)
            .filter(|v| wanted.contains(v))
            .cloned()
            .collect();
        if still.is_empty() {
            for w in self.waiters.borrow_mut().drain(..) {
                let _ = w.send(());
            }
        }
        self.report(host, &name, &round.unfinished).await;
        // A round of wanted views left the auto-updated ones to the next.
        if !round.unfinished.is_empty() || !wanted.is_empty() {
            self.want(host, still).await?;
        }
        Ok(())
    }

    /// Reports the builds a round left unfinished, per design document (the
    /// least advanced of its views), when there are any or were before.
    async fn report(&self, host: &impl BuildHost, db: &str, steps: &[(IndexName, BuildStep)]) {
        let mut by_ddoc: BTreeMap<String, BuildStep> = BTreeMap::new();
        for (index, step) in steps {
            by_ddoc
                .entry(format!("{DESIGN_PREFIX}{}", index.ddoc))
                .and_modify(|s| {
                    s.seq_before = s.seq_before.min(step.seq_before);
                    s.seq_after = s.seq_after.min(step.seq_after);
                })
                .or_insert(*step);
        }
        let now = host.now();
        let tasks: Vec<IndexerTask> = {
            let mut begun = self.begun.borrow_mut();
            if begun.is_empty() && by_ddoc.is_empty() {
                return;
            }
            begun.retain(|d, _| by_ddoc.contains_key(d));
            by_ddoc
                .iter()
                .map(|(ddoc, step)| {
                    let begun = *begun.entry(ddoc.clone()).or_insert((step.seq_before, now));
                    active_tasks::track(db, ddoc, begun, *step, now)
                })
                .collect()
        };
        host.report_tasks(db, tasks).await;
    }
}
