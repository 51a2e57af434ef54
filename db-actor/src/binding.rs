//! The Durable Object classes: `DbActor` (one per database) and
//! `CatalogActor` (the single list of databases).

use crate::api::{self, DbEvent, Reply};
use crate::catalog::Catalog;
use crate::changes::Framing;
use crate::database::DbMeta;
use crate::feed::{self, ChangeSource};
use crate::remote::{self, RemoteBlobs};
use crate::views::{Refresh, ViewName};
use crate::Database;
use futures::channel::oneshot;
use futures::future::{select, Either};
use platform::do_sql::DoSql;
use platform::worker_http::{from_worker, to_worker};
use platform::{call_catalog, call_replicator, env_text};
use serde::{Deserialize, Serialize};
use shared::actor_call::{CatalogCall, ReplicatorCall, ATTACHMENTS_BINDING, REGISTRY_NAME};
use shared::changes::ChangesQuery;
use shared::config::Limits;
use shared::http::Response as CouchResponse;
use shared::users::UsersConfig;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

struct Inner {
    state: State,
    sql: DoSql,
    /// The database's meta, kept between requests (this actor makes every
    /// change to it).
    meta: RefCell<Option<DbMeta>>,
    env: Env,
    limits: Limits,
    users: UsersConfig,
    /// Long-polls waiting for the next write.
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
    /// A `_db_updates` report is scheduled.
    update_pending: Cell<bool>,
    /// The `ATTACHMENTS` R2 bucket, when bound, and what requests need of it.
    bucket: Option<(worker::Bucket, RemoteBlobs)>,
    /// Staged contents may be waiting for upload: true after a write, after
    /// a failed upload, and at start-up (an earlier instance may have died
    /// between its write and the upload).
    unsynced: Cell<bool>,
    /// Views the next alarm must build: queries wait for them (or asked
    /// for them with `update=lazy`).
    views_wanted: RefCell<Vec<ViewName>>,
    /// Queries waiting for the alarm to finish the views they need.
    build_waiters: RefCell<Vec<oneshot::Sender<()>>>,
    /// An alarm is set (a hint: one set by an earlier instance is unknown).
    alarm_armed: Cell<bool>,
}

/// How often, at most, a database reports writes to the catalog.
const UPDATE_REPORT_MS: u64 = 500;
/// How long a query waits for an index build round before looking again
/// (in case an alarm was lost with an earlier instance).
const BUILD_WAIT_MS: u64 = 30_000;
/// Documents a query that waited for a build may map itself when it runs
/// again: enough for the writes that came meanwhile, far below a budget.
const RERUN_BUILD_BUDGET: u64 = 1_000;

