//! The WebSocket `_changes` feed (`feed=websocket`), held by the database
//! actor through the hibernation API.

use e2e::{basic, send, Settee, ADMIN, PASSWORD};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(s: &Settee, query: &str) -> Ws {
    let url = format!(
        "ws://127.0.0.1:{}/live/_changes?feed=websocket&{query}",
        s.port
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", basic(ADMIN, PASSWORD).parse().unwrap());
    let (ws, resp) = tungstenite::connect(req).expect("websocket upgrade");
    assert_eq!(resp.status(), 101);
    if let MaybeTlsStream::Plain(t) = ws.get_ref() {
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    ws
}

fn next_row(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("a message") {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn setup() -> Settee {
    let s = Settee::start();
    assert_eq!(send(s.admin("PUT", "/live"), None).0, 201);
    send(s.admin("PUT", "/live/a"), Some(&json!({"n": 1})));
    s
}

#[test]
fn subscribe_receive_resume_and_close() {
    let s = setup();
    let mut ws = connect(&s, "since=0&include_docs=true");
    assert_eq!(next_row(&mut ws)["id"], "a", "the backlog comes first");
    send(s.admin("PUT", "/live/b"), Some(&json!({"n": 2})));
    let row = next_row(&mut ws);
    assert_eq!(
        (row["id"].as_str(), &row["doc"]["n"]),
        (Some("b"), &json!(2))
    );
    // Resume from the start.
    ws.send(Message::Text(json!({"since": 0}).to_string()))
        .unwrap();
    assert_eq!(next_row(&mut ws)["id"], "a");
    assert_eq!(next_row(&mut ws)["id"], "b");
    // Filters apply.
    let mut only_c = connect(&s, "since=now&filter=_doc_ids&doc_ids=%5B%22c%22%5D");
    send(s.admin("PUT", "/live/skip"), Some(&json!({})));
    send(s.admin("PUT", "/live/c"), Some(&json!({})));
    assert_eq!(next_row(&mut only_c)["id"], "c");
    // A close without a code (1005) is answered cleanly and the server goes on.
    ws.close(None).unwrap();
    let _ = ws.read();
    assert_eq!(send(s.admin("GET", "/live"), None).0, 200);
    // Without an upgrade, feed=websocket is a clear 400; anonymous is refused.
    assert_eq!(
        send(s.admin("GET", "/live/_changes?feed=websocket"), None).0,
        400
    );
    let anon = format!("ws://127.0.0.1:{}/live/_changes?feed=websocket", s.port);
    assert!(tungstenite::connect(anon).is_err());
}

#[test]
fn thousands_of_idle_subscribers_cost_nothing_and_all_hear_a_change() {
    let s = setup();
    let n = 2000;
    let mut sockets: Vec<Ws> = (0..n).map(|_| connect(&s, "since=now")).collect();
    let pid = s.pid().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let before = e2e::cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let idle = e2e::cpu_ticks(pid) - before;
    println!("workerd CPU while {n} subscribers idled for 2 s: {idle} ticks");
    assert!(idle <= 10, "idle subscribers cost CPU: {idle} ticks in 2 s");
    let t0 = Instant::now();
    send(
        s.admin("PUT", "/live/news"),
        Some(&json!({"hello": "everyone"})),
    );
    for ws in sockets.iter_mut() {
        assert_eq!(next_row(ws)["id"], "news");
    }
    let took = t0.elapsed();
    println!("all {n} subscribers received the change in {took:?}");
    assert!(took < Duration::from_secs(2), "fan-out took {took:?}");
}
