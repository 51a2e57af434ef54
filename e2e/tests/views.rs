//! JavaScript views and validation in the real Worker on workerd: the seed
//! guide's design documents over HTTP, hostile functions, and PouchDB's
//! `db.query` compared with its own local map/reduce.

use e2e::{run_client, send, Settee};
use serde_json::{json, Value};

#[test]
fn seed_guide_views_and_validation_over_http() {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/ecommerce"), None).0, 201);
    let ddoc = json!({"views": {
        "by_email": {"map": "function(doc) { if (doc.type === \"user\" && doc.email) { emit(doc.email, doc); } }"},
        "active_users": {"map": "function(doc) { if (doc.type === \"user\" && doc.is_active !== false) { emit(doc._id, doc); } }"}
    }});
    assert_eq!(
        send(s.admin("PUT", "/ecommerce/_design/users"), Some(&ddoc)).0,
        201
    );
    let products = json!({"views": {
        "category_stats": {
            "map": "function(doc) { if (doc.type === \"product\" && doc.category) { emit(doc.category, doc.price); } }",
            "reduce": "function(keys, values, rereduce) { if (rereduce) { var result = { sum: 0, count: 0, min: null, max: null }; for (var i = 0; i < values.length; i++) { result.sum += values[i].sum; result.count += values[i].count; result.min = result.min === null ? values[i].min : Math.min(result.min, values[i].min); result.max = result.max === null ? values[i].max : Math.max(result.max, values[i].max); } return result; } else { return { sum: values.reduce(function(a, b) { return a + b; }, 0), count: values.length, min: Math.min.apply(null, values), max: Math.max.apply(null, values) }; } }"
        },
        "loops": {"map": "function(doc) { while (true) {} }"},
        "bomb": {"map": "function(doc) { var a = []; for (;;) a.push(new Array(1e5).join('x')); }"},
        "deep": {"map": "function(doc) { function f(n) { return f(n + 1) + 1; } emit(f(0), null); }"}
    }, "validate_doc_update": "function(newDoc, oldDoc, userCtx) { if (newDoc.type === 'product' && typeof newDoc.price !== 'number') throw({forbidden: 'price must be a number'}); }"});
    assert_eq!(
        send(
            s.admin("PUT", "/ecommerce/_design/products"),
            Some(&products)
        )
        .0,
        201
    );
    let docs = json!({"docs": [
        {"_id": "u1", "type": "user", "email": "john@example.com", "name": "John"},
        {"_id": "u2", "type": "user", "email": "jane@example.com", "is_active": false},
        {"_id": "p1", "type": "product", "category": "Electronics", "price": 999},
        {"_id": "p2", "type": "product", "category": "Electronics", "price": 1},
        {"_id": "p3", "type": "product", "category": "Books", "price": 20},
        {"_id": "p4", "type": "product", "category": "Books", "price": "free"}
    ]});
    let (status, written) = send(s.admin("POST", "/ecommerce/_bulk_docs"), Some(&docs));
    assert_eq!(status, 201);
    assert_eq!(written[5]["error"], "forbidden");
    assert_eq!(written[5]["reason"], "price must be a number");
    let (status, v) = send(
        s.admin(
            "GET",
            "/ecommerce/_design/users/_view/by_email?key=%22john@example.com%22",
        ),
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total_rows"], 2);
    assert_eq!(v["rows"][0]["id"], "u1");
    assert_eq!(v["rows"][0]["value"]["name"], "John");
    let (_, v) = send(
        s.admin("GET", "/ecommerce/_design/users/_view/active_users"),
        None,
    );
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    let (_, v) = send(
        s.admin(
            "GET",
            "/ecommerce/_design/products/_view/category_stats?group=true",
        ),
        None,
    );
    assert_eq!(
        v["rows"],
        json!([
            {"key": "Books", "value": {"sum": 20, "count": 1, "min": 20, "max": 20}},
            {"key": "Electronics", "value": {"sum": 1000, "count": 2, "min": 1, "max": 999}}
        ])
    );
    // Hostile maps end with an error; the database answers the next request.
    for view in ["loops", "bomb", "deep"] {
        let (status, e) = send(
            s.admin("GET", &format!("/ecommerce/_design/products/_view/{view}")),
            None,
        );
        assert!(status >= 500 || view == "deep", "{view}: {status} {e}");
        let (status, _) = send(s.admin("GET", "/ecommerce/u1"), None);
        assert_eq!(status, 200, "after {view}");
    }
    let (status, info) = send(s.admin("GET", "/ecommerce/_design/products/_info"), None);
    assert_eq!((status, info["name"].as_str()), (200, Some("products")));
    let (status, _) = send(
        s.admin("POST", "/ecommerce/_view_cleanup"),
        Some(&json!({})),
    );
    assert_eq!(status, 202);
    let (status, e) = send(
        s.admin("GET", "/ecommerce/_design/products/_view/nope"),
        None,
    );
    assert_eq!(
        (status, e["reason"].as_str()),
        (404, Some("missing_named_view"))
    );
    let _: Value = e;
}

#[test]
fn pouchdb_queries_match_its_local_map_reduce() {
    let s = Settee::start();
    run_client("node", "js/pouchdb-views.mjs", &[&s.admin_url("")]);
}

#[test]
fn nano_views_update_handlers_and_filters() {
    let s = Settee::start();
    run_client("node", "js/nano-views.mjs", &[&s.admin_url("")]);
}

/// Polls a view with `update=false` until it has `n` rows.
fn wait_rows(s: &Settee, path: &str, n: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, v) = send(
            s.admin("GET", &format!("{path}?update=false&reduce=false&limit=0")),
            None,
        );
        if v["total_rows"] == json!(n) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{path}: {v}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// With a build budget of 150 documents per invocation, indexes over
/// thousands of documents are built round by round in the actor's alarm:
/// a query waits for them (`update=true`), `update=lazy` answers at once
/// and builds afterwards, and writes bring auto-updated views up to date
/// in the background.
#[test]
fn large_builds_run_in_alarm_rounds() {
    let s = Settee::start_with(&[("VIEW_BUILD_BATCH", "150")]);
    assert_eq!(send(s.admin("PUT", "/big"), None).0, 201);
    for (name, auto) in [("waits", false), ("lazy", false), ("auto", true)] {
        // Distinct maps: identical ones would share one index.
        let map =
            format!("function(doc) {{ /* {name} */ if (doc.n !== undefined) emit(doc.n, 1); }}");
        let ddoc = json!({"autoupdate": auto, "views": {"v": {"map": map, "reduce": "_count"}}});
        let (st, _) = send(s.admin("PUT", &format!("/big/_design/{name}")), Some(&ddoc));
        assert_eq!(st, 201);
    }
    let docs: Vec<Value> = (0..3000).map(|n| json!({"n": n})).collect();
    let (st, _) = send(
        s.admin("POST", "/big/_bulk_docs"),
        Some(&json!({"docs": docs})),
    );
    assert_eq!(st, 201);

    let (st, v) = send(s.admin("GET", "/big/_design/waits/_view/v"), None);
    assert_eq!((st, &v["rows"][0]["value"]), (200, &json!(3000)), "{v}");
    let (_, v) = send(
        s.admin("GET", "/big/_design/waits/_view/v?reduce=false&skip=2999"),
        None,
    );
    assert_eq!(v["rows"][0]["key"], json!(2999), "{v}");

    let (_, v) = send(
        s.admin(
            "GET",
            "/big/_design/lazy/_view/v?update=lazy&reduce=false&limit=0",
        ),
        None,
    );
    assert!(v["total_rows"].as_u64().unwrap() < 3000, "{v}");
    wait_rows(&s, "/big/_design/lazy/_view/v", 3000);

    wait_rows(&s, "/big/_design/auto/_view/v", 3000);
    let more: Vec<Value> = (3000..4000).map(|n| json!({"n": n})).collect();
    send(
        s.admin("POST", "/big/_bulk_docs"),
        Some(&json!({"docs": more})),
    );
    wait_rows(&s, "/big/_design/auto/_view/v", 4000);
    // An autoupdate:false view is left alone until asked.
    let (_, v) = send(
        s.admin(
            "GET",
            "/big/_design/lazy/_view/v?update=false&reduce=false&limit=0",
        ),
        None,
    );
    assert_eq!(v["total_rows"], json!(3000), "{v}");
}
