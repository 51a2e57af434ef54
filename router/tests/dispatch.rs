//! The router's request path natively: authentication, the routing
//! decision and the server endpoints, over a cluster whose catalog,
//! databases and replicator are in memory and whose calls are recorded.

use base64::Engine;
use futures::executor::block_on;
use router::auth::{AuthState, Authenticated, UserStore};
use router::cluster::Cluster;
use router::dispatch::{self, Answer, Target};
use router::server::Route;
use serde_json::{json, Map, Value};
use shared::active_tasks::IndexerTask;
use shared::actor_call::{CatalogCall, ReplicatorCall, REGISTRY_NAME};
use shared::config::Config;
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};
use shared::node_config::Overlay;
use shared::stats::Stats;
use shared::user::UserCtx;
use std::cell::RefCell;

#[derive(Default)]
struct FakeCluster {
    dbs: Vec<String>,
    /// Catalog calls and their query strings.
    catalog_calls: RefCell<Vec<(CatalogCall, String)>>,
    replicator_calls: RefCell<Vec<(String, ReplicatorCall)>>,
    /// What the jobs answer to `JobWait`, in turn.
    waits: RefCell<Vec<Value>>,
    jobs: Vec<Value>,
    overlay: RefCell<Overlay>,
    /// Index builds the catalog holds.
    builds: Vec<IndexerTask>,
}

impl UserStore for FakeCluster {
    async fn user_doc(&self, _name: &str) -> CouchResult<Option<Map<String, Value>>> {
        Ok(None)
    }
}

impl Cluster for FakeCluster {
    async fn server_uuid(&self) -> CouchResult<String> {
        Ok("uuid-1".into())
    }

    async fn catalog(&self, call: CatalogCall, query: &str) -> CouchResult<Value> {
        self.catalog_calls
            .borrow_mut()
            .push((call.clone(), query.to_string()));
        match call {
            CatalogCall::List => Ok(json!(self.dbs)),
            CatalogCall::Tasks => Ok(json!(self.builds)),
            other => Err(CouchError::internal(format!("unexpected {other:?}"))),
        }
    }

    async fn db_info(&self, name: &str, _user: &UserCtx) -> Option<Value> {
        self.dbs
            .iter()
            .any(|d| d == name)
            .then(|| json!({"db_name": name, "doc_count": 0}))
    }

    async fn replicator(&self, actor: &str, call: ReplicatorCall) -> CouchResult<Value> {
        self.replicator_calls
            .borrow_mut()
            .push((actor.to_string(), call.clone()));
        match call {
            ReplicatorCall::JobStop => Ok(json!({"ok": true, "existed": false})),
            ReplicatorCall::JobStart(_) => Ok(json!({"state": "pending"})),
            ReplicatorCall::JobWait { .. } => Ok(self.waits.borrow_mut().remove(0)),
            ReplicatorCall::Jobs => Ok(json!(self.jobs)),
            ReplicatorCall::Docs => Ok(json!([])),
            other => Err(CouchError::internal(format!("unexpected {other:?}"))),
        }
    }

    async fn config_overlay(&self) -> CouchResult<Overlay> {
        Ok(self.overlay.borrow().clone())
    }

    async fn set_config(
        &self,
        section: &str,
        key: &str,
        value: Option<&str>,
    ) -> CouchResult<Option<String>> {
        let mut o = self.overlay.borrow_mut();
        let keys = o.entry(section.to_string()).or_default();
        Ok(match value {
            Some(v) => keys.insert(key.to_string(), v.to_string()),
            None => keys.remove(key),
        })
    }

    fn var(&self, name: &str) -> Option<String> {
        (name == "MAX_DOCUMENT_SIZE").then(|| "1000".to_string())
    }

    async fn stats(&self) -> CouchResult<Stats> {
        let mut s = Stats::default();
        s.request("GET", 200, 4.0);
        s.request("PUT", 201, 9.0);
        s.count("couchdb.database_writes", 3);
        s.seen("recent", 990);
        s.seen("idle", 10);
        Ok(s)
    }

    fn system(&self) -> (u64, u64) {
        (12, 1 << 20)
    }
}

fn config(extra: &[(&str, &str)]) -> Config {
    Config::from_lookup(|k| match k {
        "COUCHDB_USER" => Some("root".into()),
        "COUCHDB_PASSWORD" => Some("pw".into()),
        "COUCHDB_SECRET" => Some("s3cret".into()),
        k => extra
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string()),
    })
}

