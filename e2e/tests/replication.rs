//! Replication on the real Worker: `_replicate` between databases of one
//! Settee and between two Settee servers, conflicts, filters, the
//! `_replicator` database's lifecycle, and a job that survives `SIGKILL`.

use e2e::{send, Settee};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn put_db(s: &Settee, db: &str) {
    let (st, v) = send(s.admin("PUT", &format!("/{db}")), None);
    assert!(st == 201 || st == 412, "{st} {v}");
}

fn bulk(s: &Settee, db: &str, docs: Vec<Value>) {
    for chunk in docs.chunks(5000) {
        let (st, v) = send(
            s.admin("POST", &format!("/{db}/_bulk_docs")),
            Some(&json!({ "docs": chunk })),
        );
        assert_eq!(st, 201, "{v}");
    }
}

fn doc_count(s: &Settee, db: &str) -> u64 {
    let (st, v) = send(s.admin("GET", &format!("/{db}")), None);
    assert_eq!(st, 200, "{v}");
    v["doc_count"].as_u64().unwrap()
}

fn replicate(s: &Settee, body: Value) -> (u16, Value) {
    send(
        s.admin("POST", "/_replicate")
            .timeout(Duration::from_secs(600)),
        Some(&body),
    )
}

/// Polls until `f` holds, or panics after `secs`.
fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A document's leaves with their histories, in a stable order.
fn tree(s: &Settee, db: &str, id: &str) -> Value {
    let (st, mut v) = send(
        s.admin("GET", &format!("/{db}/{id}?open_revs=all&revs=true"))
            .set("accept", "application/json"),
        None,
    );
    assert_eq!(st, 200, "{v}");
    v.as_array_mut()
        .unwrap()
        .sort_by_key(|l| l["ok"]["_rev"].as_str().unwrap_or_default().to_string());
    v
}

