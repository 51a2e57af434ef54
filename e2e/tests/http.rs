//! Settee over HTTP on a real workerd, as clients see it.

use e2e::{send, Settee};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn put_db(s: &Settee, db: &str) {
    let (st, v) = send(s.admin("PUT", &format!("/{db}")), None);
    assert_eq!(st, 201, "{v}");
}

#[test]
fn server_endpoints() {
    let s = Settee::start();
    let (st, w) = send(s.anon("GET", "/"), None);
    assert_eq!(st, 200);
    assert_eq!(w["couchdb"], "Welcome");
    assert_eq!(w["vendor"]["name"], "Settee");
    let uuid = w["uuid"].as_str().unwrap().to_string();
    assert_eq!(uuid.len(), 32);
    assert_eq!(
        send(s.anon("GET", "/_up"), None),
        (200, json!({"status": "ok", "seeds": {}}))
    );
    let (_, u) = send(s.anon("GET", "/_uuids?count=5"), None);
    assert_eq!(u["uuids"].as_array().unwrap().len(), 5);
    assert_eq!(send(s.anon("GET", "/_uuids?count=5000"), None).0, 400);
    let resp = s.anon("GET", "/").call().unwrap();
    assert!(resp.header("server").unwrap().starts_with("CouchDB/3"));
    for db in ["b", "a", "c"] {
        put_db(&s, db);
    }
    assert_eq!(
        send(s.admin("GET", "/_all_dbs"), None).1,
        json!(["a", "b", "c"])
    );
    assert_eq!(
        send(s.admin("GET", "/_all_dbs?descending=true&limit=2"), None).1,
        json!(["c", "b"])
    );
    assert_eq!(
        send(s.admin("GET", "/_all_dbs?startkey=%22b%22"), None).1,
        json!(["b", "c"])
    );
    let (st, info) = send(
        s.admin("POST", "/_dbs_info"),
        Some(&json!({"keys": ["a", "zz"]})),
    );
    assert_eq!(st, 200);
    assert_eq!(info[0]["info"]["db_name"], "a");
    assert_eq!(info[1], json!({"key": "zz", "error": "not_found"}));
    let (_, all) = send(s.admin("GET", "/_dbs_info"), None);
    assert_eq!(all.as_array().unwrap().len(), 3);
    assert_eq!(send(s.admin("DELETE", "/b"), None).0, 200);
    assert_eq!(send(s.admin("GET", "/_all_dbs"), None).1, json!(["a", "c"]));
    let (st, sess) = send(s.admin("GET", "/_session"), None);
    assert_eq!((st, sess["userCtx"]["name"].as_str()), (200, Some("admin")));
    assert_eq!(
        send(s.anon("GET", "/_bogus"), None).1["error"],
        "illegal_database_name"
    );
    // The uuid is stable across restarts (PouchDB keys checkpoints on it).
    let mut s = s;
    s.restart();
    assert_eq!(send(s.anon("GET", "/"), None).1["uuid"], uuid.as_str());
}

#[test]
fn authentication_is_required() {
    let s = Settee::start();
    put_db(&s, "db");
    let unauthorized = |v: &Value, reason: &str| {
        assert_eq!(v, &json!({"error": "unauthorized", "reason": reason}));
    };
    let (st, v) = send(s.anon("GET", "/db"), None);
    assert_eq!(st, 401);
    unauthorized(&v, "You are not authorized to access this db.");
    let (st, v) = send(s.anon("GET", "/_all_dbs"), None);
    assert_eq!(st, 401);
    unauthorized(&v, "You are not a server admin.");
    let bad = s
        .anon("GET", "/db")
        .set("authorization", &e2e::basic("admin", "wrong"));
    let (st, v) = send(bad, None);
    assert_eq!(st, 401);
    unauthorized(&v, "Name or password is incorrect.");
    // A client cannot forge the user context the router passes to actors.
    let forged = s.anon("PUT", "/db/x").set(
        "x-settee-user-ctx",
        r#"{"name":"admin","roles":["_admin"]}"#,
    );
    assert_eq!(send(forged, Some(&json!({}))).0, 401);
    assert_eq!(
        send(s.admin("GET", "/db/x"), None).0,
        404,
        "nothing was written"
    );
    assert_eq!(send(s.anon("PUT", "/other"), None).0, 401);
}

#[test]
fn no_admin_party() {
    let s = Settee::start_with(&[("COUCHDB_USER", ""), ("COUCHDB_PASSWORD", "")]);
    let (st, v) = send(s.admin("PUT", "/db"), None);
    assert_eq!(st, 500);
    assert!(v["reason"].as_str().unwrap().contains("COUCHDB_PASSWORD"));
    assert_eq!(send(s.anon("PUT", "/db"), None).0, 500);
}

