//! `make torture`: Settee on a real `workerd`, abused. Writers under
//! SIGKILL, conflict storms, generated hostile HTTP and resource limits;
//! every figure is printed and written into RELIABILITY.md between its
//! `torture` markers.
//!
//! Usage: `torture [--short] [--report RELIABILITY.md]` (`--short` is the
//! subset CI runs: fewer kills and cases).

use e2e::{basic, Settee, ADMIN, PASSWORD};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one answer was: its status (0 when the socket failed or timed out)
/// and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
    hung: bool,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One request with its target exactly as given, over a fresh connection.
fn request(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Answer {
    let failed = |hung| Answer {
        status: 0,
        body: Vec::new(),
        hung,
    };
    let Ok(mut sock) = TcpStream::connect(("127.0.0.1", port)) else {
        return failed(false);
    };
    sock.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    if sock.write_all(head.as_bytes()).is_err() || sock.write_all(body).is_err() {
        return failed(false);
    }
    let mut reader = BufReader::new(sock);
    let mut line = String::new();
    if let Err(e) = reader.read_line(&mut line) {
        return failed(matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ));
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut out = Vec::new();
    let hung = if method == "HEAD" || status == 304 || status == 204 {
        false
    } else if chunked {
        read_chunked(&mut reader, &mut out).is_err()
    } else if let Some(n) = length {
        out.resize(n, 0);
        reader.read_exact(&mut out).is_err()
    } else {
        reader.read_to_end(&mut out).is_err()
    };
    Answer {
        status,
        body: out,
        hung,
    }
}

fn read_chunked(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<()> {
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            return Ok(());
        }
        let mut chunk = vec![0; n + 2];
        reader.read_exact(&mut chunk)?;
        out.extend(&chunk[..n]);
    }
}

fn admin() -> Vec<(String, String)> {
    vec![
        ("Authorization".into(), basic(ADMIN, PASSWORD)),
        ("Content-Type".into(), "application/json".into()),
    ]
}

fn as_admin(port: u16, method: &str, target: &str, body: &Value) -> Answer {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    request(port, method, target, &admin(), &bytes)
}

/// Collects report lines.
#[derive(Default)]
struct Report(Vec<String>);

impl Report {
    fn line(&mut self, s: String) {
        println!("{s}");
        self.0.push(s);
    }
}

// ---------------------------------------------------------------- kill -9

#[derive(Clone)]
enum Acked {
    Doc {
        id: String,
        rev: String,
        n: u64,
    },
    Attachment {
        id: String,
        rev: String,
        bytes: Vec<u8>,
    },
    Chain {
        id: String,
        rev: String,
    },
}

/// The rev of a write the server acknowledged in full: a 201 whose body a
/// kill cut off is no acknowledgement (the client cannot know the rev).
fn acked_rev(a: &Answer) -> Option<String> {
    (a.status == 201 && !a.hung)
        .then(|| a.json()["rev"].as_str().map(String::from))
        .flatten()
}

