//! Revision ids: `N-<hash>`, and how a new one is derived.

use crate::error::{CouchError, CouchResult};
use md5::{Digest, Md5};
use serde_json::Value;
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

    /// Derives the id of an edit deterministically from its parent, deletedness
    /// and body, so the same edit made on two nodes yields the same revision
    /// (CouchDB hashes the same inputs with MD5).
    pub fn next(parent: Option<&Rev>, deleted: bool, body: &[u8]) -> Rev {
        let mut h = Md5::new();
        h.update([deleted as u8]);
        match parent {
            Some(p) => {
                h.update(p.pos.to_be_bytes());
                h.update(p.hash.as_bytes());
            }
            None => h.update(0u64.to_be_bytes()),
        }
        h.update(body);
        Rev {
            pos: parent.map_or(1, |p| p.pos + 1),
            hash: hex(&h.finalize()),
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

    #[test]
    fn parse_and_format() {
        let r: Rev = "12-abc".parse().unwrap();
        assert_eq!(r, Rev::new(12, "abc"));
        assert_eq!(r.to_string(), "12-abc");
        for bad in ["", "1", "1-", "-a", "x-a", "0-a", "01-a", "+1-a", " 1-a"] {
            assert!(bad.parse::<Rev>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn next_is_deterministic_and_sensitive() {
        let p = Rev::new(1, "aa");
        let a = Rev::next(Some(&p), false, br#"{"x":1}"#);
        assert_eq!(a, Rev::next(Some(&p), false, br#"{"x":1}"#));
        assert_eq!(a.pos, 2);
        assert_eq!(a.hash.len(), 32);
        assert_ne!(a, Rev::next(Some(&p), true, br#"{"x":1}"#));
        assert_ne!(a, Rev::next(Some(&p), false, br#"{"x":2}"#));
        assert_ne!(a, Rev::next(Some(&Rev::new(1, "ab")), false, br#"{"x":1}"#));
        assert_eq!(Rev::next(None, false, b"{}").pos, 1);
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
