//! Who a request is: CouchDB's authentication handlers in its order —
//! JWT (`Authorization: Bearer`), basic, the `AuthSession` cookie, proxy
//! headers (when enabled) — plus failed-login lockout and `/_session`.
//!
//! The flow is runtime-neutral: user documents come through [`UserStore`]
//! (the `_users` actor in production, a map in tests), time is a parameter.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use shared::config::{Config, LockoutConfig};
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};
use shared::password::{sha256_hex, Credentials as StoredCredentials};
use shared::session::{self, Verdict};
use shared::user::UserCtx;
use shared::users;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

/// Reads user documents from `_users`.
#[allow(async_fn_in_trait)]
pub trait UserStore {
    async fn user_doc(&self, name: &str) -> CouchResult<Option<Map<String, Value>>>;
}

/// Credentials a request carries in `Authorization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic { name: String, password: String },
    Bearer(String),
    Malformed,
}

pub fn credentials(authorization: Option<&str>) -> Credentials {
    let Some(h) = authorization.map(str::trim) else {
        return Credentials::None;
    };
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Credentials::Bearer(rest.trim().to_string()),
        "basic" => base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| {
                t.split_once(':').map(|(n, p)| Credentials::Basic {
                    name: n.to_string(),
                    password: p.to_string(),
                })
            })
            .unwrap_or(Credentials::Malformed),
        _ => Credentials::Malformed,
    }
}

/// Per-isolate memory of the authentication layer: recent failures (for
/// lockout) and passwords already verified against the exact stored
/// credentials (PBKDF2 is deliberately slow; clients using basic auth send
/// the password with every request).
#[derive(Debug, Default)]
pub struct AuthState {
    failures: HashMap<(String, String), Vec<u64>>,
    verified: HashSet<String>,
}

const MAX_VERIFIED: usize = 10_000;
const MAX_TRACKED: usize = 10_000;

impl AuthState {
    fn is_locked(&self, cfg: &LockoutConfig, name: &str, peer: &str, now: u64) -> bool {
        cfg.enabled
            && self
                .failures
                .get(&(name.to_string(), peer.to_string()))
                .is_some_and(|f| {
                    f.iter().filter(|t| now < **t + cfg.window_secs).count()
                        >= cfg.threshold as usize
                })
    }

    fn record_failure(&mut self, cfg: &LockoutConfig, name: &str, peer: &str, now: u64) {
        if !cfg.enabled {
            return;
        }
        if self.failures.len() >= MAX_TRACKED {
            self.failures
                .retain(|_, f| f.iter().any(|t| now < *t + cfg.window_secs));
        }
        let f = self
            .failures
            .entry((name.to_string(), peer.to_string()))
            .or_default();
        f.retain(|t| now < *t + cfg.window_secs);
        f.push(now);
    }

    fn record_success(&mut self, name: &str, peer: &str) {
        self.failures.remove(&(name.to_string(), peer.to_string()));
    }

    /// Verifies `password` against stored credentials, remembering success
    /// keyed by the credentials themselves (a new password or salt misses).
    fn verify(&mut self, name: &str, password: &str, creds: &StoredCredentials) -> bool {
        let key = sha256_hex(&format!("{name}\0{password}\0{creds:?}"));
        if self.verified.contains(&key) {
            return true;
        }
        let ok = creds.verify(password);
        if ok {
            if self.verified.len() >= MAX_VERIFIED {
                self.verified.clear();
            }
            self.verified.insert(key);
        }
        ok
    }
}

/// The outcome of authenticating a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub user: UserCtx,
    /// `default`, `cookie`, `jwt` or `proxy`; `None` for anonymous.
    pub method: Option<&'static str>,
    /// A refreshed session cookie for the response.
    pub set_cookie: Option<String>,
}

impl Authenticated {
    fn anonymous() -> Self {
        Authenticated {
            user: UserCtx::default(),
            method: None,
            set_cookie: None,
        }
    }

    fn by(user: UserCtx, method: &'static str) -> Self {
        Authenticated {
            user,
            method: Some(method),
            set_cookie: None,
        }
    }
}

/// Whom failed logins are counted against, with the name: the client's
/// address as Cloudflare's edge reports it (`CF-Connecting-IP`, which the
/// edge sets and clients cannot), so that five bad guesses from one client
/// do not lock the account for every client behind the same edge peer.
/// Without it (a local `workerd`) all clients count as one. Headers a
/// client sets itself, such as `X-Forwarded-For`, are not trusted: rotating
/// them would lift the lock.
pub fn client_address(req: &Request) -> String {
    req.header("cf-connecting-ip")
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("local")
        .to_string()
}

