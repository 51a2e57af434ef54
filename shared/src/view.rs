//! Map/reduce views: the query parameters of `/_design/{ddoc}/_view/{view}`,
//! the built-in reduce functions, grouping, and the view definitions of a
//! design document. Storage and JavaScript live in the database actor.

use crate::all_docs::{bad_param, Opts};
use crate::approx_distinct::Sketch;
use crate::collate;
use crate::error::{CouchError, CouchResult};
use crate::http::Request;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// An index a design document defines: a view or a search index, by
/// design document (without `_design/`) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexName {
    pub ddoc: String,
    pub kind: IndexKind,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    View,
    Search(crate::search::index_def::Kind),
}

impl IndexName {
    pub fn view(ddoc: impl Into<String>, name: impl Into<String>) -> IndexName {
        IndexName {
            ddoc: ddoc.into(),
            kind: IndexKind::View,
            name: name.into(),
        }
    }
}

fn parse_error(reason: impl Into<String>) -> CouchError {
    CouchError::new(400, "query_parse_error", reason)
}

/// `update=true|false|lazy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    True,
    False,
    Lazy,
}

/// A view query, from the query string and (for POST) the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewQuery {
    pub keys: Option<Vec<Value>>,
    pub start: Option<Value>,
    pub end: Option<Value>,
    pub start_docid: Option<String>,
    pub end_docid: Option<String>,
    pub inclusive_end: bool,
    pub descending: bool,
    pub limit: Option<u64>,
    pub skip: u64,
    pub group_level: Option<GroupLevel>,
    pub reduce: Option<bool>,
    pub include_docs: bool,
    pub conflicts: bool,
    /// With `include_docs`: attachment contents inline.
    pub attachments: bool,
    pub att_encoding_info: bool,
    pub update: Update,
    pub update_seq: bool,
    pub sorted: bool,
    /// The partition of `/db/_partition/{p}/_design/...`: never a query
    /// parameter, as in CouchDB.
    pub partition: Option<String>,
}

/// How reduced rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupLevel {
    /// `group=true`: one row per distinct key.
    Exact,
    /// `group_level=N`: array keys cut to their first N elements.
    Level(u64),
}

impl ViewQuery {
    pub fn from_request(req: &Request, body: Option<&Map<String, Value>>) -> CouchResult<Self> {
        Self::parse(&Opts { req, body })
    }

    /// One query of a `POST .../queries` body.
    pub fn from_object(q: &Map<String, Value>) -> CouchResult<Self> {
        Self::parse(&Opts {
            req: &Request::new("GET", "/", ""),
            body: Some(q),
        })
    }

