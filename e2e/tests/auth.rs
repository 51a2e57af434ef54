//! Users, sessions, JWT, lockout, CORS and `_security`, through the router.

use e2e::{basic, send, Settee};
use serde_json::{json, Value};
use std::time::Instant;

const PW: &str = "pw-123";

/// Creates a user (as the admin) with roles.
fn add_user(s: &Settee, name: &str, roles: &[&str]) {
    let doc = json!({"type": "user", "name": name, "roles": roles, "password": PW});
    let (st, v) = send(
        s.admin("PUT", &format!("/_users/org.couchdb.user:{name}")),
        Some(&doc),
    );
    assert_eq!(st, 201, "{v}");
}

fn as_user(s: &Settee, who: Option<&str>, method: &str, path: &str) -> ureq::Request {
    match who {
        None => s.anon(method, path),
        Some("admin") => s.admin(method, path),
        Some(name) => s.anon(method, path).set("authorization", &basic(name, PW)),
    }
}

#[test]
fn authorization_matrix() {
    let s = Settee::start();
    for (name, roles) in [
        ("ann", vec![]),
        ("mem", vec![]),
        ("tim", vec!["team"]),
        ("dba", vec![]),
    ] {
        add_user(&s, name, &roles);
    }
    let security = json!({"admins": {"names": ["dba"], "roles": []}, "members": {"names": ["mem"], "roles": ["team"]}});
    assert_eq!(send(s.admin("PUT", "/sec"), None).0, 201);
    assert_eq!(
        send(s.admin("PUT", "/sec/_security"), Some(&security)).0,
        200
    );
    assert_eq!(
        send(s.admin("PUT", "/sec/doc"), Some(&json!({"v": 1}))).0,
        201
    );
    let who: [(&str, Option<&str>); 6] = [
        ("anonymous", None),
        ("plain user", Some("ann")),
        ("member by name", Some("mem")),
        ("member by role", Some("tim")),
        ("db admin", Some("dba")),
        ("server admin", Some("admin")),
    ];
    type Cell = (&'static str, &'static str, String, Option<Value>, [u16; 6]);
    let cells: Vec<Cell> = vec![
        (
            "read doc",
            "GET",
            "/sec/doc".into(),
            None,
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "write doc",
            "POST",
            "/sec".into(),
            Some(json!({"n": 1})),
            [401, 403, 201, 201, 201, 201],
        ),
        (
            "write design doc",
            "POST",
            "/sec".into(),
            Some(json!({"_id": "_design/d"})),
            [401, 403, 403, 403, 201, 201],
        ),
        (
            "read _security",
            "GET",
            "/sec/_security".into(),
            None,
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "write _security",
            "PUT",
            "/sec/_security".into(),
            Some(security.clone()),
            [401, 403, 403, 403, 200, 200],
        ),
        (
            "_all_docs",
            "GET",
            "/sec/_all_docs".into(),
            None,
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "_changes",
            "GET",
            "/sec/_changes".into(),
            None,
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "_users own doc",
            "GET",
            "/_users/org.couchdb.user:{me}".into(),
            None,
            [0, 200, 200, 200, 200, 0],
        ),
        (
            "_users other doc",
            "GET",
            "/_users/org.couchdb.user:zed".into(),
            None,
            [404, 404, 404, 404, 404, 200],
        ),
        (
            "_all_dbs",
            "GET",
            "/_all_dbs".into(),
            None,
            [401, 403, 403, 403, 403, 200],
        ),
    ];
    add_user(&s, "zed", &[]);
    let mut failures = vec![];
    for (what, method, path, body, want) in &cells {
        for ((label, user), status) in who.iter().zip(want) {
            if *status == 0 {
                continue; // not applicable: that actor has no user document
            }
            let path = path.replace("{me}", user.unwrap_or(""));
            // Design docs must be new each time to get 201.
            let body = body.clone().map(|mut b| {
                if b.get("_id").is_some() {
                    b["_id"] = json!(format!("_design/d-{label}").replace(' ', "-"));
                }
                b
            });
            let (got, v) = send(as_user(&s, *user, method, &path), body.as_ref());
            if got != *status {
                failures.push(format!("{what} as {label}: {got} (want {status}) {v}"));
            } else if got >= 400 {
                assert!(
                    v["error"].is_string() && v["reason"].is_string(),
                    "{what} as {label}: {v}"
                );
            }
        }
    }
    // Creating and deleting databases: server admins only.
    for ((label, user), status) in who.iter().zip([401, 403, 403, 403, 403, 201]) {
        let path = format!("/created-{}", label.replace(' ', "-"));
        let (got, v) = send(as_user(&s, *user, "PUT", &path), None);
        if got != status {
            failures.push(format!("create db as {label}: {got} (want {status}) {v}"));
        }
    }
    for ((label, user), status) in who.iter().zip([401, 403, 403, 403, 403, 200]) {
        let victim = format!("/victim-{}", label.replace(' ', "-"));
        send(s.admin("PUT", &victim), None);
        let (got, v) = send(as_user(&s, *user, "DELETE", &victim), None);
        if got != status {
            failures.push(format!("delete db as {label}: {got} (want {status}) {v}"));
        }
    }
    assert!(
        failures.is_empty(),
        "CouchDB would answer otherwise:\n{}",
        failures.join("\n")
    );
    // The users' secrets never leak to other users, and nothing denied was written.
    let (_, own) = send(
        as_user(&s, Some("ann"), "GET", "/_users/org.couchdb.user:ann"),
        None,
    );
    assert!(own.get("password").is_none() && own["derived_key"].is_string());
    let (_, all) = send(s.admin("GET", "/sec/_all_docs"), None);
    assert_eq!(
        all["total_rows"], 7,
        "doc, 4 allowed writes, 2 allowed design docs: {all}"
    );
}

