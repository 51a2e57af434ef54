mod common;
use common::Db;
use serde_json::json;
use std::time::Instant;

#[test]
#[ignore]
fn profile_view_build() {
    let mut db = Db::new();
    db.limits.view_build_batch = u64::MAX;
    let n = 50_000;
    for i in (0..n).step_by(1000) {
        let docs: Vec<_> = (i..i + 1000)
            .map(|j| json!({"_id": format!("b{j:07}"), "type": "bench", "n": j, "note": "a small JSON document"}))
            .collect();
        assert_eq!(
            db.json("POST", "/db/_bulk_docs", Some(json!({"docs": docs})))
                .0,
            201
        );
    }
    for k in 0..6 {
        db.put(&format!("_design/x{k}"), json!({"views": {"v": {"map": format!("function (doc) {{ if (doc.type === 'bench') emit([doc.n % 1000, doc.n], {k}); }}")}}}));
        let t = Instant::now();
        let (s, _) = db.json("GET", &format!("/db/_design/x{k}/_view/v?limit=1"), None);
        println!("extra build {k}: {:?} {s}", t.elapsed());
    }
    db.put("_design/views", json!({"views": {"by_n": {"map": "function (doc) { if (doc.type === 'bench') emit([doc.n % 1000, doc.n], doc.n); }", "reduce": "_sum"}}}));
    let t = Instant::now();
    let (s, v) = db.json(
        "GET",
        "/db/_design/views/_view/by_n?limit=1&reduce=false",
        None,
    );
    println!("build {n}: {:?} {s} {}", t.elapsed(), v["total_rows"]);
    let t = Instant::now();
    let (_, v) = db.json("GET", "/db/_design/views/_view/by_n", None);
    println!("sum: {:?} {}", t.elapsed(), v["rows"][0]["value"]);
    let t = Instant::now();
    let (_, v) = db.json("GET", "/db/_design/views/_view/by_n?group_level=1", None);
    println!(
        "group: {:?} {}",
        t.elapsed(),
        v["rows"].as_array().unwrap().len()
    );
}
