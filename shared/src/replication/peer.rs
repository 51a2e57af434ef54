//! One end of a replication, spoken to over CouchDB's HTTP API.
//!
//! [`Peer`] holds the protocol (which endpoint, which parameters, how to
//! read the answers); a [`Transport`] only carries requests. The actor has
//! two transports — a database actor on this server, and `fetch` to a URL
//! — and native tests have one over the database engine itself, so the
//! whole protocol runs in `cargo test`.

use super::params::RepFilter;
use crate::error::CouchError;
use crate::http::encode_segment;
use serde_json::{json, Map, Value};
use std::cell::Cell;
use std::fmt;

/// A request to a peer, relative to its database (or to its server root).
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRequest {
    pub method: &'static str,
    /// Path below the database (`_changes`, `_local/x`, `` for the
    /// database itself), already percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// True for a request to the server root (`GET /`) instead.
    pub root: bool,
    pub accept_json: bool,
    pub body: Option<Vec<u8>>,
}

impl PeerRequest {
    pub fn new(method: &'static str, path: impl Into<String>) -> Self {
        PeerRequest {
            method,
            path: path.into(),
            query: Vec::new(),
            root: false,
            accept_json: true,
            body: None,
        }
    }

    pub fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_string(), v.into()));
        self
    }

    pub fn json(mut self, v: &Value) -> Self {
        self.body = Some(v.to_string().into_bytes());
        self
    }

    /// `?a=b&c=d`, or nothing.
    pub fn query_string(&self) -> String {
        if self.query.is_empty() {
            return String::new();
        }
        let mut s = form_urlencoded::Serializer::new(String::from("?"));
        for (k, v) in &self.query {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeerResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl PeerResponse {
    pub fn json(&self) -> Result<Value, RepError> {
        serde_json::from_slice(&self.body)
            .map_err(|_| RepError::transient("bad_response", "the peer answered with invalid JSON"))
    }
}

/// Why a replication step failed. `transient` errors (network, 5xx,
/// timeouts) are retried with backoff; the rest need a changed job, but a
/// `_replicator` job retries them too, as CouchDB's scheduler does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepError {
    pub status: u16,
    pub error: String,
    pub reason: String,
    pub transient: bool,
}

impl RepError {
    pub fn transient(error: &str, reason: impl Into<String>) -> Self {
        RepError {
            status: 500,
            error: error.into(),
            reason: reason.into(),
            transient: true,
        }
    }

    pub fn new(status: u16, error: &str, reason: impl Into<String>) -> Self {
        RepError {
            status,
            error: error.into(),
            reason: reason.into(),
            transient: status >= 500 || status == 408 || status == 429,
        }
    }

    /// An error answer from a peer.
    pub fn from_response(r: &PeerResponse, what: &str) -> Self {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let error = body["error"].as_str().unwrap_or("http_error").to_string();
        let reason = body["reason"]
            .as_str()
            .map(|s| format!("{what}: {s}"))
            .unwrap_or_else(|| format!("{what}: HTTP {}", r.status));
        RepError::new(r.status, &error, reason)
    }

    pub fn to_couch(&self) -> CouchError {
        CouchError::new(self.status, self.error.clone(), self.reason.clone())
    }

    /// `{error}: {reason}` as `_scheduler` shows the last error.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.error, self.reason)
    }
}

impl fmt::Display for RepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.error, self.reason)
    }
}

/// Carries requests to one database.
#[allow(async_fn_in_trait)]
pub trait Transport {
    async fn send(&self, req: PeerRequest) -> Result<PeerResponse, RepError>;
}

/// One change from the source's feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: String,
    pub seq: Value,
    pub revs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangesBatch {
    pub changes: Vec<Change>,
    /// Rows the feed returned before client-side filtering (`selector`).
    pub rows_seen: usize,
    pub last_seq: Value,
    pub pending: Option<u64>,
}

/// The protocol spoken to one database over a transport.
pub struct Peer<T> {
    pub transport: T,
    /// Cleared after the peer answers `_bulk_get` with 404/405/400-style
    /// "unknown endpoint": fetches then use `open_revs` GETs.
    bulk_get: Cell<bool>,
}

/// Documents fetched for writing, and how many revisions were asked for.
pub struct Fetched {
    pub docs: Vec<Value>,
    pub read: u64,
}

impl<T: Transport> Peer<T> {
    pub fn new(transport: T) -> Self {
        Peer {
            transport,
            bulk_get: Cell::new(true),
        }
    }

    async fn call(&self, req: PeerRequest, what: &str) -> Result<Value, RepError> {
        let r = self.transport.send(req).await?;
        if r.status >= 400 {
            return Err(RepError::from_response(&r, what));
        }
        r.json()
    }

