//! The `_replicator` database's document rules, as CouchDB's
//! `couch_replicator_docs` has them: every document has an `owner` (the user
//! who wrote it; users may not write documents of others), a reader who
//! is neither its owner nor an admin sees it without credentials, and the
//! replicator records a job's terminal state in its document.

use super::REPLICATOR_DB;
use crate::date::iso8601;
use crate::error::{CouchError, CouchResult};
use crate::user::UserCtx;
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

pub const OWNER: &str = "owner";

/// The state members CouchDB 3 writes into a document.
pub const STATE: &str = "_replication_state";
pub const STATE_TIME: &str = "_replication_state_time";
pub const STATE_REASON: &str = "_replication_state_reason";
pub const STATS: &str = "_replication_stats";

/// Every member a replicator writes (`_replication_id` only older ones).
const STATE_MEMBERS: &[&str] = &["_replication_id", STATE, STATE_TIME, STATE_REASON, STATS];

/// The role of the replicator's own writes, as in CouchDB's `?CTX`.
pub const SYSTEM_ROLE: &str = "_replicator";

/// Who writes states into documents. Its writes skip the owner rule and
/// `validate_doc_update`, so no user function keeps the replicator from
/// recording a state (CouchDB's ctx passes its design document's function
/// and ignores a refusal by any other).
pub fn system_user() -> UserCtx {
    UserCtx {
        name: Some(REPLICATOR_DB.into()),
        roles: vec!["_admin".into(), SYSTEM_ROLE.into()],
    }
}

pub fn is_system(user: &UserCtx) -> bool {
    user.is_admin() && user.roles.iter().any(|r| r == SYSTEM_ROLE)
}

/// A terminal state, as a document records it.
#[derive(Debug, Clone, PartialEq)]
pub enum Terminal {
    /// A one-shot job finished, with its counters.
    Completed(Map<String, Value>),
    /// The document cannot run (invalid), and why.
    Failed(String),
}

/// The terminal state `doc` records. CouchDB 3's document processor skips
/// such documents, so a completed one-shot is not run again by the write
/// of its own state; removing the state members runs it again.
pub fn recorded(doc: &Map<String, Value>) -> Option<Terminal> {
    match doc.get(STATE).and_then(Value::as_str)? {
        "completed" => Some(Terminal::Completed(
            doc.get(STATS)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        )),
        "failed" => Some(Terminal::Failed(
            doc.get(STATE_REASON)
                .and_then(Value::as_str)
                .unwrap_or("failed")
                .to_string(),
        )),
        _ => None,
    }
}

/// `doc` with `t` written in as CouchDB's `update_rep_doc` writes it (the
/// time changes only with the state), or `None` if it already says so: a
/// no-op write would only wake the document processor again.
pub fn with_terminal(
    doc: &Map<String, Value>,
    t: &Terminal,
    now_ms: u64,
) -> Option<Map<String, Value>> {
    let mut out = doc.clone();
    let (state, member, value, dropped) = match t {
        Terminal::Completed(stats) => ("completed", STATS, json!(stats), STATE_REASON),
        Terminal::Failed(reason) => ("failed", STATE_REASON, json!(reason), STATS),
    };
    out.shift_remove(dropped);
    out.insert(member.into(), value);
    if out.get(STATE).and_then(Value::as_str) != Some(state) {
        out.insert(STATE.into(), json!(state));
        out.insert(STATE_TIME.into(), json!(iso8601(now_ms)));
    }
    (out != *doc).then_some(out)
}

