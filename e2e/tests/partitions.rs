//! Partitioned databases and shard endpoints over HTTP on workerd.

use e2e::{send, Settee};
use serde_json::json;

#[test]
fn partitioned_databases_over_http() {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/parts?partitioned=true"), None).0, 201);
    assert_eq!(
        send(s.admin("GET", "/parts"), None).1["props"],
        json!({"partitioned": true})
    );
    let docs = json!({"docs": [{"_id": "a:1"}, {"_id": "a:2"}, {"_id": "b:1"}]});
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
    assert_eq!(all["rows"].as_array().unwrap().len(), 1);
    assert_eq!(all["rows"][0]["id"], "b:1");
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
