//! Behaviour the CouchDB ecosystem's own test suites (`make compat`) found
//! Settee getting wrong, pinned so it cannot come back. CouchDB 3 is the
//! reference for each.

mod common;

use common::Db;
use serde_json::{json, Value};
use shared::http::Request;

/// Superseded revisions stay readable until `_compact`, which drops them
/// (and the attachment contents only they referenced); `revs_info` says
/// which are still available.
#[test]
fn superseded_revisions_are_kept_until_compaction() {
    let db = Db::new();
    let r1 = db.put(
        "doc",
        json!({"v": 1, "_attachments": {"a.txt": {"content_type": "text/plain", "data": "b25l"}}}),
    );
    let r2 = db.put("doc", json!({"v": 2, "_rev": r1}));
    let r3 = db.put("doc", json!({"v": 3, "_rev": r2}));

    let (s, old) = db.json("GET", &format!("/db/doc?rev={r1}"), None);
    assert_eq!((s, &old["v"]), (200, &json!(1)));
    let att = db.call("GET", &format!("/db/doc/a.txt?rev={r1}"), None);
    assert_eq!((att.status, att.body.as_slice()), (200, &b"one"[..]));
    let (_, info) = db.json("GET", "/db/doc?revs_info=true", None);
    let statuses: Vec<&str> = info["_revs_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["available", "available", "available"]);
    let open = db
        .request(
            Request::new("GET", "/db/doc", &format!("open_revs=[\"{r2}\"]"))
                .with_header("accept", "application/json"),
        )
        .json_body();
    assert_eq!(open[0]["ok"]["v"], 2, "{open}");

    assert_eq!(db.json("POST", "/db/_compact", Some(json!({}))).0, 202);
    assert_eq!(db.json("GET", &format!("/db/doc?rev={r1}"), None).0, 404);
    assert_eq!(db.json("GET", &format!("/db/doc?rev={r2}"), None).0, 404);
    assert_eq!(
        db.call("GET", &format!("/db/doc/a.txt?rev={r1}"), None)
            .status,
        404
    );
    let (_, info) = db.json("GET", "/db/doc?revs_info=true", None);
    assert_eq!(
        info["_revs_info"],
        json!([
            {"rev": r3, "status": "available"},
            {"rev": r2, "status": "missing"},
            {"rev": r1, "status": "missing"},
        ])
    );
    assert_eq!(db.json("GET", "/db/doc", None).1["v"], 3);
}

/// Compaction keeps every leaf of a conflicted document, and the contents
/// a leaf still references.
#[test]
fn compaction_keeps_leaves_and_their_attachments() {
    let db = Db::new();
    let docs = json!({"new_edits": false, "docs": [
        {"_id": "c", "_rev": "1-a", "v": "a"},
        {"_id": "c", "_rev": "2-b", "v": "b", "_revisions": {"start": 2, "ids": ["b", "a"]},
         "_attachments": {"x": {"content_type": "text/plain", "data": "eA=="}}},
        {"_id": "c", "_rev": "2-c", "v": "c", "_revisions": {"start": 2, "ids": ["c", "a"]}},
    ]});
    assert_eq!(db.json("POST", "/db/_bulk_docs", Some(docs)).0, 201);
    assert_eq!(db.json("GET", "/db/c?rev=1-a", None).1["v"], "a");
    assert_eq!(db.json("POST", "/db/_compact", Some(json!({}))).0, 202);
    assert_eq!(db.json("GET", "/db/c?rev=1-a", None).0, 404);
    assert_eq!(db.json("GET", "/db/c?rev=2-b", None).1["v"], "b");
    assert_eq!(db.json("GET", "/db/c?rev=2-c", None).1["v"], "c");
    assert_eq!(db.call("GET", "/db/c/x?rev=2-b", None).body, b"x");
}

/// A stemmed revision is gone from the tree, so its body goes at once.
#[test]
fn stemmed_revisions_lose_their_bodies() {
    let db = Db::new();
    assert_eq!(
        db.call("PUT", "/db/_revs_limit", Some(json!(2))).status,
        200
    );
    let r1 = db.put("d", json!({"v": 1}));
    let r2 = db.put("d", json!({"v": 2, "_rev": r1}));
    db.put("d", json!({"v": 3, "_rev": r2}));
    assert_eq!(db.json("GET", &format!("/db/d?rev={r2}"), None).1["v"], 2);
    assert_eq!(db.json("GET", &format!("/db/d?rev={r1}"), None).0, 404);
    let kept = db.engine().store.body_revs("d").unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
}

/// `_replication_*` members are kept in the body, as CouchDB's
/// `couch_doc` keeps them; other unknown `_` members are refused.
#[test]
fn replication_state_members_are_stored() {
    let db = Db::new();
    let rev = db.put(
        "r",
        json!({"source": "a", "_replication_state": "triggered", "_replication_id": "x",
               "_replication_state_time": 1, "_replication_state_reason": "r",
               "_replication_stats": {"docs_written": 1}}),
    );
    let (_, doc) = db.json("GET", "/db/r", None);
    assert_eq!(doc["_rev"], json!(rev));
    assert_eq!(doc["_replication_state"], "triggered");
    assert_eq!(doc["_replication_stats"]["docs_written"], 1);
    let (s, v) = db.json("PUT", "/db/r2", Some(json!({"_replication_bogus": 1})));
    assert_eq!((s, v["error"].as_str()), (400, Some("doc_validation")));
    let (s, v) = db.json("PUT", "/db/r3", Some(json!({"_deleted": "yes"})));
    assert_eq!((s, v["error"].as_str()), (400, Some("doc_validation")));
    assert_eq!(db.json("GET", "/db/r3", None).0, 404);
}

/// A reversed `_all_docs` range selects nothing; CouchDB checks range
/// direction for views only.
#[test]
fn all_docs_reversed_range_is_empty() {
    let db = Db::new();
    db.put("a", json!({}));
    db.put("c", json!({}));
    let (s, v) = db.json("GET", "/db/_all_docs?startkey=%22c%22&endkey=%22a%22", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["rows"], json!([]));
    assert_eq!(v["total_rows"], 2);
}

/// `include_docs&attachments` inlines contents in `_all_docs` rows, as
/// PouchDB's `allDocs({attachments: true})` asks.
#[test]
fn all_docs_inlines_attachments() {
    let db = Db::new();
    db.put(
        "a",
        json!({"_attachments": {"t.txt": {"content_type": "text/plain", "data": "aGVsbG8="}}}),
    );
    let (_, v) = db.json(
        "GET",
        "/db/_all_docs?include_docs=true&attachments=true",
        None,
    );
    let att = &v["rows"][0]["doc"]["_attachments"]["t.txt"];
    assert_eq!(att["data"], "aGVsbG8=");
    assert!(att.get("stub").is_none());
    let (_, v) = db.json("GET", "/db/_all_docs?include_docs=true", None);
    assert_eq!(v["rows"][0]["doc"]["_attachments"]["t.txt"]["stub"], true);
    let (_, v) = db.json(
        "POST",
        "/db/_all_docs",
        Some(json!({"keys": ["a"], "include_docs": true, "attachments": true})),
    );
    assert_eq!(
        v["rows"][0]["doc"]["_attachments"]["t.txt"]["data"],
        "aGVsbG8="
    );
}

/// `_local` bodies are stored as sent, `_attachments` included.
#[test]
fn local_docs_keep_attachments_members() {
    let db = Db::new();
    let body =
        json!({"_attachments": {"f": {"content_type": "text/plain", "data": "eA=="}}, "k": 1});
    let (s, v) = db.json("PUT", "/db/_local/l", Some(body));
    assert_eq!(s, 201, "{v}");
    let (_, doc) = db.json("GET", "/db/_local/l", None);
    assert_eq!(doc["_attachments"]["f"]["data"], "eA==");
    assert_eq!(doc["k"], 1);
    let (s, _) = db.json("PUT", "/db/_local/m", Some(json!({"_other": 1})));
    assert_eq!(s, 400);
}

/// A malformed revision in `_bulk_docs` is that document's error; the
/// others are written.
#[test]
fn bulk_docs_bad_rev_is_per_document() {
    let db = Db::new();
    let (s, v) = db.json(
        "POST",
        "/db/_bulk_docs",
        Some(json!({"new_edits": false, "docs": [
            {"_id": "bare", "_rev": "1-"},
            {"_id": "good", "_rev": "1-abc"},
        ]})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v,
        json!([{"id": "bare", "error": "bad_request", "reason": "Invalid rev format"}])
    );
    assert_eq!(db.json("GET", "/db/good", None).1["_rev"], "1-abc");
    assert_eq!(db.json("GET", "/db/bare", None).0, 404);
    // Without an id to report it against, the request fails as a whole.
    let (s, _) = db.json(
        "POST",
        "/db/_bulk_docs",
        Some(json!({"docs": [{"_rev": "x"}]})),
    );
    assert_eq!(s, 400);
}

/// A JavaScript `_changes` filter that throws is an error, not an empty
/// feed.
#[test]
fn throwing_changes_filter_is_an_error() {
    let db = Db::new();
    db.put(
        "_design/f",
        json!({"filters": {"boom": "function(doc, req) { throw new Error('nope'); }"}}),
    );
    db.put("x", json!({}));
    let (s, v) = db.json("GET", "/db/_changes?filter=f/boom", None);
    assert_eq!(s, 500, "{v}");
    assert!(v["error"].is_string() && v["reason"].is_string(), "{v}");
}

/// Options CouchDB's `mango_opts` accepts are accepted end to end.
#[test]
fn mango_accepts_cluster_options_and_nulls() {
    let db = Db::new();
    db.put("a", json!({"n": 1}));
    let (s, v) = db.json(
        "POST",
        "/db/_index",
        Some(json!({"index": {"fields": ["n"]}, "w": 3, "name": "n"})),
    );
    assert_eq!(s, 200, "{v}");
    for body in [
        json!({"selector": {"n": 1}, "use_index": null}),
        json!({"selector": {"n": 1}, "r": 1, "bookmark": null}),
        json!({"selector": {"n": 1}, "stale": "ok"}),
    ] {
        let (s, v) = db.json("POST", "/db/_find", Some(body.clone()));
        assert_eq!(
            (s, v["docs"].as_array().map(Vec::len)),
            (200, Some(1)),
            "{body} {v}"
        );
        let (s, _) = db.json("POST", "/db/_explain", Some(body));
        assert_eq!(s, 200);
    }
}

/// `_local` documents may be written through `_bulk_docs` (PouchDB 5's
/// checkpointer does), with their own `0-N` revisions.
#[test]
fn bulk_docs_writes_local_documents() {
    let db = Db::new();
    let (s, v) = db.json(
        "POST",
        "/db/_bulk_docs",
        Some(json!({"docs": [{"_id": "_local/cp", "last_seq": 5}, {"_id": "d"}]})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v[0], json!({"ok": true, "id": "_local/cp", "rev": "0-1"}));
    assert_eq!(v[1]["id"], "d");
    let (_, doc) = db.json("GET", "/db/_local/cp", None);
    assert_eq!(
        (doc["last_seq"].as_i64(), doc["_rev"].as_str()),
        (Some(5), Some("0-1"))
    );
    let (_, v) = db.json(
        "POST",
        "/db/_bulk_docs",
        Some(json!({"docs": [{"_id": "_local/cp", "_rev": "0-7", "last_seq": 6}]})),
    );
    assert_eq!(v[0]["error"], "conflict");
    let (_, v) = db.json(
        "POST",
        "/db/_bulk_docs",
        Some(json!({"docs": [{"_id": "_local/cp", "_rev": "0-1", "last_seq": 6}]})),
    );
    assert_eq!(v[0]["rev"], "0-2");
    assert_eq!(db.json("GET", "/db", None).1["doc_count"], 1);
}

/// `open_revs` that is JSON but neither a list nor `all` gets CouchDB's
/// answer (its parser has no clause for it); a bad rev in a list is 400.
#[test]
fn open_revs_of_the_wrong_shape() {
    let db = Db::new();
    db.put("foo", json!({}));
    let r = db.request(
        Request::new("GET", "/db/foo", "open_revs=%7B%22a%22%3A1%7D")
            .with_header("accept", "application/json"),
    );
    assert_eq!(
        (r.status, r.json_body()),
        (
            500,
            json!({"error": "unknown_error", "reason": "function_clause"})
        )
    );
    let r = db.request(
        Request::new(
            "GET",
            "/db/foo",
            "open_revs=%5B%221-almost%22%2C%22keys%22%5D",
        )
        .with_header("accept", "application/json"),
    );
    assert_eq!(
        (r.status, r.json_body()["error"].clone()),
        (400, json!("bad_request"))
    );
}

/// A `_find` served by `_all_docs` passes over design documents, as
/// CouchDB's cursor does.
#[test]
fn find_over_all_docs_skips_design_documents() {
    let db = Db::new();
    db.put("_design/x", json!({"language": "query"}));
    db.put("a", json!({"n": 1}));
    let (s, v) = db.json(
        "POST",
        "/db/_find",
        Some(json!({"selector": {"_id": {"$gt": null}}, "execution_stats": true})),
    );
    assert_eq!(s, 200, "{v}");
    let ids: Vec<&str> = v["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a"]);
    assert_eq!(v["execution_stats"]["total_docs_examined"], 1);
}

/// Map functions see `_conflicts` (the conflicts view of CouchDB's guide)
/// and `_deleted_conflicts`, and the index follows as they change.
#[test]
fn maps_see_conflicts() {
    let db = Db::new();
    db.put(
        "_design/c",
        json!({"views": {"conflicts": {"map":
            "function(doc) { if (doc._conflicts) emit(doc._id, [doc._rev].concat(doc._conflicts)); }"}}}),
    );
    let docs = json!({"new_edits": false, "docs": [
        {"_id": "x", "_rev": "1-a", "v": 1},
        {"_id": "x", "_rev": "1-b", "v": 2},
        {"_id": "y", "_rev": "1-a"},
    ]});
    db.json("POST", "/db/_bulk_docs", Some(docs));
    let (_, v) = db.json("GET", "/db/_design/c/_view/conflicts", None);
    assert_eq!(
        v["rows"],
        json!([{"id": "x", "key": "x", "value": ["1-b", "1-a"]}])
    );
    let (s, _) = db.json("DELETE", "/db/x?rev=1-a", None);
    assert_eq!(s, 200);
    let (_, v) = db.json("GET", "/db/_design/c/_view/conflicts", None);
    assert_eq!(v["rows"], json!([]));
}

/// PouchDB's "allDocs with some conflicts" scenario: branches `2-b` here
/// and `2-c`, `3-c` pushed with a `_rev` that disagrees with its
/// `_revisions` (PouchDB 5 sends that). `_revisions` decides, as in
/// CouchDB, and the longer branch wins.
#[test]
fn replicated_branches_follow_revisions_not_rev() {
    let db = Db::new();
    for (rev, revs, value) in [
        ("1-a", json!({"start": 1, "ids": ["a"]}), "generic"),
        ("2-b", json!({"start": 2, "ids": ["b", "a"]}), "db2"),
        ("2-c", json!({"start": 3, "ids": ["c", "c", "a"]}), "db1"),
    ] {
        let (s, v) = db.json(
            "POST",
            "/db/_bulk_docs",
            Some(json!({"new_edits": false, "docs": [
                {"_id": "foo", "_rev": rev, "_revisions": revs, "value": value}]})),
        );
        assert_eq!((s, &v), (201, &json!([])));
    }
    let (_, doc) = db.json("GET", "/db/foo?conflicts=true", None);
    assert_eq!(
        (&doc["_rev"], &doc["value"], &doc["_conflicts"]),
        (&json!("3-c"), &json!("db1"), &json!(["2-b"]))
    );
    let (_, all) = db.json("GET", "/db/_all_docs?include_docs=true", None);
    assert_eq!(all["rows"][0]["doc"]["value"], "db1");
    let (s, v) = db.json(
        "PUT",
        "/db/bar?new_edits=false",
        Some(json!({"_revisions": {"start": 2, "ids": ["y", "x"]}})),
    );
    assert_eq!((s, &v["rev"]), (201, &json!("2-y")), "{v}");
}

/// `_temp_view` (CouchDB 1.x, used by PouchDB's `query(fn)` on remote
/// databases): a map and reduce with the query; the index is kept between
/// queries and follows writes; `_view_cleanup` drops it; admins only.
#[test]
fn temporary_views() {
    let db = Db::new();
    for (id, n) in [("a", 1), ("b", 2), ("c", 3)] {
        db.put(id, json!({"n": n}));
    }
    let map = "function(doc) { emit(doc.n, doc.n * 10); }";
    let (s, v) = db.json(
        "POST",
        "/db/_temp_view?startkey=2",
        Some(json!({"map": map})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["rows"],
        json!([{"id": "b", "key": 2, "value": 20}, {"id": "c", "key": 3, "value": 30}])
    );
    let body = json!({"map": map, "reduce": "_sum", "keys": [1, 3]});
    let (_, v) = db.json("POST", "/db/_temp_view?group=true", Some(body));
    assert_eq!(
        v["rows"],
        json!([{"key": 1, "value": 10}, {"key": 3, "value": 30}])
    );
    db.put("d", json!({"n": 4}));
    let (_, v) = db.json(
        "POST",
        "/db/_temp_view?reduce=true",
        Some(json!({"map": map, "reduce": "_count"})),
    );
    assert_eq!(v["rows"], json!([{"key": null, "value": 4}]));
    assert_eq!(db.engine().store.view_signatures().unwrap().len(), 1);
    db.json("POST", "/db/_view_cleanup", Some(json!({})));
    assert!(db.engine().store.view_signatures().unwrap().is_empty());
    let (s, _) = db.json("POST", "/db/_temp_view", Some(json!({"reduce": "_sum"})));
    assert_eq!(s, 400);
    let (s, _) = db.json("GET", "/db/_temp_view", None);
    assert_eq!(s, 405);
}

/// `keys: []` selects no rows (it used to index past the end of the key
/// list, which on Workers leaves the request unanswered); `include_docs`
/// takes `attachments` and `conflicts` as `GET /db/doc` does.
#[test]
fn view_queries_with_empty_keys_and_inline_attachments() {
    let db = Db::new();
    db.put(
        "_design/v",
        json!({"views": {"v": {"map": "function(doc) { emit(doc.f); }"}}}),
    );
    db.put(
        "a",
        json!({"f": 1, "_attachments": {"t": {"content_type": "text/plain", "data": "aGk="}}}),
    );
    for url in [
        "/db/_design/v/_view/v?keys=%5B%5D",
        "/db/_design/v/_view/v?keys=%5B%5D&include_docs=true",
    ] {
        let (s, v) = db.json("GET", url, None);
        assert_eq!((s, &v["rows"]), (200, &json!([])), "{url} {v}");
    }
    let (s, v) = db.json(
        "POST",
        "/db/_design/v/_view/v?include_docs=true",
        Some(json!({"keys": []})),
    );
    assert_eq!((s, &v["rows"]), (200, &json!([])));
    let (_, v) = db.json(
        "GET",
        "/db/_design/v/_view/v?include_docs=true&attachments=true",
        None,
    );
    assert_eq!(v["rows"][0]["doc"]["_attachments"]["t"]["data"], "aGk=");
}

/// One document's rows with equal keys come in value order.
#[test]
fn equal_keys_of_one_document_sort_by_value() {
    let db = Db::new();
    db.put(
        "_design/v",
        json!({"views": {"v": {"map":
            "function(doc) { emit(doc.bar, 'multiple values!'); emit(doc.bar, 'crayon!'); emit(doc.bar); }"}}}),
    );
    db.put("doc1", json!({"bar": "bar"}));
    let (_, v) = db.json("GET", "/db/_design/v/_view/v", None);
    let values: Vec<&serde_json::Value> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["value"])
        .collect();
    assert_eq!(
        values,
        [&json!(null), &json!("crayon!"), &json!("multiple values!")]
    );
}

/// Writes answer with absolute `Location`s on the host the client asked
/// for, as CouchDB's `absolute_uri`.
#[test]
fn locations_are_absolute() {
    let db = Db::new();
    let r = db.request(
        Request::new("PUT", "/db/a", "")
            .with_header("host", "127.0.0.1:5984")
            .with_body(br#"{"v":1}"#.to_vec()),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("http://127.0.0.1:5984/db/a"));
}

/// `batch=ok` answers 202 at once: a conflict in the background write is
/// dropped, not reported (CouchDB's `update_doc(..., "ok")`).
#[test]
fn batch_ok_drops_conflicts() {
    let db = Db::new();
    db.put("a", json!({"v": 1}));
    let (s, body) = db.json("PUT", "/db/a?batch=ok", Some(json!({"v": 2})));
    assert_eq!((s, body), (202, json!({"ok": true, "id": "a"})));
    assert_eq!(db.json("GET", "/db/a", None).1["v"], 1);
    let (s, _) = db.json("POST", "/db?batch=ok", Some(json!({"_id": "a", "v": 3})));
    assert_eq!(s, 202);
    assert_eq!(db.json("PUT", "/db/a", Some(json!({"v": 2}))).0, 409);
}

/// COPY takes a relative `Destination` only.
#[test]
fn copy_destination_must_be_relative() {
    let db = Db::new();
    db.put("a", json!({"v": 1}));
    let copy = |dest: &str| {
        db.request(Request::new("COPY", "/db/a", "").with_header("destination", dest))
            .status
    };
    assert_eq!(copy("http://localhost:5984/db/b"), 400);
    assert_eq!(copy("b"), 201);
    assert_eq!(db.json("GET", "/db/b", None).1["v"], 1);
}

/// `?rev=` (or the body's `_rev`) and `If-Match` must agree.
#[test]
fn rev_and_if_match_must_agree() {
    let db = Db::new();
    let r1 = db.put("a", json!({"v": 1}));
    let put = |qs: &str, if_match: Option<&str>| {
        let mut req = Request::new("PUT", "/db/a", qs).with_body(br#"{"v":2}"#.to_vec());
        if let Some(m) = if_match {
            req = req.with_header("if-match", m);
        }
        db.request(req).status
    };
    assert_eq!(put("rev=1-boobaz", Some("1-foobar")), 400);
    assert_eq!(put("rev=1-foobar", None), 409);
    assert_eq!(put(&format!("rev={r1}"), Some(&format!("\"{r1}\""))), 201);
}

/// A document path takes POST only as an HTML form upload: JSON is a 415.
#[test]
fn post_to_a_document_is_a_form_upload() {
    let db = Db::new();
    let r = db.request(
        Request::new("POST", "/db/baz", "")
            .with_header("content-type", "application/json")
            .with_body(b"{}".to_vec()),
    );
    assert_eq!(r.status, 415);
    assert_eq!(r.json_body()["error"], "bad_content_type");
}

/// Views carry an `ETag` of their result and answer 304 while it holds;
/// map sources may end in `;` as couchjs allows; a design function path
/// without a name is a 404.
#[test]
fn views_revalidate_and_take_trailing_semicolons() {
    let db = Db::new();
    db.put(
        "_design/d",
        json!({"views": {"v": {"map": "function (doc) { emit(doc.v, 1); };\n",
                               "reduce": "function (k, v) { return sum(v); };"}}}),
    );
    db.put("a", json!({"v": 1}));
    let view = db.call("GET", "/db/_design/d/_view/v", None);
    assert_eq!(view.status, 200, "{:?}", view.json_body());
    assert_eq!(view.json_body()["rows"][0]["value"], 1);
    let etag = view.header("etag").expect("an etag").to_string();
    let again = db.request(
        Request::new("GET", "/db/_design/d/_view/v", "").with_header("if-none-match", &etag),
    );
    assert_eq!(again.status, 304);
    db.put("b", json!({"v": 2}));
    let changed = db.request(
        Request::new("GET", "/db/_design/d/_view/v", "").with_header("if-none-match", &etag),
    );
    assert_eq!(changed.json_body()["rows"][0]["value"], 2);
    assert_eq!(
        db.json("POST", "/db/_design/d/_update/", Some(json!({}))).0,
        404
    );
}

/// Boolean parameters ignore case (`include_docs=True` from Python
/// clients), and `_revs_limit` refuses non-integers with CouchDB's reason.
#[test]
fn booleans_ignore_case_and_revs_limit_is_an_integer() {
    let db = Db::new();
    db.put("a", json!({"v": 1}));
    let (s, body) = db.json("GET", "/db/_all_docs?include_docs=True", None);
    assert_eq!((s, &body["rows"][0]["doc"]["v"]), (200, &json!(1)));
    let (s, body) = db.json("PUT", "/db/_revs_limit", Some(json!("foo")));
    assert_eq!(
        (s, &body["reason"]),
        (400, &json!("Rev limit has to be an integer"))
    );
}

/// `POST /db/_all_docs/queries` answers each query as `_all_docs` would.
#[test]
fn all_docs_queries() {
    let db = Db::new();
    db.put("a", json!({"v": 1}));
    db.put("b", json!({"v": 2}));
    let (s, body) = db.json(
        "POST",
        "/db/_all_docs/queries",
        Some(json!({"queries": [{"key": "a"}, {"include_docs": true}, {}]})),
    );
    assert_eq!(s, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["rows"].as_array().unwrap().len(), 1);
    assert_eq!(results[1]["rows"][1]["doc"]["v"], 2);
    assert_eq!(results[2]["total_rows"], 2);
    assert_eq!(
        db.json("POST", "/db/_all_docs/queries", Some(json!({}))).0,
        400
    );
}

/// Compaction stems documents written before `_revs_limit` was lowered.
#[test]
fn compaction_stems_to_the_revs_limit() {
    let db = Db::new();
    let mut rev = db.put("bar", json!({"n": 0}));
    for n in 1..6 {
        rev = db.put("bar", json!({"n": n, "_rev": rev}));
    }
    assert_eq!(db.json("PUT", "/db/_revs_limit", Some(json!(5))).0, 200);
    let ids = |db: &Db| {
        db.json("GET", "/db/bar?revs=true", None).1["_revisions"]["ids"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(ids(&db), 6);
    assert_eq!(db.json("POST", "/db/_compact", Some(json!({}))).0, 202);
    assert_eq!(ids(&db), 5);
    assert_eq!(db.json("GET", "/db/bar", None).1["n"], 5);
}

/// View rows: a value's `_rev` picks the included revision (of the row's
/// document unless `_id` says otherwise); `keys` keep the document id
/// bounds; `_local_seq` is the integer sequence; `_info` reports pending
/// updates; built-in reduces match by prefix.
#[test]
fn view_links_docid_bounds_and_info() {
    let db = Db::new();
    db.put(
        "_design/t",
        json!({"views": {
            "prev": {"map": "function(doc){ if (doc.prev) emit(doc._id, {_rev: doc.prev}); }"},
            "multi": {"map": "function(doc){ if (doc.n) { emit(0, doc.n); emit(2, doc.n); } }",
                      "reduce": "_sum\nare\nawesome"}
        }}),
    );
    for n in 20..25 {
        db.put(&n.to_string(), json!({"n": n}));
    }
    let r1 = db.put("x", json!({"v": 1}));
    db.put("x", json!({"v": 2, "prev": r1, "_rev": r1}));
    let (_, body) = db.json("GET", "/db/_design/t/_view/prev?include_docs=true", None);
    assert_eq!(body["rows"][0]["doc"]["_rev"], r1, "{body}");
    assert_eq!(body["rows"][0]["doc"]["v"], 1);

    let (_, body) = db.json(
        "POST",
        "/db/_design/t/_view/multi?reduce=false&startkey_docid=21&endkey_docid=23",
        Some(json!({"keys": [0, 2]})),
    );
    let ids: Vec<&str> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["21", "22", "23", "21", "22", "23"], "{body}");
    let (_, sum) = db.json("GET", "/db/_design/t/_view/multi", None);
    assert_eq!(sum["rows"][0]["value"], json!(2 * (20 + 21 + 22 + 23 + 24)));

    let (_, doc) = db.json("GET", "/db/20?local_seq=true", None);
    assert!(doc["_local_seq"].is_u64(), "{doc}");
    db.put("late", json!({"n": 1}));
    let (_, info) = db.json("GET", "/db/_design/t/_info", None);
    assert_eq!(info["view_index"]["updates_pending"]["total"], 1, "{info}");
}

/// `PUT` of an attachment answers with the attachment's URL.
#[test]
fn attachment_location_is_the_attachment() {
    let db = Db::new();
    let r = db.request(
        Request::new("PUT", "/db/d/f.txt", "")
            .with_header("host", "h:5984")
            .with_header("content-type", "text/plain")
            .with_body(b"hi".to_vec()),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("http://h:5984/db/d/f.txt"));
}

/// A reduce that throws gives `null` for that reduction (couchjs logs and
/// goes on); doubles round-trip exactly, as jiffy keeps them.
#[test]
fn throwing_reduce_is_null_and_doubles_round_trip() {
    let db = Db::new();
    db.put(
        "_design/d",
        json!({"views": {"v": {"map": "function(doc){ emit(doc.k, 1); }",
                               "reduce": "function(keys, values) { return keys[0].foo.bar; }"}}}),
    );
    db.put("a", json!({"k": "x", "foo": 0.36768725706308836}));
    let (s, body) = db.json("GET", "/db/_design/d/_view/v?group=true", None);
    assert_eq!(
        (s, &body["rows"][0]["value"]),
        (200, &json!(null)),
        "{body}"
    );
    let raw = db.call("GET", "/db/a", None);
    assert!(String::from_utf8_lossy(&raw.body).contains("0.36768725706308836"));
}

/// `PUT /db?q=16` is reported back in `cluster.q`; `q=0` is refused.
#[test]
fn created_q_is_reported() {
    let db = Db::named("sharded");
    assert_eq!(db.json("GET", "/sharded", None).1["cluster"]["q"], 1);
    assert_eq!(db.json("DELETE", "/sharded", None).0, 200);
    assert_eq!(db.json("PUT", "/sharded?q=0", None).0, 400);
    assert_eq!(db.json("PUT", "/sharded?q=16", None).0, 201);
    assert_eq!(db.json("GET", "/sharded", None).1["cluster"]["q"], 16);
}

/// `_conflicts` lists losing leaves in CouchDB's order, which compares
/// 32-hex-digit hashes as bytes (aiocouch's `test_list_conflicts`).
#[test]
fn conflicts_order_compares_hashes_as_couchdb_stores_them() {
    let db = Db::new();
    db.put("c", json!({"v": "1"}));
    let r1 = db.json("GET", "/db/c", None).1["_rev"].clone();
    db.put("c", json!({"v": "2", "_rev": r1}));
    for rev in [
        "1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "1-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    ] {
        let (s, _) = db.json(
            "PUT",
            "/db/c?new_edits=false",
            Some(json!({"_rev": rev, "v": "x"})),
        );
        assert_eq!(s, 201);
    }
    let (_, doc) = db.json("GET", "/db/c?conflicts=true", None);
    assert_eq!(
        doc["_conflicts"],
        json!([
            "1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "1-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
        ])
    );
}

/// A show of a missing document whose function reads from `null` is that
/// document's 404 (couchjs turns the TypeError into `not_found`); other
/// errors stay render errors, and a show that copes with `null` answers.
#[test]
fn show_of_a_missing_document() {
    let db = Db::new();
    db.put(
        "_design/t",
        json!({"shows": {
            "fail": "function(doc, req) { return doc._id; }",
            "boom": "function(doc, req) { throw new Error('no'); }",
            "hello": "function(doc, req) { return doc ? 'Hello ' + doc._id : 'Empty World'; }"
        }}),
    );
    let (s, body) = db.json("GET", "/db/_design/t/_show/fail/nonExistingDoc", None);
    assert_eq!((s, &body["error"]), (404, &json!("not_found")), "{body}");
    assert_eq!(
        db.json("GET", "/db/_design/t/_show/boom/nonExistingDoc", None)
            .0,
        500
    );
    let hello = db.call("GET", "/db/_design/t/_show/hello/nothere", None);
    assert_eq!(
        (hello.status, hello.body.as_slice()),
        (200, &b"Empty World"[..])
    );
}

/// Revision ids are CouchDB's (the MD5 of the edit's Erlang term), so a
/// document written to Settee and to CouchDB gets the same `_rev`; a COPY
/// hashes the same inputs, so it keeps the source's first revision id.
#[test]
fn revision_ids_are_couchdbs() {
    let db = Db::new();
    let r1 = db.put("a", json!({"v": "1"}));
    assert_eq!(r1, "1-806db366bc1ba3ebef40f4b7c63a53af");
    assert_eq!(db.put("b", json!({})), "1-967a00dff5e02add41819138abb3284d");
    let copy = db.request(Request::new("COPY", "/db/a", "").with_header("destination", "c"));
    assert_eq!(copy.status, 201);
    assert_eq!(copy.json_body()["rev"], r1);
    let r2 = db.put("a", json!({"v": "2", "_rev": r1}));
    assert!(
        r2.starts_with("2-")
            && r2
                != db.put(
                    "b",
                    json!({"v": "2", "_rev": "1-967a00dff5e02add41819138abb3284d"})
                )
    );
}

/// A document's members keep the order they were written in through every
/// edit Settee makes for the client: a COPY (same body, so CouchDB's
/// revision id), and removing one attachment of several.
#[test]
fn edits_keep_member_order() {
    let db = Db::new();
    let rev = db.put("a", json!({"z": 1, "a": 2, "m": {"y": 1, "b": 2}, "k": 3}));
    let copy = db.request(Request::new("COPY", "/db/a", "").with_header("destination", "c"));
    assert_eq!(copy.json_body()["rev"], rev);
    let keys = |id: &str| {
        let doc = db.call("GET", &format!("/db/{id}"), None).json_body();
        doc.as_object().unwrap().keys().cloned().collect::<Vec<_>>()
    };
    assert_eq!(keys("c"), ["_id", "_rev", "z", "a", "m", "k"]);
    let atts = json!({
        "one": {"content_type": "text/plain", "data": "MQ=="},
        "two": {"content_type": "text/plain", "data": "Mg=="},
        "three": {"content_type": "text/plain", "data": "Mw=="},
    });
    let rev = db.put("d", json!({"_attachments": atts}));
    let del = db.call("DELETE", &format!("/db/d/one?rev={rev}"), None);
    assert_eq!(del.status, 200);
    let doc = db.call("GET", "/db/d", None).json_body();
    let names: Vec<_> = doc["_attachments"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["two", "three"]);
}

/// `POST /db/_purge` forgets revisions for good: a document that loses
/// every leaf is gone from reads, `_changes`, views and Mango indexes, its
/// counters and `purge_seq` move, and the request's shape is CouchDB's.
#[test]
fn purge_removes_documents_and_their_index_rows() {
    let db = Db::new();
    let r1 = db.put("a", json!({"v": 1}));
    let r2 = db.put("a", json!({"v": 2, "_rev": r1}));
    db.put("b", json!({"v": 3}));
    let ddoc = json!({"views": {"v": {"map": "function(doc) { emit(doc.v, null); }"}}});
    db.put("_design/d", ddoc);
    let idx = json!({"index": {"fields": ["v"]}, "name": "by_v"});
    assert_eq!(db.json("POST", "/db/_index", Some(idx)).0, 200);
    let view_ids = || {
        let rows = db.json("GET", "/db/_design/d/_view/v", None).1["rows"].clone();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].clone())
            .collect::<Vec<_>>()
    };
    let find = json!({"selector": {"v": {"$gt": 0}}, "use_index": "by_v", "fields": ["_id"]});
    let found = || db.json("POST", "/db/_find", Some(find.clone())).1["docs"].clone();
    assert_eq!(view_ids(), ["a", "b"]);
    assert_eq!(found(), json!([{"_id": "a"}, {"_id": "b"}]));
    let before = db.json("GET", "/db", None).1;

    let (s, v) = db.json(
        "POST",
        "/db/_purge",
        Some(json!({"a": [r2], "nothere": ["1-abc"], "b": ["9-notaleaf"]})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v,
        json!({"purge_seq": null, "purged": {"a": [r2], "nothere": [], "b": []}})
    );

    assert_eq!(
        db.json("GET", "/db/a", None),
        (404, json!({"error": "not_found", "reason": "missing"}))
    );
    assert_eq!(db.json("GET", &format!("/db/a?rev={r1}"), None).0, 404);
    let changes = db.json("GET", "/db/_changes", None).1;
    let ids: Vec<_> = changes["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert!(!ids.contains(&json!("a")), "{changes}");
    assert_eq!(view_ids(), ["b"]);
    assert_eq!(found(), json!([{"_id": "b"}]));
    let after = db.json("GET", "/db", None).1;
    assert_eq!(
        after["doc_count"],
        before["doc_count"].as_u64().unwrap() - 1
    );
    let n = |v: &Value, k: &str| {
        v[k].as_str()
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(n(&after, "purge_seq"), n(&before, "purge_seq") + 1);
    assert!(n(&after, "update_seq") > n(&before, "update_seq"));
    // Purging again finds nothing to purge.
    let (_, v) = db.json("POST", "/db/_purge", Some(json!({"a": [r2]})));
    assert_eq!(v["purged"]["a"], json!([]));
}

/// Purging one conflicting leaf keeps the document with the other, which
/// the indexes now show; the purged revision is not readable any more.
#[test]
fn purging_a_conflict_keeps_the_other_leaf() {
    let db = Db::new();
    let docs = json!({"new_edits": false, "docs": [
        {"_id": "c", "_rev": "1-aaaa", "v": "x"},
        {"_id": "c", "_rev": "1-bbbb", "v": "y"},
    ]});
    assert_eq!(db.json("POST", "/db/_bulk_docs", Some(docs)).0, 201);
    db.put(
        "_design/d",
        json!({"views": {"v": {"map": "function(doc) { emit(doc.v, null); }"}}}),
    );
    let keys = || db.json("GET", "/db/_design/d/_view/v", None).1["rows"][0]["key"].clone();
    assert_eq!(keys(), "y");
    let (s, v) = db.json("POST", "/db/_purge", Some(json!({"c": ["1-bbbb"]})));
    assert_eq!((s, v["purged"]["c"].clone()), (201, json!(["1-bbbb"])));
    let doc = db.json("GET", "/db/c?conflicts=true", None).1;
    assert_eq!(
        (doc["_rev"].clone(), doc["v"].clone(), doc.get("_conflicts")),
        (json!("1-aaaa"), json!("x"), None)
    );
    assert_eq!(db.json("GET", "/db/c?rev=1-bbbb", None).0, 404);
    assert_eq!(keys(), "x");
}

/// Attachment contents only purged revisions referenced are freed.
#[test]
fn purge_frees_attachment_contents() {
    let db = Db::new();
    let att = json!({"f.txt": {"content_type": "text/plain", "data": "aGVsbG8="}});
    let rev = db.put("a", json!({"_attachments": att}));
    db.put(
        "b",
        json!({"_attachments": {"g.txt": {"content_type": "text/plain", "data": "d29ybGQ="}}}),
    );
    let blobs = || db.engine().store.blob_digests().unwrap().len();
    assert_eq!(blobs(), 2);
    assert_eq!(
        db.json("POST", "/db/_purge", Some(json!({"a": [rev]}))).0,
        201
    );
    assert_eq!(blobs(), 1);
    assert_eq!(db.call("GET", "/db/b/g.txt", None).body, b"world");
}

/// Bad purge requests get CouchDB's errors and change nothing.
#[test]
fn purge_refuses_bad_requests() {
    let db = Db::new();
    let rev = db.put("a", json!({}));
    let reason = |body: Value| {
        let (s, v) = db.json("POST", "/db/_purge", Some(body));
        (s, v["reason"].as_str().unwrap_or_default().to_string())
    };
    let many: serde_json::Map<String, Value> =
        (0..101).map(|i| (i.to_string(), json!([]))).collect();
    assert_eq!(
        reason(Value::Object(many)),
        (400, "Exceeded maximum number of documents.".into())
    );
    assert_eq!(reason(json!({"a": rev})).0, 400);
    assert_eq!(reason(json!({"a": ["junk"]})).0, 400);
    assert_eq!(reason(json!([rev])).0, 400);
    let text = Request::new("POST", "/db/_purge", "")
        .with_header("content-type", "text/plain")
        .with_body(json!({"a": [rev]}).to_string());
    assert_eq!(db.request(text).status, 415);
    assert_eq!(db.call("GET", "/db/_purge", None).status, 405);
    assert_eq!(db.json("GET", "/db/a", None).1["_rev"], rev);
}

/// `_purged_infos_limit` reads 1000 until set to another positive integer.
#[test]
fn purged_infos_limit_is_a_setting() {
    let db = Db::new();
    assert_eq!(
        db.json("GET", "/db/_purged_infos_limit", None),
        (200, json!(1000))
    );
    assert_eq!(
        db.json("PUT", "/db/_purged_infos_limit", Some(json!(5))),
        (200, json!({"ok": true}))
    );
    assert_eq!(db.json("GET", "/db/_purged_infos_limit", None).1, json!(5));
    let (s, v) = db.json("PUT", "/db/_purged_infos_limit", Some(json!(0)));
    assert_eq!(
        (s, v["reason"].clone()),
        (400, json!("`purge_infos_limit` must be positive integer"))
    );
}

/// `_changes` (normal feed) and `_all_docs` carry an `ETag` that holds
/// until the database changes, and answer 304 to it.
#[test]
fn changes_and_all_docs_have_etags() {
    let db = Db::new();
    db.put("a", json!({}));
    for (i, url) in [
        "/db/_changes",
        "/db/_all_docs",
        "/db/_all_docs?include_docs=true",
    ]
    .into_iter()
    .enumerate()
    {
        let first = db.call("GET", url, None);
        let etag = first.header("etag").expect(url).to_string();
        let again = Request::new(
            "GET",
            url.split('?').next().unwrap(),
            url.split_once('?').map_or("", |p| p.1),
        )
        .with_header("if-none-match", &etag);
        assert_eq!(db.request(again.clone()).status, 304, "{url}");
        let other = db.call(
            "GET",
            &format!("{url}{}limit=0", if url.contains('?') { '&' } else { '?' }),
            None,
        );
        assert_ne!(other.header("etag"), Some(etag.as_str()), "{url}");
        db.put(&format!("b{i}"), json!({}));
        let changed = db.request(again);
        assert_eq!(changed.status, 200, "{url}");
        assert_ne!(changed.header("etag"), Some(etag.as_str()), "{url}");
    }
    assert_eq!(
        db.call("GET", "/db/_changes?feed=longpoll&timeout=1", None)
            .header("etag"),
        None
    );
}

/// `atts_since` counts only revisions the document has (CouchDB's
/// `find_ancestor_rev_pos`), and each `multipart/related` part carries
/// CouchDB's `Content-Disposition`, `Content-Type` and `Content-Length`.
#[test]
fn atts_since_and_multipart_parts_are_couchdbs() {
    let db = Db::new();
    let att = |d: &str| json!({"content_type": "text/x-a", "data": d});
    let r1 = db.put("m", json!({"_attachments": {"a": att("MQ==")}}));
    let stub = json!({"stub": true});
    db.put(
        "m",
        json!({"_rev": r1, "_attachments": {"a": stub, "b": att("Mg==")}}),
    );
    let multipart = |since: &str| {
        let r = db.request(
            Request::new("GET", "/db/m", &format!("atts_since={since}"))
                .with_header("accept", "multipart/related"),
        );
        let ct = r.header("content-type").unwrap().to_string();
        let boundary = shared::multipart::boundary(&ct).unwrap();
        shared::multipart::parse(&r.body, &boundary).unwrap()
    };
    let all = multipart("[\"1-2897589\"]");
    assert_eq!(all.len(), 3);
    let header = |p: &shared::multipart::Part, h: &str| {
        p.headers
            .iter()
            .find(|(k, _)| k == h)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header(&all[1], "content-disposition").as_deref(),
        Some("attachment; filename=\"a\"")
    );
    assert_eq!(header(&all[1], "content-length").as_deref(), Some("1"));
    assert_eq!(header(&all[1], "content-type").as_deref(), Some("text/x-a"));
    let newer = multipart(&format!("[\"1-2897589\",\"{r1}\"]"));
    assert_eq!(newer.len(), 2);
    assert_eq!(newer[1].body, b"2");
    let inline = db
        .json("GET", &format!("/db/m?atts_since=[\"{r1}\"]"), None)
        .1;
    assert_eq!(inline["_attachments"]["a"]["stub"], true);
    assert_eq!(inline["_attachments"]["b"]["data"], "Mg==");
}

/// Design functions see request headers under the names clients send
/// (`X-Foo`), as CouchDB passes them, and never the router's user header.
#[test]
fn design_functions_see_canonical_header_names() {
    let db = Db::new();
    let show = "function(doc, req) { return JSON.stringify(Object.keys(req.headers).sort()) + req.headers['X-Foo']; }";
    db.put("_design/t", json!({"shows": {"h": show}}));
    let r = db.request(
        Request::new("GET", "/db/_design/t/_show/h", "")
            .with_header("x-foo", "bar")
            .with_header(shared::user::USER_CTX_HEADER, "{}"),
    );
    assert_eq!(String::from_utf8_lossy(&r.body), "[\"X-Foo\"]bar");
}

/// A show's `ETag` follows the documents, the Accept header and the
/// request, and answers 304 to itself, as CouchDB's `show_etag`.
#[test]
fn shows_have_etags() {
    let db = Db::new();
    db.put(
        "_design/t",
        json!({"shows": {"s": "function(doc) { return 'x'; }"}}),
    );
    let rev = db.put("d", json!({}));
    let get = |accept: &str| {
        Request::new("GET", "/db/_design/t/_show/s/d", "").with_header("accept", accept)
    };
    let html = db
        .request(get("text/html"))
        .header("etag")
        .unwrap()
        .to_string();
    let png = db
        .request(get("image/png"))
        .header("etag")
        .unwrap()
        .to_string();
    assert_ne!(html, png);
    assert_eq!(
        db.request(get("text/html").with_header("if-none-match", &html))
            .status,
        304
    );
    db.put("d", json!({"_rev": rev}));
    let after = db.request(get("text/html").with_header("if-none-match", &html));
    assert_eq!(after.status, 200);
}

/// `provides` answers with the registered type the Accept header matched,
/// not the first one of its key, as couchjs's `Mimeparse.bestMatch`.
#[test]
fn provides_answers_with_the_matched_type() {
    let db = Db::new();
    let show = "function(doc, req) { registerType('foo', 'application/foo', 'application/x-foo'); provides('foo', function() { return 'foofoo'; }); }";
    db.put("_design/t", json!({"shows": {"p": show}}));
    let get = |qs: &str, accept: &str| {
        let r = db.request(
            Request::new("GET", "/db/_design/t/_show/p", qs).with_header("accept", accept),
        );
        (r.status, r.header("content-type").map(str::to_string))
    };
    assert_eq!(
        get("", "application/x-foo"),
        (200, Some("application/x-foo".into()))
    );
    assert_eq!(
        get("format=foo", "text/html"),
        (200, Some("application/foo".into()))
    );
    assert_eq!(get("", "text/monkeys").0, 406);
}
