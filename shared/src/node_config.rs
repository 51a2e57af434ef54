//! The node's configuration as CouchDB's `/_node/{node}/_config` shows
//! it: ini-style sections of string values. Settee's settings come from
//! the Worker's vars and secrets ([`crate::config`]); values written through
//! the API are stored (in the catalog) as an [`Overlay`] that wins over
//! them. Each setting Settee honours is listed in [`SETTINGS`] under its
//! CouchDB name, so the one parser ([`crate::config::Config::from_lookup`])
//! reads an overlaid value exactly as it reads a var. Keys Settee does not
//! use are stored and answered all the same, so tools that write them keep
//! working.

use crate::error::{CouchError, CouchResult};
use crate::password::Credentials;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Values written through the API: section → key → value.
pub type Overlay = BTreeMap<String, BTreeMap<String, String>>;

/// The node name `_membership` lists; `_local` names it too.
pub const NODE_NAME: &str = "settee@127.0.0.1";

/// A setting Settee honours: its CouchDB section and key, the Worker var
/// that configures it, and CouchDB's default as the API shows it.
pub struct Setting {
    pub section: &'static str,
    pub key: &'static str,
    pub var: &'static str,
    pub default: &'static str,
}

const fn s(
    section: &'static str,
    key: &'static str,
    var: &'static str,
    default: &'static str,
) -> Setting {
    Setting {
        section,
        key,
        var,
        default,
    }
}

/// Every setting with a CouchDB name. Where CouchDB has two sections for
/// one setting (`chttpd_auth` and the older `couch_httpd_auth`), the first
/// listed wins.
pub const SETTINGS: &[Setting] = &[
    s(
        "couchdb",
        "max_document_size",
        "MAX_DOCUMENT_SIZE",
        "8000000",
    ),
    s(
        "couchdb",
        "max_attachment_size",
        "MAX_ATTACHMENT_SIZE",
        "infinity",
    ),
    s(
        "chttpd",
        "max_http_request_size",
        "MAX_HTTP_REQUEST_SIZE",
        "4294967296",
    ),
    s(
        "chttpd",
        "require_valid_user",
        "REQUIRE_VALID_USER",
        "false",
    ),
    s("chttpd", "admin_only_all_dbs", "ADMIN_ONLY_ALL_DBS", "true"),
    s(
        "chttpd_auth",
        "require_valid_user",
        "REQUIRE_VALID_USER",
        "false",
    ),
    s("chttpd_auth", "timeout", "SESSION_TIMEOUT", "600"),
    s("chttpd_auth", "iterations", "PASSWORD_ITERATIONS", "600000"),
    s("chttpd_auth", "secret", "COUCHDB_SECRET", ""),
    s("chttpd_auth", "cookie_secure", "SECURE_COOKIES", "false"),
    s(
        "couch_httpd_auth",
        "require_valid_user",
        "REQUIRE_VALID_USER",
        "false",
    ),
    s("couch_httpd_auth", "timeout", "SESSION_TIMEOUT", "600"),
    s(
        "couch_httpd_auth",
        "iterations",
        "PASSWORD_ITERATIONS",
        "600000",
    ),
    s("chttpd_auth_lockout", "threshold", "LOCKOUT_THRESHOLD", "5"),
    s(
        "attachments",
        "compression_level",
        "ATTACHMENT_COMPRESSION_LEVEL",
        "8",
    ),
    s(
        "query_server_config",
        "partition_query_limit",
        "PARTITION_QUERY_LIMIT",
        "2000",
    ),
    s("cors", "origins", "CORS_ORIGINS", ""),
    s("cors", "credentials", "CORS_CREDENTIALS", "false"),
    s("cors", "methods", "CORS_METHODS", ""),
    s("cors", "headers", "CORS_HEADERS", ""),
    s("cors", "max_age", "CORS_MAX_AGE", ""),
];

/// Sections CouchDB refuses to change over HTTP.
const BLACKLISTED: &[&str] = &[
    "daemons",
    "external",
    "httpd_design_handlers",
    "httpd_db_handlers",
    "httpd_global_handlers",
    "native_query_servers",
    "os_daemons",
    "query_servers",
    "feature_flags",
];

/// Settings that are secrets: never answered (CouchDB keeps them out of
/// `_config` too, except hashed admin passwords).
const SECRET_VARS: &[&str] = &["COUCHDB_SECRET"];

/// The value the parser should read for Worker var `var`: an overlaid one
/// (by the setting's CouchDB name), else `env`'s.
pub fn lookup(
    overlay: &Overlay,
    var: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    SETTINGS
        .iter()
        .filter(|st| st.var == var)
        .find_map(|st| overlay.get(st.section)?.get(st.key).cloned())
        .map(|v| match (var, v.as_str()) {
            // CouchDB writes "infinity" for no limit; the parser wants a number.
            ("MAX_ATTACHMENT_SIZE", "infinity") => u64::MAX.to_string(),
            _ => v,
        })
        .or_else(|| env(var))
}

