//! Partitioned databases and shard endpoints over HTTP on workerd, and the
//! clients that use them: PouchDB (HTTP, pouchdb-find, LevelDB replication)
//! and couchdb-python; a partitioned database replicated by `_replicate`.

use e2e::{run_client, send, Settee};
use serde_json::{json, Value};
use std::time::Duration;

fn rows(v: &Value) -> Vec<&str> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[test]
fn partitioned_databases_over_http() {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/parts?partitioned=true"), None).0, 201);
    assert_eq!(
        send(s.admin("GET", "/parts"), None).1["props"],
        json!({"partitioned": true})
    );
    let docs =
        json!({"docs": [{"_id": "a:1", "n": 1}, {"_id": "a:2", "n": 2}, {"_id": "b:1", "n": 3}]});
    assert_eq!(
        send(s.admin("POST", "/parts/_bulk_docs"), Some(&docs)).0,
        201
    );
    let (st, v) = send(s.admin("PUT", "/parts/loose"), Some(&json!({})));
    assert_eq!(
        (st, v["reason"].as_str()),
        (400, Some("Doc id must be of form partition:id"))
    );
    let (_, info) = send(s.admin("GET", "/parts/_partition/a"), None);
    assert_eq!(
        (&info["doc_count"], &info["partition"]),
        (&json!(2), &json!("a"))
    );
    let (_, all) = send(s.admin("GET", "/parts/_partition/b/_all_docs"), None);
    assert_eq!(rows(&all), ["b:1"]);

    let ddoc =
        json!({"views": {"n": {"map": "function(d) { emit(d.n, null); }", "reduce": "_sum"}}});
    assert_eq!(send(s.admin("PUT", "/parts/_design/d"), Some(&ddoc)).0, 201);
    let (st, v) = send(
        s.admin("GET", "/parts/_partition/a/_design/d/_view/n?reduce=false"),
        None,
    );
    assert_eq!((st, rows(&v)), (200, vec!["a:1", "a:2"]), "{v}");
    assert_eq!(v["total_rows"], 2);
    let (st, v) = send(s.admin("GET", "/parts/_design/d/_view/n"), None);
    assert_eq!((st, v["error"].as_str()), (400, Some("query_parse_error")));
    let (st, v) = send(
        s.admin("POST", "/parts/_partition/b/_find"),
        Some(&json!({"selector": {"n": {"$gt": 0}}})),
    );
    assert_eq!(
        (st, v["docs"][0]["_id"].as_str()),
        (200, Some("b:1")),
        "{v}"
    );
    let (st, v) = send(
        s.admin("POST", "/parts/_partition/b/_explain"),
        Some(&json!({"selector": {"n": {"$gt": 0}}})),
    );
    assert_eq!((st, v["mrargs"]["partition"].as_str()), (200, Some("b")));

    let (st, shards) = send(s.admin("GET", "/parts/_shards"), None);
    assert_eq!(
        (st, &shards["shards"]["00000000-ffffffff"]),
        (200, &json!(["settee@127.0.0.1"]))
    );
    assert_eq!(
        send(s.admin("GET", "/parts/_shards/a:1"), None).1["range"],
        "00000000-ffffffff"
    );
    assert_eq!(
        send(s.admin("POST", "/parts/_sync_shards"), Some(&json!({}))).0,
        202
    );
}

#[test]
fn pouchdb_uses_a_partitioned_database() {
    let s = Settee::start();
    run_client("node", "js/pouchdb-partitions.mjs", &[&s.admin_url("")]);
}

#[test]
fn couchdb_python_uses_a_partitioned_database() {
    let s = Settee::start();
    run_client(
        "python3",
        "py/couchdb_python_partitions.py",
        &[&s.admin_url("")],
    );
}

#[test]
fn a_partitioned_database_replicates_into_a_partitioned_target() {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/src?partitioned=true"), None).0, 201);
    let docs: Vec<Value> = (0..300)
        .map(|i| json!({"_id": format!("p{}:{i:03}", i % 3), "i": i}))
        .collect();
    assert_eq!(
        send(
            s.admin("POST", "/src/_bulk_docs"),
            Some(&json!({ "docs": docs }))
        )
        .0,
        201
    );
    let ddoc = json!({"views": {"i": {"map": "function(d) { emit(d.i, null); }"}}});
    assert_eq!(send(s.admin("PUT", "/src/_design/d"), Some(&ddoc)).0, 201);
    let (st, v) = send(
        s.admin("POST", "/_replicate")
            .timeout(Duration::from_secs(300)),
        Some(&json!({
            "source": s.admin_url("/src"),
            "target": s.admin_url("/dst"),
            "create_target": true,
            "create_target_params": {"partitioned": true},
        })),
    );
    assert_eq!((st, &v["ok"]), (200, &json!(true)), "{v}");
    let (_, info) = send(s.admin("GET", "/dst"), None);
    assert_eq!(
        (&info["props"], &info["doc_count"]),
        (&json!({"partitioned": true}), &json!(301))
    );
    let (st, v) = send(
        s.admin("GET", "/dst/_partition/p1/_design/d/_view/i?limit=3"),
        None,
    );
    assert_eq!(
        (st, rows(&v)),
        (200, vec!["p1:001", "p1:004", "p1:007"]),
        "{v}"
    );
    assert_eq!(v["total_rows"], 100);

    // `partition_query_limit` written through `_config` reaches the actor.
    let limit = "/_node/_local/_config/query_server_config/partition_query_limit";
    assert_eq!(send(s.admin("PUT", limit), Some(&json!("40"))).0, 200);
    let (_, v) = send(s.admin("GET", "/dst/_partition/p2/_all_docs"), None);
    assert_eq!(v["rows"].as_array().unwrap().len(), 40);
    let (st, v) = send(
        s.admin("GET", "/dst/_partition/p2/_design/d/_view/i?limit=41"),
        None,
    );
    assert_eq!(
        (st, v["reason"].as_str()),
        (400, Some("Limit is too large, must not exceed 40"))
    );
}
