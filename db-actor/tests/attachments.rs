//! Attachments, natively: inline and standalone, stubs, digests, ranges.

mod common;

use common::Db;
use serde_json::{json, Value};
use shared::http::Request;

fn b64(data: &[u8]) -> String {
    shared::attachments::encode_base64(data)
}

fn put_att(db: &Db, url: &str, data: &[u8], ct: &str) -> (u16, Value) {
    let (path, qs) = url.split_once('?').unwrap_or((url, ""));
    let r = db.request(
        Request::new("PUT", path, qs)
            .with_header("content-type", ct)
            .with_body(data.to_vec()),
    );
    (r.status, r.json_body())
}

#[test]
fn inline_attachments_stubs_and_digests() {
    let db = Db::new();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let rev1 = db.put("d", json!({"_attachments": {"bin": {"content_type": "application/x-test", "data": b64(&bytes)}}, "k": 1}));
    let (_, doc) = db.json("GET", "/db/d", None);
    let stub = &doc["_attachments"]["bin"];
    assert_eq!(stub["stub"], true);
    assert_eq!(stub["length"], 5000);
    assert_eq!(stub["revpos"], 1);
    assert_eq!(stub["digest"], shared::attachments::digest(&bytes));
    // Stubs keep the attachment across edits (revpos unchanged).
    let mut edit = doc.clone();
    edit["k"] = json!(2);
    let rev2 = db.put("d", edit);
    let (_, doc2) = db.json("GET", "/db/d?attachments=true", None);
    assert_eq!(doc2["_attachments"]["bin"]["revpos"], 1);
    assert_eq!(doc2["_attachments"]["bin"]["data"], b64(&bytes));
    // atts_since: the client has rev1, which already had the attachment.
    let (_, since) = db.json("GET", &format!("/db/d?atts_since=%5B%22{rev1}%22%5D"), None);
    assert_eq!(since["_attachments"]["bin"]["stub"], true);
    // An unknown stub is 412 missing_stub; bad base64 is 400; nothing is written.
    let (s, v) = db.json(
        "PUT",
        "/db/d",
        Some(json!({"_rev": rev2, "_attachments": {"nope": {"stub": true}}})),
    );
    assert_eq!((s, v["error"].as_str()), (412, Some("missing_stub")));
    let (s, _) = db.json(
        "PUT",
        "/db/d",
        Some(json!({"_rev": rev2, "_attachments": {"x": {"data": "%%%"}}})),
    );
    assert_eq!(s, 400);
    assert_eq!(db.json("GET", "/db/d", None).1["_rev"], rev2);
    // Same content, other attachment content: different revisions.
    assert_ne!(
        db.put("e1", json!({"_attachments": {"a": {"data": b64(b"one")}}})),
        db.put("e2", json!({"_attachments": {"a": {"data": b64(b"two")}}}))
    );
}