/// The header in which the router hands the database actors the values
/// written through the API for the settings they read (form-encoded, by
/// Worker var name); absent when there are none.
pub const SETTINGS_HEADER: &str = "x-settee-settings";

/// The Worker vars the database actors read.
const ACTOR_VARS: &[&str] = &[
    "MAX_DOCUMENT_SIZE",
    "MAX_ATTACHMENT_SIZE",
    "MAX_HTTP_REQUEST_SIZE",
    "ATTACHMENT_COMPRESSION_LEVEL",
    "PASSWORD_ITERATIONS",
    "PARTITION_QUERY_LIMIT",
];

/// The [`SETTINGS_HEADER`] value for an overlay, if it sets anything an
/// actor reads.
pub fn actor_settings(overlay: &Overlay) -> Option<String> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for var in ACTOR_VARS {
        if let Some(v) = lookup(overlay, var, |_| None) {
            out.append_pair(var, &v);
            any = true;
        }
    }
    any.then(|| out.finish())
}

/// Reads a [`SETTINGS_HEADER`] back: a lookup by Worker var name.
pub fn read_actor_settings(header: &str) -> BTreeMap<String, String> {
    form_urlencoded::parse(header.as_bytes())
        .into_owned()
        .filter(|(k, _)| ACTOR_VARS.contains(&k.as_str()))
        .collect()
}

/// The admins written through the API (`[admins]`), by name, with their
/// hashed passwords.
pub fn admins(overlay: &Overlay) -> impl Iterator<Item = (&str, &str)> {
    overlay
        .get("admins")
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// The whole configuration as `GET /_node/{node}/_config` answers it:
/// every known setting (overlaid, else its var, else CouchDB's default),
/// then every stored key.
pub fn sections(overlay: &Overlay, env: impl Fn(&str) -> Option<String>) -> Map<String, Value> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for st in SETTINGS {
        if SECRET_VARS.contains(&st.var) {
            continue;
        }
        let value = env(st.var).unwrap_or_else(|| st.default.to_string());
        if value.is_empty() {
            continue;
        }
        out.entry(st.section.into())
            .or_default()
            .insert(st.key.into(), value);
    }
    for (section, keys) in overlay {
        for (k, v) in keys {
            out.entry(section.clone())
                .or_default()
                .insert(k.clone(), v.clone());
        }
    }
    out.into_iter()
        .map(|(section, keys)| {
            let keys: Map<String, Value> = keys.into_iter().map(|(k, v)| (k, json!(v))).collect();
            (section, Value::Object(keys))
        })
        .collect()
}

/// One request to `/_node/{node}/_config[/{section}[/{key}]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigRequest {
    All,
    Section(String),
    Get {
        section: String,
        key: String,
    },
    /// `value` as it is to be stored (an admin's password hashed).
    Put {
        section: String,
        key: String,
        value: String,
    },
    Delete {
        section: String,
        key: String,
    },
    /// `POST /_node/{node}/_config/_reload`.
    Reload,
}

impl ConfigRequest {
    /// Reads the method, the segments after `_config` and the body;
    /// `iterations` hashes new admin passwords.
    pub fn parse(
        method: &str,
        rest: &[String],
        body: &[u8],
        iterations: u32,
    ) -> CouchResult<ConfigRequest> {
        let not_allowed = |m: &str| Err(CouchError::method_not_allowed(m));
        match rest {
            [] => match method {
                "GET" | "HEAD" => Ok(ConfigRequest::All),
                _ => not_allowed("GET,HEAD"),
            },
            [reload] if reload == "_reload" => match method {
                "POST" => Ok(ConfigRequest::Reload),
                _ => not_allowed("POST"),
            },
            [section] => match method {
                "GET" | "HEAD" => Ok(ConfigRequest::Section(section.clone())),
                _ => not_allowed("GET,HEAD"),
            },
            [section, key] => {
                let (section, key) = (section.clone(), key.clone());
                match method {
                    "GET" | "HEAD" => Ok(ConfigRequest::Get { section, key }),
                    "PUT" => {
                        check_writable(&section)?;
                        let value = match serde_json::from_slice::<Value>(body) {
                            Ok(Value::String(v)) => v.trim().to_string(),
                            _ => {
                                return Err(CouchError::bad_request(
                                    "The value must be a JSON string",
                                ))
                            }
                        };
                        let value = if section == "admins" {
                            admin_secret(&value, iterations)
                        } else {
                            value
                        };
                        Ok(ConfigRequest::Put {
                            section,
                            key,
                            value,
                        })
                    }
                    "DELETE" => {
                        check_writable(&section)?;
                        Ok(ConfigRequest::Delete { section, key })
                    }
                    _ => not_allowed("GET,HEAD,PUT,DELETE"),
                }
            }
            _ => Err(CouchError::not_found("missing")),
        }
    }
}

fn check_writable(section: &str) -> CouchResult<()> {
    if BLACKLISTED.contains(&section) {
        return Err(CouchError::forbidden(
            "Config section blacklisted for modification over HTTP API.",
        ));
    }
    Ok(())
}

