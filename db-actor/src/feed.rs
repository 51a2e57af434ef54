//! Feeds of changes, whatever they list: a database's `_changes` and the
//! server's `_db_updates` answer `normal`, `longpoll`, `continuous` and
//! `eventsource` the same way, from pages a [`ChangeSource`] reads.
//!
//! A feed kept open is a stream of body chunks ([`long_poll`], [`live`]):
//! it waits on its [`FeedHost`] for the next change and on a [`Timer`] for
//! heartbeats and the timeout, so the same code runs on Workers and in
//! native tests.

use crate::reply::Reply;
use futures::channel::oneshot;
use futures::future::{select, Either};
use futures::Stream;
use shared::changes::{ChangesPage, Framing};
use shared::changes::{ChangesQuery, Feed};
use shared::error::{CouchError, CouchResult};
use shared::http::Response;
use std::future::Future;
use std::rc::Rc;

/// Rows a live feed reads from storage at a time.
pub const FEED_BATCH: u64 = 100;

/// Something with numbered changes a feed can page through.
pub trait ChangeSource {
    /// The changes after `since` that `q` selects (at most `q.limit`).
    fn page(&self, q: &ChangesQuery, since: u64) -> CouchResult<ChangesPage>;
}

/// What a feed request gets: the page now (`normal`, or a `longpoll` with
/// something to report), or a reply the binding keeps open.
pub fn reply(src: &dyn ChangeSource, q: ChangesQuery, since: u64) -> CouchResult<Reply> {
    let framing = match q.feed {
        Feed::Continuous => Some(Framing::Continuous),
        Feed::EventSource => Some(Framing::EventSource),
        _ => None,
    };
    if let Some(framing) = framing {
        return Ok(Reply::Feed {
            framing,
            query: q,
            since,
        });
    }
    let page = src.page(&q, since)?;
    if q.feed == Feed::Longpoll && page.rows.is_empty() && q.wait_ms() > 0 {
        return Ok(Reply::Wait { query: q, since });
    }
    Ok(Reply::Done(Response::raw_json(200, page.to_json())))
}

/// One batch of a live feed.
pub struct FeedStep {
    pub page: ChangesPage,
    /// The feed's `limit` is reached: it ends after this batch.
    pub limit_reached: bool,
}

impl FeedStep {
    /// Whether storage had no more rows after this batch.
    pub fn caught_up(&self) -> bool {
        (self.page.rows.len() as u64) < FEED_BATCH
    }
}

/// The next batch of a live feed after `since`, given how many rows it has
/// already sent.
pub fn batch(
    src: &dyn ChangeSource,
    q: &ChangesQuery,
    since: u64,
    sent: u64,
) -> CouchResult<FeedStep> {
    let left = q
        .limit
        .map_or(FEED_BATCH, |l| l.saturating_sub(sent).min(FEED_BATCH));
    let batch = ChangesQuery {
        limit: Some(left.max(1)),
        ..q.clone()
    };
    let page = src.page(&batch, since)?;
    let limit_reached = q.limit.is_some_and(|l| sent + page.rows.len() as u64 >= l);
    Ok(FeedStep {
        page,
        limit_reached,
    })
}

/// A whole live feed as if its timeout had passed at once: everything
/// available now, then the end marker (native tests, and `timeout=0`).
pub fn now(src: &dyn ChangeSource, framing: Framing, q: &ChangesQuery, since: u64) -> Response {
    let mut body = Vec::new();
    let (mut cursor, mut sent) = (since, 0);
    loop {
        let step = match batch(src, q, cursor, sent) {
            Ok(s) => s,
            Err(e) => return Response::error(&e),
        };
        body.extend(framing.rows(&step.page));
        sent += step.page.rows.len() as u64;
        cursor = step.page.last;
        if step.limit_reached || step.caught_up() {
            body.extend(framing.end(&step.page.last_seq, step.page.pending));
            return Response {
                status: 200,
                headers: vec![("content-type".into(), framing.content_type().into())],
                body,
            };
        }
    }
}

/// Answers a long-poll after waiting: whatever changed since `since`.
pub fn page_response(src: &dyn ChangeSource, q: &ChangesQuery, since: u64) -> Response {
    shared::http::respond(
        src.page(q, since)
            .map(|page| Response::raw_json(200, page.to_json())),
    )
}

