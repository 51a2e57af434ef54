//! Attachments: how clients send them (inline base64 `data`, or `stub`s of
//! attachments the document already has), CouchDB's `md5-` digests, and
//! byte ranges.

use crate::error::{CouchError, CouchResult};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

/// An attachment as a client sent it in `_attachments`.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// New content, decoded from base64 `data`.
    Data { content_type: String, data: Vec<u8> },
    /// An attachment the document already has (`stub: true`), maybe naming
    /// its digest.
    Stub { digest: Option<String> },
}

/// Stored metadata of one attachment (what a stub shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub content_type: String,
    pub digest: String,
    pub length: u64,
    pub revpos: u64,
}

impl Meta {
    /// The MD5 CouchDB hashes into a revision id: the 16 bytes of an `md5-`
    /// digest, any other digest as its text.
    pub fn md5(&self) -> Vec<u8> {
        self.digest
            .strip_prefix("md5-")
            .and_then(|b| STANDARD.decode(b).ok())
            .unwrap_or_else(|| self.digest.as_bytes().to_vec())
    }

    /// The stub CouchDB shows in a document.
    pub fn to_stub(&self) -> Value {
        json!({
            "content_type": self.content_type,
            "revpos": self.revpos,
            "digest": self.digest,
            "length": self.length,
            "stub": true,
        })
    }

    pub fn from_stub(v: &Value) -> Option<Meta> {
        Some(Meta {
            content_type: v.get("content_type")?.as_str()?.to_string(),
            digest: v.get("digest")?.as_str()?.to_string(),
            length: v.get("length")?.as_u64()?,
            revpos: v.get("revpos")?.as_u64()?,
        })
    }
}

/// CouchDB's digest: `md5-` and the base64 of the MD5 of the bytes.
pub fn digest(data: &[u8]) -> String {
    format!("md5-{}", STANDARD.encode(Md5::digest(data)))
}

/// CouchDB's `[attachments] compressible_types` default: contents of these
/// types are stored gzip-encoded.
pub const COMPRESSIBLE_TYPES: &[&str] = &[
    "text/*",
    "application/javascript",
    "application/json",
    "application/xml",
];

/// CouchDB's `[attachments] compression_level` default (0 turns it off).
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 8;

/// Whether a content type is one CouchDB stores compressed (parameters
/// such as `; charset=utf-8` are ignored, `type/*` matches any subtype).
pub fn is_compressible(content_type: &str) -> bool {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    COMPRESSIBLE_TYPES
        .iter()
        .any(|pat| match pat.strip_suffix('*') {
            Some(prefix) => ct.starts_with(prefix),
            None => ct == *pat,
        })
}

/// gzip-encodes `data` at `level` (1–9).
pub fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    enc.write_all(data).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

/// Decodes gzip content; corrupt input is a 400, as it came from a client.
pub fn gunzip(data: &[u8]) -> CouchResult<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|_| CouchError::bad_request("Attachment is not valid gzip content"))?;
    Ok(out)
}

/// Parses a document's `_attachments` member.
pub fn parse(v: &Value) -> CouchResult<Vec<(String, Incoming)>> {
    let map = v
        .as_object()
        .ok_or_else(|| CouchError::bad_request("_attachments must be a JSON object"))?;
    map.iter()
        .map(|(name, att)| {
            validate_name(name)?;
            let att = att.as_object().ok_or_else(|| {
                CouchError::bad_request(format!("Attachment {name} must be a JSON object"))
            })?;
            if att.get("stub") == Some(&Value::Bool(true)) {
                let digest = att.get("digest").and_then(Value::as_str).map(String::from);
                return Ok((name.clone(), Incoming::Stub { digest }));
            }
            if att.get("follows") == Some(&Value::Bool(true)) {
                // A multipart/related body has taken its parts out already.
                return Err(CouchError::bad_request(format!(
                    "Attachment {name} says it follows, but the request is not multipart/related"
                )));
            }
            let data = att.get("data").and_then(Value::as_str).ok_or_else(|| {
                CouchError::bad_request(format!("Attachment {name} has no data or stub"))
            })?;
            let data = decode_base64(data).ok_or_else(|| {
                CouchError::bad_request(format!("Invalid attachment data for {name}"))
            })?;
            let content_type = att
                .get("content_type")
                .and_then(Value::as_str)
                .unwrap_or("application/octet-stream")
                .to_string();
            Ok((name.clone(), Incoming::Data { content_type, data }))
        })
        .collect()
}

/// Base64 as clients send it (padding optional, whitespace tolerated).
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(clean).ok()
}

pub fn encode_base64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Attachment names may not start with `_` (CouchDB reserves them).
pub fn validate_name(name: &str) -> CouchResult<()> {
    if name.is_empty() || name.starts_with('_') {
        return Err(CouchError::bad_request(format!(
            "Attachment name '{name}' starts with prohibited character '_'"
        )));
    }
    Ok(())
}

