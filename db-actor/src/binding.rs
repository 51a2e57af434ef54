//! The Durable Object classes: `DbActor` (one per database) and
//! `CatalogActor` (the single list of databases).

use crate::api::{self, DbEvent, Reply};
use crate::catalog::Catalog;
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
        }
    }
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
            let tick = q.heartbeat.unwrap_or(remaining).min(remaining).max(1);
            let delay = worker::Delay::from(Duration::from_millis(tick.min(u32::MAX as u64)));
            match select(&mut rx, delay).await {
                Either::Left(_) => {
                    let db = inner.db();
                    let page = db.changes(&q, since);
                    if matches!(&page, Ok(p) if p.rows.is_empty()) {
                        rx = inner.subscribe();
                        continue;
                    }
                    let body = shared::http::respond(
                        page.map(|p| CouchResponse::raw_json(200, p.to_json())),
                    );
                    return Some((Ok::<Vec<u8>, worker::Error>(body.body), None));
                }
                Either::Right(_) => {
                    remaining = remaining.saturating_sub(tick);
                    if remaining == 0 {
                        let body = api::changes_response(&inner.db(), &q, since);
                        return Some((Ok(body.body), None));
                    }
                    return Some((Ok(b"\n".to_vec()), Some((inner, q, rx, remaining))));
                }
            }
        }
    });
    let headers = worker::Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "must-revalidate")?;
    headers.set("server", shared::http::SERVER_HEADER)?;
    Ok(Response::from_stream(stream)?.with_headers(headers))
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
