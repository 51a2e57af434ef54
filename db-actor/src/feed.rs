//! Feeds of changes, whatever they list: a database's `_changes` and the
//! server's `_db_updates` answer `normal`, `longpoll`, `continuous` and
//! `eventsource` the same way, from pages a [`ChangeSource`] reads.

use crate::api::Reply;
use crate::changes::{ChangesPage, Framing};
use shared::changes::{ChangesQuery, Feed};
use shared::error::CouchResult;
use shared::http::Response;

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
