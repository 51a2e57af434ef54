//! Live `_changes` feeds over real HTTP streams.

use e2e::{send, Settee};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

fn setup() -> Settee {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/live"), None).0, 201);
    send(s.admin("PUT", "/live/first"), Some(&json!({"n": 1})));
    s
}

/// Writes `id` after `delay`, from another thread.
fn write_later(s: &Settee, id: &str, delay: Duration) -> std::thread::JoinHandle<()> {
    let req = s.admin("PUT", &format!("/live/{id}"));
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        send(req, Some(&json!({"late": true})));
    })
}

#[test]
fn continuous_feed_streams_rows_heartbeats_and_last_seq() {
    let s = setup();
    let writer = write_later(&s, "second", Duration::from_millis(500));
    let resp = s
        .admin(
            "GET",
            "/live/_changes?feed=continuous&since=0&heartbeat=100&timeout=1500&include_docs=true",
        )
        .call()
        .unwrap();
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let t0 = Instant::now();
    let mut rows = vec![];
    let mut heartbeats = 0;
    let mut second_at = None;
    for line in BufReader::new(resp.into_reader()).lines() {
        let line = line.unwrap();
        if line.is_empty() {
            heartbeats += 1;
            continue;
        }
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["id"] == "second" {
            second_at = Some(t0.elapsed());
        }
        rows.push(v);
    }
    writer.join().unwrap();
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["first", "second"]);
    assert_eq!(rows[1]["doc"]["late"], true);
    let last = rows.last().unwrap();
    assert!(
        last["last_seq"].as_str().unwrap().starts_with("2-"),
        "{last}"
    );
    assert!(heartbeats >= 3, "heartbeats while idle: {heartbeats}");
    assert!(
        second_at.unwrap() < Duration::from_millis(1400),
        "the write arrived while the feed was open"
    );
}

#[test]
fn continuous_feed_with_limit_ends_early() {
    let s = setup();
    send(s.admin("PUT", "/live/b"), Some(&json!({})));
    let text = s
        .admin("GET", "/live/_changes?feed=continuous&limit=1")
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["pending"], 1);
}

#[test]
fn eventsource_feed() {
    let s = setup();
    let writer = write_later(&s, "evt", Duration::from_millis(300));
    let resp = s
        .admin(
            "GET",
            "/live/_changes?feed=eventsource&since=now&timeout=1200&heartbeat=200",
        )
        .call()
        .unwrap();
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let text = resp.into_string().unwrap();
    writer.join().unwrap();
    let data: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(data.len(), 1, "{text}");
    assert_eq!(data[0]["id"], "evt");
    assert!(text.contains(&format!("id: {}", data[0]["seq"].as_str().unwrap())));
    assert!(text.contains(": heartbeat"));
}