#[test]
fn standalone_attachments_and_ranges() {
    let db = Db::new();
    let (s, v) = put_att(&db, "/db/doc/dir%2Fnote.txt", b"hello world", "text/plain");
    assert_eq!(s, 201, "{v}");
    let rev = v["rev"].as_str().unwrap().to_string();
    let r = db.call("GET", "/db/doc/dir%2Fnote.txt", None);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello world"[..]));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let etag = r.header("etag").unwrap().to_string();
    let r = db.request(
        Request::new("GET", "/db/doc/dir%2Fnote.txt", "").with_header("if-none-match", &etag),
    );
    assert_eq!(r.status, 304);
    let r = db.request(
        Request::new("GET", "/db/doc/dir%2Fnote.txt", "").with_header("range", "bytes=6-"),
    );
    assert_eq!((r.status, r.body.as_slice()), (206, &b"world"[..]));
    assert_eq!(r.header("content-range"), Some("bytes 6-10/11"));
    let r = db.request(
        Request::new("GET", "/db/doc/dir%2Fnote.txt", "").with_header("range", "bytes=-3"),
    );
    assert_eq!(r.body, b"rld");
    let r = db.request(
        Request::new("GET", "/db/doc/dir%2Fnote.txt", "").with_header("range", "bytes=50-"),
    );
    assert_eq!(r.status, 416);
    // Updating needs the current rev; a second attachment keeps the first.
    assert_eq!(
        put_att(
            &db,
            "/db/doc/b.bin",
            b"\x00\x01",
            "application/octet-stream"
        )
        .0,
        409
    );
    let (s, v) = put_att(
        &db,
        &format!("/db/doc/b.bin?rev={rev}"),
        b"\x00\x01",
        "application/octet-stream",
    );
    assert_eq!(s, 201);
    let rev2 = v["rev"].as_str().unwrap().to_string();
    let (_, doc) = db.json("GET", "/db/doc", None);
    assert_eq!(doc["_attachments"].as_object().unwrap().len(), 2);
    // Empty attachments round-trip.
    let (s, v) = put_att(&db, &format!("/db/doc/empty?rev={rev2}"), b"", "text/plain");
    assert_eq!(s, 201);
    assert_eq!(db.call("GET", "/db/doc/empty", None).body, b"");
    let rev3 = v["rev"].as_str().unwrap().to_string();
    // Delete one.
    let (s, _) = db.json("DELETE", &format!("/db/doc/b.bin?rev={rev3}"), None);
    assert_eq!(s, 200);
    assert_eq!(db.json("GET", "/db/doc/b.bin", None).0, 404);
    assert_eq!(
        db.call("GET", "/db/doc/dir%2Fnote.txt", None).body,
        b"hello world"
    );
    // Unknown attachments are 404 with CouchDB's reason.
    assert_eq!(
        db.json("GET", "/db/doc/other", None).1["reason"],
        "Document is missing attachment"
    );
}

#[test]
fn replicated_attachments_and_compaction() {
    let db = Db::new();
    let data = b64(b"replicated bytes");
    let docs = json!({"new_edits": false, "docs": [
        {"_id": "r", "_rev": "1-a", "_attachments": {"f": {"content_type": "text/plain", "data": data}}},
        {"_id": "r", "_rev": "2-b", "_revisions": {"start": 2, "ids": ["b", "a"]},
         "_attachments": {"f": {"content_type": "text/plain", "revpos": 1, "digest": shared::attachments::digest(b"replicated bytes"), "length": 16, "stub": true}}},
    ]});
    assert_eq!(db.json("POST", "/db/_bulk_docs", Some(docs)).0, 201);
    assert_eq!(db.call("GET", "/db/r/f", None).body, b"replicated bytes");
    let (_, bg) = db.json(
        "POST",
        "/db/_bulk_get?attachments=true&revs=true",
        Some(json!({"docs": [{"id": "r"}]})),
    );
    assert_eq!(
        bg["results"][0]["docs"][0]["ok"]["_attachments"]["f"]["data"],
        data
    );
    // Orphans go at compaction; referenced contents stay.
    let (_, v) = db.json(
        "PUT",
        "/db/gone",
        Some(json!({"_attachments": {"x": {"data": b64(b"orphan")}}})),
    );
    let rev = v["rev"].as_str().unwrap().to_string();
    db.json("PUT", "/db/gone", Some(json!({"_rev": rev})));
    assert!(db
        .engine()
        .store
        .has_blob(&shared::attachments::digest(b"orphan"))
        .unwrap());
    assert_eq!(db.json("POST", "/db/_compact", Some(json!({}))).0, 202);
    assert!(!db
        .engine()
        .store
        .has_blob(&shared::attachments::digest(b"orphan"))
        .unwrap());
    assert_eq!(db.call("GET", "/db/r/f", None).body, b"replicated bytes");
}

