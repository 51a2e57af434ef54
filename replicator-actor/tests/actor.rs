//! The replicator actor's lifecycle natively: the registry's alarm
//! processing `_replicator` documents, and a job's start, alarm runs,
//! completion and stop, over a runtime whose databases are served by the
//! real engine and whose calls to other actors are recorded.

mod common;

use common::Db;
use futures::executor::block_on;
use replicator_actor::actor::Actor;
use replicator_actor::job::Origin;
use replicator_actor::runtime::Runtime;
use serde_json::{json, Value};
use shared::actor_call::{ReplicatorCall, REGISTRY_NAME};
use shared::error::CouchResult;
use shared::replication::params::{Endpoint, RepParams};
use shared::replication::peer::{PeerRequest, PeerResponse, RepError, Transport};
use shared::sqlite::SqliteSql;
use shared::user::UserCtx;
use std::cell::{Cell, RefCell};

/// The platform as a test sees it.
struct TestRuntime<'a> {
    dbs: Vec<&'a Db>,
    /// Databases answering 404, as a deleted one does.
    gone: RefCell<Vec<String>>,
    /// Every call to another actor, in order.
    calls: RefCell<Vec<(String, ReplicatorCall)>>,
    /// Every database end asked for, with the user it acts as.
    peers: RefCell<Vec<(String, UserCtx)>>,
    /// The alarm: `Some(in_ms)` when set.
    alarm: Cell<Option<u64>>,
    clock: Cell<u64>,
    admin: Option<String>,
}

impl<'a> TestRuntime<'a> {
    fn new(dbs: Vec<&'a Db>) -> Self {
        TestRuntime {
            dbs,
            gone: RefCell::new(vec![]),
            calls: RefCell::new(vec![]),
            peers: RefCell::new(vec![]),
            alarm: Cell::new(None),
            clock: Cell::new(1_796_360_400_000),
            admin: Some("root".into()),
        }
    }

    fn calls(&self) -> Vec<(String, ReplicatorCall)> {
        self.calls.borrow_mut().drain(..).collect()
    }
}

/// A database end: served, or answering 404.
enum End<'a> {
    Db(&'a Db),
    Missing,
}

impl Transport for End<'_> {
    async fn send(&self, req: PeerRequest) -> Result<PeerResponse, RepError> {
        match self {
            End::Db(db) => db.send(req).await,
            End::Missing => Ok(PeerResponse {
                status: 404,
                body: br#"{"error":"not_found","reason":"Database does not exist."}"#.to_vec(),
            }),
        }
    }
}

impl Runtime for TestRuntime<'_> {
    type Db<'b>
        = End<'b>
    where
        Self: 'b;

    fn peer<'b>(&'b self, end: &'b Endpoint, user: &UserCtx) -> End<'b> {
        let Endpoint::Local { db } = end else {
            return End::Missing;
        };
        self.peers.borrow_mut().push((db.clone(), user.clone()));
        match self.dbs.iter().find(|d| &d.name == db) {
            Some(d) if !self.gone.borrow().contains(db) => End::Db(d),
            _ => End::Missing,
        }
    }

    async fn call(&self, actor: &str, call: &ReplicatorCall) -> CouchResult<(u16, Value)> {
        self.calls
            .borrow_mut()
            .push((actor.to_string(), call.clone()));
        Ok((200, json!({"ok": true})))
    }

    async fn server_uuid(&self) -> CouchResult<String> {
        Ok("s1".into())
    }

    fn admin_name(&self) -> Option<String> {
        self.admin.clone()
    }

    fn now(&self) -> u64 {
        self.clock.set(self.clock.get() + 1);
        self.clock.get()
    }

    async fn set_alarm(&self, in_ms: u64) -> CouchResult<()> {
        self.alarm.set(Some(in_ms));
        Ok(())
    }

    async fn delete_alarm(&self) -> CouchResult<()> {
        self.alarm.set(None);
        Ok(())
    }

    async fn sleep(&self, _ms: u64) {}

    fn log(&self, message: &str) {
        eprintln!("{message}");
    }
}

