//! `multipart/related` bodies, as CouchDB's replicator sends a document
//! with its attachments: the JSON document first, whose `_attachments`
//! entries say `"follows": true`, then one part per such attachment, in the
//! order the document lists them.

use crate::error::{CouchError, CouchResult};

/// The `boundary` parameter of a multipart content type.
pub fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// One part: its headers (lower-case names) and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

fn bad(reason: &str) -> CouchError {
    CouchError::bad_request(format!("Malformed multipart body: {reason}"))
}

/// Splits a multipart body into its parts.
pub fn parse(body: &[u8], boundary: &str) -> CouchResult<Vec<Part>> {
    let delim = format!("--{boundary}").into_bytes();
    let mut pos = find(body, &delim, 0).ok_or_else(|| bad("no opening boundary"))? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        let start = pos
            + if body[pos..].starts_with(b"\r\n") {
                2
            } else {
                0
            };
        let next_delim = [b"\r\n".as_slice(), &delim].concat();
        let end = find(body, &next_delim, start).ok_or_else(|| bad("no closing boundary"))?;
        parts.push(parse_part(&body[start..end])?);
        pos = end + next_delim.len();
    }
}

fn parse_part(raw: &[u8]) -> CouchResult<Part> {
    let (head, body) = match find(raw, b"\r\n\r\n", 0) {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None if raw.starts_with(b"\r\n") => (&raw[..0], &raw[2..]),
        None => return Err(bad("a part has no header end")),
    };
    let headers = String::from_utf8_lossy(head)
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Part {
        headers,
        body: body.to_vec(),
    })
}

/// A document sent as `multipart/related`: its JSON (without the
/// `follows` entries) and the attachments that followed it, as
/// `(name, content type, bytes)`. Declared lengths and digests must match.
pub type RelatedDocument = (serde_json::Value, Vec<Attachment>);

pub fn related_document(body: &[u8], content_type: &str) -> CouchResult<RelatedDocument> {
    let b = boundary(content_type).ok_or_else(|| bad("no boundary in Content-Type"))?;
    let mut parts = parse(body, &b)?.into_iter();
    let first = parts.next().ok_or_else(|| bad("no document part"))?;
    let mut doc: serde_json::Value =
        serde_json::from_slice(&first.body).map_err(CouchError::from)?;
    let mut follows = Vec::new();
    if let Some(serde_json::Value::Object(atts)) = doc.get_mut("_attachments") {
        let names: Vec<String> = atts
            .iter()
            .filter(|(_, a)| a.get("follows") == Some(&serde_json::Value::Bool(true)))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let meta = atts.shift_remove(&name).expect("listed above");
            let part = parts
                .next()
                .ok_or_else(|| bad(&format!("no part for attachment {name}")))?;
            let gzipped = meta.get("encoding").and_then(serde_json::Value::as_str) == Some("gzip");
            // Sent encoded (CouchDB's replicator does so for what it stores
            // compressed), `encoded_length` and `digest` describe the
            // encoded bytes and `length` the decoded ones.
            let sent_len = if gzipped { "encoded_length" } else { "length" };
            if let Some(len) = meta.get(sent_len).and_then(serde_json::Value::as_u64) {
                if len != part.body.len() as u64 {
                    return Err(CouchError::bad_request(format!(
                        "Attachment {name} is {} bytes, not the {len} declared",
                        part.body.len()
                    )));
                }
            }
            if let Some(d) = meta.get("digest").and_then(serde_json::Value::as_str) {
                if d != crate::attachments::digest(&part.body) {
                    return Err(CouchError::bad_request(format!(
                        "Attachment {name} does not match its digest"
                    )));
                }
            }
            let data = if gzipped {
                crate::attachments::gunzip(&part.body)?
            } else {
                part.body
            };
            let ct = meta
                .get("content_type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("application/octet-stream")
                .to_string();
            follows.push((name, ct, data));
        }
    }
    Ok((doc, follows))
}

/// An attachment sent as a part of its own: name, content type, bytes.
pub type Attachment = (String, String, Vec<u8>);

