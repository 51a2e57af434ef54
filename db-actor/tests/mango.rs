//! Mango (`_find`, `_index`, `_explain`) natively, against CouchDB 3's
//! documented behaviour.

mod common;

use common::{found_ids as ids, Db};
use serde_json::{json, Value};
use shared::collate::compare;
use shared::user::UserCtx;
use std::cmp::Ordering;
use std::collections::HashSet;

fn find(db: &Db, q: Value) -> Value {
    let (s, v) = db.json("POST", "/db/_find", Some(q.clone()));
    assert_eq!(s, 200, "{q} -> {v}");
    v
}

fn find_err(db: &Db, q: Value) -> (u16, String) {
    let (s, v) = db.json("POST", "/db/_find", Some(q));
    (s, v["error"].as_str().unwrap_or_default().to_string())
}

fn index(db: &Db, body: Value) -> Value {
    let (s, v) = db.json("POST", "/db/_index", Some(body));
    assert_eq!(s, 200, "{v}");
    v
}

fn bulk(db: &Db, docs: Vec<Value>) {
    for chunk in docs.chunks(1000) {
        let (s, v) = db.json("POST", "/db/_bulk_docs", Some(json!({"docs": chunk})));
        assert_eq!(s, 201, "{v}");
    }
}

/// Products with a type, a price (some missing, some strings), a name.
fn products(db: &Db) {
    let docs: Vec<Value> = (0..60)
        .map(|i| {
            let mut d = json!({
                "_id": format!("p{i:03}"),
                "type": if i % 3 == 0 { "book" } else { "toy" },
                "name": format!("item {}", (i * 7) % 60),
                "tags": [i % 2, "x"],
            });
            match i % 10 {
                9 => {}
                8 => d["price"] = json!(format!("{i}")),
                _ => d["price"] = json!((i * 37) % 100),
            }
            d
        })
        .collect();
    bulk(db, docs);
}

#[test]
fn find_requires_a_valid_request() {
    let db = Db::new();
    assert_eq!(
        find_err(&db, json!({})),
        (400, "missing_required_key".into())
    );
    assert_eq!(
        find_err(&db, json!({"selector": {"a": {"$bad": 1}}})),
        (400, "invalid_operator".into())
    );
    assert_eq!(
        find_err(&db, json!({"selector": []})),
        (400, "invalid_selector_json".into())
    );
    assert_eq!(
        find_err(&db, json!({"selector": {}, "sort": [{"a": "sideways"}]})),
        (400, "invalid_sort_dir".into())
    );
    assert_eq!(
        find_err(&db, json!({"selector": {}, "use_index": 5})),
        (400, "invalid_index_name".into())
    );
    let (s, v) = db.json(
        "POST",
        "/db/_find",
        Some(json!({"selector": {"a": 1}, "sort": ["a"]})),
    );
    assert_eq!(
        (s, v),
        (
            400,
            json!({"error": "no_usable_index", "reason": "No index exists for this sort, try indexing by the sort fields."})
        )
    );
    assert_eq!(db.json("GET", "/db/_find", None).0, 405);
}

#[test]
fn find_without_index_scans_all_docs() {
    let db = Db::new();
    products(&db);
    let v = find(
        &db,
        json!({"selector": {"type": "book", "price": {"$gte": 50}}, "execution_stats": true}),
    );
    let got = ids(&v);
    assert!(!got.is_empty());
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted, "_all_docs order");
    for d in v["docs"].as_array().unwrap() {
        assert_eq!(d["type"], "book");
        assert_ne!(compare(&d["price"], &json!(50)), Ordering::Less);
        assert!(d["_rev"].is_string());
    }
    assert_eq!(
        v["warning"],
        "No matching index found, create an index to optimize query time."
    );
    let st = &v["execution_stats"];
    assert_eq!(st["total_docs_examined"], 60);
    assert_eq!(st["results_returned"], got.len());
    assert_eq!(st["total_quorum_docs_examined"], 0);
    assert!(st["execution_time_ms"].is_number());
    // _id ranges narrow the scan.
    let v = find(
        &db,
        json!({"selector": {"_id": {"$gt": "p010", "$lte": "p015"}}, "execution_stats": true, "sort": [{"_id": "desc"}]}),
    );
    assert_eq!(ids(&v), ["p015", "p014", "p013", "p012", "p011"]);
    assert_eq!(v["execution_stats"]["total_docs_examined"], 5);
}