fn starts(calls: &[(String, ReplicatorCall)]) -> Vec<(String, Value)> {
    calls
        .iter()
        .filter_map(|(to, c)| match c {
            ReplicatorCall::JobStart(body) => Some((to.clone(), body.clone())),
            _ => None,
        })
        .collect()
}

/// A poke makes the registry's alarm read `_replicator`: each document
/// starts its job as its owner (with the roles of their `_users`
/// document; the server admin acts as admin), a deleted document stops
/// its job, many documents are read page by page, and a deleted
/// `_replicator` stops every job and is read again from its start.
#[test]
fn the_registry_starts_and_stops_the_jobs_documents_describe() {
    let rep = Db::new("_replicator", "s1");
    let users = Db::new("_users", "s1");
    users.put(
        "org.couchdb.user:bob",
        json!({"name": "bob", "type": "user", "roles": ["ops"], "password": "pw"}),
    );
    let rt = TestRuntime::new(vec![&rep, &users]);
    let actor = Actor::new(SqliteSql::memory(), rt);
    block_on(actor.handle(ReplicatorCall::Poke)).unwrap();
    assert_eq!(actor.rt.alarm.get(), Some(0));

    let bobs = rep.put(
        "bobs",
        json!({"source": "a", "target": "b", "owner": "bob"}),
    );
    rep.put(
        "roots",
        json!({"source": "a", "target": "c", "owner": "root"}),
    );
    block_on(actor.alarm()).unwrap();
    let calls = actor.rt.calls();
    let started = starts(&calls);
    assert_eq!(started.len(), 2, "{calls:?}");
    let (bob_job, bob_body) = &started[0];
    assert_eq!(bob_body["origin"], json!({"kind": "doc", "doc_id": "bobs"}));
    assert_eq!(bob_body["user"]["name"], "bob");
    assert_eq!(bob_body["user"]["roles"], json!(["ops"]));
    assert_eq!(&bob_body["id"], bob_job);
    assert_eq!(started[1].1["user"]["roles"], json!(["_admin"]));
    assert!(actor
        .rt
        .peers
        .borrow()
        .iter()
        .any(|(db, u)| db == "_users" && u.is_admin()));

    // Nothing new: nothing done.
    block_on(actor.alarm()).unwrap();
    assert!(actor.rt.calls().is_empty());

    rep.http("DELETE", "bobs", &format!("rev={bobs}"), None);
    block_on(actor.alarm()).unwrap();
    assert_eq!(
        actor.rt.calls(),
        vec![(bob_job.clone(), ReplicatorCall::JobStop)]
    );

    for i in 0..150 {
        rep.put(
            &format!("many{i:03}"),
            json!({"source": "a", "target": format!("t{i}"), "owner": "root"}),
        );
    }
    block_on(actor.alarm()).unwrap();
    assert_eq!(starts(&actor.rt.calls()).len(), 150);

    actor.rt.gone.borrow_mut().push("_replicator".into());
    block_on(actor.alarm()).unwrap();
    let stops = actor
        .rt
        .calls()
        .into_iter()
        .filter(|(_, c)| *c == ReplicatorCall::JobStop)
        .count();
    assert_eq!(stops, 151);
    let docs = block_on(actor.handle(ReplicatorCall::Docs)).unwrap();
    assert_eq!(docs, json!([]));
    // A new `_replicator` is read from its start.
    actor.rt.gone.borrow_mut().clear();
    block_on(actor.alarm()).unwrap();
    assert_eq!(starts(&actor.rt.calls()).len(), 151);
}

fn job_start(id: &str, params: &RepParams, doc_id: &str) -> ReplicatorCall {
    ReplicatorCall::JobStart(json!({
        "id": id,
        "params": params,
        "origin": Origin::Doc { doc_id: doc_id.into() },
        "user": UserCtx::admin("root"),
    }))
}