    /// The server's uuid (`GET /`), which names its databases in PouchDB's
    /// checkpoint ids; `None` if the server has none.
    pub async fn server_uuid(&self) -> Result<Option<String>, RepError> {
        let mut req = PeerRequest::new("GET", "");
        req.root = true;
        let v = self.call(req, "server").await?;
        Ok(v["uuid"].as_str().map(String::from))
    }

    /// The database's info, `None` if it does not exist.
    pub async fn info(&self) -> Result<Option<Value>, RepError> {
        let r = self.transport.send(PeerRequest::new("GET", "")).await?;
        match r.status {
            404 => Ok(None),
            s if s >= 400 => Err(RepError::from_response(&r, "database info")),
            _ => r.json().map(Some),
        }
    }

    /// Creates the database (`create_target`), with `create_target_params`
    /// as query parameters (`q`, `n`, `partitioned`).
    pub async fn create(&self, params: &Map<String, Value>) -> Result<(), RepError> {
        let mut req = PeerRequest::new("PUT", "");
        for (k, v) in params {
            let v = match v {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            req = req.query(k, v);
        }
        let r = self.transport.send(req).await?;
        match r.status {
            // Created meanwhile by someone else: fine.
            201 | 202 | 412 => Ok(()),
            _ => Err(RepError::from_response(&r, "creating the target")),
        }
    }

    /// One batch of changes after `since` (all leaf revisions, as the
    /// replicator needs them). `longpoll_ms` waits for the next change
    /// when there is none yet.
    pub async fn changes(
        &self,
        since: &Value,
        limit: u64,
        filter: &RepFilter,
        winning_only: bool,
        longpoll_ms: Option<u64>,
    ) -> Result<ChangesBatch, RepError> {
        let since = match since {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let mut req = PeerRequest::new("POST", "_changes")
            .query("since", since)
            .query("limit", limit.to_string());
        if !winning_only {
            req = req.query("style", "all_docs");
        }
        if let Some(ms) = longpoll_ms {
            req = req
                .query("feed", "longpoll")
                .query("timeout", ms.to_string());
        }
        req = match filter {
            RepFilter::None => req.json(&json!({})),
            RepFilter::DocIds { ids } => req
                .query("filter", "_doc_ids")
                .json(&json!({ "doc_ids": ids })),
            // Applied here to each change's winning revision: every peer
            // can serve `include_docs`, not every peer `filter=_selector`.
            RepFilter::Selector { .. } => req.query("include_docs", "true").json(&json!({})),
            RepFilter::Named { name, query_params } => {
                let mut req = req.query("filter", name.clone());
                if let Value::Object(m) = query_params {
                    for (k, v) in m {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            v => v.to_string(),
                        };
                        req = req.query(k, v);
                    }
                }
                req.json(&json!({}))
            }
        };
        let body = self.call(req, "reading the source's changes").await?;
        let selector = match filter {
            RepFilter::Selector { selector } => {
                Some(crate::selector::Selector::parse(selector).map_err(|e| {
                    RepError::new(400, "bad_request", format!("selector: {}", e.reason))
                })?)
            }
            _ => None,
        };
        let rows = body["results"].as_array().cloned().unwrap_or_default();
        let rows_seen = rows.len();
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(id) = row["id"].as_str() else {
                continue;
            };
            if let Some(sel) = &selector {
                let doc = &row["doc"];
                // Deleted documents match only selectors that match the
                // tombstone, as in CouchDB's `_selector` filter.
                if doc.is_null() || !sel.matches(doc) {
                    continue;
                }
            }
            let revs = row["changes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["rev"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            changes.push(Change {
                id: id.to_string(),
                seq: row["seq"].clone(),
                revs,
            });
        }
        Ok(ChangesBatch {
            changes,
            rows_seen,
            last_seq: body["last_seq"].clone(),
            pending: body["pending"].as_u64(),
        })
    }

    /// `_revs_diff`: the revisions of each document the peer lacks.
    pub async fn revs_diff(
        &self,
        revs: &Map<String, Value>,
    ) -> Result<Vec<(String, Vec<String>)>, RepError> {
        if revs.is_empty() {
            return Ok(Vec::new());
        }
        let req = PeerRequest::new("POST", "_revs_diff").json(&Value::Object(revs.clone()));
        let body = self.call(req, "comparing revisions on the target").await?;
        let mut out = Vec::new();
        if let Value::Object(m) = body {
            for (id, v) in m {
                let missing: Vec<String> = v["missing"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                if !missing.is_empty() {
                    out.push((id, missing));
                }
            }
        }
        Ok(out)
    }

    /// Fetches the given revisions with their history and attachments:
    /// `_bulk_get`, or `open_revs` GETs when the peer lacks `_bulk_get`.
    pub async fn fetch_revs(&self, missing: &[(String, Vec<String>)]) -> Result<Fetched, RepError> {
        let read = missing.iter().map(|(_, r)| r.len() as u64).sum();
        if missing.is_empty() {
            return Ok(Fetched {
                docs: Vec::new(),
                read,
            });
        }
        if self.bulk_get.get() {
            let docs: Vec<Value> = missing
                .iter()
                .flat_map(|(id, revs)| revs.iter().map(move |r| json!({"id": id, "rev": r})))
                .collect();
            let req = PeerRequest::new("POST", "_bulk_get")
                .query("revs", "true")
                .query("latest", "true")
                .query("attachments", "true")
                .json(&json!({ "docs": docs }));
            let r = self.transport.send(req).await?;
            if unknown_endpoint(&r) {
                self.bulk_get.set(false);
            } else if r.status >= 400 {
                return Err(RepError::from_response(&r, "fetching revisions"));
            } else {
                let body = r.json()?;
                let mut out = Vec::new();
                for res in body["results"].as_array().into_iter().flatten() {
                    for d in res["docs"].as_array().into_iter().flatten() {
                        if let Some(doc) = d.get("ok") {
                            out.push(doc.clone());
                        }
                    }
                }
                return Ok(Fetched { docs: out, read });
            }
        }
        let mut out = Vec::new();
        for (id, revs) in missing {
            let req = PeerRequest::new("GET", encode_segment(id))
                .query("open_revs", Value::from(revs.clone()).to_string())
                .query("revs", "true")
                .query("latest", "true")
                .query("attachments", "true");
            let body = self.call(req, "fetching revisions").await?;
            for d in body.as_array().into_iter().flatten() {
                if let Some(doc) = d.get("ok") {
                    out.push(doc.clone());
                }
            }
        }
        Ok(Fetched { docs: out, read })
    }

    /// `_bulk_docs` with `new_edits: false`; returns how many revisions
    /// the peer refused.
    pub async fn write(&self, docs: Vec<Value>) -> Result<u64, RepError> {
        if docs.is_empty() {
            return Ok(0);
        }
        let req =
            PeerRequest::new("POST", "_bulk_docs").json(&json!({"docs": docs, "new_edits": false}));
        let body = self.call(req, "writing to the target").await?;
        Ok(body
            .as_array()
            .map(|a| a.iter().filter(|r| r.get("error").is_some()).count() as u64)
            .unwrap_or(0))
    }

    fn local_path(id: &str) -> String {
        let name = id.strip_prefix("_local/").unwrap_or(id);
        format!("_local/{}", encode_segment(name))
    }

    /// A `_local` document, `None` if missing.
    pub async fn get_local(&self, id: &str) -> Result<Option<Value>, RepError> {
        let r = self
            .transport
            .send(PeerRequest::new("GET", Self::local_path(id)))
            .await?;
        match r.status {
            404 => Ok(None),
            s if s >= 400 => Err(RepError::from_response(&r, "reading a checkpoint")),
            _ => r.json().map(Some),
        }
    }

    /// Writes a `_local` document over revision `rev`; on a conflict
    /// (someone else wrote it meanwhile) reads the current revision and
    /// writes once more. Returns the new revision.
    pub async fn put_local(
        &self,
        id: &str,
        body: &Map<String, Value>,
        rev: Option<&str>,
    ) -> Result<String, RepError> {
        let mut rev = rev.map(String::from);
        for attempt in 0..2 {
            let mut doc = body.clone();
            doc.insert("_id".into(), json!(id));
            if let Some(r) = &rev {
                doc.insert("_rev".into(), json!(r));
            }
            let req = PeerRequest::new("PUT", Self::local_path(id)).json(&Value::Object(doc));
            let r = self.transport.send(req).await?;
            if r.status == 409 && attempt == 0 {
                rev = self
                    .get_local(id)
                    .await?
                    .and_then(|d| d["_rev"].as_str().map(String::from));
                continue;
            }
            if r.status >= 400 {
                return Err(RepError::from_response(&r, "writing a checkpoint"));
            }
            return Ok(r.json()?["rev"].as_str().unwrap_or_default().to_string());
        }
        Err(RepError::new(409, "conflict", "writing a checkpoint"))
    }
}

/// Whether the peer does not know `_bulk_get` (CouchDB before 2.0 takes
/// it for a document id and refuses the underscore).
fn unknown_endpoint(r: &PeerResponse) -> bool {
    if matches!(r.status, 404 | 405 | 501) {
        return true;
    }
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let reason = body["reason"].as_str().unwrap_or_default();
    r.status == 400 && (reason.contains("underscore") || reason.contains("_bulk_get"))
}