fn writer(port: u16, w: usize, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<Acked>>>) {
    let mut i = 0u64;
    let mut chain_rev: Option<String> = None;
    let chain = format!("chain-{w}");
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let id = format!("w{w}-{i}");
        let got = match i % 4 {
            0 => {
                let a = as_admin(
                    port,
                    "PUT",
                    &format!("/torture/{id}"),
                    &json!({"w": w, "n": i, "pad": "x".repeat((i % 7 * 300) as usize)}),
                );
                acked_rev(&a).map(|rev| vec![Acked::Doc { id, rev, n: i }])
            }
            1 => {
                let docs: Vec<Value> = (0..5)
                    .map(|k| json!({"_id": format!("{id}-{k}"), "w": w, "n": i * 10 + k}))
                    .collect();
                let a = as_admin(port, "POST", "/torture/_bulk_docs", &json!({"docs": docs}));
                (a.status == 201 && !a.hung).then(|| {
                    a.json()
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|r| r["ok"] == true)
                        .map(|r| {
                            let id: String = r["id"].as_str().unwrap_or_default().into();
                            let k: u64 = id
                                .rsplit('-')
                                .next()
                                .and_then(|k| k.parse().ok())
                                .unwrap_or(0);
                            Acked::Doc {
                                id,
                                rev: r["rev"].as_str().unwrap_or_default().into(),
                                n: i * 10 + k,
                            }
                        })
                        .collect()
                })
            }
            2 => {
                let bytes: Vec<u8> = (0..(4096 + i as usize * 37 % 20_000))
                    .map(|b| (b as u64 * i % 251) as u8)
                    .collect();
                let mut h = admin();
                h[1].1 = "application/octet-stream".into();
                let a = request(port, "PUT", &format!("/torture/att-{id}/blob"), &h, &bytes);
                acked_rev(&a).map(|rev| {
                    vec![Acked::Attachment {
                        id: format!("att-{id}"),
                        rev,
                        bytes,
                    }]
                })
            }
            _ => {
                let mut body = json!({"w": w, "n": i, "chain": true});
                if let Some(r) = &chain_rev {
                    body["_rev"] = json!(r);
                }
                let a = as_admin(port, "PUT", &format!("/torture/{chain}"), &body);
                match (a.status, acked_rev(&a)) {
                    (201, Some(rev)) => {
                        chain_rev = Some(rev.clone());
                        Some(vec![Acked::Chain {
                            id: chain.clone(),
                            rev,
                        }])
                    }
                    (201 | 409, _) => {
                        // An ack lost to a kill: the write may have landed.
                        chain_rev =
                            as_admin(port, "GET", &format!("/torture/{chain}"), &Value::Null)
                                .json()["_rev"]
                                .as_str()
                                .map(String::from);
                        None
                    }
                    _ => None,
                }
            }
        };
        match got {
            Some(rows) => acked.lock().unwrap().extend(rows),
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn ancestry(port: u16, id: &str) -> Vec<String> {
    let d = as_admin(
        port,
        "GET",
        &format!("/torture/{id}?revs=true"),
        &Value::Null,
    )
    .json();
    let start = d["_revisions"]["start"].as_u64().unwrap_or(0);
    d["_revisions"]["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(k, h)| format!("{}-{}", start - k as u64, h.as_str().unwrap_or_default()))
        .collect()
}

fn kill_under_load(report: &mut Report, kills: usize) {
    let mut s = Settee::start();
    let port = s.port;
    assert_eq!(as_admin(port, "PUT", "/torture", &Value::Null).status, 201);
    let view = json!({"views": {"all": {"map": "function(d){ if (d.w !== undefined) emit(d.w, 1); }", "reduce": "_count"}}});
    assert_eq!(
        as_admin(port, "PUT", "/torture/_design/t", &view).status,
        201
    );
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || writer(port, w, stop, acked))
        })
        .collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(300 + rng % 1200));
        s.kill_and_restart();
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    s.kill_and_restart();
    let acked = acked.lock().unwrap().clone();
    let mut lost = Vec::new();
    let mut chains: BTreeMap<String, String> = BTreeMap::new();
    for a in &acked {
        match a {
            Acked::Doc { id, rev, n } => {
                let d = as_admin(port, "GET", &format!("/torture/{id}"), &Value::Null).json();
                if d["_rev"] != json!(rev) || d["n"] != json!(n) {
                    lost.push(format!("{id} {rev}: {d}"));
                }
            }
            Acked::Attachment { id, rev, bytes } => {
                let d = as_admin(port, "GET", &format!("/torture/{id}"), &Value::Null).json();
                let got = request(port, "GET", &format!("/torture/{id}/blob"), &admin(), b"");
                if d["_rev"] != json!(rev) || got.body != *bytes {
                    lost.push(format!(
                        "{id} {rev}: attachment of {} bytes",
                        got.body.len()
                    ));
                }
            }
            Acked::Chain { id, rev } => {
                chains.insert(id.clone(), rev.clone());
            }
        }
    }
    for (id, rev) in &chains {
        if !ancestry(port, id).contains(rev) {
            lost.push(format!("{id}: acknowledged {rev} not in its history"));
        }
    }
    let info = as_admin(port, "GET", "/torture", &Value::Null).json();
    let all = as_admin(
        port,
        "GET",
        "/torture/_all_docs?include_docs=true",
        &Value::Null,
    )
    .json();
    let rows = all["rows"].as_array().cloned().unwrap_or_default();
    let ids: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect();
    let torn = rows
        .iter()
        .filter(|r| {
            let d = &r["doc"];
            !(d["w"].is_number()
                || d["_attachments"]["blob"].is_object()
                || r["id"].as_str().is_some_and(|i| i.starts_with("_design/")))
        })
        .count();
    let changes = as_admin(port, "GET", "/torture/_changes", &Value::Null).json();
    let changed: BTreeSet<String> = changes["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect();
    let with_w = rows.iter().filter(|r| r["doc"]["w"].is_number()).count();
    let view = as_admin(port, "GET", "/torture/_design/t/_view/all", &Value::Null).json();
    let found_by_view = view["rows"][0]["value"].as_u64().unwrap_or(0) as usize;
    report.line(format!(
        "kill -9 under load: {kills} SIGKILLs of workerd while 4 writers ran PUT, _bulk_docs, attachment PUT and updates; {} writes acknowledged, {} found with their exact rev and body, lost: {}; torn documents: {torn}; _all_docs {} ids = doc_count {} = _changes {} ids: {}; view rebuilt to {found_by_view} rows for {with_w} documents",
        acked.len(),
        acked.len() - lost.len().min(acked.len()),
        lost.len(),
        ids.len(),
        info["doc_count"],
        changed.len(),
        ids == changed && Some(ids.len() as u64) == info["doc_count"].as_u64(),
    ));
    for l in lost.iter().take(10) {
        report.line(format!("  LOST {l}"));
    }
    assert!(
        lost.is_empty() && torn == 0 && ids == changed && found_by_view == with_w,
        "kill -9 found faults"
    );
}

