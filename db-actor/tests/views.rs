//! Map/reduce views and `validate_doc_update` natively, with the seed
//! guide's design documents and CouchDB 3's documented answers.

mod common;

use common::Db;
use serde_json::{json, Value};
use shared::user::UserCtx;
use shared::view::IndexName;

fn ok(db: &Db, method: &str, url: &str, body: Option<Value>) -> Value {
    let (s, v) = db.json(method, url, body);
    assert!(s < 300, "{method} {url} -> {s} {v}");
    v
}

fn keys(v: &Value) -> Vec<Value> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].clone())
        .collect()
}

fn shop() -> Db {
    let db = Db::new();
    ok(
        &db,
        "PUT",
        "/db/_design/products",
        Some(json!({"views": {
            "by_category": {"map": "function(doc) { if (doc.type === \"product\" && doc.category) { emit(doc.category, doc); } }"},
            "by_price_range": {"map": "function(doc) { if (doc.type === \"product\" && doc.price) { emit(Math.floor(doc.price / 100) * 100, doc); } }"},
            "category_stats": {
                "map": "function(doc) { if (doc.type === \"product\" && doc.category) { emit(doc.category, doc.price); } }",
                "reduce": "function(keys, values, rereduce) { if (rereduce) { var result = { sum: 0, count: 0, min: null, max: null }; for (var i = 0; i < values.length; i++) { result.sum += values[i].sum; result.count += values[i].count; result.min = result.min === null ? values[i].min : Math.min(result.min, values[i].min); result.max = result.max === null ? values[i].max : Math.max(result.max, values[i].max); } return result; } else { return { sum: values.reduce(function(a, b) { return a + b; }, 0), count: values.length, min: Math.min.apply(null, values), max: Math.max.apply(null, values) }; } }"
            },
            "count": {"map": "function(doc) { if (doc.price) emit([doc.category, doc.price], doc.price); }", "reduce": "_count"},
            "sum": {"map": "function(doc) { if (doc.price) emit([doc.category, doc.price], doc.price); }", "reduce": "_sum"},
            "stats": {"map": "function(doc) { if (doc.price) emit(doc.category, doc.price); }", "reduce": "_stats"}
        }})),
    );
    let docs: Vec<Value> = (0..1200)
        .map(|i| {
            let cat = ["Books", "Electronics", "Garden"][i % 3];
            json!({"_id": format!("p{i:04}"), "type": "product", "category": cat, "price": (i % 7) * 50 + 10})
        })
        .collect();
    ok(&db, "POST", "/db/_bulk_docs", Some(json!({"docs": docs})));
    db
}

#[test]
fn seed_guide_views_answer_as_couchdb() {
    let db = shop();
    let v = ok(
        &db,
        "GET",
        "/db/_design/products/_view/by_category?key=%22Electronics%22&limit=2",
        None,
    );
    assert_eq!(v["total_rows"], json!(1200));
    assert_eq!(v["offset"], json!(400));
    assert_eq!(v["rows"][0]["id"], json!("p0001"));
    assert_eq!(v["rows"][0]["value"]["category"], json!("Electronics"));
    let v = ok(
        &db,
        "GET",
        "/db/_design/products/_view/category_stats?group=true",
        None,
    );
    assert_eq!(
        keys(&v),
        vec![json!("Books"), json!("Electronics"), json!("Garden")]
    );
    let books: i64 = (0..1200)
        .filter(|i| i % 3 == 0)
        .map(|i| (i % 7) * 50 + 10)
        .sum();
    assert_eq!(v["rows"][0]["value"]["sum"], json!(books));
    assert_eq!(v["rows"][0]["value"]["count"], json!(400));
    assert_eq!(v["rows"][0]["value"]["min"], json!(10));
    assert_eq!(v["rows"][0]["value"]["max"], json!(310));
    let v = ok(
        &db,
        "GET",
        "/db/_design/products/_view/by_price_range?startkey=100&endkey=200&reduce=false",
        None,
    );
    assert!(keys(&v)
        .iter()
        .all(|k| *k == json!(100) || *k == json!(200)));
}

