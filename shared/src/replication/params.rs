//! A replication's parameters: the body of `POST /_replicate` or a
//! `_replicator` document, parsed and validated as CouchDB 3's
//! `couch_replicator_parse` does (same field names, same defaults, a 400
//! `bad_request` naming the offending field).

use crate::error::{CouchError, CouchResult};
use crate::http::encode_segment;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// CouchDB's default `worker_batch_size`: changes per batch.
pub const DEFAULT_BATCH_SIZE: u64 = 500;
/// CouchDB's default `checkpoint_interval`, in milliseconds.
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 30_000;

/// One end of a replication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Endpoint {
    /// A database on this server, named without a URL. CouchDB 3 dropped
    /// these ("local endpoints"); Settee keeps them because its replicator
    /// can reach a database's actor directly, without an HTTP round trip.
    Local { db: String },
    /// A database at a URL. Credentials given in the URL or in
    /// `auth.basic` become an `Authorization` header and are removed from
    /// the URL, so the URL can be shown in `_scheduler` and hashed into the
    /// replication id without them.
    Remote {
        /// The database's URL, without credentials and with a trailing `/`.
        url: String,
        /// Request headers, lower-case names, in order.
        headers: Vec<(String, String)>,
    },
}

impl Endpoint {
    /// Parses `source` or `target`: a string (URL or local name) or an
    /// object with `url`, `headers` and `auth.basic`.
    pub fn parse(field: &str, v: &Value) -> CouchResult<Endpoint> {
        let bad = |why: &str| CouchError::bad_request(format!("Invalid `{field}`: {why}"));
        let (url, headers_v, auth_v) = match v {
            Value::String(s) => (s.as_str(), None, None),
            Value::Object(o) => {
                let url = o
                    .get("url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("an object needs a string `url`"))?;
                (url, o.get("headers"), o.get("auth"))
            }
            Value::Null => {
                return Err(CouchError::bad_request(format!("`{field}` is missing")));
            }
            _ => return Err(bad("must be a string or an object")),
        };
        let mut headers = Vec::new();
        if let Some(h) = headers_v {
            let Value::Object(h) = h else {
                return Err(bad("`headers` must be an object"));
            };
            for (k, v) in h {
                let v = v
                    .as_str()
                    .ok_or_else(|| bad("header values must be strings"))?;
                headers.push((k.to_ascii_lowercase(), v.to_string()));
            }
        }
        if !url.starts_with("http://") && !url.starts_with("https://") {
            crate::db_name::validate(url)?;
            if headers_v.is_some() || auth_v.is_some() {
                return Err(bad("a local database takes no `headers` or `auth`"));
            }
            return Ok(Endpoint::Local { db: url.into() });
        }
        let mut parsed = url::Url::parse(url).map_err(|e| bad(&format!("{e}")))?;
        if parsed
            .path_segments()
            .is_none_or(|mut s| s.all(str::is_empty))
        {
            return Err(bad("the URL names no database"));
        }
        if !parsed.username().is_empty() {
            let user = percent_decode(parsed.username());
            let pass = percent_decode(parsed.password().unwrap_or(""));
            set_basic(&mut headers, &user, &pass);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
        }
        if let Some(basic) = auth_v.and_then(|a| a.get("basic")) {
            let user = basic.get("username").and_then(Value::as_str);
            let pass = basic.get("password").and_then(Value::as_str);
            let (Some(user), Some(pass)) = (user, pass) else {
                return Err(bad("`auth.basic` needs string `username` and `password`"));
            };
            set_basic(&mut headers, user, pass);
        }
        let mut url = parsed.to_string();
        if !url.ends_with('/') {
            url.push('/');
        }
        Ok(Endpoint::Remote { url, headers })
    }

    /// The database's name: the local name, or the URL's last path segment
    /// (decoded).
    pub fn db_name(&self) -> String {
        match self {
            Endpoint::Local { db } => db.clone(),
            Endpoint::Remote { url, .. } => {
                let seg = url
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                percent_decode(seg)
            }
        }
    }

    /// How `_scheduler` and `_active_tasks` show it: the URL without
    /// credentials, or the local name.
    pub fn display(&self) -> String {
        match self {
            Endpoint::Local { db } => db.clone(),
            Endpoint::Remote { url, .. } => url.clone(),
        }
    }

    /// The database part of the endpoint's id as PouchDB builds it
    /// (`encodeURIComponent` of the name unless it already has a `%`).
    pub fn pouch_db_segment(&self) -> String {
        match self {
            Endpoint::Local { db } => encode_segment(db),
            Endpoint::Remote { url, .. } => url
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn set_basic(headers: &mut Vec<(String, String)>, user: &str, pass: &str) {
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    headers.retain(|(k, _)| k != "authorization");
    headers.push(("authorization".into(), format!("Basic {creds}")));
}

/// How the source's changes are narrowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RepFilter {
    #[default]
    None,
    /// `doc_ids`: sent to the source as `filter=_doc_ids`.
    DocIds { ids: Vec<String> },
    /// `selector`: a Mango selector applied to each changed document's
    /// winning revision, as CouchDB's `_selector` filter does.
    Selector { selector: Value },
    /// `filter` naming a design document filter (`ddoc/name`), run by the
    /// source, with `query_params` passed along.
    Named { name: String, query_params: Value },
}

/// Everything a replication job needs to know before it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepParams {
    pub source: Endpoint,
    pub target: Endpoint,
    pub continuous: bool,
    pub create_target: bool,
    pub create_target_params: Map<String, Value>,
    pub filter: RepFilter,
    /// Where to start instead of the checkpoint (`since_seq`).
    pub since_seq: Option<Value>,
    pub use_checkpoints: bool,
    pub checkpoint_interval_ms: u64,
    pub worker_batch_size: u64,
    pub winning_revs_only: bool,
}

/// What a `_replicate` body asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicateRequest {
    pub params: RepParams,
    /// `cancel: true`: stop the replication with these parameters (or
    /// with `replication_id`).
    pub cancel: bool,
    /// `replication_id`, accepted with `cancel` instead of the parameters.
    pub replication_id: Option<String>,
}

fn bool_field(o: &Map<String, Value>, name: &str, default: bool) -> CouchResult<bool> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        // CouchDB accepts the strings too (documents written by hand).
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(_) => Err(CouchError::bad_request(format!(
            "parameter `{name}` must be a boolean"
        ))),
    }
}

