//! `DbActor`: one Durable Object per database. Each request is served by
//! [`crate::actor::Actor`]; this class holds what lives between requests
//! and gives it the runtime: storage, the adapters of [`super::runtime`],
//! stubs of the catalog and the replicator, response streams and sockets.

use super::feeds::open_feed;
use super::runtime::{bucket_from_env, now_secs, Host, Ws, R2};
use crate::actor::{Actor, Announce};
use crate::bucket_sync::BucketSync;
use crate::build_scheduler::BuildScheduler;
use crate::database::ActorCache;
use crate::feed::{ChangeSource, FeedHost};
use crate::reply::Reply;
use crate::subscriptions;
use crate::Database;
use futures::channel::oneshot;
use platform::do_sql::DoSql;
use platform::worker_http::{from_worker, to_worker};
use platform::{call_catalog, call_replicator, env_text};
use shared::actor_call::{CatalogCall, ReplicatorCall, REGISTRY_NAME};
use shared::config::Limits;
use shared::http::Response as CouchResponse;
use shared::node_config::{read_actor_settings, SETTINGS_HEADER};
use shared::stats::Stats;
use shared::users::UsersConfig;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

/// What the actor keeps between requests.
struct Inner {
    state: State,
    sql: DoSql,
    /// What requests read of storage and keep (this actor makes every
    /// change to it).
    cache: ActorCache,
    env: Env,
    limits: Limits,
    users: UsersConfig,
    /// Long-polls waiting for the next write.
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
    /// A `_db_updates` report is scheduled.
    update_pending: Cell<bool>,
    /// Reads and writes counted since the last hand-over to the catalog,
    /// and whether one is scheduled.
    stats: RefCell<Stats>,
    stats_pending: Cell<bool>,
    /// The `ATTACHMENTS` R2 bucket, when bound, and what requests need of it.
    bucket: Option<BucketSync<R2>>,
    /// Index builds, run in alarms.
    builds: BuildScheduler,
}

/// How often, at most, a database reports writes to the catalog.
const UPDATE_REPORT_MS: u64 = 500;

impl Inner {
    fn db(&self) -> Database<'_> {
        self.db_with(self.limits)
    }

    fn db_with(&self, limits: Limits) -> Database<'_> {
        let db = Database::new(&self.sql, limits).with_cache(&self.cache);
        match &self.bucket {
            Some(sync) => db.with_remote(&sync.remote),
            None => db,
        }
    }

    /// Tells every waiting feed and WebSocket subscriber about a write.
    fn wake(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
        let sockets: Vec<Ws> = self.state.get_websockets().into_iter().map(Ws).collect();
        subscriptions::push(&self.db(), &sockets);
    }

    fn subscribe(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().push(tx);
        rx
    }

    /// Tells the replicator registry that `_replicator` changed (documents
    /// written by any means: PUT, `_bulk_docs`, replication into it). The
    /// registry reads the changes itself, in its own alarm.
    async fn poke_replicator(&self) {
        if let Err(e) = call_replicator(&self.env, REGISTRY_NAME, &ReplicatorCall::Poke).await {
            worker::console_error!("poking the replicator registry failed: {e}");
        }
    }

    /// Tells the catalog that this database was created, updated or deleted.
    async fn report(&self, call: CatalogCall) -> std::result::Result<(), String> {
        call_catalog(&self.env, &call, "")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Tells the catalog (for `_db_updates`) that this database changed: at
/// most once per [`UPDATE_REPORT_MS`], at the end of the window, so a burst
/// of writes costs one report and its last write is never missed.
fn note_update(inner: &Rc<Inner>, name: String) {
    if inner.update_pending.replace(true) {
        return;
    }
    let inner = inner.clone();
    wasm_bindgen_futures::spawn_local(async move {
        worker::Delay::from(Duration::from_millis(UPDATE_REPORT_MS)).await;
        inner.update_pending.set(false);
        if let Err(e) = inner.report(CatalogCall::Updated(name.clone())).await {
            worker::console_error!("_db_updates report for {name} failed: {e}");
        }
        // Indexes follow writes in the alarm, so the first query after a
        // bulk load finds them built.
        if inner.db().has_views().unwrap_or(false) {
            if let Err(e) = inner
                .builds
                .want(&Host(&inner.state, &inner.env), Vec::new())
                .await
            {
                worker::console_error!("scheduling view updates in {name} failed: {e}");
            }
        }
    });
}

/// How often, at most, a database hands its read and write counts to the
/// catalog (for `_stats`).
const STATS_REPORT_MS: u64 = 5_000;

/// Hands the counts over at the end of the window, once per window.
fn note_stats(inner: &Rc<Inner>) {
    if inner.stats_pending.replace(true) {
        return;
    }
    let inner = inner.clone();
    wasm_bindgen_futures::spawn_local(async move {
        worker::Delay::from(Duration::from_millis(STATS_REPORT_MS)).await;
        inner.stats_pending.set(false);
        let delta = inner.stats.take();
        if let Err(e) = inner.report(CatalogCall::Sync(delta.clone())).await {
            inner.stats.borrow_mut().merge(&delta);
            worker::console_error!("handing statistics to the catalog failed: {e}");
        }
    });
}

/// One CouchDB database.
#[durable_object]
pub struct DbActor {
    inner: Rc<Inner>,
}

/// The runtime's side of a request's effects.
struct Around<'a>(&'a Rc<Inner>);