/// A replication whose target is SIGKILLed mid-batch, again and again:
/// once it completes, the target holds every document with its rev.
fn kill_replication_target(report: &mut Report, kills: usize) {
    let a = Settee::start();
    let mut b = Settee::start();
    as_admin(a.port, "PUT", "/src", &Value::Null);
    let n = 4_000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let docs: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"_id": format!("r{i:05}"), "i": i}))
            .collect();
        as_admin(a.port, "POST", "/src/_bulk_docs", &json!({"docs": docs}));
    }
    let target = format!("http://{ADMIN}:{PASSWORD}@127.0.0.1:{}/dst", b.port);
    let job = json!({"source": "src", "target": target, "create_target": true, "continuous": true});
    as_admin(a.port, "PUT", "/_replicator/killed", &job);
    let count = |b: &Settee| {
        as_admin(b.port, "GET", "/dst", &Value::Null).json()["doc_count"]
            .as_u64()
            .unwrap_or(0)
    };
    let mut seen_mid = Vec::new();
    let mut last = 0;
    for k in 0..kills {
        // Each kill waits for a batch to land, then strikes within the next.
        let t = Instant::now();
        while count(&b) <= last && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(30 * k as u64 % 150));
        last = count(&b);
        seen_mid.push(last);
        b.kill_and_restart();
    }
    let t = Instant::now();
    while count(&b) < n && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(250));
    }
    let src = as_admin(a.port, "GET", "/src/_all_docs", &Value::Null).json();
    let dst = as_admin(b.port, "GET", "/dst/_all_docs", &Value::Null).json();
    let same = src["rows"] == dst["rows"];
    report.line(format!(
        "replication target killed mid-batch: {kills} SIGKILLs of the target while a continuous replication of {n} documents ran (target counts at the kills: {seen_mid:?}); afterwards {} documents, every id and rev as the source's: {same}, in {:.1} s after the last kill",
        count(&b),
        t.elapsed().as_secs_f64()
    ));
    assert!(same, "the target does not match the source");
}