fn bad_credentials() -> CouchError {
    CouchError::unauthorized("Name or password is incorrect.")
}

fn locked() -> CouchError {
    CouchError::forbidden("Account is temporarily locked due to multiple authentication failures")
}

/// A name and password: the server admin, or a `_users` user.
pub async fn check_password(
    cfg: &Config,
    store: &impl UserStore,
    state: &RefCell<AuthState>,
    name: &str,
    password: &str,
    peer: &str,
    now: u64,
) -> CouchResult<UserCtx> {
    // The state is borrowed only between awaits: other requests of the
    // isolate use it while this one waits for `_users`.
    if state.borrow().is_locked(&cfg.lockout, name, peer, now) {
        return Err(locked());
    }
    let user = match cfg.admin_named(name) {
        Some(admin) => admin.secret.verify(password).then(|| UserCtx::admin(name)),
        _ => match store.user_doc(name).await? {
            Some(doc) => match StoredCredentials::from_user_doc(&doc) {
                Some(creds) if state.borrow_mut().verify(name, password, &creds) => {
                    Some(users::user_ctx(&doc))
                }
                _ => None,
            },
            None => None,
        },
    };
    let mut state = state.borrow_mut();
    match user {
        Some(u) => {
            state.record_success(name, peer);
            Ok(u)
        }
        None => {
            state.record_failure(&cfg.lockout, name, peer, now);
            Err(bad_credentials())
        }
    }
}

/// The salt that keys a user's session cookies, and their context.
async fn cookie_identity(
    cfg: &Config,
    store: &impl UserStore,
    name: &str,
) -> CouchResult<Option<(String, UserCtx)>> {
    if let Some(admin) = cfg.admin_named(name) {
        return Ok(Some((admin.cookie_salt.clone(), UserCtx::admin(name))));
    }
    Ok(store.user_doc(name).await?.and_then(|doc| {
        let salt = StoredCredentials::from_user_doc(&doc)?.salt().to_string();
        Some((salt, users::user_ctx(&doc)))
    }))
}

/// Authenticates a request by the first handler its credentials fit.
pub async fn authenticate(
    cfg: &Config,
    req: &Request,
    store: &impl UserStore,
    state: &RefCell<AuthState>,
    peer: &str,
    now: u64,
) -> CouchResult<Authenticated> {
    match credentials(req.header("authorization")) {
        Credentials::Bearer(token) => {
            if let Some(e) = &cfg.jwt_error {
                return Err(CouchError::internal(e.clone()));
            }
            let jwt = cfg.jwt.as_ref().ok_or_else(|| {
                CouchError::unauthorized("JWT authentication is not enabled on this server.")
            })?;
            return Ok(Authenticated::by(
                shared::jwt::authenticate(&token, jwt, now)?,
                "jwt",
            ));
        }
        Credentials::Basic { name, password } => {
            let user = check_password(cfg, store, state, &name, &password, peer, now).await?;
            return Ok(Authenticated::by(user, "default"));
        }
        Credentials::Malformed => {
            return Err(CouchError::unauthorized(
                "Authorization header could not be parsed.",
            ))
        }
        Credentials::None => {}
    }
    if let Some(value) = req.header("cookie").and_then(session::from_cookie_header) {
        if let Some(a) = cookie_auth(cfg, store, value, now).await? {
            return Ok(a);
        }
    }
    if let Some(a) = proxy_auth(cfg, req)? {
        return Ok(a);
    }
    Ok(Authenticated::anonymous())
}

/// A valid `AuthSession` cookie authenticates; an invalid one is ignored
/// (the request continues as anonymous, as in CouchDB).
async fn cookie_auth(
    cfg: &Config,
    store: &impl UserStore,
    value: &str,
    now: u64,
) -> CouchResult<Option<Authenticated>> {
    let (Some(secret), Some(parsed)) = (&cfg.secret, session::parse(value)) else {
        return Ok(None);
    };
    let Some((salt, user)) = cookie_identity(cfg, store, &parsed.name).await? else {
        return Ok(None);
    };
    Ok(
        match parsed.verify(&salt, secret, now, cfg.session_timeout) {
            Verdict::Invalid => None,
            Verdict::Valid => Some(Authenticated::by(user, "cookie")),
            Verdict::Refresh => {
                let fresh = session::issue(&parsed.name, &salt, secret, now);
                Some(Authenticated {
                    set_cookie: Some(session::set_cookie(
                        &fresh,
                        cfg.session_timeout,
                        cfg.secure_cookies,
                    )),
                    ..Authenticated::by(user, "cookie")
                })
            }
        },
    )
}

