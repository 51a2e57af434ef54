//! Real CouchDB clients against Settee.

use e2e::{repo_root, Settee};
use std::process::Command;

/// Runs a Node.js client script from `e2e/js` with the server URL.
fn run_node(script: &str, server: &str) {
    let out = Command::new("node")
        .arg(repo_root().join("e2e/js").join(script))
        .arg(server)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
}

#[test]
fn pouchdb_syncs_both_ways_with_conflicts_and_live() {
    let s = Settee::start();
    run_node("pouchdb-sync.mjs", &s.admin_url(""));
}
