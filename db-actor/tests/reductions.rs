//! Stored reductions answer exactly what reducing every row in range
//! answers: random documents, random writes and deletions (few at a time,
//! so the blocks are brought up to date around them, and many, so they are
//! rebuilt), random key ranges in both directions.
mod common;

use common::Db;
use serde_json::{json, Value};
use shared::sql::Sql;
use shared::view::Builtin;
use shared::xorshift::Rng;
use std::collections::BTreeMap;

/// Writes `docs` in one `_bulk_docs`, noting each one's new revision.
fn write(db: &Db, docs: Vec<Value>, revs: &mut BTreeMap<String, String>) {
    let (s, v) = db.json("POST", "/db/_bulk_docs", Some(json!({ "docs": docs })));
    assert_eq!(s, 201, "{v}");
    for r in v.as_array().unwrap() {
        assert_eq!(r["ok"], true, "{r}");
        revs.insert(
            r["id"].as_str().unwrap().into(),
            r["rev"].as_str().unwrap().into(),
        );
    }
}

/// Each document emits `(k, v)` for every pair of its `rows`.
const MAP: &str = "function (doc) { doc.rows.forEach(function (r) { emit(r[0], r[1]); }); }";

fn expected(model: &BTreeMap<String, Vec<(i64, i64)>>, lo: i64, hi: i64, incl: bool) -> Value {
    let vals: Vec<i64> = model
        .values()
        .flatten()
        .filter(|(k, _)| *k >= lo && (*k < hi || (incl && *k == hi)))
        .map(|(_, v)| *v)
        .collect();
    if vals.is_empty() {
        return json!([]);
    }
    let sum: i64 = vals.iter().sum();
    let sumsqr: i64 = vals.iter().map(|v| v * v).sum();
    json!({
        "count": vals.len(),
        "sum": sum,
        "stats": {"sum": sum, "count": vals.len(), "min": vals.iter().min(), "max": vals.iter().max(), "sumsqr": sumsqr},
    })
}

#[test]
fn stored_reductions_equal_reducing_every_row() {
    for seed in [
        0x5EED_1234_ABCD_0001,
        0xC0FF_EE00_0000_0042,
        0x0123_4567_89AB_CDEF,
    ] {
        check(seed);
    }
}

fn check(seed: u64) {
    let db = Db::new();
    let views = json!({
        "count": {"map": MAP, "reduce": "_count"},
        "sum": {"map": MAP, "reduce": "_sum"},
        "stats": {"map": MAP, "reduce": "_stats"},
    });
    db.put("_design/r", json!({ "views": views }));
    let mut rng = Rng(seed);
    let mut model: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let mut revs: BTreeMap<String, String> = BTreeMap::new();
    for round in 0..14 {
        // Rounds alternate big loads (rebuilt) and a few edits (updated
        // around the changed rows).
        let writes = if round % 3 == 0 {
            1400
        } else {
            1 + rng.int(12)
        };
        let mut docs = Vec::new();
        for _ in 0..writes {
            let id = format!("d{:04}", rng.int(3000));
            if revs.contains_key(&id) && model.contains_key(&id) && rng.int(4) == 0 {
                docs.push(json!({"_id": id, "_rev": revs[&id], "_deleted": true}));
                model.remove(&id);
                continue;
            }
            let rows: Vec<(i64, i64)> = (0..1 + rng.int(4))
                .map(|_| (rng.int(400), rng.int(1000) - 300))
                .collect();
            let mut doc = json!({"_id": id, "rows": rows.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()});
            if let Some(rev) = revs.get(&id) {
                doc["_rev"] = json!(rev);
            }
            model.insert(id, rows);
            docs.push(doc);
        }
        // One write per id per request, the last one winning.
        let mut last: BTreeMap<String, Value> = BTreeMap::new();
        for d in docs {
            last.insert(d["_id"].as_str().unwrap().to_string(), d);
        }
        let docs: Vec<Value> = last.into_values().collect();
        write(&db, docs, &mut revs);
        for _ in 0..25 {
            let (a, b) = (rng.int(420) - 10, rng.int(420) - 10);
            let (lo, hi) = (a.min(b), a.max(b));
            let incl = rng.int(2) == 0;
            let desc = rng.int(2) == 0;
            let want = expected(&model, lo, hi, incl);
            for view in ["count", "sum", "stats"] {
                let qs = if desc {
                    format!("descending=true&startkey={hi}&endkey={lo}&inclusive_end=true")
                } else {
                    format!("startkey={lo}&endkey={hi}&inclusive_end={incl}")
                };
                // Descending ranges here always include both ends.
                let want = if desc {
                    expected(&model, lo, hi, true)
                } else {
                    want.clone()
                };
                let (s, got) = db.json("GET", &format!("/db/_design/r/_view/{view}?{qs}"), None);
                assert_eq!(s, 200, "{got}");
                let value = if want == json!([]) {
                    assert_eq!(got["rows"], json!([]), "round {round} {view} {qs}");
                    continue;
                } else {
                    &want[view]
                };
                assert_eq!(
                    &got["rows"][0]["value"], value,
                    "seed {seed} round {round} {view} {qs}"
                );
            }
        }
        // Grouped, the rows are reduced as read: per key, as the model has it.
        let (lo, hi) = (rng.int(200), 200 + rng.int(200));
        let mut want: BTreeMap<i64, i64> = BTreeMap::new();
        for (k, v) in model.values().flatten() {
            if (lo..=hi).contains(k) {
                *want.entry(*k).or_default() += v;
            }
        }
        let want: Vec<Value> = want
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let (_, got) = db.json(
            "GET",
            &format!("/db/_design/r/_view/sum?group=true&startkey={lo}&endkey={hi}"),
            None,
        );
        assert_eq!(
            got["rows"],
            json!(want),
            "seed {seed} round {round} grouped"
        );
        // The whole view, too.
        let want = expected(&model, i64::MIN, i64::MAX, true);
        let (_, got) = db.json("GET", "/db/_design/r/_view/sum", None);
        if want != json!([]) {
            assert_eq!(got["rows"][0]["value"], want["sum"], "round {round}");
        }
    }
    // The answers came from stored reductions, several levels of them, all
    // brought up to date.
    let count = |sql: &str| db.sql.query_i64(sql, &[]).unwrap();
    assert_eq!(count("SELECT count(*) FROM reduction_trees"), 3);
    assert!(count("SELECT max(level) FROM reductions") >= 2);
    assert_eq!(count("SELECT count(*) FROM reductions_dirty"), 0);
}