/// What a kept-open feed reads from and waits on: a database's changes,
/// or the catalog's database updates.
pub trait FeedHost: 'static {
    fn with_source<R>(&self, f: impl FnOnce(&dyn ChangeSource) -> R) -> R;
    /// Fires at the next change.
    fn subscribe(&self) -> oneshot::Receiver<()>;
}

/// The runtime's timer.
pub trait Timer: 'static {
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
}

/// A source that could not be opened: every read reports why.
pub struct Failed(pub CouchError);

impl ChangeSource for Failed {
    fn page(&self, _: &ChangesQuery, _: u64) -> CouchResult<ChangesPage> {
        Err(self.0.clone())
    }
}

/// Waits for the next change, or `tick_ms`; true if a change came. A
/// receiver fires once: subscribe again after it does.
async fn next_change_or(rx: &mut oneshot::Receiver<()>, timer: &impl Timer, tick_ms: u64) -> bool {
    let delay = std::pin::pin!(timer.sleep(tick_ms.clamp(1, u32::MAX as u64)));
    matches!(select(rx, delay).await, Either::Left(_))
}

/// How long to wait before the next heartbeat or the timeout.
fn tick(q: &ChangesQuery, remaining: u64) -> u64 {
    q.heartbeat.unwrap_or(remaining).min(remaining).max(1)
}

/// A long-poll as a stream: heartbeat newlines while waiting, then the
/// changes once there are some (or the timeout passes).
pub fn long_poll<H: FeedHost, T: Timer>(
    host: Rc<H>,
    timer: T,
    q: ChangesQuery,
    since: u64,
) -> impl Stream<Item = Vec<u8>> {
    let rx = host.subscribe();
    let remaining = q.wait_ms();
    let state = Some((host, timer, q, rx, remaining));
    futures::stream::unfold(state, move |state| async move {
        let (host, timer, q, mut rx, mut remaining) = state?;
        loop {
            let t = tick(&q, remaining);
            if next_change_or(&mut rx, &timer, t).await {
                let page = host.with_source(|s| s.page(&q, since));
                if matches!(&page, Ok(p) if p.rows.is_empty()) {
                    rx = host.subscribe();
                    continue;
                }
                let body =
                    shared::http::respond(page.map(|p| Response::raw_json(200, p.to_json())));
                return Some((body.body, None));
            }
            remaining = remaining.saturating_sub(t);
            if remaining == 0 {
                let body = host.with_source(|s| page_response(s, &q, since));
                return Some((body.body, None));
            }
            return Some((b"\n".to_vec(), Some((host, timer, q, rx, remaining))));
        }
    })
}

/// Where a live feed is.
struct Live<H, T> {
    host: Rc<H>,
    timer: T,
    q: ChangesQuery,
    framing: Framing,
    cursor: u64,
    sent: u64,
    remaining: u64,
}

/// A continuous or event-source feed: batches of rows as they come,
/// heartbeats while idle, the end marker at the limit or timeout. Holds at
/// most one batch in memory; a closed connection drops the stream.
pub fn live<H: FeedHost, T: Timer>(
    host: Rc<H>,
    timer: T,
    framing: Framing,
    q: ChangesQuery,
    since: u64,
) -> impl Stream<Item = Vec<u8>> {
    let remaining = q.wait_ms();
    let live = Live {
        host,
        timer,
        q,
        framing,
        cursor: since,
        sent: 0,
        remaining,
    };
    futures::stream::unfold(Some(live), |state| async move {
        let mut st = state?;
        loop {
            let step = match st.host.with_source(|s| batch(s, &st.q, st.cursor, st.sent)) {
                Ok(s) => s,
                Err(e) => return Some((Response::error(&e).body, None)),
            };
            let mut out = st.framing.rows(&step.page);
            st.cursor = step.page.last;
            st.sent += step.page.rows.len() as u64;
            if step.limit_reached {
                out.extend(st.framing.end(&step.page.last_seq, step.page.pending));
                return Some((out, None));
            }
            if !out.is_empty() {
                return Some((out, Some(st)));
            }
            let mut rx = st.host.subscribe();
            let t = tick(&st.q, st.remaining);
            if next_change_or(&mut rx, &st.timer, t).await {
                continue;
            }
            st.remaining = st.remaining.saturating_sub(t);
            if st.remaining == 0 {
                let end = st.framing.end(&step.page.last_seq, step.page.pending);
                return Some((end, None));
            }
            let beat = st.framing.heartbeat().to_vec();
            return Some((beat, Some(st)));
        }
    })
}