fn basic(name: &str, pw: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{pw}"));
    format!("Basic {b64}")
}

/// Authenticates, routes and answers one request, as the binding does.
fn serve(cfg: &Config, c: &FakeCluster, req: Request) -> CouchResult<Answer> {
    let state = RefCell::new(AuthState::default());
    block_on(async {
        let auth = dispatch::authenticate(cfg, &req, c, &state, "peer", 1_000).await?;
        match dispatch::target(cfg, &req, &auth.user)? {
            Target::Database(name) => Err(CouchError::internal(format!("forward to {name}"))),
            Target::Server(route) => {
                dispatch::answer(cfg, &req, &auth, route, c, &state, "peer", 1_000).await
            }
        }
    })
}

fn reply(a: CouchResult<Answer>) -> Response {
    match a {
        Ok(Answer::Reply(r)) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn as_admin(req: Request) -> Request {
    req.with_header("authorization", &basic("root", "pw"))
}

#[test]
fn without_an_admin_only_the_welcome_and_up_answer() {
    let cfg = Config::from_lookup(|_| None);
    let c = FakeCluster::default();
    let welcome = reply(serve(&cfg, &c, Request::new("GET", "/", "")));
    assert_eq!(welcome.json_body()["uuid"], "uuid-1");
    assert_eq!(
        reply(serve(&cfg, &c, Request::new("GET", "/_up", ""))).status,
        200
    );
    let e = serve(&cfg, &c, Request::new("GET", "/_all_dbs", "")).unwrap_err();
    assert_eq!(e.status, 500);
    assert!(e.reason.contains("COUCHDB_USER"), "{}", e.reason);
}

#[test]
fn targets_follow_the_path_and_refuse_what_no_route_takes() {
    let cfg = config(&[
        ("REQUIRE_VALID_USER", "true"),
        ("MAX_HTTP_REQUEST_SIZE", "100"),
    ]);
    let anon = UserCtx::default();
    let admin = UserCtx::admin("root");
    let t = |req: &Request, u: &UserCtx| dispatch::target(&cfg, req, u);
    let db = Request::new("GET", "/a%2Fb/doc", "");
    assert_eq!(t(&db, &admin).unwrap(), Target::Database("a/b".into()));
    assert_eq!(t(&db, &anon).unwrap_err().status, 401);
    let session = Request::new("POST", "/_session", "");
    assert_eq!(t(&session, &anon).unwrap(), Target::Server(Route::Session));
    let big = |m: &str, p: &str| Request::new(m, p, "").with_header("content-length", "101");
    assert_eq!(t(&big("PUT", "/db/doc"), &admin).unwrap_err().status, 413);
    assert_eq!(t(&big("GET", "/db/doc"), &admin).unwrap_err().status, 413);
    assert_eq!(
        t(&big("POST", "/_replicate"), &admin).unwrap_err().status,
        413
    );
    assert!(t(&big("GET", "/_all_dbs"), &admin).is_ok());
    assert_eq!(
        t(&Request::new("GET", "/_bogus", ""), &admin)
            .unwrap_err()
            .status,
        400
    );
}

#[test]
fn database_lists_pass_their_query_to_the_catalog_and_are_admin_only_by_default() {
    let cfg = config(&[]);
    let c = FakeCluster {
        dbs: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    let req = Request::new("GET", "/_all_dbs", "startkey=%22a%26%22&limit=1");
    assert_eq!(serve(&cfg, &c, req.clone()).unwrap_err().status, 401);
    let r = reply(serve(&cfg, &c, as_admin(req)));
    assert_eq!(r.json_body(), json!(["a", "b"]));
    assert_eq!(
        c.catalog_calls.borrow().last().unwrap(),
        &(CatalogCall::List, "startkey=%22a%26%22&limit=1".to_string())
    );
    let open = config(&[("ADMIN_ONLY_ALL_DBS", "false")]);
    assert_eq!(
        reply(serve(&open, &c, Request::new("GET", "/_all_dbs", ""))).status,
        200
    );

    let keys = as_admin(Request::new("POST", "/_dbs_info", ""))
        .with_body(r#"{"keys": ["a", "missing", "BAD"]}"#);
    let r = reply(serve(&cfg, &c, keys));
    assert_eq!(
        r.json_body(),
        json!([
            {"key": "a", "info": {"db_name": "a", "doc_count": 0}},
            {"key": "missing", "error": "not_found"},
            {"key": "BAD", "error": "not_found"},
        ])
    );
    let r = reply(serve(
        &cfg,
        &c,
        as_admin(Request::new("GET", "/_dbs_info", "")),
    ));
    assert_eq!(r.json_body().as_array().unwrap().len(), 2);
}

#[test]
fn a_one_shot_replicate_waits_for_its_job_and_answers_its_result() {
    let cfg = config(&[]);
    let c = FakeCluster {
        waits: RefCell::new(vec![
            json!({"state": "running"}),
            json!({"state": "completed", "result": {"ok": true, "history": []}}),
        ]),
        ..Default::default()
    };
    let req = as_admin(Request::new("POST", "/_replicate", ""))
        .with_body(r#"{"source": "a", "target": "b"}"#);
    let r = reply(serve(&cfg, &c, req));
    assert_eq!(r.status, 200);
    assert_eq!(r.json_body(), json!({"ok": true, "history": []}));
    let calls = c.replicator_calls.take();
    assert!(matches!(calls[0].1, ReplicatorCall::JobStart(_)));
    assert_eq!(calls.len(), 3, "one start, two waits: {calls:?}");
    assert!(calls.iter().all(|(to, _)| to == &calls[0].0));

    let failing = FakeCluster {
        waits: RefCell::new(vec![json!({"state": "failed", "error": {
            "status": 404, "error": "db_not_found", "reason": "could not open a"}})]),
        ..Default::default()
    };
    let req = as_admin(Request::new("POST", "/_replicate", ""))
        .with_body(r#"{"source": "a", "target": "b"}"#);
    let e = serve(&cfg, &failing, req).unwrap_err();
    assert_eq!((e.status, e.error.as_str()), (404, "db_not_found"));

    let cancel = as_admin(Request::new("POST", "/_replicate", ""))
        .with_body(r#"{"source": "a", "target": "b", "cancel": true}"#);
    assert_eq!(serve(&cfg, &c, cancel).unwrap_err().status, 404);
    let anon =
        Request::new("POST", "/_replicate", "").with_body(r#"{"source": "a", "target": "b"}"#);
    assert_eq!(serve(&cfg, &c, anon).unwrap_err().status, 401);
}

#[test]
fn scheduler_and_tasks_read_the_registry() {
    let cfg = config(&[]);
    let job = json!({"id": "j1", "doc_id": null, "database": null, "source": "a", "target": "b",
        "state": "running", "user": "root", "history": [], "continuous": true});
    let build = |ddoc: &str, updated_on| IndexerTask {
        database: "db".into(),
        design_document: ddoc.into(),
        changes_done: 30,
        total_changes: 120,
        started_on: 900,
        updated_on,
    };
    let c = FakeCluster {
        jobs: vec![job],
        // The second report is older than an active build's: its actor
        // went away mid-build.
        builds: vec![build("_design/live", 990), build("_design/gone", 1)],
        ..Default::default()
    };
    let get = |p: &str| serve(&cfg, &c, as_admin(Request::new("GET", p, "")));
    let jobs = reply(get("/_scheduler/jobs")).json_body();
    assert_eq!(jobs["total_rows"], 1);
    assert_eq!(jobs["jobs"][0]["id"], "j1");
    assert_eq!(reply(get("/_scheduler/jobs/j1")).json_body()["id"], "j1");
    assert_eq!(get("/_scheduler/jobs/nope").unwrap_err().status, 404);
    let e = get("/_scheduler/docs/other").unwrap_err();
    assert!(
        e.reason.contains("not a replicator database"),
        "{}",
        e.reason
    );
    assert_eq!(reply(get("/_scheduler/docs")).json_body()["total_rows"], 0);
    let tasks = reply(get("/_active_tasks")).json_body();
    assert_eq!(tasks.as_array().unwrap().len(), 2, "{tasks}");
    assert_eq!(tasks[0]["type"], "indexer");
    assert_eq!(tasks[0]["design_document"], "_design/live");
    assert_eq!(
        (
            &tasks[0]["changes_done"],
            &tasks[0]["total_changes"],
            &tasks[0]["progress"]
        ),
        (&json!(30), &json!(120), &json!(25))
    );
    assert_eq!(tasks[1]["type"], "replication");
    assert!(c
        .replicator_calls
        .borrow()
        .iter()
        .all(|(to, _)| to == REGISTRY_NAME));
}

#[test]
fn db_updates_is_streamed_and_unsupported_endpoints_say_so() {
    let cfg = config(&[]);
    let c = FakeCluster::default();
    let updates = serve(
        &cfg,
        &c,
        as_admin(Request::new("GET", "/_db_updates", "feed=longpoll")),
    );
    assert!(matches!(updates, Ok(Answer::DbUpdates)));
    let anon = serve(&cfg, &c, Request::new("GET", "/_db_updates", ""));
    assert_eq!(anon.unwrap_err().status, 401);
    assert_eq!(
        serve(
            &cfg,
            &c,
            Request::new("GET", "/_node/_local/_reshard_jobs", "")
        )
        .unwrap_err()
        .status,
        401
    );
    let e = serve(
        &cfg,
        &c,
        as_admin(Request::new("GET", "/_node/_local/_reshard_jobs", "")),
    )
    .unwrap_err();
    assert_eq!(e.status, 501);
    let e = serve(&cfg, &c, as_admin(Request::new("PUT", "/_session", ""))).unwrap_err();
    assert_eq!(e.status, 405);
}

#[test]
fn a_session_login_sets_a_cookie_and_the_cookie_authenticates() {
    let cfg = config(&[]);
    let c = FakeCluster::default();
    let login = Request::new("POST", "/_session", "")
        .with_header("content-type", "application/json")
        .with_body(r#"{"name": "root", "password": "pw"}"#);
    let r = reply(serve(&cfg, &c, login));
    assert_eq!(r.status, 200);
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let with_cookie = Request::new("GET", "/_session", "").with_header("cookie", &cookie);
    let state = RefCell::new(AuthState::default());
    let auth: Authenticated = block_on(dispatch::authenticate(
        &cfg,
        &with_cookie,
        &c,
        &state,
        "p",
        1_000,
    ))
    .unwrap();
    assert_eq!(auth.user.name.as_deref(), Some("root"));
    let wrong = Request::new("POST", "/_session", "")
        .with_header("content-type", "application/json")
        .with_body(r#"{"name": "root", "password": "nope"}"#);
    assert_eq!(serve(&cfg, &c, wrong).unwrap_err().status, 401);
}

#[test]
fn node_config_reads_writes_and_deletes_values_as_json_strings() {
    let cfg = config(&[]);
    let c = FakeCluster::default();
    let call = |m: &str, p: &str, body: Option<&str>| {
        let mut req = as_admin(Request::new(m, p, ""));
        if let Some(b) = body {
            req = req.with_body(b.to_string());
        }
        serve(&cfg, &c, req)
    };
    let ok = |r: CouchResult<Answer>| reply(r).json_body();
    let all = ok(call("GET", "/_node/_local/_config", None));
    assert_eq!(all["couchdb"]["max_document_size"], "1000", "a var shows");
    assert_eq!(
        all["chttpd"]["max_http_request_size"], "4294967296",
        "a default shows"
    );
    let key = "/_node/settee@127.0.0.1/_config/couchdb/max_document_size";
    assert_eq!(
        ok(call("PUT", key, Some("\"64\""))),
        json!("1000"),
        "the value it replaces: the var's, none being stored"
    );
    assert_eq!(ok(call("GET", key, None)), json!("64"));
    assert_eq!(ok(call("PUT", key, Some("\"128\""))), json!("64"));
    assert_eq!(
        ok(call("GET", "/_node/_local/_config/couchdb", None))["max_document_size"],
        "128"
    );
    assert_eq!(
        ok(call("PUT", "/_node/_local/_config/mine/k", Some("\"v\""))),
        json!("")
    );
    assert_eq!(
        ok(call("GET", "/_node/_local/_config/mine", None)),
        json!({"k": "v"})
    );
    assert_eq!(
        ok(call("DELETE", "/_node/_local/_config/mine/k", None)),
        json!("v")
    );
    let gone = call("GET", "/_node/_local/_config/mine/k", None).unwrap_err();
    assert_eq!(
        (gone.status, gone.reason.as_str()),
        (404, "unknown_config_value")
    );
    assert_eq!(
        call("DELETE", "/_node/_local/_config/mine/k", None)
            .unwrap_err()
            .status,
        404
    );
    assert_eq!(
        ok(call("GET", "/_node/_local/_config/nothing", None)),
        json!({})
    );
    assert_eq!(call("PUT", key, Some("64")).unwrap_err().status, 400);
    assert_eq!(
        call(
            "PUT",
            "/_node/_local/_config/query_servers/js",
            Some("\"x\"")
        )
        .unwrap_err()
        .status,
        403
    );
    assert_eq!(
        call("GET", "/_node/other@host/_config", None)
            .unwrap_err()
            .status,
        404
    );
    assert_eq!(
        ok(call("GET", "/_node/_local", None)),
        json!({"name": "settee@127.0.0.1"})
    );
    let anon = serve(&cfg, &c, Request::new("GET", "/_node/_local/_config", ""));
    assert_eq!(anon.unwrap_err().status, 401);

    // An admin written through _config is stored hashed and can log in
    // once the router's configuration carries the overlay.
    assert_eq!(
        ok(call(
            "PUT",
            "/_node/_local/_config/admins/ann",
            Some("\"ann-pw\"")
        )),
        json!("")
    );
    let hash = ok(call("GET", "/_node/_local/_config/admins/ann", None));
    assert!(
        hash.as_str().unwrap().starts_with("-pbkdf2:sha256-"),
        "{hash}"
    );
    let live = Config::with_overlay(&c.overlay.borrow(), |k| match k {
        "COUCHDB_USER" => Some("root".into()),
        "COUCHDB_PASSWORD" => Some("pw".into()),
        _ => None,
    });
    assert_eq!(live.limits.max_document_size, 128);
    let as_ann =
        Request::new("GET", "/_all_dbs", "").with_header("authorization", &basic("ann", "ann-pw"));
    assert_eq!(reply(serve(&live, &c, as_ann)).status, 200);
    let wrong =
        Request::new("GET", "/_all_dbs", "").with_header("authorization", &basic("ann", "nope"));
    assert_eq!(serve(&live, &c, wrong).unwrap_err().status, 401);
}

#[test]
fn node_stats_prometheus_system_and_versions() {
    let cfg = config(&[]);
    let job = json!({"id": "j", "state": "running", "history": []});
    let c = FakeCluster {
        jobs: vec![
            job.clone(),
            json!({"id": "k", "state": "crashing", "history": []}),
        ],
        ..Default::default()
    };
    let get = |p: &str| serve(&cfg, &c, as_admin(Request::new("GET", p, "")));
    let stats = reply(get("/_node/_local/_stats")).json_body();
    assert_eq!(stats["couchdb"]["httpd_request_methods"]["PUT"]["value"], 1);
    assert_eq!(stats["couchdb"]["database_writes"]["value"], 3);
    assert_eq!(stats["couchdb"]["request_time"]["value"]["n"], 2);
    assert_eq!(stats["couch_replicator"]["jobs"]["running"]["value"], 1);
    assert_eq!(
        stats["couchdb"]["open_databases"]["value"], 1,
        "seen within the window at 1,000 s; the other long before"
    );
    assert_eq!(stats["couch_replicator"]["jobs"]["crashed"]["value"], 1);
    let one = reply(get("/_node/_local/_stats/couchdb/httpd_status_codes/201")).json_body();
    assert_eq!(one["value"], 1);
    assert_eq!(
        get("/_node/_local/_stats/couchdb/nope").unwrap_err().status,
        404
    );
    let prom = reply(get("/_node/_local/_prometheus"));
    assert!(prom
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(prom.body).unwrap();
    assert!(
        text.contains("couchdb_httpd_status_codes{code=\"201\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("couch_replicator_jobs_total 2\n"), "{text}");
    let system = reply(get("/_node/_local/_system")).json_body();
    assert_eq!(system, json!({"uptime": 12, "memory": {"total": 1048576}}));
    let versions = reply(get("/_node/settee@127.0.0.1/_versions")).json_body();
    assert_eq!(versions["javascript_engine"]["name"], "quickjs");
    let anon = serve(&cfg, &c, Request::new("GET", "/_node/_local/_stats", ""));
    assert_eq!(anon.unwrap_err().status, 401);
    let post = serve(
        &cfg,
        &c,
        as_admin(Request::new("POST", "/_node/_local/_stats", "")),
    );
    assert_eq!(post.unwrap_err().status, 405);
}
