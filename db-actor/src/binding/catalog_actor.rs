//! `CatalogActor`: the one list of databases, `_db_updates` and the
//! server's uuid ([`crate::catalog`]), as a Durable Object.

use super::feeds::open_feed;
use crate::catalog::Catalog;
use crate::feed::ChangeSource;
use crate::feed::{Failed, FeedHost};
use crate::reply::Reply;
use futures::channel::oneshot;
use platform::do_sql::DoSql;
use platform::worker_http::from_worker;
use shared::http::Response as CouchResponse;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

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
