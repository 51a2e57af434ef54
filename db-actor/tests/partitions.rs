//! Partitioned databases and shards as CouchDB 3 answers them.
mod common;

use common::Db;
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
