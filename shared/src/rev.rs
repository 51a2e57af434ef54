//! Revision ids: `N-<hash>`, and how a new one is derived.

use crate::attachments::Meta;
use crate::erlang_term::{self, Term};
use crate::error::{CouchError, CouchResult};
use md5::{Digest, Md5};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// One revision: its position (generation) in the tree and its hash.
///
/// Ordered by position, then hash, which is CouchDB's order for choosing a
/// winner among leaves of equal deletedness (and for listing `_conflicts`).
/// CouchDB compares hashes as it stores them: 32 hex digits as their 16
/// bytes, anything else as the text, so `1-aaaa…` (bytes `0xaa…`) sorts
/// after `1-zzzz…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rev {
    pub pos: u64,
    pub hash: String,
}

impl Rev {
    pub fn new(pos: u64, hash: impl Into<String>) -> Self {
        Rev {
            pos,
            hash: hash.into(),
        }
    }

    /// Parses a rev from a JSON value (only strings are revs).
    pub fn from_json(v: &Value) -> CouchResult<Rev> {
        v.as_str().ok_or_else(CouchError::bad_rev)?.parse()
    }

    /// Parses a rev that names one to look up or to replace (`?rev=`,
    /// `If-Match`) as CouchDB's `couch_doc:parse_rev/1` does: any number, a
    /// dash, any hash. `1-` or `0-x` are well formed but name no revision a
    /// document can have, so they answer 404 or 409, not 400.
    pub fn lookup(s: &str) -> CouchResult<Rev> {
        let (pos, hash) = s.split_once('-').ok_or_else(CouchError::bad_rev)?;
        if pos.is_empty() || !pos.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CouchError::bad_rev());
        }
        // Beyond u64 no document reaches: a position none has.
        Ok(Rev::new(pos.parse().unwrap_or(u64::MAX), hash))
    }

    /// Parses a JSON list of revs (`atts_since`, a purge request's lists).
    pub fn list_from_json(v: &Value) -> CouchResult<Vec<Rev>> {
        v.as_array()
            .ok_or_else(|| CouchError::bad_request("Expected a JSON list of revisions"))?
            .iter()
            .map(Rev::from_json)
            .collect()
    }

    /// Derives the id of an edit as CouchDB does (`couch_db:new_revid/1`):
    /// the MD5 of the Erlang term of its deletedness, parent, body and
    /// attachments (`(name, content type, MD5 of the data)`, in the order
    /// the document lists them), so the same edit gets the same id on every
    /// node and on CouchDB itself. The document id is not part of it.
    pub fn next(
        parent: Option<&Rev>,
        deleted: bool,
        body: &Map<String, Value>,
        atts: &[(String, Meta)],
    ) -> Rev {
        let parent_hash = parent.map(Rev::hash_key);
        let md5s: Vec<Vec<u8>> = atts.iter().map(|(_, m)| m.md5()).collect();
        let old_rev = match &parent_hash {
            None => Term::Int(0),
            Some(h) => Term::Binary(h),
        };
        let atts = atts
            .iter()
            .zip(&md5s)
            .rev()
            .map(|((name, m), md5)| {
                Term::Tuple(vec![
                    Term::Binary(name.as_bytes()),
                    Term::Binary(m.content_type.as_bytes()),
                    Term::Binary(md5),
                ])
            })
            .collect();
        let term = Term::List(vec![
            Term::Atom(if deleted { "true" } else { "false" }),
            Term::Int(parent.map_or(0, |p| p.pos.into())),
            old_rev,
            Term::Object(body),
            Term::List(atts),
        ]);
        Rev {
            pos: parent.map_or(1, |p| p.pos + 1),
            hash: hex(&Md5::digest(erlang_term::to_binary(&term))),
        }
    }
}

/// Lower-case hex, as CouchDB writes revision hashes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

