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