#[test]
fn builtin_reduces_group_levels_and_ranges() {
    let db = shop();
    let v = ok(&db, "GET", "/db/_design/products/_view/count", None);
    assert_eq!(v, json!({"rows": [{"key": null, "value": 1200}]}));
    let v = ok(
        &db,
        "GET",
        "/db/_design/products/_view/count?group_level=1",
        None,
    );
    assert_eq!(v["rows"][1], json!({"key": ["Electronics"], "value": 400}));
    let v = ok(
        &db,
        "GET",
        "/db/_design/products/_view/sum?group=true&limit=2&skip=1",
        None,
    );
    assert_eq!(v["rows"].as_array().unwrap().len(), 2);
    assert_eq!(v["rows"][0]["key"], json!(["Books", 60]));
    let v = ok(
        &db,
        "GET",
        "/db/_design/products/_view/stats?key=%22Garden%22",
        None,
    );
    assert_eq!(v["rows"][0]["value"]["count"], json!(400));
    // Ranges over compound keys, both directions.
    let v = ok(&db, "GET", "/db/_design/products/_view/count?reduce=false&startkey=%5B%22Books%22%2C300%5D&endkey=%5B%22Electronics%22%5D&inclusive_end=false", None);
    assert!(keys(&v)
        .iter()
        .all(|k| k[0] == json!("Books") && k[1].as_i64().unwrap() >= 300));
    let v = ok(
        &db,
        "GET",
        "/db/_design/products/_view/count?reduce=false&descending=true&limit=1",
        None,
    );
    assert_eq!(v["rows"][0]["key"], json!(["Garden", 310]));
    // keys, in the order given.
    let v = ok(
        &db,
        "POST",
        "/db/_design/products/_view/stats",
        Some(json!({"keys": ["Garden", "Books"], "group": true})),
    );
    assert_eq!(keys(&v), vec![json!("Garden"), json!("Books")]);
    let v = ok(
        &db,
        "POST",
        "/db/_design/products/_view/by_category/queries",
        Some(json!({"queries": [{"key": "Books", "limit": 1}, {"keys": ["Garden"], "limit": 2}]})),
    );
    assert_eq!(v["results"][0]["rows"].as_array().unwrap().len(), 1);
    assert_eq!(v["results"][1]["rows"][1]["key"], json!("Garden"));
    // startkey_docid narrows within equal keys.
    let v = ok(&db, "GET", "/db/_design/products/_view/by_category?startkey=%22Books%22&startkey_docid=p1197&endkey=%22Books%22", None);
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
}

#[test]
fn index_follows_updates_and_deletions() {
    let db = Db::new();
    ok(
        &db,
        "PUT",
        "/db/_design/d",
        Some(json!({"views": {"v": {"map": "function(d) { emit(d.n, null); }"}}})),
    );
    let r = ok(&db, "PUT", "/db/a", Some(json!({"n": 1})));
    ok(&db, "PUT", "/db/b", Some(json!({"n": 2})));
    assert_eq!(
        keys(&ok(&db, "GET", "/db/_design/d/_view/v", None)),
        vec![json!(1), json!(2)]
    );
    ok(&db, "PUT", "/db/a", Some(json!({"n": 3, "_rev": r["rev"]})));
    ok(&db, "PUT", "/db/c", Some(json!({"n": "x"})));
    let v = ok(
        &db,
        "GET",
        "/db/_design/d/_view/v?include_docs=true&update_seq=true",
        None,
    );
    assert_eq!(keys(&v), vec![json!(2), json!(3), json!("x")]);
    assert_eq!(v["rows"][1]["doc"]["n"], json!(3));
    assert!(v["update_seq"].as_str().unwrap().starts_with("5-"));
    let b = ok(&db, "GET", "/db/b", None);
    ok(
        &db,
        "DELETE",
        &format!("/db/b?rev={}", b["_rev"].as_str().unwrap()),
        None,
    );
    // update=false answers from the index as it stands.
    assert_eq!(
        keys(&ok(&db, "GET", "/db/_design/d/_view/v?update=false", None)).len(),
        3
    );
    assert_eq!(
        keys(&ok(&db, "GET", "/db/_design/d/_view/v", None)).len(),
        2
    );
    // Editing the map rebuilds; cleanup drops the old index.
    let d = ok(&db, "GET", "/db/_design/d", None);
    ok(
        &db,
        "PUT",
        "/db/_design/d",
        Some(
            json!({"_rev": d["_rev"], "views": {"v": {"map": "function(d) { emit(String(d.n), 1); }"}}}),
        ),
    );
    assert_eq!(
        keys(&ok(&db, "GET", "/db/_design/d/_view/v", None)),
        vec![json!("3"), json!("x")]
    );
    ok(&db, "POST", "/db/_view_cleanup", None);
    let n = db.engine().store.view_signatures().unwrap().len();
    assert_eq!(n, 1);
}

