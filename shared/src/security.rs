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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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

    /// The object as stored and answered (empty lists left out, as in
    /// CouchDB's own default).
    pub fn to_json(&self) -> Value {
        serde_json::json!({"members": self.members, "admins": self.admins})
    }

    /// Checks a `PUT /db/_security` body: an object whose `admins` and
    /// `members`, where present, are objects whose `names` and `roles`,
    /// where present, are lists of strings. Other members are kept.
    pub fn validate(body: &Value) -> CouchResult<()> {
        let obj = body
            .as_object()
            .ok_or_else(|| CouchError::bad_request("Security object must be a JSON object"))?;
        for section in ["admins", "members"] {
            let Some(s) = obj.get(section) else { continue };
            for list in ["names", "roles"] {
                let ok = match s.get(list) {
                    None => true,
                    Some(Value::Array(a)) => a.iter().all(Value::is_string),
                    Some(_) => false,
                };
                if !ok || !s.is_object() {
                    return Err(CouchError::bad_request(format!(
                        "{section}.{list} must be a JSON list of strings"
                    )));
                }
            }
        }
        Ok(())
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
    fn the_default_and_what_a_put_may_hold() {
        let default = Security::admin_only().to_json();
        assert_eq!(
            default,
            json!({"members": {"roles": ["_admin"]}, "admins": {"roles": ["_admin"]}})
        );
        assert_eq!(Security::from_json(&default), Security::admin_only());
        for ok in [
            json!({}),
            json!({"admins": {}, "members": {"names": ["a"], "roles": []}, "other": 1}),
        ] {
            assert!(Security::validate(&ok).is_ok(), "{ok}");
        }
        for bad in [
            json!([]),
            json!({"admins": []}),
            json!({"members": {"names": "a"}}),
            json!({"members": {"roles": [1]}}),
        ] {
            let e = Security::validate(&bad).unwrap_err();
            assert_eq!((e.status, e.error.as_str()), (400, "bad_request"), "{bad}");
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
