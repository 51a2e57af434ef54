//! Documents: ids, the special `_` members, and rendering stored bodies.

use crate::error::{CouchError, CouchResult};
use crate::rev::Rev;
use serde_json::{Map, Value};

pub const DESIGN_PREFIX: &str = "_design/";
pub const LOCAL_PREFIX: &str = "_local/";

/// Special members a client may send; CouchDB ignores the read-only ones on
/// write and rejects any other `_` member.
const IGNORED_SPECIALS: &[&str] = &[
    "_revs_info",
    "_conflicts",
    "_deleted_conflicts",
    "_local_seq",
];

/// Members of `_replicator` documents that CouchDB keeps in the body as
/// they are (the scheduler writes a finished job's state back into them).
const KEPT_SPECIALS: &[&str] = &[
    "_replication_id",
    "_replication_state",
    "_replication_state_time",
    "_replication_state_reason",
    "_replication_stats",
];

/// Whether a `_` member is one CouchDB keeps in the body.
pub fn is_kept_special(k: &str) -> bool {
    KEPT_SPECIALS.contains(&k)
}

/// Validates a document id as CouchDB does.
pub fn validate_id(id: &str) -> CouchResult<()> {
    if id.is_empty() {
        return Err(CouchError::illegal_docid("Document id must not be empty"));
    }
    if id.starts_with('_') && !(id.starts_with(DESIGN_PREFIX) || id.starts_with(LOCAL_PREFIX)) {
        return Err(CouchError::illegal_docid(
            "Only reserved document ids may start with underscore.",
        ));
    }
    if id == DESIGN_PREFIX || id == LOCAL_PREFIX {
        return Err(CouchError::illegal_docid("Document id must not be empty"));
    }
    Ok(())
}

/// The answer to a path whose segment `index` (0 is the database) does not
/// percent-decode to UTF-8: CouchDB refuses such names rather than guess.
pub fn invalid_utf8_segment(path: &[String], index: usize) -> CouchError {
    let id_segments = match path.get(1).map(String::as_str) {
        Some("_design" | "_local") => 2,
        _ => 1,
    };
    match index {
        0 => CouchError::new(
            400,
            "illegal_database_name",
            "Database name must be a valid UTF-8 string",
        ),
        i if i <= id_segments => {
            CouchError::illegal_docid("Document id must be a valid UTF-8 string")
        }
        _ => CouchError::bad_request("Attachment name is not UTF-8 encoded"),
    }
}

pub fn is_local(id: &str) -> bool {
    id.starts_with(LOCAL_PREFIX)
}

pub fn is_design(id: &str) -> bool {
    id.starts_with(DESIGN_PREFIX)
}

/// A document as a client sent it, split into its special members and body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncomingDoc {
    pub id: Option<String>,
    pub rev: Option<Rev>,
    pub deleted: bool,
    pub revisions: Option<Value>,
    /// `_attachments` as sent (resolved against storage when written).
    pub attachments: Option<Value>,
    /// Attachment contents sent outside the JSON (`PUT /db/doc/att`):
    /// `(name, content type, bytes)`, replacing any of the same name.
    pub raw_attachments: Vec<(String, String, Vec<u8>)>,
    /// The user's members, in the order sent.
    pub body: Map<String, Value>,
}

impl IncomingDoc {
    /// Splits a JSON value into an [`IncomingDoc`], rejecting what CouchDB rejects.
    pub fn parse(value: Value) -> CouchResult<IncomingDoc> {
        let Value::Object(map) = value else {
            return Err(CouchError::bad_request("Document must be a JSON object"));
        };
        let mut doc = IncomingDoc::default();
        for (k, v) in map {
            if !k.starts_with('_') {
                doc.body.insert(k, v);
                continue;
            }
            match k.as_str() {
                "_id" => match v {
                    Value::String(s) => doc.id = Some(s),
                    _ => return Err(CouchError::illegal_docid("Document id must be a string")),
                },
                "_rev" => doc.rev = Some(Rev::from_json(&v)?),
                "_deleted" if v.is_boolean() => doc.deleted = v == Value::Bool(true),
                "_revisions" if v.is_object() => {
                    check_revisions(&v)?;
                    doc.revisions = Some(v)
                }
                "_attachments" => doc.attachments = Some(v),
                k if IGNORED_SPECIALS.contains(&k) => {}
                k if KEPT_SPECIALS.contains(&k) => {
                    doc.body.insert(k.to_string(), v);
                }
                _ => {
                    return Err(CouchError::doc_validation(format!(
                        "Bad special document member: {k}"
                    )))
                }
            }
        }
        Ok(doc)
    }