impl Inner {
    fn db(&self) -> Database<'_> {
        let db = Database::new(&self.sql, self.limits).with_cache(&self.meta);
        match &self.bucket {
            Some((_, remote)) => db.with_remote(remote),
            None => db,
        }
    }

    /// Fetches contents a read wanted from the bucket; false if none were.
    async fn fetch_wanted(&self, bucket: &worker::Bucket, remote: &RemoteBlobs) -> Result<bool> {
        let wanted = remote.take_wanted();
        let Ok(meta) = self.db().meta() else {
            return Ok(false);
        };
        for digest in &wanted {
            let key = remote::key(&meta.name, &meta.instance, digest);
            let object =
                bucket.get(key.as_str()).execute().await?.ok_or_else(|| {
                    worker::Error::RustError(format!("R2 object {key} is missing"))
                })?;
            let body = object
                .body()
                .ok_or_else(|| worker::Error::RustError(format!("R2 object {key} has no body")))?;
            remote.provide(digest, body.bytes().await?);
        }
        Ok(!wanted.is_empty())
    }

    /// Uploads staged contents (dropping each local copy once it is in the
    /// bucket) and deletes the ones compaction dropped. A failed upload
    /// leaves the content staged, served locally and retried next time.
    async fn sync_bucket(&self, bucket: &worker::Bucket, remote: &RemoteBlobs) -> Result<()> {
        let db = self.db();
        let Ok(meta) = db.meta() else {
            return Ok(());
        };
        let staged = db.store.staged_remote().map_err(couch_to_worker)?;
        for digest in staged {
            let Some(data) = db.store.blob(&digest).map_err(couch_to_worker)? else {
                continue;
            };
            let key = remote::key(&meta.name, &meta.instance, &digest);
            bucket.put(key, data).execute().await?;
            db.transact(|| db.store.unstage(&digest))
                .map_err(couch_to_worker)?;
        }
        for digest in remote.take_doomed() {
            bucket
                .delete(remote::key(&meta.name, &meta.instance, &digest))
                .await?;
        }
        Ok(())
    }

    /// Tells every waiting feed and WebSocket subscriber about a write.
    fn wake(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
        self.push_to_sockets();
    }

    /// Sends each WebSocket subscriber what changed since its cursor.
    /// Subscribers with the same parameters and cursor (the common case:
    /// all caught up) share one read.
    fn push_to_sockets(&self) {
        let mut pages: HashMap<(String, u64), (Vec<String>, u64)> = HashMap::new();
        for ws in self.state.get_websockets() {
            let Ok(Some(mut sub)) = ws.deserialize_attachment::<Subscriber>() else {
                continue;
            };
            let key = (sub.params.clone(), sub.cursor);
            if !pages.contains_key(&key) {
                let rows = self.rows_since(&sub.params, sub.cursor);
                pages.insert(key.clone(), rows);
            }
            let (rows, last) = &pages[&key];
            if rows.is_empty() {
                continue;
            }
            for r in rows {
                let _ = ws.send_with_str(r);
            }
            sub.cursor = *last;
            let _ = ws.serialize_attachment(&sub);
        }
    }

    /// Every change after `cursor` a subscription selects, as messages,
    /// and the cursor after them (errors are sent as a message too).
    fn rows_since(&self, params: &str, mut cursor: u64) -> (Vec<String>, u64) {
        let mut out = Vec::new();
        let q = match api::subscription_query(params) {
            Ok(q) => q,
            Err(e) => return (vec![e.to_json().to_string()], cursor),
        };
        loop {
            match feed::batch(&self.db(), &q, cursor, 0) {
                Ok(step) => {
                    out.extend(
                        step.page
                            .rows
                            .iter()
                            .map(|r| String::from_utf8_lossy(r).into_owned()),
                    );
                    cursor = step.page.last;
                    if step.caught_up() {
                        return (out, cursor);
                    }
                }
                Err(e) => {
                    out.push(e.to_json().to_string());
                    return (out, cursor);
                }
            }
        }
    }

    /// Starts a subscription on an accepted socket: its backlog now, the
    /// rest as writes happen.
    fn start_subscription(&self, ws: &WebSocket, params: String, since: u64) -> Result<()> {
        let (rows, cursor) = self.rows_since(&params, since);
        for r in &rows {
            ws.send_with_str(r)?;
        }
        ws.serialize_attachment(&Subscriber { params, cursor })
    }

    fn subscribe(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().push(tx);
        rx
    }

    /// Has the alarm build `views` (besides every auto-updated view).
    async fn schedule_build(&self, views: Vec<ViewName>) -> Result<()> {
        {
            let mut wanted = self.views_wanted.borrow_mut();
            for v in views {
                if !wanted.contains(&v) {
                    wanted.push(v);
                }
            }
        }
        if !self.alarm_armed.replace(true) {
            self.state.storage().set_alarm(0i64).await?;
        }
        Ok(())
    }

    /// One round of index building, as the alarm runs it: the wanted views
    /// first, then the auto-updated ones, within one invocation's budget.
    /// Another alarm follows while any is unfinished; waiting queries run
    /// again once none they wait for is.
    async fn build_round(&self) -> Result<()> {
        self.alarm_armed.set(false);
        let wanted = self.views_wanted.take();
        let db = self.db();
        let name = db.meta().map(|m| m.name).unwrap_or_default();
        let round = match db.refresh_views(&wanted) {
            Ok(r) => r,
            Err(e) => {
                worker::console_error!("view update in {name} failed: {}", e.reason);
                Refresh::default()
            }
        };
        for e in &round.failures {
            worker::console_error!("view update in {name} failed: {}", e.reason);
        }
        let still: Vec<ViewName> = round
            .unfinished
            .iter()
            .filter(|v| wanted.contains(v))
            .cloned()
            .collect();
        if still.is_empty() {
            for w in self.build_waiters.borrow_mut().drain(..) {
                let _ = w.send(());
            }
        }
        if !round.unfinished.is_empty() {
            self.schedule_build(still).await?;
        }
        Ok(())
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
    async fn report(&self, call: CatalogCall) -> Result<()> {
        call_catalog(&self.env, &call, "").await?;
        Ok(())
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
            if let Err(e) = inner.schedule_build(Vec::new()).await {
                worker::console_error!("scheduling view updates in {name} failed: {e}");
            }
        }
    });
}

