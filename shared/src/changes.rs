//! `_changes`: its options, and its pages as they go on the wire (a
//! `normal`/`longpoll` body, or the framing of a live feed).

use crate::error::{CouchError, CouchResult};
use crate::http::Request;
use crate::selector::Selector;
use crate::seq::{instance_tag, parse_since, since_from_json, Since};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Normal,
    Longpoll,
    Continuous,
    EventSource,
    /// `feed=websocket` (a Settee extension): rows as WebSocket messages.
    WebSocket,
}

/// Which documents a feed reports.
#[derive(Debug, Clone)]
pub enum Filter {
    All,
    /// `filter=_doc_ids`
    DocIds(Vec<String>),
    /// `filter=_design`: design documents only.
    Design,
    /// `filter=_selector`: documents whose winning revision a Mango
    /// selector matches.
    Selector(Selector),
    /// `filter=ddoc/name`: a JavaScript filter function, called with each
    /// document and `req` (the request's `query`, `method` and `userCtx`).
    Js {
        ddoc: String,
        name: String,
        req: Value,
    },
    /// `filter=_view&view=ddoc/name`: documents the view's map emits for.
    View {
        ddoc: String,
        name: String,
    },
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Filter::All, Filter::All) | (Filter::Design, Filter::Design) => true,
            (Filter::DocIds(a), Filter::DocIds(b)) => a == b,
            (Filter::Selector(a), Filter::Selector(b)) => a.to_json() == b.to_json(),
            (
                Filter::Js { ddoc, name, req },
                Filter::Js {
                    ddoc: d2,
                    name: n2,
                    req: r2,
                },
            ) => (ddoc, name, req) == (d2, n2, r2),
            (Filter::View { ddoc, name }, Filter::View { ddoc: d2, name: n2 }) => {
                (ddoc, name) == (d2, n2)
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangesQuery {
    pub feed: Feed,
    pub since: Since,
    /// The incarnation tag `since` was issued by (`N-<instance>`), if any:
    /// a sequence of an earlier incarnation of the database (deleted and
    /// created again) starts from 0, as CouchDB rewinds unknown shards.
    pub since_instance: Option<String>,
    pub limit: Option<u64>,
    pub descending: bool,
    pub include_docs: bool,
    pub conflicts: bool,
    /// With `include_docs`: attachment contents inline, and encoding info.
    pub attachments: bool,
    pub att_encoding_info: bool,
    /// `style=all_docs`: every leaf, not just the winner.
    pub all_leaves: bool,
    pub filter: Filter,
    /// Milliseconds between heartbeat newlines while waiting.
    pub heartbeat: Option<u64>,
    /// Milliseconds to wait for a change before answering.
    pub timeout: Option<u64>,
    /// Set by the database, never from the request: a reader whose view
    /// of documents is redacted (see `replication::docs`).
    pub redact_for: Option<crate::user::UserCtx>,
}

/// CouchDB's default wait of a long-poll with neither heartbeat nor timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

impl ChangesQuery {
    /// The query of a WebSocket subscription, from the parameters it
    /// keeps: it never ends by `limit`.
    pub fn for_subscription(params: &str) -> CouchResult<ChangesQuery> {
        let q = ChangesQuery::from_request(&Request::new("GET", "/", params), None)?;
        Ok(ChangesQuery { limit: None, ..q })
    }

    pub fn from_request(req: &Request, body: Option<&Map<String, Value>>) -> CouchResult<Self> {
        let feed = match req.param("feed").unwrap_or("normal") {
            "normal" => Feed::Normal,
            "longpoll" => Feed::Longpoll,
            "continuous" => Feed::Continuous,
            "eventsource" => Feed::EventSource,
            "websocket" => Feed::WebSocket,
            other => {
                return Err(CouchError::bad_request(format!(
                    "Supported `feed` types: normal, continuous, longpoll, eventsource, websocket; got {other}"
                )))
            }
        };
        // An event source resuming after a dropped connection sends the
        // last `id:` it saw; it overrides `since`, as in CouchDB. In the query
        // `last-event-id` is another name for `since` (the later one wins).
        let query_since = req
            .query
            .iter()
            .rev()
            .find(|(n, _)| n == "since" || n == "last-event-id")
            .map(|(_, v)| v.as_str());
        let (since, raw_since) = match (
            req.header("last-event-id"),
            query_since,
            body.and_then(|b| b.get("since")),
        ) {
            (Some(id), _, _) => (parse_since(id)?, Some(id)),
            (None, _, Some(v)) => (since_from_json(v)?, v.as_str()),
            (None, Some(s), None) => (parse_since(s)?, Some(s)),
            (None, None, None) => (Since::Seq(0), None),
        };
        let since_instance = raw_since.and_then(instance_tag).map(str::to_string);
        // `seq_interval` lets a sharded CouchDB skip computing most rows'
        // sequences; a single actor's are free, so every row keeps its own.
        req.uint_param("seq_interval")?;
        let style = req.param("style").unwrap_or("main_only");
        if style != "main_only" && style != "all_docs" {
            return Err(CouchError::bad_request(
                "Supported `style` values: main_only, all_docs",
            ));
        }
        let heartbeat = match req.param("heartbeat") {
            None => None,
            Some("true") => Some(DEFAULT_TIMEOUT_MS),
            Some(_) => req.uint_param("heartbeat")?,
        };
        let filter = match req.param("filter") {
            None | Some("") => Filter::All,
            Some("_doc_ids") => Filter::DocIds(doc_ids(req, body)?),
            Some("_design") => Filter::Design,
            Some("_selector") => Filter::Selector(selector(req, body)?),
            Some("_view") => {
                let (ddoc, name) = design_path(req.param("view").unwrap_or(""), "view")?;
                Filter::View { ddoc, name }
            }
            Some(f) if f.starts_with('_') => {
                return Err(CouchError::bad_request(format!(
                    "unknown builtin filter name: {f}"
                )))
            }
            Some(f) => {
                let (ddoc, name) = design_path(f, "filter")?;
                let query: serde_json::Map<String, Value> = req
                    .query
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                Filter::Js {
                    ddoc,
                    name,
                    req: serde_json::json!({
                        "method": req.method,
                        "query": query,
                        "body": body.map_or(Value::String("undefined".into()), |b| Value::Object(b.clone())),
                        "userCtx": {"name": req.user.name, "roles": req.user.roles},
                    }),
                }
            }
        };
        Ok(ChangesQuery {
            feed,
            since,
            since_instance,
            limit: req.uint_param("limit")?,
            descending: req.flag("descending")?,
            include_docs: req.flag("include_docs")?,
            conflicts: req.flag("conflicts")?,
            attachments: req.flag("attachments")?,
            att_encoding_info: req.flag("att_encoding_info")?,
            all_leaves: style == "all_docs",
            filter,
            heartbeat,
            timeout: req.uint_param("timeout")?,
            redact_for: None,
        })
    }

    /// How long a long-poll waits: the timeout, else forever-ish with
    /// heartbeats, else CouchDB's default.
    pub fn wait_ms(&self) -> u64 {
        match (self.timeout, self.heartbeat) {
            (Some(t), _) => t,
            (None, Some(_)) => u64::MAX,
            (None, None) => DEFAULT_TIMEOUT_MS,
        }
    }
}

/// The `selector` of `filter=_selector`: the POST body's, or a JSON query
/// parameter.
fn selector(req: &Request, body: Option<&Map<String, Value>>) -> CouchResult<Selector> {
    let v = match body.and_then(|b| b.get("selector")) {
        Some(v) => v.clone(),
        None => req.json_param("selector")?.ok_or_else(|| {
            CouchError::bad_request("filter=_selector needs a selector in the request body")
        })?,
    };
    if !v.is_object() {
        return Err(CouchError::bad_request("Selector must be a JSON object"));
    }
    Selector::parse(&v)
}

fn doc_ids(req: &Request, body: Option<&Map<String, Value>>) -> CouchResult<Vec<String>> {
    let v = match body.and_then(|b| b.get("doc_ids")) {
        Some(v) => v.clone(),
        None => req
            .json_param("doc_ids")?
            .ok_or_else(|| CouchError::bad_request("filter=_doc_ids needs doc_ids"))?,
    };
    let ids = v.as_array().ok_or_else(|| {
        CouchError::bad_request("`doc_ids` filter parameter is not a list of doc ids.")
    })?;
    ids.iter()
        .map(|i| {
            i.as_str().map(String::from).ok_or_else(|| {
                CouchError::bad_request("`doc_ids` filter parameter is not a list of doc ids.")
            })
        })
        .collect()
}

/// `ddoc/name` (or `_design/ddoc/name`) of a filter or view parameter.
fn design_path(p: &str, what: &str) -> CouchResult<(String, String)> {
    let p = p.strip_prefix("_design/").unwrap_or(p);
    match p.split_once('/') {
        Some((d, n)) if !d.is_empty() && !n.is_empty() => Ok((d.to_string(), n.to_string())),
        _ => Err(CouchError::bad_request(format!(
            "`{what}` must be of the form `designname/functionname`"
        ))),
    }
}

/// A page of changes, rendered.
pub struct ChangesPage {
    /// The rows, each a JSON object.
    pub rows: Vec<Vec<u8>>,
    /// Each row's sequence string (the `id:` of an event-source event).
    pub seqs: Vec<String>,
    /// The sequence a client resumes from.
    pub last_seq: String,
    /// The same, as a number.
    pub last: u64,
    /// Changes after `last_seq` not returned.
    pub pending: u64,
}

impl ChangesPage {
    /// The body of a `normal`/`longpoll` response.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rows.iter().map(|r| r.len() + 2).sum::<usize>() + 64);
        out.extend_from_slice(b"{\"results\":[");
        for (i, r) in self.rows.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            out.extend_from_slice(r);
        }
        out.extend_from_slice(
            format!(
                "\n],\n\"last_seq\":{},\"pending\":{}}}",
                json!(self.last_seq),
                self.pending
            )
            .as_bytes(),
        );
        out
    }
}

