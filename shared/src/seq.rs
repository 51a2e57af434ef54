//! Update sequences, opaque to clients as in CouchDB 2+.
//!
//! A sequence is rendered `N-<instance>`: clients must treat it as an opaque
//! string, Settee reads back the leading number. The instance tag changes when
//! a database is deleted and recreated: a sequence of an earlier incarnation
//! restarts `_changes` from 0 (a checkpoint cannot skip the new documents).

use crate::error::{CouchError, CouchResult};
use serde_json::Value;

/// Renders sequence `n` of a database instance.
pub fn format(n: u64, instance: &str) -> String {
    format!("{n}-{instance}")
}

/// Where a `_changes` request starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Seq(u64),
    Now,
}

/// Parses `since` as clients send it: `now`, `0`, a number, an opaque
/// `N-...` string, or any of those JSON-encoded.
pub fn parse_since(raw: &str) -> CouchResult<Since> {
    let raw = raw.trim();
    if raw == "now" {
        return Ok(Since::Now);
    }
    if let Ok(Value::String(s)) = serde_json::from_str::<Value>(raw) {
        return parse_since(&s);
    }
    parse_number(raw).map(Since::Seq)
}

/// The numeric part of a sequence string.
pub fn parse_number(raw: &str) -> CouchResult<u64> {
    let digits = raw.split('-').next().unwrap_or("");
    digits.parse().map_err(|_| {
        CouchError::bad_request(format!(
            "Malformed sequence supplied in 'since' parameter: {raw}"
        ))
    })
}

/// The instance tag of a sequence string (`N-<instance>`, possibly
/// JSON-quoted), if it carries one.
pub fn instance_tag(raw: &str) -> Option<&str> {
    let (_, tag) = raw.trim().trim_matches('"').split_once('-')?;
    (!tag.is_empty()).then_some(tag)
}

/// Parses a sequence given as a JSON value (body of `POST _changes`).
pub fn since_from_json(v: &Value) -> CouchResult<Since> {
    match v {
        Value::Number(n) => n.as_u64().map(Since::Seq).ok_or_else(|| {
            CouchError::bad_request("Malformed sequence supplied in 'since' parameter")
        }),
        Value::String(s) => parse_since(s),
        _ => Err(CouchError::bad_request(
            "Malformed sequence supplied in 'since' parameter",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        assert_eq!(parse_since("now").unwrap(), Since::Now);
        assert_eq!(parse_since("0").unwrap(), Since::Seq(0));
        assert_eq!(parse_since("42").unwrap(), Since::Seq(42));
        assert_eq!(parse_since(&format(7, "abc")).unwrap(), Since::Seq(7));
        assert_eq!(parse_since("\"7-abc\"").unwrap(), Since::Seq(7));
        assert_eq!(
            since_from_json(&serde_json::json!(3)).unwrap(),
            Since::Seq(3)
        );
        for bad in ["x", "-1", "", "1.5"] {
            assert_eq!(parse_since(bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
