//! The replication protocol end to end, natively: two databases run by the
//! real database engine (db-actor's HTTP surface over rusqlite), the job
//! loop between them, and the job record stored and reloaded as the actor
//! does between alarms.

mod common;

use common::Db;
use futures::executor::block_on;
use replicator_actor::job::{self, Budget, JobRecord, JobState, JobStore, Next, Origin};
use serde_json::{json, Value};
use shared::replication::job::Ends;
use shared::replication::params::RepParams;
use shared::replication::peer::Peer;
use shared::sqlite::SqliteSql;
use shared::user::UserCtx;
use std::cell::Cell;

/// Stores records as the actor does; the clock ticks on every reading.
struct TestHost<'a> {
    store: &'a JobStore<'a>,
    clock: Cell<u64>,
}

impl job::Host for TestHost<'_> {
    fn now(&self) -> u64 {
        self.clock.set(self.clock.get() + 1);
        self.clock.get()
    }

    async fn save(&self, rec: &JobRecord) -> bool {
        if !self.store.current(rec.generation) {
            return false;
        }
        self.store.save(rec).unwrap();
        true
    }

    fn new_session(&self) -> String {
        shared::uuids::random_hex()
    }
}

/// A host at a fixed time that keeps nothing.
struct FixedHost(u64);

impl job::Host for FixedHost {
    fn now(&self) -> u64 {
        self.0
    }

    async fn save(&self, _: &JobRecord) -> bool {
        true
    }

    fn new_session(&self) -> String {
        "s".into()
    }
}

fn params(v: Value) -> RepParams {
    RepParams::parse(v.as_object().unwrap()).unwrap()
}

const BUDGET: Budget = Budget {
    work_ms: u64::MAX,
    longpoll_ms: 0,
    max_batches: u32::MAX,
};

/// Runs a job to its end as the actor would, storing the record after
/// each run; `max_batches` per run simulates alarms.
fn replicate(src: &Db, tgt: &Db, p: RepParams, max_batches: u32) -> JobRecord {
    let store_sql = SqliteSql::memory();
    let store = JobStore::new(&store_sql).unwrap();
    let rec = JobRecord::new("job".into(), p, Origin::Replicate, UserCtx::admin("a"), 0);
    store.save(&rec).unwrap();
    let (sp, tp) = (Peer::new(src), Peer::new(tgt));
    let ends = Ends {
        source: &sp,
        target: &tp,
    };
    let host = TestHost {
        store: &store,
        clock: Cell::new(1_700_000_000_000),
    };
    for _ in 0..10_000 {
        // Each run starts from what storage holds, as after an eviction.
        let mut rec = store.load().unwrap().unwrap();
        let budget = Budget {
            max_batches,
            ..BUDGET
        };
        if block_on(job::run(&mut rec, &ends, &host, budget)) == Next::Stop {
            return store.load().unwrap().unwrap();
        }
    }
    panic!("the job did not finish");
}