    fn parse(o: &Opts) -> CouchResult<Self> {
        let keys = match o.json(&["keys"])? {
            None => None,
            Some(Value::Array(a)) => Some(a),
            Some(v) => return Err(bad_param("keys", &v)),
        };
        let key = o.json(&["key"])?;
        let mut start = o.json(&["startkey", "start_key"])?;
        let mut end = o.json(&["endkey", "end_key"])?;
        if let Some(k) = key {
            if keys.is_some() {
                return Err(parse_error("`keys` is incompatible with `key`"));
            }
            start = Some(k.clone());
            end = Some(k);
        }
        if keys.is_some() && (start.is_some() || end.is_some()) {
            return Err(parse_error(
                "`keys` is incompatible with `key`, `start_key` and `end_key`",
            ));
        }
        let docid = |names: &[&str]| -> CouchResult<Option<String>> {
            for n in names {
                if let Some(v) = o.body.and_then(|b| b.get(*n)) {
                    return v
                        .as_str()
                        .map(|s| Some(s.to_string()))
                        .ok_or_else(|| bad_param(n, v));
                }
                if let Some(v) = o.req.param(n) {
                    return Ok(Some(v.to_string()));
                }
            }
            Ok(None)
        };
        let group = o.bool("group", false)?;
        let group_level = match o.uint("group_level")? {
            Some(n) => Some(GroupLevel::Level(n)),
            None if group => Some(GroupLevel::Exact),
            None => None,
        };
        let reduce = match (o.body.and_then(|b| b.get("reduce")), o.req.param("reduce")) {
            (Some(v), _) => Some(v.as_bool().ok_or_else(|| bad_param("reduce", v))?),
            (None, Some(_)) => o.req.bool_param("reduce")?,
            _ => None,
        };
        let update_param = match o.body.and_then(|b| b.get("update")) {
            Some(v) => Some(v.clone()),
            None => o.req.param("update").map(|s| Value::String(s.into())),
        };
        let update = match update_param {
            None | Some(Value::Bool(true)) => Update::True,
            Some(Value::Bool(false)) => Update::False,
            Some(Value::String(s)) if s == "true" => Update::True,
            Some(Value::String(s)) if s == "false" => Update::False,
            Some(Value::String(s)) if s == "lazy" => Update::Lazy,
            Some(v) => return Err(bad_param("update", &v)),
        };
        // `stable` only matters in a cluster: checked, then ignored.
        o.bool("stable", false)?;
        let stale = match o.body.and_then(|b| b.get("stale")) {
            Some(v) => Some(v.clone()),
            None => o.req.param("stale").map(|s| Value::String(s.into())),
        };
        let update = match stale.as_ref().and_then(Value::as_str) {
            Some("ok") => Update::False,
            Some("update_after") => Update::Lazy,
            Some(_) => return Err(bad_param("stale", stale.as_ref().expect("some"))),
            None => update,
        };
        let q = ViewQuery {
            keys,
            start,
            end,
            start_docid: docid(&["startkey_docid", "start_key_doc_id"])?,
            end_docid: docid(&["endkey_docid", "end_key_doc_id"])?,
            inclusive_end: o.bool("inclusive_end", true)?,
            descending: o.bool("descending", false)?,
            limit: o.uint("limit")?,
            skip: o.uint("skip")?.unwrap_or(0),
            group_level,
            reduce,
            include_docs: o.bool("include_docs", false)?,
            conflicts: o.bool("conflicts", false)?,
            attachments: o.bool("attachments", false)?,
            att_encoding_info: o.bool("att_encoding_info", false)?,
            update,
            update_seq: o.bool("update_seq", false)?,
            sorted: o.bool("sorted", true)?,
            partition: None,
        };
        Ok(q)
    }

    /// Checks the query against the view: reduce options need a reduce,
    /// and the key range must run the query's way in the view's collation
    /// (`raw` compares as JSON values, not by ICU).
    pub fn check(&self, has_reduce: bool, raw: bool) -> CouchResult<bool> {
        if let (Some(s), Some(e)) = (&self.start, &self.end) {
            let order = if raw {
                collate::compare_raw(s, e)
            } else {
                collate::compare(s, e)
            };
            let reversed = if self.descending {
                order.is_lt()
            } else {
                order.is_gt()
            };
            if reversed {
                return Err(parse_error(format!(
                    "No rows can match your key range, reverse your start_key and end_key or set descending={}",
                    !self.descending
                )));
            }
        }
        let reduce = self.reduce.unwrap_or(has_reduce);
        if reduce && !has_reduce {
            return Err(parse_error("Reduce is invalid for map-only views."));
        }
        if !reduce && self.group_level.is_some() {
            return Err(parse_error("Invalid use of grouping on a map view."));
        }
        if reduce && self.include_docs {
            return Err(parse_error("`include_docs` is invalid for reduce"));
        }
        if reduce && self.keys.is_some() && self.group_level.is_none() {
            return Err(parse_error(
                "Multi-key fetches for reduce views must use `group=true`",
            ));
        }
        Ok(reduce)
    }
}

/// A partitioned view answers only partition queries, a global one only
/// global queries (`couch_mrview_util:validate_args/2`).
pub fn check_partition(partitioned_view: bool, q: &ViewQuery) -> CouchResult<()> {
    match (partitioned_view, &q.partition) {
        (true, None) => Err(parse_error(
            "`partition` parameter is mandatory for queries to this view.",
        )),
        (false, Some(_)) => Err(parse_error(
            "`partition` parameter is not supported in this design doc",
        )),
        _ => Ok(()),
    }
}

/// A design document's `options.partitioned: false`: global views in a
/// partitioned database.
pub fn design_says_global(ddoc: &Map<String, Value>) -> bool {
    ddoc.get("options").and_then(|o| o.get("partitioned")) == Some(&Value::Bool(false))
}

