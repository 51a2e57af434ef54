//! How actors reach each other: the binding names of their namespaces and
//! the typed calls the catalog answers.
//!
//! Durable Objects talk over `fetch`, so a call travels as an HTTP request
//! whose URL is only an envelope. Both ends use [`CatalogCall`] — the
//! caller to build the request, the catalog to read it — so no operation
//! is spelled as a URL string in two crates, and renaming one fails to
//! compile instead of failing at run time.

use crate::active_tasks::IndexerTask;
use crate::http::Request;
use crate::stats::Stats;
use crate::{CouchError, CouchResult};
use serde_json::{json, Value};

/// Binding name of the database actors' namespace.
pub const DB_BINDING: &str = "DB";
/// Binding name of the catalog's namespace, and the catalog's one name.
pub const CATALOG_BINDING: &str = "CATALOG";
pub const CATALOG_NAME: &str = "catalog";
/// Binding name of the replicator actors' namespace.
pub const REPLICATOR_BINDING: &str = "REPLICATOR";
/// The registry's name in that namespace (job ids are hex, so no job can
/// take it).
pub const REGISTRY_NAME: &str = "_registry";
/// Binding name of the optional R2 bucket for large attachment contents.
pub const ATTACHMENTS_BINDING: &str = "ATTACHMENTS";

/// The host part of every actor call's URL (the runtime needs one; the
/// stub, not the host, decides where the call goes).
pub const CALL_ORIGIN: &str = "https://actor";

/// An operation on the catalog, the one actor that knows every database.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogCall {
    /// Database names (`_all_dbs`, `_dbs_info`); the query string carries
    /// `_all_dbs`' range options.
    List,
    /// The `_db_updates` feed; the query string carries the feed options.
    Updates,
    /// The server's uuid.
    Uuid,
    /// A database actor reports that its database was created ...
    Added(String),
    /// ... deleted ...
    Removed(String),
    /// ... or written to.
    Updated(String),
    /// The values written through `/_node/{node}/_config`
    /// ([`crate::node_config::Overlay`]).
    Config,
    /// Sets (`Some`) or deletes (`None`) one; answers `{"old": value}`.
    SetConfig {
        section: String,
        key: String,
        value: Option<String>,
    },
    /// An isolate hands over the statistics it counted since it last did;
    /// answers the `_config` values, as [`CatalogCall::Config`] does.
    Sync(Stats),
    /// The node's statistics, all isolates' merged.
    Stats,
    /// A database actor's index builds in progress after a round (all of
    /// them: the list replaces the database's earlier one).
    Indexing {
        database: String,
        tasks: Vec<IndexerTask>,
    },
    /// Every database's index builds in progress (`_active_tasks`).
    Tasks,
}

impl CatalogCall {
    pub fn method(&self) -> &'static str {
        match self {
            CatalogCall::List
            | CatalogCall::Updates
            | CatalogCall::Uuid
            | CatalogCall::Config
            | CatalogCall::Stats
            | CatalogCall::Tasks => "GET",
            _ => "POST",
        }
    }

    fn operation(&self) -> &'static str {
        match self {
            CatalogCall::List => "list",
            CatalogCall::Updates => "updates",
            CatalogCall::Uuid => "uuid",
            CatalogCall::Added(_) => "add",
            CatalogCall::Removed(_) => "remove",
            CatalogCall::Updated(_) => "updated",
            CatalogCall::Config => "config",
            CatalogCall::SetConfig { .. } => "set_config",
            CatalogCall::Sync(_) => "sync",
            CatalogCall::Stats => "stats",
            CatalogCall::Indexing { .. } => "indexing",
            CatalogCall::Tasks => "tasks",
        }
    }

    /// The call's URL, with a raw query string (empty for none).
    pub fn url(&self, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "?" };
        format!("{CALL_ORIGIN}/{}{sep}{query}", self.operation())
    }

    /// The JSON body, for the calls that carry one.
    pub fn body(&self) -> Option<Vec<u8>> {
        match self {
            CatalogCall::Added(n) | CatalogCall::Removed(n) | CatalogCall::Updated(n) => {
                Some(json!({ "name": n }).to_string().into_bytes())
            }
            CatalogCall::SetConfig {
                section,
                key,
                value,
            } => Some(
                json!({"section": section, "key": key, "value": value})
                    .to_string()
                    .into_bytes(),
            ),
            CatalogCall::Sync(stats) => Some(serde_json::to_vec(stats).expect("stats serialise")),
            CatalogCall::Indexing { database, tasks } => Some(
                json!({"database": database, "tasks": tasks})
                    .to_string()
                    .into_bytes(),
            ),
            _ => None,
        }
    }

    /// The call as the catalog receives it (what `url` and `body` send).
    pub fn to_request(&self, query: &str) -> Request {
        let req = Request::new(self.method(), &format!("/{}", self.operation()), query);
        match self.body() {
            Some(b) => req.with_body(b),
            None => req,
        }
    }

    /// Reads a call back from the request [`CatalogCall::url`] built.
    pub fn parse(req: &Request) -> CouchResult<CatalogCall> {
        let op = match req.path.as_slice() {
            [op] => op.as_str(),
            _ => return Err(unknown()),
        };
        let named = |make: fn(String) -> CatalogCall| -> CouchResult<CatalogCall> {
            let body = req.json_body()?;
            let name = body
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| CouchError::bad_request("name required"))?;
            Ok(make(name.to_string()))
        };
        match (req.method.as_str(), op) {
            ("GET", "list") => Ok(CatalogCall::List),
            ("GET", "updates") => Ok(CatalogCall::Updates),
            ("GET", "uuid") => Ok(CatalogCall::Uuid),
            ("POST", "add") => named(CatalogCall::Added),
            ("POST", "remove") => named(CatalogCall::Removed),
            ("POST", "updated") => named(CatalogCall::Updated),
            ("GET", "config") => Ok(CatalogCall::Config),
            ("GET", "stats") => Ok(CatalogCall::Stats),
            ("GET", "tasks") => Ok(CatalogCall::Tasks),
            ("POST", "indexing") => {
                let mut body = req.json_body()?;
                let database = body["database"].as_str().map(str::to_string);
                let tasks = serde_json::from_value(body["tasks"].take());
                match (database, tasks) {
                    (Some(database), Ok(tasks)) => Ok(CatalogCall::Indexing { database, tasks }),
                    _ => Err(CouchError::bad_request("database and tasks required")),
                }
            }
            ("POST", "sync") => serde_json::from_slice(&req.body)
                .map(CatalogCall::Sync)
                .map_err(|_| CouchError::bad_request("stats required")),
            ("POST", "set_config") => {
                let body = req.json_body()?;
                let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
                match (text("section"), text("key")) {
                    (Some(section), Some(key)) => Ok(CatalogCall::SetConfig {
                        section,
                        key,
                        value: text("value"),
                    }),
                    _ => Err(CouchError::bad_request("section and key required")),
                }
            }
            _ => Err(unknown()),
        }
    }
}