#[test]
fn one_shot_copies_everything_and_resumes_from_its_checkpoint() {
    let a = Db::new("a", "server-1");
    let b = Db::new("b", "server-2");
    let docs: Vec<Value> = (0..1200)
        .map(|i| json!({"_id": format!("d{i:05}"), "n": i}))
        .collect();
    let (s, _) = a.http("POST", "_bulk_docs", "", Some(json!({ "docs": docs })));
    assert_eq!(s, 201);
    a.put("_design/x", json!({"views": {}}));
    let rec = replicate(&a, &b, params(json!({"source": "a", "target": "b"})), 1);
    assert_eq!(rec.state, JobState::Completed);
    assert_eq!(b.doc_count(), 1201);
    assert_eq!(a.trees(), b.trees());
    let r = rec.result.unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(r["history"][0]["docs_written"], 1201);
    assert_eq!(r["history"][0]["missing_found"], 1201);
    assert_eq!(r["replication_id_version"], 4);
    // Three batches of 500 (changes with pending), one run each.
    let seq = r["source_last_seq"].clone();
    assert_eq!(seq.as_str().unwrap().split('-').next(), Some("1201"));
    // Both ends hold the same checkpoint.
    let cp = rec.progress.as_ref().unwrap().checkpoint_id.clone();
    let path = format!("_local/{}", cp.trim_start_matches("_local/"));
    let (sa, ca) = a.http("GET", &path, "", None);
    let (sb, cb) = b.http("GET", &path, "", None);
    assert_eq!((sa, sb), (200, 200));
    assert_eq!(ca["session_id"], cb["session_id"]);
    assert_eq!(ca["source_last_seq"], seq);

    // Again: the checkpoint says everything is there.
    let again = replicate(&a, &b, params(json!({"source": "a", "target": "b"})), 100);
    assert_eq!(
        again.result.unwrap(),
        json!({"ok": true, "no_changes": true})
    );

    // New writes: only they are replicated, from the checkpoint.
    a.put("new", json!({"x": 1}));
    let third = replicate(&a, &b, params(json!({"source": "a", "target": "b"})), 100);
    let r = third.result.unwrap();
    assert_eq!(r["history"][0]["docs_written"], 1);
    assert_eq!(r["history"][0]["missing_checked"], 1);
    assert_eq!(r["history"].as_array().unwrap().len(), 2);
    assert_eq!(b.doc_count(), 1202);
}

#[test]
fn conflicts_on_both_ends_end_as_identical_trees() {
    let a = Db::new("a", "s1");
    let b = Db::new("b", "s2");
    for i in 0..20 {
        let id = format!("c{i}");
        a.put(&id, json!({"side": "a", "i": i}));
        b.put(&id, json!({"side": "b", "i": i}));
    }
    let r1 = a.put("shared", json!({"v": 1}));
    replicate(&a, &b, params(json!({"source": "a", "target": "b"})), 100);
    // Edit the shared doc differently on both ends, delete one on a.
    a.put("shared", json!({"_rev": r1, "v": "a"}));
    b.put("shared", json!({"_rev": r1, "v": "b"}));
    let (_, d) = a.http("GET", "c0", "", None);
    a.http(
        "DELETE",
        "c0",
        &format!("rev={}", d["_rev"].as_str().unwrap()),
        None,
    );
    replicate(&a, &b, params(json!({"source": "a", "target": "b"})), 100);
    replicate(&b, &a, params(json!({"source": "b", "target": "a"})), 100);
    assert_eq!(a.trees(), b.trees());
    let (_, doc) = a.http("GET", "shared", "conflicts=true", None);
    assert_eq!(doc["_conflicts"].as_array().unwrap().len(), 1);
    let (_, doc_b) = b.http("GET", "shared", "conflicts=true", None);
    assert_eq!(doc, doc_b);
}

/// A source of `n` documents and an empty target, on two servers.
fn source_of(n: usize) -> (Db, Db) {
    let a = Db::new("a", "s1");
    let b = Db::new("b", "s2");
    let docs: Vec<Value> = (0..n).map(|i| json!({"_id": format!("{i:04}")})).collect();
    a.http("POST", "_bulk_docs", "", Some(json!({ "docs": docs })));
    (a, b)
}

#[test]
fn an_evicted_job_redoes_at_most_one_batch_and_writes_each_doc_once() {
    let (a, b) = source_of(950);
    // One batch per run, 100 a batch: ten runs, each reloaded from storage.
    let rec = replicate(
        &a,
        &b,
        params(json!({"source": "a", "target": "b", "worker_batch_size": 100})),
        1,
    );
    assert_eq!(rec.state, JobState::Completed);
    assert_eq!(b.doc_count(), 950);
    let (_, changes) = b.http("GET", "_changes", "", None);
    assert_eq!(changes["results"].as_array().unwrap().len(), 950);
    assert_eq!(rec.result.unwrap()["history"][0]["docs_written"], 950);
}

