//! Index builds handed from queries to alarm rounds, with the alarm and
//! timer in memory.

mod common;

use common::Db;
use db_actor::api;
use db_actor::build_scheduler::{BuildHost, BuildScheduler, Run, RERUN_BUILD_BUDGET};
use db_actor::reply::Reply;
use futures::executor::block_on;
use futures::future::{join, pending};
use serde_json::{json, Value};
use shared::active_tasks::IndexerTask;
use shared::http::{Request, Response};
use shared::users::UsersConfig;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Counts alarms set; its timer fires at once or never.
struct TestHost {
    alarms: Cell<u32>,
    timer_fires: bool,
    /// What each round reported for `_active_tasks`.
    reports: RefCell<Vec<Vec<IndexerTask>>>,
}

impl TestHost {
    fn new(timer_fires: bool) -> Self {
        TestHost {
            alarms: Cell::new(0),
            timer_fires,
            reports: RefCell::default(),
        }
    }
}

impl BuildHost for TestHost {
    async fn set_alarm(&self) -> Result<(), String> {
        self.alarms.set(self.alarms.get() + 1);
        Ok(())
    }
    async fn sleep(&self, _ms: u64) {
        if !self.timer_fires {
            pending::<()>().await
        }
    }
    fn now(&self) -> u64 {
        1000 + self.reports.borrow().len() as u64
    }
    async fn report_tasks(&self, db: &str, tasks: Vec<IndexerTask>) {
        assert!(tasks.iter().all(|t| t.database == db));
        self.reports.borrow_mut().push(tasks);
    }
}

/// Yields to the other future once.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A database with a view over 45 documents, whose invocations may each
/// map only 10.
fn database() -> Db {
    let mut db = Db::new();
    db.limits.view_build_batch = 10;
    let ddoc = json!({"views": {"v": {"map": "function(doc){ emit(doc.n, null); }"}}});
    assert_eq!(db.json("PUT", "/db/_design/d", Some(ddoc)).0, 201);
    let docs: Vec<Value> = (0..45).map(|n| json!({"n": n})).collect();
    assert_eq!(
        db.json("POST", "/db/_bulk_docs", Some(json!({"docs": docs})))
            .0,
        201
    );
    db
}

/// One run of a request, as the binding runs it.
fn run(db: &Db, url: &str, rerun: bool) -> Run<Response> {
    let (path, qs) = url.split_once('?').unwrap_or((url, ""));
    let req = Request {
        user: shared::user::UserCtx::admin("admin"),
        ..Request::new("GET", path, qs)
    };
    let engine = db.engine();
    if rerun {
        engine.builds.limit(RERUN_BUILD_BUDGET);
    }
    let users = UsersConfig {
        iterations: 5,
        allow_signup: true,
    };
    let Reply::Done(resp) = api::handle(&engine, &req, &|| "t".into(), users).reply else {
        panic!("a view query answers at once");
    };
    let (awaited, lazy) = engine.builds.take();
    (resp, awaited, lazy)
}

fn total(resp: &Response) -> usize {
    resp.json_body()["rows"].as_array().map_or(0, Vec::len)
}

/// A query of view `v` of `_design/d`, with an alarm round run each time
/// one is set until it answers: the answer and how many rounds ran.
fn query_in_rounds(db: &Db, host: &TestHost, builds: &BuildScheduler) -> (Response, u32) {
    let answer: RefCell<Option<Response>> = RefCell::new(None);
    let rounds = Cell::new(0);
    let query = async {
        let r = builds
            .answer(host, |rerun| run(db, "/db/_design/d/_view/v", rerun))
            .await
            .unwrap();
        *answer.borrow_mut() = Some(r);
    };
    let alarms = async {
        for _ in 0..100 {
            YieldNow(false).await;
            if answer.borrow().is_some() {
                return;
            }
            if host.alarms.get() > rounds.get() {
                rounds.set(rounds.get() + 1);
                builds.round(host, &db.engine()).await.unwrap();
            }
        }
        panic!("the query never answered");
    };
    block_on(join(query, alarms));
    (answer.into_inner().unwrap(), rounds.get())
}