// ---------------------------------------------------------- conflict storm

fn parallel<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    (0..n)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || f(i))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect()
}

fn conflict_storm(report: &mut Report, writers: usize) {
    let s = Settee::start();
    let port = s.port;
    as_admin(port, "PUT", "/storm", &Value::Null);
    let rev = as_admin(port, "PUT", "/storm/d", &json!({"v": 0})).json()["rev"]
        .as_str()
        .unwrap()
        .to_string();
    let r = rev.clone();
    let puts = parallel(writers, move |i| {
        as_admin(port, "PUT", &format!("/storm/d?rev={r}"), &json!({"v": i})).status
    });
    let put_wins = puts.iter().filter(|&&s| s == 201).count();
    let put_conflicts = puts.iter().filter(|&&s| s == 409).count();
    let rev2 = as_admin(port, "GET", "/storm/d", &Value::Null).json()["_rev"]
        .as_str()
        .unwrap()
        .to_string();
    let bulk = parallel(writers, move |i| {
        let a = as_admin(
            port,
            "POST",
            "/storm/_bulk_docs",
            &json!({"docs": [{"_id": "d", "_rev": rev2, "v": i}]}),
        );
        a.json()[0]["ok"] == true
    });
    let bulk_wins = bulk.iter().filter(|&&ok| ok).count();
    let replicated = parallel(writers, move |i| {
        let hash = format!("{:032x}", i as u128 * 0x9e37_79b9_7f4a_7c15 + 1);
        let doc = json!({"_id": "d", "_rev": format!("9-{hash}"), "_revisions": {"start": 9, "ids": [hash]}, "v": i});
        as_admin(
            port,
            "POST",
            "/storm/_bulk_docs",
            &json!({"docs": [doc], "new_edits": false}),
        )
        .status
    });
    let mut accept = admin();
    accept.push(("Accept".into(), "application/json".into()));
    let leaves = request(port, "GET", "/storm/d?open_revs=all", &accept, b"").json();
    let n_leaves = leaves.as_array().map_or(0, Vec::len);
    let winner = as_admin(port, "GET", "/storm/d", &Value::Null).json()["_rev"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let expected = (0..writers)
        .map(|i| format!("9-{:032x}", i as u128 * 0x9e37_79b9_7f4a_7c15 + 1))
        .max()
        .unwrap();
    report.line(format!(
        "conflict storm, one server: {writers} concurrent PUTs on one rev: {put_wins} won, {put_conflicts} got 409; {writers} concurrent _bulk_docs on one rev: {bulk_wins} won; {writers} new_edits=false branches: {} accepted, {n_leaves} leaves, winner {winner} (CouchDB's rule picks {expected})",
        replicated.iter().filter(|&&s| s == 201).count(),
    ));
    assert!(
        put_wins == 1
            && put_conflicts == writers - 1
            && bulk_wins == 1
            && winner == expected
            && n_leaves > writers
    );
    two_way(report, s);
}

/// Two servers replicating both ways while both take writes to the same
/// documents: afterwards each document has the same leaves and winner.
fn two_way(report: &mut Report, a: Settee) {
    let b = Settee::start();
    let (pa, pb) = (a.port, b.port);
    as_admin(pb, "PUT", "/storm", &Value::Null);
    let url = |p: u16| format!("http://{ADMIN}:{PASSWORD}@127.0.0.1:{p}/storm");
    for (from, to, id) in [(pa, pb, "ab"), (pb, pa, "ba")] {
        let doc = json!({"_id": id, "source": url(from), "target": url(to), "continuous": true});
        as_admin(pa, "PUT", &format!("/_replicator/{id}"), &doc);
    }
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut writes = 0;
    while Instant::now() < deadline {
        // Both sides edit the same document before either hears of the
        // other's edit: conflicts, which replication must carry both ways.
        let id = format!("shared-{}", writes % 20);
        for (p, side) in [(pa, "a"), (pb, "b")] {
            let cur = as_admin(p, "GET", &format!("/storm/{id}"), &Value::Null).json();
            let mut body = json!({"side": side, "n": writes});
            if let Some(r) = cur["_rev"].as_str() {
                body["_rev"] = json!(r);
            }
            if as_admin(p, "PUT", &format!("/storm/{id}"), &body).status == 201 {
                writes += 1;
            }
        }
    }
    let state = |p: u16| -> BTreeMap<String, (String, BTreeSet<String>)> {
        let all = as_admin(p, "GET", "/storm/_all_docs", &Value::Null).json();
        all["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str())
            .filter(|id| id.starts_with("shared-"))
            .map(|id| {
                let d = as_admin(
                    p,
                    "GET",
                    &format!("/storm/{id}?conflicts=true"),
                    &Value::Null,
                )
                .json();
                let mut leaves: BTreeSet<String> = d["_conflicts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect();
                leaves.insert(d["_rev"].as_str().unwrap_or_default().into());
                (
                    id.to_string(),
                    (d["_rev"].as_str().unwrap_or_default().to_string(), leaves),
                )
            })
            .collect()
    };
    let mut same = false;
    let converge = Instant::now();
    while converge.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(500));
        let (sa, sb) = (state(pa), state(pb));
        if !sa.is_empty() && sa == sb {
            same = true;
            break;
        }
    }
    let conflicted = state(pa).values().filter(|(_, l)| l.len() > 1).count();
    report.line(format!(
        "two servers replicating both ways while writing: {writes} writes to 20 shared documents over 8 s; converged: {same} (same winner and leaves on both, {:.1} s after the writes stopped; {conflicted} documents conflicted)",
        converge.elapsed().as_secs_f64()
    ));
    assert!(same, "the servers did not converge");
    drop(b);
}

// ------------------------------------------------------------- HTTP fuzz

#[derive(Debug, Clone)]
struct Fuzzed {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "fuzz",
            "canary",
            "_all_docs",
            "_changes",
            "_design",
            "_local",
            "_bulk_docs",
            "_bulk_get",
            "_find",
            "_index",
            "_explain",
            "_view",
            "_security",
            "_revs_diff",
            "_purge",
            "_compact",
            "_all_dbs",
            "_session",
            "_users",
            "_replicator",
            "_utils",
            "_node",
            "_local",
            "_config",
            "_stats",
            "_show",
            "_list",
            "_update",
            "doc",
            "att",
            "%2E",
            "%2E%2E",
            "%FF",
            "%C0%AF",
            "%2F",
            "_design%2Fx",
            "a+b",
            "%00",
            "_scheduler",
            "_active_tasks",
            "_db_updates",
        ])
        .prop_map(String::from),
        "[a-z0-9_%]{1,12}",
    ]
}

