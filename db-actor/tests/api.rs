//! The database actor's HTTP surface, natively over rusqlite.

mod common;

use common::Db;
use serde_json::{json, Value};
use shared::http::Request;

#[test]
fn database_lifecycle() {
    let db = Db::new();
    let (s, v) = db.json("PUT", "/db", None);
    assert_eq!((s, v["error"].as_str()), (412, Some("file_exists")));
    let (s, info) = db.json("GET", "/db", None);
    assert_eq!(s, 200);
    assert_eq!(info["db_name"], "db");
    assert_eq!(info["doc_count"], 0);
    assert_eq!(info["update_seq"], "0-t");
    for k in [
        "purge_seq",
        "sizes",
        "instance_start_time",
        "compact_running",
        "props",
        "cluster",
        "doc_del_count",
    ] {
        assert!(info.get(k).is_some(), "{k}");
    }
    db.put("a", json!({"x": 1}));
    assert_eq!(db.json("DELETE", "/db", None).0, 200);
    assert_eq!(
        db.json("GET", "/db", None),
        (
            404,
            json!({"error": "not_found", "reason": "Database does not exist."})
        )
    );
    assert_eq!(db.json("GET", "/db/a", None).0, 404);
    assert_eq!(db.json("DELETE", "/db", None).0, 404);
    assert_eq!(db.json("PUT", "/db", None).0, 201);
    assert_eq!(
        db.json("GET", "/db", None).1["doc_count"],
        0,
        "recreated database starts empty"
    );
    assert_eq!(db.json("GET", "/db/a", None).0, 404);
    let (s, v) = db.json("PUT", "/Bad", None);
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("illegal_database_name"))
    );
}

#[test]
fn document_crud_and_conflicts() {
    let db = Db::new();
    let r1 = db.put("doc", json!({"v": 1}));
    assert!(r1.starts_with("1-") && r1.len() == 34);
    let r = db.call("GET", "/db/doc", None);
    assert_eq!(r.header("etag"), Some(format!("\"{r1}\"").as_str()));
    assert_eq!(r.json_body(), json!({"_id": "doc", "_rev": r1, "v": 1}));
    // Stale or missing rev: 409.
    assert_eq!(
        db.json("PUT", "/db/doc", Some(json!({"v": 2}))).1["error"],
        "conflict"
    );
    assert_eq!(
        db.json("PUT", "/db/doc", Some(json!({"_rev": "1-abc", "v": 2})))
            .0,
        409
    );
    let r2 = db.put("doc", json!({"_rev": r1, "v": 2}));
    assert!(r2.starts_with("2-"));
    assert_eq!(
        db.json("PUT", "/db/doc", Some(json!({"_rev": r1, "v": 3})))
            .0,
        409
    );
    // Rev via query string and If-Match.
    let r3 = db
        .json("PUT", &format!("/db/doc?rev={r2}"), Some(json!({"v": 3})))
        .1["rev"]
        .as_str()
        .unwrap()
        .to_string();
    let req = Request::new("PUT", "/db/doc", "")
        .with_header("if-match", &format!("\"{r3}\""))
        .with_body(json!({"v": 4}).to_string());
    assert_eq!(db.request(req).status, 201);
    // Body and query revs must agree.
    let (s, v) = db.json(
        "PUT",
        &format!("/db/doc?rev={r1}"),
        Some(json!({"_rev": r2})),
    );
    assert_eq!(
        (s, v["reason"].as_str()),
        (
            400,
            Some("Document rev from request body and query string have different values")
        )
    );
    // If-None-Match.
    let cur = db.json("GET", "/db/doc", None).1["_rev"]
        .as_str()
        .unwrap()
        .to_string();
    let req =
        Request::new("GET", "/db/doc", "").with_header("if-none-match", &format!("\"{cur}\""));
    assert_eq!(db.request(req).status, 304);
    // Delete then recreate: the new revision continues the deleted branch.
    assert_eq!(db.json("DELETE", "/db/doc", None).0, 409);
    let (s, v) = db.json("DELETE", &format!("/db/doc?rev={cur}"), None);
    assert_eq!(s, 200);
    let del = v["rev"].as_str().unwrap().to_string();
    assert!(del.starts_with("5-"));
    assert_eq!(
        db.json("GET", "/db/doc", None),
        (404, json!({"error": "not_found", "reason": "deleted"}))
    );
    let (s, v) = db.json("GET", &format!("/db/doc?rev={del}"), None);
    assert_eq!((s, &v["_deleted"]), (200, &json!(true)));
    let again = db.put("doc", json!({"v": 6}));
    assert!(again.starts_with("6-"));
    assert_eq!(
        db.json("GET", "/db/nope", None),
        (404, json!({"error": "not_found", "reason": "missing"}))
    );
    assert_eq!(db.json("DELETE", "/db/nope?rev=1-a", None).0, 404);
    let info = db.json("GET", "/db", None).1;
    assert_eq!(
        (info["doc_count"].clone(), info["doc_del_count"].clone()),
        (json!(1), json!(0))
    );
}

