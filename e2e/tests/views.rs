//! JavaScript views and validation in the real Worker on workerd: the seed
//! guide's design documents over HTTP, hostile functions, and PouchDB's
//! `db.query` compared with its own local map/reduce.

use e2e::{run_client, send, Settee};
use serde_json::{json, Value};
use std::time::Duration;

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
        "by_category": {"map": "function(doc) { if (doc.type === \"product\" && doc.category) { emit(doc.category, doc); } }"},
        "by_price_range": {"map": "function(doc) { if (doc.type === \"product\" && doc.price) { emit(Math.floor(doc.price / 100) * 100, doc); } }"},
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
        s.admin(
            "GET",
            "/ecommerce/_design/products/_view/by_category?key=%22Electronics%22",
        ),
        None,
    );
    let ids: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        (v["total_rows"].as_u64(), ids),
        (Some(3), vec!["p1", "p2"]),
        "{v}"
    );
    assert_eq!(v["rows"][0]["value"]["price"], 999);
    let (_, v) = send(
        s.admin("GET", "/ecommerce/_design/products/_view/by_price_range"),
        None,
    );
    let keys: Vec<&Value> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["key"])
        .collect();
    assert_eq!(keys, [&json!(0), &json!(0), &json!(900)], "{v}");
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
    // While it builds, `_active_tasks` shows an indexer task; once built, not.
    let lazy_task = || {
        let (_, tasks) = send(s.admin("GET", "/_active_tasks"), None);
        tasks
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["design_document"] == "_design/lazy")
            .cloned()
    };
    let task = (0..1000)
        .find_map(|_| {
            lazy_task().or_else(|| {
                std::thread::sleep(Duration::from_millis(5));
                None
            })
        })
        .expect("an indexer task while the view builds");
    assert_eq!(
        (&task["type"], &task["database"]),
        (&json!("indexer"), &json!("big"))
    );
    let (done, total) = (
        task["changes_done"].as_u64().unwrap(),
        task["total_changes"].as_u64().unwrap(),
    );
    assert!(done < total && total >= 3000, "{task}");
    assert!(task["progress"].as_u64().unwrap() < 100, "{task}");
    wait_rows(&s, "/big/_design/lazy/_view/v", 3000);
    let gone = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        lazy_task().is_none()
    });
    assert!(gone, "the finished build leaves _active_tasks");

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