#[test]
fn peers_without_bulk_get_are_read_with_open_revs() {
    let mut a = Db::new("a", "s1");
    a.no_bulk_get = true;
    let b = Db::new("b", "s2");
    let r = a.put("x", json!({"v": 1}));
    a.put("x", json!({"_rev": r, "v": 2}));
    a.put(
        "att",
        json!({"_attachments": {"f.txt": {"content_type": "text/plain", "data": "aGVsbG8="}}}),
    );
    let rec = replicate(&a, &b, params(json!({"source": "a", "target": "b"})), 100);
    assert_eq!(rec.state, JobState::Completed);
    assert_eq!(a.trees(), b.trees());
    let got = b.raw("GET", "att/f.txt", "", None);
    assert_eq!(got.body, b"hello");
}

#[test]
fn doc_ids_and_selector_filter_what_is_replicated() {
    let a = Db::new("a", "s1");
    for i in 0..10 {
        a.put(
            &format!("d{i}"),
            json!({"type": if i % 2 == 0 { "even" } else { "odd" }}),
        );
    }
    let b = Db::new("b", "s2");
    replicate(
        &a,
        &b,
        params(json!({"source": "a", "target": "b", "doc_ids": ["d1", "d3", "zz"]})),
        100,
    );
    assert_eq!(b.doc_count(), 2);
    let c = Db::new("c", "s3");
    replicate(
        &a,
        &c,
        params(json!({"source": "a", "target": "c", "selector": {"type": "even"}})),
        100,
    );
    assert_eq!(c.doc_count(), 5);
    let (_, d) = c.http("GET", "d4", "", None);
    assert_eq!(d["type"], "even");
}

#[test]
fn write_failures_are_counted_without_stopping() {
    let a = Db::new("a", "s1");
    a.put("org.couchdb.user:bob", json!({"name": "bob"}));
    a.put("plain", json!({"x": 1}));
    let users = Db {
        name: "_users".into(),
        ..Db::new("_users", "s2")
    };
    users.http("PUT", "", "", None);
    let rec = replicate(
        &a,
        &users,
        params(json!({"source": "a", "target": "_users"})),
        100,
    );
    assert_eq!(rec.state, JobState::Completed);
    let h = &rec.result.unwrap()["history"][0];
    assert_eq!(h["docs_read"], 2);
    assert!(h["doc_write_failures"].as_u64().unwrap() >= 1, "{h}");
}

#[test]
fn missing_source_fails_a_one_shot_and_crashes_a_document_job() {
    let a = Db::new("a", "s1");
    let b = Db::new("b", "s2");
    a.http("DELETE", "", "", None);
    let rec = replicate(&a, &b, params(json!({"source": "a", "target": "b"})), 100);
    assert_eq!(rec.state, JobState::Failed);
    assert_eq!(rec.last_error.unwrap().error, "db_not_found");

    let mut doc_job = JobRecord::new(
        "j".into(),
        params(json!({"source": "a", "target": "b"})),
        Origin::Doc { doc_id: "r".into() },
        UserCtx::admin("a"),
        0,
    );
    let (sp, tp) = (Peer::new(&a), Peer::new(&b));
    let ends = Ends {
        source: &sp,
        target: &tp,
    };
    let next = block_on(job::run(&mut doc_job, &ends, &FixedHost(1000), BUDGET));
    assert_eq!(doc_job.state, JobState::Crashing);
    assert_eq!(next, Next::At(1000 + 5000));
    block_on(job::run(&mut doc_job, &ends, &FixedHost(7000), BUDGET));
    assert_eq!(doc_job.failures, 2);
    assert_eq!(doc_job.next_run_ms, 7000 + 10_000);
    let s = doc_job.summary();
    assert_eq!(s["state"], "crashing");
    assert_eq!(s["backoff_ms"], 10_000);
}

