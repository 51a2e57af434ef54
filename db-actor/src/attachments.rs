//! Attachments in the database actor: resolving what a write sends
//! (inline data or stubs) into stored stubs and blobs, inlining data on
//! read, the standalone `/{db}/{doc}/{att}` endpoints, and dropping
//! contents no revision references any more.

use crate::database::Database;
use crate::store::DocRecord;
use serde_json::{Map, Value};
use shared::attachments::{self as atts, Incoming, Meta, Range};
use shared::doc::IncomingDoc;
use shared::doc_read::{FollowsForm, ReadOpts};
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};
use shared::rev::Rev;
use std::collections::HashSet;

/// A write's attachments, resolved: their stubs (new ones still without
/// `revpos`) and the contents to store.
pub struct Resolved {
    pub stubs: Vec<(String, Meta)>,
    /// Names whose `revpos` is the new revision's position.
    pub new: HashSet<String>,
    /// New contents: digest, content type, bytes.
    pub blobs: Vec<(String, String, Vec<u8>)>,
}

impl Resolved {
    /// The body to store: the user's members and the stubs, with `revpos`
    /// of new attachments set to `pos`.
    pub fn stored_body(&self, body: &Map<String, Value>, pos: u64) -> Vec<u8> {
        if self.stubs.is_empty() {
            return serde_json::to_vec(body).expect("serialisable");
        }
        let mut stored = body.clone();
        let stubs: Map<String, Value> = self
            .stubs
            .iter()
            .map(|(n, m)| {
                let mut m = m.clone();
                if self.new.contains(n) {
                    m.revpos = pos;
                }
                (n.clone(), m.to_stub())
            })
            .collect();
        stored.insert("_attachments".into(), Value::Object(stubs));
        serde_json::to_vec(&stored).expect("serialisable")
    }
}

