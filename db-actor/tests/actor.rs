//! A database actor's request cycle natively: the engine run, reads run
//! again once their contents come from the bucket, uploads and deletions
//! in the bucket, and each request's effects announced.

mod common;

use base64::Engine as _;
use common::MemoryBucket;
use db_actor::actor::{Actor, Announce};
use db_actor::bucket_sync::BucketSync;
use db_actor::build_scheduler::{BuildHost, BuildScheduler};
use db_actor::reply::Reply;
use db_actor::Database;
use futures::executor::block_on;
use serde_json::{json, Value};
use shared::active_tasks::IndexerTask;
use shared::config::Limits;
use shared::http::{Request, Response};
use shared::sqlite::SqliteSql;
use shared::user::UserCtx;
use shared::users::UsersConfig;
use std::cell::RefCell;

#[derive(Default)]
struct Recorder(RefCell<Vec<String>>, std::cell::Cell<(u64, u64)>);

impl Recorder {
    fn take(&self) -> Vec<String> {
        self.0.take()
    }
    fn note(&self, what: String) {
        self.0.borrow_mut().push(what);
    }
}

impl Announce for Recorder {
    fn wake(&self) {
        self.note("wake".into());
    }
    fn updated(&self, db: &str) {
        self.note(format!("updated {db}"));
    }
    async fn created(&self, db: &str) -> Result<(), String> {
        self.note(format!("created {db}"));
        Ok(())
    }
    async fn deleted(&self, db: &str) -> Result<(), String> {
        self.note(format!("deleted {db}"));
        Ok(())
    }
    async fn replicator_changed(&self) {
        self.note("replicator".into());
    }
    fn counted(&self, db: &str, reads: u64, writes: u64) {
        assert!(
            ["db", "_replicator"].contains(&db),
            "counted for the database served: {db}"
        );
        let (r, w) = self.1.get();
        self.1.set((r + reads, w + writes));
    }
}

/// Builds never wait here: every query's budget covers its index.
struct NoAlarms;

impl BuildHost for NoAlarms {
    async fn set_alarm(&self) -> Result<(), String> {
        Err("no alarm expected".into())
    }
    async fn sleep(&self, _ms: u64) {}
    fn now(&self) -> u64 {
        0
    }
    async fn report_tasks(&self, _db: &str, _tasks: Vec<IndexerTask>) {}
}

fn request(method: &str, url: &str, body: Option<Value>) -> Request {
    let (path, qs) = url.split_once('?').unwrap_or((url, ""));
    let mut req = Request::new(method, path, qs).with_header("content-type", "application/json");
    if let Some(b) = body {
        req = req.with_body(b.to_string());
    }
    req.user = UserCtx::admin("admin");
    req
}

fn done(r: Result<Reply, String>) -> Response {
    match r {
        Ok(Reply::Done(r)) => r,
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn requests_run_with_the_bucket_and_announce_what_they_did() {
    let sql = SqliteSql::memory();
    let limits = Limits::default();
    Database::new(&sql, limits).store.init_schema().unwrap();
    let sync = BucketSync::new(MemoryBucket::default(), 1000);
    let open = || Database::new(&sql, limits).with_remote(&sync.remote);
    let builds = BuildScheduler::default();
    let actor = Actor {
        open: &open,
        users: UsersConfig::default(),
        bucket: Some(&sync),
        builds: &builds,
        host: &NoAlarms,
    };
    let around = Recorder::default();
    let serve = |req: Request| done(block_on(actor.serve(&req, &around)));

    assert_eq!(serve(request("PUT", "/db", None)).status, 201);
    assert_eq!(around.take(), ["created db"]);

    let big: Vec<u8> = (0..5_000u32).map(|i| (i % 251) as u8).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&big);
    let doc = json!({"_attachments": {"big.bin": {"content_type": "application/octet-stream", "data": b64}}});
    assert_eq!(serve(request("PUT", "/db/doc", Some(doc))).status, 201);
    assert_eq!(around.take(), ["wake", "updated db"]);
    assert_eq!(
        sync.bucket.objects.borrow().len(),
        1,
        "uploaded at the end of the write"
    );

    // The read needs the contents: fetched, then the read runs again.
    let got = serve(request("GET", "/db/doc/big.bin", None));
    assert_eq!(got.status, 200);
    assert_eq!(got.body, big);
    assert!(around.take().is_empty(), "a read announces nothing");

    let view = json!({"views": {"all": {"map": "function (doc) { emit(doc._id, 1); }"}}});
    serve(request("PUT", "/db/_design/d", Some(view)));
    around.take();
    let rows = serve(request("GET", "/db/_design/d/_view/all", None)).json_body();
    assert_eq!(
        rows["rows"],
        json!([{"id": "doc", "key": "doc", "value": 1}])
    );

    // One document, then a design document written; a read of the
    // attachment and one of the view.
    assert_eq!(around.1.get(), (2, 2));
    let docs = json!({"docs": [{"_id": "x"}, {"_id": "y"}, {"_id": "z"}]});
    serve(request("POST", "/db/_bulk_docs", Some(docs)));
    assert_eq!(
        around.1.get(),
        (2, 5),
        "each document of a bulk write counts"
    );

    assert_eq!(serve(request("DELETE", "/db", None)).status, 200);
    assert_eq!(around.take(), ["wake", "updated db", "wake", "deleted db"]);
    assert!(
        sync.bucket.objects.borrow().is_empty(),
        "a deleted database's contents go"
    );
}

#[test]
fn writes_to_replicator_tell_its_registry() {
    let sql = SqliteSql::memory();
    let limits = Limits::default();
    Database::new(&sql, limits).store.init_schema().unwrap();
    let open = || Database::new(&sql, limits);
    let builds = BuildScheduler::default();
    let actor: Actor<MemoryBucket, NoAlarms> = Actor {
        open: &open,
        users: UsersConfig::default(),
        bucket: None,
        builds: &builds,
        host: &NoAlarms,
    };
    let around = Recorder::default();
    let serve = |req: Request| done(block_on(actor.serve(&req, &around)));
    serve(request("PUT", "/_replicator", None));
    assert_eq!(around.take(), ["created _replicator", "replicator"]);
    let rep = json!({"source": "a", "target": "b"});
    assert_eq!(
        serve(request("PUT", "/_replicator/r", Some(rep))).status,
        201
    );
    assert_eq!(around.take(), ["wake", "updated _replicator", "replicator"]);
    serve(request("GET", "/_replicator/r", None));
    assert!(around.take().is_empty());
}