/// The `language`s of design documents whose functions Settee runs, as
/// CouchDB's couchjs does: JavaScript, and CoffeeScript compiled to it.
pub const QUERY_LANGUAGES: [&str; 2] = ["javascript", "coffeescript"];

/// One view of a design document.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewDef {
    pub map: String,
    pub reduce: Option<String>,
    /// `options.collation == "raw"`.
    pub raw: bool,
    pub include_design: bool,
    pub local_seq: bool,
    /// A partitioned view: rows are stored and queried per partition.
    pub partitioned: bool,
}

impl ViewDef {
    /// The view `name` of a design document body, or CouchDB's 404s. In a
    /// partitioned database (`db_partitioned`) its views are partitioned
    /// unless the design document's `options.partitioned` is false.
    pub fn from_design_doc(
        ddoc: &Map<String, Value>,
        name: &str,
        db_partitioned: bool,
    ) -> CouchResult<ViewDef> {
        if let Some(lang) = ddoc.get("language").and_then(Value::as_str) {
            if !QUERY_LANGUAGES.contains(&lang) {
                return Err(CouchError::new(
                    400,
                    "unknown_query_language",
                    format!("Unsupported query language: {lang}"),
                ));
            }
        }
        let view = ddoc
            .get("views")
            .and_then(|v| v.get(name))
            .filter(|_| name != "lib")
            .ok_or_else(|| CouchError::not_found("missing_named_view"))?;
        let map = view
            .get("map")
            .and_then(Value::as_str)
            .ok_or_else(|| CouchError::not_found("missing_named_view"))?;
        let options = ddoc.get("options");
        let opt = |n: &str| {
            view.get("options")
                .and_then(|o| o.get(n))
                .or_else(|| options.and_then(|o| o.get(n)))
        };
        Ok(ViewDef {
            map: map.to_string(),
            reduce: view
                .get("reduce")
                .and_then(Value::as_str)
                .map(str::to_string),
            raw: opt("collation").and_then(Value::as_str) == Some("raw"),
            include_design: opt("include_design") == Some(&Value::Bool(true)),
            local_seq: opt("local_seq") == Some(&Value::Bool(true)),
            partitioned: db_partitioned && !design_says_global(ddoc),
        })
    }