#[test]
fn missing_target_is_created_when_asked() {
    let a = Db::new("a", "s1");
    a.put("x", json!({}));
    let b = Db::new("b", "s2");
    b.http("DELETE", "", "", None);
    let rec = replicate(&a, &b, params(json!({"source": "a", "target": "b"})), 100);
    assert_eq!(rec.state, JobState::Failed);
    let rec = replicate(
        &a,
        &b,
        params(json!({"source": "a", "target": "b", "create_target": true})),
        100,
    );
    assert_eq!(rec.state, JobState::Completed);
    assert_eq!(b.doc_count(), 1);
}

#[test]
fn a_pouchdb_checkpoint_is_honoured() {
    let a = Db::new("a", "s1");
    let b = Db::new("b", "s2");
    for i in 0..10 {
        a.put(&format!("d{i}"), json!({}));
    }
    let first = replicate(&a, &b, params(json!({"source": "a", "target": "b"})), 100);
    let cp = first.progress.unwrap().checkpoint_id;
    let path = format!("_local/{}", cp.trim_start_matches("_local/"));
    // The source's own sequence 10, as PouchDB would have recorded it.
    let seq10 = a.http("GET", "", "", None).1["update_seq"].clone();
    assert!(
        seq10.as_str().is_some_and(|s| s.starts_with("10-")),
        "{seq10}"
    );
    // PouchDB's checkpointer rewrites both docs in its own format after a
    // session of its own that went to seq 10.
    for db in [&a, &b] {
        let (_, old) = db.http("GET", &path, "", None);
        let mut hist = old["history"].as_array().unwrap().clone();
        hist.insert(0, json!({"last_seq": seq10, "session_id": "pouch-session"}));
        db.http(
            "PUT",
            &path,
            "",
            Some(
                json!({"_id": cp, "_rev": old["_rev"], "session_id": "pouch-session",
                        "last_seq": seq10, "history": hist, "version": 1, "replicator": "pouchdb"}),
            ),
        );
    }
    a.put("after", json!({}));
    let rec = replicate(&a, &b, params(json!({"source": "a", "target": "b"})), 100);
    let r = rec.result.unwrap();
    assert_eq!(r["history"][0]["start_last_seq"], seq10);
    assert_eq!(r["history"][0]["missing_checked"], 1);
    assert_eq!(r["history"][1]["session_id"], "pouch-session");
}

#[test]
fn job_records_round_trip_through_storage() {
    let sql = SqliteSql::memory();
    let store = JobStore::new(&sql).unwrap();
    assert!(store.load().unwrap().is_none());
    let mut rec = JobRecord::new(
        "id".into(),
        params(json!({"source": "a", "target": "http://u:p@h/b", "doc_ids": ["x"]})),
        Origin::Replicate,
        UserCtx::admin("a"),
        5,
    );
    store.save(&rec).unwrap();
    assert_eq!(store.load().unwrap().unwrap(), rec);
    assert!(store.current(0));
    rec.generation = 1;
    assert!(!store.current(1));
    store.delete().unwrap();
    assert!(store.load().unwrap().is_none());
}

/// A host whose job was stopped: every save is refused.
struct StoppedHost;

impl job::Host for StoppedHost {
    fn now(&self) -> u64 {
        1
    }

    async fn save(&self, _: &JobRecord) -> bool {
        false
    }

    fn new_session(&self) -> String {
        "s".into()
    }
}

#[test]
fn a_continuous_job_stopped_while_waiting_writes_nothing_more() {
    let a = Db::new("a", "s1");
    let b = Db::new("b", "s2");
    a.put("first", json!({}));
    let mut rec = JobRecord::new(
        "j".into(),
        params(json!({"source": "a", "target": "b", "continuous": true})),
        Origin::Replicate,
        UserCtx::admin("a"),
        0,
    );
    let (sp, tp) = (Peer::new(&a), Peer::new(&b));
    let ends = Ends {
        source: &sp,
        target: &tp,
    };
    // Runs until caught up and idle.
    let next = block_on(job::run(&mut rec, &ends, &FixedHost(1), BUDGET));
    assert_eq!(next, Next::At(1));
    assert_eq!(rec.state, JobState::Running);
    assert_eq!(b.doc_count(), 1);
    // A change wakes the wait, but the job was stopped meanwhile.
    a.put("second", json!({}));
    assert_eq!(
        block_on(job::run(&mut rec, &ends, &StoppedHost, BUDGET)),
        Next::Stop
    );
    assert_eq!(b.doc_count(), 1);
    // Still wanted: the change is replicated.
    block_on(job::run(&mut rec, &ends, &FixedHost(2), BUDGET));
    assert_eq!(b.doc_count(), 2);
}