#[test]
fn signup_and_own_document_rules() {
    let s = Settee::start();
    let doc = json!({"type": "user", "name": "newbie", "roles": [], "password": PW});
    assert_eq!(
        send(s.anon("PUT", "/_users/org.couchdb.user:newbie"), Some(&doc)).0,
        201
    );
    let (st, me) = send(
        as_user(&s, Some("newbie"), "GET", "/_users/org.couchdb.user:newbie"),
        None,
    );
    assert_eq!(st, 200);
    let mut grab = me.clone();
    grab["roles"] = json!(["_admin"]);
    let (st, v) = send(
        as_user(&s, Some("newbie"), "PUT", "/_users/org.couchdb.user:newbie"),
        Some(&grab),
    );
    assert_eq!((st, v["error"].as_str()), (403, Some("forbidden")));
    let (st, v) = send(
        as_user(&s, Some("newbie"), "GET", "/_users/_all_docs"),
        None,
    );
    assert_eq!((st, v["error"].as_str()), (403, Some("forbidden")));
    let (_, sess) = send(as_user(&s, Some("newbie"), "GET", "/_session"), None);
    assert_eq!(sess["userCtx"], json!({"name": "newbie", "roles": []}));
    assert_eq!(sess["info"]["authenticated"], "default");
}

fn cookie_of(resp: &ureq::Response) -> String {
    let set = resp.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_string()
}