/// An operation on a replicator actor: a job's (the actor named by the job
/// id) or the registry's (the actor named [`REGISTRY_NAME`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicatorCall {
    /// Starts a job: `{id, params, origin, user}`.
    JobStart(Value),
    JobStop,
    JobStatus,
    /// The job's record once it is finished, or after `ms` milliseconds.
    JobWait {
        ms: u64,
    },
    /// A job's summary, for the registry.
    Report(Value),
    /// Forgets a job.
    Remove(String),
    Jobs,
    Docs,
    /// `_replicator` changed: read its changes.
    Poke,
}

impl ReplicatorCall {
    /// Whether the call is the registry's (else the job actor's).
    pub fn for_registry(&self) -> bool {
        !matches!(
            self,
            ReplicatorCall::JobStart(_)
                | ReplicatorCall::JobStop
                | ReplicatorCall::JobStatus
                | ReplicatorCall::JobWait { .. }
        )
    }

    pub fn method(&self) -> &'static str {
        match self {
            ReplicatorCall::JobStatus
            | ReplicatorCall::JobWait { .. }
            | ReplicatorCall::Jobs
            | ReplicatorCall::Docs => "GET",
            _ => "POST",
        }
    }

    pub fn url(&self) -> String {
        let path = match self {
            ReplicatorCall::JobStart(_) => "job/start".to_string(),
            ReplicatorCall::JobStop => "job/stop".to_string(),
            ReplicatorCall::JobStatus => "job/status".to_string(),
            ReplicatorCall::JobWait { ms } => format!("job/wait?ms={ms}"),
            ReplicatorCall::Report(_) => "registry/report".to_string(),
            ReplicatorCall::Remove(_) => "registry/remove".to_string(),
            ReplicatorCall::Jobs => "registry/jobs".to_string(),
            ReplicatorCall::Docs => "registry/docs".to_string(),
            ReplicatorCall::Poke => "registry/poke".to_string(),
        };
        format!("{CALL_ORIGIN}/{path}")
    }

    pub fn body(&self) -> Option<Vec<u8>> {
        let v = match self {
            ReplicatorCall::JobStart(v) | ReplicatorCall::Report(v) => v.clone(),
            ReplicatorCall::Remove(id) => json!({ "id": id }),
            _ => return None,
        };
        Some(v.to_string().into_bytes())
    }

    /// Reads a call from what [`ReplicatorCall::url`] and `body` sent: the
    /// URL's path and query string, and the body as JSON.
    pub fn parse(method: &str, path: &str, query: &str, body: Value) -> CouchResult<Self> {
        let call = match (method, path.trim_start_matches('/')) {
            ("POST", "job/start") => ReplicatorCall::JobStart(body),
            ("POST", "job/stop") => ReplicatorCall::JobStop,
            ("GET", "job/status") => ReplicatorCall::JobStatus,
            ("GET", "job/wait") => ReplicatorCall::JobWait {
                ms: crate::http::parse_query(query)
                    .into_iter()
                    .find(|(k, _)| k == "ms")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(DEFAULT_WAIT_MS),
            },
            ("POST", "registry/report") => ReplicatorCall::Report(body),
            ("POST", "registry/remove") => match body["id"].as_str() {
                Some(id) => ReplicatorCall::Remove(id.to_string()),
                None => return Err(CouchError::bad_request("id required")),
            },
            ("GET", "registry/jobs") => ReplicatorCall::Jobs,
            ("GET", "registry/docs") => ReplicatorCall::Docs,
            ("POST", "registry/poke") => ReplicatorCall::Poke,
            (_, p) => {
                return Err(CouchError::not_found(format!(
                    "no replicator endpoint /{p}"
                )))
            }
        };
        Ok(call)
    }
}

