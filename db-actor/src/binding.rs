//! The Durable Object classes: `DbActor` (one per database) and
//! `CatalogActor` (the single list of databases).

use crate::api::{self, DbEvent, Reply};
use crate::catalog::Catalog;
use crate::changes::Framing;
use crate::do_sql::DoSql;
use crate::worker_http::{from_worker, to_worker};
use crate::Database;
use futures::channel::oneshot;
use futures::future::{select, Either};
use shared::changes::ChangesQuery;
use shared::config::Limits;
use shared::http::Response as CouchResponse;
use shared::users::UsersConfig;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// Binding name of the catalog's namespace, and the catalog's one name.
pub const CATALOG_BINDING: &str = "CATALOG";
pub const CATALOG_NAME: &str = "catalog";

struct Inner {
    sql: DoSql,
    env: Env,
    limits: Limits,
    users: UsersConfig,
    /// Long-polls waiting for the next write.
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

impl Inner {
    fn db(&self) -> Database<'_> {
        Database::new(&self.sql, self.limits)
    }

    fn wake(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }

    fn subscribe(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().push(tx);
        rx
    }

    /// Tells the catalog that this database was created or deleted.
    async fn report(&self, op: &str, name: &str) -> Result<()> {
        let stub = self
            .env
            .durable_object(CATALOG_BINDING)?
            .get_by_name(CATALOG_NAME)?;
        let body = serde_json::json!({ "name": name }).to_string();
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::Post)
            .with_body(Some(body.into()));
        let req = Request::new_with_init(&format!("https://catalog/{op}"), &init)?;
        stub.fetch_with_request(req).await?;
        Ok(())
    }
}

pub fn limits_from_env(env: &Env) -> Limits {
    Limits::from_lookup(|k| env.var(k).ok().map(|v| v.to_string()))
}

/// `PASSWORD_ITERATIONS` and `ALLOW_SIGNUP`, as the router reads them.
fn users_from_env(env: &Env) -> UsersConfig {
    let var = |k: &str| env.var(k).ok().map(|v| v.to_string());
    let d = UsersConfig::default();
    UsersConfig {
        iterations: var("PASSWORD_ITERATIONS")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(d.iterations),
        allow_signup: var("ALLOW_SIGNUP").map_or(d.allow_signup, |v| v.trim() != "false"),
    }
}

/// One CouchDB database.
#[durable_object]
pub struct DbActor {
    inner: Rc<Inner>,
}

impl DurableObject for DbActor {
    fn new(state: State, env: Env) -> Self {
        let sql = DoSql::new(&state);
        let limits = limits_from_env(&env);
        let users = users_from_env(&env);
        let inner = Inner {
            sql,
            env,
            limits,
            users,
            waiters: RefCell::new(Vec::new()),
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
        let creq = from_worker(&mut req).await?;
        let name = creq.path.first().cloned().unwrap_or_default();
        let outcome = {
            let db = self.inner.db();
            let instance = || shared::uuids::next()[24..].to_string();
            api::handle(&db, &creq, &instance, self.inner.users)
        };
        match outcome.event {
            Some(DbEvent::Created) => self.inner.report("add", &name).await?,
            Some(DbEvent::Deleted) => {
                self.inner.wake();
                self.inner.report("remove", &name).await?;
            }
            Some(DbEvent::Updated) => self.inner.wake(),
            None => {}
        }
        match outcome.reply {
            Reply::Done(r) => to_worker(r, head),
            Reply::Wait { query, since } => long_poll(self.inner.clone(), query, since),
            Reply::Feed {
                framing,
                query,
                since,
            } => live_feed(self.inner.clone(), framing, query, since),
        }
    }
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

/// Answers a long-poll as a stream: heartbeat newlines while waiting, then
/// the changes once there are some (or the timeout passes).
fn long_poll(inner: Rc<Inner>, q: ChangesQuery, since: u64) -> Result<Response> {
    let rx = inner.subscribe();
    let remaining = q.wait_ms();
    let state = Some((inner, q, rx, remaining));
    let stream = futures::stream::unfold(state, move |state| async move {
        let (inner, q, mut rx, mut remaining) = state?;
        loop {
            let t = tick(&q, remaining);
            if next_change_or(&mut rx, t).await {
                let page = inner.db().changes(&q, since);
                if matches!(&page, Ok(p) if p.rows.is_empty()) {
                    rx = inner.subscribe();
                    continue;
                }
                let body =
                    shared::http::respond(page.map(|p| CouchResponse::raw_json(200, p.to_json())));
                return Some((Ok(body.body), None));
            }
            remaining = remaining.saturating_sub(t);
            if remaining == 0 {
                let body = api::changes_response(&inner.db(), &q, since);
                return Some((Ok(body.body), None));
            }
            return Some((Ok(b"\n".to_vec()), Some((inner, q, rx, remaining))));
        }
    });
    streaming(stream, "application/json")
}

/// Where a live feed is.
struct Live {
    inner: Rc<Inner>,
    q: ChangesQuery,
    framing: Framing,
    cursor: u64,
    sent: u64,
    remaining: u64,
}

/// A continuous or event-source feed: batches of rows as they come,
/// heartbeats while idle, the end marker at the limit or timeout. Holds at
/// most one batch in memory; a closed connection drops the stream.
fn live_feed(inner: Rc<Inner>, framing: Framing, q: ChangesQuery, since: u64) -> Result<Response> {
    let remaining = q.wait_ms();
    let live = Live {
        inner,
        q,
        framing,
        cursor: since,
        sent: 0,
        remaining,
    };
    let stream = futures::stream::unfold(Some(live), |state| async move {
        let mut st = state?;
        loop {
            let step = match api::feed_batch(&st.inner.db(), &st.q, st.cursor, st.sent) {
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
            let mut rx = st.inner.subscribe();
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

/// The list of databases and the server's uuid.
#[durable_object]
pub struct CatalogActor {
    sql: DoSql,
}

impl DurableObject for CatalogActor {
    fn new(state: State, _env: Env) -> Self {
        CatalogActor {
            sql: DoSql::new(&state),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let creq = from_worker(&mut req).await?;
        let resp = match Catalog::new(&self.sql) {
            Ok(c) => c.handle(&creq),
            Err(e) => CouchResponse::error(&e),
        };
        to_worker(resp, false)
    }
}