/// `X-Auth-CouchDB-UserName`/`-Roles`/`-Token`, when `PROXY_AUTH_SECRET`
/// is set: the token is hex HMAC-SHA256 of the user name with that secret.
fn proxy_auth(cfg: &Config, req: &Request) -> CouchResult<Option<Authenticated>> {
    let (Some(secret), Some(name)) = (&cfg.proxy_secret, req.header("x-auth-couchdb-username"))
    else {
        return Ok(None);
    };
    if cfg.proxy_require_token {
        let mut m =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        m.update(name.as_bytes());
        let want: String = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let given = req.header("x-auth-couchdb-token").unwrap_or("");
        if !shared::password::constant_time_eq(&want, given) {
            return Err(CouchError::unauthorized(
                "Invalid proxy authentication token.",
            ));
        }
    }
    let roles = req
        .header("x-auth-couchdb-roles")
        .map(|r| {
            r.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Authenticated::by(
        UserCtx {
            name: Some(name.to_string()),
            roles,
        },
        "proxy",
    )))
}

/// The handlers `GET /_session` lists.
fn handlers(cfg: &Config) -> Vec<&'static str> {
    let mut h = vec![];
    if cfg.jwt.is_some() {
        h.push("jwt");
    }
    if cfg.proxy_secret.is_some() {
        h.push("proxy");
    }
    h.extend(["cookie", "default"]);
    h
}

/// `GET /_session`.
pub fn session_info(cfg: &Config, auth: &Authenticated) -> Response {
    let mut info = json!({"authentication_handlers": handlers(cfg)});
    if let Some(m) = auth.method {
        info["authenticated"] = json!(m);
    }
    let u = &auth.user;
    Response::json(
        200,
        &json!({"ok": true, "userCtx": {"name": u.name, "roles": u.roles}, "info": info}),
    )
}

/// The name and password of a login, from a form or JSON body.
fn login_fields(req: &Request) -> CouchResult<(String, String)> {
    let ct = req
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let (name, password) = if ct.starts_with("application/x-www-form-urlencoded") {
        let pairs = shared::http::parse_query(&String::from_utf8_lossy(&req.body));
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        (get("name").or_else(|| get("username")), get("password"))
    } else if ct.starts_with("application/json") {
        let body = req.json_object_body()?;
        let get = |k: &str| body.get(k).and_then(Value::as_str).map(String::from);
        (get("name").or_else(|| get("username")), get("password"))
    } else {
        return Err(CouchError::unsupported_media_type(
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        ));
    };
    match (name, password) {
        (Some(n), Some(p)) => Ok((n, p)),
        _ => Err(bad_credentials()),
    }
}

/// `POST /_session`: checks the password and sets an `AuthSession` cookie;
/// with `next`, redirects there.
pub async fn login(
    cfg: &Config,
    req: &Request,
    store: &impl UserStore,
    state: &RefCell<AuthState>,
    peer: &str,
    now: u64,
) -> CouchResult<Response> {
    let secret = cfg.secret.as_ref().ok_or_else(|| {
        CouchError::internal("Cookie authentication needs the COUCHDB_SECRET secret")
    })?;
    let (name, password) = login_fields(req)?;
    let user = check_password(cfg, store, state, &name, &password, peer, now).await?;
    let (salt, _) = cookie_identity(cfg, store, &name)
        .await?
        .ok_or_else(bad_credentials)?;
    let cookie = session::set_cookie(
        &session::issue(&name, &salt, secret, now),
        cfg.session_timeout,
        cfg.secure_cookies,
    );
    let body = json!({"ok": true, "name": user.name, "roles": user.roles});
    let resp = match req.param("next") {
        Some(next) if next.starts_with('/') && !next.starts_with("//") => {
            Response::json(302, &body).with_header("location", req.absolute_uri(next))
        }
        _ => Response::json(200, &body),
    };
    Ok(resp.with_header("set-cookie", cookie))
}

