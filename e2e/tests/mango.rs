//! Mango over real HTTP on workerd: `_index`, `_find`, `_explain`, and real
//! clients (PouchDB with pouchdb-find in Node, Python `requests`).

use e2e::{run_client, send, Settee};
use serde_json::{json, Value};

#[test]
fn find_index_and_explain_over_http() {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/shop"), None).0, 201);
    let docs: Vec<Value> = (0..500)
        .map(|i| json!({"_id": format!("p{i:03}"), "kind": if i % 5 == 0 { "sale" } else { "item" }, "price": i % 97}))
        .collect();
    assert_eq!(
        send(
            s.admin("POST", "/shop/_bulk_docs"),
            Some(&json!({"docs": docs}))
        )
        .0,
        201
    );
    let q = json!({"selector": {"kind": "sale", "price": {"$gt": 50}}, "sort": ["kind", "price"], "limit": 1000});
    let (status, err) = send(s.admin("POST", "/shop/_find"), Some(&q));
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("no_usable_index"))
    );
    let (status, unindexed) = send(
        s.admin("POST", "/shop/_find"),
        Some(&json!({"selector": q["selector"], "limit": 1000})),
    );
    assert_eq!(status, 200);
    assert_eq!(
        unindexed["warning"],
        "No matching index found, create an index to optimize query time."
    );
    let idx = json!({"index": {"fields": ["kind", "price"]}, "ddoc": "kp", "name": "kp"});
    let (status, created) = send(s.admin("POST", "/shop/_index"), Some(&idx));
    assert_eq!((status, created["result"].as_str()), (200, Some("created")));
    let (_, exists) = send(s.admin("POST", "/shop/_index"), Some(&idx));
    assert_eq!(exists["result"], "exists");
    let mut stats_q = q.clone();
    stats_q["execution_stats"] = json!(true);
    let (status, indexed) = send(s.admin("POST", "/shop/_find"), Some(&stats_q));
    assert_eq!(status, 200, "{indexed}");
    assert!(indexed.get("warning").is_none());
    let prices: Vec<i64> = indexed["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["price"].as_i64().unwrap())
        .collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(prices.len(), unindexed["docs"].as_array().unwrap().len());
    let st = &indexed["execution_stats"];
    assert_eq!(st["total_docs_examined"], st["results_returned"], "{st}");
    let (status, explain) = send(s.admin("POST", "/shop/_explain"), Some(&q));
    assert_eq!(status, 200);
    assert_eq!(explain["index"]["name"], "kp");
    assert_eq!(explain["mrargs"]["start_key"], json!(["sale", 50]));
    let (_, list) = send(s.admin("GET", "/shop/_index"), None);
    assert_eq!(list["total_rows"], 2);
    let (_, ddoc) = send(s.admin("GET", "/shop/_design/kp"), None);
    assert_eq!(ddoc["language"], "query");
    assert_eq!(
        send(s.admin("DELETE", "/shop/_index/kp/json/kp"), None),
        (200, json!({"ok": true}))
    );
    let (status, _) = send(s.anon("POST", "/shop/_find"), Some(&q));
    assert_eq!(status, 401);
}

#[test]
fn pouchdb_find_over_http() {
    let s = Settee::start();
    run_client("node", "js/pouchdb-find.mjs", &[&s.admin_url("")]);
}

#[test]
fn python_requests_product_search() {
    let s = Settee::start();
    run_client("python3", "py/product_search.py", &[&s.admin_url("")]);
}
