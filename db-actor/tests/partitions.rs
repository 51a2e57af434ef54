//! Partitioned databases and shards as CouchDB 3 answers them.
mod common;

use common::{found_ids, Db};
use serde_json::{json, Value};

fn partitioned() -> Db {
    Db::created_by("/pdb?partitioned=true")
}

fn ids(v: &Value) -> Vec<&str> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[test]
fn a_partitioned_database_says_so_and_wants_partitioned_ids() {
    let db = partitioned();
    assert_eq!(
        db.json("GET", "/pdb", None).1["props"],
        json!({"partitioned": true})
    );
    let other = Db::named("other");
    assert_eq!(other.json("GET", "/other", None).1["props"], json!({}));
    assert_eq!(db.json("PUT", "/pdb/p1:a", Some(json!({"n": 1}))).0, 201);
    assert_eq!(db.json("PUT", "/pdb/_design/d", Some(json!({}))).0, 201);
    assert_eq!(db.json("PUT", "/pdb/_local/x", Some(json!({}))).0, 201);
    for (id, error, reason) in [
        (
            "plain",
            "illegal_docid",
            "Doc id must be of form partition:id",
        ),
        ("p1:", "illegal_docid", "Document id must not be empty"),
        (
            "_p:a",
            "illegal_docid",
            "Only reserved document ids may start with underscore.",
        ),
    ] {
        let (s, v) = db.json("PUT", &format!("/pdb/{id}"), Some(json!({})));
        assert_eq!(
            (s, v["error"].as_str(), v["reason"].as_str()),
            (400, Some(error), Some(reason)),
            "{id}"
        );
    }
    let (s, v) = db.json("POST", "/pdb", Some(json!({"n": 2})));
    assert_eq!(
        (s, v["reason"].as_str()),
        (400, Some("Doc id must be of form partition:id")),
        "a generated id has no partition"
    );
    let (s, v) = db.json(
        "POST",
        "/pdb/_bulk_docs",
        Some(json!({"docs": [{"_id": "p2:a"}, {"_id": "nope"}]})),
    );
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("illegal_docid")),
        "{v}"
    );
    assert_eq!(
        db.json("GET", "/pdb/p2:a", None).0,
        404,
        "the request failed as a whole"
    );
    assert_eq!(
        other.json("PUT", "/other/plain", Some(json!({}))).0,
        201,
        "an ordinary database takes any id"
    );

    let (s, v) = Db::empty().json("PUT", "/bad?partitioned=tru", None);
    assert_eq!(
        (s, v["reason"].as_str()),
        (
            400,
            Some("`partitioned` parameter can only be set to true.")
        )
    );
    let (s, v) = Db::empty().json("PUT", "/_replicator?partitioned=true", None);
    assert_eq!(
        (s, v["reason"].as_str()),
        (400, Some("Cannot partition a system database"))
    );
}