#[test]
fn documents_over_http() {
    let s = Settee::start();
    put_db(&s, "db");
    let (st, v) = send(s.admin("PUT", "/db/a%2Fb"), Some(&json!({"n": 1})));
    assert_eq!(st, 201);
    let rev = v["rev"].as_str().unwrap().to_string();
    let resp = s.admin("GET", "/db/a%2Fb").call().unwrap();
    assert_eq!(resp.header("etag"), Some(format!("\"{rev}\"").as_str()));
    let r304 = s
        .admin("GET", "/db/a%2Fb")
        .set("if-none-match", &format!("\"{rev}\""))
        .call();
    assert!(matches!(r304, Ok(r) if r.status() == 304));
    let head = s.admin("HEAD", "/db/a%2Fb").call().unwrap();
    assert_eq!(head.header("etag"), Some(format!("\"{rev}\"").as_str()));
    assert_eq!(head.into_string().unwrap(), "");
    let (st, v) = send(s.admin("POST", "/db"), Some(&json!({"made": "by post"})));
    assert_eq!(st, 201);
    let id = v["id"].as_str().unwrap();
    assert_eq!(
        send(s.admin("GET", &format!("/db/{id}")), None).1["made"],
        "by post"
    );
    let copy = s.admin("COPY", "/db/a%2Fb").set("destination", "copied");
    assert_eq!(send(copy, None).0, 201);
    assert_eq!(send(s.admin("GET", "/db/copied"), None).1["n"], 1);
    let (st, _) = send(
        s.admin("PUT", "/db/_design/app"),
        Some(&json!({"language": "javascript"})),
    );
    assert_eq!(st, 201);
    let (_, dd) = send(s.admin("GET", "/db/_design_docs"), None);
    assert_eq!(dd["rows"][0]["id"], "_design/app");
    let (st, v) = send(s.admin("PUT", "/db/_local/cp"), Some(&json!({"seq": 3})));
    assert_eq!((st, v["rev"].as_str()), (201, Some("0-1")));
    let (_, all) = send(s.admin("GET", "/db/_all_docs?include_docs=true"), None);
    assert_eq!(all["total_rows"], 4);
    let (st, v) = send(
        s.admin("POST", "/db/_bulk_docs"),
        Some(&json!({"docs": [{"_id": "x"}, {"_id": "a/b", "n": 2}]})),
    );
    assert_eq!(st, 201);
    assert_eq!(v[0]["ok"], true);
    assert_eq!(v[1]["error"], "conflict");
    let (st, v) = send(s.admin("DELETE", &format!("/db/a%2Fb?rev={rev}")), None);
    assert_eq!((st, v["ok"].as_bool()), (200, Some(true)));
    assert_eq!(
        send(s.admin("GET", "/db/a%2Fb"), None).1["reason"],
        "deleted"
    );
    let (_, ch) = send(s.admin("GET", "/db/_changes?since=0"), None);
    assert_eq!(ch["results"].as_array().unwrap().len(), 5);
}

