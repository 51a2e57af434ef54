//! Kept-open `_changes` feeds as streams, natively: a long-poll's
//! heartbeats and its answer, a live feed's batches, limit, heartbeats and
//! end, with writes and timeouts scripted through the feed's timer.

mod common;

use common::Db;
use db_actor::feed::{self, ChangeSource, FeedHost, Timer};
use futures::channel::oneshot;
use futures::executor::block_on;
use futures::StreamExt;
use serde_json::{json, Value};
use shared::changes::{ChangesQuery, Framing};
use shared::http::Request;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

struct Host {
    db: Db,
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

impl FeedHost for Host {
    fn with_source<R>(&self, f: impl FnOnce(&dyn ChangeSource) -> R) -> R {
        f(&self.db.engine())
    }

    fn subscribe(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().push(tx);
        rx
    }
}

impl Host {
    fn new() -> Rc<Host> {
        Rc::new(Host {
            db: Db::new(),
            waiters: RefCell::default(),
        })
    }

    /// A write, as the actor announces it to waiting feeds.
    fn write(&self, id: &str) {
        self.db.put(id, json!({}));
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }
}

/// Each wait of the feed takes the next step of the script: `None` lets
/// the wait run out; `Some(id)` writes that document during the wait.
struct Script {
    host: Rc<Host>,
    steps: Rc<RefCell<VecDeque<Option<&'static str>>>>,
    waited: Rc<RefCell<Vec<u64>>>,
}

/// A wait during which a write happens: it never runs out itself.
struct Interrupted;

impl Future for Interrupted {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Timer for Script {
    async fn sleep(&self, ms: u64) {
        self.waited.borrow_mut().push(ms);
        let step = self.steps.borrow_mut().pop_front();
        match step.expect("the feed waited more often than scripted") {
            None => {}
            Some(id) => {
                self.host.write(id);
                Interrupted.await
            }
        }
    }
}

fn script(host: &Rc<Host>, steps: &[Option<&'static str>]) -> (Script, Rc<RefCell<Vec<u64>>>) {
    let waited = Rc::new(RefCell::new(vec![]));
    let s = Script {
        host: host.clone(),
        steps: Rc::new(RefCell::new(steps.iter().copied().collect())),
        waited: waited.clone(),
    };
    (s, waited)
}

fn query(params: &str) -> ChangesQuery {
    ChangesQuery::from_request(&Request::new("GET", "/db/_changes", params), None).unwrap()
}

fn ids(body: &[u8]) -> Vec<String> {
    common::change_ids(&serde_json::from_slice(body).unwrap())
}

#[test]
fn a_long_poll_beats_while_waiting_and_answers_the_first_change() {
    let host = Host::new();
    let since = 0;
    let (timer, waited) = script(&host, &[None, Some("a")]);
    let q = query("feed=longpoll&heartbeat=10&timeout=1000");
    let chunks: Vec<Vec<u8>> = block_on(feed::long_poll(host.clone(), timer, q, since).collect());
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    assert_eq!(chunks[0], b"\n");
    assert_eq!(ids(&chunks[1]), ["a"]);
    assert_eq!(*waited.borrow(), [10, 10]);
}

#[test]
fn a_long_poll_with_nothing_new_answers_an_empty_page_at_its_timeout() {
    let host = Host::new();
    host.write("old");
    let since = 1;
    let (timer, waited) = script(&host, &[None, None, None]);
    let q = query("feed=longpoll&heartbeat=10&timeout=25");
    let chunks: Vec<Vec<u8>> = block_on(feed::long_poll(host.clone(), timer, q, since).collect());
    assert_eq!(chunks[..2], [b"\n".to_vec(), b"\n".to_vec()]);
    let last: Value = serde_json::from_slice(&chunks[2]).unwrap();
    assert_eq!(last["results"], json!([]));
    assert!(
        last["last_seq"].as_str().unwrap().starts_with("1-"),
        "{last}"
    );
    // Heartbeats every 10 ms, the last wait only what was left.
    assert_eq!(*waited.borrow(), [10, 10, 5]);
}

#[test]
fn a_continuous_feed_sends_rows_as_they_come_and_ends_at_its_limit() {
    let host = Host::new();
    host.write("a");
    let (timer, _) = script(&host, &[None, Some("b"), Some("c")]);
    let q = query("feed=continuous&heartbeat=10&limit=2");
    let chunks: Vec<Vec<u8>> =
        block_on(feed::live(host.clone(), timer, Framing::Continuous, q, 0).collect());
    let text: Vec<String> = chunks
        .iter()
        .map(|c| String::from_utf8(c.clone()).unwrap())
        .collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(text[0].contains("\"id\":\"a\"") && text[0].ends_with('\n'));
    assert_eq!(text[1], "\n", "a heartbeat while idle");
    let (row, end) = text[2].trim_end().split_once('\n').unwrap();
    assert!(row.contains("\"id\":\"b\""), "{row}");
    let end: Value = serde_json::from_str(end).unwrap();
    assert!(end["last_seq"].as_str().unwrap().starts_with("2-"), "{end}");
    assert_eq!(end["pending"], 0);
}

#[test]
fn an_event_source_feed_beats_as_comments_and_ends_at_its_timeout() {
    let host = Host::new();
    host.write("a");
    let (timer, waited) = script(&host, &[None, None]);
    let q = query("feed=eventsource&heartbeat=10&timeout=20");
    let chunks: Vec<Vec<u8>> =
        block_on(feed::live(host.clone(), timer, Framing::EventSource, q, 0).collect());
    let text: Vec<String> = chunks
        .iter()
        .map(|c| String::from_utf8(c.clone()).unwrap())
        .collect();
    assert!(
        text[0].starts_with("data: {") && text[0].contains("\nid: 1-"),
        "{text:?}"
    );
    assert_eq!(text[1], ": heartbeat\n\n");
    // An event source has no end marker: the stream just ends.
    assert_eq!(text[2..].concat(), "", "{text:?}");
    assert_eq!(*waited.borrow(), [10, 10]);
}