    /// The body as stored: compact JSON of the user's members.
    pub fn body_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body).expect("serialisable")
    }

    /// `PUT /{db}/{doc}/{att}`: the attachment's contents replace any
    /// attachment of that name.
    pub fn put_attachment(&mut self, name: &str, content_type: &str, bytes: Vec<u8>) {
        self.attachment_map().shift_remove(name);
        self.raw_attachments
            .push((name.to_string(), content_type.to_string(), bytes));
    }

    /// `DELETE /{db}/{doc}/{att}`: 404 if the revision has no such
    /// attachment.
    pub fn delete_attachment(&mut self, name: &str) -> CouchResult<()> {
        match self.attachment_map().shift_remove(name) {
            Some(_) => Ok(()),
            None => Err(CouchError::not_found("Document is missing attachment")),
        }
    }

    /// `_attachments` as an object (made empty if it was not one).
    fn attachment_map(&mut self) -> &mut Map<String, Value> {
        if !matches!(self.attachments, Some(Value::Object(_))) {
            self.attachments = Some(Value::Object(Map::new()));
        }
        match &mut self.attachments {
            Some(Value::Object(m)) => m,
            _ => unreachable!("made an object above"),
        }
    }
}

/// `_revisions` as `couch_doc:transfer_fields/2` checks it.
fn check_revisions(v: &Value) -> CouchResult<()> {
    let start = v.get("start");
    let ids = v.get("ids");
    if !start.is_some_and(|s| s.is_u64() || s.is_i64()) {
        return Err(CouchError::doc_validation(
            "_revisions.start isn't an integer.",
        ));
    }
    let Some(ids) = ids.and_then(Value::as_array) else {
        return Err(CouchError::doc_validation("_revisions.ids isn't a array."));
    };
    if !ids.iter().all(Value::is_string) {
        return Err(CouchError::doc_validation("RevId isn't a string"));
    }
    Ok(())
}

/// Renders a stored document: `_id`, `_rev`, `_deleted` and any extra members
/// spliced around the stored body bytes without re-parsing them.
pub fn render(
    id: &str,
    rev: &str,
    deleted: bool,
    body: &[u8],
    extras: &[(&str, Value)],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + id.len() + rev.len() + 40);
    out.extend_from_slice(b"{\"_id\":");
    serde_json::to_writer(&mut out, id).expect("string");
    out.extend_from_slice(b",\"_rev\":");
    serde_json::to_writer(&mut out, rev).expect("string");
    if deleted {
        out.extend_from_slice(b",\"_deleted\":true");
    }
    let inner = body_inner(body);
    if !inner.is_empty() {
        out.push(b',');
        out.extend_from_slice(inner);
    }
    for (k, v) in extras {
        out.push(b',');
        serde_json::to_writer(&mut out, k).expect("string");
        out.push(b':');
        serde_json::to_writer(&mut out, v).expect("value");
    }
    out.push(b'}');
    out
}

/// The members of a compact JSON object, without its braces.
fn body_inner(body: &[u8]) -> &[u8] {
    let trimmed = body.trim_ascii();
    if trimmed.len() >= 2 && trimmed[0] == b'{' && trimmed[trimmed.len() - 1] == b'}' {
        trimmed[1..trimmed.len() - 1].trim_ascii()
    } else {
        &[]
    }
}

