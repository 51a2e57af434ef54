//! Checkpoints: the `_local/{id}` document both ends keep, and how a
//! replication picks its start sequence from them.
//!
//! The document carries CouchDB's fields (`session_id`, `source_last_seq`,
//! `replication_id_version`, `history` entries with `recorded_seq` and the
//! stats) and PouchDB's (`last_seq`, `version: 1`, `replicator`, history
//! entries with `last_seq`), so either implementation reads what the other
//! wrote and resumes where it stopped.

use super::id::REP_ID_VERSION;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// CouchDB keeps this many sessions in `history`.
pub const MAX_HISTORY: usize = 50;

/// What a job has done, as CouchDB counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Revisions asked about with `_revs_diff`.
    pub missing_checked: u64,
    /// Revisions the target lacked.
    pub missing_found: u64,
    /// Documents (revisions) read from the source.
    pub docs_read: u64,
    /// Revisions the target accepted.
    pub docs_written: u64,
    /// Revisions the target refused (403 from a `validate_doc_update`, ...).
    pub doc_write_failures: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.missing_checked += o.missing_checked;
        self.missing_found += o.missing_found;
        self.docs_read += o.docs_read;
        self.docs_written += o.docs_written;
        self.doc_write_failures += o.doc_write_failures;
    }
}

/// One session's line in `history`.
#[derive(Debug, Clone, PartialEq)]
pub struct Session<'a> {
    pub session_id: &'a str,
    pub start_time: &'a str,
    pub end_time: &'a str,
    pub start_seq: &'a Value,
    pub end_seq: &'a Value,
    pub stats: Stats,
}

impl Session<'_> {
    pub fn history_entry(&self) -> Value {
        json!({
            "session_id": self.session_id,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "start_last_seq": self.start_seq,
            "end_last_seq": self.end_seq,
            "recorded_seq": self.end_seq,
            "last_seq": self.end_seq,
            "missing_checked": self.stats.missing_checked,
            "missing_found": self.stats.missing_found,
            "docs_read": self.stats.docs_read,
            "docs_written": self.stats.docs_written,
            "doc_write_failures": self.stats.doc_write_failures,
        })
    }

    /// The checkpoint body: this session's entry first, then the history
    /// the session started from (one entry per session, as CouchDB keeps
    /// it), at most [`MAX_HISTORY`] entries.
    pub fn checkpoint_body(&self, old_history: &[Value]) -> Map<String, Value> {
        let mut history = vec![self.history_entry()];
        history.extend(
            old_history
                .iter()
                .filter(|h| h["session_id"] != self.session_id)
                .take(MAX_HISTORY - 1)
                .cloned(),
        );
        let body = json!({
            "session_id": self.session_id,
            "source_last_seq": self.end_seq,
            "last_seq": self.end_seq,
            "replication_id_version": REP_ID_VERSION,
            "version": 1,
            "replicator": "settee",
            "history": history,
        });
        match body {
            Value::Object(m) => m,
            _ => unreachable!("built as an object"),
        }
    }
}

/// The sequence a checkpoint document records: CouchDB's
/// `source_last_seq`, or PouchDB's `last_seq`.
fn doc_seq(doc: &Value) -> Value {
    match doc.get("source_last_seq") {
        Some(v) if !v.is_null() => v.clone(),
        _ => doc.get("last_seq").cloned().unwrap_or(json!(0)),
    }
}

/// The sequence a history entry records (`recorded_seq` or `last_seq`).
fn entry_seq(e: &Value) -> Value {
    match e.get("recorded_seq") {
        Some(v) if !v.is_null() => v.clone(),
        _ => e.get("last_seq").cloned().unwrap_or(json!(0)),
    }
}

