//! Replication with PouchDB Server (npm `pouchdb-server`, the peer `make
//! bench` also uses) as the remote end, both directions, 10,000 docs; then
//! the same replications continued by PouchDB itself from the checkpoints
//! Settee wrote, and the reverse.

use e2e::{free_port, repo_root, send, wait_up_path, Settee};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// PouchDB Server in memory on a free port, stopped (by its own PID) on drop.
struct PouchServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PouchServer {
    fn start() -> PouchServer {
        let bench = repo_root().join("bench");
        let bin: PathBuf = bench.join("node_modules/pouchdb-server/bin/pouchdb-server");
        if !bin.exists() {
            let ok = Command::new("npm")
                .args(["ci", "--prefix"])
                .arg(&bench)
                .args(["--no-audit", "--no-fund"])
                .status()
                .expect("npm runs");
            assert!(ok.success(), "installing pouchdb-server failed");
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("node")
            .arg(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--in-memory", "--no-stdout-logs"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pouchdb-server starts");
        let s = PouchServer {
            child,
            port,
            _dir: dir,
        };
        assert!(
            wait_up_path(port, "/", Duration::from_secs(60)),
            "pouchdb-server did not come up"
        );
        s
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn doc_count(&self, db: &str) -> u64 {
        let (st, v) = send(ureq::get(&self.url(&format!("/{db}"))), None);
        assert_eq!(st, 200, "{v}");
        v["doc_count"].as_u64().unwrap()
    }

    fn bulk(&self, db: &str, docs: Vec<Value>) {
        let (st, v) = send(
            ureq::post(&self.url(&format!("/{db}/_bulk_docs"))),
            Some(&json!({ "docs": docs })),
        );
        assert_eq!(st, 201, "{v}");
    }
}

impl Drop for PouchServer {
    fn drop(&mut self) {
        e2e::terminate(&mut self.child);
    }
}

/// Runs PouchDB's own replicate in Node; its result.
fn pouch_replicate(source: &str, target: &str) -> Value {
    let out = Command::new("node")
        .arg(repo_root().join("e2e/js/pouchdb-replicate.mjs"))
        .args([source, target])
        .current_dir(repo_root())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pouchdb-replicate failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

fn replicate(s: &Settee, body: Value) -> Value {
    let (st, v) = send(
        s.admin("POST", "/_replicate")
            .timeout(Duration::from_secs(600)),
        Some(&body),
    );
    assert_eq!(st, 200, "{v}");
    v
}

#[test]
fn pouchdb_server_both_ways_and_continued_by_pouchdb() {
    const N: u64 = 10_000;
    let s = Settee::start();
    let p = PouchServer::start();
    send(s.admin("PUT", "/a"), None);
    let docs: Vec<Value> = (0..N)
        .map(|i| json!({"_id": format!("p{i:05}"), "i": i}))
        .collect();
    for chunk in docs.chunks(5000) {
        send(
            s.admin("POST", "/a/_bulk_docs"),
            Some(&json!({ "docs": chunk })),
        );
    }

    // Push Settee → PouchDB Server, then pull it back into a new database.
    let r = replicate(
        &s,
        json!({"source": "a", "target": p.url("/p1"), "create_target": true}),
    );
    assert_eq!(r["history"][0]["docs_written"], N);
    assert_eq!(p.doc_count("p1"), N);
    let r = replicate(
        &s,
        json!({"source": p.url("/p1"), "target": "back", "create_target": true}),
    );
    assert_eq!(r["history"][0]["docs_written"], N, "{r}");
    let (_, info) = send(s.admin("GET", "/back"), None);
    assert_eq!(info["doc_count"], N);

    // New docs on Settee; PouchDB continues Settee's push from Settee's
    // checkpoint: it reads only the 100 new changes.
    let more: Vec<Value> = (0..100)
        .map(|i| json!({"_id": format!("q{i:03}")}))
        .collect();
    send(
        s.admin("POST", "/a/_bulk_docs"),
        Some(&json!({ "docs": more })),
    );
    let pr = pouch_replicate(&s.admin_url("/a"), &p.url("/p1"));
    assert_eq!(pr["ok"], true, "{pr}");
    assert_eq!(
        pr["docs_read"], 100,
        "PouchDB ignored Settee's checkpoint: {pr}"
    );
    assert_eq!(p.doc_count("p1"), N + 100);

    // The reverse: PouchDB pulls PouchDB Server → Settee first, then
    // Settee continues from PouchDB's checkpoint.
    p.bulk(
        "p1",
        (0..50)
            .map(|i| json!({"_id": format!("r{i:02}")}))
            .collect(),
    );
    let pr = pouch_replicate(&p.url("/p1"), &s.admin_url("/back"));
    assert_eq!(pr["docs_written"], 150, "{pr}");
    p.bulk(
        "p1",
        (0..10)
            .map(|i| json!({"_id": format!("s{i:02}")}))
            .collect(),
    );
    let r = replicate(&s, json!({"source": p.url("/p1"), "target": "back"}));
    assert_eq!(
        r["history"][0]["docs_read"], 10,
        "Settee ignored PouchDB's checkpoint: {r}"
    );
    let (_, info) = send(s.admin("GET", "/back"), None);
    assert_eq!(info["doc_count"], N + 160);
}