/// Grouped built-in reduces (answered group by group from counts and
/// stored reductions where groups are large) equal the same reduces
/// written in JavaScript (from their own stored reductions), over array keys of
/// three items, shorter arrays, numbers and strings; every group level,
/// both directions, ranges cutting groups, document id bounds, skip and
/// limit.
#[test]
fn grouped_builtins_equal_row_by_row_reduces() {
    let db = Db::new();
    let map = "function (doc) { var i = doc.i, v = doc.v; \
        emit([i % 5, i % 3, i], v); \
        if (i % 7 === 0) emit([i % 5], v); \
        if (i % 11 === 0) emit(i % 4, v); \
        if (i % 13 === 0) emit('s' + (i % 2), v); }";
    let js_count = "function (k, v, re) { return re ? v.reduce(function (a, b) { return a + b; }, 0) : v.length; }";
    let js_sum = "function (k, v) { return v.reduce(function (a, b) { return a + b; }, 0); }";
    db.put(
        "_design/g",
        json!({"views": {
            "count": {"map": map, "reduce": "_count"},
            "js_count": {"map": map, "reduce": js_count},
            "sum": {"map": map, "reduce": "_sum"},
            "js_sum": {"map": map, "reduce": js_sum},
        }}),
    );
    let mut rng = Rng(0x6A0E_5EED_0000_0007);
    let docs: Vec<Value> = (0..3000)
        .map(|i| json!({"_id": format!("d{i:05}"), "i": i, "v": rng.int(200) - 50}))
        .collect();
    let (s, _) = db.json("POST", "/db/_bulk_docs", Some(json!({ "docs": docs })));
    assert_eq!(s, 201);
    let keys = [
        "null",
        "0",
        "2",
        "\"s0\"",
        "\"s1\"",
        "[0]",
        "[1]",
        "[1,1]",
        "[2,0,40]",
        "[3,2]",
        "[4]",
        "[4,2,9999]",
        "{}",
    ];
    let groupings = [
        "group_level=1",
        "group_level=2",
        "group_level=3",
        "group=true",
    ];
    for round in 0..60 {
        let mut qs = vec![groupings[rng.int(4) as usize].to_string()];
        let (a, b) = (rng.int(keys.len() as u64), rng.int(keys.len() as u64));
        let desc = rng.int(2) == 0;
        let (lo, hi) = (a.min(b) as usize, a.max(b) as usize);
        let (start, end) = if desc { (hi, lo) } else { (lo, hi) };
        if desc {
            qs.push("descending=true".into());
        }
        if rng.int(4) > 0 {
            qs.push(format!("startkey={}", keys[start]));
            if rng.int(3) == 0 {
                qs.push(format!("startkey_docid=d{:05}", rng.int(3000)));
            }
        }
        if rng.int(4) > 0 {
            qs.push(format!("endkey={}", keys[end]));
            if rng.int(3) == 0 {
                qs.push(format!("endkey_docid=d{:05}", rng.int(3000)));
            }
            if rng.int(2) == 0 {
                qs.push("inclusive_end=false".into());
            }
        }
        if rng.int(3) == 0 {
            qs.push(format!("limit={}", rng.int(6)));
        }
        if rng.int(4) == 0 {
            qs.push(format!("skip={}", rng.int(4)));
        }
        let qs = qs.join("&");
        for (builtin, js) in [("count", "js_count"), ("sum", "js_sum")] {
            let got = db.json("GET", &format!("/db/_design/g/_view/{builtin}?{qs}"), None);
            let want = db.json("GET", &format!("/db/_design/g/_view/{js}?{qs}"), None);
            assert_eq!(got, want, "round {round}: {builtin}?{qs}");
        }
    }
    // Large groups were there to walk: level 1 has five of about 600 rows.
    let (_, got) = db.json(
        "GET",
        "/db/_design/g/_view/count?group_level=1&startkey=[0]&endkey=[4,{}]",
        None,
    );
    let counts: Vec<u64> = got["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), 5, "{got}");
    assert!(counts.iter().all(|&n| n > 600), "{got}");
    assert_eq!(counts.iter().sum::<u64>(), 3000 + 429);
}

/// Each document emits `([a, b], v)` for every triple of its `rows`.
const PAIR_MAP: &str =
    "function (doc) { doc.rows.forEach(function (r) { emit([r[0], r[1]], r[2]); }); }";

/// JavaScript reduces that rereduce right, reading keys, document ids and
/// values: a number, an object, an array. `depth` says how many rereduces
/// deep its answer is, which row by row (500 rows a call) is at most 1.
const JS_SUM: &str =
    "function (k, v) { var s = 0; for (var i = 0; i < v.length; i++) s += v[i]; return s; }";
const JS_OBJECT: &str = "function (keys, values, rereduce) {
    var o = {n: 0, sum: 0, min: null, max: null, maxid: null};
    function add(n, sum, min, max, id) {
        o.n += n; o.sum += sum;
        if (o.min === null || min < o.min) o.min = min;
        if (o.max === null || max > o.max) o.max = max;
        if (o.maxid === null || id > o.maxid) o.maxid = id;
    }
    for (var i = 0; i < values.length; i++) {
        var p = values[i];
        if (rereduce) add(p.n, p.sum, p.min, p.max, p.maxid);
        else add(1, p, p, p, keys[i][1]);
    }
    return o;
}";
const JS_ARRAY: &str = "function (keys, values, rereduce) {
    if (rereduce) return values.reduce(function (a, p) { return [a[0] + p[0], a[1] + p[1]]; }, [0, 0]);
    return [values.length, keys.reduce(function (a, k) { return a + k[0][1]; }, 0)];
}";
const JS_DEPTH: &str = "function (k, v, re) {
    if (!re) return [v.length, 0];
    var n = 0, d = 0;
    v.forEach(function (p) { n += p[0]; if (p[1] > d) d = p[1]; });
    return [n, d + 1];
}";