fn fuzzed() -> impl Strategy<Value = Fuzzed> {
    let method = prop::sample::select(vec![
        "GET", "GET", "HEAD", "PUT", "POST", "POST", "DELETE", "COPY", "PATCH", "OPTIONS",
    ]);
    let path = prop::collection::vec(segment(), 0..5);
    let query = prop::collection::vec(
        (
            prop::sample::select(vec![
                "rev",
                "revs",
                "open_revs",
                "limit",
                "skip",
                "startkey",
                "endkey",
                "key",
                "keys",
                "descending",
                "include_docs",
                "since",
                "feed",
                "timeout",
                "heartbeat",
                "filter",
                "style",
                "stale",
                "update",
                "group_level",
                "reduce",
                "conflicts",
                "attachments",
                "atts_since",
                "new_edits",
                "batch",
                "q",
                "latest",
            ]),
            prop_oneof![
                "[a-z0-9\"\\[\\]{}:,_-]{0,12}",
                Just("100000000000000000000".to_string()),
                Just("-1".to_string()),
                Just("%FF".to_string())
            ],
        ),
        0..4,
    );
    let json_body = shared_json();
    let body = prop_oneof![
        Just(Vec::new()),
        json_body.prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..200),
    ];
    let header = prop_oneof![
        Just(("Content-Type".to_string(), "application/json".to_string())),
        Just((
            "Content-Type".to_string(),
            "multipart/related; boundary=x".to_string()
        )),
        Just(("Content-Type".to_string(), "text/plain".to_string())),
        Just(("Accept".to_string(), "multipart/mixed".to_string())),
        Just(("If-Match".to_string(), "\"1-abc\"".to_string())),
        Just(("Destination".to_string(), "canary-copy".to_string())),
        Just(("Destination".to_string(), "../canary/x".to_string())),
        Just(("Content-Encoding".to_string(), "gzip".to_string())),
        Just((
            "Cookie".to_string(),
            "AuthSession=YWRtaW46MDpmb28".to_string()
        )),
        Just((
            "Authorization".to_string(),
            "Bearer eyJhbGciOiJub25lIn0.e30.".to_string()
        )),
        Just(("X-Auth-CouchDB-UserName".to_string(), "admin".to_string())),
        Just(("X-HTTP-Method-Override".to_string(), "DELETE".to_string())),
        "[A-Za-z-]{1,10}".prop_flat_map(|k| "[ -~]{0,20}".prop_map(move |v| (k.clone(), v))),
    ];
    let who = prop::sample::select(vec![0u8, 1, 1, 1]);
    (
        method,
        path,
        query,
        prop::collection::vec(header, 0..4),
        body,
        who,
    )
        .prop_map(|(m, path, query, mut headers, body, who)| {
            let mut target = format!("/{}", path.join("/"));
            if !query.is_empty() {
                let q: Vec<String> = query
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.replace(' ', "%20")))
                    .collect();
                target = format!("{target}?{}", q.join("&"));
            }
            if who == 1 {
                headers.push(("Authorization".into(), basic("fuzzer", "fuzzer-pw")));
            }
            Fuzzed {
                method: m.to_string(),
                target,
                headers,
                body,
            }
        })
}