#[test]
fn a_partitions_info_and_all_docs_cover_its_documents_only() {
    let db = partitioned();
    for id in ["p1:a", "p1:b", "p1:c", "p10:a", "p2:a"] {
        assert_eq!(
            db.json("PUT", &format!("/pdb/{id}"), Some(json!({"id": id})))
                .0,
            201
        );
    }
    let rev = db.json("GET", "/pdb/p1:c", None).1["_rev"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        db.json("DELETE", &format!("/pdb/p1:c?rev={rev}"), None).0,
        200
    );
    let (s, info) = db.json("GET", "/pdb/_partition/p1", None);
    assert_eq!(s, 200);
    assert_eq!(
        (
            &info["partition"],
            &info["doc_count"],
            &info["doc_del_count"]
        ),
        (&json!("p1"), &json!(2), &json!(1))
    );
    assert_eq!(info["sizes"]["external"], 2 * r#"{"id":"p1:a"}"#.len());
    assert_eq!(
        ids(&db.json("GET", "/pdb/_partition/p1/_all_docs", None).1),
        ["p1:a", "p1:b"]
    );
    assert_eq!(
        ids(&db
            .json("GET", "/pdb/_partition/p1/_all_docs?descending=true", None)
            .1),
        ["p1:b", "p1:a"]
    );
    assert_eq!(
        ids(&db
            .json(
                "GET",
                "/pdb/_partition/p1/_all_docs?startkey=%22p1:b%22",
                None
            )
            .1),
        ["p1:b"]
    );
    assert_eq!(
        ids(&db
            .json("GET", "/pdb/_partition/p1/_all_docs?endkey=%22zzz%22", None)
            .1),
        ["p1:a", "p1:b"]
    );
    let (_, v) = db.json(
        "POST",
        "/pdb/_partition/p1/_all_docs",
        Some(json!({"keys": ["p1:a", "p2:a"]})),
    );
    assert_eq!(ids(&v), ["p1:a"]);
    assert_eq!(
        db.json("GET", "/pdb/_partition/_p", None).1["error"],
        "illegal_partition"
    );
    let other = Db::named("other");
    assert_eq!(
        other.json("GET", "/other/_partition/p1", None).1["reason"],
        "database is not partitioned"
    );
    assert_eq!(
        other.json("GET", "/other/_partition/p1/_all_docs", None).0,
        400
    );
}

#[test]
fn shards_answer_as_one_node_holds_them() {
    let db = Db::new();
    let (s, v) = db.json("GET", "/db/_shards", None);
    assert_eq!(
        (s, v),
        (
            200,
            json!({"shards": {"00000000-ffffffff": ["settee@127.0.0.1"]}})
        )
    );
    let (_, v) = db.json("GET", "/db/_shards/some-doc", None);
    assert_eq!(
        v,
        json!({"range": "00000000-ffffffff", "nodes": ["settee@127.0.0.1"]})
    );
    assert_eq!(
        db.json("POST", "/db/_sync_shards", Some(json!({}))),
        (202, json!({"ok": true}))
    );
    let eight = Db::created_by("/eight?q=8");
    let (_, v) = eight.json("GET", "/eight/_shards", None);
    assert_eq!(v["shards"].as_object().unwrap().len(), 8);
    let (_, v) = eight.json("GET", "/eight/_shards/_design/x", None);
    assert!(
        v["shards"].is_null() && v["range"].as_str().unwrap().len() == 17,
        "{v}"
    );
}

#[test]
fn partitioned_design_documents_follow_couchdbs_rules() {
    let plain = Db::new();
    let ddoc = json!({"options": {"partitioned": true}, "views": {"v": {"map": "function(d){ emit(d._id, 1); }"}}});
    let (s, v) = plain.json("PUT", "/db/_design/p", Some(ddoc.clone()));
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_design_doc")),
        "{v}"
    );
    let global = json!({"options": {"partitioned": false}, "views": {"v": {"map": "function(d){ emit(d._id, 1); }"}}});
    assert_eq!(
        plain.json("PUT", "/db/_design/g", Some(global.clone())).0,
        201
    );

    let db = partitioned();
    assert_eq!(db.json("PUT", "/pdb/p:a", Some(json!({}))).0, 201);
    assert_eq!(db.json("PUT", "/pdb/_design/p", Some(ddoc)).0, 201);
    let unmarked = json!({"views": {"v": {"map": "function(d){ emit(d._id, 1); }"}}});
    assert_eq!(db.json("PUT", "/pdb/_design/u", Some(unmarked)).0, 201);
    assert_eq!(db.json("PUT", "/pdb/_design/g", Some(global)).0, 201);
    for d in ["p", "u"] {
        let (s, v) = db.json("GET", &format!("/pdb/_design/{d}/_view/v"), None);
        assert_eq!(
            (s, v["reason"].as_str()),
            (
                400,
                Some("`partition` parameter is mandatory for queries to this view.")
            ),
            "{d}"
        );
    }
    let (s, v) = db.json("GET", "/pdb/_design/g/_view/v", None);
    assert_eq!(
        (s, v["total_rows"].as_u64()),
        (200, Some(1)),
        "a global view answers globally"
    );
}

