//! Kept-open feeds as response streams: long-poll, continuous and event
//! source, for a database's `_changes` and the catalog's `_db_updates`.

use crate::api::Reply;
use crate::changes::Framing;
use crate::feed::{self, ChangeSource};
use futures::channel::oneshot;
use futures::future::{select, Either};
use platform::worker_http::to_worker;
use shared::changes::ChangesQuery;
use shared::http::Response as CouchResponse;
use std::rc::Rc;
use std::time::Duration;
use worker::{Response, Result};

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
pub(super) trait FeedHost: 'static {
    fn with_source<R>(&self, f: impl FnOnce(&dyn ChangeSource) -> R) -> R;
    /// Fires at the next change.
    fn subscribe(&self) -> oneshot::Receiver<()>;
}

/// Answers a kept-open feed reply (long-poll, continuous, event source).
pub(super) fn open_feed<H: FeedHost>(host: &Rc<H>, reply: Reply, head: bool) -> Result<Response> {
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

/// A source that could not be opened: every read reports why.
pub(super) struct Failed(pub(super) shared::error::CouchError);

impl ChangeSource for Failed {
    fn page(
        &self,
        _: &ChangesQuery,
        _: u64,
    ) -> shared::error::CouchResult<crate::changes::ChangesPage> {
        Err(self.0.clone())
    }
}
