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

/// `_db_updates`: creations, writes (reported within a second, once per
/// burst) and deletions, as a normal, long-poll and continuous feed;
/// server admins only.
#[test]
fn db_updates_reports_created_updated_and_deleted_databases() {
    let s = setup();
    let (st, all) = send(s.admin("GET", "/_db_updates"), None);
    assert_eq!(st, 200);
    let live = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["db_name"] == "live")
        .cloned()
        .unwrap();
    assert!(
        matches!(live["type"].as_str(), Some("created" | "updated")),
        "{live}"
    );
    assert_eq!(send(s.anon("GET", "/_db_updates"), None).0, 401);

    // A long-poll from now wakes up with the next write's report.
    let writer = write_later(&s, "burst-1", Duration::from_millis(300));
    let t0 = Instant::now();
    let (st, next) = send(
        s.admin("GET", "/_db_updates?feed=longpoll&since=now&timeout=5000"),
        None,
    );
    writer.join().unwrap();
    assert_eq!(st, 200);
    assert_eq!(next["results"][0]["db_name"], "live");
    assert_eq!(next["results"][0]["type"], "updated");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());

    // Continuous: a new database, then its deletion, then the end.
    let since = next["last_seq"].as_str().unwrap().to_string();
    let admin = (s.admin("PUT", "/other"), s.admin("DELETE", "/other"));
    let churn = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        send(admin.0, None);
        send(admin.1, None);
    });
    let resp = s
        .admin(
            "GET",
            &format!("/_db_updates?feed=continuous&since={since}&timeout=1500&heartbeat=200"),
        )
        .call()
        .unwrap();
    let lines: Vec<Value> = BufReader::new(resp.into_reader())
        .lines()
        .map(|l| l.unwrap())
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    churn.join().unwrap();
    let events: Vec<(&str, &str)> = lines
        .iter()
        .filter_map(|r| Some((r["db_name"].as_str()?, r["type"].as_str()?)))
        .collect();
    assert!(events.contains(&("other", "created")), "{events:?}");
    assert!(events.ends_with(&[("other", "deleted")]), "{events:?}");
    assert!(lines.last().unwrap()["last_seq"].is_string());
}

/// `filter=_selector` on a continuous feed, selector in the POST body.
#[test]
fn continuous_feed_filtered_by_selector() {
    let s = setup();
    send(
        s.admin("PUT", "/live/blue-1"),
        Some(&json!({"colour": "blue"})),
    );
    send(
        s.admin("PUT", "/live/red-1"),
        Some(&json!({"colour": "red"})),
    );
    let writer = std::thread::spawn({
        let (blue, red) = (
            s.admin("PUT", "/live/blue-2"),
            s.admin("PUT", "/live/red-2"),
        );
        move || {
            std::thread::sleep(Duration::from_millis(300));
            send(red, Some(&json!({"colour": "red"})));
            send(blue, Some(&json!({"colour": "blue"})));
        }
    });
    let resp = s
        .admin(
            "POST",
            "/live/_changes?feed=continuous&filter=_selector&timeout=1200&include_docs=true",
        )
        .set("content-type", "application/json")
        .send_string(&json!({"selector": {"colour": "blue"}}).to_string())
        .unwrap();
    let rows: Vec<Value> = BufReader::new(resp.into_reader())
        .lines()
        .map(|l| l.unwrap())
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    writer.join().unwrap();
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["blue-1", "blue-2"]);
    assert!(rows.last().unwrap()["last_seq"].is_string());
}