/// An admin password as CouchDB stores it: hashed (PBKDF2-SHA256) unless
/// it already is.
fn admin_secret(password: &str, iterations: u32) -> String {
    if password.starts_with("-pbkdf2") {
        return password.to_string();
    }
    match Credentials::hash(password, iterations) {
        Credentials::Pbkdf2 {
            derived_key,
            salt,
            iterations,
            ..
        } => format!("-pbkdf2:sha256-{derived_key},{salt},{iterations}"),
        Credentials::Simple { .. } => unreachable!("hash derives PBKDF2"),
    }
}

/// CouchDB's error for a key that is not set.
pub fn unknown_value() -> CouchError {
    CouchError::not_found("unknown_config_value")
}

/// Whether `node` names this node (`_local`, or its name).
pub fn is_this_node(node: &str) -> bool {
    node == "_local" || node == NODE_NAME
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::AdminSecret;

    fn segs(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn requests() {
        let parse =
            |m: &str, p: &[&str], b: &str| ConfigRequest::parse(m, &segs(p), b.as_bytes(), 10);
        assert_eq!(parse("GET", &[], "").unwrap(), ConfigRequest::All);
        assert_eq!(
            parse("GET", &["couchdb"], "").unwrap(),
            ConfigRequest::Section("couchdb".into())
        );
        assert_eq!(
            parse("PUT", &["couchdb", "max_document_size"], " \" 100 \" ").unwrap(),
            ConfigRequest::Put {
                section: "couchdb".into(),
                key: "max_document_size".into(),
                value: "100".into()
            }
        );
        assert_eq!(parse("PUT", &["a", "b"], "100").unwrap_err().status, 400);
        assert_eq!(
            parse("PUT", &["query_servers", "x"], "\"y\"")
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(parse("POST", &["a", "b"], "").unwrap_err().status, 405);
        assert_eq!(
            parse("POST", &["_reload"], "").unwrap(),
            ConfigRequest::Reload
        );
        let ConfigRequest::Put { value, .. } = parse("PUT", &["admins", "ann"], "\"pw\"").unwrap()
        else {
            panic!()
        };
        assert!(value.starts_with("-pbkdf2:sha256-"), "{value}");
        match Credentials::from_admin_secret(&value) {
            AdminSecret::Hashed(c) => assert!(c.verify("pw") && !c.verify("no")),
            other => panic!("{other:?}"),
        }
        // A hash is stored as given.
        let ConfigRequest::Put { value: again, .. } =
            parse("PUT", &["admins", "ann"], &json!(value).to_string()).unwrap()
        else {
            panic!()
        };
        assert_eq!(again, value);
    }

    #[test]
    fn actors_get_only_what_they_read() {
        let mut overlay = Overlay::new();
        assert_eq!(actor_settings(&overlay), None);
        overlay
            .entry("couchdb".into())
            .or_default()
            .insert("max_attachment_size".into(), "infinity".into());
        overlay
            .entry("chttpd_auth".into())
            .or_default()
            .insert("timeout".into(), "30".into());
        let h = actor_settings(&overlay).unwrap();
        let back = read_actor_settings(&h);
        assert_eq!(back.len(), 1, "{h}");
        assert_eq!(back["MAX_ATTACHMENT_SIZE"], u64::MAX.to_string());
        assert!(read_actor_settings("COUCHDB_SECRET=x").is_empty());
    }

    #[test]
    fn overlay_wins_over_vars_and_shows_with_defaults() {
        let env = |k: &str| (k == "MAX_DOCUMENT_SIZE").then(|| "5000".to_string());
        let mut overlay = Overlay::new();
        assert_eq!(
            lookup(&overlay, "MAX_DOCUMENT_SIZE", env).as_deref(),
            Some("5000")
        );
        overlay
            .entry("couchdb".into())
            .or_default()
            .insert("max_document_size".into(), "64".into());
        overlay
            .entry("couch_httpd_auth".into())
            .or_default()
            .insert("timeout".into(), "30".into());
        overlay
            .entry("mine".into())
            .or_default()
            .insert("k".into(), "v".into());
        assert_eq!(
            lookup(&overlay, "MAX_DOCUMENT_SIZE", env).as_deref(),
            Some("64")
        );
        assert_eq!(
            lookup(&overlay, "SESSION_TIMEOUT", env).as_deref(),
            Some("30")
        );
        assert_eq!(lookup(&overlay, "CORS_ORIGINS", env), None);
        let all = sections(&overlay, env);
        assert_eq!(all["couchdb"]["max_document_size"], "64");
        assert_eq!(all["couchdb"]["max_attachment_size"], "infinity");
        assert_eq!(all["chttpd"]["max_http_request_size"], "4294967296");
        assert_eq!(all["mine"]["k"], "v");
        assert!(
            all["cors"].get("origins").is_none(),
            "unset settings without a default are left out"
        );
        assert!(
            all["chttpd_auth"].get("secret").is_none(),
            "secrets are never shown"
        );
    }
}