/// CouchDB's partition test fixture: 100 documents, the even ones in
/// partition `foo` and the odd ones in `bar`, with `value` = their number.
fn fixture() -> Db {
    let db = partitioned();
    let docs: Vec<Value> = (1..=100)
        .map(|i| {
            let p = if i % 2 == 0 { "foo" } else { "bar" };
            let group = if i % 3 == 0 { "one" } else { "two" };
            json!({"_id": format!("{p}:{i}"), "value": i, "some": "field", "group": group})
        })
        .collect();
    assert_eq!(
        db.json("POST", "/pdb/_bulk_docs", Some(json!({ "docs": docs })))
            .0,
        201
    );
    let views = json!({
        "some": {"map": "function(doc) { if (doc.some) emit(doc.value, doc.some); }"},
        "grouped": {"map": "function(doc) { if (doc.group) emit([doc.some, doc.group], 1); }",
                    "reduce": "_count"},
        "js_count": {"map": "function(doc) { if (doc.group) emit([doc.some, doc.group], 1); }",
                     "reduce": "function(k, v, re) { return sum(v); }"},
    });
    for (id, options) in [
        ("map", json!({})),
        ("with_design", json!({"include_design": true})),
        ("global", json!({"partitioned": false})),
    ] {
        let ddoc = json!({"options": options, "views": views});
        let (s, v) = db.json("PUT", &format!("/pdb/_design/{id}"), Some(ddoc));
        assert_eq!(s, 201, "{v}");
    }
    db
}

#[test]
fn a_partitioned_view_answers_for_one_partition() {
    let db = fixture();
    let get = |url: &str| {
        let (s, v) = db.json(
            "GET",
            &format!("/pdb/_partition/foo/_design/map/_view/{url}"),
            None,
        );
        assert_eq!(s, 200, "{url}: {v}");
        v
    };
    let all = get("some");
    assert_eq!(all["rows"].as_array().unwrap().len(), 50);
    assert!(ids(&all).iter().all(|id| id.starts_with("foo:")), "{all}");
    assert_eq!(
        (all["total_rows"].as_u64(), all["offset"].as_u64()),
        (Some(50), Some(0)),
        "counts are the partition's"
    );
    let bar = db
        .json("GET", "/pdb/_partition/bar/_design/map/_view/some", None)
        .1;
    assert!(ids(&bar).iter().all(|id| id.starts_with("bar:")), "{bar}");
    assert_eq!(bar["rows"].as_array().unwrap().len(), 50);

    let range = get("some?start_key=12&end_key=20");
    assert_eq!(
        ids(&range),
        ["foo:12", "foo:14", "foo:16", "foo:18", "foo:20"]
    );
    assert_eq!(range["offset"], 5, "foo:2 to foo:10 come before");
    assert_eq!(get("some?start_key=%22foo:12%22")["rows"], json!([]));
    assert_eq!(ids(&get("some?key=22")), ["foo:22"]);
    assert_eq!(
        ids(&get("some?descending=true&limit=5")),
        ["foo:100", "foo:98", "foo:96", "foo:94", "foo:92"]
    );
    assert_eq!(
        ids(&get("some?descending=true&end_key=95")),
        ["foo:100", "foo:98", "foo:96"]
    );
    assert_eq!(
        ids(&get("some?skip=5&limit=5")),
        ["foo:12", "foo:14", "foo:16", "foo:18", "foo:20"]
    );
    let (s, keyed) = db.json(
        "POST",
        "/pdb/_partition/foo/_design/map/_view/some",
        Some(json!({"keys": [2, 3, 4, 6]})),
    );
    assert_eq!(
        (s, ids(&keyed)),
        (200, vec!["foo:2", "foo:4", "foo:6"]),
        "3 is bar's"
    );
    let docid = db
        .json(
            "GET",
            "/pdb/_partition/foo/_design/map/_view/grouped?reduce=false&\
             startkey=[%22field%22,%22one%22]&endkey=[%22field%22,%22one%22]&\
             startkey_docid=foo:12&endkey_docid=foo:30",
            None,
        )
        .1;
    assert_eq!(ids(&docid), ["foo:12", "foo:18", "foo:24", "foo:30"]);
    let (s, multi) = db.json(
        "POST",
        "/pdb/_partition/bar/_design/map/_view/some",
        Some(json!({"queries": [{"key": 3}, {"keys": [2, 5]}]})),
    );
    assert_eq!(s, 200, "{multi}");
    assert_eq!(ids(&multi["results"][0]), ["bar:3"]);
    assert_eq!(ids(&multi["results"][1]), ["bar:5"]);

    // Design documents have no partition, whatever the view asks.
    let with_design = db
        .json(
            "GET",
            "/pdb/_partition/foo/_design/with_design/_view/some",
            None,
        )
        .1;
    assert_eq!(with_design["total_rows"], 50);
    // The global design document answers globally only.
    let global = db.json("GET", "/pdb/_design/global/_view/some", None).1;
    assert_eq!(global["total_rows"], 100);
    let (s, v) = db.json("GET", "/pdb/_partition/foo/_design/global/_view/some", None);
    assert_eq!(
        (s, v["error"].as_str(), v["reason"].as_str()),
        (
            400,
            Some("query_parse_error"),
            Some("`partition` parameter is not supported in this design doc")
        )
    );
    let (s, _) = db.json(
        "GET",
        "/pdb/_partition/fakekey/_design/nope/_view/some",
        None,
    );
    assert_eq!(s, 404);
}

