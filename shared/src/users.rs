//! The `_users` database's rules, as `couch_users_db` and its `_auth`
//! design document enforce them:
//!
//! - anyone may sign up (create `org.couchdb.user:NAME` with no roles);
//! - a user may read and update only their own document, and may not
//!   change their own `roles`; other users' documents are 404 to them;
//! - admins may do anything;
//! - a `password` is never stored: it is replaced by PBKDF2 credentials.

use crate::doc::IncomingDoc;
use crate::error::{CouchError, CouchResult};
use crate::password::Credentials;
use crate::user::UserCtx;
use serde_json::{Map, Value};

pub const USERS_DB: &str = "_users";
pub const USER_PREFIX: &str = "org.couchdb.user:";

/// How the `_users` database behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsersConfig {
    /// PBKDF2 iterations for new passwords.
    pub iterations: u32,
    /// Whether anonymous requests may create users.
    pub allow_signup: bool,
}

impl Default for UsersConfig {
    fn default() -> Self {
        UsersConfig {
            iterations: crate::password::DEFAULT_ITERATIONS,
            allow_signup: true,
        }
    }
}

/// The user name a `_users` document id names.
pub fn doc_name(id: &str) -> Option<&str> {
    id.strip_prefix(USER_PREFIX)
}

fn forbidden(reason: &str) -> CouchError {
    CouchError::forbidden(reason)
}

/// Checks and transforms a write to `_users` (`before_doc_update` and the
/// `_auth` validation). `old` is the current winning body, if any;
/// `admin` says whether the writer is a server or database admin.
pub fn before_write(
    id: &str,
    doc: &mut IncomingDoc,
    old: Option<&Map<String, Value>>,
    user: &UserCtx,
    admin: bool,
    cfg: &UsersConfig,
) -> CouchResult<()> {
    if crate::doc::is_design(id) {
        return if admin {
            Ok(())
        } else {
            Err(forbidden(
                "Only admins may write design documents in the users database.",
            ))
        };
    }
    let owner = doc_name(id);
    if !admin {
        match &user.name {
            None if !cfg.allow_signup => {
                return Err(forbidden("Sign-up is disabled on this server."))
            }
            None if old.is_some() => return Err(CouchError::conflict()),
            None => {}
            Some(n) if Some(n.as_str()) == owner => {}
            Some(_) => return Err(CouchError::doc_not_found(false)),
        }
    }
    if doc.deleted {
        return Ok(());
    }
    validate(id, &doc.body, old, admin)?;
    if let Some(pw) = doc.body.shift_remove("password") {
        match pw {
            Value::String(pw) => Credentials::hash(&pw, cfg.iterations).write_to(&mut doc.body),
            Value::Null => {}
            _ => return Err(forbidden("doc.password must be a string")),
        }
    }
    Ok(())
}

fn validate(
    id: &str,
    body: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
    admin: bool,
) -> CouchResult<()> {
    if body.get("type").and_then(Value::as_str) != Some("user") {
        return Err(forbidden("doc.type must be user"));
    }
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| forbidden("doc.name is required"))?;
    let roles = body
        .get("roles")
        .and_then(Value::as_array)
        .ok_or_else(|| forbidden("doc.roles must be an array"))?;
    if roles.iter().any(|r| !r.is_string()) {
        return Err(forbidden("doc.roles can only contain strings"));
    }
    if id != format!("{USER_PREFIX}{name}") {
        return Err(forbidden(
            "Doc ID must be of the form org.couchdb.user:name",
        ));
    }
    if name.starts_with('_') {
        return Err(forbidden("Username may not start with underscore."));
    }
    if !admin {
        let old_roles = old
            .and_then(|o| o.get("roles"))
            .cloned()
            .unwrap_or(Value::Array(vec![]));
        if Value::Array(roles.clone()) != old_roles {
            return Err(forbidden("Only _admin may edit roles"));
        }
        if roles
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.starts_with('_')))
        {
            return Err(forbidden("Only _admin may set system roles"));
        }
    }
    Ok(())
}

/// Whether `user` may read document `id` of `_users` (`after_doc_read`):
/// admins and the owner only; design documents are admin-only.
pub fn check_read(id: &str, user: &UserCtx, admin: bool) -> CouchResult<()> {
    if admin {
        return Ok(());
    }
    if crate::doc::is_design(id) {
        return Err(forbidden(
            "Only administrators can view design docs in the users database.",
        ));
    }
    match (&user.name, doc_name(id)) {
        (Some(n), Some(owner)) if n == owner => Ok(()),
        _ => Err(CouchError::doc_not_found(false)),
    }
}

/// The user context a stored user document grants, if `password` matches.
pub fn authenticate(doc: &Map<String, Value>, password: &str) -> Option<UserCtx> {
    let creds = Credentials::from_user_doc(doc)?;
    if !creds.verify(password) {
        return None;
    }
    Some(user_ctx(doc))
}

