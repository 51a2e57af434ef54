//! Server-level endpoints and the routing decision for every request.

use serde_json::{json, Value};
use shared::config::COUCHDB_VERSION;
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Welcome,
    Up,
    Uuids,
    AllDbs,
    DbsInfo,
    Session,
    ActiveTasks,
    Membership,
    /// `POST /_replicate`.
    Replicate,
    /// `/_scheduler/...`, with the segments after `_scheduler`.
    Scheduler(Vec<String>),
    /// A request for `/{db}/...`, forwarded to that database's actor.
    Database(String),
    /// `_db_updates`, served by the catalog.
    DbUpdates,
    /// `GET /_cluster_setup`.
    ClusterSetup,
    /// `/_utils/...`: Fauxton, with the segments after `_utils`.
    Utils(Vec<String>),
    /// `/_node/{node}/...`, with the segments after `_node`.
    Node(Vec<String>),
    /// `/_search_analyze`.
    SearchAnalyze,
    /// A server endpoint CouchDB has and Settee does not yet.
    Unsupported(String),
}

/// Server endpoints CouchDB 3 has that later work will add.
const NOT_YET: &[&str] = &["_reshard"];

/// Decides the route from the decoded path segments.
pub fn route(path: &[String]) -> CouchResult<Route> {
    let Some(first) = path.first() else {
        return Ok(Route::Welcome);
    };
    Ok(match first.as_str() {
        "_up" => Route::Up,
        "_uuids" => Route::Uuids,
        "_all_dbs" => Route::AllDbs,
        "_dbs_info" => Route::DbsInfo,
        "_session" => Route::Session,
        "_active_tasks" => Route::ActiveTasks,
        "_membership" => Route::Membership,
        "_db_updates" => Route::DbUpdates,
        "_cluster_setup" => Route::ClusterSetup,
        "_replicate" => Route::Replicate,
        "_scheduler" => Route::Scheduler(path[1..].to_vec()),
        "_utils" => Route::Utils(path[1..].to_vec()),
        "_node" => Route::Node(path[1..].to_vec()),
        "_search_analyze" => Route::SearchAnalyze,
        s if NOT_YET.contains(&s) => Route::Unsupported(s.to_string()),
        name => {
            shared::db_name::validate(name)?;
            Route::Database(name.to_string())
        }
    })
}

/// `GET /`.
pub fn welcome(uuid: &str) -> Value {
    json!({
        "couchdb": "Welcome",
        "version": COUCHDB_VERSION,
        "git_sha": "settee",
        "uuid": uuid,
        "features": [],
        "vendor": {"name": "Settee", "version": env!("CARGO_PKG_VERSION")},
    })
}

/// `GET /_up`.
pub fn up() -> Response {
    Response::json(200, &json!({"status": "ok", "seeds": {}}))
}

/// CouchDB's `[uuids] max_count`.
const MAX_UUIDS: u64 = 1000;

/// `GET /_uuids?count=N`.
pub fn uuids(req: &Request) -> CouchResult<Response> {
    let count = req.uint_param("count")?.unwrap_or(1);
    if count > MAX_UUIDS {
        return Err(CouchError::bad_request("count parameter too large"));
    }
    let ids: Vec<String> = (0..count).map(|_| shared::uuids::next()).collect();
    Ok(Response::json(200, &json!({ "uuids": ids }))
        .with_header("cache-control", "must-revalidate, no-cache")
        .with_header("pragma", "no-cache"))
}