#[test]
fn multipart_related_in_and_out() {
    let db = Db::new();
    // As CouchDB's replicator pushes: new_edits=false, JSON first, then the bytes.
    let doc = json!({"_id": "m", "_rev": "1-abc", "x": 1,
        "_attachments": {"a.bin": {"follows": true, "content_type": "application/x-a", "length": 4}}});
    let body = shared::multipart::write_related(
        "XYZ",
        doc.to_string().as_bytes(),
        &[("a.bin".into(), "application/x-a".into(), vec![1, 2, 3, 4])],
    );
    let r = db.request(
        Request::new("PUT", "/db/m", "new_edits=false")
            .with_header("content-type", "multipart/related; boundary=\"XYZ\"")
            .with_body(body),
    );
    assert_eq!(r.status, 201, "{:?}", r.json_body());
    assert_eq!(db.call("GET", "/db/m/a.bin", None).body, vec![1, 2, 3, 4]);
    assert_eq!(db.json("GET", "/db/m", None).1["_rev"], "1-abc");
    // And back out as multipart/related when asked for.
    let r = db.request(
        Request::new("GET", "/db/m", "attachments=true").with_header("accept", "multipart/related"),
    );
    let ct = r.header("content-type").unwrap().to_string();
    assert!(ct.starts_with("multipart/related"), "{ct}");
    let (v, atts) = shared::multipart::related_document(&r.body, &ct).unwrap();
    assert_eq!(v["x"], 1);
    assert_eq!(
        atts,
        vec![(
            "a.bin".to_string(),
            "application/x-a".to_string(),
            vec![1, 2, 3, 4]
        )]
    );
    // open_revs as CouchDB's replicator asks: multipart/mixed, and each
    // revision with contents a nested multipart/related part.
    let r = db.request(
        Request::new("GET", "/db/m", "open_revs=all&revs=true&attachments=true")
            .with_header("accept", "multipart/mixed"),
    );
    let ct = r.header("content-type").unwrap().to_string();
    assert!(ct.starts_with("multipart/mixed"), "{ct}");
    let b = shared::multipart::boundary(&ct).unwrap();
    let parts = shared::multipart::parse(&r.body, &b).unwrap();
    assert_eq!(parts.len(), 1);
    let inner_ct = &parts[0]
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .unwrap()
        .1;
    assert!(inner_ct.starts_with("multipart/related"), "{inner_ct}");
    let (v, atts) = shared::multipart::related_document(&parts[0].body, inner_ct).unwrap();
    assert_eq!(
        (v["_rev"].as_str(), v["_revisions"]["start"].as_u64()),
        (Some("1-abc"), Some(1))
    );
    assert_eq!(atts[0].2, vec![1, 2, 3, 4]);
    // Without contents asked for, plain JSON parts with stubs.
    let r = db.request(
        Request::new("GET", "/db/m", "open_revs=all").with_header("accept", "multipart/mixed"),
    );
    let b = shared::multipart::boundary(r.header("content-type").unwrap()).unwrap();
    let parts = shared::multipart::parse(&r.body, &b).unwrap();
    let doc: Value = serde_json::from_slice(&parts[0].body).unwrap();
    assert_eq!(doc["_attachments"]["a.bin"]["stub"], true);
    // A part that does not match its declared length loses nothing.
    let lying = json!({"_id": "m", "_rev": "2-def", "_revisions": {"start": 2, "ids": ["def", "abc"]},
        "_attachments": {"a.bin": {"follows": true, "length": 99}}});
    let body = shared::multipart::write_related(
        "Q",
        lying.to_string().as_bytes(),
        &[("a.bin".into(), "a/b".into(), vec![0])],
    );
    let r = db.request(
        Request::new("PUT", "/db/m", "new_edits=false")
            .with_header("content-type", "multipart/related; boundary=Q")
            .with_body(body),
    );
    assert_eq!(r.status, 400);
    assert_eq!(db.json("GET", "/db/m", None).1["_rev"], "1-abc");
}