#[test]
fn a_query_waits_for_alarm_rounds_and_answers_the_whole_view() {
    let db = database();
    let host = TestHost::new(false);
    let builds = BuildScheduler::default();
    let (answer, rounds) = query_in_rounds(&db, &host, &builds);
    assert_eq!(answer.status, 200);
    assert_eq!(total(&answer), 45);
    // 10 mapped by the query, 10 per round: several rounds, each its own alarm.
    assert!(rounds >= 3, "{rounds} rounds");
    // And one more for the auto-updated views, which those rounds left.
    assert_eq!(host.alarms.get(), rounds + 1);
    // Built: the next query needs no round.
    let before = host.alarms.get();
    let again = block_on(builds.answer(&host, |rerun| run(&db, "/db/_design/d/_view/v", rerun)));
    assert_eq!(total(&again.unwrap()), 45);
    assert_eq!(host.alarms.get(), before);
}

#[test]
fn rounds_for_a_waiting_query_build_its_view_first_and_the_others_after() {
    let db = database();
    let other = json!({"views": {"w": {"map": "function(doc){ emit(doc.n, 1); }"}}});
    assert_eq!(db.json("PUT", "/db/_design/e", Some(other)).0, 201);
    let host = TestHost::new(false);
    let builds = BuildScheduler::default();
    let (answer, mut rounds) = query_in_rounds(&db, &host, &builds);
    assert_eq!(total(&answer), 45);
    let stale = |view: &str| {
        let url = format!("/db/_design/e/_view/{view}?update=false");
        total(&block_on(builds.answer(&host, |rerun| run(&db, &url, rerun))).unwrap())
    };
    assert_eq!(
        stale("w"),
        0,
        "the rounds the query waited for built only its view"
    );
    // The rounds armed after it build the other view.
    for _ in 0..20 {
        if host.alarms.get() == rounds {
            break;
        }
        rounds += 1;
        block_on(builds.round(&host, &db.engine())).unwrap();
    }
    assert_eq!(host.alarms.get(), rounds, "no round left to run");
    assert_eq!(stale("w"), 45);
}

#[test]
fn a_lost_alarm_delays_a_query_but_never_strands_it() {
    let db = database();
    // No round ever runs; the timer fires, and each rerun maps a little.
    let host = TestHost::new(true);
    let builds = BuildScheduler::default();
    let r = block_on(builds.answer(&host, |rerun| run(&db, "/db/_design/d/_view/v", rerun)));
    assert_eq!(total(&r.unwrap()), 45);
    assert_eq!(
        host.alarms.get(),
        1,
        "one alarm is armed until a round runs"
    );
}

#[test]
fn update_lazy_answers_at_once_and_wants_the_view_built() {
    let db = database();
    let host = TestHost::new(false);
    let builds = BuildScheduler::default();
    let url = "/db/_design/d/_view/v?update=lazy";
    let r = block_on(builds.answer(&host, |rerun| run(&db, url, rerun))).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(host.alarms.get(), 1);
    for _ in 0..10 {
        block_on(builds.round(&host, &db.engine())).unwrap();
    }
    let r = block_on(builds.answer(&host, |rerun| {
        run(&db, "/db/_design/d/_view/v?update=false", rerun)
    }));
    assert_eq!(total(&r.unwrap()), 45);
}

#[test]
fn rounds_report_their_builds_for_active_tasks() {
    let db = database();
    let host = TestHost::new(false);
    let builds = BuildScheduler::default();
    let url = "/db/_design/d/_view/v?update=lazy";
    block_on(builds.answer(&host, |rerun| run(&db, url, rerun))).unwrap();
    for _ in 0..10 {
        block_on(builds.round(&host, &db.engine())).unwrap();
    }
    let reports = host.reports.into_inner();
    let (last, running) = reports.split_last().expect("rounds reported");
    assert_eq!(
        last,
        &Vec::<IndexerTask>::new(),
        "the finished build is cleared"
    );
    assert!(running.len() >= 2, "{reports:?}");
    let done: Vec<u64> = running.iter().map(|r| r[0].changes_done).collect();
    assert!(
        done.windows(2).all(|w| w[0] < w[1]),
        "progress grows: {done:?}"
    );
    for r in running {
        let t = &r[0];
        assert_eq!(
            (t.database.as_str(), t.design_document.as_str()),
            ("db", "_design/d")
        );
        assert_eq!(t.total_changes, 46, "the design document and 45 documents");
        assert_eq!(t.started_on, running[0][0].started_on);
        assert!(t.progress() < 100);
    }
    assert_eq!(
        reports.len(),
        running.len() + 1,
        "nothing reported once idle"
    );
}
