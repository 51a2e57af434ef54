//! Full-text search in the real Worker on workerd: nano's `db.search`
//! against `_search`, and an index larger than one invocation's budget
//! built in the actor's alarm rounds.

use e2e::{run_client, send, Settee};
use serde_json::{json, Value};

#[test]
fn nano_searches_with_couchdb_search_api() {
    let s = Settee::start();
    run_client("node", "js/nano-search.mjs", &[&s.admin_url("")]);
}

#[test]
fn large_search_indexes_build_in_alarm_rounds() {
    let s = Settee::start_with(&[("VIEW_BUILD_BATCH", "150")]);
    assert_eq!(send(s.admin("PUT", "/big"), None).0, 201);
    let ddoc = json!({"indexes": {"n": {"index": "function (doc) { index('default', 'word' + (doc.n % 10)); index('n', doc.n); }"}}});
    assert_eq!(send(s.admin("PUT", "/big/_design/s"), Some(&ddoc)).0, 201);
    let docs: Vec<Value> = (0..2000).map(|n| json!({"n": n})).collect();
    let (st, _) = send(
        s.admin("POST", "/big/_bulk_docs"),
        Some(&json!({"docs": docs})),
    );
    assert_eq!(st, 201);
    let (st, v) = send(
        s.admin("GET", "/big/_design/s/_search/n?q=word7&limit=0"),
        None,
    );
    assert_eq!((st, &v["total_rows"]), (200, &json!(200)), "{v}");
    let (_, v) = send(
        s.admin(
            "GET",
            "/big/_design/s/_search/n?q=n:%5B100%20TO%20199%5D%20AND%20word3&limit=200",
        ),
        None,
    );
    assert_eq!(v["total_rows"], json!(10), "{v}");
    let (_, info) = send(s.admin("GET", "/big/_design/s/_search_info/n"), None);
    assert_eq!(info["search_index"]["doc_count"], json!(2000), "{info}");
    // A function that throws for some documents skips only them.
    let bad = json!({"indexes": {"t": {"index": "function (doc) { if (doc.n % 2) throw new Error('odd'); index('default', 'even'); }"}}});
    assert_eq!(send(s.admin("PUT", "/big/_design/bad"), Some(&bad)).0, 201);
    let (st, v) = send(
        s.admin("GET", "/big/_design/bad/_search/t?q=even&limit=0"),
        None,
    );
    assert_eq!((st, &v["total_rows"]), (200, &json!(1000)), "{v}");
}
