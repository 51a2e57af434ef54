//! The replication loop, one batch at a time, as CouchDB's replicator runs
//! it: changes from the source, `_revs_diff` on the target, fetch what is
//! missing, write it with `new_edits: false`, checkpoint.
//!
//! Everything a job must remember between batches is in [`Progress`],
//! which the actor stores after each batch. Nothing else is kept between
//! calls, so an actor evicted mid-batch resumes from the last stored
//! progress and redoes at most that one batch (rewriting revisions the
//! target already has changes nothing).

use super::checkpoint::{self, Session, Stats};
use super::id;
use super::params::RepParams;
use super::peer::{ChangesBatch, Peer, RepError, Transport};
use crate::date::rfc1123;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A running session's state, stored after every batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub session_id: String,
    /// `_local/...` on both ends.
    pub checkpoint_id: String,
    pub started_ms: u64,
    /// Where this session started.
    pub start_seq: Value,
    /// Everything up to here is on the target.
    pub seq: Value,
    /// The sequence last written into the checkpoint documents.
    pub checkpointed_seq: Value,
    pub last_checkpoint_ms: u64,
    /// The history this session continues (before its own entry).
    pub history: Vec<Value>,
    pub stats: Stats,
    pub source_log_rev: Option<String>,
    pub target_log_rev: Option<String>,
    /// Changes the source reported as still to come after the last batch.
    pub pending: Option<u64>,
    /// The source's feed had nothing more at the last batch.
    pub caught_up: bool,
    /// Whether the session wrote or may write a checkpoint: false until a
    /// batch moved `seq`.
    pub changed: bool,
    /// The next batch's changes, read from the source while the last
    /// batch was written (after `.0`). Not stored: a job resumed from
    /// storage reads them again.
    #[serde(skip)]
    pub prefetched: Option<(Value, ChangesBatch)>,
}

/// What one [`step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A batch was replicated; more may follow at once.
    Progressed,
    /// Continuous and caught up: nothing new within the wait.
    Idle,
    /// One-shot and caught up: the job is complete.
    Done,
}

/// How the local end names this server, for the checkpoint id.
pub struct Ends<'a, S, T> {
    pub source: &'a Peer<S>,
    pub target: &'a Peer<T>,
}

/// The PouchDB-style id of one end: its server's uuid plus its name, or
/// its URL when the server has no uuid (as PouchDB falls back).
async fn end_id<X: Transport>(
    peer: &Peer<X>,
    endpoint: &super::params::Endpoint,
) -> Result<String, RepError> {
    match peer.server_uuid().await? {
        Some(u) => Ok(id::pouch_db_id(&u, endpoint)),
        None => Ok(endpoint.display()),
    }
}

/// Opens both ends (creating the target if asked), finds the checkpoint
/// and the start sequence: the first thing a session does.
pub async fn start<S: Transport, T: Transport>(
    p: &RepParams,
    ends: &Ends<'_, S, T>,
    session_id: String,
    now_ms: u64,
) -> Result<Progress, RepError> {
    if ends.source.info().await?.is_none() {
        return Err(RepError::new(
            404,
            "db_not_found",
            format!("could not open {}", p.source.display()),
        ));
    }
    if ends.target.info().await?.is_none() {
        if !p.create_target {
            return Err(RepError::new(
                404,
                "db_not_found",
                format!("could not open {}", p.target.display()),
            ));
        }
        ends.target.create(&p.create_target_params).await?;
    }
    let src_id = end_id(ends.source, &p.source).await?;
    let tgt_id = end_id(ends.target, &p.target).await?;
    let checkpoint_id = id::checkpoint_id(&src_id, &tgt_id, &p.filter);
    let src_log = ends.source.get_local(&checkpoint_id).await?;
    let tgt_log = ends.target.get_local(&checkpoint_id).await?;
    let rev_of = |d: &Option<Value>| {
        d.as_ref()
            .and_then(|d| d["_rev"].as_str())
            .map(String::from)
    };
    let (found_seq, history) = if p.use_checkpoints {
        checkpoint::compare_logs(src_log.as_ref(), tgt_log.as_ref())
    } else {
        (json!(0), Vec::new())
    };
    let start_seq = p.since_seq.clone().unwrap_or(found_seq);
    Ok(Progress {
        session_id,
        checkpoint_id,
        started_ms: now_ms,
        start_seq: start_seq.clone(),
        seq: start_seq.clone(),
        checkpointed_seq: start_seq,
        last_checkpoint_ms: now_ms,
        history,
        stats: Stats::default(),
        source_log_rev: rev_of(&src_log),
        target_log_rev: rev_of(&tgt_log),
        pending: None,
        caught_up: false,
        changed: false,
        prefetched: None,
    })
}

