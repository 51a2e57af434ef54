//! The `_replicator` database's document rules, as CouchDB's
//! `couch_replicator_docs` has them: every document has an `owner` (the user
//! who wrote it; users may not write documents of others), and a reader who
//! is neither its owner nor an admin sees it without credentials.

use crate::error::{CouchError, CouchResult};
use crate::user::UserCtx;
use serde_json::{Map, Value};

pub const OWNER: &str = "owner";

/// Sets or checks `owner` on a write. Admins may write any document (one
/// without an owner becomes theirs); other users only their own.
pub fn before_write(
    body: &mut Map<String, Value>,
    old: Option<&Map<String, Value>>,
    user: &UserCtx,
    admin: bool,
) -> CouchResult<()> {
    let name = user.name.clone().map(Value::String).unwrap_or(Value::Null);
    let others = |owner: Option<&Value>| owner.is_some_and(|o| !o.is_null() && *o != name);
    if !admin && (others(body.get(OWNER)) || others(old.and_then(|o| o.get(OWNER)))) {
        return Err(CouchError::forbidden(
            "Can't update replication documents from other users.",
        ));
    }
    if body.get(OWNER).is_none_or(Value::is_null) {
        body.insert(OWNER.into(), name);
    }
    Ok(())
}

/// Strips the credentials from a document `user` does not own (the caller
/// has checked `user` is no admin). True if anything changed.
pub fn redact(body: &mut Map<String, Value>, user: &UserCtx) -> bool {
    let owner = body.get(OWNER).and_then(Value::as_str);
    if owner.is_some() && owner == user.name.as_deref() {
        return false;
    }
    let mut changed = false;
    for end in ["source", "target"] {
        if let Some(v) = body.get_mut(end) {
            changed |= strip_credentials(v);
        }
    }
    changed
}

/// Removes `user:password@` from an endpoint URL, and `headers` and `auth`
/// from an endpoint object.
fn strip_credentials(end: &mut Value) -> bool {
    match end {
        Value::String(url) => match without_userinfo(url) {
            Some(clean) => {
                *url = clean;
                true
            }
            None => false,
        },
        Value::Object(props) => {
            let mut changed = props.remove("headers").is_some();
            changed |= props.remove("auth").is_some();
            if let Some(url) = props.get_mut("url") {
                changed |= strip_credentials(url);
            }
            changed
        }
        _ => false,
    }
}

fn without_userinfo(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some(format!("{scheme}://{}", &rest[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn owners() {
        let ann = UserCtx {
            name: Some("ann".into()),
            roles: vec![],
        };
        let mut doc = map(json!({"source": "a", "target": "b"}));
        before_write(&mut doc, None, &ann, false).unwrap();
        assert_eq!(doc[OWNER], "ann");
        let mut bobs = map(json!({"source": "a", "owner": "bob"}));
        assert_eq!(
            before_write(&mut bobs, None, &ann, false)
                .unwrap_err()
                .status,
            403
        );
        let old = map(json!({"owner": "bob"}));
        let mut mine = map(json!({"owner": "ann"}));
        assert_eq!(
            before_write(&mut mine, Some(&old), &ann, false)
                .unwrap_err()
                .status,
            403
        );
        let admin = UserCtx::admin("root");
        before_write(&mut bobs, Some(&old), &admin, true).unwrap();
        assert_eq!(bobs[OWNER], "bob");
    }

    #[test]
    fn credentials_hidden_from_others() {
        let ann = UserCtx {
            name: Some("ann".into()),
            roles: vec![],
        };
        let original = json!({
            "owner": "bob",
            "source": "https://bob:s3cret@example.com:5984/db",
            "target": {"url": "http://x:y@h/t", "headers": {"Authorization": "Basic eDp5"}, "auth": {"basic": {}}}
        });
        let mut doc = map(original.clone());
        assert!(redact(&mut doc, &ann));
        assert_eq!(doc["source"], "https://example.com:5984/db");
        assert_eq!(doc["target"], json!({"url": "http://h/t"}));
        let bob = UserCtx {
            name: Some("bob".into()),
            roles: vec![],
        };
        let mut own = map(original);
        assert!(!redact(&mut own, &bob));
        let mut plain = map(json!({"source": "http://h/db", "target": "local"}));
        assert!(!redact(&mut plain, &ann));
    }
}