#[test]
fn partitioned_reductions_group_within_the_partition() {
    let db = fixture();
    for view in ["grouped", "js_count"] {
        let get = |qs: &str| {
            db.json(
                "GET",
                &format!("/pdb/_partition/foo/_design/map/_view/{view}?{qs}"),
                None,
            )
            .1["rows"]
                .clone()
        };
        assert_eq!(get(""), json!([{"key": null, "value": 50}]), "{view}");
        assert_eq!(
            get("group_level=1"),
            json!([{"key": ["field"], "value": 50}])
        );
        let exact = json!([
            {"key": ["field", "one"], "value": 16},
            {"key": ["field", "two"], "value": 34},
        ]);
        assert_eq!(get("group_level=2"), exact, "{view}");
        assert_eq!(get("group=true"), exact, "{view}");
        assert_eq!(
            get("group=true&descending=true&limit=1"),
            json!([{"key": ["field", "two"], "value": 34}])
        );
    }
}

#[test]
fn partition_queries_are_scoped_by_path_or_parameter_and_limited() {
    let mut db = fixture();
    let (s, v) = db.json(
        "GET",
        "/pdb/_design/map/_view/some?partition=bar&limit=2",
        None,
    );
    assert_eq!((s, ids(&v)), (200, vec!["bar:1", "bar:3"]), "{v}");
    let (s, v) = db.json(
        "GET",
        "/pdb/_partition/foo/_design/map/_view/some?partition=bar",
        None,
    );
    assert_eq!(
        (s, v["reason"].as_str()),
        (
            400,
            Some("Conflicting value for `partition` in query string")
        )
    );
    let (s, v) = db.json("GET", "/pdb/_all_docs?partition=foo&limit=3", None);
    assert_eq!(
        (s, ids(&v)),
        (200, vec!["foo:10", "foo:100", "foo:12"]),
        "{v}"
    );
    assert_eq!(
        (&v["total_rows"], &v["offset"]),
        (&json!(50), &json!(0)),
        "a partition's own counts"
    );
    let v = db
        .json(
            "GET",
            "/pdb/_partition/foo/_all_docs?start_key=%22foo:2%22&limit=1",
            None,
        )
        .1;
    assert_eq!(
        (ids(&v), &v["offset"]),
        (vec!["foo:2"], &json!(6)),
        "foo:10, foo:100 and foo:12 to foo:18 come before"
    );
    let (s, v) = db.json("GET", "/pdb/_design/map/_view/some?partition=_x", None);
    assert_eq!((s, v["error"].as_str()), (400, Some("illegal_partition")));
    let plain = Db::new();
    let (s, v) = plain.json("GET", "/db/_all_docs?partition=foo", None);
    assert_eq!(
        (s, v["reason"].as_str()),
        (400, Some("partition specified on non-partitioned db"))
    );

    for url in [
        "/pdb/_partition/foo/_design/map/_view/some?limit=2001",
        "/pdb/_partition/foo/_all_docs?limit=2001",
    ] {
        let (s, v) = db.json("GET", url, None);
        assert_eq!(
            (s, v["reason"].as_str()),
            (400, Some("Limit is too large, must not exceed 2000")),
            "{url}"
        );
    }
    db.limits.partition_query_limit = 20;
    for url in [
        "/pdb/_partition/foo/_design/map/_view/some",
        "/pdb/_partition/foo/_all_docs",
    ] {
        let v = db.json("GET", url, None).1;
        assert_eq!(v["rows"].as_array().unwrap().len(), 20, "{url}");
        let v = db.json("GET", &format!("{url}?limit=20&skip=45"), None).1;
        assert_eq!(v["rows"].as_array().unwrap().len(), 5, "{url}");
        assert_eq!(db.json("GET", &format!("{url}?limit=21"), None).0, 400);
    }
    // The global view is not limited so.
    let v = db.json("GET", "/pdb/_design/global/_view/some", None).1;
    assert_eq!(v["rows"].as_array().unwrap().len(), 100);

    let (s, v) = db.json("GET", "/pdb/_partition", None);
    assert_eq!(
        (s, v["reason"].as_str()),
        (400, Some("invalid_partition_req"))
    );
    for sub in ["_changes", "foo:2", "_design/map", "_design_docs"] {
        let (s, v) = db.json("GET", &format!("/pdb/_partition/foo/{sub}"), None);
        assert_eq!((s, v["error"].as_str()), (404, Some("not_found")), "{sub}");
    }
    assert_eq!(db.json("PUT", "/pdb/_partition/foo", None).0, 405);
    assert_eq!(
        db.json("GET", "/pdb/_partition/foo/_design/map/_info", None)
            .0,
        200
    );
}