#[test]
fn options_fields_limit_skip_conflicts() {
    let db = Db::new();
    products(&db);
    let v = find(
        &db,
        json!({"selector": {"type": "toy"}, "fields": ["_id", "name", "tags.0"], "limit": 3, "skip": 2}),
    );
    assert_eq!(
        v["docs"],
        json!([
            {"_id": "p004", "name": "item 28", "tags": {"0": 0}},
            {"_id": "p005", "name": "item 35", "tags": {"0": 1}},
            {"_id": "p007", "name": "item 49", "tags": {"0": 1}},
        ])
    );
    assert_eq!(
        find(&db, json!({"selector": {}}))
            .get("docs")
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        25,
        "default limit"
    );
    assert_eq!(
        ids(&find(&db, json!({"selector": {}, "limit": 0}))).len(),
        0
    );
    // conflicts
    let (s, _) = db.json(
        "POST",
        "/db/_bulk_docs",
        Some(json!({"new_edits": false, "docs": [{"_id": "p001", "_rev": "1-abc", "type": "toy", "price": 1}]})),
    );
    assert_eq!(s, 201);
    let v = find(&db, json!({"selector": {"_id": "p001"}, "conflicts": true}));
    assert_eq!(v["docs"][0]["_conflicts"].as_array().unwrap().len(), 1);
    let v = find(&db, json!({"selector": {"_id": "p001"}}));
    assert!(v["docs"][0].get("_conflicts").is_none());
    for opt in [
        json!({"r": 2}),
        json!({"stable": true}),
        json!({"update": false}),
        json!({"stale": "ok"}),
    ] {
        let mut q = json!({"selector": {"_id": "p001"}});
        q.as_object_mut()
            .unwrap()
            .extend(opt.as_object().unwrap().clone());
        assert_eq!(ids(&find(&db, q)), ["p001"]);
    }
}

