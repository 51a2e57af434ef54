//! A database's `_security` object and the access decisions CouchDB makes
//! with it.
//!
//! - Server admins may do anything.
//! - Database admins (`admins.names`/`admins.roles`) may also change
//!   `_security` and design documents.
//! - Members (`members.names`/`members.roles`) may read and write documents.
//!   With no member names and no member roles the database is public.
//! - Everyone else gets 401 when anonymous and 403 when authenticated.
//!
//! New databases get CouchDB 3's `admin_only` default: both sections hold
//! the `_admin` role, so only server admins get in until `_security` says
//! otherwise.

use crate::error::{CouchError, CouchResult};
use crate::user::UserCtx;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Section {
    fn is_empty(&self) -> bool {
        self.names.is_empty() && self.roles.is_empty()
    }

    fn admits(&self, user: &UserCtx) -> bool {
        user.name.as_ref().is_some_and(|n| self.names.contains(n))
            || user.roles.iter().any(|r| self.roles.contains(r))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    pub admins: Section,
    pub members: Section,
}

impl Security {
    /// CouchDB 3's default for new databases (`default_security = admin_only`).
    pub fn admin_only() -> Security {
        let admin = Section {
            names: vec![],
            roles: vec!["_admin".into()],
        };
        Security {
            admins: admin.clone(),
            members: admin,
        }
    }

    /// Reads the sections from a stored `_security` object; anything
    /// unreadable counts as empty, as CouchDB treats it.
    pub fn from_json(v: &Value) -> Security {
        let section = |k: &str| {
            v.get(k)
                .and_then(|s| serde_json::from_value(s.clone()).ok())
                .unwrap_or_default()
        };
        Security {
            admins: section("admins"),
            members: section("members"),
        }
    }

    pub fn is_db_admin(&self, user: &UserCtx) -> bool {
        user.is_admin() || self.admins.admits(user)
    }

    pub fn is_member(&self, user: &UserCtx) -> bool {
        self.is_db_admin(user) || self.members.is_empty() || self.members.admits(user)
    }

    /// May `user` read and write documents?
    pub fn check_member(&self, user: &UserCtx) -> CouchResult<()> {
        if self.is_member(user) {
            Ok(())
        } else if user.name.is_none() {
            Err(CouchError::unauthorized(
                "You are not authorized to access this db.",
            ))
        } else {
            Err(CouchError::forbidden(
                "You are not allowed to access this db.",
            ))
        }
    }

    /// May `user` change `_security` and design documents?
    pub fn check_db_admin(&self, user: &UserCtx) -> CouchResult<()> {
        if self.is_db_admin(user) {
            Ok(())
        } else if user.name.is_none() {
            Err(CouchError::unauthorized(
                "You are not a db or server admin.",
            ))
        } else {
            Err(CouchError::forbidden("You are not a db or server admin."))
        }
    }
}

/// Requires a server admin.
pub fn check_server_admin(user: &UserCtx) -> CouchResult<()> {
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
    use serde_json::json;

    fn user(name: Option<&str>, roles: &[&str]) -> UserCtx {
        UserCtx {
            name: name.map(String::from),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn access_table() {
        let sec = Security::from_json(&json!({
            "admins": {"names": ["boss"], "roles": ["leads"]},
            "members": {"names": ["ann"], "roles": ["team"]}
        }));
        let anon = user(None, &[]);
        // The user, then may they read/write documents, and administer?
        type Case = (UserCtx, Result<(), u16>, Result<(), u16>);
        let cases: Vec<Case> = vec![
            (anon, Err(401), Err(401)),
            (user(Some("eve"), &[]), Err(403), Err(403)),
            (user(Some("ann"), &[]), Ok(()), Err(403)),
            (user(Some("bob"), &["team"]), Ok(()), Err(403)),
            (user(Some("boss"), &[]), Ok(()), Ok(())),
            (user(Some("cat"), &["leads"]), Ok(()), Ok(())),
            (UserCtx::admin("root"), Ok(()), Ok(())),
        ];
        for (u, member, admin) in cases {
            assert_eq!(sec.check_member(&u).map_err(|e| e.status), member, "{u:?}");
            assert_eq!(sec.check_db_admin(&u).map_err(|e| e.status), admin, "{u:?}");
        }
    }

    #[test]
    fn empty_members_is_public_and_default_is_admin_only() {
        let public = Security::from_json(&json!({"admins": {"names": ["boss"]}}));
        assert!(public.check_member(&user(None, &[])).is_ok());
        assert!(public.check_db_admin(&user(Some("x"), &[])).is_err());
        let default = Security::admin_only();
        assert_eq!(
            default
                .check_member(&user(Some("x"), &[]))
                .unwrap_err()
                .status,
            403
        );
        assert!(default.check_member(&UserCtx::admin("a")).is_ok());
        assert_eq!(
            Security::from_json(&json!({"members": 5})),
            Security::default()
        );
        assert_eq!(
            check_server_admin(&user(Some("x"), &[]))
                .unwrap_err()
                .status,
            403
        );
    }
}