/// Writes a `multipart/related` body as CouchDB's `couch_doc` does: the
/// JSON document, then each attachment's bytes under its
/// `Content-Disposition`, `Content-Type` and `Content-Length`.
pub fn write_related(boundary: &str, doc: &[u8], attachments: &[Attachment]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: application/json\r\n\r\n").as_bytes(),
    );
    out.extend_from_slice(doc);
    for (name, content_type, data) in attachments {
        let name = name.replace('\\', "\\\\").replace('"', "\\\"");
        out.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                data.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(data);
    }
    out.extend_from_slice(format!("\r\n--{boundary}--").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(
            boundary("multipart/related; boundary=\"abc\""),
            Some("abc".into())
        );
        assert_eq!(
            boundary("multipart/related;boundary=x-y"),
            Some("x-y".into())
        );
        assert_eq!(boundary("multipart/related"), None);
    }

    #[test]
    fn round_trip_and_errors() {
        let body = write_related(
            "b0",
            br#"{"_id":"x"}"#,
            &[
                ("a.txt".into(), "text/plain".into(), b"hi\r\n--b".to_vec()),
                ("b \"q\"".into(), "a/b".into(), vec![]),
            ],
        );
        let parts = parse(&body, "b0").unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].body, br#"{"_id":"x"}"#);
        assert_eq!(parts[1].body, b"hi\r\n--b");
        assert_eq!(
            parts[1].headers,
            [
                ("content-disposition", "attachment; filename=\"a.txt\""),
                ("content-type", "text/plain"),
                ("content-length", "7"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(parts[2].body, b"");
        assert_eq!(
            parts[2].headers[0].1,
            "attachment; filename=\"b \\\"q\\\"\""
        );
        assert_eq!(parse(b"no boundary here", "b0").unwrap_err().status, 400);
        assert_eq!(
            parse(b"--b0\r\nContent-Type: a\r\n\r\nunterminated", "b0")
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn related_documents() {
        let doc = br#"{"_id":"x","_attachments":{"a.txt":{"follows":true,"content_type":"text/plain","length":5},"s":{"stub":true}}}"#;
        let body = write_related(
            "zz",
            doc,
            &[("a".into(), "text/plain".into(), b"hello".to_vec())],
        );
        let (v, atts) = related_document(&body, "multipart/related; boundary=\"zz\"").unwrap();
        assert_eq!(
            atts,
            vec![("a.txt".into(), "text/plain".into(), b"hello".to_vec())]
        );
        assert!(v["_attachments"].get("a.txt").is_none());
        assert_eq!(v["_attachments"]["s"]["stub"], true);
        let lying = br#"{"_attachments":{"a":{"follows":true,"length":9}}}"#;
        let body = write_related(
            "zz",
            lying,
            &[("a".into(), "text/plain".into(), b"hello".to_vec())],
        );
        assert_eq!(
            related_document(&body, "multipart/related; boundary=zz")
                .unwrap_err()
                .status,
            400
        );
        let bad_digest = br#"{"_attachments":{"a":{"follows":true,"digest":"md5-AAAA"}}}"#;
        let body = write_related(
            "zz",
            bad_digest,
            &[("a".into(), "text/plain".into(), b"hello".to_vec())],
        );
        assert_eq!(
            related_document(&body, "multipart/related; boundary=zz")
                .unwrap_err()
                .status,
            400
        );
    }

    /// CouchDB's replicator sends what it stores compressed still encoded.
    #[test]
    fn gzip_encoded_parts_are_decoded() {
        let text = b"compressible text, compressible text".to_vec();
        let gz = crate::attachments::gzip(&text, 8);
        let doc = format!(
            r#"{{"_attachments":{{"t":{{"follows":true,"content_type":"text/plain","encoding":"gzip","length":{},"encoded_length":{},"digest":"{}"}}}}}}"#,
            text.len(),
            gz.len(),
            crate::attachments::digest(&gz)
        );
        let body = write_related(
            "zz",
            doc.as_bytes(),
            &[("t".into(), "text/plain".into(), gz)],
        );
        let (_, atts) = related_document(&body, "multipart/related; boundary=zz").unwrap();
        assert_eq!(atts[0].2, text);
    }
}