#[test]
fn same_edit_gives_same_rev() {
    let (a, b) = (Db::new(), Db::new());
    assert_eq!(
        a.put("x", json!({"k": [1, 2]})),
        b.put("x", json!({"k": [1, 2]}))
    );
    assert_ne!(a.put("y", json!({"k": 1})), b.put("y", json!({"k": 2})));
}

#[test]
fn bad_input_is_rejected_and_loses_nothing() {
    let db = Db::new();
    let rev = db.put("keep", json!({"v": 1}));
    let cases: Vec<(&str, &str, &str, u16, &str)> = vec![
        ("PUT", "/db/keep", "{not json", 400, "bad_request"),
        ("PUT", "/db/keep", "[1,2]", 400, "bad_request"),
        ("PUT", "/db/_foo", "{}", 400, "illegal_docid"),
        ("PUT", "/db/keep", r#"{"_rev":"bogus"}"#, 400, "bad_request"),
        ("PUT", "/db/keep", r#"{"_zap":1}"#, 400, "doc_validation"),
        (
            "POST",
            "/db/_bulk_docs",
            r#"{"docs":[{"_id":"ok1"},{"_id":"_bad"}]}"#,
            400,
            "illegal_docid",
        ),
        (
            "POST",
            "/db/_bulk_docs",
            r#"{"docs":5}"#,
            400,
            "bad_request",
        ),
        ("GET", "/db/keep?rev=xyz", "", 400, "bad_request"),
        (
            "GET",
            "/db/_all_docs?limit=-3",
            "",
            400,
            "query_parse_error",
        ),
        ("PATCH", "/db/keep", "", 405, "method_not_allowed"),
        ("GET", "/db/_bulk_docs", "", 405, "method_not_allowed"),
        ("PUT", "/db/_revs_limit", "-1", 400, "bad_request"),
    ];
    for (m, url, body, status, error) in cases {
        let (path, qs) = url.split_once('?').unwrap_or((url, ""));
        let req = Request::new(m, path, qs)
            .with_header("content-type", "application/json")
            .with_body(body);
        let r = db.request(req);
        assert_eq!(
            (r.status, r.json_body()["error"].as_str().unwrap()),
            (status, error),
            "{m} {url} {body}"
        );
        assert!(r.json_body()["reason"].is_string());
    }
    // No content type on a JSON POST: 415.
    let r = db.request(Request::new("POST", "/db/_bulk_docs", "").with_body("{}"));
    assert_eq!(r.status, 415);
    // Nothing was written by any of the failures.
    assert_eq!(db.json("GET", "/db/keep", None).1["_rev"], rev);
    assert_eq!(db.json("GET", "/db/ok1", None).0, 404);
    assert_eq!(db.json("GET", "/db", None).1["update_seq"], "1-t");
}

#[test]
fn oversize_documents_are_413() {
    let mut db = Db::new();
    db.limits.max_document_size = 1000;
    let big = json!({"s": "x".repeat(2000)});
    let (s, v) = db.json("PUT", "/db/big", Some(big.clone()));
    assert_eq!((s, v["error"].as_str()), (413, Some("document_too_large")));
    let (s, _) = db.json(
        "POST",
        "/db/_bulk_docs",
        Some(json!({"docs": [{"_id": "a"}, big]})),
    );
    assert_eq!(s, 413);
    assert_eq!(db.json("GET", "/db/a", None).0, 404);
}

#[test]
fn large_bodies_are_split_across_values() {
    let db = Db::new();
    let s = "é".repeat(3_000_000); // 6 MB of UTF-8: more than one SQLite value.
    db.put("big", json!({"s": s}));
    assert_eq!(
        db.json("GET", "/db/big", None).1["s"]
            .as_str()
            .unwrap()
            .len(),
        s.len()
    );
}

#[test]
fn post_copy_and_design_docs() {
    let db = Db::new();
    let r = db.call("POST", "/db", Some(json!({"a": 1})));
    assert_eq!(r.status, 201);
    let id = r.json_body()["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(r.header("location"), Some(format!("/db/{id}").as_str()));
    let (_, v) = db.json("POST", "/db?batch=ok", Some(json!({"_id": "b"})));
    assert_eq!(v, json!({"ok": true, "id": "b"}));
    let req = Request::new("COPY", &format!("/db/{id}"), "").with_header("destination", "c%2Fd");
    let r = db.request(req);
    assert_eq!(r.status, 201, "{:?}", r.json_body());
    assert_eq!(db.json("GET", "/db/c%2Fd", None).1["a"], 1);
    let rev = db.put("_design/app", json!({"views": {}}));
    assert_eq!(db.json("GET", "/db/_design/app", None).1["_rev"], rev);
    assert_eq!(db.json("GET", "/db/_design%2Fapp", None).1["_rev"], rev);
    let (_, v) = db.json("GET", "/db/_design_docs", None);
    assert_eq!(v["total_rows"], 1);
    assert_eq!(v["rows"][0]["id"], "_design/app");
}

#[test]
fn replicated_edits_make_conflicts_and_winners() {
    let db = Db::new();
    let docs = json!({"new_edits": false, "docs": [
        {"_id": "d", "_rev": "2-b", "_revisions": {"start": 2, "ids": ["b", "a"]}, "side": "b"},
        {"_id": "d", "_rev": "2-c", "_revisions": {"start": 2, "ids": ["c", "a"]}, "side": "c"},
        {"_id": "d", "_rev": "3-e", "_deleted": true, "_revisions": {"start": 3, "ids": ["e", "d", "a"]}},
    ]});
    let (s, v) = db.json("POST", "/db/_bulk_docs", Some(docs.clone()));
    assert_eq!((s, v), (201, json!([])));
    // Idempotent.
    db.json("POST", "/db/_bulk_docs", Some(docs));
    let (_, doc) = db.json(
        "GET",
        "/db/d?conflicts=true&deleted_conflicts=true&revs=true",
        None,
    );
    assert_eq!(
        doc["_rev"], "2-c",
        "live beats a deeper deletion; then highest hash"
    );
    assert_eq!(doc["side"], "c");
    assert_eq!(doc["_conflicts"], json!(["2-b"]));
    assert_eq!(doc["_deleted_conflicts"], json!(["3-e"]));
    assert_eq!(doc["_revisions"], json!({"start": 2, "ids": ["c", "a"]}));
    let (_, info) = db.json("GET", "/db/d?revs_info=true", None);
    assert_eq!(
        info["_revs_info"],
        json!([{"rev": "2-c", "status": "available"}, {"rev": "1-a", "status": "missing"}])
    );
    // open_revs=all as JSON: every leaf.
    let req =
        Request::new("GET", "/db/d", "open_revs=all").with_header("accept", "application/json");
    let all = db.request(req).json_body();
    let mut revs: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ok"]["_rev"].as_str().unwrap().to_string())
        .collect();
    revs.sort();
    assert_eq!(revs, ["2-b", "2-c", "3-e"]);
    // open_revs list with a missing one, and multipart by default.
    let req = Request::new("GET", "/db/d", "open_revs=%5B%222-b%22%2C%229-z%22%5D")
        .with_header("accept", "application/json");
    assert_eq!(db.request(req).json_body()[1], json!({"missing": "9-z"}));
    let r = db.request(Request::new("GET", "/db/d", "open_revs=all"));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("multipart/mixed"));
    assert_eq!(
        String::from_utf8(r.body)
            .unwrap()
            .matches("\"_id\":\"d\"")
            .count(),
        3
    );
    // latest=true resolves an ancestor to its leaves.
    let req = Request::new("GET", "/db/d", "open_revs=%5B%221-a%22%5D&latest=true")
        .with_header("accept", "application/json");
    assert_eq!(db.request(req).json_body().as_array().unwrap().len(), 3);
    // Resolve the conflict by deleting the loser: winner stays 2-c, no conflicts left.
    db.json("DELETE", "/db/d?rev=2-b", None);
    let (_, doc) = db.json("GET", "/db/d?conflicts=true", None);
    assert_eq!(doc["_rev"], "2-c");
    assert!(doc.get("_conflicts").is_none());
}

#[test]
fn revs_limit_stems_history() {
    let db = Db::new();
    assert_eq!(db.json("GET", "/db/_revs_limit", None).1, json!(1000));
    assert_eq!(
        db.call("PUT", "/db/_revs_limit", Some(json!(3))).status,
        200
    );
    let mut rev = db.put("s", json!({"n": 0}));
    for n in 1..10 {
        rev = db.put("s", json!({"_rev": rev, "n": n}));
    }
    let (_, doc) = db.json("GET", "/db/s?revs=true", None);
    assert_eq!(doc["_revisions"]["start"], 10);
    assert_eq!(doc["_revisions"]["ids"].as_array().unwrap().len(), 3);
}

#[test]
fn bulk_get_revs_diff_missing_revs() {
    let db = Db::new();
    let r = db.put("a", json!({"v": 1}));
    let (_, v) = db.json(
        "POST",
        "/db/_bulk_get?revs=true",
        Some(json!({"docs": [
            {"id": "a", "rev": r}, {"id": "a"}, {"id": "zz"}, {"id": "a", "rev": "9-x"}
        ]})),
    );
    let res = v["results"].as_array().unwrap();
    assert_eq!(res[0]["docs"][0]["ok"]["_revisions"]["start"], 1);
    assert_eq!(res[1]["docs"][0]["ok"]["_rev"], r);
    assert_eq!(res[2]["docs"][0]["error"]["error"], "not_found");
    assert_eq!(res[3]["docs"][0]["error"]["rev"], "9-x");
    let (_, d) = db.json(
        "POST",
        "/db/_revs_diff",
        Some(json!({"a": [r, "2-x"], "b": ["1-q"]})),
    );
    assert_eq!(
        d,
        json!({"a": {"missing": ["2-x"], "possible_ancestors": [r]}, "b": {"missing": ["1-q"]}})
    );
    let (_, m) = db.json("POST", "/db/_missing_revs", Some(json!({"a": [r, "2-x"]})));
    assert_eq!(m, json!({"missing_revs": {"a": ["2-x"]}}));
}

#[test]
fn all_docs_options() {
    let db = Db::new();
    for id in ["a", "b", "c", "d", "e"] {
        db.put(id, json!({"id": id}));
    }
    let rev_c = db.json("GET", "/db/c", None).1["_rev"]
        .as_str()
        .unwrap()
        .to_string();
    db.json("DELETE", &format!("/db/c?rev={rev_c}"), None);
    let ids = |url: &str| -> (Value, Vec<String>) {
        let (s, v) = db.json("GET", url, None);
        assert_eq!(s, 200, "{url}: {v}");
        let ids = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap_or("-").to_string())
            .collect();
        (v, ids)
    };
    let (v, all) = ids("/db/_all_docs");
    assert_eq!(all, ["a", "b", "d", "e"]);
    assert_eq!(
        (v["total_rows"].clone(), v["offset"].clone()),
        (json!(4), json!(0))
    );
    let (v, r) = ids("/db/_all_docs?startkey=%22b%22&limit=2");
    assert_eq!(r, ["b", "d"]);
    assert_eq!(v["offset"], 1);
    // The deleted "c" before the start key does not count.
    let (v, r) = ids("/db/_all_docs?startkey=%22d%22");
    assert_eq!(r, ["d", "e"]);
    assert_eq!(v["offset"], 2);
    let (v, _) = ids("/db/_all_docs?descending=true&startkey=%22b%22");
    assert_eq!(v["offset"], 2);
    assert_eq!(
        ids("/db/_all_docs?startkey=%22b%22&endkey=%22d%22&inclusive_end=false").1,
        ["b"]
    );
    let (v, r) = ids("/db/_all_docs?descending=true&startkey=%22d%22&skip=1");
    assert_eq!(r, ["b", "a"]);
    assert_eq!(v["offset"], 2);
    assert_eq!(
        ids("/db/_all_docs?descending=true&endkey=%22b%22&inclusive_end=false").1,
        ["e", "d"]
    );
    assert_eq!(ids("/db/_all_docs?key=%22d%22").1, ["d"]);
    assert_eq!(ids("/db/_all_docs?endkey=5").1, Vec::<String>::new());
    let (_, v) = db.json(
        "GET",
        "/db/_all_docs?include_docs=true&limit=1&update_seq=true",
        None,
    );
    assert_eq!(v["rows"][0]["doc"]["id"], "a");
    assert_eq!(v["update_seq"], "6-t");
    let (_, v) = db.json(
        "POST",
        "/db/_all_docs?include_docs=true",
        Some(json!({"keys": ["c", "zz", "a", 1]})),
    );
    assert_eq!(v["rows"][0]["value"]["deleted"], true);
    assert_eq!(v["rows"][0]["doc"], Value::Null);
    assert_eq!(v["rows"][1], json!({"key": "zz", "error": "not_found"}));
    assert_eq!(v["rows"][2]["doc"]["_id"], "a");
    assert_eq!(v["rows"][3], json!({"key": 1, "error": "not_found"}));
}

#[test]
fn local_docs() {
    let db = Db::new();
    let (s, v) = db.json("PUT", "/db/_local/ck", Some(json!({"seq": 1})));
    assert_eq!((s, v["rev"].as_str()), (201, Some("0-1")));
    assert_eq!(
        db.json("PUT", "/db/_local/ck", Some(json!({"seq": 2}))).0,
        409
    );
    assert_eq!(
        db.json(
            "PUT",
            "/db/_local/ck",
            Some(json!({"_rev": "0-1", "seq": 2}))
        )
        .1["rev"],
        "0-2"
    );
    assert_eq!(
        db.json("GET", "/db/_local/ck", None).1,
        json!({"_id": "_local/ck", "_rev": "0-2", "seq": 2})
    );
    let (_, v) = db.json("GET", "/db/_local_docs?include_docs=true", None);
    assert_eq!(v["rows"][0]["doc"]["seq"], 2);
    // Local docs are not in _all_docs or _changes and do not move the sequence.
    assert_eq!(db.json("GET", "/db/_all_docs", None).1["rows"], json!([]));
    assert_eq!(db.json("GET", "/db", None).1["update_seq"], "0-t");
    assert_eq!(db.json("DELETE", "/db/_local/ck?rev=0-2", None).0, 200);
    assert_eq!(db.json("GET", "/db/_local/ck", None).0, 404);
}

#[test]
fn changes_feed() {
    let db = Db::new();
    let ra = db.put("a", json!({}));
    db.put("b", json!({}));
    db.put("a", json!({"_rev": ra, "v": 2}));
    let (_, v) = db.json("GET", "/db/_changes", None);
    let ids: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["b", "a"],
        "a document appears once, at its latest sequence"
    );
    assert_eq!(v["last_seq"], "3-t");
    assert_eq!(v["pending"], 0);
    let (_, v) = db.json("GET", "/db/_changes?limit=1", None);
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert_eq!(
        (v["last_seq"].clone(), v["pending"].clone()),
        (json!("2-t"), json!(1))
    );
    let (_, v) = db.json("GET", "/db/_changes?since=2-t&include_docs=true", None);
    assert_eq!(v["results"][0]["doc"]["v"], 2);
    // A sequence of another incarnation (the database was deleted and
    // created again since it was issued) starts from the beginning.
    let (_, v) = db.json("GET", "/db/_changes?since=%222-gone%22", None);
    assert_eq!(v["results"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = db.json("POST", "/db/_changes", Some(json!({"since": "3-gone"})));
    assert_eq!(v["results"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = db.json("GET", "/db/_changes?descending=true&limit=1", None);
    assert_eq!(v["results"][0]["id"], "a");
    let (_, v) = db.json(
        "POST",
        "/db/_changes?filter=_doc_ids",
        Some(json!({"doc_ids": ["b"]})),
    );
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert_eq!(v["last_seq"], "3-t");
    let (_, v) = db.json("GET", "/db/_changes?since=now", None);
    assert_eq!(
        (v["results"].clone(), v["last_seq"].clone()),
        (json!([]), json!("3-t"))
    );
    // A long-poll with nothing new answers after its timeout with no rows.
    let (_, v) = db.json(
        "GET",
        "/db/_changes?feed=longpoll&since=now&timeout=10",
        None,
    );
    assert_eq!(v["results"], json!([]));
    // Conflicts in style=all_docs, deletions flagged.
    db.json(
        "POST",
        "/db/_bulk_docs",
        Some(json!({"new_edits": false, "docs": [{"_id": "b", "_rev": "1-zzz"}]})),
    );
    let (_, v) = db.json("GET", "/db/_changes?style=all_docs&since=3", None);
    assert_eq!(v["results"][0]["changes"].as_array().unwrap().len(), 2);
}

#[test]
fn continuous_and_eventsource_feeds() {
    let db = Db::new();
    for i in 0..150 {
        db.put(&format!("d{i:03}"), json!({"i": i}));
    }
    let lines = |url: &str| -> Vec<Value> {
        let r = db.call("GET", url, None);
        assert_eq!(r.status, 200);
        String::from_utf8(r.body)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = lines("/db/_changes?feed=continuous&timeout=0");
    assert_eq!(all.len(), 151, "150 rows across batches, then last_seq");
    assert_eq!(all[0]["id"], "d000");
    assert_eq!(all[150], json!({"last_seq": "150-t", "pending": 0}));
    let limited = lines("/db/_changes?feed=continuous&since=140&limit=3&include_docs=true");
    assert_eq!(limited.len(), 4);
    assert_eq!(limited[0]["doc"]["i"], 140);
    assert_eq!(limited[3], json!({"last_seq": "143-t", "pending": 7}));
    let r = db.call("GET", "/db/_changes?feed=eventsource&since=148", None);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.starts_with("data: {\"seq\":\"149-t\",\"id\":\"d148\""),
        "{text}"
    );
    assert!(text.contains("\nid: 150-t\n\n"));
}

/// `filter=_selector` and `filter=_design`, ascending and descending, over
/// more changes than one scan batch.
#[test]
fn changes_filtered_by_selector_and_design() {
    let db = Db::new();
    let docs: Vec<Value> = (0..1200)
        .map(|i| json!({"_id": format!("d{i:04}"), "kind": if i % 100 == 7 { "rare" } else { "common" }, "n": i}))
        .collect();
    db.json("POST", "/db/_bulk_docs", Some(json!({ "docs": docs })));
    db.put("_design/app", json!({"views": {}}));
    let sel = json!({"selector": {"kind": "rare", "n": {"$gte": 200}}});
    let ids = common::change_ids;
    let (st, v) = db.json("POST", "/db/_changes?filter=_selector", Some(sel.clone()));
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        ids(&v),
        [
            "d0207", "d0307", "d0407", "d0507", "d0607", "d0707", "d0807", "d0907", "d1007",
            "d1107"
        ]
    );
    let (_, v) = db.json(
        "POST",
        "/db/_changes?filter=_selector&limit=2&descending=true",
        Some(sel.clone()),
    );
    assert_eq!(ids(&v), ["d1107", "d1007"]);
    let (_, v) = db.json(
        "POST",
        "/db/_changes?filter=_selector&include_docs=true&limit=1",
        Some(sel),
    );
    assert_eq!(v["results"][0]["doc"]["n"], 207);
    let (_, v) = db.json("GET", "/db/_changes?filter=_design", None);
    assert_eq!(ids(&v), ["_design/app"]);
    let (_, v) = db.json("GET", "/db/_changes?filter=_design&descending=true", None);
    assert_eq!(ids(&v), ["_design/app"]);
    // Missing or malformed selectors are 400s.
    assert_eq!(
        db.json("POST", "/db/_changes?filter=_selector", Some(json!({})))
            .0,
        400
    );
    assert_eq!(
        db.json(
            "POST",
            "/db/_changes?filter=_selector",
            Some(json!({"selector": {"n": {"$bogus": 1}}}))
        )
        .0,
        400
    );
}

/// `_users` and `_replicator` exist from the first request that uses them,
/// as CouchDB creates them at start-up; creating one explicitly still
/// answers as for any database.
#[test]
fn system_databases_are_created_on_first_use() {
    for name in ["_users", "_replicator"] {
        let db = Db::empty();
        let (status, v) = db.json("GET", &format!("/{name}/nope"), None);
        assert_eq!(
            (status, v["reason"].as_str()),
            (404, Some("missing")),
            "{name}: {v}"
        );
        assert_eq!(db.json("GET", &format!("/{name}"), None).0, 200, "{name}");
        assert_eq!(db.json("PUT", &format!("/{name}"), None).0, 412, "{name}");
    }
}

/// A `_bulk_docs` of distinct ids goes out several rows per statement:
/// new documents, updates, deletions, a conflict, bodies of several parts
/// and inline attachments all read back as written, with one sequence each.
#[test]
fn bulk_docs_written_together_read_back_as_written() {
    let db = Db::new();
    let old = db.put("old", json!({"v": 0}));
    let gone = db.put("gone", json!({"v": 0}));
    db.put("clash", json!({"v": 0}));
    db.put(
        "_design/v",
        json!({"validate_doc_update": "function (d) { if (d.bad) throw({forbidden: 'bad'}); }"}),
    );
    let big = "x".repeat(2_500_000);
    let mut docs = vec![
        json!({"_id": "old", "_rev": old, "v": 1}),
        json!({"_id": "gone", "_rev": gone, "_deleted": true}),
        json!({"_id": "clash", "v": 1}),
        json!({"_id": "big", "text": big}),
        json!({"_id": "att", "_attachments": {"a.txt": {"content_type": "text/plain", "data": "aGVsbG8="}}}),
    ];
    docs.extend((0..150).map(|i| json!({"_id": format!("n{i:03}"), "i": i})));
    docs.push(json!({"_id": "refused", "bad": true}));
    let (s, v) = db.json("POST", "/db/_bulk_docs", Some(json!({ "docs": docs })));
    assert_eq!(s, 201, "{v}");
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 156);
    assert_eq!(rows[2]["error"], "conflict", "{}", rows[2]);
    assert_eq!(rows[155]["error"], "forbidden", "{}", rows[155]);
    let ok = |(i, r): (usize, &Value)| i == 2 || r["ok"] == true;
    assert!(rows[..155].iter().enumerate().all(ok));
    assert_eq!(db.json("GET", "/db/refused", None).0, 404);
    assert_eq!(db.json("GET", "/db/old", None).1["v"], 1);
    assert_eq!(db.json("GET", "/db/gone", None).0, 404);
    assert_eq!(db.json("GET", "/db/clash", None).1["v"], 0);
    assert_eq!(
        db.json("GET", "/db/big", None).1["text"]
            .as_str()
            .map(str::len),
        Some(2_500_000)
    );
    let r = db.call("GET", "/db/att/a.txt", None);
    assert_eq!((r.status, r.body.as_slice()), (200, b"hello".as_slice()));
    assert_eq!(db.json("GET", "/db/n149", None).1["i"], 149);
    let (_, info) = db.json("GET", "/db", None);
    assert_eq!(
        (info["doc_count"].as_u64(), info["doc_del_count"].as_u64()),
        (Some(155), Some(1))
    );
    let (_, changes) = db.json("GET", "/db/_changes", None);
    let seqs: Vec<u64> = changes["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| shared::seq::parse_number(c["seq"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(seqs.len(), 156);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // Replicated revisions the same way, one already present.
    let (_, n0) = db.json("GET", "/db/n000", None);
    let replicated: Vec<_> = (0..30)
        .map(|i| json!({"_id": format!("r{i}"), "_rev": "1-abc", "i": i}))
        .chain([n0.clone()])
        .collect();
    let (s, v) = db.json(
        "POST",
        "/db/_bulk_docs",
        Some(json!({"docs": replicated, "new_edits": false})),
    );
    assert_eq!((s, v), (201, json!([])));
    assert_eq!(db.json("GET", "/db/r29?rev=1-abc", None).1["i"], 29);
    assert_eq!(db.json("GET", "/db", None).1["doc_count"], 185);
}

/// A `_bulk_get` bigger than one read-ahead statement, mixing winners,
/// superseded revisions, `latest` over conflicts, deleted and missing
/// documents, attachments and repeated entries, answers each entry
/// exactly as the single-document read of the same revision does.
#[test]
fn large_bulk_get_matches_single_reads() {
    let db = Db::new();
    let mut entries = Vec::new();
    for i in 0..130 {
        let id = format!("d{i:03}");
        let r1 = db.put(&id, json!({"i": i}));
        match i % 5 {
            0 => entries.push(json!({"id": id})),
            1 => {
                let r2 = db.put(&id, json!({"_rev": r1, "i": i, "v": 2}));
                entries.push(json!({"id": id, "rev": r1}));
                entries.push(json!({"id": id, "rev": r2}));
            }
            2 => {
                // Two leaves on top of r1: `latest` from r1 yields both.
                let (s, _) = db.json(
                    "POST",
                    "/db/_bulk_docs",
                    Some(json!({"new_edits": false, "docs": [
                        {"_id": id, "_rev": "2-aaa", "_revisions": {"start": 2, "ids": ["aaa", &r1[2..]]}, "c": 1},
                        {"_id": id, "_rev": "2-bbb", "_revisions": {"start": 2, "ids": ["bbb", &r1[2..]]}, "c": 2}
                    ]})),
                );
                assert_eq!(s, 201);
                entries.push(json!({"id": id, "rev": r1}));
                entries.push(json!({"id": id}));
            }
            3 => {
                let (s, _) = db.json("DELETE", &format!("/db/{id}?rev={r1}"), None);
                assert_eq!(s, 200);
                entries.push(json!({"id": id}));
                entries.push(json!({"id": id, "rev": r1}));
            }
            _ => {
                let r2 = db.put(
                    &id,
                    json!({"_rev": r1, "_attachments": {"a.txt": {
                        "content_type": "text/plain", "data": "aGVsbG8="
                    }}}),
                );
                entries.push(json!({"id": id, "rev": r2}));
                entries.push(json!({"id": id, "rev": r2}));
            }
        }
    }
    entries.push(json!({"id": "nope"}));
    entries.push(json!({"id": "d001", "rev": "7-missing"}));
    let n = entries.len();
    assert!(n > 200);
    let enc = |s: &str| {
        s.replace('"', "%22")
            .replace('[', "%5B")
            .replace(']', "%5D")
    };
    for latest in ["&latest=true", ""] {
        let (s, v) = db.json(
            "POST",
            &format!("/db/_bulk_get?revs=true&attachments=true{latest}"),
            Some(json!({ "docs": entries })),
        );
        assert_eq!(s, 200);
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), n);
        for (e, r) in entries.iter().zip(results) {
            let id = e["id"].as_str().unwrap();
            assert_eq!(r["id"], id);
            let single = match e.get("rev") {
                Some(rev) => {
                    let qs = format!(
                        "open_revs={}&revs=true&attachments=true{latest}",
                        enc(&json!([rev]).to_string())
                    );
                    let req = Request::new("GET", &format!("/db/{id}"), &qs)
                        .with_header("accept", "application/json");
                    db.request(req).json_body()
                }
                None => {
                    let url = format!("/db/{id}?revs=true&attachments=true");
                    let (s, d) = db.json("GET", &url, None);
                    if d["reason"] == "deleted" {
                        // The winner is a tombstone: it comes back as it is.
                        let rev = r["docs"][0]["ok"]["_rev"].as_str().unwrap();
                        let (s, d) = db.json("GET", &format!("{url}&rev={rev}"), None);
                        assert_eq!((s, &d["_deleted"]), (200, &json!(true)), "{e}");
                        json!([{ "ok": d }])
                    } else if s == 200 {
                        json!([{ "ok": d }])
                    } else {
                        json!([d])
                    }
                }
            };
            match &single {
                Value::Array(list) if list.iter().all(|x| x.get("ok").is_some()) => {
                    assert_eq!(r["docs"], single, "{e}")
                }
                _ => {
                    // Not found: an error entry naming the id.
                    let err = &r["docs"][0]["error"];
                    assert_eq!(err["id"], id, "{e}: {r}");
                    assert_eq!(err["error"], "not_found", "{e}: {r}");
                }
            }
        }
        // With `latest` a conflicted document's first revision yields both
        // leaves; without, a deleted document's old revision is still read.
        let d002 = results.iter().find(|r| r["id"] == "d002").unwrap();
        let d003 = results.iter().filter(|r| r["id"] == "d003").nth(1).unwrap();
        if latest.is_empty() {
            assert_eq!(d003["docs"][0]["ok"]["i"], 3);
            assert_eq!(d002["docs"].as_array().unwrap().len(), 1);
        } else {
            assert_eq!(d003["docs"][0]["ok"]["_deleted"], true);
            assert_eq!(d002["docs"].as_array().unwrap().len(), 2);
        }
    }
}

/// A bulk write inserts the rows of documents that had none without
/// SQLite's conflict handling; should such a row be there after all (only
/// a bug could put it there), the write fails instead of dropping it.
#[test]
fn a_new_documents_row_found_at_flush_fails_the_write() {
    use db_actor::store::DocRecord;
    use shared::rev_tree::RevTree;
    let db = Db::new();
    let engine = db.engine();
    let rec = |seq: u64| {
        let rev: shared::rev::Rev = "1-abc".parse().unwrap();
        let mut tree = RevTree::default();
        tree.add_edit(None, rev.clone(), false);
        DocRecord {
            id: "x".into(),
            seq,
            winner: rev,
            deleted: false,
            tree,
        }
    };
    engine.store.buffer_writes(&["x"]).unwrap();
    // Written behind the buffer's back: the read-ahead said "new".
    db.engine().store.save_doc(&rec(7)).unwrap();
    engine.store.save_doc(&rec(8)).unwrap();
    let e = engine.store.flush_writes().unwrap_err();
    assert_eq!(e.status, 500, "{e:?}");
    // Nothing of the buffered write replaced the row that was there.
    assert_eq!(engine.store.load_doc("x").unwrap().unwrap().seq, 7);
}

/// The counters are kept between requests, as the actor keeps them: a
/// transaction that rolls back leaves them as storage has them.
#[test]
fn kept_counters_follow_a_rolled_back_transaction() {
    let db = Db::new();
    assert_eq!(db.json("PUT", "/db/a", Some(json!({"x": 1}))).0, 201);
    let engine = db.engine();
    let before = engine.store.stats().unwrap();
    let undone: Result<(), shared::error::CouchError> = engine.transact(|| {
        let mut s = engine.store.stats()?;
        s.update_seq += 5;
        s.doc_count += 5;
        engine.store.save_stats(&s)?;
        Err(shared::error::CouchError::internal("stop"))
    });
    assert!(undone.is_err());
    assert_eq!(db.engine().store.stats().unwrap(), before);
    let (_, info) = db.json("GET", "/db", None);
    assert_eq!(
        (
            info["doc_count"].as_u64(),
            info["update_seq"]
                .as_str()
                .map(|s| s.split('-').next().unwrap().to_string())
        ),
        (Some(1), Some("1".to_string()))
    );
    assert_eq!(db.json("PUT", "/db/b", Some(json!({"x": 1}))).0, 201);
    assert_eq!(db.json("GET", "/db", None).1["doc_count"], json!(2));
}
