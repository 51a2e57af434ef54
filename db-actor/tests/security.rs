//! Who may do what in a database, and the `_users` rules, natively.

mod common;

use common::Db;
use serde_json::{json, Value};
use shared::user::UserCtx;

fn user(name: Option<&str>, roles: &[&str]) -> UserCtx {
    UserCtx {
        name: name.map(String::from),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

/// The database every matrix row runs against, with a doc and a ddoc.
fn secured() -> Db {
    let db = Db::new();
    let sec = json!({"admins": {"names": ["dba"], "roles": []}, "members": {"names": ["mem"], "roles": ["team"]}});
    assert_eq!(db.json("PUT", "/db/_security", Some(sec)).0, 200);
    db.put("doc", json!({"v": 1}));
    db.put("_design/app", json!({"language": "javascript"}));
    db
}

#[test]
fn authorization_matrix() {
    let who = [
        ("anonymous", user(None, &[])),
        ("plain user", user(Some("eve"), &[])),
        ("member by name", user(Some("mem"), &[])),
        ("member by role", user(Some("tim"), &["team"])),
        ("db admin", user(Some("dba"), &[])),
        ("server admin", UserCtx::admin("root")),
    ];
    // What, method, URL, body, and the expected status per actor in `who` order.
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Option<Value>,
        [u16; 6],
    );
    let cases: Vec<Case> = vec![
        (
            "read doc",
            "GET",
            "/db/doc",
            None,
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "db info",
            "GET",
            "/db",
            None,
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "write doc",
            "POST",
            "/db",
            Some(json!({"x": 1})),
            [401, 403, 201, 201, 201, 201],
        ),
        (
            "write ddoc",
            "PUT",
            "/db/_design/new",
            Some(json!({})),
            [401, 403, 403, 403, 201, 201],
        ),
        (
            "read _security",
            "GET",
            "/db/_security",
            None,
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "_all_docs",
            "GET",
            "/db/_all_docs",
            None,
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "_changes",
            "GET",
            "/db/_changes",
            None,
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "_bulk_docs",
            "POST",
            "/db/_bulk_docs",
            Some(json!({"docs": [{}]})),
            [401, 403, 201, 201, 201, 201],
        ),
        (
            "compact",
            "POST",
            "/db/_compact",
            None,
            [401, 403, 403, 403, 202, 202],
        ),
        (
            "purge",
            "POST",
            "/db/_purge",
            Some(json!({"doc": []})),
            [401, 403, 403, 403, 201, 201],
        ),
        (
            "set _purged_infos_limit",
            "PUT",
            "/db/_purged_infos_limit",
            Some(json!(10)),
            [401, 403, 403, 403, 200, 200],
        ),
        // One actor is one database, so creating is tested here as the
        // refusal only; e2e covers the rest through the router.
        (
            "create db",
            "PUT",
            "/db",
            None,
            [401, 403, 403, 403, 403, 412],
        ),
    ];
    for (what, method, url, body, want) in &cases {
        for ((label, u), status) in who.iter().zip(want) {
            let db = secured();
            let (got, v) = db.as_user(u, method, url, body.clone());
            assert_eq!(got, *status, "{what} as {label}: {v}");
            if got >= 400 {
                assert!(
                    v["error"].is_string() && v["reason"].is_string(),
                    "{what} as {label}: {v}"
                );
            }
        }
    }
    // Writing _security and deleting the database, last (they change state).
    let new_sec = json!({"members": {"names": ["mem"]}});
    for ((label, u), status) in who.iter().zip([401, 403, 403, 403, 200, 200]) {
        let (got, _) = secured().as_user(u, "PUT", "/db/_security", Some(new_sec.clone()));
        assert_eq!(got, status, "write _security as {label}");
    }
    for ((label, u), status) in who.iter().zip([401, 403, 403, 403, 403, 200]) {
        let (got, _) = secured().as_user(u, "DELETE", "/db", None);
        assert_eq!(got, status, "delete db as {label}");
    }
}

#[test]
fn design_docs_in_bulk_need_a_db_admin() {
    let db = secured();
    let (s, v) = db.as_user(
        &user(Some("mem"), &[]),
        "POST",
        "/db/_bulk_docs",
        Some(json!({"docs": [{"_id": "ok"}, {"_id": "_design/x"}]})),
    );
    assert_eq!(s, 201);
    assert_eq!(v[0]["ok"], true);
    assert_eq!(v[1]["error"], "forbidden");
    assert_eq!(db.json("GET", "/db/_design/x", None).0, 404);
}

#[test]
fn new_databases_are_admin_only_and_empty_members_are_public() {
    let db = Db::new();
    let (_, sec) = db.json("GET", "/db/_security", None);
    assert_eq!(
        sec,
        json!({"members": {"roles": ["_admin"]}, "admins": {"roles": ["_admin"]}})
    );
    assert_eq!(
        db.as_user(&user(Some("eve"), &[]), "GET", "/db", None).0,
        403
    );
    db.json(
        "PUT",
        "/db/_security",
        Some(json!({"admins": {"names": ["dba"]}, "members": {}})),
    );
    assert_eq!(db.as_user(&user(None, &[]), "GET", "/db", None).0, 200);
    assert_eq!(
        db.as_user(&user(None, &[]), "PUT", "/db/_design/d", Some(json!({})))
            .0,
        401
    );
    let (s, v) = db.json(
        "PUT",
        "/db/_security",
        Some(json!({"admins": {"names": "x"}})),
    );
    assert_eq!((s, v["error"].as_str()), (400, Some("bad_request")));
}

#[test]
fn users_database_rules() {
    let db = Db::named("_users");
    let anon = user(None, &[]);
    let ann = user(Some("ann"), &[]);
    let bob = user(Some("bob"), &[]);
    let ann_doc = json!({"type": "user", "name": "ann", "roles": [], "password": "pw"});
    let (s, v) = db.as_user(&anon, "PUT", "/_users/org.couchdb.user:ann", Some(ann_doc));
    assert_eq!(s, 201, "anyone may sign up: {v}");
    let rev = v["rev"].as_str().unwrap().to_string();
    let (s, stored) = db.as_user(&ann, "GET", "/_users/org.couchdb.user:ann", None);
    assert_eq!(s, 200);
    assert!(
        stored.get("password").is_none(),
        "the password is never stored"
    );
    assert_eq!(stored["password_scheme"], "pbkdf2");
    assert!(stored["derived_key"].is_string() && stored["salt"].is_string());
    // Others cannot see or change it; anonymous cannot overwrite it.
    assert_eq!(
        db.as_user(&bob, "GET", "/_users/org.couchdb.user:ann", None)
            .0,
        404
    );
    assert_eq!(
        db.as_user(&anon, "GET", "/_users/org.couchdb.user:ann", None)
            .0,
        404
    );
    let mut edit = stored.clone();
    edit["roles"] = json!(["boss"]);
    assert_eq!(
        db.as_user(
            &bob,
            "PUT",
            "/_users/org.couchdb.user:ann",
            Some(edit.clone())
        )
        .0,
        404
    );
    // The owner may not grant herself roles; the admin may.
    let (s, v) = db.as_user(
        &ann,
        "PUT",
        "/_users/org.couchdb.user:ann",
        Some(edit.clone()),
    );
    assert_eq!((s, v["error"].as_str()), (403, Some("forbidden")));
    assert_eq!(
        db.json("PUT", "/_users/org.couchdb.user:ann", Some(edit)).0,
        201
    );
    // The owner changes her password: a new salt.
    let (_, cur) = db.as_user(&ann, "GET", "/_users/org.couchdb.user:ann", None);
    let mut pw = cur.clone();
    pw["password"] = json!("new");
    assert_eq!(
        db.as_user(&ann, "PUT", "/_users/org.couchdb.user:ann", Some(pw))
            .0,
        201
    );
    let (_, after) = db.as_user(&ann, "GET", "/_users/org.couchdb.user:ann", None);
    assert_ne!(after["salt"], cur["salt"]);
    assert_eq!(
        after["roles"],
        json!(["boss"]),
        "roles survive the owner's edit"
    );
    // Listing is for admins.
    for url in ["/_users/_all_docs", "/_users/_changes"] {
        let (s, v) = db.as_user(&ann, "GET", url, None);
        assert_eq!((s, v["error"].as_str()), (403, Some("forbidden")), "{url}");
        assert_eq!(db.json("GET", url, None).0, 200);
    }
    // Invalid user documents.
    let bad = json!({"type": "user", "name": "zed", "roles": []});
    assert_eq!(
        db.as_user(&anon, "PUT", "/_users/org.couchdb.user:other", Some(bad))
            .0,
        403
    );
    assert_eq!(
        db.as_user(
            &anon,
            "PUT",
            "/_users/org.couchdb.user:x",
            Some(json!({"name": "x", "roles": []}))
        )
        .0,
        403
    );
    assert!(rev.starts_with("1-"));
}

/// `_replicator`: documents get their writer as `owner`; users may not
/// touch others' documents and see them without credentials, in every
/// way of reading; admins see everything.
#[test]
fn replicator_documents_have_owners_and_hide_credentials() {
    let db = Db::named("_replicator");
    let sec = json!({"members": {"roles": ["replicators"]}});
    assert_eq!(db.json("PUT", "/_replicator/_security", Some(sec)).0, 200);
    let (ann, bob) = (
        user(Some("ann"), &["replicators"]),
        user(Some("bob"), &["replicators"]),
    );
    let secret_doc = json!({"source": "https://bob:s3cret@example.com/a",
        "target": {"url": "http://t/b", "headers": {"Authorization": "Basic Ym9iOnMzY3JldA=="}}});
    let (st, v) = db.as_user(&bob, "PUT", "/_replicator/bobs", Some(secret_doc));
    assert_eq!(st, 201, "{v}");
    let (_, own) = db.as_user(&bob, "GET", "/_replicator/bobs", None);
    assert_eq!(own["owner"], "bob");
    assert_eq!(own["source"], "https://bob:s3cret@example.com/a");

    let (_, seen) = db.as_user(&ann, "GET", "/_replicator/bobs", None);
    assert_eq!(seen["source"], "https://example.com/a");
    assert_eq!(seen["target"], json!({"url": "http://t/b"}));
    let leaks = |v: &Value| v.to_string().contains("s3cret") || v.to_string().contains("Ym9i");
    for url in [
        "/_replicator/_all_docs?include_docs=true",
        "/_replicator/_changes?include_docs=true",
        "/_replicator/_changes?feed=continuous&include_docs=true&timeout=0",
    ] {
        let r = db.request_as(
            &ann,
            shared::http::Request::new(
                "GET",
                url.split('?').next().unwrap(),
                url.split('?').nth(1).unwrap(),
            ),
        );
        assert_eq!(r.status, 200, "{url}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("s3cret"),
            "{url}"
        );
    }
    let (_, bulk) = db.as_user(
        &ann,
        "POST",
        "/_replicator/_bulk_get",
        Some(json!({"docs": [{"id": "bobs"}]})),
    );
    assert!(!leaks(&bulk), "{bulk}");
    let (_, found) = db.as_user(
        &ann,
        "POST",
        "/_replicator/_find",
        Some(json!({"selector": {}})),
    );
    assert!(!leaks(&found), "{found}");

    // Ann may not edit Bob's document, nor write one in his name.
    let rev = own["_rev"].as_str().unwrap();
    let edit = json!({"_rev": rev, "source": "a", "target": "b"});
    assert_eq!(
        db.as_user(&ann, "PUT", "/_replicator/bobs", Some(edit)).0,
        403
    );
    let forged = json!({"owner": "bob", "source": "a", "target": "b"});
    assert_eq!(
        db.as_user(&ann, "PUT", "/_replicator/forged", Some(forged))
            .0,
        403
    );
    assert_eq!(
        db.as_user(
            &ann,
            "DELETE",
            &format!("/_replicator/bobs?rev={rev}"),
            None
        )
        .0,
        403
    );
    // The admin sees the credentials.
    let (_, all) = db.json("GET", "/_replicator/bobs", None);
    assert_eq!(all["source"], "https://bob:s3cret@example.com/a");
}

/// The replicator's own state writes in `_replicator` pass a
/// `validate_doc_update` that refuses everyone else, and keep the owner.
#[test]
fn replicator_state_writes_skip_owner_and_validation() {
    use shared::replication::docs;
    let db = Db::named("_replicator");
    let sec = json!({"members": {"names": ["bob"]}});
    assert_eq!(db.json("PUT", "/_replicator/_security", Some(sec)).0, 200);
    let bob = user(Some("bob"), &[]);
    let (st, v) = db.as_user(
        &bob,
        "PUT",
        "/_replicator/r",
        Some(json!({"source": "a", "target": "b"})),
    );
    assert_eq!(st, 201, "{v}");
    let vdu = "function(doc) { throw({forbidden: 'no edits'}); }";
    let ddoc = json!({"validate_doc_update": vdu});
    let (st, v) = db.json("PUT", "/_replicator/_design/strict", Some(ddoc));
    assert_eq!(st, 201, "{v}");
    let (_, doc) = db.json("GET", "/_replicator/r", None);
    let mut state = doc.clone();
    state["_replication_state"] = json!("completed");
    assert_eq!(
        db.json("PUT", "/_replicator/r", Some(state.clone())).0,
        403,
        "an admin's write is validated"
    );
    let (st, v) = db.as_user(&docs::system_user(), "PUT", "/_replicator/r", Some(state));
    assert_eq!(st, 201, "{v}");
    let (_, doc) = db.json("GET", "/_replicator/r", None);
    assert_eq!(doc["_replication_state"], "completed");
    assert_eq!(doc["owner"], "bob");
}