fn positive_field(o: &Map<String, Value>, name: &str, default: u64) -> CouchResult<u64> {
    let v = match o.get(name) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    match v {
        Some(n) if n > 0 => Ok(n),
        _ => Err(CouchError::bad_request(format!(
            "parameter `{name}` must be a positive integer"
        ))),
    }
}

impl RepParams {
    /// Parses a `_replicate` body or a `_replicator` document.
    pub fn parse(o: &Map<String, Value>) -> CouchResult<RepParams> {
        let source = Endpoint::parse("source", o.get("source").unwrap_or(&Value::Null))?;
        let target = Endpoint::parse("target", o.get("target").unwrap_or(&Value::Null))?;
        let filter = parse_filter(o)?;
        let create_target_params = match o.get("create_target_params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(CouchError::bad_request(
                    "parameter `create_target_params` must be an object",
                ))
            }
        };
        let since_seq = match o.get("since_seq") {
            None | Some(Value::Null) => None,
            Some(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
            Some(_) => {
                return Err(CouchError::bad_request(
                    "parameter `since_seq` must be a sequence (string or number)",
                ))
            }
        };
        Ok(RepParams {
            source,
            target,
            continuous: bool_field(o, "continuous", false)?,
            create_target: bool_field(o, "create_target", false)?,
            create_target_params,
            filter,
            since_seq,
            use_checkpoints: bool_field(o, "use_checkpoints", true)?,
            checkpoint_interval_ms: positive_field(
                o,
                "checkpoint_interval",
                DEFAULT_CHECKPOINT_INTERVAL_MS,
            )?,
            worker_batch_size: positive_field(o, "worker_batch_size", DEFAULT_BATCH_SIZE)?,
            winning_revs_only: bool_field(o, "winning_revs_only", false)?,
        })
    }
}

fn parse_filter(o: &Map<String, Value>) -> CouchResult<RepFilter> {
    let doc_ids = o.get("doc_ids").filter(|v| !v.is_null());
    let selector = o.get("selector").filter(|v| !v.is_null());
    let filter = o.get("filter").filter(|v| !v.is_null());
    let given = [doc_ids.is_some(), selector.is_some(), filter.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(CouchError::bad_request(
            "`doc_ids`, `selector` and `filter` are mutually exclusive",
        ));
    }
    if let Some(ids) = doc_ids {
        let ids = ids
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|v| v.as_str().map(String::from))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| {
                CouchError::bad_request("parameter `doc_ids` must be a list of strings")
            })?;
        return Ok(RepFilter::DocIds { ids });
    }
    if let Some(sel) = selector {
        crate::selector::Selector::parse(sel)?;
        return Ok(RepFilter::Selector {
            selector: sel.clone(),
        });
    }
    if let Some(f) = filter {
        let name = f.as_str().filter(|s| s.contains('/')).ok_or_else(|| {
            CouchError::bad_request("parameter `filter` must be a string `ddoc/filter`")
        })?;
        let query_params = match o.get("query_params") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => {
                return Err(CouchError::bad_request(
                    "parameter `query_params` must be an object",
                ))
            }
        };
        return Ok(RepFilter::Named {
            name: name.to_string(),
            query_params,
        });
    }
    Ok(RepFilter::None)
}