/// `/_search_analyze`: the terms an analyzer makes of a text, from the
/// query string (`GET`) or a JSON body (`POST`), as CouchDB's search
/// answers it.
pub fn search_analyze(req: &Request) -> CouchResult<Response> {
    allow(req, &["GET", "POST"])?;
    let (analyzer, text) = if req.method == "GET" {
        let param = |k| req.param(k).map(|v| Value::String(v.to_string()));
        (param("analyzer"), param("text"))
    } else {
        let mut body = req.json_object_body()?;
        (body.remove("analyzer"), body.remove("text"))
    };
    let analyzer = match analyzer {
        None => return Err(CouchError::bad_request("analyzer parameter is mandatory")),
        Some(a @ (Value::String(_) | Value::Object(_))) => a,
        Some(_) => {
            return Err(CouchError::bad_request(
                "analyzer parameter must be a string or an object",
            ))
        }
    };
    let text = match text {
        None => return Err(CouchError::bad_request("text parameter is mandatory")),
        Some(Value::String(t)) => t,
        Some(_) => return Err(CouchError::bad_request("text parameter must be a string")),
    };
    let terms = shared::search::analyzer::Analyzer::from_json(Some(&analyzer))?.terms(&text);
    Ok(Response::json(200, &json!({ "tokens": terms })))
}

/// CouchDB's `[chttpd] max_db_number_for_dbs_info_req`.
const MAX_DBS_INFO: usize = 100;

/// The databases `_dbs_info` reports: the POST body's `keys`, or `None`
/// for a GET (which lists like `_all_dbs`).
pub fn dbs_info_keys(req: &Request) -> CouchResult<Option<Vec<String>>> {
    if req.method != "POST" {
        return Ok(None);
    }
    let body = req.json_object_body()?;
    let keys = body
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| CouchError::bad_request("`keys` member must exist."))?;
    if keys.len() > MAX_DBS_INFO {
        return Err(CouchError::bad_request(format!(
            "`keys` member must be a list of at most {MAX_DBS_INFO} database names."
        )));
    }
    keys.iter()
        .map(|k| {
            k.as_str()
                .map(String::from)
                .ok_or_else(|| CouchError::bad_request("`keys` must be strings"))
        })
        .collect::<CouchResult<Vec<_>>>()
        .map(Some)
}

/// `/_cluster_setup`: a single node that needs no setup (its admin comes
/// from a secret, its system databases are made on first use), so setup
/// wizards such as Fauxton's see it as done. `POST` actions answer as a
/// node that is set up answers them (`setup_httpd`): enabling or finishing
/// again is refused as already done, and no nodes can be added or removed
/// — Settee's Durable Objects are its cluster.
pub fn cluster_setup(req: &Request) -> CouchResult<Response> {
    if req.method != "POST" {
        allow(req, &["GET", "HEAD", "POST"])?;
        return Ok(Response::json(
            200,
            &json!({"state": "single_node_enabled"}),
        ));
    }
    let ct = req.header("content-type").unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(CouchError::new(
            415,
            "bad_content_type",
            "Content-Type must be application/json",
        ));
    }
    let body = req
        .json_object_body()
        .map_err(|_| CouchError::bad_request("Missing JSON body'"))?;
    let refused = match body.get("action").and_then(Value::as_str) {
        Some("enable_cluster") => "Cluster is already enabled",
        Some("enable_single_node" | "finish_cluster") => "Cluster is already finished",
        Some("add_node" | "remove_node") => {
            "Settee's Durable Objects are its cluster: it has no nodes to add or remove"
        }
        _ => "Invalid Action'",
    };
    Err(CouchError::bad_request(refused))
}

/// `GET /_membership`: a single node.
pub fn membership() -> Response {
    let nodes = json!(["settee@127.0.0.1"]);
    Response::json(200, &json!({"all_nodes": nodes, "cluster_nodes": nodes}))
}