/// The stubs of a stored body's `_attachments`.
pub fn stubs(body: &Map<String, Value>) -> Vec<(String, Meta)> {
    body.get("_attachments")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(n, v)| Meta::from_stub(v).map(|meta| (n.clone(), meta)))
                .collect()
        })
        .unwrap_or_default()
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Full,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses `Range: bytes=a-b`, `bytes=a-` and `bytes=-n` (one range; a list
/// is answered in full, as CouchDB does).
pub fn parse_range(header: Option<&str>, len: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Range::Full;
    };
    if spec.contains(',') {
        return Range::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    // `bytes=0-` asks for everything: CouchDB answers it as no range (200).
    if b.is_empty() && a.parse::<u64>() == Ok(0) {
        return Range::Full;
    }
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, false) => b.parse::<u64>().ok().map(|n| {
            if n == 0 || len == 0 {
                None
            } else {
                Some((len.saturating_sub(n), len - 1))
            }
        }),
        (false, _) => a.parse::<u64>().ok().map(|start| {
            let end = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                b.parse::<u64>().ok()?.min(len.saturating_sub(1))
            };
            (start < len && start <= end).then_some((start, end))
        }),
        (true, true) => None,
    };
    match parsed {
        None => Range::Full,
        Some(None) => Range::Unsatisfiable,
        Some(Some((s, e))) => Range::Part(s, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_couchdb() {
        // CouchDB's digest of "Hello, World!".
        assert_eq!(digest(b"Hello, World!"), "md5-ZajifYh5KDgxtmS9i38K1A==");
        assert_eq!(digest(b""), "md5-1B2M2Y8AsgTpgAmY7PhCfg==");
    }

    #[test]
    fn parse_forms() {
        let v = json!({
            "a.txt": {"content_type": "text/plain", "data": "aGVsbG8="},
            "b.bin": {"stub": true, "digest": "md5-x"},
            "c": {"data": "aGVsbG8"}
        });
        let p = parse(&v).unwrap();
        assert_eq!(
            p[0].1,
            Incoming::Data {
                content_type: "text/plain".into(),
                data: b"hello".to_vec()
            }
        );
        assert_eq!(
            p[1].1,
            Incoming::Stub {
                digest: Some("md5-x".into())
            }
        );
        assert!(matches!(&p[2].1, Incoming::Data { data, .. } if data == b"hello"));
        for bad in [
            json!({"x": {"data": "!!!"}}),
            json!({"x": {"content_type": "a"}}),
            json!({"_x": {"data": ""}}),
            json!({"x": 5}),
            json!([1]),
        ] {
            assert_eq!(parse(&bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn compression() {
        for (ct, want) in [
            ("text/plain", true),
            ("text/html; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/xml", true),
            ("application/javascript", true),
            ("application/octet-stream", false),
            ("image/png", false),
            ("application/jsonx", false),
            ("", false),
        ] {
            assert_eq!(is_compressible(ct), want, "{ct}");
        }
        let text = "all work and no play ".repeat(500).into_bytes();
        let gz = gzip(&text, DEFAULT_COMPRESSION_LEVEL);
        assert!(gz.len() < text.len() / 10);
        assert_eq!(gunzip(&gz).unwrap(), text);
        assert_eq!(gunzip(b"not gzip").unwrap_err().status, 400);
    }

    #[test]
    fn ranges() {
        let cases = [
            (None, Range::Full),
            (Some("bytes=0-3"), Range::Part(0, 3)),
            (Some("bytes=5-"), Range::Part(5, 9)),
            (Some("bytes=0-"), Range::Full),
            (Some("bytes=-4"), Range::Part(6, 9)),
            (Some("bytes=8-100"), Range::Part(8, 9)),
            (Some("bytes=10-"), Range::Unsatisfiable),
            (Some("bytes=5-2"), Range::Unsatisfiable),
            (Some("bytes=-0"), Range::Unsatisfiable),
            (Some("bytes=0-1,3-4"), Range::Full),
            (Some("items=0-1"), Range::Full),
        ];
        for (h, want) in cases {
            assert_eq!(parse_range(h, 10), want, "{h:?}");
        }
    }

    #[test]
    fn stubs_round_trip() {
        let m = Meta {
            content_type: "a/b".into(),
            digest: "md5-x".into(),
            length: 3,
            revpos: 2,
        };
        assert_eq!(Meta::from_stub(&m.to_stub()), Some(m.clone()));
        let body = json!({"_attachments": {"f": m.to_stub()}});
        assert_eq!(stubs(body.as_object().unwrap()), vec![("f".to_string(), m)]);
    }
}