/// Every view query parameter of CouchDB 3 over HTTP, and the built-in
/// reduces, on a small fixture whose answers are worked out by hand.
#[test]
fn every_view_parameter_over_http() {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/params"), None).0, 201);
    let ddoc = json!({"views": {
        "by_n": {"map": "function(doc) { emit(doc.n, doc.n); }", "reduce": "_sum"},
        "by_tag": {"map": "function(doc) { emit(doc.tag, 1); }", "reduce": "_count"},
        "stats": {"map": "function(doc) { emit(doc.tag, doc.n); }", "reduce": "_stats"},
        "distinct": {"map": "function(doc) { emit(doc.tag, null); }", "reduce": "_approx_count_distinct"},
        "compound": {"map": "function(doc) { emit([doc.n % 3, doc.n], null); }", "reduce": "_count"},
        "linked": {"map": "function(doc) { emit(doc.n, {_id: 'd0'}); }"},
        "plain": {"map": "function(doc) { emit(doc.tag, null); }"}
    }});
    assert_eq!(
        send(s.admin("PUT", "/params/_design/p"), Some(&ddoc)).0,
        201
    );
    let docs: Vec<Value> = (0..10)
        .map(|i| {
            let tag = ["a", "b"][i % 2];
            json!({"_id": format!("d{i}"), "n": i, "tag": tag})
        })
        .collect();
    assert_eq!(
        send(
            s.admin("POST", "/params/_bulk_docs"),
            Some(&json!({"docs": docs}))
        )
        .0,
        201
    );
    let view = |name: &str, params: &[(&str, &str)]| {
        let mut req = s.admin("GET", &format!("/params/_design/p/_view/{name}"));
        for (k, v) in params {
            req = req.query(k, v);
        }
        send(req, None)
    };
    let ok = |name: &str, params: &[(&str, &str)]| {
        let (status, v) = view(name, params);
        assert_eq!(status, 200, "{name} {params:?}: {v}");
        v
    };
    let field = |v: &Value, f: &str| -> Vec<Value> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[f].clone())
            .collect()
    };

    let v = ok("by_n", &[("key", "3"), ("reduce", "false")]);
    assert_eq!(v["rows"], json!([{"id": "d3", "key": 3, "value": 3}]));
    let v = ok("by_n", &[("keys", "[5,1]"), ("reduce", "false")]);
    assert_eq!(field(&v, "id"), [json!("d5"), json!("d1")]);
    let (status, v) = send(
        s.admin("POST", "/params/_design/p/_view/by_n"),
        Some(&json!({"keys": [7, 2], "reduce": false})),
    );
    assert_eq!((status, field(&v, "key")), (200, vec![json!(7), json!(2)]));
    let v = ok(
        "by_n",
        &[
            ("startkey", "2"),
            ("endkey", "5"),
            ("inclusive_end", "false"),
            ("reduce", "false"),
        ],
    );
    assert_eq!(field(&v, "key"), [json!(2), json!(3), json!(4)]);
    let v = ok(
        "by_n",
        &[
            ("start_key", "5"),
            ("end_key", "2"),
            ("descending", "true"),
            ("reduce", "false"),
        ],
    );
    assert_eq!(field(&v, "key"), [json!(5), json!(4), json!(3), json!(2)]);
    let v = ok(
        "by_n",
        &[("limit", "2"), ("skip", "1"), ("reduce", "false")],
    );
    assert_eq!(
        (v["total_rows"].clone(), v["offset"].clone()),
        (json!(10), json!(1))
    );
    assert_eq!(field(&v, "key"), [json!(1), json!(2)]);
    let v = ok(
        "plain",
        &[
            ("key", "\"a\""),
            ("startkey_docid", "d2"),
            ("endkey_docid", "d6"),
        ],
    );
    assert_eq!(field(&v, "id"), [json!("d2"), json!("d4"), json!("d6")]);

    assert_eq!(ok("by_n", &[])["rows"], json!([{"key": null, "value": 45}]));
    assert_eq!(
        ok("by_tag", &[("group", "true")])["rows"],
        json!([{"key": "a", "value": 5}, {"key": "b", "value": 5}])
    );
    assert_eq!(
        field(&ok("compound", &[("group_level", "1")]), "value"),
        [json!(4), json!(3), json!(3)]
    );
    assert_eq!(
        ok("stats", &[("key", "\"a\"")])["rows"][0]["value"],
        json!({"sum": 20, "count": 5, "min": 0, "max": 8, "sumsqr": 120})
    );
    assert_eq!(ok("distinct", &[])["rows"][0]["value"], json!(2));

    // include_docs, with a linked document and with conflicts.
    let v = ok("linked", &[("key", "3"), ("include_docs", "true")]);
    assert_eq!(v["rows"][0]["doc"]["_id"], json!("d0"));
    let (status, _) = send(
        s.admin("POST", "/params/_bulk_docs"),
        Some(
            &json!({"new_edits": false, "docs": [{"_id": "d1", "_rev": "1-ffff", "n": 1, "tag": "b"}]}),
        ),
    );
    assert_eq!(status, 201);
    let v = ok(
        "by_n",
        &[
            ("key", "1"),
            ("reduce", "false"),
            ("include_docs", "true"),
            ("conflicts", "true"),
        ],
    );
    assert_eq!(
        v["rows"][0]["doc"]["_conflicts"].as_array().map(Vec::len),
        Some(1),
        "{v}"
    );

    // Freshness and the cluster-only parameters.
    let v = ok(
        "by_n",
        &[("update_seq", "true"), ("reduce", "false"), ("limit", "0")],
    );
    assert!(
        v["update_seq"]
            .as_str()
            .is_some_and(|s| s.starts_with("12-")),
        "{v}"
    );
    for params in [
        [("stale", "ok"), ("reduce", "false")],
        [("stable", "true"), ("update", "false")],
        [("sorted", "false"), ("reduce", "false")],
        [("update", "lazy"), ("reduce", "false")],
    ] {
        ok("by_n", &params);
    }

    // CouchDB's errors.
    let err = |name: &str, params: &[(&str, &str)]| {
        let (status, v) = view(name, params);
        (status, v["error"].as_str().unwrap_or_default().to_string())
    };
    let parse_error = (400, "query_parse_error".to_string());
    assert_eq!(err("plain", &[("group", "true")]), parse_error);
    assert_eq!(err("by_n", &[("include_docs", "true")]), parse_error);
    assert_eq!(err("by_n", &[("key", "1"), ("keys", "[1]")]), parse_error);
    assert_eq!(err("by_n", &[("limit", "-1")]), parse_error);
    assert_eq!(err("by_n", &[("key", "{bad json")]).0, 400);
    assert_eq!(err("nope", &[]), (404, "not_found".to_string()));
    let python = json!({"language": "python", "views": {"v": {"map": "def f(doc): pass"}}});
    assert_eq!(
        send(s.admin("PUT", "/params/_design/py"), Some(&python)).0,
        201
    );
    let (status, v) = send(s.admin("GET", "/params/_design/py/_view/v"), None);
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("unknown_query_language"))
    );
}