impl ReplicateRequest {
    /// Parses `POST /_replicate`. A cancel may name the job by
    /// `replication_id` alone; everything else needs source and target.
    pub fn parse(body: &Value) -> CouchResult<ReplicateRequest> {
        let o = body
            .as_object()
            .ok_or_else(|| CouchError::bad_request("Request body must be a JSON object"))?;
        let cancel = bool_field(o, "cancel", false)?;
        let replication_id = o
            .get("replication_id")
            .or_else(|| o.get("id"))
            .and_then(Value::as_str)
            .map(String::from);
        if cancel && replication_id.is_some() && o.get("source").is_none() {
            let placeholder = Endpoint::Local { db: "_".into() };
            return Ok(ReplicateRequest {
                params: RepParams {
                    source: placeholder.clone(),
                    target: placeholder,
                    continuous: false,
                    create_target: false,
                    create_target_params: Map::new(),
                    filter: RepFilter::None,
                    since_seq: None,
                    use_checkpoints: true,
                    checkpoint_interval_ms: DEFAULT_CHECKPOINT_INTERVAL_MS,
                    worker_batch_size: DEFAULT_BATCH_SIZE,
                    winning_revs_only: false,
                },
                cancel,
                replication_id,
            });
        }
        Ok(ReplicateRequest {
            params: RepParams::parse(o)?,
            cancel,
            replication_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> CouchResult<RepParams> {
        RepParams::parse(v.as_object().unwrap())
    }

    #[test]
    fn strings_and_objects() {
        let p = parse(json!({"source": "a", "target": "http://u:p%40ss@h:5984/b%2Fc"})).unwrap();
        assert_eq!(p.source, Endpoint::Local { db: "a".into() });
        let Endpoint::Remote { url, headers } = &p.target else {
            panic!("remote")
        };
        assert_eq!(url, "http://h:5984/b%2Fc/");
        // base64("u:p@ss")
        assert_eq!(
            headers,
            &vec![("authorization".into(), "Basic dTpwQHNz".into())]
        );
        assert_eq!(p.target.db_name(), "b/c");
        assert_eq!(p.target.pouch_db_segment(), "b%2Fc");
        assert_eq!(p.worker_batch_size, 500);
        assert!(p.use_checkpoints && !p.continuous);

        let p = parse(json!({
            "source": {"url": "https://x/db", "headers": {"X-Token": "t"},
                       "auth": {"basic": {"username": "a", "password": "b"}}},
            "target": "t", "continuous": true, "worker_batch_size": 10
        }))
        .unwrap();
        let Endpoint::Remote { headers, .. } = &p.source else {
            panic!("remote")
        };
        assert_eq!(
            headers,
            &vec![
                ("x-token".into(), "t".into()),
                ("authorization".into(), "Basic YTpi".into())
            ]
        );
        assert!(p.continuous);
        assert_eq!(p.worker_batch_size, 10);
    }

    #[test]
    fn bad_bodies_are_400() {
        for body in [
            json!({"target": "b"}),
            json!({"source": "a"}),
            json!({"source": "Bad Name", "target": "b"}),
            json!({"source": 1, "target": "b"}),
            json!({"source": "http://h/", "target": "b"}),
            json!({"source": "a", "target": "b", "continuous": 3}),
            json!({"source": "a", "target": "b", "worker_batch_size": 0}),
            json!({"source": "a", "target": "b", "doc_ids": "x"}),
            json!({"source": "a", "target": "b", "doc_ids": ["x"], "selector": {}}),
            json!({"source": "a", "target": "b", "selector": {"$bad": 1}}),
            json!({"source": "a", "target": "b", "filter": "nofilter"}),
            json!({"source": "a", "target": "b", "since_seq": {}}),
        ] {
            let e = parse(body.clone()).unwrap_err();
            assert_eq!(e.status, 400, "{body}");
        }
    }

    #[test]
    fn filters() {
        let p = parse(json!({"source": "a", "target": "b", "doc_ids": ["x", "y"]})).unwrap();
        assert_eq!(
            p.filter,
            RepFilter::DocIds {
                ids: vec!["x".into(), "y".into()]
            }
        );
        let p = parse(json!({"source": "a", "target": "b", "selector": {"type": "x"}})).unwrap();
        assert!(matches!(p.filter, RepFilter::Selector { .. }));
        let p = parse(json!({"source": "a", "target": "b", "filter": "d/f",
                             "query_params": {"k": "v"}}))
        .unwrap();
        assert!(matches!(p.filter, RepFilter::Named { .. }));
    }

    #[test]
    fn cancel_by_id() {
        let r =
            ReplicateRequest::parse(&json!({"replication_id": "abc+continuous", "cancel": true}))
                .unwrap();
        assert!(r.cancel);
        assert_eq!(r.replication_id.as_deref(), Some("abc+continuous"));
    }
}
