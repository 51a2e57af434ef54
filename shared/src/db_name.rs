//! Database names, validated by CouchDB's rule.

use crate::error::CouchError;

/// System databases that may start with an underscore.
const SYSTEM_DBS: &[&str] = &["_users", "_replicator", "_global_changes"];

/// Checks `name` against `^[a-z][a-z0-9_$()+/-]*$` (or a system database).
pub fn validate(name: &str) -> Result<(), CouchError> {
    if SYSTEM_DBS.contains(&name) || is_valid(name) {
        Ok(())
    } else {
        Err(CouchError::new(
            400,
            "illegal_database_name",
            format!(
                "Name: '{name}'. Only lowercase characters (a-z), digits (0-9), and any of the \
                 characters _, $, (, ), +, -, and / are allowed. Must begin with a letter."
            ),
        ))
    }
}

fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 238
        && chars
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '$' | '(' | ')' | '+' | '-' | '/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn couchdb_rule() {
        for ok in ["a", "abc", "a1_$()+-/b", "_users", "_replicator"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "1a", "_foo", "a b", "aé", "a.b", &"a".repeat(239)] {
            let e = validate(bad).unwrap_err();
            assert_eq!(
                (e.status, e.error.as_str()),
                (400, "illegal_database_name"),
                "{bad}"
            );
        }
    }
}
