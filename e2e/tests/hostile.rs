//! Hostile and careless requests over real HTTP: dot segments and bytes
//! that are not UTF-8 reach the route CouchDB would give them, and nothing
//! is lost.

use e2e::{raw_request, send, Settee};
use serde_json::{json, Value};

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

#[test]
fn dot_segments_name_documents_not_databases() {
    let s = Settee::start();
    for db in ["db1", "db2"] {
        assert_eq!(send(s.admin("PUT", &format!("/{db}")), None).0, 201);
    }
    let put = |path: &str| send(s.admin("PUT", path), Some(&json!({"v": 1}))).0;
    assert_eq!(put("/db1/doc"), 201);
    assert_eq!(put("/db2/doc"), 201);

    // Encoded dots are document and attachment names, as in CouchDB.
    for target in ["/db1/%2E", "/db1/doc/%2E%2E", "/db1/%2e%2E", "/db1/doc/%2E"] {
        let (st, body) = raw_request(s.port, "DELETE", target, "");
        assert!(matches!(st, 404 | 409), "DELETE {target}: {st} {body}");
    }
    let (st, body) = raw_request(s.port, "PUT", "/db1/%2E%2E", r#"{"dots":2}"#);
    assert_eq!(
        (st, json_of(&body)["id"].clone()),
        (201, json!("..")),
        "{body}"
    );
    let (st, body) = raw_request(s.port, "PUT", "/db1/%2E%2E/db2", r#"{"v":2}"#);
    assert_eq!(
        st, 409,
        "an attachment PUT to an existing document without a rev: {body}"
    );
    let (st, body) = raw_request(s.port, "DELETE", "/db1/%2E%2E/db2", "");
    assert!(matches!(st, 404 | 409), "{st} {body}");
    let (_, body) = raw_request(s.port, "GET", "/db1/%2E%2E", "");
    assert_eq!(json_of(&body)["dots"], 2, "{body}");
    for db in ["db1", "db2"] {
        let (st, info) = send(s.admin("GET", &format!("/{db}")), None);
        assert_eq!(st, 200, "{db} survives");
        assert!(info["doc_count"].as_u64() >= Some(1));
    }
    assert_eq!(send(s.admin("GET", "/db2/doc"), None).0, 200);

    // A database DELETE with a rev is a document DELETE gone wrong.
    let (st, body) = raw_request(s.port, "DELETE", "/db2/?rev=1-abc", "");
    assert_eq!(st, 400, "{body}");
    assert_eq!(send(s.admin("GET", "/db2"), None).0, 200);

    // Literal `.` and `..` are resolved by workerd before any Worker code
    // runs (measured: `/_utils/x/..` is served as `/_utils/`); RELIABILITY.md
    // records it. Should that change, Settee routes them as CouchDB does.
    assert_eq!(
        raw_request(s.port, "GET", "/_utils/x/..", ""),
        raw_request(s.port, "GET", "/_utils/", "")
    );
}

#[test]
fn ids_that_are_not_utf8_are_refused() {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/db"), None).0, 201);
    for (target, error) in [
        ("/db/%FF", "illegal_docid"),
        ("/db/%C0%AF", "illegal_docid"),
        ("/db/_design/%FE", "illegal_docid"),
        ("/db/doc/%FF", "bad_request"),
    ] {
        let (st, body) = raw_request(s.port, "PUT", target, "{}");
        assert_eq!(
            (st, json_of(&body)["error"].clone()),
            (400, json!(error)),
            "{target}: {body}"
        );
    }
    assert_eq!(send(s.admin("GET", "/db"), None).1["doc_count"], 0);
}
