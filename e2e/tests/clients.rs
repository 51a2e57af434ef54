//! Real CouchDB clients against Settee.

use e2e::{repo_root, send, Settee};
use serde_json::json;
use std::process::Command;

/// Runs a Node.js client script from `e2e/js` with its arguments.
fn run_node(script: &str, args: &[&str]) {
    let out = Command::new("node")
        .arg(repo_root().join("e2e/js").join(script))
        .args(args)
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