/// How a live feed frames what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `feed=continuous`: one JSON row per line, a `last_seq` line at the end.
    Continuous,
    /// `feed=eventsource`: server-sent events with the sequence as `id`.
    EventSource,
}

impl Framing {
    pub fn content_type(self) -> &'static str {
        match self {
            Framing::Continuous => "application/json",
            Framing::EventSource => "text/event-stream",
        }
    }

    /// The rows of a page, framed.
    pub fn rows(self, page: &ChangesPage) -> Vec<u8> {
        let mut out = Vec::new();
        for (row, seq) in page.rows.iter().zip(&page.seqs) {
            match self {
                Framing::Continuous => {
                    out.extend_from_slice(row);
                    out.push(b'\n');
                }
                Framing::EventSource => {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(row);
                    out.extend_from_slice(format!("\nid: {seq}\n\n").as_bytes());
                }
            }
        }
        out
    }

    /// Sent every `heartbeat` milliseconds while nothing changes (an
    /// event-source comment, which clients ignore).
    pub fn heartbeat(self) -> &'static [u8] {
        match self {
            Framing::Continuous => b"\n",
            Framing::EventSource => b": heartbeat\n\n",
        }
    }

    /// What ends the feed.
    pub fn end(self, last_seq: &str, pending: u64) -> Vec<u8> {
        match self {
            Framing::Continuous => format!(
                "{{\"last_seq\":{},\"pending\":{pending}}}\n",
                json!(last_seq)
            )
            .into_bytes(),
            Framing::EventSource => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(qs: &str) -> CouchResult<ChangesQuery> {
        ChangesQuery::from_request(&Request::new("GET", "/db/_changes", qs), None)
    }

    #[test]
    fn parses() {
        let c = q("feed=longpoll&since=now&limit=5&style=all_docs&heartbeat=1000").unwrap();
        assert_eq!(c.feed, Feed::Longpoll);
        assert_eq!(c.since, Since::Now);
        assert_eq!(c.limit, Some(5));
        assert!(c.all_leaves);
        assert_eq!(c.wait_ms(), u64::MAX);
        assert_eq!(q("").unwrap().wait_ms(), DEFAULT_TIMEOUT_MS);
        assert_eq!(q("timeout=10").unwrap().wait_ms(), 10);
        let c = q("filter=_doc_ids&doc_ids=%5B%22a%22%5D").unwrap();
        assert_eq!(c.filter, Filter::DocIds(vec!["a".into()]));
        let body = json!({"doc_ids": ["b"], "since": 3});
        let c = ChangesQuery::from_request(
            &Request::new("POST", "/db/_changes", "filter=_doc_ids"),
            body.as_object(),
        )
        .unwrap();
        assert_eq!(c.filter, Filter::DocIds(vec!["b".into()]));
        assert_eq!(c.since, Since::Seq(3));
        let resumed = Request::new("GET", "/db/_changes", "feed=eventsource&since=1")
            .with_header("last-event-id", "7-abc");
        assert_eq!(
            ChangesQuery::from_request(&resumed, None).unwrap().since,
            Since::Seq(7)
        );
        assert_eq!(q("last-event-id=4").unwrap().since, Since::Seq(4));
        assert_eq!(q("since=2&last-event-id=4").unwrap().since, Since::Seq(4));
        assert_eq!(q("last-event-id=4&since=2").unwrap().since, Since::Seq(2));
        assert!(q("seq_interval=100").is_ok());
        let c = q("filter=_selector&selector=%7B%22a%22%3A1%7D").unwrap();
        assert!(matches!(c.filter, Filter::Selector(_)));
    }

    #[test]
    fn rejects() {
        for bad in [
            "feed=x",
            "style=x",
            "limit=x",
            "filter=_doc_ids",
            "filter=_doc_ids&doc_ids=%5B1%5D",
            "since=abc",
            "seq_interval=x",
            "filter=_selector",
            "filter=_selector&selector=%5B%5D",
        ] {
            assert_eq!(q(bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