impl Announce for Around<'_> {
    fn wake(&self) {
        self.0.wake();
    }

    fn updated(&self, db: &str) {
        note_update(self.0, db.to_string());
    }

    async fn created(&self, db: &str) -> std::result::Result<(), String> {
        self.0.report(CatalogCall::Added(db.to_string())).await
    }

    async fn deleted(&self, db: &str) -> std::result::Result<(), String> {
        self.0.report(CatalogCall::Removed(db.to_string())).await
    }

    async fn replicator_changed(&self) {
        self.0.poke_replicator().await;
    }

    fn counted(&self, db: &str, reads: u64, writes: u64) {
        if reads + writes == 0 {
            return;
        }
        let mut stats = self.0.stats.borrow_mut();
        stats.seen(db, now_secs());
        stats.count("couchdb.database_reads", reads);
        stats.count("couchdb.database_writes", writes);
        drop(stats);
        note_stats(self.0);
    }
}

impl DurableObject for DbActor {
    fn new(state: State, env: Env) -> Self {
        let sql = DoSql::new(&state);
        let lookup = |k: &str| env_text(&env, k);
        let (limits, users) = (
            Limits::from_lookup(lookup),
            UsersConfig::from_lookup(lookup),
        );
        let bucket = bucket_from_env(&env);
        let inner = Inner {
            sql,
            env,
            limits,
            users,
            waiters: RefCell::new(Vec::new()),
            update_pending: Cell::new(false),
            stats: RefCell::default(),
            stats_pending: Cell::new(false),
            builds: BuildScheduler::default(),
            bucket,
            cache: ActorCache::default(),
            state,
        };
        if let Err(e) = inner.db().store.init_schema() {
            worker::console_error!("schema initialisation failed: {e}");
        }
        DbActor {
            inner: Rc::new(inner),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let inner = &self.inner;
        let raw = from_worker(&mut req).await?;
        let head = raw.method == "HEAD";
        // Values written through `_config`, as the router hands them on.
        let (limits, users) = match raw.header(SETTINGS_HEADER) {
            Some(h) => {
                let set = read_actor_settings(h);
                let lookup = |k: &str| set.get(k).cloned().or_else(|| env_text(&inner.env, k));
                (
                    Limits::from_lookup(lookup),
                    UsersConfig::from_lookup(lookup),
                )
            }
            None => (inner.limits, inner.users),
        };
        let creq = match raw.decoded(limits.max_http_request_size) {
            Ok(r) => r,
            Err(e) => return to_worker(CouchResponse::error(&e), head),
        };
        let open = || inner.db_with(limits);
        let actor = Actor {
            open: &open,
            users,
            bucket: inner.bucket.as_ref(),
            builds: &inner.builds,
            host: &Host(&inner.state, &inner.env),
        };
        let reply = actor
            .serve(&creq, &Around(inner))
            .await
            .map_err(worker::Error::RustError)?;
        match reply {
            Reply::Subscribe { params, since } => {
                let pair = WebSocketPair::new()?;
                // Accepted through the hibernation API: idle subscribers
                // keep no isolate awake.
                self.inner.state.accept_web_socket(&pair.server);
                subscriptions::start(&self.inner.db(), &Ws(pair.server), params, since);
                Response::from_websocket(pair.client)
            }
            reply => open_feed(&self.inner, reply, head),
        }
    }

    /// Builds view indexes (see [`BuildScheduler::round`]).
    async fn alarm(&self) -> Result<Response> {
        let host = Host(&self.inner.state, &self.inner.env);
        self.inner
            .builds
            .round(&host, &self.inner.db())
            .await
            .map_err(worker::Error::RustError)?;
        Response::empty()
    }

    /// A subscriber may send `{"since": SEQ}` to resume from a sequence.
    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        if let WebSocketIncomingMessage::String(text) = message {
            subscriptions::resume(&self.inner.db(), &Ws(ws), &text);
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        reason: String,
        _clean: bool,
    ) -> Result<()> {
        // 1005 (no code) and 1006 (abnormal) may not be sent back: answer 1000.
        let code = match code {
            1005 | 1006 => 1000,
            c => c as u16,
        };
        let _ = ws.close(Some(code), Some(reason));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        let _ = ws.close(Some(1011), Some("error"));
        Ok(())
    }
}

impl FeedHost for Inner {
    fn with_source<R>(&self, f: impl FnOnce(&dyn ChangeSource) -> R) -> R {
        f(&self.db())
    }

    fn subscribe(&self) -> oneshot::Receiver<()> {
        Inner::subscribe(self)
    }
}