fn couch_to_worker(e: shared::error::CouchError) -> worker::Error {
    worker::Error::RustError(e.reason)
}

/// Deletes every bucket object of a deleted database incarnation.
async fn drop_prefix(bucket: &worker::Bucket, prefix: &str) -> Result<()> {
    loop {
        let page = bucket.list().prefix(prefix).execute().await?;
        let keys: Vec<String> = page.objects().iter().map(|o| o.key()).collect();
        if !keys.is_empty() {
            bucket.delete_multiple(keys).await?;
        }
        if !page.truncated() {
            return Ok(());
        }
    }
}

/// The `ATTACHMENTS` bucket, if bound, with the size above which contents
/// go there (`R2_ATTACHMENT_THRESHOLD`).
fn bucket_from_env(env: &Env) -> Option<(worker::Bucket, RemoteBlobs)> {
    let bucket = env.bucket(ATTACHMENTS_BINDING).ok()?;
    let threshold = env
        .var("R2_ATTACHMENT_THRESHOLD")
        .ok()
        .and_then(|v| v.to_string().trim().parse().ok())
        .unwrap_or(remote::DEFAULT_THRESHOLD);
    Some((bucket, RemoteBlobs::new(threshold)))
}

/// One CouchDB database.
#[durable_object]
pub struct DbActor {
    inner: Rc<Inner>,
}

impl DbActor {
    /// Answers a request, with the views it found unfinished (it must wait
    /// for them and run again) and those it wants updated afterwards.
    /// `rerun`: it waited for a build before, so its own budget is small.
    fn handle(
        &self,
        creq: &shared::http::Request,
        rerun: bool,
    ) -> (api::Outcome, Vec<ViewName>, Vec<ViewName>) {
        let db = self.inner.db();
        if rerun {
            db.builds.limit(RERUN_BUILD_BUDGET);
        }
        let instance = || shared::uuids::next()[24..].to_string();
        let outcome = api::handle(&db, creq, &instance, self.inner.users);
        let (awaited, lazy) = db.builds.take();
        (outcome, awaited, lazy)
    }

