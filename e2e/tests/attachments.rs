//! Attachments over HTTP: byte-for-byte round trips, ranges, stubs.

use e2e::{send, Settee};
use serde_json::json;
use std::io::Read;

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn get_bytes(s: &Settee, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    s.admin("GET", path)
        .call()
        .unwrap()
        .into_reader()
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn binary_round_trips_of_every_size() {
    let s = Settee::start();
    send(s.admin("PUT", "/files"), None);
    let mut rev: Option<String> = None;
    for (i, n) in [0usize, 1, 1000, 5 << 20, 30 << 20].into_iter().enumerate() {
        let data = bytes(n, i as u64 + 1);
        let path = match &rev {
            Some(r) => format!("/files/blob/f{i}.bin?rev={r}"),
            None => format!("/files/blob/f{i}.bin"),
        };
        let r = s
            .admin("PUT", &path)
            .set("content-type", "application/octet-stream")
            .send_bytes(&data)
            .unwrap();
        assert_eq!(r.status(), 201, "{n} bytes");
        rev = Some(
            r.into_json::<serde_json::Value>().unwrap()["rev"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        assert!(
            get_bytes(&s, &format!("/files/blob/f{i}.bin")) == data,
            "{n} bytes round trip"
        );
    }
    let (_, doc) = send(s.admin("GET", "/files/blob"), None);
    let atts = doc["_attachments"].as_object().unwrap();
    assert_eq!(
        atts.len(),
        5,
        "each PUT kept the earlier attachments as stubs"
    );
    assert_eq!(atts["f4.bin"]["length"], 30 << 20);
    assert_eq!(atts["f0.bin"]["digest"], shared::attachments::digest(b""));
    // A range of the 5 MB one.
    let r = s
        .admin("GET", "/files/blob/f3.bin")
        .set("range", "bytes=100-199")
        .call()
        .unwrap();
    assert_eq!(r.status(), 206);
    let mut part = Vec::new();
    r.into_reader().read_to_end(&mut part).unwrap();
    assert_eq!(part, bytes(5 << 20, 4)[100..200]);
    // Inline base64, then a stub that names nothing: 412.
    let (st, v) = send(
        s.admin("PUT", "/files/inline"),
        Some(&json!({"_attachments": {"t.txt": {"content_type": "text/plain", "data": "aGk="}}})),
    );
    assert_eq!(st, 201);
    let (st, v2) = send(
        s.admin("PUT", "/files/inline"),
        Some(&json!({"_rev": v["rev"], "_attachments": {"zz": {"stub": true}}})),
    );
    assert_eq!((st, v2["error"].as_str()), (412, Some("missing_stub")));
    assert_eq!(get_bytes(&s, "/files/inline/t.txt"), b"hi");
}

/// Text is stored gzip-encoded and comes back byte for byte; the stub says
/// so only when asked (`att_encoding_info`).
#[test]
fn text_is_stored_gzipped_and_served_decoded() {
    let s = Settee::start();
    send(s.admin("PUT", "/files"), None);
    let text = "{\"line\": \"compressible json text\"}\n"
        .repeat(20_000)
        .into_bytes();
    let r = s
        .admin("PUT", "/files/doc/data.json")
        .set("content-type", "application/json")
        .send_bytes(&text)
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(get_bytes(&s, "/files/doc/data.json") == text);
    let (_, doc) = send(s.admin("GET", "/files/doc?att_encoding_info=true"), None);
    let stub = &doc["_attachments"]["data.json"];
    assert_eq!(stub["encoding"], "gzip");
    assert_eq!(stub["length"], text.len());
    assert!(stub["encoded_length"].as_u64().unwrap() < text.len() as u64 / 20);
    assert_eq!(stub["digest"], shared::attachments::digest(&text));
    let (_, plain) = send(s.admin("GET", "/files/doc"), None);
    assert!(plain["_attachments"]["data.json"].get("encoding").is_none());
}

/// With an R2 bucket bound (Miniflare's simulation, as `wrangler dev`
/// uses), contents above `R2_ATTACHMENT_THRESHOLD` live in the bucket.
#[test]
fn large_attachments_live_in_r2_when_a_bucket_is_bound() {
    let state = tempfile::tempdir().unwrap();
    e2e::run_client(
        "node",
        "js/r2-attachments.mjs",
        &[
            e2e::bundle_dir().to_str().unwrap(),
            state.path().to_str().unwrap(),
        ],
    );
}

fn header_of(parts: &[shared::multipart::Part], i: usize) -> String {
    parts[i]
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Stubs across edits, `atts_since`, multipart in both directions (as
/// CouchDB's replicator pushes and pulls), and compaction, over HTTP.
#[test]
fn stubs_atts_since_multipart_and_compaction() {
    let s = Settee::start();
    send(s.admin("PUT", "/m"), None);
    let a = bytes(40_000, 7);
    let (_, r1) = send(
        s.admin("PUT", "/m/doc"),
        Some(
            &json!({"_attachments": {"a.bin": {"content_type": "application/octet-stream",
            "data": shared::attachments::encode_base64(&a)}}}),
        ),
    );
    let rev1 = r1["rev"].as_str().unwrap().to_string();
    // An edit with the stub keeps it (revpos 1) and adds another.
    let (st, r2) = send(
        s.admin("PUT", "/m/doc"),
        Some(&json!({"_rev": rev1, "edited": true, "_attachments": {
            "a.bin": {"stub": true},
            "b.txt": {"content_type": "text/plain", "data": "YmVl"}}})),
    );
    assert_eq!(st, 201, "{r2}");
    let (_, since) = send(
        s.admin("GET", &format!("/m/doc?atts_since=%5B%22{rev1}%22%5D")),
        None,
    );
    assert_eq!(since["_attachments"]["a.bin"]["stub"], true);
    assert_eq!(since["_attachments"]["a.bin"]["revpos"], 1);
    assert_eq!(since["_attachments"]["b.txt"]["data"], "YmVl");

    // Out as multipart/related, then back in elsewhere with new_edits=false.
    let resp = s
        .admin("GET", "/m/doc?attachments=true&revs=true")
        .set("accept", "multipart/related")
        .call()
        .unwrap();
    let ct = resp.header("content-type").unwrap().to_string();
    assert!(ct.starts_with("multipart/related"), "{ct}");
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).unwrap();
    send(s.admin("PUT", "/copy"), None);
    let r = s
        .admin("PUT", "/copy/doc?new_edits=false")
        .set("content-type", &ct)
        .send_bytes(&body)
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(get_bytes(&s, "/copy/doc/a.bin") == a);
    let (_, copy) = send(s.admin("GET", "/copy/doc?revs=true"), None);
    assert_eq!(copy["_rev"], r2["rev"]);
    assert_eq!(copy["_revisions"]["ids"].as_array().unwrap().len(), 2);

    // open_revs as multipart/mixed, a nested multipart/related per revision.
    let resp = s
        .admin(
            "GET",
            "/m/doc?open_revs=all&attachments=true&revs=true&latest=true",
        )
        .set("accept", "multipart/mixed")
        .call()
        .unwrap();
    let ct = resp.header("content-type").unwrap().to_string();
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).unwrap();
    let parts =
        shared::multipart::parse(&body, &shared::multipart::boundary(&ct).unwrap()).unwrap();
    let inner = header_of(&parts, 0);
    assert!(inner.starts_with("multipart/related"), "{inner}");
    let (doc, atts) = shared::multipart::related_document(&parts[0].body, &inner).unwrap();
    assert_eq!(doc["edited"], true);
    assert_eq!(atts.len(), 2);

    // Replacing a.bin orphans the first content; compaction drops it, and
    // what is still referenced stays readable.
    let (_, r3) = send(
        s.admin("PUT", "/m/doc"),
        Some(&json!({"_rev": r2["rev"], "_attachments": {
            "a.bin": {"content_type": "application/octet-stream", "data": "AAEC"}}})),
    );
    assert_eq!(
        send(s.admin("POST", "/m/_compact"), Some(&json!({}))).0,
        202
    );
    assert_eq!(get_bytes(&s, "/m/doc/a.bin"), vec![0, 1, 2]);
    let (st, _) = send(
        s.admin("GET", &format!("/m/doc?rev={rev1}&attachments=true")),
        None,
    );
    assert_eq!(st, 404, "the old revision's body went with it");
    assert!(r3["ok"] == true);
}