fn shared_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[ -~]{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "_id",
                        "_rev",
                        "_deleted",
                        "docs",
                        "keys",
                        "selector",
                        "views",
                        "map",
                        "_attachments",
                        "new_edits",
                        "x",
                        "$gt",
                        "fields",
                        "index"
                    ])
                    .prop_map(String::from),
                    inner
                ),
                0..4,
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn canary_state(port: u16) -> Value {
    json!({
        "docs": as_admin(port, "GET", "/canary/_all_docs?include_docs=true&conflicts=true", &Value::Null).json()["rows"],
        "security": as_admin(port, "GET", "/canary/_security", &Value::Null).json(),
        "local": as_admin(port, "GET", "/canary/_local_docs?include_docs=true", &Value::Null).json()["rows"],
        "seq": as_admin(port, "GET", "/canary", &Value::Null).json()["update_seq"],
    })
}

fn fuzz(report: &mut Report, cases: usize) {
    let s = Settee::start();
    let port = s.port;
    for db in ["canary", "fuzz"] {
        as_admin(port, "PUT", &format!("/{db}"), &Value::Null);
    }
    as_admin(
        port,
        "PUT",
        "/_users/org.couchdb.user:fuzzer",
        &json!({"name": "fuzzer", "password": "fuzzer-pw", "roles": [], "type": "user"}),
    );
    as_admin(
        port,
        "PUT",
        "/fuzz/_security",
        &json!({"members": {"names": ["fuzzer"]}}),
    );
    as_admin(
        port,
        "PUT",
        "/canary/_security",
        &json!({"admins": {"names": ["keeper"]}, "members": {"names": ["keeper"]}}),
    );
    for i in 0..5 {
        as_admin(port, "PUT", &format!("/canary/c{i}"), &json!({"n": i}));
    }
    as_admin(
        port,
        "PUT",
        "/canary/_design/v",
        &json!({"views": {"v": {"map": "function(d){ emit(d.n, 1); }"}}}),
    );
    let before = canary_state(port);
    let mut runner = TestRunner::new(PropConfig::default());
    let strategy = fuzzed();
    let (mut five, mut hangs, mut by_status) =
        (Vec::new(), Vec::new(), BTreeMap::<u16, usize>::new());
    let started = Instant::now();
    for _ in 0..cases {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        let a = request(port, &case.method, &case.target, &case.headers, &case.body);
        *by_status.entry(a.status).or_default() += 1;
        if a.hung || a.status == 0 {
            hangs.push(case.clone());
        } else if a.status >= 500 {
            five.push((case.clone(), String::from_utf8_lossy(&a.body).into_owned()));
        }
    }
    let after = canary_state(port);
    let alive = as_admin(port, "GET", "/_up", &Value::Null).status == 200;
    report.line(format!(
        "HTTP fuzzing: {cases} generated requests (proptest grammar over methods, paths with encoded dots and bad UTF-8, query parameters, headers, JSON and binary bodies; as anonymous and as a member of one database) in {:.0} s: 5xx {}, hangs {}, canary database changed: {}, server up afterwards: {alive}; statuses {:?}",
        started.elapsed().as_secs_f64(),
        five.len(),
        hangs.len(),
        before != after,
        by_status,
    ));
    for (c, body) in five.iter().take(10) {
        report.line(format!(
            "  5xx {} {} {:?} {} -> {body}",
            c.method,
            c.target,
            c.headers,
            String::from_utf8_lossy(&c.body)
        ));
    }
    for c in hangs.iter().take(5) {
        report.line(format!("  HANG {} {} {:?}", c.method, c.target, c.headers));
    }
    assert!(
        five.is_empty() && hangs.is_empty() && before == after && alive,
        "fuzzing found faults"
    );
}