#[test]
fn replicate_locally_and_between_servers_with_conflicts() {
    let s1 = Settee::start();
    let s2 = Settee::start();
    put_db(&s1, "a");
    bulk(
        &s1,
        "a",
        (0..300)
            .map(|i| json!({"_id": format!("d{i:03}"), "n": i}))
            .collect(),
    );

    // Bad requests answer as CouchDB does.
    assert_eq!(replicate(&s1, json!({"target": "b"})).0, 400);
    let (st, v) = replicate(&s1, json!({"source": "missing", "target": "b"}));
    assert_eq!(
        (st, v["error"].as_str()),
        (404, Some("db_not_found")),
        "{v}"
    );
    let (st, _) = send(
        s1.anon("POST", "/_replicate"),
        Some(&json!({"source": "a", "target": "b"})),
    );
    assert_eq!(st, 401);

    // Local one-shot, target created.
    let (st, r) = replicate(
        &s1,
        json!({"source": "a", "target": "b", "create_target": true}),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["ok"], true);
    assert_eq!(r["history"][0]["docs_written"], 300);
    assert!(r["session_id"].is_string() && r["source_last_seq"].is_string());
    assert_eq!(doc_count(&s1, "b"), 300);
    // Again: nothing to do.
    let (_, r) = replicate(&s1, json!({"source": "a", "target": "b"}));
    assert_eq!(r, json!({"ok": true, "no_changes": true}));

    // Push to the other server, then pull back into a new database.
    let remote_c = s2.admin_url("/c");
    let (st, r) = replicate(
        &s1,
        json!({"source": "a", "target": remote_c, "create_target": true}),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(doc_count(&s2, "c"), 300);
    let (st, r) = replicate(
        &s1,
        json!({"source": {"url": s2.url("/c"), "auth": {"basic": {"username": e2e::ADMIN, "password": e2e::PASSWORD}}},
               "target": "d", "create_target": true}),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(doc_count(&s1, "d"), 300);

    // Conflicting edits on both servers, replicated both ways.
    let (_, doc) = send(s1.admin("GET", "/a/d007"), None);
    let rev = doc["_rev"].as_str().unwrap().to_string();
    let (st, _) = send(
        s1.admin("PUT", "/a/d007"),
        Some(&json!({"_rev": rev, "side": 1})),
    );
    assert_eq!(st, 201);
    let (st, _) = send(
        s2.admin("PUT", "/c/d007"),
        Some(&json!({"_rev": rev, "side": 2})),
    );
    assert_eq!(st, 201);
    let (_, doc) = send(s2.admin("GET", "/c/d008"), None);
    send(
        s2.admin(
            "DELETE",
            &format!("/c/d008?rev={}", doc["_rev"].as_str().unwrap()),
        ),
        None,
    );
    assert_eq!(
        replicate(&s1, json!({"source": "a", "target": remote_c})).0,
        200
    );
    assert_eq!(
        replicate(&s1, json!({"source": remote_c, "target": "a"})).0,
        200
    );
    for id in ["d007", "d008"] {
        assert_eq!(tree(&s1, "a", id), tree(&s2, "c", id), "{id}");
    }
    let (_, x1) = send(s1.admin("GET", "/a/d007?conflicts=true"), None);
    let (_, x2) = send(s2.admin("GET", "/c/d007?conflicts=true"), None);
    assert_eq!(x1, x2);
    assert_eq!(x1["_conflicts"].as_array().unwrap().len(), 1);

    // Continuous push: new docs arrive, `_active_tasks` and
    // `_scheduler/jobs` show the job, cancel stops it.
    let (st, r) = replicate(
        &s1,
        json!({"source": "a", "target": remote_c, "continuous": true}),
    );
    assert_eq!(st, 202, "{r}");
    let id = r["_local_id"].as_str().unwrap().to_string();
    assert!(id.ends_with("+continuous"), "{id}");
    send(s1.admin("PUT", "/a/live1"), Some(&json!({"v": 1})));
    let took = wait_for(10, "live1 on s2", || {
        send(s2.admin("GET", "/c/live1"), None).0 == 200
    });
    eprintln!("continuous push delivered in {took:?}");
    wait_for(10, "an active task", || {
        let (_, tasks) = send(s1.admin("GET", "/_active_tasks"), None);
        tasks.as_array().is_some_and(|t| {
            t.iter()
                .any(|t| t["replication_id"] == id.as_str() && t["type"] == "replication")
        })
    });
    let (_, jobs) = send(s1.admin("GET", "/_scheduler/jobs"), None);
    assert!(
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id.as_str()),
        "{jobs}"
    );
    let (st, r) = replicate(&s1, json!({"replication_id": id, "cancel": true}));
    assert_eq!((st, r["ok"].as_bool()), (200, Some(true)), "{r}");
    let (st, _) = replicate(&s1, json!({"replication_id": id, "cancel": true}));
    assert_eq!(st, 404);
    send(s1.admin("PUT", "/a/after-cancel"), Some(&json!({})));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(send(s2.admin("GET", "/c/after-cancel"), None).0, 404);

    // Continuous pull from the other server.
    let (st, r) = replicate(
        &s1,
        json!({"source": remote_c, "target": "pulled", "continuous": true, "create_target": true}),
    );
    assert_eq!(st, 202, "{r}");
    send(s2.admin("PUT", "/c/live2"), Some(&json!({"v": 2})));
    wait_for(10, "live2 pulled", || {
        send(s1.admin("GET", "/pulled/live2"), None).0 == 200
    });
    replicate(
        &s1,
        json!({"replication_id": r["_local_id"], "cancel": true}),
    );
}

#[test]
fn filtered_by_doc_ids_and_selector() {
    let s = Settee::start();
    put_db(&s, "src");
    bulk(
        &s,
        "src",
        (0..50)
            .map(|i| json!({"_id": format!("k{i}"), "kind": if i % 5 == 0 { "fifth" } else { "other" }}))
            .collect(),
    );
    let (st, r) = replicate(
        &s,
        json!({"source": "src", "target": "ids", "create_target": true, "doc_ids": ["k1", "k2", "nope"]}),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(doc_count(&s, "ids"), 2);
    let (st, r) = replicate(
        &s,
        json!({"source": "src", "target": "sel", "create_target": true, "selector": {"kind": "fifth"}}),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(doc_count(&s, "sel"), 10);
    let (_, all) = send(s.admin("GET", "/sel/_all_docs?include_docs=true"), None);
    assert!(all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["doc"]["kind"] == "fifth"));
    assert_eq!(
        replicate(
            &s,
            json!({"source": "src", "target": "x", "selector": "no"})
        )
        .0,
        400
    );
}

fn scheduler_doc(s: &Settee, id: &str) -> Value {
    send(
        s.admin("GET", &format!("/_scheduler/docs/_replicator/{id}")),
        None,
    )
    .1
}

#[test]
fn replicator_database_lifecycle() {
    let s = Settee::start();
    put_db(&s, "_replicator");
    put_db(&s, "from");
    bulk(
        &s,
        "from",
        (0..100).map(|i| json!({"_id": format!("f{i}")})).collect(),
    );

    // One-shot document: runs to completion.
    let (st, v) = send(
        s.admin("PUT", "/_replicator/once"),
        Some(&json!({"source": "from", "target": "to1", "create_target": true})),
    );
    assert_eq!(st, 201, "{v}");
    wait_for(20, "once completed", || {
        scheduler_doc(&s, "once")["state"] == "completed"
    });
    assert_eq!(doc_count(&s, "to1"), 100);
    let d = scheduler_doc(&s, "once");
    assert_eq!(d["info"]["docs_written"], 100, "{d}");
    assert_eq!(d["database"], "_replicator");

    // Continuous document: new source docs arrive within 2 s.
    send(
        s.admin("PUT", "/_replicator/live"),
        Some(
            &json!({"source": "from", "target": "to2", "create_target": true, "continuous": true}),
        ),
    );
    wait_for(20, "live running", || doc_count_opt(&s, "to2") == Some(100));
    for i in 0..3 {
        let id = format!("new{i}");
        send(s.admin("PUT", &format!("/from/{id}")), Some(&json!({})));
        let took = wait_for(2, "a new doc within 2 s", || {
            send(s.admin("GET", &format!("/to2/{id}")), None).0 == 200
        });
        eprintln!("_replicator continuous: {id} arrived in {took:?}");
    }
    assert_eq!(scheduler_doc(&s, "live")["state"], "running");
    let (_, jobs) = send(s.admin("GET", "/_scheduler/jobs"), None);
    assert!(jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["doc_id"] == "live"));

    // Deleting the document stops the job.
    let (_, live) = send(s.admin("GET", "/_replicator/live"), None);
    let (st, _) = send(
        s.admin(
            "DELETE",
            &format!("/_replicator/live?rev={}", live["_rev"].as_str().unwrap()),
        ),
        None,
    );
    assert_eq!(st, 200);
    wait_for(10, "live gone from _scheduler/docs", || {
        send(s.admin("GET", "/_scheduler/docs/_replicator/live"), None).0 == 404
    });
    send(s.admin("PUT", "/from/after-delete"), Some(&json!({})));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(send(s.admin("GET", "/to2/after-delete"), None).0, 404);

    // An unreachable source: crashing, with the error and the backoff.
    send(
        s.admin("PUT", "/_replicator/bad"),
        Some(
            &json!({"source": "http://127.0.0.1:9/nowhere", "target": "to3", "create_target": true}),
        ),
    );
    wait_for(20, "bad crashing", || {
        scheduler_doc(&s, "bad")["state"] == "crashing"
    });
    let d = scheduler_doc(&s, "bad");
    assert!(d["error_count"].as_u64().unwrap() >= 1, "{d}");
    assert!(
        d["info"]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{d}"
    );
    assert!(d["info"]["backoff_ms"].as_u64().unwrap() >= 5000, "{d}");

    // An invalid document: failed, with the reason.
    send(
        s.admin("PUT", "/_replicator/invalid"),
        Some(&json!({"source": 42})),
    );
    wait_for(10, "invalid failed", || {
        scheduler_doc(&s, "invalid")["state"] == "failed"
    });
    let (_, docs) = send(s.admin("GET", "/_scheduler/docs"), None);
    assert!(docs["total_rows"].as_u64().unwrap() >= 3, "{docs}");

    // `_replicator` deleted: its documents' jobs stop (the crashing one
    // too). Created again by its first use, it is read from its start.
    assert_eq!(send(s.admin("DELETE", "/_replicator"), None).0, 200);
    wait_for(10, "bad gone with _replicator", || {
        send(s.admin("GET", "/_scheduler/docs/_replicator/bad"), None).0 == 404
    });
    // (Not brought back by the registry's own reads.)
    let (_, dbs) = send(s.admin("GET", "/_all_dbs"), None);
    assert!(
        !dbs.as_array().unwrap().contains(&json!("_replicator")),
        "{dbs}"
    );
    let (st, v) = send(
        s.admin("PUT", "/_replicator/again"),
        Some(&json!({"source": "from", "target": "to4", "create_target": true})),
    );
    assert_eq!(st, 201, "{v}");
    wait_for(20, "again completed", || {
        scheduler_doc(&s, "again")["state"] == "completed"
    });
    assert!(doc_count(&s, "to4") >= 100);
}

/// A one-shot `_replicator` document gets its outcome written in, as
/// CouchDB 3 writes it (nano's replicator test waits for
/// `_replication_state`), and that write does not run the job again. An
/// invalid document gets `failed` with the reason.
#[test]
fn replicator_documents_record_completed_and_failed() {
    let s = Settee::start();
    put_db(&s, "_replicator");
    put_db(&s, "orig");
    bulk(
        &s,
        "orig",
        (0..25).map(|i| json!({"_id": format!("o{i}")})).collect(),
    );
    let get = |id: &str| send(s.admin("GET", &format!("/_replicator/{id}")), None).1;
    let (st, v) = send(
        s.admin("PUT", "/_replicator/copy"),
        Some(&json!({"source": "orig", "target": "dup", "create_target": true})),
    );
    assert_eq!(st, 201, "{v}");
    wait_for(30, "_replication_state completed", || {
        get("copy")["_replication_state"] == "completed"
    });
    let doc = get("copy");
    assert!(doc["_rev"].as_str().unwrap().starts_with("2-"), "{doc}");
    let time = doc["_replication_state_time"].as_str().unwrap();
    assert!(time.len() == 20 && time.ends_with('Z'), "{doc}");
    let stats = &doc["_replication_stats"];
    assert_eq!(stats["docs_written"], 25, "{doc}");
    assert_eq!(stats["docs_read"], 25, "{doc}");
    assert_eq!(stats["doc_write_failures"], 0, "{doc}");
    assert!(stats["checkpointed_source_seq"].is_string(), "{doc}");
    assert!(doc.get("_replication_state_reason").is_none(), "{doc}");
    assert_eq!(doc["owner"], e2e::ADMIN, "{doc}");

    // Not run again by its own write: the document, the job and the
    // target stay as they are.
    wait_for(10, "copy completed in _scheduler/docs", || {
        scheduler_doc(&s, "copy")["state"] == "completed"
    });
    let before = scheduler_doc(&s, "copy");
    std::thread::sleep(Duration::from_secs(3));
    let after = scheduler_doc(&s, "copy");
    assert_eq!(after["state"], "completed", "{after}");
    assert_eq!(after["start_time"], before["start_time"], "{after}");
    assert_eq!(after["info"]["docs_written"], 25, "{after}");
    assert_eq!(get("copy")["_rev"], doc["_rev"]);
    let (_, jobs) = send(s.admin("GET", "/_scheduler/jobs"), None);
    assert!(
        !jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["doc_id"] == "copy"),
        "{jobs}"
    );
    assert_eq!(doc_count(&s, "dup"), 25);

    send(
        s.admin("PUT", "/_replicator/broken"),
        Some(&json!({"source": 42, "target": "dup"})),
    );
    wait_for(20, "_replication_state failed", || {
        get("broken")["_replication_state"] == "failed"
    });
    let doc = get("broken");
    assert!(
        doc["_replication_state_reason"]
            .as_str()
            .is_some_and(|r| r.contains("source")),
        "{doc}"
    );
    assert!(doc["_replication_state_time"].is_string(), "{doc}");
    assert_eq!(scheduler_doc(&s, "broken")["state"], "failed");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(get("broken")["_rev"], doc["_rev"], "written once");
}

