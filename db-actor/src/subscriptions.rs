//! `_changes` over WebSocket: subscriptions that outlive the actor's
//! isolate.
//!
//! Sockets are accepted through the hibernation API, so an idle subscriber
//! keeps nothing in memory: each socket carries its [`Subscription`] (the
//! feed's parameters and how far it has been sent) as its attachment. A
//! write pushes every socket what changed past its cursor; sockets that
//! share parameters and cursor (the common case: all caught up) share one
//! read. A client resumes by sending `{"since": SEQ}` (or `"now"`).
//! Sockets are a trait so this runs natively.

use crate::database::Database;
use crate::feed;
use serde::{Deserialize, Serialize};
use shared::changes::ChangesQuery;
use shared::error::CouchError;
use shared::seq::{since_from_json, Since};
use std::collections::HashMap;

/// What a socket remembers between hibernations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The query string the subscription was opened with.
    pub params: String,
    /// The last update sequence sent.
    pub cursor: u64,
}

/// A subscriber's socket.
pub trait Socket {
    /// The subscription it carries (none: not a subscriber).
    fn subscription(&self) -> Option<Subscription>;
    fn keep(&self, sub: &Subscription);
    /// Sends one message; a closed socket drops it.
    fn send(&self, message: &str);
}

/// Starts a subscription on an accepted socket: its backlog now, the rest
/// as writes happen.
pub fn start(db: &Database, socket: &impl Socket, params: String, since: u64) {
    let (messages, cursor) = messages_since(db, &params, since);
    for m in &messages {
        socket.send(m);
    }
    socket.keep(&Subscription { params, cursor });
}

/// Sends each subscriber what changed since its cursor.
pub fn push<S: Socket>(db: &Database, sockets: &[S]) {
    let mut pages: HashMap<(String, u64), (Vec<String>, u64)> = HashMap::new();
    for socket in sockets {
        let Some(mut sub) = socket.subscription() else {
            continue;
        };
        let key = (sub.params.clone(), sub.cursor);
        let (messages, last) = pages
            .entry(key)
            .or_insert_with(|| messages_since(db, &sub.params, sub.cursor));
        if messages.is_empty() {
            continue;
        }
        for m in messages.iter() {
            socket.send(m);
        }
        sub.cursor = *last;
        socket.keep(&sub);
    }
}

/// Answers a client's message: `{"since": SEQ}` (or `"now"`) restarts the
/// subscription there; anything else is answered with an error message.
pub fn resume(db: &Database, socket: &impl Socket, text: &str) {
    let Some(sub) = socket.subscription() else {
        return;
    };
    let since = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("since").map(since_from_json));
    match since {
        Some(Ok(Since::Seq(n))) => start(db, socket, sub.params, n),
        Some(Ok(Since::Now)) => {
            let now = db.store.stats().map_or(sub.cursor, |s| s.update_seq);
            start(db, socket, sub.params, now)
        }
        _ => socket.send(
            &CouchError::bad_request("send {\"since\": SEQ} to resume")
                .to_json()
                .to_string(),
        ),
    }
}

/// Every change after `cursor` a subscription selects, as messages, and
/// the cursor after them (errors are sent as a message too).
fn messages_since(db: &Database, params: &str, mut cursor: u64) -> (Vec<String>, u64) {
    let mut out = Vec::new();
    let q = match ChangesQuery::for_subscription(params) {
        Ok(q) => q,
        Err(e) => return (vec![e.to_json().to_string()], cursor),
    };
    loop {
        match feed::batch(db, &q, cursor, 0) {
            Ok(step) => {
                out.extend(
                    step.page
                        .rows
                        .iter()
                        .map(|r| String::from_utf8_lossy(r).into_owned()),
                );
                cursor = step.page.last;
                if step.caught_up() {
                    return (out, cursor);
                }
            }
            Err(e) => {
                out.push(e.to_json().to_string());
                return (out, cursor);
            }
        }
    }
}