    /// Answers a request, waiting while the alarm builds the indexes it
    /// needs: each invocation stays within its CPU budget however large
    /// the build.
    async fn handle_building(&self, creq: &shared::http::Request) -> Result<api::Outcome> {
        let (mut outcome, mut awaited, mut lazy) = self.handle(creq, false);
        while !awaited.is_empty() {
            let (tx, rx) = oneshot::channel();
            self.inner.build_waiters.borrow_mut().push(tx);
            self.inner.schedule_build(awaited).await?;
            let wait = worker::Delay::from(Duration::from_millis(BUILD_WAIT_MS));
            select(rx, wait).await;
            (outcome, awaited, lazy) = self.handle(creq, true);
        }
        if !lazy.is_empty() {
            self.inner.schedule_build(lazy).await?;
        }
        Ok(outcome)
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
            views_wanted: RefCell::new(Vec::new()),
            build_waiters: RefCell::new(Vec::new()),
            alarm_armed: Cell::new(false),
            bucket,
            unsynced: Cell::new(true),
            meta: RefCell::new(None),
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
        let head = req.inner().method() == "HEAD";
        let creq = match from_worker(&mut req)
            .await?
            .decoded(self.inner.limits.max_http_request_size)
        {
            Ok(r) => r,
            Err(e) => return to_worker(CouchResponse::error(&e), head),
        };
        let name = creq.path.first().cloned().unwrap_or_default();
        let bucket = self.inner.bucket.as_ref();
        if let Some((_, remote)) = bucket {
            remote.clear();
            remote.set_rerunnable(true);
        }
        let before = bucket.and_then(|_| self.inner.db().meta().ok());
        let mut outcome = self.handle_building(&creq).await?;
        // A read that needs contents from the bucket runs again with them
        // (writes never read contents; at most a few rounds).
        if let Some((b, remote)) = bucket {
            for _ in 0..3 {
                if outcome.event.is_some() || !self.inner.fetch_wanted(b, remote).await? {
                    break;
                }
                outcome = self.handle_building(&creq).await?;
            }
            if outcome.event.is_some() {
                self.inner.unsynced.set(true);
            }
            // Reads leave nothing to upload: they skip the staged-content query.
            if self.inner.unsynced.get() || remote.has_doomed() {
                match self.inner.sync_bucket(b, remote).await {
                    Ok(()) => self.inner.unsynced.set(false),
                    Err(e) => {
                        worker::console_error!("R2 attachment sync failed (will retry): {e}")
                    }
                }
            }
            // Kept-open feeds read later, without a rerun.
            remote.set_rerunnable(false);
            if let (Some(DbEvent::Deleted), Some(m)) = (&outcome.event, before) {
                if let Err(e) = drop_prefix(b, &remote::prefix(&m.name, &m.instance)).await {
                    worker::console_error!("dropping R2 contents of {} failed: {e}", m.name);
                }
            }
        }
        match outcome.event {
            Some(DbEvent::Created) => self.inner.report(CatalogCall::Added(name.clone())).await?,
            Some(DbEvent::Deleted) => {
                self.inner.wake();
                self.inner
                    .report(CatalogCall::Removed(name.clone()))
                    .await?;
            }
            Some(DbEvent::Updated) => {
                self.inner.wake();
                note_update(&self.inner, name.clone());
            }
            None => {}
        }
        if outcome.event.is_some() && name == shared::replication::REPLICATOR_DB {
            self.inner.poke_replicator().await;
        }
        match outcome.reply {
            Reply::Subscribe { params, since } => {
                let pair = WebSocketPair::new()?;
                // Accepted through the hibernation API: idle subscribers
                // keep no isolate awake.
                self.inner.state.accept_web_socket(&pair.server);
                self.inner.start_subscription(&pair.server, params, since)?;
                Response::from_websocket(pair.client)
            }
            reply => open_feed(&self.inner, reply, head),
        }
    }

    /// Builds view indexes (see [`Inner::build_round`]).
    async fn alarm(&self) -> Result<Response> {
        self.inner.build_round().await?;
        Response::empty()
    }

    /// A subscriber may send `{"since": SEQ}` to resume from a sequence.
    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let WebSocketIncomingMessage::String(text) = message else {
            return Ok(());
        };
        let Ok(Some(sub)) = ws.deserialize_attachment::<Subscriber>() else {
            return Ok(());
        };
        let since = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("since").cloned())
            .map(|v| shared::seq::since_from_json(&v));
        match since {
            Some(Ok(shared::seq::Since::Seq(n))) => {
                self.inner.start_subscription(&ws, sub.params, n)
            }
            Some(Ok(shared::seq::Since::Now)) => {
                let now = self
                    .inner
                    .db()
                    .store
                    .stats()
                    .map(|s| s.update_seq)
                    .unwrap_or(sub.cursor);
                self.inner.start_subscription(&ws, sub.params, now)
            }
            _ => ws.send_with_str(
                shared::error::CouchError::bad_request("send {\"since\": SEQ} to resume")
                    .to_json()
                    .to_string(),
            ),
        }
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