fn doc_count_opt(s: &Settee, db: &str) -> Option<u64> {
    let (st, v) = send(s.admin("GET", &format!("/{db}")), None);
    (st == 200).then(|| v["doc_count"].as_u64().unwrap_or(0))
}

#[test]
fn a_job_survives_sigkill_and_resumes_from_its_checkpoint() {
    const N: usize = 50_000;
    let mut s = Settee::start();
    put_db(&s, "_replicator");
    put_db(&s, "big");
    bulk(
        &s,
        "big",
        (0..N)
            .map(|i| json!({"_id": format!("b{i:06}"), "i": i}))
            .collect(),
    );
    send(
        s.admin("PUT", "/_replicator/big"),
        Some(
            &json!({"source": "big", "target": "copy", "create_target": true,
                     "checkpoint_interval": 1000}),
        ),
    );
    // The whole copy takes a few seconds here: kill workerd as soon as
    // the job has stored its first checkpoint (a fixed sleep raced it).
    let seq_of = |d: &Value, field: &str| -> u64 {
        d["info"][field]
            .as_str()
            .and_then(|q| q.split('-').next()?.parse().ok())
            .unwrap_or(0)
    };
    let through = |d: &Value| seq_of(d, "through_seq");
    wait_for(60, "a first checkpoint", || {
        seq_of(&scheduler_doc(&s, "big"), "checkpointed_source_seq") > 0
    });
    let at_kill = scheduler_doc(&s, "big");
    assert_eq!(at_kill["state"], "running", "{at_kill}");
    assert!(
        through(&at_kill) < N as u64,
        "finished before the kill: {at_kill}"
    );
    eprintln!("killed at through_seq {}", through(&at_kill));
    s.kill_and_restart();
    wait_for(600, "completed after restart", || {
        scheduler_doc(&s, "big")["state"] == "completed"
    });
    let d = scheduler_doc(&s, "big");
    eprintln!("after restart: {d}");
    // The session went on from its stored position: every revision was
    // checked once, plus at most the one batch (100) the kill interrupted.
    let checked = d["info"]["revisions_checked"].as_u64().unwrap();
    assert!(
        (N as u64..=N as u64 + 100).contains(&checked),
        "the job did not resume where it stopped: {d}"
    );
    assert_eq!(doc_count(&s, "copy"), N as u64);
    let (_, all) = send(s.admin("GET", "/copy/_all_docs?limit=0"), None);
    assert_eq!(all["total_rows"], N as u64);
    let (_, ch) = send(
        s.admin("GET", "/copy/_changes?limit=1&descending=true"),
        None,
    );
    // One update per document: no document was written twice as a new
    // revision or a conflict.
    let seq: u64 = ch["last_seq"]
        .as_str()
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seq >= N as u64);
    let (_, sample) = send(
        s.admin("GET", "/copy/b000001?conflicts=true&revs=true"),
        None,
    );
    assert!(sample.get("_conflicts").is_none(), "{sample}");
    assert_eq!(sample["_revisions"]["start"], 1);
}

