//! Kept-open feeds ([`crate::feed`]'s streams) as Worker response streams,
//! timed by the runtime's `Delay`.

use crate::feed::{self, FeedHost, Timer};
use crate::reply::Reply;
use futures::StreamExt;
use platform::worker_http::to_worker;
use shared::http::Response as CouchResponse;
use std::rc::Rc;
use std::time::Duration;
use worker::{Response, Result};

/// The Workers timer.
struct Delay;

impl Timer for Delay {
    async fn sleep(&self, ms: u64) {
        worker::Delay::from(Duration::from_millis(ms)).await;
    }
}

fn streaming(
    stream: impl futures::Stream<Item = Vec<u8>> + 'static,
    content_type: &str,
) -> Result<Response> {
    let headers = worker::Headers::new();
    headers.set("content-type", content_type)?;
    headers.set("cache-control", "must-revalidate")?;
    headers.set("server", shared::http::SERVER_HEADER)?;
    Ok(Response::from_stream(stream.map(Ok::<_, worker::Error>))?.with_headers(headers))
}

/// Answers a kept-open feed reply (long-poll, continuous, event source).
pub(super) fn open_feed<H: FeedHost>(host: &Rc<H>, reply: Reply, head: bool) -> Result<Response> {
    match reply {
        Reply::Done(r) => to_worker(r, head),
        Reply::Wait { query, since } => streaming(
            feed::long_poll(host.clone(), Delay, query, since),
            "application/json",
        ),
        Reply::Feed {
            framing,
            query,
            since,
        } => streaming(
            feed::live(host.clone(), Delay, framing, query, since),
            framing.content_type(),
        ),
        Reply::Subscribe { .. } => to_worker(
            CouchResponse::error(&shared::error::CouchError::bad_request(
                "feed=websocket is not offered here",
            )),
            head,
        ),
    }
}
