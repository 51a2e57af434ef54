//! `_active_tasks` rows for view index builds: CouchDB's `indexer` tasks.
//!
//! A database actor builds its views in rounds (one per alarm, each within
//! a CPU budget). After a round it reports each design document whose
//! views are still behind, with how far the build has come since it began;
//! the catalog keeps the latest report per design document and drops it
//! when the build finishes or its actor stops reporting.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A report older than this is of a build whose actor went away.
pub const STALE_AFTER_SECS: u64 = 600;

/// One design document's index build in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexerTask {
    pub database: String,
    pub design_document: String,
    /// Changes mapped since the build began.
    pub changes_done: u64,
    /// Changes the build had to map when it began (and any written since).
    pub total_changes: u64,
    pub started_on: u64,
    pub updated_on: u64,
}

impl IndexerTask {
    /// Percent done, as CouchDB reports it (a whole number).
    pub fn progress(&self) -> u64 {
        match self.total_changes {
            0 => 100,
            t => (self.changes_done.saturating_mul(100) / t).min(100),
        }
    }

    /// The task as `GET /_active_tasks` shows it.
    pub fn row(&self, node: &str) -> Value {
        let pid = format!("<{}:{}>", self.database, self.design_document);
        json!({
            "type": "indexer",
            "node": node,
            "pid": pid,
            "indexer_pid": pid,
            "process_status": "running",
            "database": self.database,
            "design_document": self.design_document,
            "changes_done": self.changes_done,
            "total_changes": self.total_changes,
            "progress": self.progress(),
            "started_on": self.started_on,
            "updated_on": self.updated_on,
        })
    }
}

/// Where a design document's build stands after a round: its views' index
/// sequences before and after it, and the database's update sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildStep {
    pub seq_before: u64,
    pub seq_after: u64,
    pub update_seq: u64,
}

/// The task for a build that `step` advanced: `begun` is the index
/// sequence and the time the build began at.
pub fn track(
    database: &str,
    design_document: &str,
    begun: (u64, u64),
    step: BuildStep,
    now: u64,
) -> IndexerTask {
    let (start_seq, started_on) = begun;
    IndexerTask {
        database: database.to_string(),
        design_document: design_document.to_string(),
        changes_done: step.seq_after.saturating_sub(start_seq),
        total_changes: step.update_seq.saturating_sub(start_seq),
        started_on,
        updated_on: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_reports_its_progress_from_where_it_began() {
        let step = |before, after| BuildStep {
            seq_before: before,
            seq_after: after,
            update_seq: 1000,
        };
        let first = track("db", "_design/v", (200, 50), step(200, 400), 50);
        assert_eq!(
            (first.changes_done, first.total_changes, first.progress()),
            (200, 800, 25)
        );
        let later = track("db", "_design/v", (200, 50), step(400, 1000), 70);
        assert_eq!((later.changes_done, later.progress()), (800, 100));
        assert_eq!((later.started_on, later.updated_on), (50, 70));
        let row = later.row("settee@127.0.0.1");
        assert_eq!(row["type"], "indexer");
        assert_eq!(row["design_document"], "_design/v");
        assert_eq!(row["progress"], 100);
        let empty = IndexerTask {
            total_changes: 0,
            ..later
        };
        assert_eq!(empty.progress(), 100);
    }
}