/// A user's `_replicator` document runs as that user: it copies a database
/// the user may read, fails on one they may not, and other users see the
/// document without its credentials.
#[test]
fn replicator_documents_run_as_their_owner() {
    let s = Settee::start();
    for db in ["_replicator", "open", "open-copy", "secret"] {
        put_db(&s, db);
    }
    let pat =
        json!({"type": "user", "name": "pat", "roles": ["replicators"], "password": "pat-pw"});
    assert_eq!(
        send(s.admin("PUT", "/_users/org.couchdb.user:pat"), Some(&pat)).0,
        201
    );
    let members = json!({"members": {"roles": ["replicators"]}});
    for db in ["_replicator", "open", "open-copy"] {
        assert_eq!(
            send(s.admin("PUT", &format!("/{db}/_security")), Some(&members)).0,
            200
        );
    }
    bulk(
        &s,
        "open",
        (0..10).map(|i| json!({"_id": format!("o{i}")})).collect(),
    );
    bulk(
        &s,
        "secret",
        (0..10).map(|i| json!({"_id": format!("s{i}")})).collect(),
    );
    let as_pat = |method: &str, path: &str| {
        s.anon(method, path)
            .set("authorization", &e2e::basic("pat", "pat-pw"))
    };
    let (st, v) = send(
        as_pat("PUT", "/_replicator/mine"),
        Some(&json!({"source": "open", "target": "open-copy"})),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(
        send(as_pat("GET", "/_replicator/mine"), None).1["owner"],
        "pat"
    );
    wait_for(20, "pat's job completed", || {
        scheduler_doc(&s, "mine")["state"] == "completed"
    });
    assert_eq!(doc_count(&s, "open-copy"), 10);

    send(
        as_pat("PUT", "/_replicator/steal"),
        Some(&json!({"source": "secret", "target": "open-copy"})),
    );
    wait_for(20, "the job on a forbidden source fails", || {
        matches!(
            scheduler_doc(&s, "steal")["state"].as_str(),
            Some("crashing" | "failed")
        )
    });
    let steal = scheduler_doc(&s, "steal");
    assert!(
        steal.to_string().contains("forbidden") || steal.to_string().contains("unauthorized"),
        "{steal}"
    );
    assert_eq!(doc_count(&s, "open-copy"), 10, "nothing of secret arrived");

    // The admin's document, with credentials, seen by pat.
    send(
        s.admin("PUT", "/_replicator/admins"),
        Some(&json!({"source": "http://admin:hunter2@127.0.0.1:1/x", "target": "y"})),
    );
    let (_, seen) = send(as_pat("GET", "/_replicator/admins"), None);
    assert_eq!(seen["source"], "http://127.0.0.1:1/x");
    assert_eq!(
        send(
            as_pat(
                "DELETE",
                &format!("/_replicator/admins?rev={}", seen["_rev"].as_str().unwrap())
            ),
            None
        )
        .0,
        403
    );
}
