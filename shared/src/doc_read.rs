//! Reading a document over HTTP, as `GET /{db}/{doc}` offers it: the
//! query options ([`ReadOpts`], also those of `_bulk_get`), the revision a
//! request names ([`request_rev`]), the `open_revs` parameter and its
//! answer (a JSON array, or CouchDB's default `multipart/mixed`), and a
//! document with its attachments as `multipart/related`.

use crate::error::{CouchError, CouchResult};
use crate::http::{Request, Response};
use crate::multipart::Attachment;
use crate::rev::Rev;
use serde_json::{json, Value};

/// A document's JSON with attachment stubs marked `follows`, and the
/// attachments' contents in order: a `multipart/related` body's parts.
pub type FollowsForm = (Vec<u8>, Vec<Attachment>);

/// Reading options of `GET /db/doc` (and `_bulk_get`, `open_revs`).
#[derive(Debug, Clone, Default)]
pub struct ReadOpts {
    pub revs: bool,
    pub revs_info: bool,
    pub conflicts: bool,
    pub deleted_conflicts: bool,
    pub local_seq: bool,
    pub latest: bool,
    /// `attachments=true`: contents inline as base64.
    pub attachments: bool,
    /// `atts_since`: contents only of attachments newer than these revs.
    pub atts_since: Option<Vec<Rev>>,
    /// `att_encoding_info=true`: stubs of contents stored compressed say
    /// `encoding` and `encoded_length`.
    pub att_encoding_info: bool,
}

impl ReadOpts {
    /// Whether a read asks for attachment contents (`attachments=true`,
    /// or `atts_since`, which implies it).
    pub fn wants_contents(&self) -> bool {
        self.attachments || self.atts_since.is_some()
    }

    /// The same options leaving stubs in place, for multipart answers
    /// (contents go in parts, not inline as base64).
    pub fn stubs_only(&self) -> ReadOpts {
        ReadOpts {
            attachments: false,
            atts_since: None,
            ..self.clone()
        }
    }

    pub fn from_request(req: &Request) -> CouchResult<Self> {
        let meta = req.flag("meta")?;
        Ok(ReadOpts {
            revs: req.flag("revs")?,
            revs_info: req.flag("revs_info")? || meta,
            conflicts: req.flag("conflicts")? || meta,
            deleted_conflicts: req.flag("deleted_conflicts")? || meta,
            local_seq: req.flag("local_seq")?,
            latest: req.flag("latest")?,
            attachments: req.flag("attachments")?,
            att_encoding_info: req.flag("att_encoding_info")?,
            atts_since: req
                .json_param("atts_since")?
                .map(|v| Rev::list_from_json(&v))
                .transpose()?,
        })
    }
}

/// One answer of `open_revs`.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenRev {
    Ok(Vec<u8>),
    Missing(Rev),
}

/// Parses the `rev` a request names for a document: from the body's `_rev`,
/// the `rev` parameter or `If-Match`, refusing disagreement as CouchDB does.
pub fn request_rev(req: &Request, body_rev: Option<&Rev>) -> CouchResult<Option<Rev>> {
    let query = req.param("rev").map(Rev::lookup).transpose()?;
    let explicit = match (body_rev, query) {
        (Some(b), Some(q)) if *b != q => {
            return Err(CouchError::bad_request(
                "Document rev from request body and query string have different values",
            ))
        }
        (Some(b), _) => Some(b.clone()),
        (None, q) => q,
    };
    let etag = req
        .header("if-match")
        .map(|v| Rev::lookup(v.trim().trim_matches('"')))
        .transpose()?;
    match (explicit, etag) {
        (Some(e), Some(t)) if e != t => Err(CouchError::bad_request(
            "Document rev and etag have different values",
        )),
        (e, t) => Ok(e.or(t)),
    }
}

/// The `open_revs` parameter: `all` (`None`), or a JSON list of revisions.
pub fn open_revs_param(open: &str) -> CouchResult<Option<Vec<Rev>>> {
    if open == "all" {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(open)
        .map_err(|_| CouchError::bad_request("Invalid open_revs parameter"))?;
    // CouchDB's `couch_doc:parse_revs/1` has no clause for other JSON, and
    // clients (PouchDB's suite) expect the crash it gives.
    let list = v
        .as_array()
        .ok_or_else(|| CouchError::new(500, "unknown_error", "function_clause"))?;
    list.iter()
        .map(Rev::from_json)
        .collect::<CouchResult<Vec<_>>>()
        .map(Some)
}

/// A document and its attachments' contents as `multipart/related`.
pub fn related_response(doc: &[u8], parts: &[Attachment]) -> Response {
    let boundary = format!("{:x}", boundary_for(&[OpenRev::Ok(doc.to_vec())]));
    let body = crate::multipart::write_related(&boundary, doc, parts);
    let ct = format!("multipart/related; boundary=\"{boundary}\"");
    Response {
        status: 200,
        headers: vec![("content-type".into(), ct)],
        body,
    }
}

/// `open_revs` answers as a JSON array when asked for, otherwise as CouchDB's
/// default `multipart/mixed`: one `application/json` part per revision, or a
/// nested `multipart/related` part (document, then attachment contents) for
/// a revision in `related` (as CouchDB's replicator fetches attachments).
pub fn open_revs_response(
    as_json: bool,
    answers: Vec<OpenRev>,
    related: Vec<Option<FollowsForm>>,
) -> Response {
    let part = |a: &OpenRev| match a {
        OpenRev::Ok(doc) => {
            let mut v = b"{\"ok\":".to_vec();
            v.extend_from_slice(doc);
            v.push(b'}');
            v
        }
        OpenRev::Missing(r) => {
            serde_json::to_vec(&json!({"missing": r.to_string()})).expect("json")
        }
    };
    if as_json {
        let mut out = b"[".to_vec();
        for (i, a) in answers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend(part(a));
        }
        out.push(b']');
        return Response::raw_json(200, out);
    }
    let boundary = format!("{:x}", boundary_for(&answers));
    let mut body = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if let Some(Some((doc, parts))) = related.get(i) {
            let inner = format!("{:x}", boundary_for(&[OpenRev::Ok(doc.clone())]));
            body.extend_from_slice(
                format!("Content-Type: multipart/related; boundary=\"{inner}\"\r\n\r\n").as_bytes(),
            );
            body.extend(crate::multipart::write_related(&inner, doc, parts));
            body.extend_from_slice(b"\r\n");
            continue;
        }
        body.extend_from_slice(b"Content-Type: application/json");
        let json = match a {
            OpenRev::Ok(doc) => doc.clone(),
            OpenRev::Missing(r) => {
                body.extend_from_slice(b"; error=\"true\"");
                serde_json::to_vec(&json!({"missing": r.to_string()})).expect("json")
            }
        };
        body.extend_from_slice(b"\r\n\r\n");
        body.extend(json);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--").as_bytes());
    Response {
        status: 200,
        headers: vec![(
            "content-type".into(),
            format!("multipart/mixed; boundary=\"{boundary}\""),
        )],
        body,
    }
}

/// A boundary that cannot occur in the parts: derived from their content.
pub fn boundary_for(answers: &[OpenRev]) -> u128 {
    let mut h: u128 = 0xcbf2_9ce4_8422_2325;
    for a in answers {
        let bytes: &[u8] = match a {
            OpenRev::Ok(d) => d,
            OpenRev::Missing(r) => r.hash.as_bytes(),
        };
        for b in bytes {
            h = (h ^ u128::from(*b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
        }
    }
    h
}