/// Replicates one batch. `wait_ms` lets a continuous job long-poll the
/// source when it is caught up.
pub async fn step<S: Transport, T: Transport>(
    p: &RepParams,
    pr: &mut Progress,
    ends: &Ends<'_, S, T>,
    now_ms: &dyn Fn() -> u64,
    wait_ms: Option<u64>,
) -> Result<Step, RepError> {
    if let (true, true, Some(ms)) = (p.continuous, pr.caught_up, wait_ms) {
        // Caught up: wait for the source's next change, then return so the
        // caller can check the job is still wanted before writing anything
        // (a cancel during the wait must not replicate what woke it).
        let woke = ends
            .source
            .changes(&pr.seq, 1, &p.filter, p.winning_revs_only, Some(ms))
            .await?;
        if woke.rows_seen == 0 {
            return Ok(Step::Idle);
        }
        pr.caught_up = false;
        return Ok(Step::Progressed);
    }
    let batch = match pr.prefetched.take() {
        Some((since, batch)) if since == pr.seq => batch,
        _ => read_after(p, ends.source, &pr.seq).await?,
    };
    let end_of_feed = match batch.pending {
        Some(n) => n == 0,
        None => (batch.rows_seen as u64) < p.worker_batch_size,
    };
    let mut stats = Stats::default();
    if !batch.changes.is_empty() {
        let mut revs = Map::new();
        for c in &batch.changes {
            let entry = revs.entry(c.id.clone()).or_insert_with(|| json!([]));
            if let Value::Array(a) = entry {
                for r in &c.revs {
                    let r = json!(r);
                    if !a.contains(&r) {
                        a.push(r);
                    }
                }
            }
        }
        stats.missing_checked = revs
            .values()
            .map(|v| v.as_array().map_or(0, Vec::len) as u64)
            .sum();
        let missing = ends.target.revs_diff(&revs).await?;
        stats.missing_found = missing.iter().map(|(_, r)| r.len() as u64).sum();
        let fetched = ends.source.fetch_revs(&missing).await?;
        stats.docs_read = fetched.docs.len() as u64;
        let sent = fetched.docs.len() as u64;
        // Pipelined: the next batch's changes are read while this one is
        // written (a failed read is only read again next time).
        let next_since = batch.last_seq.clone();
        let ahead = async {
            if end_of_feed || next_since.is_null() {
                None
            } else {
                read_after(p, ends.source, &next_since).await.ok()
            }
        };
        let (failed, next) = futures::future::join(ends.target.write(fetched.docs), ahead).await;
        let failed = failed?;
        pr.prefetched = next.map(|b| (next_since, b));
        stats.doc_write_failures = failed;
        stats.docs_written = sent - failed.min(sent);
    }
    pr.stats.add(&stats);
    pr.pending = batch.pending;
    let moved = batch.rows_seen > 0 && !batch.last_seq.is_null() && batch.last_seq != pr.seq;
    if moved {
        pr.seq = batch.last_seq.clone();
        pr.changed = true;
    }
    pr.caught_up = end_of_feed;
    let now = now_ms();
    let due = now.saturating_sub(pr.last_checkpoint_ms) >= p.checkpoint_interval_ms;
    if end_of_feed || due {
        checkpoint(p, pr, ends, now).await?;
    }
    Ok(match (end_of_feed, p.continuous) {
        (false, _) => Step::Progressed,
        (true, false) => Step::Done,
        (true, true) if moved => Step::Progressed,
        (true, true) => Step::Idle,
    })
}

/// One batch of the source's changes after `since`.
async fn read_after<S: Transport>(
    p: &RepParams,
    source: &Peer<S>,
    since: &Value,
) -> Result<ChangesBatch, RepError> {
    source
        .changes(
            since,
            p.worker_batch_size,
            &p.filter,
            p.winning_revs_only,
            None,
        )
        .await
}

/// Writes the checkpoint on both ends if the session moved since the last
/// one. A source that refuses the write (read-only, 401/403) is skipped,
/// as PouchDB does: the target's checkpoint alone still resumes.
pub async fn checkpoint<S: Transport, T: Transport>(
    p: &RepParams,
    pr: &mut Progress,
    ends: &Ends<'_, S, T>,
    now_ms: u64,
) -> Result<(), RepError> {
    pr.last_checkpoint_ms = now_ms;
    if !p.use_checkpoints || !pr.changed || pr.checkpointed_seq == pr.seq {
        return Ok(());
    }
    let body = session_body(pr, now_ms);
    match ends
        .source
        .put_local(&pr.checkpoint_id, &body, pr.source_log_rev.as_deref())
        .await
    {
        Ok(rev) => pr.source_log_rev = Some(rev),
        Err(e) if matches!(e.status, 401 | 403) => {}
        Err(e) => return Err(e),
    }
    let rev = ends
        .target
        .put_local(&pr.checkpoint_id, &body, pr.target_log_rev.as_deref())
        .await?;
    pr.target_log_rev = Some(rev);
    pr.checkpointed_seq = pr.seq.clone();
    Ok(())
}

/// The checkpoint body of the session so far.
pub fn session_body(pr: &Progress, now_ms: u64) -> Map<String, Value> {
    let start = rfc1123(pr.started_ms);
    let end = rfc1123(now_ms);
    Session {
        session_id: &pr.session_id,
        start_time: &start,
        end_time: &end,
        start_seq: &pr.start_seq,
        end_seq: &pr.seq,
        stats: pr.stats,
    }
    .checkpoint_body(&pr.history)
}

/// CouchDB's answer to a finished one-shot `_replicate`: `ok`, the
/// session, `source_last_seq`, `history`; or `no_changes` when there was
/// nothing to replicate.
pub fn result_body(pr: &Progress, now_ms: u64) -> Value {
    if !pr.changed {
        return json!({"ok": true, "no_changes": true});
    }
    let mut body = session_body(pr, now_ms);
    body.insert("ok".into(), json!(true));
    for k in ["last_seq", "version", "replicator"] {
        body.shift_remove(k);
    }
    let mut out = Map::new();
    out.insert("ok".into(), json!(true));
    out.extend(body);
    Value::Object(out)
}
