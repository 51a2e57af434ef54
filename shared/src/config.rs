//! Settee's configuration, read once from the Worker's vars and secrets by
//! the router and every actor alike (names follow CouchDB's ini options
//! where there is one): limits, the admin, sessions, users, CORS.

use crate::cors::Cors;
use crate::jwt::JwtConfig;
use crate::node_config::Overlay;
use crate::password::{AdminSecret, Credentials};
use crate::session::DEFAULT_TIMEOUT_SECS;
use crate::users::UsersConfig;

/// Limits the router and actors enforce. Configured from the Worker's
/// environment (`MAX_DOCUMENT_SIZE`, `MAX_HTTP_REQUEST_SIZE`, `MAX_ATTACHMENT_SIZE`,
/// `ATTACHMENT_COMPRESSION_LEVEL`, `PARTITION_QUERY_LIMIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `[couchdb] max_document_size`: the largest JSON body of one document.
    pub max_document_size: u64,
    /// `[chttpd] max_http_request_size`: the largest request body.
    pub max_http_request_size: u64,
    /// `[couchdb] max_attachment_size`: the largest attachment.
    pub max_attachment_size: u64,
    /// `[attachments] compression_level`: gzip level for compressible
    /// attachment types; 0 stores everything as sent.
    pub attachment_compression_level: u32,
    /// `VIEW_BUILD_BATCH`: how much index building one invocation (request
    /// or alarm) may do, in documents (a large body counts as several), so
    /// each stays within the Workers CPU limit; longer builds continue in
    /// the actor's alarm.
    pub view_build_batch: u64,
    /// `[query_server_config] partition_query_limit`: the most rows a
    /// partition's view or `_all_docs` query answers (its default limit).
    pub partition_query_limit: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document_size: 8_000_000,
            max_http_request_size: 4_294_967_296,
            max_attachment_size: u64::MAX,
            attachment_compression_level: 8,
            view_build_batch: 20_000,
            partition_query_limit: 2000,
        }
    }
}

impl Limits {
    /// Builds limits from a lookup of environment values; unset or
    /// unparsable values keep CouchDB's defaults.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let d = Limits::default();
        let num = |k: &str, default: u64| number(get(k), default);
        Limits {
            max_document_size: num("MAX_DOCUMENT_SIZE", d.max_document_size),
            max_http_request_size: num("MAX_HTTP_REQUEST_SIZE", d.max_http_request_size),
            max_attachment_size: num("MAX_ATTACHMENT_SIZE", d.max_attachment_size),
            attachment_compression_level: num(
                "ATTACHMENT_COMPRESSION_LEVEL",
                d.attachment_compression_level.into(),
            )
            .min(9) as u32,
            view_build_batch: num("VIEW_BUILD_BATCH", d.view_build_batch).max(1),
            partition_query_limit: num("PARTITION_QUERY_LIMIT", d.partition_query_limit),
        }
    }
}

/// `_revs_limit` of a new database.
pub const DEFAULT_REVS_LIMIT: u64 = 1000;

/// The CouchDB version Settee speaks.
pub const COUCHDB_VERSION: &str = "3.5.0";

/// The server admin from `COUCHDB_USER` / `COUCHDB_PASSWORD` (plaintext or
/// CouchDB's `-pbkdf2-` hashed form).
#[derive(Debug, Clone)]
pub struct Admin {
    pub name: String,
    pub secret: AdminSecret,
    /// Stands in for a user's salt in the admin's session cookies, so that
    /// changing the admin password ends the admin's sessions.
    pub cookie_salt: String,
}

/// Failed-login lockout (`[chttpd_auth_lockout]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutConfig {
    pub enabled: bool,
    /// Failures within `window_secs` that lock the user out.
    pub threshold: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The admin from the Worker's secrets.
    pub admin: Option<Admin>,
    /// Admins written through `/_node/{node}/_config/admins`.
    pub admins: Vec<Admin>,
    /// `COUCHDB_SECRET`: signs session cookies.
    pub secret: Option<String>,
    pub session_timeout: u64,
    /// Mark session cookies `Secure`.
    pub secure_cookies: bool,
    pub jwt: Option<JwtConfig>,
    /// A configuration error to report on every request that needs it.
    pub jwt_error: Option<String>,
    pub users: UsersConfig,
    pub require_valid_user: bool,
    pub admin_only_all_dbs: bool,
    /// `PROXY_AUTH_SECRET`: enables proxy authentication when set.
    pub proxy_secret: Option<String>,
    pub proxy_require_token: bool,
    pub lockout: LockoutConfig,
    pub cors: Option<Cors>,
    pub limits: Limits,
}

fn flag(v: Option<String>, default: bool) -> bool {
    match v.as_deref().map(str::trim) {
        Some("true") | Some("1") | Some("yes") => true,
        Some("false") | Some("0") | Some("no") => false,
        _ => default,
    }
}

fn number<T: std::str::FromStr>(v: Option<String>, default: T) -> T {
    v.and_then(|s| s.trim().parse().ok()).unwrap_or(default)
}