/// How long [`ReplicatorCall::JobWait`] waits when the call names no time.
pub const DEFAULT_WAIT_MS: u64 = 10_000;

fn unknown() -> CouchError {
    CouchError::not_found("no such catalog operation")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(call: CatalogCall, query: &str) -> CatalogCall {
        let url = call.url(query);
        let rest = url.strip_prefix(CALL_ORIGIN).unwrap();
        let (path, q) = rest.split_once('?').unwrap_or((rest, ""));
        assert_eq!(q, query);
        let mut req = Request::new(call.method(), path, q);
        if let Some(b) = call.body() {
            req = req.with_body(b);
        }
        CatalogCall::parse(&req).unwrap()
    }

    #[test]
    fn every_call_reads_back_as_itself() {
        for call in [
            CatalogCall::List,
            CatalogCall::Updates,
            CatalogCall::Uuid,
            CatalogCall::Added("a/b".into()),
            CatalogCall::Removed("x".into()),
            CatalogCall::Updated("db".into()),
            CatalogCall::Config,
            CatalogCall::SetConfig {
                section: "couchdb".into(),
                key: "max_document_size".into(),
                value: Some("100".into()),
            },
            CatalogCall::SetConfig {
                section: "a b".into(),
                key: "k/2".into(),
                value: None,
            },
            CatalogCall::Stats,
            CatalogCall::Tasks,
            CatalogCall::Indexing {
                database: "db".into(),
                tasks: vec![IndexerTask {
                    database: "db".into(),
                    design_document: "_design/v".into(),
                    changes_done: 5,
                    total_changes: 10,
                    started_on: 1,
                    updated_on: 2,
                }],
            },
            CatalogCall::Sync({
                let mut s = Stats::default();
                s.request("GET", 200, 2.5);
                s
            }),
        ] {
            assert_eq!(round_trip(call.clone(), ""), call);
            assert_eq!(round_trip(call.clone(), "limit=2&descending=true"), call);
            assert_eq!(CatalogCall::parse(&call.to_request("")).unwrap(), call);
        }
    }

    #[test]
    fn list_keeps_its_query() {
        let req = CatalogCall::List.to_request("startkey=%22b%22&limit=3");
        assert_eq!(
            req.query,
            vec![
                ("startkey".to_string(), "\"b\"".to_string()),
                ("limit".to_string(), "3".to_string())
            ]
        );
    }

    #[test]
    fn malformed_calls_are_refused() {
        let wrong_method = Request::new("POST", "/list", "");
        assert_eq!(CatalogCall::parse(&wrong_method).unwrap_err().status, 404);
        let nested = Request::new("GET", "/list/more", "");
        assert_eq!(CatalogCall::parse(&nested).unwrap_err().status, 404);
        let nameless = Request::new("POST", "/add", "").with_body(b"{}".to_vec());
        assert_eq!(CatalogCall::parse(&nameless).unwrap_err().status, 400);
    }

    #[test]
    fn replicator_calls_read_back_as_themselves() {
        for call in [
            ReplicatorCall::JobStart(json!({"id": "j", "params": {}})),
            ReplicatorCall::JobStop,
            ReplicatorCall::JobStatus,
            ReplicatorCall::JobWait { ms: 250 },
            ReplicatorCall::Report(json!({"id": "j", "state": "running"})),
            ReplicatorCall::Remove("j".into()),
            ReplicatorCall::Jobs,
            ReplicatorCall::Docs,
            ReplicatorCall::Poke,
        ] {
            let url = call.url();
            let rest = url.strip_prefix(CALL_ORIGIN).unwrap();
            let (path, q) = rest.split_once('?').unwrap_or((rest, ""));
            let body = call
                .body()
                .map(|b| serde_json::from_slice(&b).unwrap())
                .unwrap_or(Value::Null);
            let back = ReplicatorCall::parse(call.method(), path, q, body).unwrap();
            assert_eq!(back, call);
        }
        assert!(ReplicatorCall::Poke.for_registry());
        assert!(!ReplicatorCall::JobStop.for_registry());
    }

    #[test]
    fn replicator_call_defaults_and_errors() {
        let wait = ReplicatorCall::parse("GET", "/job/wait", "", Value::Null).unwrap();
        assert_eq!(
            wait,
            ReplicatorCall::JobWait {
                ms: DEFAULT_WAIT_MS
            }
        );
        let e = ReplicatorCall::parse("GET", "/job/start", "", Value::Null).unwrap_err();
        assert_eq!(e.status, 404);
        let e = ReplicatorCall::parse("POST", "/registry/remove", "", json!({})).unwrap_err();
        assert_eq!(e.status, 400);
    }
}