/// The `_replicator` rows after `since`, as the registry reads them.
fn replicator_changes(rep: &Db, since: &str) -> (Vec<Value>, String) {
    let (_, ch) = rep.http(
        "GET",
        "_changes",
        &format!("since={since}&include_docs=true"),
        None,
    );
    let last = ch["last_seq"].as_str().unwrap().to_string();
    (ch["results"].as_array().unwrap().clone(), last)
}

/// A one-shot document's job writes `completed` and its counters into the
/// document; that write, read back by the registry (or the document read
/// again from the start), starts nothing. An invalid document gets
/// `failed` with the reason.
#[test]
fn a_completed_document_records_its_state_and_is_not_run_again() {
    use replicator_actor::registry::{Action, Registry};
    let (rep, a, b) = common::one_shot_fixture();
    let reg_sql = SqliteSql::memory();
    let reg = Registry::new(&reg_sql).unwrap();
    let (rows, since) = replicator_changes(&rep, "0");
    let actions = reg.apply_change(&rows[0], "s1", 1).unwrap();
    let [Action::Start { job_id, params, .. }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    let mut rec = JobRecord::new(
        job_id.clone(),
        (**params).clone(),
        Origin::Doc {
            doc_id: "once".into(),
        },
        UserCtx::admin("a"),
        1_796_360_400_000,
    );
    let (sp, tp) = (Peer::new(&a), Peer::new(&b));
    let ends = Ends {
        source: &sp,
        target: &tp,
    };
    let now = 1_796_360_401_000;
    block_on(job::run(&mut rec, &ends, &FixedHost(now), BUDGET));
    assert_eq!(rec.state, JobState::Completed);
    reg.report(&rec.summary()).unwrap();

    let (_, doc) = rep.http("GET", "once", "", None);
    let body = rec.doc_update(doc.as_object().unwrap(), now).unwrap();
    assert_eq!(body["_replication_state"], "completed");
    assert_eq!(body["_replication_state_time"], "2026-12-04T05:00:01Z");
    let stats = &body["_replication_stats"];
    assert_eq!(stats["docs_written"], 5);
    assert_eq!(stats["docs_read"], 5);
    assert_eq!(stats["revisions_checked"], 5);
    assert_eq!(stats["missing_revisions_found"], 5);
    assert_eq!(stats["doc_write_failures"], 0);
    assert_eq!(
        stats["checkpointed_source_seq"],
        rec.summary()["through_seq"]
    );
    assert_eq!(stats["start_time"], "2026-12-04T05:00:00Z");
    assert_eq!(body["owner"], doc["owner"]);
    rep.put("once", Value::Object(body));
    // Written once: the document already says so.
    let (_, doc) = rep.http("GET", "once", "", None);
    assert!(rec.doc_update(doc.as_object().unwrap(), now + 1).is_none());
    // An edit that describes another job is not marked by this one.
    let mut edited = doc.as_object().unwrap().clone();
    edited.insert("target".into(), json!("c"));
    assert!(rec.doc_update(&edited, now).is_none());

    let (rows, _) = replicator_changes(&rep, &since);
    assert_eq!(rows.len(), 1);
    assert!(reg.apply_change(&rows[0], "s1", 2).unwrap().is_empty());
    let view = &reg.docs().unwrap()[0];
    assert_eq!(view["state"], "completed");
    assert_eq!(view["info"]["docs_written"], 5);
    // A registry reading `_replicator` from its start runs nothing either.
    let fresh_sql = SqliteSql::memory();
    let fresh = Registry::new(&fresh_sql).unwrap();
    let (rows, since) = replicator_changes(&rep, "0");
    assert!(fresh.apply_change(&rows[0], "s1", 3).unwrap().is_empty());
    assert_eq!(fresh.docs().unwrap()[0]["state"], "completed");
    assert_eq!(fresh.docs().unwrap()[0]["info"]["docs_written"], 5);

    rep.put("invalid", json!({"source": 42}));
    let (rows, since) = replicator_changes(&rep, &since);
    let actions = reg.apply_change(&rows[0], "s1", 4).unwrap();
    let [Action::Record { doc_id, body }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    rep.put(doc_id, body.clone());
    let (_, doc) = rep.http("GET", "invalid", "", None);
    assert_eq!(doc["_replication_state"], "failed");
    assert!(doc["_replication_state_reason"]
        .as_str()
        .unwrap()
        .contains("source"));
    let (rows, _) = replicator_changes(&rep, &since);
    assert!(reg.apply_change(&rows[0], "s1", 5).unwrap().is_empty());
    let failed = reg
        .docs()
        .unwrap()
        .into_iter()
        .find(|d| d["doc_id"] == "invalid")
        .unwrap();
    assert_eq!(failed["state"], "failed");
}

/// Logs each request's end and path, the target's writes yielding once
/// first, as a write to another server would.
struct Logged<'a> {
    db: &'a Db,
    end: &'static str,
    log: &'a std::cell::RefCell<Vec<String>>,
}

impl shared::replication::peer::Transport for Logged<'_> {
    async fn send(
        &self,
        req: shared::replication::peer::PeerRequest,
    ) -> Result<shared::replication::peer::PeerResponse, shared::replication::peer::RepError> {
        if self.end == "target" && req.path == "_bulk_docs" {
            let mut yielded = false;
            futures::future::poll_fn(|cx| {
                if yielded {
                    std::task::Poll::Ready(())
                } else {
                    yielded = true;
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                }
            })
            .await;
        }
        self.log
            .borrow_mut()
            .push(format!("{} {}", self.end, req.path));
        shared::replication::peer::Transport::send(&self.db, req).await
    }
}

