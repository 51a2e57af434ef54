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
    assert_eq!(put(&s, key, "1000"), (200, json!("")));
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
    assert_eq!(put(&s, rvu, "true"), (200, json!("")));
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