/// A job is started (and a repeated identical start joins it), runs in
/// its alarm until complete, writes its state into its document, wakes
/// whoever waits, and is stopped and forgotten.
#[test]
fn a_job_runs_in_its_alarm_records_completion_and_stops() {
    let (rep, a, b) = common::one_shot_fixture();
    let params =
        RepParams::parse(json!({"source": "a", "target": "b"}).as_object().unwrap()).unwrap();
    let actor = Actor::new(SqliteSql::memory(), TestRuntime::new(vec![&rep, &a, &b]));

    let first = block_on(actor.handle(job_start("j1", &params, "once"))).unwrap();
    assert_eq!(first["state"], "pending");
    assert_eq!(actor.rt.alarm.get(), Some(0));
    let calls = actor.rt.calls();
    assert!(
        matches!(&calls[..], [(to, ReplicatorCall::Report(s))] if to == REGISTRY_NAME && s["id"] == "j1")
    );
    let again = block_on(actor.handle(job_start("j1", &params, "once"))).unwrap();
    assert_eq!(again, first);
    assert!(actor.rt.calls().is_empty(), "an identical start joins");

    // While pending, a wait ends with the timeout and the current state.
    let waited = block_on(actor.handle(ReplicatorCall::JobWait { ms: 10 })).unwrap();
    assert_eq!(waited["state"], "pending");

    block_on(actor.alarm()).unwrap();
    assert_eq!(b.doc_count(), 5);
    assert_eq!(
        actor.rt.alarm.get(),
        None,
        "a completed one-shot sets no alarm"
    );
    let status = block_on(actor.handle(ReplicatorCall::JobStatus)).unwrap();
    assert_eq!(status["state"], "completed");
    assert!(actor
        .rt
        .calls()
        .iter()
        .any(|(_, c)| matches!(c, ReplicatorCall::Report(s) if s["state"] == "completed")));
    let (_, doc) = rep.http("GET", "once", "", None);
    assert_eq!(doc["_replication_state"], "completed");
    assert_eq!(doc["_replication_stats"]["docs_written"], 5);
    // The document's writes were the system's, and the job's reads the
    // job user's.
    let peers = actor.rt.peers.borrow().clone();
    assert!(
        peers
            .iter()
            .any(|(db, u)| db == "_replicator"
                && u.roles.iter().any(|r| r.starts_with("_replicator")))
    );
    assert!(peers
        .iter()
        .any(|(db, u)| db == "a" && u.name.as_deref() == Some("root")));

    // Another alarm does nothing more.
    block_on(actor.alarm()).unwrap();
    assert!(actor.rt.calls().is_empty());

    let stopped = block_on(actor.handle(ReplicatorCall::JobStop)).unwrap();
    assert_eq!(stopped, json!({"ok": true, "existed": true}));
    assert_eq!(
        actor.rt.calls(),
        vec![(
            REGISTRY_NAME.to_string(),
            ReplicatorCall::Remove("j1".into())
        )]
    );
    let err = block_on(actor.handle(ReplicatorCall::JobStatus)).unwrap_err();
    assert_eq!(err.status, 404);
    let waited = block_on(actor.handle(ReplicatorCall::JobWait { ms: 10 })).unwrap();
    assert_eq!(waited, json!({"state": "stopped"}));
}

/// A start with other parameters replaces the job, even while the old
/// one is active.
#[test]
fn a_start_with_new_parameters_restarts_the_job() {
    let rep = Db::new("_replicator", "s1");
    let actor = Actor::new(SqliteSql::memory(), TestRuntime::new(vec![&rep]));
    let p1 = RepParams::parse(json!({"source": "a", "target": "b"}).as_object().unwrap()).unwrap();
    let p2 = RepParams::parse(json!({"source": "a", "target": "c"}).as_object().unwrap()).unwrap();
    block_on(actor.handle(job_start("j", &p1, "d"))).unwrap();
    block_on(actor.handle(job_start("j", &p2, "d"))).unwrap();
    let status = block_on(actor.handle(ReplicatorCall::JobStatus)).unwrap();
    assert_eq!(status["summary"]["target"], json!(p2.target.display()));
}