#[test]
fn partitioned_views_follow_writes_and_purges() {
    let db = fixture();
    let url = "/pdb/_partition/foo/_design/map/_view/some";
    assert_eq!(db.json("GET", url, None).1["total_rows"], 50);
    let rev = db.json("GET", "/pdb/foo:2", None).1["_rev"].clone();
    let (s, _) = db.json(
        "PUT",
        "/pdb/foo:2",
        Some(json!({"_rev": rev, "value": 4, "some": "field"})),
    );
    assert_eq!(s, 201);
    assert_eq!(
        db.json("GET", &format!("{url}?key=4"), None).1["rows"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        db.json("GET", &format!("{url}?key=2"), None).1["rows"],
        json!([])
    );
    assert_eq!(
        db.json("PUT", "/pdb/foo:1", Some(json!({"value": 1, "some": "f"})))
            .0,
        201
    );
    let stale = db
        .json("GET", &format!("{url}?update=false&limit=3"), None)
        .1;
    assert_eq!(ids(&stale), ["foo:2", "foo:4", "foo:6"], "{stale}");
    assert_eq!(stale["total_rows"], 50, "foo:1 is not in yet");
    assert_eq!(db.json("GET", url, None).1["total_rows"], 51);
    let rev = db.json("GET", "/pdb/foo:4", None).1["_rev"].clone();
    let (s, v) = db.json("POST", "/pdb/_purge", Some(json!({"foo:4": [rev]})));
    assert_eq!(s, 201, "{v}");
    assert_eq!(db.json("GET", url, None).1["total_rows"], 50);
    let (s, _) = db.json(
        "DELETE",
        &format!(
            "/pdb/foo:6?rev={}",
            db.json("GET", "/pdb/foo:6", None).1["_rev"]
                .as_str()
                .unwrap()
        ),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(db.json("GET", url, None).1["total_rows"], 49);
    assert_eq!(
        db.json("GET", "/pdb/_partition/bar/_design/map/_view/some", None)
            .1["total_rows"],
        50,
        "bar is untouched"
    );
}

#[test]
fn mango_in_a_partitioned_database() {
    let db = fixture();
    let find = |url: &str, body: Value| {
        let (s, v) = db.json("POST", url, Some(body.clone()));
        assert_eq!(s, 200, "{url} {body}: {v}");
        v
    };
    // No index: the partition's _all_docs, the global one.
    let v = find(
        "/pdb/_partition/foo/_find",
        json!({"selector": {"_id": {"$gt": 0}}, "limit": 20}),
    );
    assert!(found_ids(&v).iter().all(|i| i.starts_with("foo:")) && found_ids(&v).len() == 20);
    let v = find(
        "/pdb/_find",
        json!({"selector": {"_id": {"$gt": 0}}, "limit": 20}),
    );
    assert!(found_ids(&v).iter().all(|i| i.starts_with("bar:")), "{v}");

    // A default index in a partitioned database is partitioned.
    let (s, v) = db.json(
        "POST",
        "/pdb/_index",
        Some(json!({"index": {"fields": ["value"]}, "ddoc": "by_value"})),
    );
    assert_eq!((s, v["result"].as_str()), (200, Some("created")), "{v}");
    let listed = db.json("GET", "/pdb/_index", None).1;
    assert_eq!(listed["indexes"][1]["partitioned"], true, "{listed}");
    assert_eq!(db.json("GET", "/pdb/_partition/foo/_index", None).1, listed);
    let range = json!({"selector": {"value": {"$gte": 6, "$lt": 16}}, "execution_stats": true});
    let v = find("/pdb/_partition/foo/_find", range.clone());
    assert_eq!(
        found_ids(&v),
        ["foo:6", "foo:8", "foo:10", "foo:12", "foo:14"]
    );
    assert_eq!(
        v["execution_stats"]["total_keys_examined"], 5,
        "the index reads only the partition's rows: {v}"
    );
    let ex = find("/pdb/_partition/foo/_explain", range.clone());
    assert_eq!(
        (
            ex["index"]["ddoc"].as_str(),
            ex["partitioned"].as_bool(),
            ex["mrargs"]["partition"].as_str()
        ),
        (Some("_design/by_value"), Some(true), Some("foo")),
        "{ex}"
    );
    let v = find(
        "/pdb/_find",
        json!({"selector": {"value": {"$gte": 6, "$lt": 16}}}),
    );
    assert_eq!(
        found_ids(&v).len(),
        10,
        "the global query falls back to _all_docs"
    );
    let ex = find("/pdb/_explain", range.clone());
    assert_eq!(ex["index"]["name"], "_all_docs", "{ex}");
    assert_eq!(ex["mrargs"]["partition"], Value::Null);

    // Scanning the partition: keys examined are the partition's only.
    let none = json!({"selector": {"value": {"$gt": 1000}}, "execution_stats": true});
    let v = find(
        "/pdb/_partition/bar/_find",
        json!({"selector": {"value": {"$gte": 0}}, "execution_stats": true, "limit": 100}),
    );
    assert_eq!(v["execution_stats"]["total_keys_examined"], 50, "{v}");
    assert_eq!(find("/pdb/_partition/bar/_find", none)["docs"], json!([]));

    // Paging by bookmark stays in the partition.
    let page = |bookmark: Option<&Value>| {
        let mut q = json!({"selector": {"value": {"$gte": 6, "$lt": 16}}, "limit": 3});
        if let Some(b) = bookmark {
            q["bookmark"] = b.clone();
        }
        find("/pdb/_partition/foo/_find", q)
    };
    let first = page(None);
    assert_eq!(found_ids(&first), ["foo:6", "foo:8", "foo:10"]);
    let second = page(Some(&first["bookmark"]));
    assert_eq!(found_ids(&second), ["foo:12", "foo:14"]);

    // The body's `partition` stands for the path's.
    let v = find(
        "/pdb/_find",
        json!({"selector": {"value": {"$lt": 6}}, "partition": "bar"}),
    );
    assert_eq!(found_ids(&v), ["bar:1", "bar:3", "bar:5"]);
    let (s, v) = db.json(
        "POST",
        "/pdb/_partition/foo/_find",
        Some(json!({"selector": {}, "partition": "bar"})),
    );
    assert_eq!(
        (s, v["reason"].as_str()),
        (
            400,
            Some("Conflicting value for `partition` in query string")
        )
    );

    // A global index serves global queries, not partition ones.
    let (s, v) = db.json(
        "POST",
        "/pdb/_index",
        Some(json!({"index": {"fields": ["some"]}, "ddoc": "global_some", "partitioned": false})),
    );
    assert_eq!(s, 200, "{v}");
    let ddoc = db.json("GET", "/pdb/_design/global_some", None).1;
    assert_eq!(ddoc["options"], json!({"partitioned": false}));
    let ex = find("/pdb/_explain", json!({"selector": {"some": "field"}}));
    assert_eq!(ex["index"]["ddoc"], "_design/global_some", "{ex}");
    assert_eq!(ex["index"]["partitioned"], false);
    let v = find(
        "/pdb/_find",
        json!({"selector": {"some": "field"}, "limit": 100}),
    );
    assert_eq!(found_ids(&v).len(), 100);
    let ex = find(
        "/pdb/_partition/foo/_explain",
        json!({"selector": {"some": "field"}}),
    );
    assert_eq!(ex["index"]["name"], "_all_docs");
    let v = find(
        "/pdb/_partition/foo/_find",
        json!({"selector": {"some": "field"}, "limit": 50}),
    );
    assert!(found_ids(&v).len() == 50 && found_ids(&v).iter().all(|i| i.starts_with("foo:")));

    // Sorting needs an index of the query's kind.
    let (s, v) = db.json(
        "POST",
        "/pdb/_partition/foo/_find",
        Some(json!({"selector": {"some": "field"}, "sort": ["some"]})),
    );
    assert_eq!(
        (s, v["reason"].as_str()),
        (
            400,
            Some("No partitioned index exists for this sort, try indexing by the sort fields.")
        )
    );
    let (s, v) = db.json(
        "POST",
        "/pdb/_find",
        Some(json!({"selector": {"value": {"$gt": 0}}, "sort": ["value"]})),
    );
    assert_eq!(
        (s, v["reason"].as_str()),
        (
            400,
            Some("No global index exists for this sort, try indexing by the sort fields.")
        )
    );
    let v = find(
        "/pdb/_partition/foo/_find",
        json!({"selector": {"value": {"$gt": 90}}, "sort": [{"value": "desc"}]}),
    );
    assert_eq!(
        found_ids(&v),
        ["foo:100", "foo:98", "foo:96", "foo:94", "foo:92"]
    );

    // Options CouchDB refuses.
    let (s, v) = db.json(
        "POST",
        "/pdb/_index",
        Some(json!({"index": {"fields": ["group"]}, "ddoc": "global_some", "partitioned": true})),
    );
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_partitioned_option")),
        "{v}"
    );
    let (s, v) = db.json(
        "POST",
        "/pdb/_index",
        Some(json!({"index": {"fields": ["group"]}, "partitioned": "yes"})),
    );
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_partitioned_value")),
        "{v}"
    );
    let plain = Db::new();
    let (s, v) = plain.json(
        "POST",
        "/db/_index",
        Some(json!({"index": {"fields": ["group"]}, "partitioned": true})),
    );
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_design_doc")),
        "{v}"
    );
    let (s, v) = plain.json(
        "POST",
        "/db/_index",
        Some(json!({"index": {"fields": ["group"]}, "partitioned": false})),
    );
    assert_eq!(s, 200, "{v}");
    let ex = plain
        .json(
            "POST",
            "/db/_explain",
            Some(json!({"selector": {"group": "one"}})),
        )
        .1;
    assert_eq!(
        (ex["partitioned"].as_bool(), &ex["mrargs"]["partition"]),
        (Some(false), &Value::Null)
    );
}