/// Rows by document: `(a, b, v)`.
type Model = BTreeMap<String, Vec<(i64, i64, i64)>>;

/// A row of the model with its document id.
type ModelRow<'a> = (&'a String, (i64, i64, i64));

/// What each view answers for rows (in index order), reduced in one
/// piece: `_approx_count_distinct` by the built-in itself.
fn answers(rows: &[ModelRow]) -> Value {
    let keys: Vec<(Value, Value)> = rows
        .iter()
        .map(|(_, (a, b, _))| (json!([a, b]), Value::Null))
        .collect();
    let values: Vec<i64> = rows.iter().map(|(_, (_, _, v))| *v).collect();
    let sum: i64 = values.iter().sum();
    json!({
        "distinct": Builtin::ApproxCountDistinct.reduce(&keys).unwrap(),
        "sum": sum,
        "object": {
            "n": rows.len(), "sum": sum, "min": values.iter().min(), "max": values.iter().max(),
            "maxid": rows.iter().map(|(id, _)| *id).max(),
        },
        "array": [rows.len(), rows.iter().map(|(_, (_, b, _))| b).sum::<i64>()],
    })
}

/// The rows of the model in index order: by key, then document id.
fn ordered(model: &Model) -> Vec<ModelRow<'_>> {
    let mut rows: Vec<ModelRow> = model
        .iter()
        .flat_map(|(id, rs)| rs.iter().map(move |r| (id, *r)))
        .collect();
    rows.sort_by(|x, y| ((x.1 .0, x.1 .1), x.0).cmp(&((y.1 .0, y.1 .1), y.0)));
    rows
}