#[test]
fn errors_are_couchdb_shaped_and_lose_nothing() {
    let s = Settee::start_with(&[
        ("MAX_DOCUMENT_SIZE", "1000"),
        ("MAX_HTTP_REQUEST_SIZE", "5000"),
    ]);
    put_db(&s, "db");
    let (_, v) = send(s.admin("PUT", "/db/keep"), Some(&json!({"v": 1})));
    let rev = v["rev"].as_str().unwrap().to_string();
    let raw = |method: &str, path: &str, body: &str| {
        let r = s
            .admin(method, path)
            .set("content-type", "application/json")
            .send_string(body);
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        let status = resp.status();
        let v: Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
        (
            status,
            v["error"].as_str().unwrap().to_string(),
            v["reason"].to_string(),
        )
    };
    let big_doc = format!("{{\"s\":\"{}\"}}", "x".repeat(2000));
    let huge_req = format!("{{\"s\":\"{}\"}}", "x".repeat(6000));
    let cases = [
        ("PUT", "/db/keep", "{oops", 400, "bad_request"),
        ("PUT", "/db/_bad", "{}", 400, "illegal_docid"),
        ("PUT", "/db/keep", r#"{"_rev":"nope"}"#, 400, "bad_request"),
        ("PUT", "/db/keep", r#"{"_rev":"1-abc"}"#, 409, "conflict"),
        ("PUT", "/db/keep", &big_doc, 413, "document_too_large"),
        ("PUT", "/db/keep", &huge_req, 413, "too_large"),
        ("PUT", "/Bad_Name", "", 400, "illegal_database_name"),
        ("PUT", "/db", "", 412, "file_exists"),
        ("GET", "/nodb", "", 404, "not_found"),
        ("GET", "/db/nodoc", "", 404, "not_found"),
        ("PATCH", "/db/keep", "{}", 405, "method_not_allowed"),
        ("PATCH", "/db", "{}", 405, "method_not_allowed"),
        (
            "POST",
            "/db/_bulk_docs",
            r#"{"docs":[{"_id":"_nope"}]}"#,
            400,
            "illegal_docid",
        ),
        ("GET", "/db/_all_docs?limit=x", "", 400, "query_parse_error"),
        ("GET", "/db/_changes?feed=bogus", "", 400, "bad_request"),
    ];
    for (m, p, b, status, error) in cases {
        let (st, err, reason) = raw(m, p, b);
        assert_eq!((st, err.as_str()), (status, error), "{m} {p} {b}: {reason}");
        assert!(reason.starts_with('"'), "{reason}");
    }
    let (_, doc) = send(s.admin("GET", "/db/keep"), None);
    assert_eq!(doc, json!({"_id": "keep", "_rev": rev, "v": 1}));
    assert_eq!(send(s.admin("GET", "/db"), None).1["doc_count"], 1);
}

#[test]
fn data_persists_across_restart() {
    let mut s = Settee::start();
    put_db(&s, "keep");
    let docs: Vec<Value> = (0..50)
        .map(|i| json!({"_id": format!("d{i:03}"), "i": i}))
        .collect();
    assert_eq!(
        send(
            s.admin("POST", "/keep/_bulk_docs"),
            Some(&json!({"docs": docs}))
        )
        .0,
        201
    );
    let before = send(s.admin("GET", "/keep"), None).1;
    s.restart();
    let after = send(s.admin("GET", "/keep"), None).1;
    assert_eq!(after["doc_count"], 50);
    assert_eq!(after["update_seq"], before["update_seq"]);
    assert_eq!(send(s.admin("GET", "/keep/d042"), None).1["i"], 42);
    assert_eq!(send(s.admin("GET", "/_all_dbs"), None).1, json!(["keep"]));
}

#[test]
fn deleted_then_recreated_database_starts_empty() {
    let s = Settee::start();
    put_db(&s, "cycle");
    send(s.admin("PUT", "/cycle/a"), Some(&json!({})));
    send(s.admin("PUT", "/cycle/_local/a"), Some(&json!({})));
    assert_eq!(send(s.admin("DELETE", "/cycle"), None).0, 200);
    assert_eq!(
        send(s.admin("GET", "/cycle/a"), None).1["reason"],
        "Database does not exist."
    );
    put_db(&s, "cycle");
    let info = send(s.admin("GET", "/cycle"), None).1;
    assert_eq!(info["doc_count"], 0);
    assert!(info["update_seq"].as_str().unwrap().starts_with("0-"));
    assert_eq!(send(s.admin("GET", "/cycle/_local/a"), None).0, 404);
}

#[test]
fn longpoll_waits_for_the_next_change() {
    let s = Settee::start();
    put_db(&s, "lp");
    let url = "/lp/_changes?feed=longpoll&since=now&timeout=10000";
    let writer = {
        let req = s.admin("PUT", "/lp/late");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            send(req, Some(&json!({"late": true})));
        })
    };
    let t0 = Instant::now();
    let (st, v) = send(s.admin("GET", url), None);
    let waited = t0.elapsed();
    writer.join().unwrap();
    assert_eq!(st, 200);
    assert_eq!(v["results"][0]["id"], "late");
    assert!(
        waited >= Duration::from_millis(300),
        "it waited for the write"
    );
    // With nothing happening it answers empty at the timeout, after heartbeats.
    let (st, v) = send(
        s.admin(
            "GET",
            "/lp/_changes?feed=longpoll&since=now&timeout=300&heartbeat=100",
        ),
        None,
    );
    assert_eq!((st, v["results"].clone()), (200, json!([])));
}

/// `_search_analyze` answers the terms an analyzer makes of a text, by
/// POST or GET, and refuses what it cannot serve as CouchDB does.
#[test]
fn search_analyze() {
    let s = Settee::start();
    let post = |body: Value| send(s.admin("POST", "/_search_analyze"), Some(&body));
    assert_eq!(
        post(json!({"analyzer": "english", "text": "The runners' dogs were running"})),
        (200, json!({"tokens": ["runner", "dog", "were", "run"]}))
    );
    assert_eq!(
        post(json!({"analyzer": {"name": "perfield", "default": "keyword"}, "text": "New York"})),
        (200, json!({"tokens": ["New York"]}))
    );
    let (st, v) = send(
        s.anon(
            "GET",
            "/_search_analyze?analyzer=standard&text=Hello%20World",
        ),
        None,
    );
    assert_eq!((st, v), (200, json!({"tokens": ["hello", "world"]})));
    for (body, reason) in [
        (json!({"text": "x"}), "analyzer parameter is mandatory"),
        (
            json!({"analyzer": "standard"}),
            "text parameter is mandatory",
        ),
        (
            json!({"analyzer": 3, "text": "x"}),
            "analyzer parameter must be a string or an object",
        ),
    ] {
        let (st, v) = post(body);
        assert_eq!(
            (st, v["error"].as_str(), v["reason"].as_str()),
            (400, Some("bad_request"), Some(reason))
        );
    }
    let (st, v) = post(json!({"analyzer": "german", "text": "x"}));
    assert_eq!(st, 400, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("german"), "{v}");
    assert_eq!(send(s.admin("PUT", "/_search_analyze"), None).0, 405);
}