impl Rev {
    /// The hash as CouchDB's `parse_rev` keeps it.
    fn hash_key(&self) -> std::borrow::Cow<'_, [u8]> {
        let h = self.hash.as_bytes();
        if h.len() == 32 && h.iter().all(u8::is_ascii_hexdigit) {
            let nibble = |c: u8| (c as char).to_digit(16).expect("hex digit") as u8;
            std::borrow::Cow::Owned(
                h.chunks(2)
                    .map(|p| nibble(p[0]) << 4 | nibble(p[1]))
                    .collect(),
            )
        } else {
            std::borrow::Cow::Borrowed(h)
        }
    }
}

impl Ord for Rev {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.pos
            .cmp(&other.pos)
            .then_with(|| self.hash_key().cmp(&other.hash_key()))
            .then_with(|| self.hash.cmp(&other.hash))
    }
}

impl PartialOrd for Rev {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Rev {
    type Err = CouchError;

    /// CouchDB accepts any non-empty hash after `N-`; positions start at 1.
    fn from_str(s: &str) -> CouchResult<Rev> {
        let (pos, hash) = s.split_once('-').ok_or_else(CouchError::bad_rev)?;
        let pos: u64 = pos.parse().map_err(|_| CouchError::bad_rev())?;
        if pos == 0 || hash.is_empty() || pos.to_string().len() != s.len() - hash.len() - 1 {
            return Err(CouchError::bad_rev());
        }
        Ok(Rev::new(pos, hash))
    }
}

impl fmt::Display for Rev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.pos, self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_format() {
        let r: Rev = "12-abc".parse().unwrap();
        assert_eq!(r, Rev::new(12, "abc"));
        assert_eq!(r.to_string(), "12-abc");
        for bad in ["", "1", "1-", "-a", "x-a", "0-a", "01-a", "+1-a", " 1-a"] {
            assert!(bad.parse::<Rev>().is_err(), "{bad:?}");
        }
    }

    fn next(parent: Option<&Rev>, deleted: bool, body: Value) -> Rev {
        Rev::next(parent, deleted, body.as_object().unwrap(), &[])
    }

    #[test]
    fn next_is_couchdbs_revision_id() {
        // Ids CouchDB 3 gives these new documents.
        for (body, id) in [
            (json!({}), "1-967a00dff5e02add41819138abb3284d"),
            (json!({"foo": "bar"}), "1-4c6114c65e295552ab1019e2b046b10e"),
            (json!({"v": "1"}), "1-806db366bc1ba3ebef40f4b7c63a53af"),
        ] {
            assert_eq!(next(None, false, body).to_string(), id);
        }
    }

    #[test]
    fn next_depends_on_every_input() {
        let p = Rev::new(1, "967a00dff5e02add41819138abb3284d");
        let a = next(Some(&p), false, json!({"x": 1}));
        assert_eq!(a.pos, 2);
        assert_eq!(a.hash.len(), 32);
        assert_ne!(a, next(Some(&p), true, json!({"x": 1})));
        assert_ne!(a, next(Some(&p), false, json!({"x": 2})));
        assert_ne!(a, next(Some(&p), false, json!({"x": 1.0})));
        assert_ne!(a, next(Some(&Rev::new(1, "ab")), false, json!({"x": 1})));
        assert_ne!(
            a,
            next(Some(&Rev::new(2, p.hash.clone())), false, json!({"x": 1}))
        );
        let body = json!({"x": 1});
        let att = Rev::next(
            Some(&p),
            false,
            body.as_object().unwrap(),
            &[(
                "a".into(),
                Meta {
                    content_type: "text/plain".into(),
                    digest: "md5-AQEBAQEBAQEBAQEBAQEBAQ==".into(),
                    length: 1,
                    revpos: 1,
                },
            )],
        );
        assert_ne!(a, att);
    }

    #[test]
    fn order_is_pos_then_hash() {
        let mut v: Vec<Rev> = ["2-a", "10-a", "2-b", "1-z"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(|r| r.to_string()).collect();
        assert_eq!(s, ["1-z", "2-a", "2-b", "10-a"]);
        let hex: Rev = "1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
        let text: Rev = "1-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz".parse().unwrap();
        assert!(hex > text, "the 16 bytes 0xaa… sort after the text z…");
        let (lo, hi): (Rev, Rev) = ("1-0f".parse().unwrap(), "1-f0".parse().unwrap());
        assert!(lo < hi);
    }
}
