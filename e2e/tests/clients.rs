//! Real CouchDB clients against Settee.

use e2e::{run_client, send, Settee};
use serde_json::{json, Value};

fn run_node(script: &str, args: &[&str]) {
    run_client("node", &format!("js/{script}"), args);
}

#[test]
fn pouchdb_syncs_both_ways_with_conflicts_and_live() {
    let s = Settee::start();
    run_node("pouchdb-sync.mjs", &[&s.admin_url("")]);
}

#[test]
fn pouchdb_syncs_as_a_member_with_cookie_and_basic_auth() {
    let s = Settee::start();
    let user = json!({"type": "user", "name": "pat", "roles": ["crew"], "password": "pat-pw"});
    assert_eq!(
        send(s.admin("PUT", "/_users/org.couchdb.user:pat"), Some(&user)).0,
        201
    );
    assert_eq!(send(s.admin("PUT", "/members-only"), None).0, 201);
    let sec = json!({"members": {"roles": ["crew"]}});
    assert_eq!(
        send(s.admin("PUT", "/members-only/_security"), Some(&sec)).0,
        200
    );
    run_node("pouchdb-auth.mjs", &[&s.url(""), "pat", "pat-pw"]);
}

#[test]
fn pouchdb_syncs_binary_attachments_both_ways() {
    let s = Settee::start();
    run_node("pouchdb-attachments.mjs", &[&s.admin_url("")]);
}

#[test]
fn nano_attachment_and_multipart_apis() {
    let s = Settee::start();
    run_node("nano-attachments.mjs", &[&s.admin_url("")]);
}

#[test]
fn couchdb_python_attachments_changes_and_purge() {
    let s = Settee::start();
    run_client("python3", "py/couchdb_python.py", &[&s.admin_url("")]);
}

/// `@cloudant/couchbackup` then `couchrestore` round-trip a database,
/// deleted documents included (couchbackup keeps winning revisions only).
#[test]
fn couchbackup_and_couchrestore_round_trip() {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/origin"), None).0, 201);
    let docs: Vec<Value> = (0..1200)
        .map(|i| json!({"_id": format!("doc-{i:04}"), "n": i, "tags": ["a", i % 7]}))
        .collect();
    send(
        s.admin("POST", "/origin/_bulk_docs"),
        Some(&json!({"docs": docs})),
    );
    for i in 0..40 {
        let id = format!("doc-{i:04}");
        let (_, d) = send(s.admin("GET", &format!("/origin/{id}")), None);
        let rev = d["_rev"].as_str().unwrap();
        send(s.admin("DELETE", &format!("/origin/{id}?rev={rev}")), None);
    }

    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("origin.txt");
    let npm_bin = |name: &str, db: &str, extra: &[&str], stdin: std::process::Stdio| {
        let out = std::process::Command::new(e2e::repo_root().join("node_modules/.bin").join(name))
            .args(["--url", &s.admin_url(""), "--db", db, "--quiet"])
            .args(extra)
            .stdin(stdin)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let log = dir.path().join("log");
    let out_args = [
        "--output",
        backup.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
    ];
    npm_bin(
        "couchbackup",
        "origin",
        &out_args,
        std::process::Stdio::null(),
    );
    assert_eq!(send(s.admin("PUT", "/copy"), None).0, 201);
    let input = std::fs::File::open(&backup).unwrap();
    npm_bin("couchrestore", "copy", &[], input.into());

    let info = |db: &str| send(s.admin("GET", &format!("/{db}")), None).1;
    let (a, b) = (info("origin"), info("copy"));
    assert_eq!(
        (&a["doc_count"], &a["doc_del_count"]),
        (&b["doc_count"], &b["doc_del_count"])
    );
    assert_eq!(a["doc_count"], 1160);
    let all = |db: &str| {
        send(
            s.admin(
                "GET",
                &format!("/{db}/_all_docs?include_docs=true&conflicts=true"),
            ),
            None,
        )
        .1["rows"]
            .clone()
    };
    let (a, b) = (all("origin"), all("copy"));
    let differ = a
        .as_array()
        .unwrap()
        .iter()
        .zip(b.as_array().unwrap())
        .find(|(x, y)| x != y);
    assert!(differ.is_none(), "first difference: {differ:?}");
    // The deletions came across as the same tombstone revisions.
    let tombstone = |db: &str| {
        let req = s
            .admin("GET", &format!("/{db}/doc-0003?open_revs=all"))
            .set("accept", "application/json");
        send(req, None).1[0]["ok"].clone()
    };
    assert_eq!(tombstone("copy")["_deleted"], true);
    assert_eq!(tombstone("origin"), tombstone("copy"));
}
