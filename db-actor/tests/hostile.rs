//! Bad input a careless or hostile client sends: each gets CouchDB's 4xx
//! and changes nothing.
mod common;

use common::Db;
use serde_json::json;

#[test]
fn names_that_are_not_utf8_are_refused_not_merged() {
    let db = Db::new();
    db.put("%EF%BF%BD", json!({"real": "U+FFFD"}));
    for (path, error) in [
        ("/db/%FF", "illegal_docid"),
        ("/db/%FE", "illegal_docid"),
        ("/db/%C0%AF", "illegal_docid"),
        ("/db/_design/%FF", "illegal_docid"),
        ("/db/_local/%FF", "illegal_docid"),
        ("/db/doc/%FF", "bad_request"),
        ("/db/_design/d/%FF", "bad_request"),
    ] {
        let (s, v) = db.json("PUT", path, Some(json!({"x": 1})));
        assert_eq!((s, v["error"].as_str()), (400, Some(error)), "{path}: {v}");
        assert_eq!(db.json("GET", path, None).0, 400, "{path}");
    }
    let (s, v) = db.json("GET", "/db/%EF%BF%BD", None);
    assert_eq!((s, &v["real"]), (200, &json!("U+FFFD")));
    assert_eq!(db.json("GET", "/db", None).1["doc_count"], 1);
    let (s, v) = db.json("GET", "/%FF", None);
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("illegal_database_name"))
    );
}

#[test]
fn integers_past_64_bits_keep_their_digits() {
    let db = Db::new();
    let body = r#"{"n":123456789012345678901234567890,"m":-18446744073709551617,"f":1.5e300}"#;
    let req = shared::http::Request::new("PUT", "/db/big", "").with_body(body);
    assert_eq!(db.request(req).status, 201);
    let got = db.call("GET", "/db/big", None);
    let text = String::from_utf8(got.body).unwrap();
    assert!(
        text.contains(r#""n":123456789012345678901234567890"#),
        "{text}"
    );
    assert!(text.contains(r#""m":-18446744073709551617"#), "{text}");
}

#[test]
fn deep_json_is_refused_by_name() {
    let db = Db::new();
    let nested = |depth: usize| format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let put = |id: &str, body: String| {
        let r =
            db.request(shared::http::Request::new("PUT", &format!("/db/{id}"), "").with_body(body));
        (r.status, r.json_body())
    };
    assert_eq!(put("ok", nested(100)).0, 201);
    let (s, v) = put("deep", nested(200));
    assert_eq!(s, 400, "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("nested too deeply"),
        "{v}"
    );
    assert_eq!(db.json("GET", "/db/deep", None).0, 404);
}

#[test]
fn an_empty_local_id_is_refused_however_it_comes() {
    let db = Db::new();
    for (m, url, body) in [
        ("POST", "/db", json!({"_id": "_local/"})),
        ("PUT", "/db/_local/", json!({})),
        (
            "POST",
            "/db/_bulk_docs",
            json!({"docs": [{"_id": "_local/"}]}),
        ),
    ] {
        let (s, v) = db.json(m, url, Some(body));
        let error = if s == 201 {
            v[0]["error"].clone()
        } else {
            v["error"].clone()
        };
        assert_eq!(error, "illegal_docid", "{m} {url}: {s} {v}");
    }
    assert_eq!(db.json("GET", "/db/_local_docs", None).1["rows"], json!([]));
}

#[test]
fn well_formed_revs_that_name_nothing_are_404_and_409() {
    let db = Db::new();
    let rev = db.put("doc", json!({"a": 1}));
    for r in ["1-", "0-x", "1-nothere"] {
        let (s, v) = db.json("GET", &format!("/db/doc?rev={r}"), None);
        assert_eq!((s, v["error"].as_str()), (404, Some("not_found")), "{r}");
        let (s, v) = db.json("DELETE", &format!("/db/doc?rev={r}"), None);
        assert_eq!((s, v["error"].as_str()), (409, Some("conflict")), "{r}");
    }
    for r in ["x", "-1-a", "a-b", "1"] {
        let (s, v) = db.json("GET", &format!("/db/doc?rev={r}"), None);
        assert_eq!(
            (s, v["reason"].as_str()),
            (400, Some("Invalid rev format")),
            "{r}"
        );
    }
    assert_eq!(db.json("GET", "/db/doc", None).1["_rev"], rev);
}

#[test]
fn an_attachment_that_follows_outside_multipart_is_a_400() {
    let db = Db::new();
    let (s, v) = db.json(
        "PUT",
        "/db/stub",
        Some(json!({"_attachments": {"a": {"follows": true, "content_type": "text/plain", "length": 3}}})),
    );
    assert_eq!((s, v["error"].as_str()), (400, Some("bad_request")), "{v}");
    assert_eq!(db.json("GET", "/db/stub", None).0, 404);
}

#[test]
fn a_huge_emitted_key_leaves_out_its_row_not_the_view() {
    let mut db = Db::new();
    db.limits.max_document_size = 16_000_000;
    db.put(
        "_design/v",
        json!({"views": {"by_k": {"map": "function(d){ emit(d.k, null); }"}}}),
    );
    db.put("small", json!({"k": "a"}));
    db.put("huge", json!({"k": "x".repeat(2_100_000)}));
    let (s, v) = db.json("GET", "/db/_design/v/_view/by_k", None);
    assert_eq!(s, 200, "{}", v.to_string().len());
    assert_eq!(
        v["rows"],
        json!([{"id": "small", "key": "a", "value": null}])
    );
    db.put("later", json!({"k": "b"}));
    let (s, v) = db.json("GET", "/db/_design/v/_view/by_k", None);
    assert_eq!((s, v["total_rows"].as_u64()), (200, Some(2)));
}

#[test]
fn bad_view_parameters_are_query_parse_errors() {
    let db = Db::new();
    db.put(
        "_design/v",
        json!({"views": {"v": {"map": "function(d){ emit(d._id, 1); }"}}}),
    );
    for q in ["stale=bogus", "update=bogus", "stale=", "update=maybe"] {
        let (s, v) = db.json("GET", &format!("/db/_design/v/_view/v?{q}"), None);
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("query_parse_error")),
            "{q}: {v}"
        );
    }
    for q in [
        "stale=ok",
        "stale=update_after",
        "update=false",
        "update=lazy",
    ] {
        assert_eq!(
            db.json("GET", &format!("/db/_design/v/_view/v?{q}"), None)
                .0,
            200,
            "{q}"
        );
    }
}

#[test]
fn malformed_bulk_docs_bodies_get_couchdbs_reasons_and_write_nothing() {
    let db = Db::new();
    for (body, reason) in [
        (json!({}), "POST body must include `docs` parameter."),
        (
            json!({"docs": {"_id": "a"}}),
            "`docs` parameter must be an array.",
        ),
        (
            json!({"docs": "a", "new_edits": 3}),
            "`docs` parameter must be an array.",
        ),
        (
            json!({"docs": [{"_id": "a"}], "new_edits": "no"}),
            "`new_edits` parameter must be a boolean.",
        ),
    ] {
        let (s, v) = db.json("POST", "/db/_bulk_docs", Some(body.clone()));
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("bad_request")),
            "{body}: {v}"
        );
        assert_eq!(v["reason"], reason, "{body}");
    }
    assert_eq!(db.json("GET", "/db", None).1["doc_count"], 0);
}