/// A `"language": "coffeescript"` design document, as CouchDB's own
/// coffee.js test writes it: a view with a reduce, a show, a list and a
/// filter, each in CoffeeScript.
#[test]
fn coffeescript_design_documents() {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/coffee"), None).0, 201);
    let ddoc = json!({
        "language": "coffeescript",
        "views": {"myview": {
            "map": "(doc) -> if doc.foo\n  emit(doc.foo, 1)",
            "reduce": "(keys, values, rereduce) ->\n  sum = 0\n  for x in values\n    sum = sum + x\n  sum"
        }},
        "shows": {"myshow": "(doc) ->\n  \"Foo #{doc.foo}\""},
        "lists": {"mylist": "(head, req) ->\n  while row = getRow()\n    send(\"Foo #{row.value}\")\n  return \"Foo\""},
        "filters": {"filter": "(doc) ->\n  doc.foo"}
    });
    assert_eq!(
        send(s.admin("PUT", "/coffee/_design/c"), Some(&ddoc)).0,
        201
    );
    let docs: Vec<Value> = (0..5)
        .map(|i| json!({"_id": format!("d{i}"), "foo": 100}))
        .collect();
    let body = json!({"docs": docs});
    assert_eq!(
        send(s.admin("POST", "/coffee/_bulk_docs"), Some(&body)).0,
        201
    );
    let (status, v) = send(s.admin("GET", "/coffee/_design/c/_view/myview"), None);
    assert_eq!((status, &v["rows"][0]["value"]), (200, &json!(5)), "{v}");
    let show = s
        .admin("GET", "/coffee/_design/c/_show/myshow/d0")
        .call()
        .unwrap();
    assert_eq!(show.into_string().unwrap(), "Foo 100");
    let list = s
        .admin("GET", "/coffee/_design/c/_list/mylist/myview")
        .call()
        .unwrap();
    assert_eq!(list.into_string().unwrap(), "Foo 5Foo");
    let (status, v) = send(s.admin("GET", "/coffee/_changes?filter=c/filter"), None);
    assert_eq!(
        (status, v["results"].as_array().map(Vec::len)),
        (200, Some(5)),
        "{v}"
    );
    let broken = json!({"language": "coffeescript", "views": {"v": {"map": "(doc) -> emit("}}});
    // Refused on save, as CouchDB refuses a view that does not compile.
    let (status, v) = send(s.admin("PUT", "/coffee/_design/b"), Some(&broken));
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("compilation_error")),
        "{v}"
    );
    assert!(
        v["reason"].as_str().unwrap_or("").contains("CoffeeScript"),
        "{v}"
    );
    let (status, _) = send(s.admin("GET", "/coffee/_design/b"), None);
    assert_eq!(status, 404, "nothing was stored");
}