/// `_approx_count_distinct` and JavaScript reduces answer from stored
/// reductions exactly what reducing every row in one piece answers:
/// random documents, writes and deletions (few, so blocks are brought up
/// to date around them, and many, so they are rebuilt), key ranges both
/// ways, group levels; distinct keys from a few to thousands, so sketches
/// are sparse and dense.
#[test]
fn stored_sketches_and_javascript_reductions_equal_reducing_every_row() {
    let db = Db::new();
    let view = |reduce: &str| json!({"map": PAIR_MAP, "reduce": reduce});
    db.put(
        "_design/r",
        json!({"views": {
            "distinct": view("_approx_count_distinct"),
            "sum": view(JS_SUM),
            "object": view(JS_OBJECT),
            "array": view(JS_ARRAY),
            "depth": view(JS_DEPTH),
        }}),
    );
    let mut rng = Rng(0xD157_1AC7_0000_5EED);
    let mut model = Model::new();
    let mut revs: BTreeMap<String, String> = BTreeMap::new();
    let views = ["distinct", "sum", "object", "array"];
    for round in 0..10 {
        // Few distinct `b`s to thousands of them.
        let spread = [20, 300, 3000][round % 3];
        let writes = if round % 3 == 0 {
            1500
        } else {
            1 + rng.int(12)
        };
        let mut last: BTreeMap<String, Value> = BTreeMap::new();
        for _ in 0..writes {
            let id = format!("d{:04}", rng.int(3000));
            if revs.contains_key(&id) && model.contains_key(&id) && rng.int(4) == 0 {
                last.insert(
                    id.clone(),
                    json!({"_id": id, "_rev": revs[&id], "_deleted": true}),
                );
                model.remove(&id);
                continue;
            }
            let rows: Vec<(i64, i64, i64)> = (0..1 + rng.int(4))
                .map(|_| (rng.int(6), rng.int(spread), rng.int(1000) - 300))
                .collect();
            let mut doc = json!({"_id": id, "rows": rows.iter().map(|(a, b, v)| json!([a, b, v])).collect::<Vec<_>>()});
            if let Some(rev) = revs.get(&id) {
                doc["_rev"] = json!(rev);
            }
            model.insert(id.clone(), rows);
            last.insert(id, doc);
        }
        let docs: Vec<Value> = last.into_values().collect();
        write(&db, docs, &mut revs);
        let rows = ordered(&model);
        // One group over a random range.
        for _ in 0..12 {
            let mut ends = [
                (rng.int(7) - 1, rng.int(3200) - 100),
                (rng.int(7) - 1, rng.int(3200) - 100),
            ];
            ends.sort();
            let [lo, hi] = ends;
            let incl = rng.int(2) == 0;
            let desc = rng.int(2) == 0;
            let qs = if desc {
                format!(
                    "descending=true&startkey=[{},{}]&endkey=[{},{}]",
                    hi.0, hi.1, lo.0, lo.1
                )
            } else {
                format!(
                    "startkey=[{},{}]&endkey=[{},{}]&inclusive_end={incl}",
                    lo.0, lo.1, hi.0, hi.1
                )
            };
            let incl = incl || desc;
            let inside: Vec<_> = rows
                .iter()
                .filter(|(_, (a, b, _))| {
                    (*a, *b) >= lo && ((*a, *b) < hi || (incl && (*a, *b) == hi))
                })
                .copied()
                .collect();
            let want = answers(&inside);
            for view in views {
                let (s, got) = db.json("GET", &format!("/db/_design/r/_view/{view}?{qs}"), None);
                assert_eq!(s, 200, "{got}");
                let want = if inside.is_empty() {
                    json!([])
                } else {
                    json!([{"key": null, "value": want[view]}])
                };
                assert_eq!(got["rows"], want, "round {round} {view}?{qs}");
            }
        }
        // Grouped by `a` (groups of about a thousand rows, reduced from
        // stored reductions) and by whole key (small groups, scanned).
        let grouped = [
            ("group_level=1", (i64::MIN, 0), (i64::MAX, 0), false),
            (
                "group_level=1&startkey=[1,500]&endkey=[4,100]",
                (1, 500),
                (4, 100),
                false,
            ),
            (
                "group=true&startkey=[2]&endkey=[2,{}]",
                (2, i64::MIN),
                (2, i64::MAX),
                true,
            ),
        ];
        for (qs, lo, hi, exact) in grouped {
            let mut groups: BTreeMap<(i64, i64), Vec<ModelRow>> = BTreeMap::new();
            for r in rows
                .iter()
                .filter(|(_, (a, b, _))| (*a, *b) >= lo && (*a, *b) <= hi)
            {
                let (a, b, _) = r.1;
                let group = if exact { (a, b) } else { (a, 0) };
                groups.entry(group).or_default().push(*r);
            }
            for view in views {
                let want: Vec<Value> = groups
                    .iter()
                    .map(|((a, b), members)| {
                        let key = if exact { json!([a, b]) } else { json!([a]) };
                        json!({"key": key, "value": answers(members)[view]})
                    })
                    .collect();
                let (_, got) = db.json("GET", &format!("/db/_design/r/_view/{view}?{qs}"), None);
                assert_eq!(got["rows"], json!(want), "round {round} {view}?{qs}");
            }
        }
        // The whole index, and some group of a thousand rows: rereduced
        // from blocks two levels up, which row by row never is.
        let depth = |qs: &str| -> Vec<u64> {
            let (_, got) = db.json("GET", &format!("/db/_design/r/_view/depth{qs}"), None);
            let rows = got["rows"].as_array().unwrap().iter();
            rows.map(|g| g["value"][1].as_u64().unwrap()).collect()
        };
        assert!(depth("")[0] >= 2, "round {round}");
        assert!(
            depth("?group_level=1").iter().any(|&d| d >= 2),
            "round {round}"
        );
    }
    // Every reduce kept its stored reductions, brought up to date; the
    // sketch at the top is the whole index's.
    let count = |sql: &str| db.sql.query_i64(sql, &[]).unwrap();
    assert_eq!(
        count("SELECT count(*) FROM reduction_trees WHERE reducer LIKE 'js:%'"),
        4
    );
    assert_eq!(count("SELECT count(*) FROM reduction_trees"), 5);
    assert_eq!(count("SELECT count(*) FROM reductions_dirty"), 0);
    let top = db
        .sql
        .query(
            "SELECT red FROM reductions JOIN reduction_trees t ON t.id = tree \
             WHERE t.reducer = '_approx_count_distinct' ORDER BY level DESC, key LIMIT 1",
            &[],
        )
        .unwrap();
    let sketch: Value = serde_json::from_str(top[0][0].as_str().unwrap()).unwrap();
    let mut sketch = shared::approx_distinct::Sketch::from_json(&sketch).unwrap();
    let (_, whole) = db.json("GET", "/db/_design/r/_view/distinct", None);
    assert_eq!(json!(sketch.count()), whole["rows"][0]["value"]);
    assert_eq!(
        whole["rows"][0]["value"],
        answers(&ordered(&model))["distinct"]
    );
}