// ---------------------------------------------------------- resource limits

fn limits(report: &mut Report, feeds: usize) {
    let s = Settee::start();
    let port = s.port;
    as_admin(port, "PUT", "/lim", &Value::Null);
    let huge = json!({"big": "x".repeat(9_000_000)});
    let a = as_admin(port, "PUT", "/lim/huge", &huge);
    report.line(format!(
        "a 9 MB document: {} {}",
        a.status,
        a.json()["error"]
    ));
    assert_eq!(a.status, 413);

    // 8 MB of attachment, sent in 64 KiB pieces 5 ms apart.
    let bytes: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    let started = Instant::now();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(sock, "PUT /lim/slow/blob HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", basic(ADMIN, PASSWORD), bytes.len()).unwrap();
    for chunk in bytes.chunks(64 * 1024) {
        sock.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut line = String::new();
    BufReader::new(&sock).read_line(&mut line).unwrap();
    let back = request(port, "GET", "/lim/slow/blob", &admin(), b"");
    report.line(format!(
        "an 8 MiB attachment streamed slowly over {:.1} s: {} and read back equal: {}",
        started.elapsed().as_secs_f64(),
        line.trim(),
        back.body == bytes
    ));
    assert!(line.contains("201") && back.body == bytes);

    // Thousands of open long-poll feeds, then a write wakes them.
    let socks: Vec<TcpStream> = (0..feeds)
        .filter_map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
            write!(s, "GET /lim/_changes?feed=longpoll&since=now&timeout=60000 HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n", basic(ADMIN, PASSWORD)).ok()?;
            Some(s)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let t = Instant::now();
    let up = as_admin(port, "GET", "/lim", &Value::Null).status;
    let answered_in = t.elapsed();
    as_admin(port, "PUT", "/lim/wake", &json!({}));
    let woken = socks
        .into_iter()
        .filter(|s| {
            s.set_read_timeout(Some(Duration::from_secs(20))).ok();
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).is_ok() && line.contains("200")
        })
        .count();
    report.line(format!("{feeds} open long-poll feeds: a request meanwhile answered {up} in {} ms; one write answered {woken} of them", answered_in.as_millis()));
    assert!(up == 200 && woken == feeds);

    // Map functions that loop or allocate without end.
    for (name, map) in [
        ("loops", "function(d){ while (true) {} }"),
        (
            "allocates",
            "function(d){ var a = []; while (true) { a.push(new Array(100000).fill(d)); } }",
        ),
    ] {
        as_admin(
            port,
            "PUT",
            &format!("/lim/_design/{name}"),
            &json!({"views": {"v": {"map": map}}}),
        );
        let t = Instant::now();
        let a = as_admin(
            port,
            "GET",
            &format!("/lim/_design/{name}/_view/v"),
            &Value::Null,
        );
        let after = as_admin(port, "GET", "/lim/wake", &Value::Null).status;
        report.line(format!(
            "a map function that {name}: {} {} {} in {:.1} s; the database answers afterwards: {after}",
            a.status,
            a.json()["error"],
            a.json()["reason"],
            t.elapsed().as_secs_f64()
        ));
        assert!(a.status >= 400 && !a.body.is_empty() && after == 200);
    }
}