fn login(s: &Settee, name: &str, password: &str) -> Result<ureq::Response, u16> {
    match s
        .anon("POST", "/_session")
        .set("content-type", "application/x-www-form-urlencoded")
        .send_string(&format!("name={name}&password={password}"))
    {
        Ok(r) => Ok(r),
        Err(ureq::Error::Status(code, _)) => Err(code),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn cookie_sessions() {
    let s = Settee::start();
    add_user(&s, "cara", &["team"]);
    send(s.admin("PUT", "/team"), None);
    send(
        s.admin("PUT", "/team/_security"),
        Some(&json!({"members": {"roles": ["team"]}})),
    );
    let t0 = Instant::now();
    let resp = login(&s, "cara", PW).unwrap();
    println!("login with PBKDF2 took {:?}", t0.elapsed());
    let cookie = cookie_of(&resp);
    assert!(cookie.starts_with("AuthSession="));
    assert_eq!(
        resp.into_json::<Value>().unwrap(),
        json!({"ok": true, "name": "cara", "roles": ["team"]})
    );
    let with = |c: &str, m: &str, p: &str| s.anon(m, p).set("cookie", c);
    let (_, sess) = send(with(&cookie, "GET", "/_session"), None);
    assert_eq!(sess["userCtx"]["name"], "cara");
    assert_eq!(sess["info"]["authenticated"], "cookie");
    assert_eq!(
        send(with(&cookie, "PUT", "/team/by-cookie"), Some(&json!({}))).0,
        201
    );
    // Tampered: anonymous, so the members-only database refuses it.
    let mut tampered = cookie.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(send(with(&tampered, "GET", "/team/by-cookie"), None).0, 401);
    assert_eq!(
        send(with(&tampered, "GET", "/_session"), None).1["userCtx"]["name"],
        Value::Null
    );
    // Expired: a cookie issued long ago with the right key.
    let (_, me) = send(s.admin("GET", "/_users/org.couchdb.user:cara"), None);
    let salt = me["salt"].as_str().unwrap();
    let old = shared::session::issue("cara", salt, "e2e-cookie-secret", 1_000_000);
    assert_eq!(
        send(
            with(&format!("AuthSession={old}"), "GET", "/team/by-cookie"),
            None
        )
        .0,
        401
    );
    // Wrong password: 401 with CouchDB's reason.
    assert_eq!(login(&s, "cara", "nope").unwrap_err(), 401);
    // A password change ends existing sessions.
    let mut changed = me.clone();
    changed["password"] = json!("changed-pw");
    assert_eq!(
        send(
            s.admin("PUT", "/_users/org.couchdb.user:cara"),
            Some(&changed)
        )
        .0,
        201
    );
    assert_eq!(send(with(&cookie, "GET", "/team/by-cookie"), None).0, 401);
    // Logout clears the cookie; the admin can use sessions too.
    let admin = login(&s, e2e::ADMIN, e2e::PASSWORD).unwrap();
    let admin_cookie = cookie_of(&admin);
    assert_eq!(send(with(&admin_cookie, "GET", "/_all_dbs"), None).0, 200);
    let out = with(&admin_cookie, "DELETE", "/_session").call().unwrap();
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
}

#[test]
fn lockout_after_failed_logins() {
    let s = Settee::start_with(&[("LOCKOUT_THRESHOLD", "3")]);
    add_user(&s, "lou", &[]);
    for _ in 0..3 {
        let (st, v) = send(
            s.anon("GET", "/_session")
                .set("authorization", &basic("lou", "bad")),
            None,
        );
        assert_eq!(
            (st, v["reason"].as_str()),
            (401, Some("Name or password is incorrect."))
        );
    }
    let (st, v) = send(
        s.anon("GET", "/_session")
            .set("authorization", &basic("lou", PW)),
        None,
    );
    assert_eq!((st, v["error"].as_str()), (403, Some("forbidden")), "{v}");
    // Another user is not affected.
    add_user(&s, "lee", &[]);
    assert_eq!(
        send(
            s.anon("GET", "/_session")
                .set("authorization", &basic("lee", PW)),
            None
        )
        .0,
        200
    );
}

#[test]
fn jwt_authentication() {
    use base64::Engine;
    let secret = b"jwt-test-secret";
    let keys = json!({"hmac:_default": base64::engine::general_purpose::STANDARD.encode(secret)})
        .to_string();
    let s = Settee::start_with(&[("JWT_KEYS", &keys), ("JWT_REQUIRED_CLAIMS", "exp")]);
    send(s.admin("PUT", "/jwtdb"), None);
    send(
        s.admin("PUT", "/jwtdb/_security"),
        Some(&json!({"members": {"roles": ["writer"]}})),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |claims: Value, key: &[u8]| shared::jwt::sign_hs256(&claims, key, None);
    let bearer =
        |t: &str, m: &str, p: &str| s.anon(m, p).set("authorization", &format!("Bearer {t}"));
    let good = token(
        json!({"sub": "jay", "exp": now + 600, "_couchdb.roles": ["writer"]}),
        secret,
    );
    let (st, v) = send(
        bearer(&good, "PUT", "/jwtdb/by-jwt"),
        Some(&json!({"via": "jwt"})),
    );
    assert_eq!(st, 201, "{v}");
    let (_, sess) = send(bearer(&good, "GET", "/_session"), None);
    assert_eq!(sess["info"]["authenticated"], "jwt");
    let none = {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none"}"#),
            B64.encode(json!({"sub": "admin", "exp": now + 600}).to_string())
        )
    };
    let bad = [
        token(
            json!({"sub": "jay", "exp": now + 600, "_couchdb.roles": ["writer"]}),
            b"wrong-key",
        ),
        token(
            json!({"sub": "jay", "exp": now - 10, "_couchdb.roles": ["writer"]}),
            secret,
        ),
        token(json!({"sub": "jay", "_couchdb.roles": ["writer"]}), secret),
        none,
    ];
    for t in bad {
        let (st, v) = send(bearer(&t, "PUT", "/jwtdb/nope"), Some(&json!({})));
        assert_eq!(
            (st, v["error"].as_str()),
            (401, Some("unauthorized")),
            "{t}: {v}"
        );
    }
    assert_eq!(send(s.admin("GET", "/jwtdb/nope"), None).0, 404);
}

#[test]
fn cors_preflight_and_headers() {
    let s = Settee::start_with(&[
        ("CORS_ORIGINS", "https://app.test"),
        ("CORS_CREDENTIALS", "true"),
    ]);
    let pre = s
        .anon("OPTIONS", "/db/doc")
        .set("origin", "https://app.test")
        .set("access-control-request-method", "PUT")
        .call()
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://app.test")
    );
    assert!(pre
        .header("access-control-allow-methods")
        .unwrap()
        .contains("PUT"));
    let r = s
        .anon("GET", "/")
        .set("origin", "https://app.test")
        .call()
        .unwrap();
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let other = s
        .anon("GET", "/")
        .set("origin", "https://evil.test")
        .call()
        .unwrap();
    assert_eq!(other.header("access-control-allow-origin"), None);
    // Forwarded database responses carry the headers too.
    let db = s
        .admin("PUT", "/corsdb")
        .set("origin", "https://app.test")
        .call()
        .unwrap();
    assert_eq!(
        db.header("access-control-allow-origin"),
        Some("https://app.test")
    );
}

#[test]
fn require_valid_user() {
    let s = Settee::start_with(&[("REQUIRE_VALID_USER", "true")]);
    assert_eq!(send(s.anon("GET", "/"), None).0, 401);
    assert_eq!(send(s.anon("GET", "/_up"), None).0, 200);
    assert_eq!(send(s.admin("GET", "/"), None).0, 200);
}

#[test]
fn hashed_admin_secret_and_missing_cookie_secret() {
    let creds = shared::password::Credentials::hash("hashed-pw", 10);
    let shared::password::Credentials::Pbkdf2 {
        derived_key,
        salt,
        iterations,
        ..
    } = creds
    else {
        unreachable!()
    };
    let hashed = format!("-pbkdf2:sha256-{derived_key},{salt},{iterations}");
    let s = Settee::start_with(&[("COUCHDB_PASSWORD", &hashed), ("COUCHDB_SECRET", "")]);
    let ok = s
        .anon("GET", "/_all_dbs")
        .set("authorization", &basic(e2e::ADMIN, "hashed-pw"));
    assert_eq!(send(ok, None).0, 200);
    let literal = s
        .anon("GET", "/_all_dbs")
        .set("authorization", &basic(e2e::ADMIN, &hashed));
    assert_eq!(
        send(literal, None).0,
        401,
        "the hash itself is not the password"
    );
    // Cookie login needs COUCHDB_SECRET and says so.
    let r = s
        .anon("POST", "/_session")
        .set("content-type", "application/json")
        .send_string(&json!({"name": e2e::ADMIN, "password": "hashed-pw"}).to_string());
    let Err(ureq::Error::Status(500, resp)) = r else {
        panic!("expected 500")
    };
    assert!(resp.into_string().unwrap().contains("COUCHDB_SECRET"));
}

#[test]
fn server_admin_endpoints() {
    let s = Settee::start();
    add_user(&s, "ann", &[]);
    for path in [
        "/_node/_local/_config",
        "/_node/_local/_stats",
        "/_node/_local/_prometheus",
        "/_membership",
        "/_active_tasks",
    ] {
        assert_eq!(send(s.anon("GET", path), None).0, 401, "{path}");
        assert_eq!(
            send(as_user(&s, Some("ann"), "GET", path), None).0,
            403,
            "{path}"
        );
    }
    assert_eq!(send(s.admin("GET", "/_active_tasks"), None).0, 200);
    // CouchDB 1.x's `/_config` is no endpoint in CouchDB 3.
    let (st, v) = send(s.admin("GET", "/_config"), None);
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("illegal_database_name"))
    );
}