/// The document's content apart from its revision and the state members:
/// a change that keeps it touched only the state.
pub fn fingerprint(doc: &Map<String, Value>) -> String {
    let content: Map<String, Value> = doc
        .iter()
        .filter(|(k, _)| *k != "_rev" && !STATE_MEMBERS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let text = super::id::sorted(&Value::Object(content)).to_string();
    format!("{:x}", Md5::digest(text.as_bytes()))
}

/// Whether `doc` differs from the version fingerprinted `old` only in its
/// revision and state members.
pub fn is_state_only(old: Option<&str>, doc: &Map<String, Value>) -> bool {
    old == Some(fingerprint(doc).as_str())
}

/// Sets or checks `owner` on a write. Admins may write any document (one
/// without an owner becomes theirs); other users only their own. The
/// replicator's state writes keep the document as it is.
pub fn before_write(
    body: &mut Map<String, Value>,
    old: Option<&Map<String, Value>>,
    user: &UserCtx,
    admin: bool,
) -> CouchResult<()> {
    if is_system(user) {
        return Ok(());
    }
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

    #[test]
    fn system_writes_keep_the_owner() {
        let mut doc = map(json!({"source": "a", "owner": "bob"}));
        before_write(&mut doc, None, &system_user(), true).unwrap();
        assert_eq!(doc[OWNER], "bob");
        let mut legacy = map(json!({"source": "a"}));
        before_write(&mut legacy, None, &system_user(), true).unwrap();
        assert!(legacy.get(OWNER).is_none());
        assert!(!is_system(&UserCtx::admin(REPLICATOR_DB)));
        assert!(!is_system(&UserCtx {
            name: Some("x".into()),
            roles: vec![SYSTEM_ROLE.into()],
        }));
    }

    #[test]
    fn terminal_states_as_couchdb_writes_them() {
        let stats = map(json!({"docs_written": 3}));
        let done = Terminal::Completed(stats.clone());
        let doc = map(
            json!({"_id": "r", "_rev": "1-a", "source": "a", "target": "b",
                             "_replication_state_reason": "old"}),
        );
        let t0 = 1_796_360_400_000; // 2026-12-04T05:00:00Z
        let out = with_terminal(&doc, &done, t0).unwrap();
        assert_eq!(out[STATE], "completed");
        assert_eq!(out[STATE_TIME], "2026-12-04T05:00:00Z");
        assert_eq!(out[STATS], json!(stats));
        assert!(out.get(STATE_REASON).is_none());
        assert_eq!(out["source"], "a");
        assert_eq!(recorded(&out), Some(done.clone()));
        // The same state again: no write.
        assert_eq!(with_terminal(&out, &done, t0 + 5000), None);
        // New counters keep the state's time.
        let again = Terminal::Completed(map(json!({"docs_written": 4})));
        let out2 = with_terminal(&out, &again, t0 + 5000).unwrap();
        assert_eq!(out2[STATE_TIME], "2026-12-04T05:00:00Z");
        assert_eq!(out2[STATS]["docs_written"], 4);

        let failed = Terminal::Failed("Invalid `source`".into());
        let out = with_terminal(&out2, &failed, t0 + 9000).unwrap();
        assert_eq!(out[STATE], "failed");
        assert_eq!(out[STATE_REASON], "Invalid `source`");
        assert_eq!(out[STATE_TIME], "2026-12-04T05:00:09Z");
        assert!(out.get(STATS).is_none());
        assert_eq!(recorded(&out), Some(failed));
        // Other states are not terminal: the document runs.
        assert_eq!(recorded(&map(json!({STATE: "triggered"}))), None);
        assert_eq!(recorded(&doc), None);
    }

    #[test]
    fn state_only_changes() {
        let v1 = map(json!({"_id": "r", "_rev": "1-a", "source": "a", "target": "b"}));
        let fp = fingerprint(&v1);
        let written = with_terminal(
            &v1,
            &Terminal::Completed(map(json!({"docs_written": 1}))),
            0,
        )
        .unwrap();
        let mut v2 = written.clone();
        v2.insert("_rev".into(), json!("2-b"));
        assert!(is_state_only(Some(&fp), &v2));
        // Key order does not matter; content does.
        let reordered = map(json!({"target": "b", "source": "a", "_id": "r"}));
        assert!(is_state_only(Some(&fp), &reordered));
        let mut edited = v2.clone();
        edited.insert("target".into(), json!("c"));
        assert!(!is_state_only(Some(&fp), &edited));
        assert!(!is_state_only(None, &v1));
    }
}