#[test]
fn index_lifecycle_as_couchdb_stores_it() {
    let db = Db::new();
    let (s, v) = db.json("GET", "/db/_index", None);
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"total_rows": 1, "indexes": [{"ddoc": null, "name": "_all_docs", "type": "special", "def": {"fields": [{"_id": "asc"}]}}]})
    );
    let body = json!({"index": {"fields": ["type", {"price": "asc"}]}, "name": "tp", "ddoc": "shop", "type": "json"});
    assert_eq!(
        index(&db, body.clone()),
        json!({"result": "created", "id": "_design/shop", "name": "tp"})
    );
    assert_eq!(
        index(&db, body),
        json!({"result": "exists", "id": "_design/shop", "name": "tp"})
    );
    let (_, ddoc) = db.json("GET", "/db/_design/shop", None);
    assert_eq!(ddoc["language"], "query");
    assert_eq!(
        ddoc["views"]["tp"],
        json!({
            "map": {"fields": {"type": "asc", "price": "asc"}, "partial_filter_selector": {}},
            "reduce": "_count",
            // The definition as given, as mango_idx_view keeps it.
            "options": {"def": {"fields": ["type", {"price": "asc"}]}},
        })
    );
    let auto = index(&db, json!({"index": {"fields": ["name"]}}));
    assert_eq!(auto["result"], "created");
    // The same fields under another name get their own design document.
    let named = index(
        &db,
        json!({"index": {"fields": ["name"]}, "name": "by-name"}),
    );
    assert_eq!(named["result"], "created");
    assert_ne!(named["id"], auto["id"]);
    assert_eq!(
        db.json(
            "DELETE",
            &format!("/db/_index/{}/json/by-name", named["id"].as_str().unwrap()),
            None
        )
        .0,
        200
    );
    let id = auto["id"].as_str().unwrap();
    assert!(id.starts_with("_design/") && id.len() == 48, "{id}");
    assert_eq!(auto["name"].as_str().unwrap(), &id[8..]);
    let (_, list) = db.json("GET", "/db/_index", None);
    assert_eq!(list["total_rows"], 3);
    assert!(list["indexes"].as_array().unwrap().contains(&json!({
        "ddoc": "_design/shop", "name": "tp", "type": "json", "partitioned": false,
        "def": {"fields": [{"type": "asc"}, {"price": "asc"}]}
    })));
    // Errors.
    let err = |b: Value| {
        let (s, v) = db.json("POST", "/db/_index", Some(b));
        (s, v["error"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(err(json!({})), (400, "missing_required_key".into()));
    assert_eq!(
        err(json!({"index": {}})),
        (400, "missing_required_key".into())
    );
    assert_eq!(err(json!({"index": 5})), (400, "invalid_index".into()));
    assert_eq!(
        err(json!({"index": {"fields": ["a"]}, "type": "geo"})),
        (400, "invalid_index".into())
    );
    assert_eq!(
        err(json!({"index": {"fields": ["a"]}, "type": "nouveau"})),
        (503, "required index service unavailable".into())
    );
    assert_eq!(
        err(json!({"index": {"fields": "some"}, "type": "text"})),
        (400, "invalid_index".into())
    );
    // Delete: by ddoc with or without the prefix; the last view takes the ddoc along.
    assert_eq!(db.json("DELETE", "/db/_index/shop/json/nope", None).0, 404);
    assert_eq!(
        db.json("DELETE", "/db/_index/_design/shop/json/tp", None),
        (200, json!({"ok": true}))
    );
    assert_eq!(db.json("GET", "/db/_design/shop", None).0, 404);
    let path = format!("/db/_index/{}/json/{}", &id[8..], &id[8..]);
    assert_eq!(db.json("DELETE", &path, None).0, 200);
    assert_eq!(db.json("GET", "/db/_index", None).1["total_rows"], 1);
}

/// The index's answer must be the full scan's answer, ordered by the index.
#[test]
fn same_docs_with_and_without_index() {
    let db = Db::new();
    products(&db);
    let queries = [
        json!({"type": "toy", "price": {"$exists": true}}),
        json!({"type": "book", "price": {"$gt": 20}}),
        json!({"price": {"$lt": 50}}),
        json!({"price": {"$gte": "5"}}),
        json!({"type": {"$in": ["book", "toy"]}, "price": {"$lte": 90, "$gt": 10}}),
        json!({"type": "toy", "price": {"$exists": true}, "name": {"$regex": "^item [1-3]"}}),
        json!({"$and": [{"type": "book"}, {"price": {"$ne": 0}}]}),
        json!({"type": "nothing"}),
    ];
    let mut before = Vec::new();
    for sel in &queries {
        before.push(find(&db, json!({"selector": sel, "limit": 1000})));
    }
    index(
        &db,
        json!({"index": {"fields": ["type", "price"]}, "name": "tp", "ddoc": "tp"}),
    );
    index(
        &db,
        json!({"index": {"fields": ["price"]}, "name": "p", "ddoc": "p"}),
    );
    for (sel, without) in queries.iter().zip(before) {
        let with = find(&db, json!({"selector": sel, "limit": 1000}));
        assert!(
            with.get("warning").is_none() || sel == &json!({"type": "nothing"}),
            "{sel}: {with}"
        );
        let (a, b): (HashSet<_>, HashSet<_>) = (
            ids(&with).into_iter().collect(),
            ids(&without).into_iter().collect(),
        );
        assert_eq!(a, b, "{sel}");
        // Index order: by the indexed values, then id.
        let docs = with["docs"].as_array().unwrap();
        let (s, e) = db.json("POST", "/db/_explain", Some(json!({"selector": sel})));
        assert_eq!(s, 200);
        let fields: Vec<String> = e["index"]["def"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_object().unwrap().keys().next().unwrap().clone())
            .collect();
        for w in docs.windows(2) {
            let key = |d: &Value| Value::Array(fields.iter().map(|f| d[f].clone()).collect());
            let o = compare(&key(&w[0]), &key(&w[1]))
                .then(w[0]["_id"].as_str().cmp(&w[1]["_id"].as_str()));
            assert_eq!(o, Ordering::Less, "{sel}: {} before {}", w[0], w[1]);
        }
    }
    // Sorted queries give the Rust-sorted answer, both directions.
    let v = find(
        &db,
        json!({"selector": {"price": {"$gt": 0}}, "sort": [{"price": "desc"}], "limit": 1000}),
    );
    let got: Vec<Value> = v["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["price"].clone())
        .collect();
    let mut want = got.clone();
    want.sort_by(|a, b| compare(b, a));
    assert_eq!(got, want);
    assert_eq!(got.len(), 53, "54 priced, one at 0");
    let v = find(
        &db,
        json!({"selector": {"type": "book"}, "sort": ["type", "price"], "limit": 1000}),
    );
    assert!(v.get("warning").is_none());
    let v = find(
        &db,
        json!({"selector": {"type": "book"}, "sort": ["price"], "limit": 1000}),
    );
    assert!(
        v.get("warning").is_none(),
        "type is constant, so tp serves a price sort"
    );
}

#[test]
fn bookmarks_page_through_ten_thousand_docs() {
    let db = Db::new();
    let docs: Vec<Value> = (0..10_000)
        .map(|i| json!({"_id": format!("d{i:05}"), "n": (i * 7919) % 1000, "k": "all"}))
        .collect();
    bulk(&db, docs);
    index(
        &db,
        json!({"index": {"fields": ["n"]}, "ddoc": "n", "name": "n"}),
    );
    for (q, dir) in [
        (
            json!({"selector": {"n": {"$gte": 0}}, "sort": ["n"], "limit": 700}),
            1,
        ),
        (
            json!({"selector": {"n": {"$gte": 0}}, "sort": [{"n": "desc"}], "limit": 700}),
            -1,
        ),
        (json!({"selector": {"k": "all"}, "limit": 999}), 0),
    ] {
        let mut seen = HashSet::new();
        let mut bookmark: Option<String> = None;
        let mut prev: Option<i64> = None;
        let mut pages = 0;
        loop {
            let mut body = q.clone();
            if let Some(b) = &bookmark {
                body["bookmark"] = json!(b);
            }
            let v = find(&db, body);
            let docs = v["docs"].as_array().unwrap();
            if docs.is_empty() {
                break;
            }
            pages += 1;
            for d in docs {
                assert!(
                    seen.insert(d["_id"].as_str().unwrap().to_string()),
                    "repeat {d}"
                );
                let n = d["n"].as_i64().unwrap();
                if let Some(p) = prev {
                    assert!(dir == 0 || (n - p) * dir >= 0, "order {p} then {n}");
                }
                prev = Some(n);
            }
            bookmark = Some(v["bookmark"].as_str().unwrap().to_string());
        }
        assert_eq!(seen.len(), 10_000, "{q}");
        assert!(pages >= 10);
    }
    let e = find(&db, json!({"selector": {"n": 5}, "execution_stats": true}));
    assert_eq!(e["execution_stats"]["total_keys_examined"], 10);
    assert_eq!(e["execution_stats"]["total_docs_examined"], 10);
    assert_eq!(
        find_err(&db, json!({"selector": {}, "bookmark": "zz!"})),
        (400, "invalid_bookmark".into())
    );
}

#[test]
fn partial_indexes_apply_their_filter() {
    let db = Db::new();
    products(&db);
    index(
        &db,
        json!({"index": {"fields": ["price"], "partial_filter_selector": {"type": "book"}}, "ddoc": "books", "name": "b"}),
    );
    let (_, list) = db.json("GET", "/db/_index", None);
    assert_eq!(
        list["indexes"][1]["def"],
        json!({"fields": [{"price": "asc"}], "partial_filter_selector": {"type": "book"}})
    );
    // Not chosen unless asked for by name (CouchDB's rule).
    let plain = find(
        &db,
        json!({"selector": {"price": {"$gt": 10}}, "limit": 100}),
    );
    assert!(plain["warning"]
        .as_str()
        .unwrap()
        .starts_with("No matching index"));
    let named = find(
        &db,
        json!({"selector": {"price": {"$gt": 10}}, "use_index": "books", "limit": 100, "execution_stats": true}),
    );
    assert!(named.get("warning").is_none(), "{named}");
    let docs = named["docs"].as_array().unwrap();
    assert!(!docs.is_empty());
    assert!(docs.iter().all(|d| d["type"] == "book"));
    let books = plain["docs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["type"] == "book")
        .count();
    assert_eq!(docs.len(), books);
    assert_eq!(named["execution_stats"]["total_docs_examined"], books);
}

#[test]
fn use_index_warnings() {
    let db = Db::new();
    products(&db);
    index(
        &db,
        json!({"index": {"fields": ["name"]}, "ddoc": "byname", "name": "n"}),
    );
    let v = find(
        &db,
        json!({"selector": {"type": "toy"}, "use_index": "byname"}),
    );
    assert_eq!(
        v["warning"],
        "_design/byname was not used because it does not contain a valid index for this query.\nNo matching index found, create an index to optimize query time."
    );
    let v = find(
        &db,
        json!({"selector": {"type": "toy"}, "use_index": ["byname", "n"]}),
    );
    assert!(v["warning"].as_str().unwrap().starts_with(
        "_design/byname, n was not used because it is not a valid index for this query."
    ));
    let v = find(
        &db,
        json!({"selector": {"name": {"$gt": null}}, "use_index": ["_design/byname", "n"]}),
    );
    assert!(v.get("warning").is_none());
    // A selective-looking index that examines many docs per result.
    let v = find(
        &db,
        json!({"selector": {"name": {"$gt": null}, "price": 999}}),
    );
    assert_eq!(
        v["warning"],
        "The number of documents examined is high in proportion to the number of results returned. Consider adding a more specific index to improve this."
    );
}

#[test]
fn explain_picks_the_expected_index() {
    let db = Db::new();
    for (ddoc, fields) in [
        ("a", json!(["a"])),
        ("ab", json!(["a", "b"])),
        ("b", json!(["b"])),
        ("abc", json!(["a", "b", "c"])),
    ] {
        index(
            &db,
            json!({"index": {"fields": fields}, "ddoc": ddoc, "name": ddoc}),
        );
    }
    let cases = [
        (json!({"selector": {"a": 1}}), "a"),
        (json!({"selector": {"a": 1, "b": {"$gt": 2}}}), "ab"),
        (json!({"selector": {"b": 1, "a": {"$gt": 2}}}), "a"),
        (json!({"selector": {"a": 1, "b": 2, "c": 3}}), "abc"),
        (json!({"selector": {"b": 1}}), "b"),
        (json!({"selector": {"c": 1}}), "_all_docs"),
        (json!({"selector": {"a": 1}, "sort": ["b"]}), "ab"),
        (
            json!({"selector": {"a": 1, "b": 1}, "use_index": "abc"}),
            "ab",
        ),
        (
            json!({"selector": {"a": 1, "b": 1, "c": {"$gt": 0}}, "use_index": ["ab", "ab"]}),
            "ab",
        ),
        (json!({"selector": {"_id": {"$gt": "x"}}}), "_all_docs"),
    ];
    for (q, want) in cases {
        let (s, v) = db.json("POST", "/db/_explain", Some(q.clone()));
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["index"]["name"], want, "{q}");
    }
    let (_, v) = db.json(
        "POST",
        "/db/_explain",
        Some(json!({"selector": {"a": 1, "b": {"$gte": 2, "$lt": 9}}, "limit": 7, "skip": 1, "fields": ["a"]})),
    );
    assert_eq!(v["dbname"], "db");
    assert_eq!(v["limit"], 7);
    assert_eq!(v["skip"], 1);
    assert_eq!(v["fields"], json!(["a"]));
    assert_eq!(
        v["selector"],
        json!({"$and": [{"a": {"$eq": 1}}, {"$and": [{"b": {"$gte": 2}}, {"b": {"$lt": 9}}]}]})
    );
    assert_eq!(v["mrargs"]["start_key"], json!([1, 2]));
    assert_eq!(v["mrargs"]["end_key"], json!([1, 9, "<MAX>"]));
    assert_eq!(v["mrargs"]["direction"], "fwd");
    assert_eq!(v["opts"]["limit"], 7);
    let cands = v["index_candidates"].as_array().unwrap();
    let reason = |name: &str| {
        cands
            .iter()
            .find(|c| c["index"]["name"] == name)
            .map(|c| c["analysis"]["reasons"][0]["name"].clone())
            .unwrap()
    };
    assert_eq!(reason("b"), "less_overlap");
    assert_eq!(reason("abc"), "field_mismatch");
    assert_eq!(reason("a"), "less_overlap");
    assert_eq!(reason("_all_docs"), "unfavored_type");
    assert_eq!(
        v["selector_hints"][0]["indexable_fields"],
        json!(["a", "b"])
    );
}

#[test]
fn indexes_follow_updates_deletes_and_conflicts() {
    let db = Db::new();
    index(
        &db,
        json!({"index": {"fields": ["v"]}, "ddoc": "v", "name": "v"}),
    );
    let q = json!({"selector": {"v": {"$gte": 0}}, "sort": ["v"]});
    let r = db.put("a", json!({"v": 5}));
    db.put("b", json!({"v": 1}));
    db.put("c", json!({"w": 1}));
    assert_eq!(ids(&find(&db, q.clone())), ["b", "a"]);
    let r = db.put("a", json!({"_rev": r, "v": 0}));
    assert_eq!(ids(&find(&db, q.clone())), ["a", "b"]);
    // update=false reads the index as it is.
    db.put("d", json!({"v": 3}));
    let mut stale = q.clone();
    stale["update"] = json!(false);
    assert_eq!(ids(&find(&db, stale)), ["a", "b"]);
    assert_eq!(ids(&find(&db, q.clone())), ["a", "b", "d"]);
    assert_eq!(db.json("DELETE", &format!("/db/a?rev={r}"), None).0, 200);
    assert_eq!(ids(&find(&db, q.clone())), ["b", "d"]);
    // A conflicting branch that wins replaces the indexed value.
    let (s, _) = db.json(
        "POST",
        "/db/_bulk_docs",
        Some(json!({"new_edits": false, "docs": [{"_id": "b", "_rev": "9-ffff", "v": 10}]})),
    );
    assert_eq!(s, 201);
    assert_eq!(ids(&find(&db, q.clone())), ["d", "b"]);
    // A changed definition arriving by _bulk_docs (as replication would) is rebuilt.
    let (_, dd) = db.json("GET", "/db/_design/v", None);
    let mut dd = dd;
    dd["views"]["v"]["options"]["def"]["fields"] = json!(["w"]);
    dd["views"]["v"]["map"]["fields"] = json!({"w": "asc"});
    let (s, _) = db.json("POST", "/db/_bulk_docs", Some(json!({"docs": [dd]})));
    assert_eq!(s, 201);
    let v = find(&db, json!({"selector": {"w": 1}, "execution_stats": true}));
    assert_eq!(ids(&v), ["c"]);
    assert!(v.get("warning").is_none());
    assert_eq!(v["execution_stats"]["total_keys_examined"], 1);
}

#[test]
fn access_rules() {
    let db = Db::new();
    let sec = json!({"admins": {"names": ["dba"], "roles": []}, "members": {"names": ["mem"], "roles": []}});
    assert_eq!(db.json("PUT", "/db/_security", Some(sec)).0, 200);
    let user = |n: &str| UserCtx {
        name: Some(n.into()),
        roles: vec![],
    };
    let body = json!({"index": {"fields": ["a"]}, "ddoc": "x", "name": "x"});
    let q = json!({"selector": {"a": {"$gt": 0}}});
    assert_eq!(
        db.as_user(&user("eve"), "POST", "/db/_find", Some(q.clone()))
            .0,
        403
    );
    assert_eq!(db.as_user(&user("eve"), "GET", "/db/_index", None).0, 403);
    assert_eq!(
        db.as_user(&user("mem"), "POST", "/db/_find", Some(q.clone()))
            .0,
        200
    );
    assert_eq!(
        db.as_user(&user("mem"), "POST", "/db/_explain", Some(q)).0,
        200
    );
    assert_eq!(db.as_user(&user("mem"), "GET", "/db/_index", None).0, 200);
    let (s, _) = db.as_user(&user("mem"), "POST", "/db/_index", Some(body.clone()));
    assert!(s == 401 || s == 403, "{s}");
    assert_eq!(
        db.as_user(&user("dba"), "POST", "/db/_index", Some(body)).0,
        200
    );
    let (s, _) = db.as_user(&user("mem"), "DELETE", "/db/_index/x/json/x", None);
    assert!(s == 401 || s == 403, "{s}");
    assert_eq!(
        db.as_user(&user("dba"), "DELETE", "/db/_index/x/json/x", None)
            .0,
        200
    );
}

/// An index brought up to date over many changed documents at once (more
/// than one statement's worth of rows to replace) holds exactly their new
/// rows: moved keys, removed ones, deletions.
#[test]
fn an_index_catches_up_over_a_batch_of_changes() {
    let db = Db::new();
    index(
        &db,
        json!({"index": {"fields": ["v"]}, "ddoc": "v", "name": "v"}),
    );
    bulk(
        &db,
        (0..300)
            .map(|i| json!({"_id": format!("d{i:03}"), "v": i}))
            .collect(),
    );
    let q = json!({"selector": {"v": {"$gte": 0}}, "sort": ["v"], "limit": 1000});
    assert_eq!(ids(&find(&db, q.clone())).len(), 300);
    let (_, all) = db.json(
        "GET",
        "/db/_all_docs?startkey=%22d%22&endkey=%22d~%22",
        None,
    );
    let changes: Vec<Value> = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .take(250)
        .enumerate()
        .map(|(i, r)| {
            let (id, rev) = (r["id"].clone(), r["value"]["rev"].clone());
            match i % 3 {
                0 => json!({"_id": id, "_rev": rev, "v": 1000 - i}),
                1 => json!({"_id": id, "_rev": rev, "w": 1}),
                _ => json!({"_id": id, "_rev": rev, "_deleted": true}),
            }
        })
        .collect();
    let (s, _) = db.json("POST", "/db/_bulk_docs", Some(json!({ "docs": changes })));
    assert_eq!(s, 201);
    let mut expected: Vec<(i64, String)> = (0..300)
        .filter_map(|i: i64| match (i < 250, i % 3) {
            (false, _) => Some((i, format!("d{i:03}"))),
            (true, 0) => Some((1000 - i, format!("d{i:03}"))),
            _ => None,
        })
        .collect();
    expected.sort();
    let want: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids(&find(&db, q)), want);
}

/// Bookmarks page through a bounded range in both directions without
/// leaving it, and a bookmark from before a range (another query's) still
/// yields only that range's documents.
#[test]
fn bookmarks_stay_inside_bounded_ranges() {
    let db = Db::new();
    let docs: Vec<Value> = (0..6_000)
        .map(|i| json!({"_id": format!("d{i:05}"), "n": i % 1000}))
        .collect();
    bulk(&db, docs);
    index(
        &db,
        json!({"index": {"fields": ["n"]}, "ddoc": "n", "name": "n"}),
    );
    let page = |body: Value| {
        let v = find(&db, body);
        let ns: Vec<i64> = v["docs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["n"].as_i64().unwrap())
            .collect();
        (ns, v["bookmark"].as_str().unwrap().to_string())
    };
    for sort in [json!(["n"]), json!([{"n": "desc"}])] {
        let q = json!({"selector": {"n": {"$gt": 100, "$lte": 900}}, "sort": sort, "limit": 500});
        let (mut all, mut bookmark) = page(q.clone());
        loop {
            let mut body = q.clone();
            body["bookmark"] = json!(bookmark);
            let (ns, b) = page(body);
            if ns.is_empty() {
                break;
            }
            all.extend(ns);
            bookmark = b;
        }
        assert_eq!(all.len(), 800 * 6, "{sort}");
        assert!(all.iter().all(|n| (101..=900).contains(n)), "{sort}");
    }
    let (_, early) = page(json!({"selector": {"n": {"$gte": 0}}, "sort": ["n"], "limit": 10}));
    let body = json!({"selector": {"n": {"$gt": 500}}, "sort": ["n"], "limit": 50,
                      "bookmark": early, "execution_stats": true});
    let v = find(&db, body.clone());
    assert!(
        v["execution_stats"]["total_keys_examined"]
            .as_u64()
            .unwrap()
            <= 60,
        "{v}"
    );
    let (ns, _) = page(body);
    assert_eq!(ns.len(), 50);
    assert!(ns.iter().all(|n| *n > 500), "{ns:?}");
}