/// `DELETE /_session`.
pub fn logout() -> Response {
    Response::ok().with_header("set-cookie", session::clear_cookie())
}

/// Requires a server admin.
pub fn require_admin(user: &UserCtx) -> CouchResult<()> {
    shared::security::check_server_admin(user)
}

/// The error when no admin is configured: Settee never runs as an admin party.
pub fn not_configured() -> CouchError {
    CouchError::internal(
        "No server admin is configured: set the COUCHDB_USER and COUCHDB_PASSWORD secrets",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use shared::session::COOKIE_NAME;

    struct Users(HashMap<String, Map<String, Value>>);

    impl UserStore for Users {
        async fn user_doc(&self, name: &str) -> CouchResult<Option<Map<String, Value>>> {
            Ok(self.0.get(name).cloned())
        }
    }

    fn setup() -> (Config, Users) {
        let cfg = Config::from_lookup(|k| match k {
            "COUCHDB_USER" => Some("root".into()),
            "COUCHDB_PASSWORD" => Some("rootpw".into()),
            "COUCHDB_SECRET" => Some("cookie-secret".into()),
            "LOCKOUT_THRESHOLD" => Some("3".into()),
            "PROXY_AUTH_SECRET" => Some("proxy".into()),
            _ => None,
        });
        let mut doc = json!({"name": "ann", "type": "user", "roles": ["team"]})
            .as_object()
            .unwrap()
            .clone();
        StoredCredentials::hash("annpw", 3).write_to(&mut doc);
        (cfg, Users(HashMap::from([("ann".to_string(), doc)])))
    }

    fn basic(n: &str, p: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{n}:{p}"))
        )
    }

    fn auth(
        cfg: &Config,
        users: &Users,
        state: &RefCell<AuthState>,
        req: Request,
        now: u64,
    ) -> CouchResult<Authenticated> {
        block_on(authenticate(cfg, &req, users, state, "peer", now))
    }

    #[test]
    fn lockout_counts_per_client_address() {
        let (cfg, users) = setup();
        let st = RefCell::new(AuthState::default());
        let from = |ip: &str, p: &str| {
            Request::new("GET", "/", "")
                .with_header("authorization", &basic("ann", p))
                .with_header("cf-connecting-ip", ip)
                .with_header("x-forwarded-for", "1.1.1.1")
        };
        let try_as = |req: Request| {
            let peer = client_address(&req);
            block_on(authenticate(&cfg, &req, &users, &st, &peer, 100))
        };
        for _ in 0..3 {
            assert_eq!(try_as(from("10.0.0.1", "wrong")).unwrap_err().status, 401);
        }
        assert_eq!(try_as(from("10.0.0.1", "annpw")).unwrap_err().status, 403);
        assert!(
            try_as(from("10.0.0.2", "annpw")).is_ok(),
            "another client is not locked out"
        );
        assert_eq!(client_address(&Request::new("GET", "/", "")), "local");
        let spoofed = Request::new("GET", "/", "").with_header("x-forwarded-for", "9.9.9.9");
        assert_eq!(client_address(&spoofed), "local");
    }

    #[test]
    fn basic_admin_and_users() {
        let (cfg, users) = setup();
        let st = RefCell::new(AuthState::default());
        let r = |h: &str| Request::new("GET", "/", "").with_header("authorization", h);
        let a = auth(&cfg, &users, &st, r(&basic("root", "rootpw")), 0).unwrap();
        assert!(a.user.is_admin());
        let a = auth(&cfg, &users, &st, r(&basic("ann", "annpw")), 0).unwrap();
        assert_eq!(
            (a.user.name.as_deref(), a.user.roles.clone(), a.method),
            (Some("ann"), vec!["team".to_string()], Some("default"))
        );
        for bad in [
            basic("ann", "x"),
            basic("nobody", "x"),
            basic("root", "annpw"),
        ] {
            assert_eq!(
                auth(&cfg, &users, &st, r(&bad), 0).unwrap_err().reason,
                "Name or password is incorrect."
            );
        }
        assert_eq!(
            auth(&cfg, &users, &st, r("Basic %%%"), 0)
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            auth(&cfg, &users, &st, Request::new("GET", "/", ""), 0)
                .unwrap()
                .method,
            None
        );
    }

    #[test]
    fn lockout_after_repeated_failures() {
        let (cfg, users) = setup();
        let st = RefCell::new(AuthState::default());
        let r =
            |p: &str| Request::new("GET", "/", "").with_header("authorization", &basic("ann", p));
        for _ in 0..3 {
            assert_eq!(
                auth(&cfg, &users, &st, r("wrong"), 100).unwrap_err().status,
                401
            );
        }
        let e = auth(&cfg, &users, &st, r("annpw"), 101).unwrap_err();
        assert_eq!(
            (e.status, e.error.as_str()),
            (403, "forbidden"),
            "locked even with the right password"
        );
        assert!(
            auth(&cfg, &users, &st, r("annpw"), 100 + 301).is_ok(),
            "the lock expires"
        );
    }

    #[test]
    fn session_cookies() {
        let (cfg, users) = setup();
        let st = RefCell::new(AuthState::default());
        let login_req = Request::new("POST", "/_session", "")
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body("name=ann&password=annpw");
        let resp = block_on(login(&cfg, &login_req, &users, &st, "peer", 1000)).unwrap();
        assert_eq!(
            resp.json_body(),
            json!({"ok": true, "name": "ann", "roles": ["team"]})
        );
        let set = resp.header("set-cookie").unwrap().to_string();
        let value = set
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("AuthSession=")
            .to_string();
        let with_cookie = |v: &str| {
            Request::new("GET", "/", "").with_header("cookie", &format!("{COOKIE_NAME}={v}"))
        };
        let a = auth(&cfg, &users, &st, with_cookie(&value), 1010).unwrap();
        assert_eq!(
            (a.user.name.as_deref(), a.method, a.set_cookie.is_none()),
            (Some("ann"), Some("cookie"), true)
        );
        assert!(
            auth(&cfg, &users, &st, with_cookie(&value), 1400)
                .unwrap()
                .set_cookie
                .is_some(),
            "refreshed near expiry"
        );
        assert_eq!(
            auth(&cfg, &users, &st, with_cookie(&value), 1700)
                .unwrap()
                .method,
            None,
            "expired"
        );
        let mut tampered = value.clone();
        tampered.replace_range(0..1, if value.starts_with('Y') { "Z" } else { "Y" });
        assert_eq!(
            auth(&cfg, &users, &st, with_cookie(&tampered), 1010)
                .unwrap()
                .method,
            None
        );
        // A password change (new salt) ends the session.
        let mut changed = users.0.clone();
        StoredCredentials::hash("new", 3).write_to(changed.get_mut("ann").unwrap());
        assert_eq!(
            auth(&cfg, &Users(changed), &st, with_cookie(&value), 1010)
                .unwrap()
                .method,
            None
        );
        let json_login = Request::new("POST", "/_session", "next=/db")
            .with_header("content-type", "application/json")
            .with_body(r#"{"name":"root","password":"rootpw"}"#);
        let resp = block_on(login(&cfg, &json_login, &users, &st, "peer", 1000)).unwrap();
        assert_eq!((resp.status, resp.header("location")), (302, Some("/db")));
        let bad = Request::new("POST", "/_session", "")
            .with_header("content-type", "application/json")
            .with_body(r#"{"name":"ann","password":"no"}"#);
        assert_eq!(
            block_on(login(&cfg, &bad, &users, &st, "peer", 1000))
                .unwrap_err()
                .status,
            401
        );
        assert!(logout().header("set-cookie").unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn proxy_and_jwt_handlers() {
        let (cfg, users) = setup();
        let st = RefCell::new(AuthState::default());
        let mut m = Hmac::<Sha256>::new_from_slice(b"proxy").unwrap();
        m.update(b"pat");
        let token: String = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let r = Request::new("GET", "/", "")
            .with_header("x-auth-couchdb-username", "pat")
            .with_header("x-auth-couchdb-roles", "a, b")
            .with_header("x-auth-couchdb-token", &token);
        let a = auth(&cfg, &users, &st, r, 0).unwrap();
        assert_eq!((a.user.roles.len(), a.method), (2, Some("proxy")));
        let forged = Request::new("GET", "/", "")
            .with_header("x-auth-couchdb-username", "pat")
            .with_header("x-auth-couchdb-token", "00");
        assert_eq!(auth(&cfg, &users, &st, forged, 0).unwrap_err().status, 401);
        let bearer = Request::new("GET", "/", "").with_header("authorization", "Bearer x.y.z");
        assert!(auth(&cfg, &users, &st, bearer, 0)
            .unwrap_err()
            .reason
            .contains("not enabled"));
    }
}