/// What a WebSocket subscriber keeps across hibernation: its query and
/// the last sequence it was sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Subscriber {
    params: String,
    cursor: u64,
}

/// Waits for the next write to this database, or `tick_ms`; true if a
/// write came. A receiver fires once: subscribe again after it does.
async fn next_change_or(rx: &mut oneshot::Receiver<()>, tick_ms: u64) -> bool {
    let delay = worker::Delay::from(Duration::from_millis(tick_ms.clamp(1, u32::MAX as u64)));
    matches!(select(rx, delay).await, Either::Left(_))
}

/// How long to wait before the next heartbeat or the timeout.
fn tick(q: &ChangesQuery, remaining: u64) -> u64 {
    q.heartbeat.unwrap_or(remaining).min(remaining).max(1)
}

fn streaming(
    stream: impl futures::Stream<Item = Result<Vec<u8>>> + 'static,
    content_type: &str,
) -> Result<Response> {
    let headers = worker::Headers::new();
    headers.set("content-type", content_type)?;
    headers.set("cache-control", "must-revalidate")?;
    headers.set("server", shared::http::SERVER_HEADER)?;
    Ok(Response::from_stream(stream)?.with_headers(headers))
}

/// What a kept-open feed reads from and waits on: a database's changes,
/// or the catalog's database updates.
trait FeedHost: 'static {
    fn with_source<R>(&self, f: impl FnOnce(&dyn ChangeSource) -> R) -> R;
    /// Fires at the next change.
    fn subscribe(&self) -> oneshot::Receiver<()>;
}

impl FeedHost for Inner {
    fn with_source<R>(&self, f: impl FnOnce(&dyn ChangeSource) -> R) -> R {
        f(&self.db())
    }

    fn subscribe(&self) -> oneshot::Receiver<()> {
        Inner::subscribe(self)
    }
}

/// Answers a kept-open feed reply (long-poll, continuous, event source).
fn open_feed<H: FeedHost>(host: &Rc<H>, reply: Reply, head: bool) -> Result<Response> {
    match reply {
        Reply::Done(r) => to_worker(r, head),
        Reply::Wait { query, since } => long_poll(host.clone(), query, since),
        Reply::Feed {
            framing,
            query,
            since,
        } => live_feed(host.clone(), framing, query, since),
        Reply::Subscribe { .. } => to_worker(
            CouchResponse::error(&shared::error::CouchError::bad_request(
                "feed=websocket is not offered here",
            )),
            head,
        ),
    }
}

/// Answers a long-poll as a stream: heartbeat newlines while waiting, then
/// the changes once there are some (or the timeout passes).
fn long_poll<H: FeedHost>(host: Rc<H>, q: ChangesQuery, since: u64) -> Result<Response> {
    let rx = host.subscribe();
    let remaining = q.wait_ms();
    let state = Some((host, q, rx, remaining));
    let stream = futures::stream::unfold(state, move |state| async move {
        let (host, q, mut rx, mut remaining) = state?;
        loop {
            let t = tick(&q, remaining);
            if next_change_or(&mut rx, t).await {
                let page = host.with_source(|s| s.page(&q, since));
                if matches!(&page, Ok(p) if p.rows.is_empty()) {
                    rx = host.subscribe();
                    continue;
                }
                let body =
                    shared::http::respond(page.map(|p| CouchResponse::raw_json(200, p.to_json())));
                return Some((Ok(body.body), None));
            }
            remaining = remaining.saturating_sub(t);
            if remaining == 0 {
                let body = host.with_source(|s| feed::page_response(s, &q, since));
                return Some((Ok(body.body), None));
            }
            return Some((Ok(b"\n".to_vec()), Some((host, q, rx, remaining))));
        }
    });
    streaming(stream, "application/json")
}