fn history(doc: &Value) -> Vec<Value> {
    doc.get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn has_session(id: &Value, hist: &[Value]) -> bool {
    !id.is_null() && hist.iter().any(|h| h.get("session_id") == Some(id))
}

/// Where to start, from the checkpoints read on the source and the target
/// (CouchDB's `compare_replication_logs`): the same last session on both
/// means the source's recorded sequence; otherwise the most recent session
/// both histories share; otherwise the beginning. Returns the sequence and
/// the history to carry on.
pub fn compare_logs(source: Option<&Value>, target: Option<&Value>) -> (Value, Vec<Value>) {
    let (Some(src), Some(tgt)) = (source, target) else {
        return (json!(0), Vec::new());
    };
    let sid = src.get("session_id").cloned().unwrap_or(Value::Null);
    if !sid.is_null() && Some(&sid) == tgt.get("session_id") {
        return (doc_seq(src), history(src));
    }
    compare_history(&history(src), &history(tgt))
}

fn compare_history(src: &[Value], tgt: &[Value]) -> (Value, Vec<Value>) {
    let (Some(s), Some(t)) = (src.first(), tgt.first()) else {
        return (json!(0), Vec::new());
    };
    let s_id = s.get("session_id").cloned().unwrap_or(Value::Null);
    if has_session(&s_id, tgt) {
        return (entry_seq(s), src[1..].to_vec());
    }
    let t_id = t.get("session_id").cloned().unwrap_or(Value::Null);
    if has_session(&t_id, &src[1..]) {
        return (entry_seq(t), tgt[1..].to_vec());
    }
    compare_history(&src[1..], &tgt[1..])
}

/// Retry delay after `failures` consecutive failures: 5 s doubling up to
/// 8 minutes, CouchDB's scheduler backoff range for crashing jobs.
pub fn backoff_ms(failures: u32) -> u64 {
    let exp = failures.saturating_sub(1).min(7);
    (5_000u64 << exp).min(480_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_session_takes_the_source_seq() {
        let s =
            json!({"session_id": "a", "source_last_seq": "10-x", "history": [{"session_id": "a"}]});
        let t = json!({"session_id": "a", "source_last_seq": "9-x"});
        assert_eq!(compare_logs(Some(&s), Some(&t)).0, json!("10-x"));
        assert_eq!(compare_logs(Some(&s), None).0, json!(0));
        assert_eq!(compare_logs(None, Some(&t)).0, json!(0));
    }

    #[test]
    fn shared_history_finds_the_common_session() {
        // The target saw sessions c and b; the source c' (lost on the
        // target), then b: b is the most recent common one.
        let s = json!({"session_id": "d", "history": [
            {"session_id": "d", "recorded_seq": 40},
            {"session_id": "b", "recorded_seq": 20},
            {"session_id": "a", "recorded_seq": 10}]});
        let t = json!({"session_id": "c", "history": [
            {"session_id": "c", "recorded_seq": 30},
            {"session_id": "b", "recorded_seq": 20}]});
        let (seq, hist) = compare_logs(Some(&s), Some(&t));
        assert_eq!(seq, json!(20));
        assert_eq!(hist.len(), 1);
        // The target's newest session found further down the source's.
        let t2 = json!({"session_id": "b", "history": [{"session_id": "b", "last_seq": 20}]});
        let s2 = json!({"session_id": "e", "history": [
            {"session_id": "e", "last_seq": 50}, {"session_id": "b", "last_seq": 20}]});
        assert_eq!(compare_logs(Some(&s2), Some(&t2)).0, json!(20));
        // Nothing shared: from the start.
        let t3 = json!({"session_id": "z", "history": [{"session_id": "z", "last_seq": 5}]});
        assert_eq!(compare_logs(Some(&s), Some(&t3)).0, json!(0));
    }

    #[test]
    fn pouchdb_checkpoints_are_read() {
        // PouchDB writes last_seq and history [{last_seq, session_id}].
        let doc = json!({"_id": "_local/x", "session_id": "p", "last_seq": 7, "version": 1,
                         "replicator": "pouchdb", "history": [{"last_seq": 7, "session_id": "p"}]});
        assert_eq!(compare_logs(Some(&doc), Some(&doc)).0, json!(7));
    }

    #[test]
    fn checkpoint_body_has_both_formats_and_bounded_history() {
        let old: Vec<Value> = (0..60)
            .map(|i| json!({"session_id": format!("s{i}")}))
            .collect();
        let seq = json!("5-abc");
        let start = json!(0);
        let s = Session {
            session_id: "new",
            start_time: "t0",
            end_time: "t1",
            start_seq: &start,
            end_seq: &seq,
            stats: Stats {
                docs_read: 5,
                docs_written: 5,
                ..Default::default()
            },
        };
        let b = s.checkpoint_body(&old);
        assert_eq!(b["source_last_seq"], seq);
        assert_eq!(b["last_seq"], seq);
        assert_eq!(b["version"], 1);
        assert_eq!(b["replication_id_version"], 4);
        let h = b["history"].as_array().unwrap();
        assert_eq!(h.len(), MAX_HISTORY);
        assert_eq!(h[0]["recorded_seq"], seq);
        assert_eq!(h[0]["last_seq"], seq);
        assert_eq!(h[0]["docs_written"], 5);
        // Rewriting in the same session replaces its entry.
        let again = s.checkpoint_body(h);
        assert_eq!(again["history"].as_array().unwrap().len(), MAX_HISTORY);
        assert_eq!(again["history"][1]["session_id"], "s0");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1), 5_000);
        assert_eq!(backoff_ms(2), 10_000);
        assert_eq!(backoff_ms(7), 320_000);
        assert_eq!(backoff_ms(8), 480_000);
        assert_eq!(backoff_ms(100), 480_000);
    }

    #[test]
    fn dates() {}
}
