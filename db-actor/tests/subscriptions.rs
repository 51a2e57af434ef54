//! WebSocket `_changes` subscriptions, with sockets in memory.

mod common;

use common::Db;
use db_actor::subscriptions::{self, Socket, Subscription};
use serde_json::{json, Value};
use std::cell::RefCell;

#[derive(Default)]
struct FakeSocket {
    sent: RefCell<Vec<Value>>,
    sub: RefCell<Option<Subscription>>,
}

impl Socket for FakeSocket {
    fn subscription(&self) -> Option<Subscription> {
        self.sub.borrow().clone()
    }
    fn keep(&self, sub: &Subscription) {
        *self.sub.borrow_mut() = Some(sub.clone());
    }
    fn send(&self, message: &str) {
        self.sent
            .borrow_mut()
            .push(serde_json::from_str(message).unwrap());
    }
}

impl FakeSocket {
    fn take_ids(&self) -> Vec<String> {
        self.sent
            .borrow_mut()
            .drain(..)
            .map(|m| m["id"].as_str().unwrap_or("?").to_string())
            .collect()
    }
}

fn put(db: &Db, id: &str) {
    assert_eq!(
        db.json("PUT", &format!("/db/{id}"), Some(json!({"n": id})))
            .0,
        201
    );
}

#[test]
fn subscribers_get_their_backlog_then_each_write_once() {
    let db = Db::new();
    put(&db, "a");
    put(&db, "b");
    let sockets = [
        FakeSocket::default(),
        FakeSocket::default(),
        FakeSocket::default(),
    ];
    subscriptions::start(&db.engine(), &sockets[0], String::new(), 0);
    subscriptions::start(&db.engine(), &sockets[1], String::new(), 1);
    // A filtered subscription sees only its documents.
    let filtered = "filter=_doc_ids&doc_ids=%5B%22c%22%5D".to_string();
    subscriptions::start(&db.engine(), &sockets[2], filtered, 0);
    assert_eq!(sockets[0].take_ids(), ["a", "b"]);
    assert_eq!(sockets[1].take_ids(), ["b"]);
    assert!(sockets[2].take_ids().is_empty());

    put(&db, "c");
    subscriptions::push(&db.engine(), &sockets);
    for s in &sockets {
        assert_eq!(s.take_ids(), ["c"]);
        assert_eq!(s.subscription().unwrap().cursor, 3);
    }
    // Nothing new: nothing sent.
    subscriptions::push(&db.engine(), &sockets);
    assert!(sockets.iter().all(|s| s.sent.borrow().is_empty()));
    // A socket that is not a subscriber is left alone.
    let stranger = FakeSocket::default();
    subscriptions::push(&db.engine(), std::slice::from_ref(&stranger));
    assert!(stranger.sent.borrow().is_empty() && stranger.sub.borrow().is_none());
}

#[test]
fn clients_resume_from_a_sequence_or_now_and_bad_messages_get_errors() {
    let db = Db::new();
    put(&db, "a");
    put(&db, "b");
    let s = FakeSocket::default();
    subscriptions::start(&db.engine(), &s, String::new(), 0);
    s.take_ids();
    subscriptions::resume(&db.engine(), &s, r#"{"since": 1}"#);
    assert_eq!(s.take_ids(), ["b"]);
    subscriptions::resume(&db.engine(), &s, r#"{"since": "now"}"#);
    assert!(s.take_ids().is_empty());
    assert_eq!(s.subscription().unwrap().cursor, 2);
    for bad in ["hello", r#"{"since": "junk"}"#, "{}"] {
        subscriptions::resume(&db.engine(), &s, bad);
        let sent = s.sent.borrow_mut().drain(..).collect::<Vec<_>>();
        assert_eq!(sent.len(), 1, "{bad}");
        assert_eq!(sent[0]["error"], "bad_request", "{bad}");
    }
    // Bad parameters are an error message, and the socket stays usable.
    let b = FakeSocket::default();
    subscriptions::start(&db.engine(), &b, "filter=nope/none".into(), 0);
    assert!(b.sent.borrow()[0]["error"].is_string());
}