/// Compressible types are stored gzip-encoded and served decoded; the
/// encoding shows only with `att_encoding_info`; `compression_level=0`
/// turns it off.
#[test]
fn compressible_types_are_stored_gzipped() {
    let db = Db::new();
    let text = "a line of compressible text\n".repeat(2000).into_bytes();
    let noise: Vec<u8> = (0..3000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let (st, _) = put_att(&db, "/db/d/t.txt", &text, "text/plain; charset=utf-8");
    assert_eq!(st, 201);
    let rev = db.json("GET", "/db/d", None).1["_rev"].clone();
    let url = format!("/db/d/n.bin?rev={}", rev.as_str().unwrap());
    assert_eq!(put_att(&db, &url, &noise, "image/png").0, 201);

    let (_, plain) = db.json("GET", "/db/d", None);
    let t = &plain["_attachments"]["t.txt"];
    assert_eq!(t["length"], text.len());
    assert_eq!(t["digest"], shared::attachments::digest(&text));
    assert!(t.get("encoding").is_none(), "{t}");

    let (_, info) = db.json("GET", "/db/d?att_encoding_info=true", None);
    let t = &info["_attachments"]["t.txt"];
    assert_eq!(t["encoding"], "gzip");
    assert!(t["encoded_length"].as_u64().unwrap() < text.len() as u64 / 10);
    assert!(info["_attachments"]["n.bin"].get("encoding").is_none());

    assert_eq!(db.call("GET", "/db/d/t.txt", None).body, text);
    let (_, inline) = db.json("GET", "/db/d?attachments=true", None);
    assert_eq!(inline["_attachments"]["t.txt"]["data"], b64(&text));
    let (_, ch) = db.json(
        "GET",
        "/db/_changes?include_docs=true&att_encoding_info=true",
        None,
    );
    assert_eq!(
        ch["results"][0]["doc"]["_attachments"]["t.txt"]["encoding"],
        "gzip"
    );

    let mut off = Db::new();
    off.limits.attachment_compression_level = 0;
    put_att(&off, "/db/d/t.txt", &text, "text/plain");
    let (_, info) = off.json("GET", "/db/d?att_encoding_info=true", None);
    assert!(info["_attachments"]["t.txt"].get("encoding").is_none());
}

/// With a bucket bound, large contents are staged locally, uploaded after
/// the request (and then kept only by reference); reads ask for them and
/// succeed when run again with them; compaction deletes orphans from the
/// bucket, and deleting the database drops all its objects. Driven as the
/// binding drives it: `begin`, the request, `fetch_wanted` and a rerun,
/// `finish`.
#[test]
fn large_contents_go_to_the_bucket() {
    use common::MemoryBucket;
    use db_actor::bucket_sync::BucketSync;
    use futures::executor::block_on;
    let mut db = Db::new();
    db.remote = Some(BucketSync::new(MemoryBucket::default(), 1000));
    let sync = db.remote.as_ref().unwrap();
    // One request as the binding serves it.
    let serve = |method: &str, url: &str, body: Option<(&[u8], &str)>| {
        sync.begin();
        let (path, qs) = url.split_once('?').unwrap_or((url, ""));
        let req = match body {
            Some((data, ctype)) => Request::new(method, path, qs)
                .with_header("content-type", ctype)
                .with_body(data.to_vec()),
            None => Request::new(method, path, qs).with_header("content-type", "application/json"),
        };
        let before = db.engine().meta().ok();
        let mut r = db.request(req.clone());
        while method == "GET" && block_on(sync.fetch_wanted(&db.engine())).unwrap() {
            r = db.request(req.clone());
        }
        let deleted = (method == "DELETE" && path == "/db")
            .then_some(before)
            .flatten();
        block_on(sync.finish(&db.engine(), method != "GET", deleted));
        r
    };
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 256) as u8).collect();
    let r = serve(
        "PUT",
        "/db/d/big.bin",
        Some((&big, "application/octet-stream")),
    );
    assert_eq!(r.status, 201);
    let rev = r.json_body()["rev"].as_str().unwrap().to_string();
    serve(
        "PUT",
        &format!("/db/d/small.txt?rev={rev}"),
        Some((b"tiny", "text/plain")),
    );
    let digest = shared::attachments::digest(&big);
    let store = &db.engine().store;
    let meta = db.engine().meta().unwrap();
    let key = format!("db/{}/{digest}", meta.instance);
    assert_eq!(sync.bucket.objects.borrow().get(&key), Some(&big));
    assert!(store.staged_remote().unwrap().is_empty());
    assert_eq!(store.blob(&digest).unwrap(), None, "no local copy left");

    // Reads fetch it from the bucket, whole, inline and in a stub-free GET.
    assert_eq!(serve("GET", "/db/d/big.bin", None).body, big);
    let inline = serve("GET", "/db/d?attachments=true", None).json_body();
    assert_eq!(inline["_attachments"]["big.bin"]["data"], b64(&big));
    assert_eq!(serve("GET", "/db/d/small.txt", None).body, b"tiny");
    // A missing object is an error, never empty data under the real digest.
    sync.bucket.objects.borrow_mut().remove(&key);
    sync.begin();
    let _ = db.call("GET", "/db/d/big.bin", None);
    assert!(block_on(sync.fetch_wanted(&db.engine()))
        .unwrap_err()
        .contains("missing"));
    sync.bucket
        .objects
        .borrow_mut()
        .insert(key.clone(), big.clone());
    // A stream cannot be run again: a content not at hand is an error row.
    sync.begin();
    sync.remote.set_rerunnable(false);
    let feed = db.call(
        "GET",
        "/db/_changes?feed=continuous&include_docs=true&attachments=true&timeout=0",
        None,
    );
    assert!(String::from_utf8_lossy(&feed.body).contains("service_unavailable"));

    // Same content again is not staged twice; a stub keeps it.
    let doc = serve("GET", "/db/d", None).json_body();
    let body = json!({"_attachments": {"copy.bin": {"content_type": "a/b", "data": b64(&big)}}});
    let r = serve(
        "PUT",
        "/db/e",
        Some((body.to_string().as_bytes(), "application/json")),
    );
    assert_eq!(r.status, 201);
    assert!(store.staged_remote().unwrap().is_empty());

    // Dropping every reference deletes the bucket copy at compaction.
    let url = |id: &str, rev: &Value| format!("/db/{id}?rev={}", rev.as_str().unwrap());
    serve("DELETE", &url("d", &doc["_rev"]), None);
    let e = serve("GET", "/db/e", None).json_body();
    serve("DELETE", &url("e", &e["_rev"]), None);
    assert_eq!(
        serve("POST", "/db/_compact", Some((b"{}", "application/json"))).status,
        202
    );
    assert!(!store.has_blob(&digest).unwrap());
    assert!(sync.bucket.objects.borrow().is_empty());

    // Deleting the database drops every object it has, page by page.
    for i in 0..5u8 {
        let data: Vec<u8> = (0..2000u32).map(|j| (j as u8) ^ i).collect();
        let r = serve(
            "PUT",
            &format!("/db/f{i}/a.bin"),
            Some((&data, "application/octet-stream")),
        );
        assert_eq!(r.status, 201);
    }
    sync.bucket
        .objects
        .borrow_mut()
        .insert("other/x/md5-y".into(), vec![1]);
    assert_eq!(sync.bucket.objects.borrow().len(), 6);
    assert_eq!(serve("DELETE", "/db", None).status, 200);
    let left: Vec<String> = sync.bucket.objects.borrow().keys().cloned().collect();
    assert_eq!(left, ["other/x/md5-y"], "another database's objects stay");
}

/// Design documents carry attachments like any other; `_local` ones do not.
#[test]
fn design_doc_attachments_and_none_on_local_docs() {
    let db = Db::new();
    let (st, v) = put_att(
        &db,
        "/db/_design/app/static/index.html",
        b"<p>hi</p>",
        "text/html",
    );
    assert_eq!(st, 201, "{v}");
    let r = db.call("GET", "/db/_design/app/static/index.html", None);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, b"<p>hi</p>".as_slice())
    );
    assert_eq!(r.header("content-type"), Some("text/html"));
    let (_, ddoc) = db.json("GET", "/db/_design/app", None);
    assert_eq!(ddoc["_attachments"]["static/index.html"]["length"], 9);
    let (st, _) = put_att(&db, "/db/_local/cp/file.txt", b"x", "text/plain");
    assert!(st == 400 || st == 404 || st == 405, "{st}");
    assert_eq!(db.json("GET", "/db/_local/cp", None).0, 404);
}