/// Where a live feed is.
struct Live<H> {
    host: Rc<H>,
    q: ChangesQuery,
    framing: Framing,
    cursor: u64,
    sent: u64,
    remaining: u64,
}

/// A continuous or event-source feed: batches of rows as they come,
/// heartbeats while idle, the end marker at the limit or timeout. Holds at
/// most one batch in memory; a closed connection drops the stream.
fn live_feed<H: FeedHost>(
    host: Rc<H>,
    framing: Framing,
    q: ChangesQuery,
    since: u64,
) -> Result<Response> {
    let remaining = q.wait_ms();
    let live = Live {
        host,
        q,
        framing,
        cursor: since,
        sent: 0,
        remaining,
    };
    let stream = futures::stream::unfold(Some(live), |state| async move {
        let mut st = state?;
        loop {
            let step = match st
                .host
                .with_source(|s| feed::batch(s, &st.q, st.cursor, st.sent))
            {
                Ok(s) => s,
                Err(e) => return Some((Ok(CouchResponse::error(&e).body), None)),
            };
            let mut out = st.framing.rows(&step.page);
            st.cursor = step.page.last;
            st.sent += step.page.rows.len() as u64;
            if step.limit_reached {
                out.extend(st.framing.end(&step.page.last_seq, step.page.pending));
                return Some((Ok(out), None));
            }
            if !out.is_empty() {
                return Some((Ok(out), Some(st)));
            }
            let mut rx = st.host.subscribe();
            let t = tick(&st.q, st.remaining);
            if next_change_or(&mut rx, t).await {
                continue;
            }
            st.remaining = st.remaining.saturating_sub(t);
            if st.remaining == 0 {
                let end = st.framing.end(&step.page.last_seq, step.page.pending);
                return Some((Ok(end), None));
            }
            let beat = st.framing.heartbeat().to_vec();
            return Some((Ok(beat), Some(st)));
        }
    });
    streaming(stream, framing.content_type())
}

/// The catalog's state between requests: feeds waiting for an update.
struct CatalogInner {
    sql: DoSql,
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

impl FeedHost for CatalogInner {
    fn with_source<R>(&self, f: impl FnOnce(&dyn ChangeSource) -> R) -> R {
        match Catalog::new(&self.sql) {
            Ok(c) => f(&c),
            Err(e) => f(&Failed(e)),
        }
    }

    fn subscribe(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().push(tx);
        rx
    }
}

/// A source that could not be opened: every read reports why.
struct Failed(shared::error::CouchError);

impl ChangeSource for Failed {
    fn page(
        &self,
        _: &ChangesQuery,
        _: u64,
    ) -> shared::error::CouchResult<crate::changes::ChangesPage> {
        Err(self.0.clone())
    }
}

/// The list of databases, `_db_updates`, and the server's uuid.
#[durable_object]
pub struct CatalogActor {
    inner: Rc<CatalogInner>,
}

impl DurableObject for CatalogActor {
    fn new(state: State, _env: Env) -> Self {
        CatalogActor {
            inner: Rc::new(CatalogInner {
                sql: DoSql::new(&state),
                waiters: RefCell::new(Vec::new()),
            }),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let creq = from_worker(&mut req).await?;
        let reply = match Catalog::new(&self.inner.sql) {
            Ok(c) => c.serve(&creq),
            Err(e) => Reply::Done(CouchResponse::error(&e)),
        };
        if creq.method == "POST" {
            for w in self.inner.waiters.borrow_mut().drain(..) {
                let _ = w.send(());
            }
        }
        open_feed(&self.inner, reply, false)
    }
}