#[test]
fn the_next_batch_is_read_while_this_one_is_written() {
    let (a, b) = source_of(950);
    let log = std::cell::RefCell::new(Vec::new());
    let (sp, tp) = (
        Peer::new(Logged {
            db: &a,
            end: "source",
            log: &log,
        }),
        Peer::new(Logged {
            db: &b,
            end: "target",
            log: &log,
        }),
    );
    let ends = Ends {
        source: &sp,
        target: &tp,
    };
    let store_sql = SqliteSql::memory();
    let store = JobStore::new(&store_sql).unwrap();
    let p = params(json!({"source": "a", "target": "b", "worker_batch_size": 100}));
    let mut rec = JobRecord::new("job".into(), p, Origin::Replicate, UserCtx::admin("a"), 0);
    store.save(&rec).unwrap();
    let host = TestHost {
        store: &store,
        clock: Cell::new(1_700_000_000_000),
    };
    assert_eq!(
        block_on(job::run(&mut rec, &ends, &host, BUDGET)),
        Next::Stop
    );
    assert_eq!(rec.state, JobState::Completed);
    assert_eq!(b.doc_count(), 950);
    let log = log.into_inner();
    let count = |what: &str| log.iter().filter(|l| *l == what).count();
    // Ten batches, each read once: nine of them while the one before was
    // being written (its `_changes` comes before that batch's write).
    assert_eq!(count("source _changes"), 10, "{log:?}");
    assert_eq!(count("target _bulk_docs"), 10, "{log:?}");
    let overlapped = log
        .windows(2)
        .filter(|w| w[0] == "source _changes" && w[1] == "target _bulk_docs")
        .count();
    assert_eq!(overlapped, 9, "{log:?}");
}