/// Only `methods` are allowed on a server endpoint.
pub fn allow(req: &Request, methods: &[&str]) -> CouchResult<()> {
    if methods.contains(&req.method.as_str()) {
        Ok(())
    } else {
        Err(CouchError::method_not_allowed(&methods.join(",")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        shared::http::split_path(s)
    }

    #[test]
    fn search_analyze_takes_a_body_or_the_query() {
        let post = Request::new("POST", "/_search_analyze", "")
            .with_body(r#"{"analyzer": "simple", "text": "Don't stop"}"#);
        assert_eq!(
            search_analyze(&post).unwrap().json_body(),
            json!({"tokens": ["don", "t", "stop"]})
        );
        let get = Request::new("GET", "/_search_analyze", "analyzer=whitespace&text=A%20b");
        assert_eq!(
            search_analyze(&get).unwrap().json_body(),
            json!({"tokens": ["A", "b"]})
        );
        let bad = Request::new("POST", "/_search_analyze", "")
            .with_body(r#"{"analyzer": "standard", "text": 1}"#);
        assert_eq!(
            search_analyze(&bad).unwrap_err().reason,
            "text parameter must be a string"
        );
        assert_eq!(route(&p("/_search_analyze")).unwrap(), Route::SearchAnalyze);
    }

    #[test]
    fn routes() {
        assert_eq!(route(&p("/")).unwrap(), Route::Welcome);
        assert_eq!(route(&p("/_all_dbs")).unwrap(), Route::AllDbs);
        assert_eq!(route(&p("/db/doc")).unwrap(), Route::Database("db".into()));
        assert_eq!(
            route(&p("/a%2Fb/_all_docs")).unwrap(),
            Route::Database("a/b".into())
        );
        assert_eq!(
            route(&p("/_users")).unwrap(),
            Route::Database("_users".into())
        );
        assert_eq!(route(&p("/_replicate")).unwrap(), Route::Replicate);
        assert_eq!(
            route(&p("/_scheduler/docs/_replicator/x")).unwrap(),
            Route::Scheduler(p("docs/_replicator/x"))
        );
        assert_eq!(
            route(&p("/_bogus")).unwrap_err().error,
            "illegal_database_name"
        );
        assert_eq!(route(&p("/Caps")).unwrap_err().status, 400);
    }

    #[test]
    fn uuids_count() {
        let r = uuids(&Request::new("GET", "/_uuids", "count=3")).unwrap();
        assert_eq!(r.json_body()["uuids"].as_array().unwrap().len(), 3);
        assert_eq!(
            uuids(&Request::new("GET", "/_uuids", "count=1001"))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            uuids(&Request::new("GET", "/_uuids", "count=x"))
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn dbs_info_body() {
        let r = Request::new("POST", "/_dbs_info", "").with_body(r#"{"keys":["a","b"]}"#);
        assert_eq!(
            dbs_info_keys(&r).unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        let r = Request::new("POST", "/_dbs_info", "").with_body(r#"{"nope":1}"#);
        assert_eq!(dbs_info_keys(&r).unwrap_err().status, 400);
        assert_eq!(
            dbs_info_keys(&Request::new("GET", "/_dbs_info", "")).unwrap(),
            None
        );
    }

    #[test]
    fn cluster_setup_is_done() {
        let get = Request::new("GET", "/_cluster_setup", "");
        assert_eq!(
            cluster_setup(&get).unwrap().json_body(),
            json!({"state": "single_node_enabled"})
        );
        let post = |body: &str| {
            let req = Request::new("POST", "/_cluster_setup", "")
                .with_header("content-type", "application/json")
                .with_body(body.to_string());
            cluster_setup(&req).unwrap_err()
        };
        for (action, reason) in [
            ("enable_cluster", "Cluster is already enabled"),
            ("finish_cluster", "Cluster is already finished"),
            ("enable_single_node", "Cluster is already finished"),
            ("bogus", "Invalid Action'"),
        ] {
            let e = post(&json!({"action": action}).to_string());
            assert_eq!((e.status, e.reason.as_str()), (400, reason), "{action}");
        }
        let e = post(r#"{"action": "add_node", "host": "node2"}"#);
        assert!(e.reason.contains("no nodes to add"), "{}", e.reason);
        assert_eq!(post("[]").reason, "Missing JSON body'");
        let plain = Request::new("POST", "/_cluster_setup", "").with_body("{}");
        assert_eq!(cluster_setup(&plain).unwrap_err().status, 415);
        let put = Request::new("PUT", "/_cluster_setup", "");
        assert_eq!(cluster_setup(&put).unwrap_err().status, 405);
    }

    #[test]
    fn welcome() {
        let w = super::welcome("abc");
        assert_eq!(w["couchdb"], "Welcome");
        assert_eq!(w["vendor"]["name"], "Settee");
    }
}
