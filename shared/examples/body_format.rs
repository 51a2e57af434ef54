//! Measures the two candidate storage formats for document bodies: compact
//! JSON text (what Settee stores) and MessagePack (rmp-serde). It compares
//! stored size, the write-side encoding cost, and the read-side cost of
//! turning a stored body into the JSON a client gets.
//!
//! Run: `cargo run --release -p shared --example body_format`

use serde_json::{json, Value};
use std::time::Instant;

fn corpus() -> Vec<Value> {
    (0..20_000)
        .map(|i| match i % 3 {
            0 => json!({"type": "user", "name": format!("User {i}"), "email": format!("u{i}@example.com"),
                        "active": i % 2 == 0, "created": "2026-01-01T00:00:00Z", "roles": ["reader", "writer"]}),
            1 => json!({"type": "product", "name": format!("Widget {i}"), "price": i as f64 * 0.25,
                        "category": "tools", "tags": ["a", "b", "c"], "stock": {"warehouse": i, "store": 3}}),
            _ => json!({"type": "note", "text": "lorem ipsum dolor sit amet ".repeat(8), "n": i,
                        "nested": {"deep": {"deeper": [1, 2, 3, {"x": null}]}}}),
        })
        .collect()
}

fn main() {
    let docs = corpus();
    let t = Instant::now();
    let json: Vec<Vec<u8>> = docs
        .iter()
        .map(|d| serde_json::to_vec(d).unwrap())
        .collect();
    let json_enc = t.elapsed();
    let t = Instant::now();
    let mp: Vec<Vec<u8>> = docs.iter().map(|d| rmp_serde::to_vec(d).unwrap()).collect();
    let mp_enc = t.elapsed();
    // Read side: JSON is spliced as is; MessagePack must be decoded and
    // re-encoded as JSON for the client.
    let t = Instant::now();
    let mut out = 0usize;
    for b in &json {
        out += shared::doc::render("id", "1-abc", false, b, &[]).len();
    }
    let json_read = t.elapsed();
    let t = Instant::now();
    for b in &mp {
        let v: Value = rmp_serde::from_slice(b).unwrap();
        out +=
            shared::doc::render("id", "1-abc", false, &serde_json::to_vec(&v).unwrap(), &[]).len();
    }
    let mp_read = t.elapsed();
    let size = |v: &[Vec<u8>]| v.iter().map(Vec::len).sum::<usize>();
    println!("{} docs ({} bytes of output checked)", docs.len(), out);
    println!("| format | stored bytes | encode | read to client JSON |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| JSON text | {} | {:?} | {:?} |",
        size(&json),
        json_enc,
        json_read
    );
    println!(
        "| MessagePack | {} | {:?} | {:?} |",
        size(&mp),
        mp_enc,
        mp_read
    );
}