    /// Every valid view of a design document, by name (the `lib` entry is
    /// code, not a view).
    pub fn all(ddoc: &Map<String, Value>, db_partitioned: bool) -> Vec<(String, ViewDef)> {
        ddoc.get("views")
            .and_then(Value::as_object)
            .map(|views| {
                views
                    .keys()
                    .filter_map(|n| {
                        let def = ViewDef::from_design_doc(ddoc, n, db_partitioned).ok()?;
                        Some((n.clone(), def))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the index depends on: the map, its options and the design
    /// document's CommonJS code (a changed reduce needs no rebuild).
    pub fn signature(&self, ddoc: &Map<String, Value>) -> String {
        let mut h = Sha256::new();
        h.update(self.map.as_bytes());
        h.update([
            u8::from(self.raw),
            u8::from(self.include_design),
            u8::from(self.local_seq),
        ]);
        if let Some(lib) = ddoc.get("views").and_then(|v| v.get("lib")) {
            h.update(lib.to_string().as_bytes());
        }
        // Only when set, so ordinary views keep the signatures they had.
        if self.partitioned {
            h.update(b"partitioned");
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The stored index key of a row document `doc_id` emitted: in a
    /// partitioned view, after its partition's prefix.
    pub fn row_key(&self, doc_id: &str, key: &Value) -> Vec<u8> {
        match crate::partition::of(doc_id).filter(|_| self.partitioned) {
            Some(p) => [crate::partition::key_prefix(p), self.encode(key)].concat(),
            None => self.encode(key),
        }
    }

    /// The memcmp-ordered index key of an emitted key.
    pub fn encode(&self, key: &Value) -> Vec<u8> {
        if self.raw {
            collate::encode_key_raw(key)
        } else {
            collate::encode_key(key)
        }
    }
}

/// A built-in reduce function, run natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Sum,
    Count,
    Stats,
    ApproxCountDistinct,
}

impl Builtin {
    pub fn parse(src: &str) -> Option<CouchResult<Builtin>> {
        let name = src.trim();
        if !name.starts_with('_') {
            return None;
        }
        // CouchDB matches built-ins by prefix (`_sum\n`, `_countorama`).
        const BUILTINS: [(&str, Builtin); 4] = [
            ("_sum", Builtin::Sum),
            ("_count", Builtin::Count),
            ("_stats", Builtin::Stats),
            ("_approx_count_distinct", Builtin::ApproxCountDistinct),
        ];
        Some(
            BUILTINS
                .iter()
                .find(|(prefix, _)| name.starts_with(prefix))
                .map(|(_, b)| *b)
                .ok_or_else(|| {
                    CouchError::new(
                        400,
                        "invalid_design_doc",
                        format!("`{name}` is not a supported reduce function."),
                    )
                }),
        )
    }

    /// Reduces the `(key, value)` rows of one group.
    pub fn reduce(self, rows: &[(Value, Value)]) -> CouchResult<Value> {
        match self {
            Builtin::Count => Ok(json!(rows.len())),
            Builtin::Sum => rows
                .iter()
                .try_fold(json!(0), |acc, (_, v)| sum_values(&acc, v)),
            Builtin::Stats => stats(rows),
            Builtin::ApproxCountDistinct => {
                Ok(json!(Sketch::of(rows.iter().map(|(k, _)| k)).count()))
            }
        }
    }
}

impl Builtin {
    /// The reduce's name, as design documents spell it.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Sum => "_sum",
            Builtin::Count => "_count",
            Builtin::Stats => "_stats",
            Builtin::ApproxCountDistinct => "_approx_count_distinct",
        }
    }

    /// The partial reduction of some rows, as stored reductions keep it:
    /// their reduction, but `_approx_count_distinct`'s sketch.
    pub fn partial(self, rows: &[(Value, Value)]) -> CouchResult<Value> {
        match self {
            Builtin::ApproxCountDistinct => Ok(Sketch::of(rows.iter().map(|(k, _)| k)).to_json()),
            _ => self.reduce(rows),
        }
    }

    /// Combines partial reductions (each of some rows) into the partial
    /// reduction of all their rows.
    pub fn rereduce(self, parts: &[Value]) -> CouchResult<Value> {
        match self {
            Builtin::Count => Ok(json!(parts.iter().filter_map(Value::as_u64).sum::<u64>())),
            Builtin::Sum => parts
                .iter()
                .try_fold(json!(0), |acc, v| sum_values(&acc, v)),
            Builtin::Stats => {
                let rows: Vec<(Value, Value)> =
                    parts.iter().map(|p| (Value::Null, p.clone())).collect();
                stats(&rows)
            }
            Builtin::ApproxCountDistinct => {
                let mut all = Sketch::default();
                for p in parts {
                    all.merge_json(p)?;
                }
                Ok(all.to_json())
            }
        }
    }

    /// The reduction of rows from their partial reduction.
    pub fn finish(self, part: Value) -> CouchResult<Value> {
        match self {
            Builtin::ApproxCountDistinct => Ok(json!(Sketch::from_json(&part)?.count())),
            _ => Ok(part),
        }
    }
}

fn reduce_error(reason: String) -> CouchError {
    CouchError::new(400, "builtin_reduce_error", reason)
}

/// `_sum` of two values: numbers add, arrays add element-wise (the shorter
/// padded), objects add member-wise.
fn sum_values(a: &Value, b: &Value) -> CouchResult<Value> {
    Ok(match (a, b) {
        (Value::Number(x), Value::Number(y)) => number(x.as_f64().unwrap_or(0.0) + y.as_f64().unwrap_or(0.0)),
        (Value::Array(x), Value::Array(y)) => {
            let n = x.len().max(y.len());
            let zero = json!(0);
            Value::Array(
                (0..n)
                    .map(|i| sum_values(x.get(i).unwrap_or(&zero), y.get(i).unwrap_or(&zero)))
                    .collect::<CouchResult<_>>()?,
            )
        }
        // A number summed with a list counts as a one-element list, as
        // `couch_query_servers:sum_values/2` has it.
        (Value::Number(_), Value::Array(_)) => sum_values(&json!([a]), b)?,
        (Value::Array(_), Value::Number(_)) => sum_values(a, &json!([b]))?,
        (Value::Number(_), Value::Object(_)) if a.as_f64() == Some(0.0) => b.clone(),
        (Value::Object(x), Value::Object(y)) => {
            let mut out = x.clone();
            for (k, v) in y {
                let s = match out.get(k) {
                    Some(cur) => sum_values(cur, v)?,
                    None => v.clone(),
                };
                out.insert(k.clone(), s);
            }
            Value::Object(out)
        }
        _ => {
            return Err(reduce_error(format!(
                "The _sum function requires that map values be numbers, arrays of numbers, or objects. Couldn't sum {b}"
            )))
        }
    })
}

/// A number as CouchDB prints it: integral sums stay integers.
fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

fn stats(rows: &[(Value, Value)]) -> CouchResult<Value> {
    let (mut sum, mut min, mut max, mut sumsqr, mut count) = (0.0, f64::MAX, f64::MIN, 0.0, 0u64);
    for (_, v) in rows {
        // Values may be numbers, or already-reduced stats objects.
        if let Some(x) = v.as_f64() {
            sum += x;
            sumsqr += x * x;
            min = min.min(x);
            max = max.max(x);
            count += 1;
        } else if let Some(o) = v.as_object().filter(|o| o.contains_key("count")) {
            let g = |k: &str| o.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            sum += g("sum");
            sumsqr += g("sumsqr");
            min = min.min(g("min"));
            max = max.max(g("max"));
            count += g("count") as u64;
        } else {
            return Err(reduce_error(format!(
                "The _stats function requires that map values be numbers or arrays of numbers, not '{v}'"
            )));
        }
    }
    if count == 0 {
        min = 0.0;
        max = 0.0;
    }
    Ok(
        json!({"sum": number(sum), "count": count, "min": number(min), "max": number(max), "sumsqr": number(sumsqr)}),
    )
}

/// The key a row is grouped under.
pub fn group_key(key: &Value, level: GroupLevel) -> Value {
    match (level, key) {
        (GroupLevel::Level(0), _) => Value::Null,
        (GroupLevel::Level(n), Value::Array(a)) => {
            Value::Array(a.iter().take(n as usize).cloned().collect())
        }
        _ => key.clone(),
    }
}

/// CouchDB's `reduce_limit`: a reduce whose output does not shrink is a
/// mistake (it makes the index quadratic).
pub fn check_reduce_limit(input_bytes: usize, output: &Value) -> CouchResult<()> {
    let out = output.to_string().len();
    if out > 4096 && out * 2 > input_bytes {
        return Err(CouchError::new(
            500,
            "reduce_overflow_error",
            format!(
                "Reduce output must shrink more rapidly: Current output: '{}'... ",
                &output.to_string()[..200]
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(qs: &str) -> CouchResult<ViewQuery> {
        ViewQuery::from_request(&Request::new("GET", "/", qs), None)
    }

    #[test]
    fn parses_view_params() {
        let v =
            q("key=%22a%22&group_level=2&limit=3&skip=1&descending=true&update=lazy&reduce=false")
                .unwrap();
        assert_eq!(v.start, Some(json!("a")));
        assert_eq!(v.end, Some(json!("a")));
        assert_eq!(v.group_level, Some(GroupLevel::Level(2)));
        assert_eq!((v.limit, v.skip, v.descending), (Some(3), 1, true));
        assert_eq!(v.update, Update::Lazy);
        assert_eq!(v.reduce, Some(false));
        assert_eq!(
            q("group=true").unwrap().group_level,
            Some(GroupLevel::Exact)
        );
        assert_eq!(q("stale=ok").unwrap().update, Update::False);
        assert_eq!(
            q("startkey_docid=b&endkey_docid=c")
                .unwrap()
                .start_docid
                .as_deref(),
            Some("b")
        );
    }

    #[test]
    fn refuses_bad_params_as_couchdb_does() {
        for bad in ["key=nojson", "limit=-1", "update=maybe", "keys=1"] {
            let e = q(bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
        assert!(q("startkey=2&endkey=1")
            .unwrap()
            .check(false, false)
            .is_err());
        assert!(q("startkey=2&endkey=1&descending=true")
            .unwrap()
            .check(false, false)
            .is_ok());
        let upper_first = q("startkey=%22Z%22&endkey=%22a%22").unwrap();
        assert!(upper_first.check(false, false).is_err());
        assert!(upper_first.check(false, true).is_ok());
        assert_eq!(
            q("group=true")
                .unwrap()
                .check(false, false)
                .unwrap_err()
                .error,
            "query_parse_error"
        );
        assert!(q("reduce=true").unwrap().check(false, false).is_err());
        assert!(q("include_docs=true").unwrap().check(true, false).is_err());
        assert!(!q("include_docs=true&reduce=false")
            .unwrap()
            .check(true, false)
            .unwrap());
    }

    #[test]
    fn builtin_reduces() {
        let rows: Vec<(Value, Value)> = vec![
            (json!("a"), json!(1)),
            (json!("b"), json!(2.5)),
            (json!("a"), json!(3)),
        ];
        assert_eq!(Builtin::Count.reduce(&rows).unwrap(), json!(3));
        assert_eq!(Builtin::Sum.reduce(&rows).unwrap(), json!(6.5));
        assert_eq!(
            Builtin::Stats.reduce(&rows).unwrap(),
            json!({"sum": 6.5, "count": 3, "min": 1, "max": 3, "sumsqr": 16.25})
        );
        assert_eq!(
            Builtin::ApproxCountDistinct.reduce(&rows).unwrap(),
            json!(2)
        );
        // HyperLogLog: within a few percent over many distinct keys, with
        // equal keys (1 and 1.0) counted once.
        let many: Vec<(Value, Value)> = (0..50_000)
            .flat_map(|i| [(json!(i), json!(null)), (json!(i as f64), json!(null))])
            .collect();
        let n = Builtin::ApproxCountDistinct.reduce(&many).unwrap();
        let n = n.as_u64().unwrap();
        assert!((48_000..=52_000).contains(&n), "{n}");
        let arrays = vec![(json!(1), json!([1, 2])), (json!(2), json!([3, 4, 5]))];
        assert_eq!(Builtin::Sum.reduce(&arrays).unwrap(), json!([4, 6, 5]));
        let mixed: Vec<(Value, Value)> = [json!(2), json!([1, 2, 3, 4]), json!([3, 4]), json!(1)]
            .into_iter()
            .map(|v| (Value::Null, v))
            .collect();
        assert_eq!(Builtin::Sum.reduce(&mixed).unwrap(), json!([7, 6, 3, 4]));
        let bad = vec![(json!(1), json!("x"))];
        assert_eq!(
            Builtin::Sum.reduce(&bad).unwrap_err().error,
            "builtin_reduce_error"
        );
        assert!(matches!(Builtin::parse("_median"), Some(Err(_))));
        assert!(matches!(
            Builtin::parse("_sum\nare\nawesome"),
            Some(Ok(Builtin::Sum))
        ));
        assert!(matches!(
            Builtin::parse("_countorama"),
            Some(Ok(Builtin::Count))
        ));
        assert!(Builtin::parse("function(k,v){}").is_none());
    }

    #[test]
    fn group_keys() {
        let k = json!(["a", "b", "c"]);
        assert_eq!(group_key(&k, GroupLevel::Level(2)), json!(["a", "b"]));
        assert_eq!(group_key(&k, GroupLevel::Level(0)), Value::Null);
        assert_eq!(group_key(&json!("x"), GroupLevel::Level(2)), json!("x"));
        assert_eq!(group_key(&k, GroupLevel::Exact), k);
    }

    #[test]
    fn view_definitions() {
        let ddoc = json!({"views": {"v": {"map": "function(d){}", "reduce": "_count", "options": {"collation": "raw"}}}, "options": {"include_design": true}});
        let d = ViewDef::from_design_doc(ddoc.as_object().unwrap(), "v", false).unwrap();
        assert!(d.raw && d.include_design && !d.local_seq);
        assert_eq!(d.reduce.as_deref(), Some("_count"));
        let e = ViewDef::from_design_doc(ddoc.as_object().unwrap(), "w", false).unwrap_err();
        assert_eq!((e.status, e.reason.as_str()), (404, "missing_named_view"));
        let coffee =
            json!({"language": "coffeescript", "views": {"v": {"map": "(d) -> emit(d._id, 1)"}}});
        assert!(ViewDef::from_design_doc(coffee.as_object().unwrap(), "v", false).is_ok());
        let erl = json!({"language": "erlang", "views": {}});
        assert_eq!(
            ViewDef::from_design_doc(erl.as_object().unwrap(), "v", false)
                .unwrap_err()
                .status,
            400
        );
    }
}