/// The `userCtx` of a stored user document.
pub fn user_ctx(doc: &Map<String, Value>) -> UserCtx {
    UserCtx {
        name: doc.get("name").and_then(Value::as_str).map(String::from),
        roles: UserCtx::roles_from(doc.get("roles")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> UsersConfig {
        UsersConfig {
            iterations: 5,
            allow_signup: true,
        }
    }

    fn doc(v: Value) -> IncomingDoc {
        IncomingDoc::parse(v).unwrap()
    }

    fn who(name: Option<&str>) -> UserCtx {
        UserCtx {
            name: name.map(String::from),
            roles: vec![],
        }
    }

    #[test]
    fn signup_hashes_the_password() {
        let id = "org.couchdb.user:ann";
        let mut d =
            doc(json!({"_id": id, "type": "user", "name": "ann", "roles": [], "password": "pw"}));
        before_write(id, &mut d, None, &who(None), false, &cfg()).unwrap();
        assert!(d.body.get("password").is_none());
        assert_eq!(d.body["password_scheme"], "pbkdf2");
        assert_eq!(d.body["pbkdf2_prf"], "sha256");
        assert_eq!(d.body["iterations"], 5);
        assert_eq!(
            authenticate(&d.body, "pw").unwrap().name.as_deref(),
            Some("ann")
        );
        assert!(authenticate(&d.body, "nope").is_none());
    }

    #[test]
    fn rules_table() {
        let id = "org.couchdb.user:ann";
        let good = json!({"_id": id, "type": "user", "name": "ann", "roles": []});
        let old = json!({"type": "user", "name": "ann", "roles": ["reader"]})
            .as_object()
            .cloned();
        let with = |k: &str, v: Value| {
            let mut g = good.clone();
            g[k] = v;
            g
        };
        // What, the document, the stored one, the writer, admin?, outcome.
        type Case<'a> = (
            &'a str,
            Value,
            Option<&'a Map<String, Value>>,
            UserCtx,
            bool,
            Result<(), u16>,
        );
        let cases: Vec<Case> = vec![
            ("signup", good.clone(), None, who(None), false, Ok(())),
            (
                "signup with roles",
                with("roles", json!(["x"])),
                None,
                who(None),
                false,
                Err(403),
            ),
            (
                "anonymous overwrite",
                good.clone(),
                old.as_ref(),
                who(None),
                false,
                Err(409),
            ),
            (
                "other user",
                good.clone(),
                old.as_ref(),
                who(Some("bob")),
                false,
                Err(404),
            ),
            (
                "own doc, roles kept",
                with("roles", json!(["reader"])),
                old.as_ref(),
                who(Some("ann")),
                false,
                Ok(()),
            ),
            (
                "own doc, roles changed",
                with("roles", json!(["admin"])),
                old.as_ref(),
                who(Some("ann")),
                false,
                Err(403),
            ),
            (
                "admin sets roles",
                with("roles", json!(["admin"])),
                old.as_ref(),
                who(Some("root")),
                true,
                Ok(()),
            ),
            (
                "wrong type",
                with("type", json!("robot")),
                None,
                who(None),
                false,
                Err(403),
            ),
            (
                "name mismatch",
                with("name", json!("bob")),
                None,
                who(None),
                true,
                Err(403),
            ),
            (
                "underscore name",
                json!({"_id": "org.couchdb.user:_x", "type": "user", "name": "_x", "roles": []}),
                None,
                who(None),
                true,
                Err(403),
            ),
            (
                "roles not strings",
                with("roles", json!([1])),
                None,
                who(None),
                true,
                Err(403),
            ),
            (
                "password not string",
                with("password", json!(5)),
                None,
                who(None),
                false,
                Err(403),
            ),
        ];
        for (what, v, old, user, admin, want) in cases {
            let id = v["_id"].as_str().unwrap().to_string();
            let mut d = doc(v);
            let got = before_write(&id, &mut d, old, &user, admin, &cfg()).map_err(|e| e.status);
            assert_eq!(got, want, "{what}");
        }
        let no_signup = UsersConfig {
            allow_signup: false,
            ..cfg()
        };
        let mut d = doc(good.clone());
        assert_eq!(
            before_write(id, &mut d, None, &who(None), false, &no_signup)
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn reads() {
        let id = "org.couchdb.user:ann";
        assert!(check_read(id, &who(Some("ann")), false).is_ok());
        assert_eq!(
            check_read(id, &who(Some("bob")), false).unwrap_err().status,
            404
        );
        assert_eq!(check_read(id, &who(None), false).unwrap_err().status, 404);
        assert!(check_read(id, &who(Some("bob")), true).is_ok());
        assert_eq!(
            check_read("_design/_auth", &who(Some("ann")), false)
                .unwrap_err()
                .status,
            403
        );
    }
}
