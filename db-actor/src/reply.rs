//! What a database or catalog request gets back: an answer now, or a
//! feed the binding keeps open (a long-poll's wait, a live stream, a
//! WebSocket subscription), and what the request did to the database.

use shared::changes::{ChangesQuery, Framing};
use shared::http::Response;

/// What a request did to the database, for the binding to announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbEvent {
    Created,
    Deleted,
    Updated,
}

/// The answer to a request.
#[derive(Debug)]
pub enum Reply {
    Done(Response),
    /// A long-poll with nothing to report yet: the binding waits for a
    /// change (or the timeout) and then calls [`crate::feed::page_response`].
    Wait {
        query: ChangesQuery,
        since: u64,
    },
    /// A WebSocket subscription: the binding accepts the upgrade and sends
    /// rows from `since` on, then each new change, until the client leaves.
    /// `params` is the query string the subscription keeps.
    Subscribe {
        params: String,
        since: u64,
    },
    /// A continuous or event-source feed: the binding streams it with
    /// [`crate::feed::batch`] until its limit or timeout.
    Feed {
        framing: Framing,
        query: ChangesQuery,
        since: u64,
    },
}

#[derive(Debug)]
pub struct Outcome {
    pub reply: Reply,
    pub event: Option<DbEvent>,
}

impl Outcome {
    pub fn done(r: Response) -> Self {
        Outcome {
            reply: Reply::Done(r),
            event: None,
        }
    }
}
