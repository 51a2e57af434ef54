//! `/_node/{node}/_config` on a real workerd: values as JSON strings,
//! persisted in the catalog across restarts, and live — the router and the
//! database actors follow a write at once.

use e2e::{basic, send, Settee};
use serde_json::{json, Value};

fn put(s: &Settee, path: &str, value: &str) -> (u16, Value) {
    send(s.admin("PUT", path), Some(&json!(value)))
}

#[test]
fn config_is_stored_and_live() {
    let mut s = Settee::start();
    let (st, all) = send(s.admin("GET", "/_node/_local/_config"), None);
    assert_eq!(st, 200, "{all}");
    assert_eq!(all["couchdb"]["max_document_size"], "8000000");
    assert_eq!(send(s.anon("GET", "/_node/_local/_config"), None).0, 401);

    // A document limit applies in the database actor at once.
    assert_eq!(send(s.admin("PUT", "/cfg"), None).0, 201);
    let big = json!({"text": "x".repeat(2_000)});
    let key = "/_node/settee@127.0.0.1/_config/couchdb/max_document_size";
    assert_eq!(
        put(&s, key, "1000"),
        (200, json!("8000000")),
        "the default it replaces"
    );
    let (st, v) = send(s.admin("PUT", "/cfg/big"), Some(&big));
    assert_eq!(
        (st, v["error"].as_str()),
        (413, Some("document_too_large")),
        "{v}"
    );
    assert_eq!(
        send(s.admin("PUT", "/cfg/small"), Some(&json!({"a": 1}))).0,
        201
    );

    // The router follows too: with require_valid_user the welcome needs a
    // login; deleting the value lifts it.
    let rvu = "/_node/_local/_config/chttpd/require_valid_user";
    assert_eq!(put(&s, rvu, "true"), (200, json!("false")));
    assert_eq!(send(s.anon("GET", "/"), None).0, 401);
    assert_eq!(send(s.admin("DELETE", rvu), None), (200, json!("true")));
    assert_eq!(send(s.anon("GET", "/"), None).0, 200);

    // An admin made through _config is stored hashed and can log in.
    assert_eq!(
        put(&s, "/_node/_local/_config/admins/ops", "ops-pw"),
        (200, json!(""))
    );
    let (_, hash) = send(s.admin("GET", "/_node/_local/_config/admins/ops"), None);
    assert!(
        hash.as_str().unwrap().starts_with("-pbkdf2:sha256-"),
        "{hash}"
    );
    let ops = |s: &Settee| {
        s.anon("GET", "/_all_dbs")
            .set("authorization", &basic("ops", "ops-pw"))
            .call()
            .map(|r| r.status())
            .unwrap_or_else(|e| match e {
                ureq::Error::Status(c, _) => c,
                e => panic!("{e}"),
            })
    };
    assert_eq!(ops(&s), 200);

    // Unknown keys are kept; everything survives a restart.
    assert_eq!(
        put(&s, "/_node/_local/_config/vendor/thing", "on"),
        (200, json!(""))
    );
    s.restart();
    assert_eq!(
        send(s.admin("GET", "/_node/_local/_config/vendor/thing"), None),
        (200, json!("on"))
    );
    assert_eq!(send(s.admin("GET", key), None), (200, json!("1000")));
    assert_eq!(send(s.admin("PUT", "/cfg/big2"), Some(&big)).0, 413);
    assert_eq!(ops(&s), 200);
    assert_eq!(send(s.admin("DELETE", key), None), (200, json!("1000")));
    assert_eq!(send(s.admin("PUT", "/cfg/big3"), Some(&big)).0, 201);
}

/// The seed guide's cluster calls answer as a node that is set up.
#[test]
fn cluster_setup_answers_as_a_finished_node() {
    let s = Settee::start();
    assert_eq!(
        send(s.admin("GET", "/_cluster_setup"), None),
        (200, json!({"state": "single_node_enabled"}))
    );
    let post = |body: Value| send(s.admin("POST", "/_cluster_setup"), Some(&body));
    let (st, v) = post(json!({"action": "enable_cluster", "username": "admin",
        "password": "password", "node_count": 3}));
    assert_eq!(
        (st, v["reason"].as_str()),
        (400, Some("Cluster is already enabled"))
    );
    let (st, v) = post(json!({"action": "add_node", "host": "node2", "port": 5984}));
    assert_eq!((st, v["error"].as_str()), (400, Some("bad_request")));
    let (st, v) = post(json!({"action": "finish_cluster"}));
    assert_eq!(
        (st, v["reason"].as_str()),
        (400, Some("Cluster is already finished"))
    );
    assert_eq!(
        send(s.anon("POST", "/_cluster_setup"), Some(&json!({}))).0,
        401
    );
    let (_, m) = send(s.admin("GET", "/_membership"), None);
    assert_eq!(m["all_nodes"], json!(["settee@127.0.0.1"]));
}

/// Requests are counted where they happen and merged by the catalog: the
/// router's counts reach `_stats` with its next read of the `_config`
/// values (at once here: this isolate's own counts are added), a
/// database's reads and writes within its report window.
#[test]
fn stats_count_requests_and_documents() {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/st"), None).0, 201);
    let docs = json!({"docs": [{"_id": "a"}, {"_id": "b"}, {"_id": "c"}]});
    assert_eq!(send(s.admin("POST", "/st/_bulk_docs"), Some(&docs)).0, 201);
    for _ in 0..4 {
        assert_eq!(send(s.admin("GET", "/st/a"), None).0, 200);
    }
    assert_eq!(send(s.admin("GET", "/st/missing"), None).0, 404);
    let (st, stats) = send(s.admin("GET", "/_node/_local/_stats"), None);
    assert_eq!(st, 200, "{stats}");
    let counter = |v: &Value, path: &[&str]| {
        path.iter()
            .fold(v, |v, p| &v[*p])
            .get("value")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    assert!(counter(&stats, &["couchdb", "httpd_request_methods", "GET"]) >= 5);
    assert!(counter(&stats, &["couchdb", "httpd_status_codes", "404"]) >= 1);
    assert!(counter(&stats, &["couchdb", "httpd", "requests"]) >= 7);
    assert!(
        stats["couchdb"]["request_time"]["value"]["n"]
            .as_u64()
            .unwrap()
            >= 7
    );
    // The database actor's counts arrive within its 5 s window.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, stats) = send(s.admin("GET", "/_node/_local/_stats/couchdb"), None);
        let writes = counter(&stats, &["database_writes"]);
        let reads = counter(&stats, &["database_reads"]);
        if writes >= 3 && reads >= 5 {
            assert_eq!(writes, 3, "{stats}");
            assert_eq!(counter(&stats, &["open_databases"]), 1, "{stats}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stats}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let text = s
        .admin("GET", "/_node/_local/_prometheus")
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(text.contains("couchdb_database_writes_total 3\n"), "{text}");
    assert!(
        text.contains("# TYPE couchdb_request_time_seconds summary"),
        "{text}"
    );
    let (_, sys) = send(s.admin("GET", "/_node/_local/_system"), None);
    assert!(sys["memory"]["total"].as_u64().unwrap() > 1 << 20, "{sys}");
    let (_, v) = send(s.admin("GET", "/_node/_local/_versions"), None);
    assert_eq!(v["javascript_engine"]["name"], "quickjs");
}