/// COPY's `Destination` header: a document id (percent-encoded, as in a
/// path) and optionally `?rev=` of the document it overwrites. CouchDB refuses
/// absolute URLs rather than guess which server they name.
pub fn copy_destination(header: Option<&str>) -> CouchResult<(String, Option<Rev>)> {
    let dest = header
        .ok_or_else(|| CouchError::bad_request("Destination header is mandatory for COPY."))?;
    let lower = dest.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err(CouchError::bad_request("Destination URL must be relative."));
    }
    let (id, rev) = match dest.split_once('?') {
        Some((id, qs)) => {
            let rev = qs.split_once('=').map_or(qs, |(_, r)| r);
            (id, Some(rev.parse::<Rev>()?))
        }
        None => (dest, None),
    };
    let id = crate::http::split_path(id).join("/");
    validate_id(&id)?;
    Ok((id, rev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_edits_of_one_revision() {
        let mut doc = IncomingDoc::parse(json!({
            "_attachments": {"a.txt": {"stub": true}, "b.txt": {"stub": true}}
        }))
        .unwrap();
        doc.put_attachment("a.txt", "text/plain", b"new".to_vec());
        doc.delete_attachment("b.txt").unwrap();
        assert_eq!(doc.attachments, Some(json!({})));
        assert_eq!(
            doc.raw_attachments,
            vec![("a.txt".into(), "text/plain".into(), b"new".to_vec())]
        );
        let e = doc.delete_attachment("b.txt").unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (404, "Document is missing attachment")
        );
        let mut bare = IncomingDoc::default();
        bare.put_attachment("x", "a/b", vec![]);
        assert_eq!(bare.attachments, Some(json!({})));
    }
    use serde_json::json;

    #[test]
    fn ids() {
        for ok in ["a", "_design/x", "_local/y", "a/b", "é"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_foo", "_design/", "_local/", "_all_docs"] {
            let e = validate_id(bad).unwrap_err();
            assert_eq!(
                (e.status, e.error.as_str()),
                (400, "illegal_docid"),
                "{bad}"
            );
        }
    }

    #[test]
    fn parse_specials() {
        let d = IncomingDoc::parse(json!({
            "_id": "x", "_rev": "1-a", "_deleted": true, "b": 1, "a": 2, "_conflicts": []
        }))
        .unwrap();
        assert_eq!(d.id.as_deref(), Some("x"));
        assert_eq!(d.rev, Some(Rev::new(1, "a")));
        assert!(d.deleted);
        assert_eq!(
            String::from_utf8(d.body_json()).unwrap(),
            r#"{"b":1,"a":2}"#
        );

        let e = IncomingDoc::parse(json!({"_foo": 1})).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (400, "Bad special document member: _foo")
        );
        assert_eq!(IncomingDoc::parse(json!([1])).unwrap_err().status, 400);
        for bad in [
            json!({"_deleted": "yes"}),
            json!({"_deleted": 1}),
            json!({"_deleted": null}),
            json!({"_revisions": {"start": "x", "ids": ["a"]}}),
            json!({"_revisions": {"start": 1, "ids": "a"}}),
            json!({"_revisions": {"start": 1, "ids": [1]}}),
            json!({"_revisions": []}),
        ] {
            let e = IncomingDoc::parse(bad.clone()).unwrap_err();
            assert_eq!(
                (e.status, e.error.as_str()),
                (400, "doc_validation"),
                "{bad}"
            );
        }
        let r = IncomingDoc::parse(json!({"_replication_state": "completed",
            "_replication_id": "x", "_replication_stats": {"docs_written": 1}, "source": "a"}))
        .unwrap();
        assert_eq!(
            String::from_utf8(r.body_json()).unwrap(),
            r#"{"_replication_state":"completed","_replication_id":"x","_replication_stats":{"docs_written":1},"source":"a"}"#
        );
        assert_eq!(
            IncomingDoc::parse(json!({"_rev": "x"})).unwrap_err().reason,
            "Invalid rev format"
        );
        assert_eq!(
            IncomingDoc::parse(json!({"_id": 5})).unwrap_err().error,
            "illegal_docid"
        );
    }

    #[test]
    fn render_splices() {
        let out = render("a\"b", "1-x", false, br#"{"k":[1,2]}"#, &[]);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!({"_id": "a\"b", "_rev": "1-x", "k": [1, 2]}));
        let out = render("a", "2-y", true, b"{}", &[("_conflicts", json!(["1-z"]))]);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"_id": "a", "_rev": "2-y", "_deleted": true, "_conflicts": ["1-z"]})
        );
    }

    #[test]
    fn copy_destination_is_a_relative_id() {
        assert_eq!(copy_destination(Some("b")).unwrap(), ("b".into(), None));
        assert_eq!(
            copy_destination(Some("_design/x%2Fy?rev=1-a")).unwrap(),
            ("_design/x/y".into(), Some(Rev::new(1, "a")))
        );
        for bad in [
            None,
            Some("http://h:5984/db/b"),
            Some("HTTPS://h/db/b"),
            Some("b?rev=x"),
        ] {
            assert_eq!(copy_destination(bad).unwrap_err().status, 400, "{bad:?}");
        }
    }
}