impl Database<'_> {
    /// Resolves `doc`'s `_attachments` against what the document already
    /// has: `parent` is the revision being edited (interactive writes).
    /// A stub must name an attachment of the parent, or (replication) one
    /// whose content is stored; otherwise it is 412 `missing_stub`.
    pub fn resolve_attachments(
        &self,
        id: &str,
        doc: &IncomingDoc,
        old: Option<&DocRecord>,
        parent: Option<&Rev>,
    ) -> CouchResult<Resolved> {
        let mut r = Resolved {
            stubs: vec![],
            new: HashSet::new(),
            blobs: vec![],
        };
        let empty = Value::Object(Map::new());
        let v = doc.attachments.as_ref().unwrap_or(&empty);
        if doc.attachments.is_none() && doc.raw_attachments.is_empty() {
            return Ok(r);
        }
        let known = self.known_attachments(id, old, parent)?;
        let mut incoming = atts::parse(v)?;
        for (name, content_type, data) in &doc.raw_attachments {
            incoming.retain(|(n, _)| n != name);
            incoming.push((
                name.clone(),
                Incoming::Data {
                    content_type: content_type.clone(),
                    data: data.clone(),
                },
            ));
        }
        for (name, att) in incoming {
            match att {
                Incoming::Data { content_type, data } => {
                    if data.len() as u64 > self.limits.max_attachment_size {
                        return Err(CouchError::new(413, "attachment_too_large", name));
                    }
                    let digest = atts::digest(&data);
                    r.stubs.push((
                        name.clone(),
                        Meta {
                            content_type: content_type.clone(),
                            digest: digest.clone(),
                            length: data.len() as u64,
                            revpos: 0,
                        },
                    ));
                    r.new.insert(name);
                    r.blobs.push((digest, content_type, data));
                }
                Incoming::Stub { digest } => {
                    let found = known
                        .iter()
                        .find(|(n, m)| *n == name && digest.as_ref().is_none_or(|d| *d == m.digest))
                        .map(|(_, m)| m.clone());
                    let sent = v.get(&name).and_then(Meta::from_stub);
                    let meta = match (found, sent) {
                        (Some(m), _) => m,
                        (None, Some(m)) if self.store.has_blob(&m.digest)? => m,
                        _ => {
                            return Err(CouchError::new(
                                412,
                                "missing_stub",
                                format!("Invalid attachment stub in {id} for {name}"),
                            ))
                        }
                    };
                    r.stubs.push((name, meta));
                }
            }
        }
        Ok(r)
    }

    /// A content's bytes, wherever they are kept. One in the bucket and not
    /// fetched yet reads as empty and is noted as wanted (see
    /// [`crate::remote`]); the binding fetches it and runs the request again.
    pub fn content(&self, digest: &str) -> CouchResult<Vec<u8>> {
        if let Some(data) = self.store.blob(digest)? {
            return Ok(data);
        }
        match (self.store.remote_state(digest)?, self.remote) {
            (Some(_), Some(r)) => match r.get(digest) {
                Some(data) => Ok(data.to_vec()),
                None if r.rerunnable() => Ok(Vec::new()),
                None => Err(CouchError::new(
                    503,
                    "service_unavailable",
                    "Attachment content kept in R2 cannot be inlined in a live feed; \
                     fetch it with GET /{db}/{doc}/{attachment}",
                )),
            },
            (Some(_), None) => Err(CouchError::internal(
                "attachment content is in the R2 bucket, but no ATTACHMENTS bucket is bound",
            )),
            (None, _) => Err(CouchError::internal(format!(
                "attachment content {digest} is missing"
            ))),
        }
    }

    /// Attachments a stub may refer to: the parent's, else every leaf's.
    fn known_attachments(
        &self,
        id: &str,
        old: Option<&DocRecord>,
        parent: Option<&Rev>,
    ) -> CouchResult<Vec<(String, Meta)>> {
        let Some(old) = old else {
            return Ok(vec![]);
        };
        let revs: Vec<Rev> = match parent {
            Some(p) => vec![p.clone()],
            None => old.tree.leaves().into_iter().map(|l| l.rev).collect(),
        };
        let mut out = vec![];
        for rev in revs {
            if let Some(body) = self.store.body(id, &rev)? {
                if let Ok(map) = serde_json::from_slice::<Map<String, Value>>(&body) {
                    out.extend(atts::stubs(&map));
                }
            }
        }
        Ok(out)
    }

    /// Replaces stubs by inline `data` as `attachments=true` and
    /// `atts_since` ask: only attachments newer than the newest of
    /// `atts_since` that the document has. Adds `encoding` and
    /// `encoded_length` when `att_encoding_info` asks.
    pub fn inline_attachments(
        &self,
        rec: &DocRecord,
        rev: &Rev,
        body: Vec<u8>,
        opts: &ReadOpts,
    ) -> CouchResult<Vec<u8>> {
        let inline = opts.attachments || opts.atts_since.is_some();
        if !inline && !opts.att_encoding_info {
            return Ok(body);
        }
        // Most documents have no attachments: no need to parse them.
        if memchr::memmem::find(&body, b"\"_attachments\"").is_none() {
            return Ok(body);
        }
        let Ok(mut map) = serde_json::from_slice::<Map<String, Value>>(&body) else {
            return Ok(body);
        };
        let since_pos = since_pos(rec, rev, opts);
        let Some(Value::Object(list)) = map.get_mut("_attachments") else {
            return Ok(body);
        };
        for (_, stub) in list.iter_mut() {
            let (Some(meta), Value::Object(s)) = (Meta::from_stub(stub), &mut *stub) else {
                continue;
            };
            if opts.att_encoding_info {
                if let Some((encoding, len)) = self.store.blob_encoding(&meta.digest)? {
                    s.insert("encoding".into(), Value::String(encoding));
                    s.insert("encoded_length".into(), len.into());
                }
            }
            if !inline || meta.revpos <= since_pos {
                continue;
            }
            let data = self.content(&meta.digest)?;
            s.shift_remove("stub");
            s.shift_remove("length");
            s.insert("data".into(), Value::String(atts::encode_base64(&data)));
        }
        Ok(serde_json::to_vec(&map).expect("serialisable"))
    }

    /// A rendered document as `multipart/related` wants it: stubs newer
    /// than `atts_since` become `"follows": true`, and their contents the
    /// parts after the JSON. `None` when nothing would follow.
    pub fn follows_form(&self, json: &[u8], opts: &ReadOpts) -> CouchResult<Option<FollowsForm>> {
        let mut doc: Map<String, Value> = serde_json::from_slice(json)?;
        let id = doc.get("_id").and_then(Value::as_str).unwrap_or_default();
        let rev = doc.get("_rev").map(Rev::from_json).transpose()?;
        let since_pos = match (self.store.load_doc(id)?, rev) {
            (Some(rec), Some(rev)) => since_pos(&rec, &rev, opts),
            _ => 0,
        };
        let mut parts = Vec::new();
        if let Some(Value::Object(list)) = doc.get_mut("_attachments") {
            for (name, stub) in list.iter_mut() {
                let Some(meta) = Meta::from_stub(stub) else {
                    continue;
                };
                if meta.revpos <= since_pos {
                    continue;
                }
                let data = self.content(&meta.digest)?;
                if let Value::Object(s) = stub {
                    s.shift_remove("stub");
                    s.insert("follows".into(), Value::Bool(true));
                }
                parts.push((name.clone(), meta.content_type, data));
            }
        }
        if parts.is_empty() {
            return Ok(None);
        }
        Ok(Some((serde_json::to_vec(&doc)?, parts)))
    }

    /// `GET|HEAD /{db}/{doc}/{att}`: the bytes, with `Range` support.
    pub fn get_attachment(&self, req: &Request, id: &str, name: &str) -> CouchResult<Response> {
        let rev = req.param("rev").map(Rev::lookup).transpose()?;
        let (_, json) = self.get_doc(id, rev.as_ref(), &ReadOpts::default())?;
        let doc: Map<String, Value> = serde_json::from_slice(&json)?;
        let (_, meta) = atts::stubs(&doc)
            .into_iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| CouchError::not_found("Document is missing attachment"))?;
        let etag = format!("\"{}\"", meta.digest.trim_start_matches("md5-"));
        if req.header("if-none-match") == Some(etag.as_str()) {
            return Ok(Response::empty(304).with_header("etag", etag));
        }
        let data = self.content(&meta.digest)?;
        let len = data.len() as u64;
        let base = |status: u16, body: Vec<u8>| Response {
            status,
            headers: vec![
                ("content-type".into(), meta.content_type.clone()),
                ("etag".into(), etag.clone()),
                ("accept-ranges".into(), "bytes".into()),
                ("cache-control".into(), "must-revalidate".into()),
            ],
            body,
        };
        Ok(match atts::parse_range(req.header("range"), len) {
            Range::Full => base(200, data),
            Range::Part(s, e) => base(206, data[s as usize..=e as usize].to_vec())
                .with_header("content-range", format!("bytes {s}-{e}/{len}")),
            Range::Unsatisfiable => Response::error(&CouchError::new(
                416,
                "requested_range_not_satisfiable",
                "Requested range not satisfiable",
            ))
            .with_header("content-range", format!("bytes */{len}")),
        })
    }

    /// The document a standalone attachment write edits: the current
    /// winner's body (with its stubs), or a new document.
    pub fn doc_for_attachment_write(&self, id: &str, rev: Option<Rev>) -> CouchResult<IncomingDoc> {
        let mut body = match (self.store.load_doc(id)?, &rev) {
            (Some(rec), Some(r)) if rec.tree.is_leaf(r) => self
                .store
                .body(id, r)?
                .and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok())
                .ok_or_else(CouchError::conflict)?,
            (_, Some(_)) => return Err(CouchError::conflict()),
            (Some(rec), None) if !rec.deleted => return Err(CouchError::conflict()),
            _ => Map::new(),
        };
        let attachments = body.shift_remove("_attachments");
        Ok(IncomingDoc {
            rev,
            attachments,
            body,
            ..Default::default()
        })
    }

    /// `POST /{db}/_compact`: drops attachment contents that no stored
    /// revision references. Returns how many went.
    pub fn compact_attachments(&self) -> CouchResult<usize> {
        self.transact(|| {
            let mut live = HashSet::new();
            for (id, rev) in self.store.body_keys()? {
                let Ok(rev) = rev.parse::<Rev>() else {
                    continue;
                };
                if let Some(body) = self.store.body(&id, &rev)? {
                    if let Ok(map) = serde_json::from_slice::<Map<String, Value>>(&body) {
                        live.extend(atts::stubs(&map).into_iter().map(|(_, m)| m.digest));
                    }
                }
            }
            let mut dropped = 0;
            for digest in self.store.blob_digests()? {
                if !live.contains(&digest) {
                    if self.store.delete_blob(&digest)? {
                        if let Some(r) = self.remote {
                            r.doom(&digest);
                        }
                    }
                    dropped += 1;
                }
            }
            Ok(dropped)
        })
    }
}

/// The revision position after which `atts_since` wants contents: that of
/// the newest of its revisions in `rev`'s history, as CouchDB's
/// `find_ancestor_rev_pos` (revisions the document never had count for
/// nothing, so then every attachment is sent).
fn since_pos(rec: &DocRecord, rev: &Rev, opts: &ReadOpts) -> u64 {
    let Some(since) = &opts.atts_since else {
        return 0;
    };
    rec.tree
        .ancestry(rev)
        .into_iter()
        .find(|r| since.contains(r))
        .map_or(0, |r| r.pos)
}
