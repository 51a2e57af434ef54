//! What a database's Durable Object does around the engine
//! ([`crate::api`]) for each request, apart from the Worker runtime:
//!
//! 1. runs the request, waiting while alarm rounds build the indexes it
//!    needs ([`BuildScheduler::answer`]);
//! 2. with an attachments bucket, runs a read again once the contents it
//!    wanted are fetched, then uploads or deletes contents
//!    ([`BucketSync`]);
//! 3. announces what the request did ([`Announce`]): feeds and
//!    subscribers wake, the catalog hears of creations, deletions and
//!    updates, and the replicator of changes to `_replicator`.

use crate::bucket_sync::{Bucket, BucketSync};
use crate::build_scheduler::{BuildHost, BuildScheduler, RERUN_BUILD_BUDGET};
use crate::reply::{DbEvent, Outcome, Reply};
use crate::{api, Database};
use shared::http::Request;
use shared::replication::REPLICATOR_DB;
use shared::users::UsersConfig;

/// Reads that want contents from the bucket run again at most this often.
const BUCKET_ROUNDS: usize = 3;

/// Whom a request's effects are told to.
#[allow(async_fn_in_trait)]
pub trait Announce {
    /// Wakes the database's long-polls, live feeds and subscribers.
    fn wake(&self);
    /// The database was written (the catalog hears of it, batched).
    fn updated(&self, db: &str);
    async fn created(&self, db: &str) -> Result<(), String>;
    async fn deleted(&self, db: &str) -> Result<(), String>;
    /// `_replicator` changed: its registry reads the changes.
    async fn replicator_changed(&self);
    /// For the node's statistics: documents the request read (a read
    /// request counts one) and wrote (by the update sequence).
    /// The database's name comes too: it counts as open while it serves.
    fn counted(&self, db: &str, reads: u64, writes: u64);
}

/// One database actor's state for serving a request.
pub struct Actor<'a, B, H> {
    /// Opens the engine over the actor's storage (cheap: it borrows).
    pub open: &'a dyn Fn() -> Database<'a>,
    pub users: UsersConfig,
    pub bucket: Option<&'a BucketSync<B>>,
    pub builds: &'a BuildScheduler,
    pub host: &'a H,
}

impl<B: Bucket, H: BuildHost> Actor<'_, B, H> {
    /// Serves one request to its reply, with its effects announced.
    pub async fn serve(&self, req: &Request, around: &impl Announce) -> Result<Reply, String> {
        let name = req.path.first().cloned().unwrap_or_default();
        if let Some(sync) = self.bucket {
            sync.begin();
        }
        let before = self.bucket.and_then(|_| (self.open)().meta().ok());
        let reads = matches!(req.method.as_str(), "GET" | "HEAD");
        let (mut outcome, mut written) = self.run(req).await?;
        if let Some(sync) = self.bucket {
            for _ in 0..BUCKET_ROUNDS {
                // Writes never read contents.
                if outcome.event.is_some() || !sync.fetch_wanted(&(self.open)()).await? {
                    break;
                }
                (outcome, written) = self.run(req).await?;
            }
            let deleted = matches!(outcome.event, Some(DbEvent::Deleted))
                .then_some(before)
                .flatten();
            sync.finish(&(self.open)(), outcome.event.is_some(), deleted)
                .await;
        }
        match outcome.event {
            Some(DbEvent::Created) => around.created(&name).await?,
            Some(DbEvent::Deleted) => {
                around.wake();
                around.deleted(&name).await?;
            }
            Some(DbEvent::Updated) => {
                around.wake();
                around.updated(&name);
            }
            None => {}
        }
        if outcome.event.is_some() && name == REPLICATOR_DB {
            around.replicator_changed().await;
        }
        let writes = match outcome.event {
            Some(DbEvent::Updated) => written,
            _ => 0,
        };
        around.counted(&name, u64::from(reads), writes);
        Ok(outcome.reply)
    }

    /// Runs the engine, and again after each build round it waits for (on
    /// a rerun its own build budget is small: the alarm builds). With the
    /// outcome comes how far the run moved the update sequence.
    async fn run(&self, req: &Request) -> Result<(Outcome, u64), String> {
        self.builds
            .answer(self.host, |rerun| {
                let db = (self.open)();
                if rerun {
                    db.builds.limit(RERUN_BUILD_BUDGET);
                }
                let instance = || shared::uuids::next()[24..].to_string();
                let outcome = api::handle(&db, req, &instance, self.users);
                let (awaited, lazy) = db.builds.take();
                ((outcome, db.seq_advanced()), awaited, lazy)
            })
            .await
    }
}
