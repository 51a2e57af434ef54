//! Full-text search natively: `_search`, `_search_info`, `_nouveau` and
//! cleanup, over the SQLite FTS5 of `rusqlite` (the same SQL the Durable
//! Object runs), with CouchDB's documented answers.

mod common;

use common::Db;
use serde_json::{json, Value};

fn ok(db: &Db, method: &str, url: &str, body: Option<Value>) -> Value {
    let (s, v) = db.json(method, url, body);
    assert!(s < 300, "{method} {url} -> {s} {v}");
    v
}

fn ids(v: &Value) -> Vec<String> {
    v["rows"]
        .as_array()
        .or_else(|| v["hits"].as_array())
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

const INDEX: &str = "function (doc) { \
    if (doc.title) index('default', doc.title); \
    if (doc.title) index('title', doc.title, {store: true}); \
    if (doc.type) index('type', doc.type, {facet: true, store: true}); \
    if (doc.price !== undefined) index('price', doc.price, {facet: true, store: true}); \
    if (doc.bad) index('x', doc.bad.missing.field); }";

fn library() -> Db {
    let db = Db::new();
    ok(
        &db,
        "PUT",
        "/db/_design/s",
        Some(json!({
            "indexes": {
                "books": {"index": INDEX},
                "english": {"index": INDEX, "analyzer": "english"},
                "per": {"index": INDEX, "analyzer": {"name": "perfield", "default": "whitespace", "fields": {"title": "keyword"}}},
                "bad": {"analyzer": "standard"}
            },
            "nouveau": {"books": {"index": "function (doc) { if (doc.title) { index('text', 'title', doc.title, {store: true}); } if (doc.price !== undefined) index('double', 'price', doc.price, {store: true}); }"}}
        })),
    );
    let docs = json!({"docs": [
        {"_id": "a", "title": "The quick brown fox", "type": "animal", "price": 10},
        {"_id": "b", "title": "A lazy brown dog sleeps", "type": "animal", "price": 25},
        {"_id": "c", "title": "Quick sort in practice", "type": "book", "price": 40},
        {"_id": "d", "title": "Foxes and hounds running", "type": "book", "price": 55},
        {"_id": "e", "title": "Nothing to see", "type": "misc", "price": 100, "bad": {}},
        {"_id": "f", "type": "misc"}
    ]});
    ok(&db, "POST", "/db/_bulk_docs", Some(docs));
    db
}

fn search(db: &Db, index: &str, qs: &str) -> Value {
    ok(
        db,
        "GET",
        &format!("/db/_design/s/_search/{index}?{qs}"),
        None,
    )
}

#[test]
fn queries_match_as_lucene_would() {
    let db = library();
    let hits = |q: &str| sorted(ids(&search(&db, "books", &format!("q={q}"))));
    assert_eq!(hits("quick"), ["a", "c"]);
    assert_eq!(hits("title:brown%20AND%20title:fox"), ["a"]);
    assert_eq!(hits("brown%20-dog"), ["a"]);
    assert_eq!(hits("%22brown%20fox%22"), ["a"]);
    assert_eq!(hits("%22fox%20brown%22"), Vec::<String>::new());
    assert_eq!(hits("fox*"), ["a", "d"]);
    assert_eq!(hits("price:%5B20%20TO%2050%5D"), ["b", "c"]);
    assert_eq!(hits("price:%7B10%20TO%2055%7D"), ["b", "c"]);
    assert_eq!(hits("price:%7B40%20TO%20Infinity%5D"), ["d"]);
    assert_eq!(hits("price:%5B-Infinity%20TO%2010%5D"), ["a"]);
    assert_eq!(hits("type:%5Bb%20TO%20m%5D"), ["c", "d"]);
    assert_eq!(hits("price:25"), ["b"]);
    assert_eq!(
        hits("*:*"),
        ["a", "b", "c", "d", "f"],
        "e threw, so is left out"
    );
    assert_eq!(hits("(quick%20OR%20lazy)%20AND%20type:animal"), ["a", "b"]);
    assert_eq!(hits("%2Bbrown%20%2Bfox"), ["a"]);
    assert_eq!(hits("brown%20NOT%20fox"), ["b"]);
    assert_eq!(hits("brown%20%26%26%20!dog"), ["a"]);
    // Stemming only in the english index.
    assert_eq!(hits("sleeping"), Vec::<String>::new());
    let english = sorted(ids(&search(&db, "english", "q=sleeping%20OR%20run")));
    assert_eq!(english, ["b", "d"]);
    // Per field: `title` whole (keyword), `default` split on whitespace only.
    assert_eq!(
        ids(&search(
            &db,
            "per",
            "q=title:%22Quick%20sort%20in%20practice%22"
        )),
        ["c"]
    );
    assert!(ids(&search(&db, "per", "q=title:quick")).is_empty());
    assert_eq!(
        ids(&search(&db, "per", "q=Quick")),
        ["c"],
        "whitespace keeps case"
    );
    let v = search(&db, "books", "q=quick");
    assert_eq!(v["total_rows"], json!(2));
    let row = &v["rows"][0];
    assert!(row["order"][0].as_f64().unwrap() > 0.0, "{row}");
    assert!(row["fields"]["title"].as_str().unwrap().contains("uick"));
}

#[test]
fn sort_limit_bookmarks_and_docs() {
    let db = library();
    let v = search(
        &db,
        "books",
        "q=*:*&sort=%22-price%3Cnumber%3E%22&limit=2&include_docs=true",
    );
    assert_eq!(ids(&v), ["d", "c"]);
    assert_eq!(v["total_rows"], json!(5));
    assert_eq!(
        v["rows"][0]["doc"]["title"],
        json!("Foxes and hounds running")
    );
    assert_eq!(v["rows"][0]["order"][0], json!(55.0));
    let next = search(
        &db,
        "books",
        &format!(
            "q=*:*&sort=%22-price%3Cnumber%3E%22&limit=2&bookmark={}",
            v["bookmark"].as_str().unwrap()
        ),
    );
    assert_eq!(ids(&next), ["b", "a"]);
    let last = search(
        &db,
        "books",
        &format!(
            "q=*:*&sort=%22-price%3Cnumber%3E%22&limit=2&bookmark={}",
            next["bookmark"].as_str().unwrap()
        ),
    );
    assert_eq!(ids(&last), ["f"], "documents without the field come last");
    let by_title = search(
        &db,
        "books",
        "q=*:*&sort=%5B%22title%3Cstring%3E%22%5D&limit=3",
    );
    assert_eq!(ids(&by_title), ["b", "d", "c"]);
    let fields = search(&db, "books", "q=quick&include_fields=%5B%22type%22%5D");
    assert_eq!(fields["rows"][0]["fields"].as_object().unwrap().len(), 1);
    // POST takes the same parameters in a body.
    let posted = ok(
        &db,
        "POST",
        "/db/_design/s/_search/books",
        Some(json!({"q": "brown", "sort": "price<number>", "limit": 1})),
    );
    assert_eq!(ids(&posted), ["a"]);
}

#[test]
fn facets_drilldown_and_highlights() {
    let db = library();
    let v = search(&db, "books", "q=*:*&counts=%5B%22type%22%5D&limit=0");
    assert_eq!(
        v["counts"],
        json!({"type": {"animal": 2, "book": 2, "misc": 1}})
    );
    assert!(v["rows"].as_array().unwrap().is_empty());
    let ranges = r#"{"price":{"cheap":"[0 TO 30]","dear":"{30 TO Infinity]"}}"#;
    let v = search(&db, "books", &format!("q=*:*&ranges={}", urlencode(ranges)));
    assert_eq!(v["ranges"], json!({"price": {"cheap": 2, "dear": 2}}));
    let v = search(&db, "books", "q=*:*&drilldown=%5B%22type%22,%22book%22%5D");
    assert_eq!(sorted(ids(&v)), ["c", "d"]);
    let v = search(
        &db,
        "books",
        "q=title:quick&highlight_fields=%5B%22title%22%5D&highlight_pre_tag=%22%3Cb%3E%22&highlight_post_tag=%22%3C/b%3E%22&sort=%22title%3Cstring%3E%22",
    );
    assert_eq!(
        v["rows"][1]["highlights"]["title"],
        json!(["The <b>quick</b> brown fox"])
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_index_follows_writes_deletes_and_purges() {
    let db = library();
    assert_eq!(ids(&search(&db, "books", "q=hounds")), ["d"]);
    let (_, d) = db.json("GET", "/db/d", None);
    let rev = db.put("d", json!({"_rev": d["_rev"], "title": "Cats and mice"}));
    assert!(ids(&search(&db, "books", "q=hounds")).is_empty());
    assert_eq!(ids(&search(&db, "books", "q=mice")), ["d"]);
    let (s, _) = db.json("DELETE", &format!("/db/d?rev={rev}"), None);
    assert_eq!(s, 200);
    assert!(ids(&search(&db, "books", "q=mice")).is_empty());
    let (_, a) = db.json("GET", "/db/a", None);
    ok(&db, "POST", "/db/_purge", Some(json!({"a": [a["_rev"]]})));
    assert!(ids(&search(&db, "books", "q=fox")).is_empty());
    // stale=ok answers from the index as it is.
    db.put("g", json!({"title": "Another fox"}));
    assert!(ids(&search(&db, "books", "q=fox&stale=ok")).is_empty());
    assert_eq!(ids(&search(&db, "books", "q=fox")), ["g"]);
    let info = ok(&db, "GET", "/db/_design/s/_search_info/books", None);
    assert_eq!(info["name"], json!("_design/s/books"));
    assert_eq!(info["search_index"]["doc_count"], json!(4));
    let size = ok(&db, "GET", "/db/_design/s/_search_disk_size/books", None);
    assert!(
        size["search_index"]["disk_size"].as_u64().unwrap() > 0,
        "{size}"
    );
}

#[test]
fn bad_requests_get_couchdb_errors() {
    let db = library();
    let err = |url: &str| {
        let (s, v) = db.json("GET", url, None);
        (
            s,
            v["error"].as_str().unwrap_or_default().to_string(),
            v["reason"].clone(),
        )
    };
    let (s, e, reason) = err("/db/_design/s/_search/books?q=title:(foo");
    assert_eq!((s, e.as_str()), (400, "query_parse_error"), "{reason}");
    assert!(reason.as_str().unwrap().contains("column"), "{reason}");
    let (s, e, _) = err("/db/_design/s/_search/books");
    assert_eq!((s, e.as_str()), (400, "query_parse_error"));
    let (s, e, reason) = err("/db/_design/s/_search/nope?q=a");
    assert_eq!(
        (s, e.as_str(), reason),
        (404, "not_found", json!("nope not found."))
    );
    let (s, e, _) = err("/db/_design/s/_search/bad?q=a");
    assert_eq!((s, e.as_str()), (400, "invalid_design_doc"));
    let (s, e, _) = err("/db/_design/nope/_search/books?q=a");
    assert_eq!((s, e.as_str()), (404, "not_found"));
    let (s, e, _) = err("/db/_design/s/_search/books?q=fo?x");
    assert_eq!((s, e.as_str()), (400, "query_parse_error"));
    let (s, e, _) = err("/db/_design/s/_search/books?q=a&limit=500");
    assert_eq!((s, e.as_str()), (400, "query_parse_error"));
    let (s, _, _) = err("/db/_design/s/_search/books?q=a&partition=p");
    assert_eq!(s, 400);
    let (s, _) = db.json("PUT", "/db/_design/s/_search/books?q=a", None);
    assert_eq!(s, 405);
    // The documents and the index are as they were.
    assert_eq!(ids(&search(&db, "books", "q=hounds")), ["d"]);
}

#[test]
fn nouveau_answers_in_its_own_shape() {
    let db = library();
    let v = ok(
        &db,
        "POST",
        "/db/_design/s/_nouveau/books",
        Some(
            json!({"q": "title:quick", "limit": 10, "sort": "price<number>",
            "ranges": {"price": [{"label": "low", "min": 0, "max": 20}]}}),
        ),
    );
    assert_eq!(ids(&v), ["a", "c"]);
    assert_eq!(v["total_hits"], json!(2));
    assert_eq!(v["total_hits_relation"], json!("EQUAL_TO"));
    assert_eq!(v["ranges"], json!({"price": {"low": 1}}));
    assert_eq!(
        v["hits"][0]["order"][0],
        json!({"@type": "double", "value": 10.0})
    );
    assert_eq!(v["hits"][0]["fields"]["price"], json!(10.0));
    let info = ok(&db, "GET", "/db/_design/s/_nouveau_info/books", None);
    assert_eq!(
        info["search_index"]["num_docs"],
        json!(6),
        "e throws only in _search's index"
    );
}

#[test]
fn cleanup_drops_indexes_no_design_document_defines() {
    let db = library();
    search(&db, "books", "q=fox");
    let tables = |db: &Db| {
        db.engine()
            .store
            .sql
            .query(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE 'search_fts_%'",
                &[],
            )
            .unwrap()[0][0]
            .as_i64()
            .unwrap()
    };
    assert!(tables(&db) >= 1);
    let (_, d) = db.json("GET", "/db/_design/s", None);
    db.json(
        "DELETE",
        &format!("/db/_design/s?rev={}", d["_rev"].as_str().unwrap()),
        None,
    );
    let (s, _) = db.json("POST", "/db/_view_cleanup", Some(json!({})));
    assert_eq!(s, 202);
    assert_eq!(tables(&db), 0);
}

fn movies() -> Db {
    let db = Db::new();
    let docs = json!({"docs": [
        {"_id": "dr-no", "title": "Dr. No", "year": 1962, "cast": ["Sean Connery", "Ursula Andress"], "about": "James Bond goes to Jamaica"},
        {"_id": "goldfinger", "title": "Goldfinger", "year": 1964, "cast": ["Sean Connery"], "about": "Bond and the gold of Fort Knox"},
        {"_id": "skyfall", "title": "Skyfall", "year": 2012, "cast": ["Daniel Craig"], "about": "Bond and his loyalty to M"},
        {"_id": "jaws", "title": "Jaws", "year": 1975, "cast": ["Roy Scheider"], "about": "A great white shark"},
        {"_id": "alien", "title": "Alien", "year": 1979, "about": "In space no one can hear you scream"}
    ]});
    ok(&db, "POST", "/db/_bulk_docs", Some(docs));
    db
}

fn find_ids(db: &Db, body: Value) -> Vec<String> {
    common::found_ids(&ok(db, "POST", "/db/_find", Some(body)))
}

#[test]
fn mango_text_indexes_serve_text_and_other_selectors() {
    let db = movies();
    // Without a text index, `$text` has nothing to run on.
    let (s, v) = db.json(
        "POST",
        "/db/_find",
        Some(json!({"selector": {"$text": "bond"}})),
    );
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("no_usable_index")),
        "{v}"
    );
    let created = ok(
        &db,
        "POST",
        "/db/_index",
        Some(json!({"index": {}, "type": "text", "name": "all", "ddoc": "text"})),
    );
    assert_eq!(created["result"], json!("created"));
    let again = ok(
        &db,
        "POST",
        "/db/_index",
        Some(json!({"index": {}, "type": "text", "name": "all", "ddoc": "text"})),
    );
    assert_eq!(again["result"], json!("exists"));
    let list = ok(&db, "GET", "/db/_index", None);
    let text = list["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "text")
        .unwrap();
    assert_eq!(
        (&text["ddoc"], &text["name"]),
        (&json!("_design/text"), &json!("all"))
    );
    assert_eq!(text["def"]["fields"], json!("all_fields"));

    assert_eq!(
        sorted(find_ids(&db, json!({"selector": {"$text": "bond"}}))),
        ["dr-no", "goldfinger", "skyfall"]
    );
    assert_eq!(
        sorted(find_ids(
            &db,
            json!({"selector": {"$text": "bond", "year": {"$lt": 2000}}})
        )),
        ["dr-no", "goldfinger"]
    );
    // A selector no JSON index serves runs on the text index, not a full scan.
    let sel = json!({"selector": {"title": "Jaws"}});
    assert_eq!(find_ids(&db, sel.clone()), ["jaws"]);
    let plan = ok(&db, "POST", "/db/_explain", Some(sel));
    assert_eq!(plan["index"]["type"], json!("text"));
    assert_eq!(plan["query"], json!("title\\:string:\"Jaws\""));
    // What the index cannot express is checked on the documents.
    assert_eq!(
        find_ids(
            &db,
            json!({"selector": {"year": {"$gt": 1960}, "title": {"$regex": "^G"}}})
        ),
        ["goldfinger"]
    );
    assert_eq!(
        sorted(find_ids(
            &db,
            json!({"selector": {"cast": {"$in": ["Sean Connery"]}}})
        )),
        ["dr-no", "goldfinger"]
    );
    // Sorted, paged with bookmarks.
    let body = json!({"selector": {"year": {"$gte": 1960}}, "sort": [{"year:number": "desc"}], "limit": 2});
    let first = ok(&db, "POST", "/db/_find", Some(body.clone()));
    let ids: Vec<&str> = first["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["skyfall", "alien"]);
    let mut next = body.clone();
    next["bookmark"] = first["bookmark"].clone();
    assert_eq!(find_ids(&db, next), ["jaws", "goldfinger"]);
    // The index follows writes.
    db.put(
        "casino",
        json!({"title": "Casino Royale", "year": 2006, "about": "Bond earns his licence"}),
    );
    assert!(
        find_ids(&db, json!({"selector": {"$text": "licence"}})).contains(&"casino".to_string())
    );
    // Deleted, the index is gone and `$text` fails again.
    let (s, _) = db.json("DELETE", "/db/_index/_design/text/text/all", None);
    assert_eq!(s, 200);
    let (s, _) = db.json(
        "POST",
        "/db/_find",
        Some(json!({"selector": {"$text": "bond"}})),
    );
    assert_eq!(s, 400);
}

#[test]
fn mango_text_index_fields_and_partial_filters() {
    let db = movies();
    ok(
        &db,
        "POST",
        "/db/_index",
        Some(
            json!({"index": {"fields": [{"name": "year", "type": "number"}], "default_field": false,
            "partial_filter_selector": {"year": {"$lt": 2000}}}, "type": "text", "name": "old"}),
        ),
    );
    // Only the fields it indexes make it usable.
    let plan = ok(
        &db,
        "POST",
        "/db/_explain",
        Some(json!({"selector": {"year": {"$gt": 1970}}})),
    );
    assert_eq!(plan["index"]["name"], json!("old"));
    let plan = ok(
        &db,
        "POST",
        "/db/_explain",
        Some(json!({"selector": {"title": "Jaws"}})),
    );
    assert_eq!(plan["index"]["type"], json!("special"));
    // The partial filter leaves Skyfall out of the index.
    assert_eq!(
        sorted(find_ids(&db, json!({"selector": {"year": {"$gt": 1970}}}))),
        ["alien", "jaws"]
    );
    let (s, v) = db.json(
        "POST",
        "/db/_index",
        Some(json!({"index": {"fields": [{"name": "a", "type": "date"}]}, "type": "text"})),
    );
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_index")));
}