/// A JavaScript reduce that throws gives `null` for its reduction, from
/// stored reductions as row by row: whole ranges, groups, and a range
/// inside one block.
#[test]
fn a_throwing_javascript_reduce_is_null_from_stored_reductions() {
    let db = Db::new();
    db.put(
        "_design/t",
        json!({"views": {"v": {"map": "function (doc) { emit([doc.i % 3, doc.i], 1); }",
                               "reduce": "function (keys, values) { return keys[0].foo.bar; }"}}}),
    );
    let docs: Vec<Value> = (0..2000)
        .map(|i| json!({"_id": format!("d{i:04}"), "i": i}))
        .collect();
    let (s, _) = db.json("POST", "/db/_bulk_docs", Some(json!({ "docs": docs })));
    assert_eq!(s, 201);
    for qs in [
        "",
        "?startkey=[1,7]&endkey=[1,9]",
        "?group_level=1",
        "?group=true&limit=3",
    ] {
        let (s, got) = db.json("GET", &format!("/db/_design/t/_view/v{qs}"), None);
        assert_eq!(s, 200, "{qs}: {got}");
        let rows = got["rows"].as_array().unwrap();
        assert!(!rows.is_empty(), "{qs}: {got}");
        assert!(rows.iter().all(|r| r["value"].is_null()), "{qs}: {got}");
    }
    let count = |sql: &str| db.sql.query_i64(sql, &[]).unwrap();
    assert_eq!(
        count("SELECT count(*) FROM reduction_trees WHERE reducer LIKE 'js:%'"),
        1
    );
    assert!(count("SELECT count(*) FROM reductions WHERE red = '[null]'") > 100);
}