impl UsersConfig {
    /// `PASSWORD_ITERATIONS` and `ALLOW_SIGNUP`: the part of [`Config`] the
    /// database actors need, without the admin, JWT and CORS settings.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> UsersConfig {
        UsersConfig {
            iterations: number(
                get("PASSWORD_ITERATIONS"),
                crate::password::DEFAULT_ITERATIONS,
            ),
            allow_signup: flag(get("ALLOW_SIGNUP"), true),
        }
    }
}

impl Config {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        let nonempty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let admin = match (nonempty("COUCHDB_USER"), nonempty("COUCHDB_PASSWORD")) {
            (Some(name), Some(password)) => Some(Admin {
                cookie_salt: crate::password::sha256_hex(&format!(
                    "settee-admin:{name}:{password}"
                )),
                name,
                secret: Credentials::from_admin_secret(&password),
            }),
            _ => None,
        };
        let (jwt, jwt_error) = match JwtConfig::from_lookup(&get) {
            Ok(j) => (j, None),
            Err(e) => (None, Some(e)),
        };
        Config {
            admin,
            admins: Vec::new(),
            secret: nonempty("COUCHDB_SECRET"),
            session_timeout: number(get("SESSION_TIMEOUT"), DEFAULT_TIMEOUT_SECS),
            secure_cookies: flag(get("SECURE_COOKIES"), false),
            jwt,
            jwt_error,
            users: UsersConfig::from_lookup(&get),
            require_valid_user: flag(get("REQUIRE_VALID_USER"), false),
            admin_only_all_dbs: flag(get("ADMIN_ONLY_ALL_DBS"), true),
            proxy_secret: nonempty("PROXY_AUTH_SECRET"),
            proxy_require_token: flag(get("PROXY_AUTH_REQUIRE_TOKEN"), true),
            lockout: LockoutConfig {
                enabled: flag(get("LOCKOUT_ENABLED"), true),
                threshold: number(get("LOCKOUT_THRESHOLD"), 5),
                window_secs: number(get("LOCKOUT_WINDOW_SECS"), 300),
            },
            cors: Cors::from_lookup(&get),
            limits: Limits::from_lookup(&get),
        }
    }
}

impl Config {
    /// The configuration with the values written through `_config` over
    /// the Worker's (`env`), read by the same parser.
    pub fn with_overlay(overlay: &Overlay, env: impl Fn(&str) -> Option<String>) -> Config {
        let mut c = Config::from_lookup(|k| crate::node_config::lookup(overlay, k, &env));
        let secret_admin = c.admin.as_ref().map(|a| a.name.clone());
        c.admins = crate::node_config::admins(overlay)
            .filter(|(name, _)| secret_admin.as_deref() != Some(*name))
            .map(|(name, hash)| Admin {
                name: name.to_string(),
                secret: Credentials::from_admin_secret(hash),
                cookie_salt: crate::password::sha256_hex(&format!("settee-admin:{name}:{hash}")),
            })
            .collect();
        c
    }

    /// The server admin of this name: the one from the secrets, or one
    /// written through `_config`.
    pub fn admin_named(&self, name: &str) -> Option<&Admin> {
        self.admin
            .iter()
            .chain(&self.admins)
            .find(|a| a.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_defaults_and_values() {
        let c = Config::from_lookup(|_| None);
        assert!(c.admin.is_none() && c.secret.is_none() && c.jwt.is_none() && c.cors.is_none());
        assert!(c.admin_only_all_dbs && !c.require_valid_user);
        assert_eq!(c.lockout.threshold, 5);
        let c = Config::from_lookup(|k| match k {
            "COUCHDB_USER" => Some("root".into()),
            "COUCHDB_PASSWORD" => Some("pw".into()),
            "REQUIRE_VALID_USER" => Some("true".into()),
            "JWT_KEYS" => Some("not json".into()),
            _ => None,
        });
        let admin = c.admin.unwrap();
        assert!(admin.secret.verify("pw"));
        assert!(c.require_valid_user);
        assert!(c.jwt_error.unwrap().contains("JWT_KEYS"));
        // Every boolean reads the same way, router and actors alike.
        for (text, on) in [
            ("0", false),
            ("false", false),
            ("no", false),
            ("1", true),
            ("true", true),
        ] {
            let c = Config::from_lookup(|k| (k == "ALLOW_SIGNUP").then(|| text.to_string()));
            assert_eq!(c.users.allow_signup, on, "ALLOW_SIGNUP={text}");
        }
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Limits::from_lookup(|_| None), Limits::default());
        let l = Limits::from_lookup(|k| (k == "MAX_DOCUMENT_SIZE").then(|| "100".to_string()));
        assert_eq!(l.max_document_size, 100);
        assert_eq!(l.max_http_request_size, 4_294_967_296);
        let l = Limits::from_lookup(|_| Some("junk".into()));
        assert_eq!(l, Limits::default());
    }
}