#[test]
fn view_errors_as_couchdb() {
    let db = shop();
    let compact = |ddoc: &str| {
        db.json("POST", &format!("/db/_compact/{ddoc}"), Some(json!({})))
            .0
    };
    assert_eq!((compact("products"), compact("nope")), (202, 404));
    let err = |url: &str| {
        let (s, v) = db.json("GET", url, None);
        (
            s,
            v["error"].as_str().unwrap().to_string(),
            v["reason"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        err("/db/_design/nope/_view/x"),
        (404, "not_found".into(), "missing".into())
    );
    assert_eq!(
        err("/db/_design/products/_view/x"),
        (404, "not_found".into(), "missing_named_view".into())
    );
    assert_eq!(
        err("/db/_design/products/_view/by_category?reduce=true").1,
        "query_parse_error"
    );
    assert_eq!(
        err("/db/_design/products/_view/by_category?group=true").1,
        "query_parse_error"
    );
    assert_eq!(
        err("/db/_design/products/_view/count?include_docs=true").1,
        "query_parse_error"
    );
    assert_eq!(
        err("/db/_design/products/_view/count?startkey=2&endkey=1").1,
        "query_parse_error"
    );
    assert_eq!(err("/db/_design/products/_view/count?limit=x").0, 400);
}

#[test]
fn a_map_that_throws_skips_the_document_and_hostile_maps_fail_the_request() {
    let db = Db::new();
    ok(&db, "PUT", "/db/a", Some(json!({"x": {"y": 1}})));
    ok(&db, "PUT", "/db/b", Some(json!({})));
    ok(
        &db,
        "PUT",
        "/db/_design/d",
        Some(json!({"views": {
            "throws": {"map": "function(d) { emit(d.x.y, null); }"},
            "loops": {"map": "function(d) { while (true) {} }"},
            "bomb": {"map": "function(d) { var a = []; for (;;) a.push(new Array(1e5).join('x')); }"}
        }})),
    );
    assert_eq!(
        keys(&ok(&db, "GET", "/db/_design/d/_view/throws", None)),
        vec![json!(1)]
    );
    for v in ["loops", "bomb"] {
        let (s, body) = db.json("GET", &format!("/db/_design/d/_view/{v}"), None);
        assert_eq!(
            (s, body["error"].as_str().unwrap()),
            (500, "os_process_error"),
            "{v}"
        );
    }
    // Hostile reduces (JavaScript reduce runs at query time) end the same
    // way; deep recursion throws, which couchjs turns into a null reduction.
    ok(
        &db,
        "PUT",
        "/db/_design/r",
        Some(json!({"views": {
            "loops": {"map": "function(d) { emit(1, 1); }", "reduce": "function(k, v) { while (true) {} }"},
            "bomb": {"map": "function(d) { emit(2, 1); }", "reduce": "function(k, v) { var a = []; for (;;) a.push(new Array(1e5).join('x')); }"},
            "deep": {"map": "function(d) { emit(3, 1); }", "reduce": "function(k, v) { function f(n) { return f(n + 1) + 1; } return f(0); }"},
            "regex": {"map": "function(d) { emit(4, 1); }", "reduce": "function(k, v) { return /^(a+)+$/.test('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'); }"}
        }})),
    );
    for (v, status, error) in [
        ("loops", 500, "os_process_error"),
        ("bomb", 500, "os_process_error"),
        ("regex", 500, "os_process_error"),
    ] {
        let (s, body) = db.json("GET", &format!("/db/_design/r/_view/{v}"), None);
        assert_eq!(
            (s, body["error"].as_str().unwrap()),
            (status, error),
            "{v}: {body}"
        );
    }
    let deep = ok(&db, "GET", "/db/_design/r/_view/deep", None);
    assert_eq!(deep["rows"][0]["value"], json!(null), "{deep}");
    // The database serves the next request.
    assert_eq!(
        keys(&ok(&db, "GET", "/db/_design/d/_view/throws", None)),
        vec![json!(1)]
    );
}

/// The design sequence is kept between requests (as the actor keeps it):
/// a design document written, changed or deleted by one request rules
/// the next request's writes.
#[test]
fn a_new_or_deleted_validate_doc_update_rules_the_next_write() {
    let db = Db::new();
    ok(&db, "PUT", "/db/before", Some(json!({"x": 1})));
    let vdu = |reason: &str| {
        json!({"validate_doc_update":
            format!("function(newDoc) {{ if (!newDoc._deleted && !newDoc.ok) throw({{forbidden: '{reason}'}}); }}")})
    };
    let put = ok(&db, "PUT", "/db/_design/v", Some(vdu("first")));
    let refused = |reason: &str| {
        let (s, v) = db.json("PUT", "/db/doc", Some(json!({"x": 1})));
        assert_eq!((s, v["reason"].as_str()), (403, Some(reason)), "{v}");
    };
    refused("first");
    let put = ok(
        &db,
        "PUT",
        &format!("/db/_design/v?rev={}", put["rev"].as_str().unwrap()),
        Some(vdu("second")),
    );
    refused("second");
    ok(
        &db,
        "DELETE",
        &format!("/db/_design/v?rev={}", put["rev"].as_str().unwrap()),
        None,
    );
    ok(&db, "PUT", "/db/doc", Some(json!({"x": 1})));
}

#[test]
fn validate_doc_update_guards_every_write() {
    let db = Db::new();
    ok(
        &db,
        "PUT",
        "/db/_security",
        Some(json!({"members": {"names": ["bob"]}, "admins": {}})),
    );
    ok(
        &db,
        "PUT",
        "/db/_design/v",
        Some(json!({"validate_doc_update":
        "function(newDoc, oldDoc, userCtx, secObj) { if (!newDoc.title && !newDoc._deleted) throw({forbidden: 'title required'}); if (newDoc.owner && newDoc.owner !== userCtx.name) throw({unauthorized: 'not yours'}); if (newDoc.loop) while (true) {} if (oldDoc && oldDoc.locked) throw({forbidden: 'locked ' + secObj.members.names[0]}); }"})),
    );
    let bob = UserCtx {
        name: Some("bob".into()),
        roles: vec![],
    };
    let (s, v) = db.as_user(&bob, "PUT", "/db/a", Some(json!({"x": 1})));
    assert_eq!(
        (
            s,
            v["error"].as_str().unwrap(),
            v["reason"].as_str().unwrap()
        ),
        (403, "forbidden", "title required")
    );
    let (s, _) = db.as_user(
        &bob,
        "PUT",
        "/db/a",
        Some(json!({"title": "t", "owner": "eve"})),
    );
    assert_eq!(s, 401);
    let (s, v) = db.as_user(
        &bob,
        "PUT",
        "/db/a",
        Some(json!({"title": "t", "locked": true})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = db.as_user(
        &bob,
        "PUT",
        "/db/a",
        Some(json!({"title": "u", "_rev": v["rev"]})),
    );
    assert_eq!((s, v["reason"].as_str().unwrap()), (403, "locked bob"));
    let (s, v) = db.as_user(
        &bob,
        "PUT",
        "/db/b",
        Some(json!({"title": "t", "loop": true})),
    );
    assert_eq!((s, v["error"].as_str().unwrap()), (500, "os_process_error"));
    // Per document in _bulk_docs, replicated writes included.
    let (s, v) = db.as_user(
        &bob,
        "POST",
        "/db/_bulk_docs",
        Some(json!({"docs": [{"_id": "c", "title": "ok"}, {"_id": "d"}]})),
    );
    assert_eq!(s, 201);
    assert_eq!(v[0]["ok"], json!(true));
    assert_eq!(v[1]["error"], json!("forbidden"));
    let (_, v) = db.as_user(
        &bob,
        "POST",
        "/db/_bulk_docs",
        Some(json!({"new_edits": false, "docs": [{"_id": "e", "_rev": "1-abc"}]})),
    );
    assert_eq!(v[0]["error"], json!("forbidden"), "{v}");
    // Nothing was lost or half-written.
    assert_eq!(db.json("GET", "/db/d", None).0, 404);
    assert_eq!(ok(&db, "GET", "/db/c", None)["title"], json!("ok"));
    // Validators are cached between writes: editing or deleting the design
    // document takes effect on the next write.
    let ddoc = ok(&db, "GET", "/db/_design/v", None);
    let strict = json!({"_rev": ddoc["_rev"], "validate_doc_update": "function(n) { if (!n.strict) throw({forbidden: 'strict only'}); }"});
    let v = ok(&db, "PUT", "/db/_design/v", Some(strict));
    let (s, e) = db.as_user(&bob, "PUT", "/db/f", Some(json!({"title": "t"})));
    assert_eq!((s, e["reason"].as_str()), (403, Some("strict only")));
    let rev = v["rev"].as_str().unwrap().to_string();
    ok(&db, "DELETE", &format!("/db/_design/v?rev={rev}"), None);
    let (s, _) = db.as_user(&bob, "PUT", "/db/f", Some(json!({})));
    assert_eq!(s, 201);
    // Within one `_bulk_docs`, a design document applies to the documents
    // after it (its validator is read anew once it is written), in both
    // directions: added, then removed again.
    let bulk = |docs: Value| {
        let (s, v) = db.json("POST", "/db/_bulk_docs", Some(json!({ "docs": docs })));
        assert_eq!(s, 201, "{v}");
        let outcome: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["error"].as_str().unwrap_or("ok").to_string())
            .collect();
        (outcome, v)
    };
    let (outcome, v) = bulk(json!([
        {"_id": "g1"},
        {"_id": "_design/w", "validate_doc_update": "function(n) { if (!n.w) throw({forbidden: 'w'}); }"},
        {"_id": "g2"},
        {"_id": "g3", "w": 1}
    ]));
    assert_eq!(outcome, ["ok", "ok", "forbidden", "ok"], "{v}");
    let rev = v[1]["rev"].as_str().unwrap();
    let (outcome, v) = bulk(json!([
        {"_id": "g4"},
        {"_id": "_design/w", "_rev": rev, "_deleted": true},
        {"_id": "g5"}
    ]));
    assert_eq!(outcome, ["forbidden", "ok", "ok"], "{v}");
}

#[test]
fn changes_filters_run_javascript() {
    let db = Db::new();
    ok(
        &db,
        "PUT",
        "/db/_design/f",
        Some(json!({
            "filters": {
                "typed": "function(doc, req) { return doc.type === req.query.type; }",
                "gone": "function(doc, req) { return doc._deleted; }",
                "loops": "function(doc, req) { while (true) {} }"
            },
            "views": {"odd": {"map": "function(doc) { if (doc.n % 2) emit(doc.n, null); }"}}
        })),
    );
    for i in 0..6 {
        ok(
            &db,
            "PUT",
            &format!("/db/d{i}"),
            Some(json!({"n": i, "type": if i < 2 { "a" } else { "b" }})),
        );
    }
    let r = ok(&db, "GET", "/db/d5", None);
    ok(
        &db,
        "DELETE",
        &format!("/db/d5?rev={}", r["_rev"].as_str().unwrap()),
        None,
    );
    let ids = common::change_ids;
    assert_eq!(
        ids(&ok(&db, "GET", "/db/_changes?filter=f/typed&type=a", None)),
        ["d0", "d1"]
    );
    assert_eq!(
        ids(&ok(&db, "GET", "/db/_changes?filter=f/gone", None)),
        ["d5"]
    );
    assert_eq!(
        ids(&ok(
            &db,
            "GET",
            "/db/_changes?filter=_view&view=f/odd",
            None
        )),
        ["d1", "d3"]
    );
    let (s, v) = db.json("GET", "/db/_changes?filter=f/loops", None);
    assert_eq!((s, v["error"].as_str().unwrap()), (500, "os_process_error"));
    assert_eq!(db.json("GET", "/db/_changes?filter=f/nope", None).0, 404);
    assert_eq!(db.json("GET", "/db/_changes?filter=nope/x", None).0, 404);
    assert_eq!(db.json("GET", "/db/_changes?filter=bad", None).0, 400);
}

#[test]
fn update_handlers_write_and_answer() {
    let db = Db::new();
    ok(
        &db,
        "PUT",
        "/db/_design/u",
        Some(json!({
            "updates": {
                "stamp": "function(doc, req) { if (!doc) { if (req.id) return [{_id: req.id, count: 1}, 'created']; return [null, {code: 400, json: {error: 'no id'}}]; } doc.count += 1; doc.by = req.query.by; return [doc, {json: {count: doc.count}}]; }",
                "echo": "function(doc, req) { return [null, {body: req.form.a + ':' + req.method, headers: {'X-Thing': 'yes'}}]; }",
                "loops": "function(doc, req) { while (true) {} }",
                "bad": "function(doc, req) { return [{title: 1}, 'x']; }"
            },
            "validate_doc_update": "function(n) { if (n.count > 2) throw({forbidden: 'too many'}); }"
        })),
    );
    let r = db.request(
        shared::http::Request::new("PUT", "/db/_design/u/_update/stamp/a", "")
            .with_header("content-type", "application/json"),
    );
    assert_eq!((r.status, r.body.as_slice()), (201, b"created".as_slice()));
    assert_eq!(r.header("x-couch-id"), Some("a"));
    assert!(r.header("x-couch-update-newrev").unwrap().starts_with("1-"));
    let (s, v) = db.json("POST", "/db/_design/u/_update/stamp/a?by=me", None);
    assert_eq!((s, v), (201, json!({"count": 2})));
    assert_eq!(ok(&db, "GET", "/db/a", None)["by"], json!("me"));
    // validate_doc_update applies to handler writes too.
    assert_eq!(
        db.json("POST", "/db/_design/u/_update/stamp/a", None).0,
        403
    );
    assert_eq!(db.json("POST", "/db/_design/u/_update/stamp", None).0, 400);
    let r = db.request(
        shared::http::Request::new("POST", "/db/_design/u/_update/echo", "")
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body("a=1&b=2"),
    );
    assert_eq!((r.status, r.body.as_slice()), (200, b"1:POST".as_slice()));
    assert_eq!(r.header("x-thing"), Some("yes"));
    let (s, v) = db.json("POST", "/db/_design/u/_update/loops", None);
    assert_eq!((s, v["error"].as_str().unwrap()), (500, "os_process_error"));
    assert_eq!(db.json("POST", "/db/_design/u/_update/bad", None).0, 400);
    assert_eq!(db.json("POST", "/db/_design/u/_update/nope", None).0, 404);
    assert_eq!(db.json("GET", "/db/_design/u/_update/echo", None).0, 405);
}

#[test]
fn background_refresh_builds_every_view_but_autoupdate_false() {
    let db = Db::new();
    ok(
        &db,
        "PUT",
        "/db/_design/on",
        Some(json!({"views": {"v": {"map": "function(d) { emit(d.n, null); }"}}})),
    );
    ok(
        &db,
        "PUT",
        "/db/_design/off",
        Some(
            json!({"autoupdate": false, "views": {"v": {"map": "function(d) { emit(d.n, 1); }"}}}),
        ),
    );
    ok(
        &db,
        "PUT",
        "/db/_design/bad",
        Some(json!({"views": {"v": {"map": "function(d) { while (true) {} }"}}})),
    );
    ok(&db, "PUT", "/db/a", Some(json!({"n": 1})));
    let round = db.engine().refresh_views(&[]).unwrap();
    assert_eq!(round.failures.len(), 1, "{:?}", round.failures);
    assert!(round.unfinished.is_empty());
    assert_eq!(
        keys(&ok(&db, "GET", "/db/_design/on/_view/v?update=false", None)),
        vec![json!(1)]
    );
    assert!(keys(&ok(
        &db,
        "GET",
        "/db/_design/off/_view/v?update=false",
        None
    ))
    .is_empty());
}

/// A build larger than one invocation's budget fails the query with
/// `timeout` (the actor then waits for its alarm) and continues round by
/// round, each within the budget, to the same answer.
#[test]
fn large_builds_continue_in_rounds() {
    let mut db = shop();
    db.limits.view_build_batch = 100;
    let (s, v) = db.json(
        "GET",
        "/db/_design/products/_view/count?reduce=false&limit=1",
        None,
    );
    assert_eq!((s, v["error"].as_str()), (500, Some("timeout")), "{v}");
    let wanted = vec![IndexName::view("products", "count")];
    let mut rounds = 0;
    let info_seq = || {
        ok(&db, "GET", "/db/_design/products/_info", None)["view_index"]["update_seq"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(info_seq(), 0);
    loop {
        let round = db.engine().refresh_views(&wanted).unwrap();
        assert!(round.failures.is_empty(), "{:?}", round.failures);
        rounds += 1;
        if !round.unfinished.iter().any(|(v, _)| v == &wanted[0]) {
            break;
        }
        assert!(rounds < 100, "no progress");
    }
    // 1,201 documents (the design document too) at 100 per round.
    assert!(rounds >= 12, "{rounds} rounds");
    let v = ok(&db, "GET", "/db/_design/products/_view/count", None);
    assert_eq!(v["rows"][0]["value"], json!(1200));
    // An unknown view is reported, not fatal.
    let missing = vec![IndexName::view("products", "nope")];
    let round = db.engine().refresh_views(&missing).unwrap();
    assert_eq!(round.failures.len(), 1);
    // Rounds with no view wanted build the others, in the background.
    loop {
        let round = db.engine().refresh_views(&[]).unwrap();
        assert!(round.failures.is_empty(), "{:?}", round.failures);
        if round.unfinished.is_empty() {
            break;
        }
        rounds += 1;
        assert!(rounds < 200, "no progress");
    }
    let v = ok(
        &db,
        "GET",
        "/db/_design/products/_view/stats?group=true",
        None,
    );
    assert_eq!(v["rows"].as_array().unwrap().len(), 3);
    // Every view of the design document is built: `_info` says how far.
    assert_eq!(info_seq(), 1201);
}

fn text(r: &shared::http::Response) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

fn content_type(r: &shared::http::Response) -> String {
    r.headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Show and list functions as CouchDB runs them: documents and view rows
/// rendered by JavaScript, `provides` choosing by `format` or Accept.
#[test]
fn show_and_list_functions_render() {
    let db = shop();
    ok(
        &db,
        "PUT",
        "/db/_design/render",
        Some(json!({
            "shows": {
                "item": "function(doc, req) { if (!doc) return {code: 404, body: 'no item ' + (req.id || '')}; return '<h1>' + doc.category + ' ' + doc.price + '</h1>'; }",
                "multi": "function(doc, req) { provides('json', function() { return {json: {id: doc._id, q: req.query.x}}; }); provides('html', function() { return '<p>' + doc._id + '</p>'; }); }",
                "loop": "function(doc) { for (;;) {} }",
                "deny": "function(doc) { throw({forbidden: 'not for you'}); }"
            },
            "lists": {
                "ul": "function(head, req) { start({headers: {'Content-Type': 'text/html'}}); send('<ul total=' + head.total_rows + '>'); var row; while ((row = getRow())) { send('<li>' + row.key + '=' + row.value + '</li>'); } return '</ul>'; }",
                "csv": "function(head, req) { provides('csv', function() { var row, out = ''; while ((row = getRow())) out += row.key + ',' + row.value + '\\n'; return out; }); }",
                "count": "function(head, req) { var n = 0; while (getRow()) n++; send(JSON.stringify({rows: n, offset: head.offset})); }"
            },
            "views": {"by_price": {"map": "function(doc) { if (doc.price) emit(doc.price, doc.category); }", "reduce": "_count"}}
        })),
    );
    let r = db.call("GET", "/db/_design/render/_show/item/p0001", None);
    assert_eq!(r.status, 200);
    assert_eq!(text(&r), "<h1>Electronics 60</h1>");
    assert_eq!(content_type(&r), "text/html; charset=utf-8");
    let r = db.call("GET", "/db/_design/render/_show/item/nope", None);
    assert_eq!((r.status, text(&r)), (404, "no item nope".into()));
    let r = db.call("GET", "/db/_design/render/_show/item", None);
    assert_eq!(r.status, 404);

    let r = db.call("GET", "/db/_design/render/_show/multi/p0002?x=7", None);
    assert_eq!(
        content_type(&r),
        "application/json",
        "first provided for */*"
    );
    assert_eq!(r.json_body(), json!({"id": "p0002", "q": "7"}));
    let req = shared::http::Request::new("GET", "/db/_design/render/_show/multi/p0002", "")
        .with_header("accept", "text/html,application/xhtml+xml;q=0.9");
    let r = db.request(req);
    assert_eq!(
        (text(&r), content_type(&r)),
        ("<p>p0002</p>".into(), "text/html; charset=utf-8".into())
    );
    let r = db.call(
        "GET",
        "/db/_design/render/_show/multi/p0002?format=html",
        None,
    );
    assert_eq!(text(&r), "<p>p0002</p>");
    let req = shared::http::Request::new("GET", "/db/_design/render/_show/multi/p0002", "")
        .with_header("accept", "image/png");
    assert_eq!(db.request(req).status, 406);

    let (s, v) = db.json("GET", "/db/_design/render/_show/loop/p0001", None);
    assert_eq!(
        (s, v["error"].as_str()),
        (500, Some("os_process_error")),
        "{v}"
    );
    let (s, v) = db.json("GET", "/db/_design/render/_show/deny/p0001", None);
    assert_eq!((s, v["reason"].as_str()), (403, Some("not for you")));
    let (s, v) = db.json("GET", "/db/_design/render/_show/none", None);
    assert_eq!(s, 404, "{v}");

    let r = db.call(
        "GET",
        "/db/_design/render/_list/ul/by_price?reduce=false&startkey=300&endkey=310&limit=2",
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "text/html");
    assert_eq!(
        text(&r),
        "<ul total=1200><li>310=Books</li><li>310=Electronics</li></ul>"
    );
    let r = db.call(
        "GET",
        "/db/_design/render/_list/csv/by_price?group=true&format=csv",
        None,
    );
    assert_eq!(content_type(&r), "text/csv");
    assert_eq!(text(&r).lines().count(), 7);
    assert!(text(&r).starts_with("10,172\n"), "{}", text(&r));
    // A list over another design document's view, and POSTed keys.
    let r = db.call(
        "POST",
        "/db/_design/render/_list/count/products/by_category",
        Some(json!({"keys": ["Books", "Garden"]})),
    );
    assert_eq!(r.json_body(), json!({"rows": 800, "offset": 0}));
    let (s, v) = db.json("GET", "/db/_design/render/_list/nope/by_price", None);
    assert_eq!((s, v["error"].as_str()), (404, Some("not_found")), "{v}");
    let (s, _) = db.json("GET", "/db/_design/render/_list/ul/nope", None);
    assert_eq!(s, 404);
    let (s, _) = db.json("GET", "/db/_design/render/_rewrite/x", None);
    assert_eq!(s, 501);
}

/// One document's rows with equal keys come in Erlang's term order of
/// their values (numbers, atoms, objects, arrays, strings), as CouchDB's
/// view updater sorts them, not in emit order or view collation.
#[test]
fn equal_keys_of_one_document_sort_by_erlang_term_order() {
    let db = Db::new();
    let map = "function(doc) { emit(1, 'str'); emit(1, [1]); emit(1, {a: 1}); emit(1, null); emit(1, 2); }";
    db.put("_design/d", json!({"views": {"v": {"map": map}}}));
    db.put("doc", json!({}));
    let rows = ok(&db, "GET", "/db/_design/d/_view/v", None)["rows"].clone();
    let values: Vec<Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].clone())
        .collect();
    assert_eq!(
        values,
        [
            json!(2),
            json!(null),
            json!({"a": 1}),
            json!([1]),
            json!("str")
        ]
    );
}

/// Design documents are checked when saved, as CouchDB 3 checks them: the
/// fields' types, a map in every view, and views' functions that compile.
/// A refused one leaves the stored design document as it was.
#[test]
fn broken_design_documents_are_refused_on_save() {
    let db = Db::new();
    let good =
        json!({"views": {"v": {"map": "function(d) { emit(d._id, 1); }", "reduce": "_sum"}}});
    ok(&db, "PUT", "/db/_design/d", Some(good));
    let (_, stored) = db.json("GET", "/db/_design/d", None);
    let rev = stored["_rev"].as_str().unwrap().to_string();
    let cases = [
        (
            json!({"views": "x"}),
            400,
            "invalid_design_doc",
            "`views` field must have object type",
        ),
        (
            json!({"views": {"v": {"map": 1}}}),
            400,
            "invalid_design_doc",
            "`views.v.map`",
        ),
        (
            json!({"language": 1}),
            400,
            "invalid_design_doc",
            "`language`",
        ),
        (
            json!({"views": {"v": {"reduce": "_sum"}}}),
            400,
            "invalid_design_doc",
            "must contain map",
        ),
        (
            json!({"views": {"v": {"map": "function(d) { emit(1); }", "reduce": "_median"}}}),
            400,
            "invalid_design_doc",
            "`_median` is not a supported reduce function.",
        ),
        (
            json!({"views": {"v": {"map": "function(d) {"}}}),
            400,
            "compilation_error",
            "map of view v",
        ),
        (
            json!({"views": {"v": {"map": "function(d) { emit(1); }", "reduce": "function(k, v) { return"}}}),
            400,
            "compilation_error",
            "reduce of view v",
        ),
        (
            json!({"views": {"v": {"map": "42"}}}),
            400,
            "compilation_error",
            "",
        ),
        (
            json!({"language": "coffeescript", "views": {"v": {"map": "(doc) -> emit("}}}),
            400,
            "compilation_error",
            "",
        ),
    ];
    for (body, status, error, reason) in cases {
        let mut body = body;
        body["_rev"] = json!(rev);
        let (s, e) = db.json("PUT", "/db/_design/d", Some(body.clone()));
        assert_eq!(
            (s, e["error"].as_str().unwrap_or("")),
            (status, error),
            "{body}"
        );
        assert!(
            e["reason"].as_str().unwrap().contains(reason),
            "{body}: {e}"
        );
        // In _bulk_docs it is that document's error.
        let (s, rows) = db.json("POST", "/db/_bulk_docs", Some(json!({"docs": [
            {"_id": "_design/d", "_rev": rev, "views": body["views"].clone(), "language": body.get("language").cloned().unwrap_or(json!("javascript"))}
        ]})));
        assert_eq!((s, rows[0]["error"].as_str()), (201, Some(error)), "{body}");
    }
    let (_, after) = db.json("GET", "/db/_design/d", None);
    assert_eq!(after["_rev"], json!(rev), "nothing was written");
    // Mango's (language "query") and other languages' design documents are
    // kept, as CouchDB keeps them; a deleted design document needs no views.
    let mango = json!({"language": "query", "views": {"i": {"map": {"fields": {"a": "asc"}}, "reduce": "_count", "options": {"def": {"fields": ["a"]}}}}});
    ok(&db, "PUT", "/db/_design/m", Some(mango));
    ok(
        &db,
        "PUT",
        "/db/_design/py",
        Some(json!({"language": "python", "views": {"v": {"map": "def f(doc): pass"}}})),
    );
    let (s, _) = db.json("DELETE", &format!("/db/_design/d?rev={rev}"), None);
    assert_eq!(s, 200);
}

/// `total_rows` comes from a row count kept with the index: through
/// updates that change how many rows a document emits, deletions and
/// recreations it stays equal to the rows the view really holds.
#[test]
fn total_rows_follows_every_change_of_the_index() {
    let db = Db::new();
    ok(
        &db,
        "PUT",
        "/db/_design/t",
        Some(
            json!({"views": {"v": {"map": "function(d) { for (var i = 0; i < d.k; i++) emit(i, null); }"}}}),
        ),
    );
    let check = |what: &str| {
        let v = ok(&db, "GET", "/db/_design/t/_view/v", None);
        let rows = v["rows"].as_array().unwrap().len();
        assert_eq!(v["total_rows"], json!(rows), "{what}");
        let v = ok(&db, "GET", "/db/_design/t/_view/v?limit=1", None);
        assert_eq!(v["total_rows"], json!(rows), "{what}, limit=1");
        rows
    };
    let mut revs = Vec::new();
    for i in 0..150 {
        revs.push(db.put(&format!("d{i}"), json!({"k": i % 4})));
    }
    assert_eq!(check("built"), (0..150).map(|i| i % 4).sum::<usize>());
    let mut docs = Vec::new();
    for (i, rev) in revs.iter().enumerate().take(120) {
        docs.push(match i % 3 {
            0 => json!({"_id": format!("d{i}"), "_rev": rev, "k": 5}),
            1 => json!({"_id": format!("d{i}"), "_rev": rev, "_deleted": true}),
            _ => json!({"_id": format!("d{i}"), "_rev": rev, "k": 0}),
        });
    }
    let (s, _) = db.json("POST", "/db/_bulk_docs", Some(json!({ "docs": docs })));
    assert_eq!(s, 201);
    check("after updates and deletions");
    db.put("d1", json!({"k": 3}));
    db.put("new", json!({"k": 2}));
    let n = check("after a recreation");
    // A view with the same map, built from nothing, agrees.
    ok(
        &db,
        "PUT",
        "/db/_design/u",
        Some(
            json!({"views": {"v": {"map": "function(d) { for (var i = 0; i < d.k; i++) emit(i, null); } // u"}}}),
        ),
    );
    let fresh = ok(&db, "GET", "/db/_design/u/_view/v?limit=0", None);
    assert_eq!(fresh["total_rows"], json!(n));
}

/// A grouped reduce over a bounded range of more rows than one scan page
/// (5,000) reads every group once: pages resume after the last row read,
/// with and without a start document id, in both directions.
#[test]
fn bounded_group_scans_span_many_pages() {
    let db = Db::new();
    let docs: Vec<Value> = (0..12_000)
        .map(|i| json!({"_id": format!("d{i:05}"), "g": i % 40}))
        .collect();
    let (s, _) = db.json("POST", "/db/_bulk_docs", Some(json!({ "docs": docs })));
    assert_eq!(s, 201);
    db.put(
        "_design/p",
        json!({"views": {"g": {"map": "function (doc) { emit(doc.g, 1); }", "reduce": "_approx_count_distinct"},
                         "c": {"map": "function (doc) { emit(doc.g, 1); }", "reduce": "function (k, v, re) { return sum(v); }"}}}),
    );
    for (query, first, last, groups) in [
        ("startkey=3&endkey=37", 3, 37, 35),
        ("startkey=3&startkey_docid=d06003&endkey=37", 3, 37, 35),
        ("descending=true&startkey=36&endkey=2", 36, 2, 35),
        (
            "descending=true&startkey=36&startkey_docid=d05996&endkey=2",
            36,
            2,
            35,
        ),
    ] {
        let (s, v) = db.json(
            "GET",
            &format!("/db/_design/p/_view/c?group=true&{query}"),
            None,
        );
        assert_eq!(s, 200, "{v}");
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), groups, "{query}");
        assert_eq!(rows[0]["key"], json!(first), "{query}");
        assert_eq!(rows[groups - 1]["key"], json!(last), "{query}");
        let total: u64 = rows.iter().map(|r| r["value"].as_u64().unwrap()).sum();
        // 300 rows per group; a start document id leaves out the first
        // group's rows before it (d06003 is the 151st of group 3's ids,
        // d05996 the 150th of group 36's, from the end).
        let skipped = if query.contains("docid") { 150 } else { 0 };
        assert_eq!(total, groups as u64 * 300 - skipped, "{query}");
        let (_, v) = db.json(
            "GET",
            &format!("/db/_design/p/_view/g?group_level=0&{query}"),
            None,
        );
        assert_eq!(v["rows"][0]["value"], json!(groups), "{query}");
    }
}

/// A row whose JSON batch text would pass the platform's 2 MB per value
/// (its key twice, as hex and as JSON) is written with its values bound.
#[test]
fn a_row_too_long_for_a_json_batch_is_still_indexed() {
    let db = Db::new();
    let big = "k".repeat(700_000);
    ok(&db, "PUT", "/db/big", Some(json!({"s": big})));
    ok(&db, "PUT", "/db/small", Some(json!({"s": "a"})));
    ok(
        &db,
        "PUT",
        "/db/_design/d",
        Some(
            json!({"views": {"v": {"map": "function (doc) { emit(doc.s, doc.s.length); }", "reduce": "_count"}}}),
        ),
    );
    let v = ok(&db, "GET", "/db/_design/d/_view/v?reduce=false", None);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", v["total_rows"]);
    assert_eq!(rows[1]["id"], "big");
    assert_eq!(rows[1]["key"].as_str().map(str::len), Some(700_000));
    assert_eq!(
        ok(&db, "GET", "/db/_design/d/_view/v", None)["rows"][0]["value"],
        json!(2)
    );
}
