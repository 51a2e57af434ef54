//! Authentication of server admins by HTTP basic auth.
//!
//! The admin comes from the Worker's secrets (`COUCHDB_USER`,
//! `COUCHDB_PASSWORD`); there is no admin party: without them every
//! request that needs a user fails with a configuration error.

use base64::Engine;
use sha2::{Digest, Sha256};
use shared::error::{CouchError, CouchResult};
use shared::user::UserCtx;

/// The configured server admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub name: String,
    pub password: String,
}

impl Admin {
    /// Reads the admin from environment lookups; `None` when unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<Admin> {
        let name = get("COUCHDB_USER").filter(|s| !s.is_empty())?;
        let password = get("COUCHDB_PASSWORD").filter(|s| !s.is_empty())?;
        Some(Admin { name, password })
    }
}

/// Credentials a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic {
        name: String,
        password: String,
    },
    /// An `Authorization` header this server cannot read.
    Malformed,
}

/// Reads the `Authorization` header.
pub fn credentials(authorization: Option<&str>) -> Credentials {
    let Some(h) = authorization else {
        return Credentials::None;
    };
    let Some(encoded) = h
        .strip_prefix("Basic ")
        .or_else(|| h.strip_prefix("basic "))
    else {
        return Credentials::Malformed;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return Credentials::Malformed;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return Credentials::Malformed;
    };
    match text.split_once(':') {
        Some((name, password)) => Credentials::Basic {
            name: name.to_string(),
            password: password.to_string(),
        },
        None => Credentials::Malformed,
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// Decides who a request is: anonymous, the admin, or a 401.
pub fn authenticate(admin: Option<&Admin>, authorization: Option<&str>) -> CouchResult<UserCtx> {
    match credentials(authorization) {
        Credentials::None => Ok(UserCtx::default()),
        Credentials::Malformed => Err(CouchError::unauthorized(
            "Authorization header could not be parsed.",
        )),
        Credentials::Basic { name, password } => {
            let admin = admin.ok_or_else(not_configured)?;
            let ok = same_secret(&name, &admin.name) & same_secret(&password, &admin.password);
            if ok {
                Ok(UserCtx::admin(&admin.name))
            } else {
                Err(CouchError::unauthorized("Name or password is incorrect."))
            }
        }
    }
}

/// The error when no admin is configured: Settee never runs as an admin party.
pub fn not_configured() -> CouchError {
    CouchError::internal(
        "No server admin is configured: set the COUCHDB_USER and COUCHDB_PASSWORD secrets",
    )
}

/// Requires a server admin.
pub fn require_admin(user: &UserCtx) -> CouchResult<()> {
    if user.is_admin() {
        Ok(())
    } else if user.name.is_none() {
        Err(CouchError::unauthorized("You are not a server admin."))
    } else {
        Err(CouchError::forbidden("You are not a server admin."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
    }

    #[test]
    fn basic_auth() {
        let admin = Admin {
            name: "root".into(),
            password: "s3cret:x".into(),
        };
        let ok = authenticate(Some(&admin), Some(&basic("root", "s3cret:x"))).unwrap();
        assert!(ok.is_admin());
        assert_eq!(ok.name.as_deref(), Some("root"));
        for (u, p) in [("root", "nope"), ("other", "s3cret:x"), ("", "")] {
            let e = authenticate(Some(&admin), Some(&basic(u, p))).unwrap_err();
            assert_eq!(
                (e.status, e.reason.as_str()),
                (401, "Name or password is incorrect.")
            );
        }
        assert_eq!(
            authenticate(Some(&admin), None).unwrap(),
            UserCtx::default()
        );
        assert_eq!(
            authenticate(Some(&admin), Some("Basic !!!"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            authenticate(Some(&admin), Some("Digest x"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            authenticate(None, Some(&basic("a", "b")))
                .unwrap_err()
                .status,
            500
        );
    }

    #[test]
    fn admin_config_and_requirements() {
        assert_eq!(Admin::from_lookup(|_| None), None);
        assert_eq!(
            Admin::from_lookup(|k| (k == "COUCHDB_USER").then(|| "a".into())),
            None
        );
        let a = Admin::from_lookup(|_| Some("x".into())).unwrap();
        assert_eq!((a.name.as_str(), a.password.as_str()), ("x", "x"));
        assert_eq!(require_admin(&UserCtx::default()).unwrap_err().status, 401);
        let user = UserCtx {
            name: Some("bob".into()),
            roles: vec![],
        };
        assert_eq!(require_admin(&user).unwrap_err().status, 403);
        assert!(require_admin(&UserCtx::admin("a")).is_ok());
    }
}