/// A part of the run: its name (for `TORTURE_ONLY`) and what it does.
type Section = (&'static str, Box<dyn Fn(&mut Report)>);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let short = args.iter().any(|a| a == "--short");
    let report_path = args
        .iter()
        .position(|a| a == "--report")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut report = Report::default();
    let command = if short {
        "make torture SHORT=1"
    } else {
        "make torture"
    };
    report.line(format!(
        "Command: `{command}` ({})",
        std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    ));
    let sections: [Section; 5] = [
        (
            "kill",
            Box::new(move |r| kill_under_load(r, if short { 3 } else { 20 })),
        ),
        (
            "target",
            Box::new(move |r| kill_replication_target(r, if short { 2 } else { 5 })),
        ),
        (
            "storm",
            Box::new(move |r| conflict_storm(r, if short { 20 } else { 100 })),
        ),
        (
            "fuzz",
            Box::new(move |r| fuzz(r, if short { 1_000 } else { 10_000 })),
        ),
        (
            "limits",
            Box::new(move |r| limits(r, if short { 200 } else { 2_000 })),
        ),
    ];
    let only = std::env::var("TORTURE_ONLY").ok();
    let mut failed = Vec::new();
    for (name, run) in sections.iter() {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|x| x == *name))
        {
            continue;
        }
        let mut part = Report::default();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut part)));
        report.0.extend(part.0);
        if result.is_err() {
            failed.push(*name);
            report.line(format!("FAILED: {name}"));
        }
    }
    if let Some(path) = report_path {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let block = format!(
            "<!-- torture -->\n{}\n<!-- /torture -->",
            report
                .0
                .iter()
                .map(|l| format!("- {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let updated = match (
            text.find("<!-- torture -->"),
            text.find("<!-- /torture -->"),
        ) {
            (Some(a), Some(b)) => format!(
                "{}{}{}",
                &text[..a],
                block,
                &text[b + "<!-- /torture -->".len()..]
            ),
            _ => format!("{text}\n## `make torture`\n\n{block}\n"),
        };
        std::fs::write(&path, updated).expect("report written");
    }
    if !failed.is_empty() {
        eprintln!("torture failed: {failed:?}");
        std::process::exit(1);
    }
}
