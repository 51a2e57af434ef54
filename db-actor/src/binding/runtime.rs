//! The Workers runtime behind the traits the engine's asynchronous parts
//! use: R2 as [`Bucket`], the alarm and timer as [`BuildHost`], a
//! hibernatable WebSocket as [`Socket`].

use crate::bucket_sync::{Bucket, BucketSync};
use crate::build_scheduler::BuildHost;
use crate::remote;
use crate::subscriptions::{Socket, Subscription};
use shared::active_tasks::IndexerTask;
use shared::actor_call::{CatalogCall, ATTACHMENTS_BINDING};
use std::time::Duration;
use worker::{Env, State, WebSocket};

/// The `ATTACHMENTS` bucket, if bound, with the size above which contents
/// go there (`R2_ATTACHMENT_THRESHOLD`).
pub(super) fn bucket_from_env(env: &Env) -> Option<BucketSync<R2>> {
    let bucket = env.bucket(ATTACHMENTS_BINDING).ok()?;
    let threshold = env
        .var("R2_ATTACHMENT_THRESHOLD")
        .ok()
        .and_then(|v| v.to_string().trim().parse().ok())
        .unwrap_or(remote::DEFAULT_THRESHOLD);
    Some(BucketSync::new(R2(bucket), threshold))
}

/// An R2 bucket as [`Bucket`].
pub(super) struct R2(worker::Bucket);

impl Bucket for R2 {
    async fn get(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, String> {
        let Some(object) = self.0.get(key).execute().await.map_err(text)? else {
            return Ok(None);
        };
        let body = object
            .body()
            .ok_or_else(|| format!("R2 object {key} has no body"))?;
        body.bytes().await.map(Some).map_err(text)
    }

    async fn put(&self, key: &str, data: Vec<u8>) -> std::result::Result<(), String> {
        self.0
            .put(key, data)
            .execute()
            .await
            .map(drop)
            .map_err(text)
    }

    async fn delete(&self, keys: Vec<String>) -> std::result::Result<(), String> {
        self.0.delete_multiple(keys).await.map_err(text)
    }

    async fn list(&self, prefix: &str) -> std::result::Result<(Vec<String>, bool), String> {
        let page = self.0.list().prefix(prefix).execute().await.map_err(text)?;
        let keys = page.objects().iter().map(|o| o.key()).collect();
        Ok((keys, page.truncated()))
    }
}

/// Seconds since the epoch, by the runtime's clock.
pub(super) fn now_secs() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

fn text(e: worker::Error) -> String {
    e.to_string()
}

/// The actor's alarm and timer, and the catalog it reports builds to, for
/// the [`BuildScheduler`].
pub(super) struct Host<'a>(pub(super) &'a State, pub(super) &'a Env);

impl BuildHost for Host<'_> {
    async fn set_alarm(&self) -> std::result::Result<(), String> {
        self.0.storage().set_alarm(0i64).await.map_err(text)
    }

    async fn sleep(&self, ms: u64) {
        worker::Delay::from(Duration::from_millis(ms)).await
    }

    fn now(&self) -> u64 {
        now_secs()
    }

    async fn report_tasks(&self, db: &str, tasks: Vec<IndexerTask>) {
        let call = CatalogCall::Indexing {
            database: db.to_string(),
            tasks,
        };
        if let Err(e) = platform::call_catalog(self.1, &call, "").await {
            worker::console_error!("reporting index builds failed: {e}");
        }
    }
}

/// A hibernatable WebSocket as a [`Socket`]: the subscription is its
/// serialized attachment.
pub(super) struct Ws(pub(super) WebSocket);

impl Socket for Ws {
    fn subscription(&self) -> Option<Subscription> {
        self.0.deserialize_attachment().ok().flatten()
    }

    fn keep(&self, sub: &Subscription) {
        if let Err(e) = self.0.serialize_attachment(sub) {
            worker::console_error!("keeping a WebSocket subscription failed: {e}");
        }
    }

    fn send(&self, message: &str) {
        let _ = self.0.send_with_str(message);
    }
}
