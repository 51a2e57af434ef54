//! Keeping the attachment bucket (R2) in step with a database.
//!
//! The engine is synchronous and never talks to the bucket (see
//! [`crate::remote`]): a write stages large contents locally, a read notes
//! the contents it wants. Around each request, [`BucketSync`] does the
//! asynchronous half: before a rerun it fetches what the read wanted;
//! afterwards it uploads staged contents (dropping each local copy once
//! uploaded), deletes the ones compaction dropped, and drops a deleted
//! database's objects. The bucket is a trait so all of this runs natively.

use crate::database::{Database, DbMeta};
use crate::remote::{self, RemoteBlobs};
use std::cell::Cell;

/// An object store: an R2 bucket in production, a map in tests.
#[allow(async_fn_in_trait)]
pub trait Bucket {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    async fn put(&self, key: &str, data: Vec<u8>) -> Result<(), String>;
    async fn delete(&self, keys: Vec<String>) -> Result<(), String>;
    /// One page of the keys under `prefix`, and whether more follow.
    async fn list(&self, prefix: &str) -> Result<(Vec<String>, bool), String>;
}

/// A bucket and what one actor's requests need of it.
pub struct BucketSync<B> {
    pub bucket: B,
    pub remote: RemoteBlobs,
    /// Staged contents may be waiting for upload: true after a write, after
    /// a failed upload, and at start-up (an earlier instance may have died
    /// between its write and the upload).
    unsynced: Cell<bool>,
}

impl<B: Bucket> BucketSync<B> {
    pub fn new(bucket: B, threshold: u64) -> Self {
        BucketSync {
            bucket,
            remote: RemoteBlobs::new(threshold),
            unsynced: Cell::new(true),
        }
    }

    /// Readies the request state for a new request (reruns allowed).
    pub fn begin(&self) {
        self.remote.clear();
        self.remote.set_rerunnable(true);
    }

    /// Fetches the contents a read wanted; false if it wanted none (so
    /// running it again would change nothing).
    pub async fn fetch_wanted(&self, db: &Database<'_>) -> Result<bool, String> {
        let wanted = self.remote.take_wanted();
        let Ok(meta) = db.meta() else {
            return Ok(false);
        };
        for digest in &wanted {
            let key = remote::key(&meta.name, &meta.instance, digest);
            let data = self
                .bucket
                .get(&key)
                .await?
                .ok_or_else(|| format!("R2 object {key} is missing"))?;
            self.remote.provide(digest, data);
        }
        Ok(!wanted.is_empty())
    }

    /// After the request: uploads what a write staged, deletes what
    /// compaction doomed, drops the objects of a database the request
    /// deleted (`deleted`: its meta before the request). Failures are
    /// logged and retried after the next request; nothing is lost, as
    /// staged contents stay served locally until uploaded.
    pub async fn finish(
        &self,
        db: &Database<'_>,
        wrote: bool,
        deleted: Option<std::rc::Rc<DbMeta>>,
    ) {
        if wrote {
            self.unsynced.set(true);
        }
        // Reads leave nothing to upload: they skip the staged-content query.
        if self.unsynced.get() || self.remote.has_doomed() {
            match self.sync(db).await {
                Ok(()) => self.unsynced.set(false),
                Err(e) => tracing::error!("R2 attachment sync failed (will retry): {e}"),
            }
        }
        // Kept-open feeds read later, without a rerun.
        self.remote.set_rerunnable(false);
        if let Some(m) = deleted {
            if let Err(e) = self
                .drop_prefix(&remote::prefix(&m.name, &m.instance))
                .await
            {
                tracing::error!("dropping R2 contents of {} failed: {e}", m.name);
            }
        }
    }

    /// Uploads staged contents, unstaging each once it is in the bucket,
    /// and deletes doomed ones. A failed upload leaves the content staged.
    async fn sync(&self, db: &Database<'_>) -> Result<(), String> {
        let Ok(meta) = db.meta() else {
            return Ok(());
        };
        let text = |e: shared::error::CouchError| e.reason;
        for digest in db.store.staged_remote().map_err(text)? {
            let Some(data) = db.store.blob(&digest).map_err(text)? else {
                continue;
            };
            let key = remote::key(&meta.name, &meta.instance, &digest);
            self.bucket.put(&key, data).await?;
            db.transact(|| db.store.unstage(&digest)).map_err(text)?;
        }
        let doomed: Vec<String> = self
            .remote
            .take_doomed()
            .iter()
            .map(|d| remote::key(&meta.name, &meta.instance, d))
            .collect();
        if !doomed.is_empty() {
            self.bucket.delete(doomed).await?;
        }
        Ok(())
    }

    /// Deletes every object of a deleted database incarnation.
    async fn drop_prefix(&self, prefix: &str) -> Result<(), String> {
        loop {
            let (keys, more) = self.bucket.list(prefix).await?;
            if !keys.is_empty() {
                self.bucket.delete(keys.clone()).await?;
            }
            // An empty page ends it too, so a misbehaving listing cannot
            // keep the actor looping.
            if !more || keys.is_empty() {
                return Ok(());
            }
        }
    }
}
