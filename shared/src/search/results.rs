//! From the documents a query matched to the page CouchDB answers: their
//! order (relevance or `sort`), the page after a bookmark, facet counts
//! and ranges over every match, and highlighted fragments.
//!
//! A row's `order` is what it sorted by, then its place in the index (the
//! tie-break that makes every order distinct), as Clouseau's rows carry
//! their sort values and Lucene document number. A bookmark is the last
//! row's order: the next page is the rows that sort after it.

use super::analyzer::Analyzer;
use super::document::FieldValue;
use super::query::{Occur, Query};
use super::request::{SortKey, SortType};
use crate::error::{CouchError, CouchResult};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use unicode_segmentation::UnicodeSegmentation;

/// A matched document.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Its place in the index.
    pub row: i64,
    pub score: f64,
}

/// One value a hit sorts by: numbers, then strings, then nothing (a
/// document without the field, which comes last either way).
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Num(f64),
    /// A row number, compared as a number, shown as an integer.
    Int(i64),
    Str(String),
    Missing,
}

impl Key {
    fn of(v: &Value) -> Key {
        match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Key::Int(i),
                None => Key::Num(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Key::Str(s.clone()),
            _ => Key::Missing,
        }
    }

    fn number(&self) -> f64 {
        match self {
            Key::Num(n) => *n,
            Key::Int(i) => *i as f64,
            _ => 0.0,
        }
    }

    fn json(&self) -> Value {
        match self {
            Key::Num(n) => json!(n),
            Key::Int(i) => json!(i),
            Key::Str(s) => json!(s),
            Key::Missing => Value::Null,
        }
    }
}

/// What a hit sorts by under `keys` (relevance when empty), then its
/// row; `field` gives a hit's first value of a field.
fn sort_keys(
    hit: &Hit,
    keys: &[SortKey],
    field: &dyn Fn(i64, &str) -> Option<FieldValue>,
) -> Vec<Key> {
    let mut out: Vec<Key> = Vec::with_capacity(keys.len() + 1);
    if keys.is_empty() {
        out.push(Key::Num(hit.score));
    }
    for k in keys {
        out.push(match k {
            SortKey::Score { .. } => Key::Num(hit.score),
            SortKey::Doc { .. } => Key::Int(hit.row),
            SortKey::Field { name, kind, .. } => match (field(hit.row, name), kind) {
                (Some(FieldValue::Number(n)), SortType::Number | SortType::Any) => Key::Num(n),
                (Some(FieldValue::Text(s)), SortType::String | SortType::Any) => Key::Str(s),
                _ => Key::Missing,
            },
        });
    }
    out.push(Key::Int(hit.row));
    out
}

/// Each sort key's direction (the row, last, ascending).
fn directions(keys: &[SortKey]) -> Vec<bool> {
    if keys.is_empty() {
        return vec![true];
    }
    keys.iter()
        .map(|k| match k {
            SortKey::Score { descending }
            | SortKey::Doc { descending }
            | SortKey::Field { descending, .. } => *descending,
        })
        .collect()
}

fn compare(a: &[Key], b: &[Key], descending: &[bool]) -> Ordering {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let o = match (x, y) {
            (Key::Missing, Key::Missing) => Ordering::Equal,
            (Key::Missing, _) => Ordering::Greater,
            (_, Key::Missing) => Ordering::Less,
            (x, y) => {
                let o = match (x, y) {
                    (Key::Int(a), Key::Int(b)) => a.cmp(b),
                    (Key::Str(a), Key::Str(b)) => a.cmp(b),
                    (Key::Str(_), _) => Ordering::Greater,
                    (_, Key::Str(_)) => Ordering::Less,
                    (a, b) => a.number().total_cmp(&b.number()),
                };
                if descending.get(i).copied().unwrap_or(false) {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// The hits of one page: sorted, after the bookmark's order, at most
/// `limit`; each with its `order`. Only the page is sorted in full.
pub fn page(
    hits: &[Hit],
    keys: &[SortKey],
    after: Option<&[Value]>,
    limit: usize,
    field: &dyn Fn(i64, &str) -> Option<FieldValue>,
) -> Vec<(Hit, Vec<Value>)> {
    let descending = directions(keys);
    let after: Option<Vec<Key>> = after.map(|a| a.iter().map(Key::of).collect());
    let mut ordered: Vec<(&Hit, Vec<Key>)> = hits
        .iter()
        .map(|h| (h, sort_keys(h, keys, field)))
        .filter(|(_, k)| {
            after
                .as_ref()
                .is_none_or(|a| compare(k, a, &descending) == Ordering::Greater)
        })
        .collect();
    let by = |a: &(&Hit, Vec<Key>), b: &(&Hit, Vec<Key>)| compare(&a.1, &b.1, &descending);
    if limit == 0 {
        return Vec::new();
    }
    if ordered.len() > limit {
        ordered.select_nth_unstable_by(limit - 1, by);
        ordered.truncate(limit);
    }
    ordered.sort_by(by);
    ordered
        .into_iter()
        .map(|(h, k)| (h.clone(), k.iter().map(Key::json).collect()))
        .collect()
}

/// `counts`: per field, how many matches have each of its values, most
/// frequent first.
pub fn counts(fields: &[String], values: &dyn Fn(&str) -> Vec<(i64, FieldValue)>) -> Value {
    let mut out = Map::new();
    for f in fields {
        let mut tally: BTreeMap<String, (u64, HashSet<i64>)> = BTreeMap::new();
        for (row, v) in values(f) {
            let label = match v {
                FieldValue::Text(s) => s,
                FieldValue::Number(n) => json!(n).to_string(),
            };
            let e = tally.entry(label).or_default();
            if e.1.insert(row) {
                e.0 += 1;
            }
        }
        let mut labels: Vec<(String, u64)> = tally.into_iter().map(|(l, (n, _))| (l, n)).collect();
        labels.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let m: Map<String, Value> = labels.into_iter().map(|(l, n)| (l, json!(n))).collect();
        out.insert(f.clone(), Value::Object(m));
    }
    Value::Object(out)
}

/// `ranges`: per field, how many matches have a number in each named
/// range (`{"price": {"cheap": "[0 TO 100]"}}`).
pub fn ranges(
    spec: &Map<String, Value>,
    values: &dyn Fn(&str) -> Vec<(i64, FieldValue)>,
) -> CouchResult<Value> {
    let mut out = Map::new();
    for (field, named) in spec {
        let named = named.as_object().ok_or_else(|| {
            CouchError::new(
                400,
                "query_parse_error",
                format!("ranges for `{field}` must be an object"),
            )
        })?;
        let vals = values(field);
        let mut m = Map::new();
        for (label, range) in named {
            let text = range.as_str().unwrap_or_default();
            let (lo, hi) = numeric_range(text)?;
            let rows: HashSet<i64> = vals
                .iter()
                .filter_map(|(row, v)| match v {
                    FieldValue::Number(n) if lo.admits(*n, true) && hi.admits(*n, false) => {
                        Some(*row)
                    }
                    _ => None,
                })
                .collect();
            m.insert(label.clone(), json!(rows.len()));
        }
        out.insert(field.clone(), Value::Object(m));
    }
    Ok(Value::Object(out))
}

/// One end of a numeric range: a bound and whether it is included.
pub struct End(pub Option<(f64, bool)>);

impl End {
    /// Whether `n` is within this end (`lower`: the range's start).
    pub fn admits(&self, n: f64, lower: bool) -> bool {
        match self.0 {
            None => true,
            Some((b, inclusive)) => match (lower, inclusive) {
                (true, true) => n >= b,
                (true, false) => n > b,
                (false, true) => n <= b,
                (false, false) => n < b,
            },
        }
    }
}

/// The ends of a range query over numbers, `[0 TO 100}` and the like.
pub fn numeric_range(text: &str) -> CouchResult<(End, End)> {
    let bad = || {
        CouchError::new(
            400,
            "query_parse_error",
            format!("Invalid range: {text} (expected a numeric range such as [0 TO 100])"),
        )
    };
    let q = super::query::parse(text).map_err(|_| bad())?;
    let Query::Range {
        lower,
        upper,
        include_lower,
        include_upper,
        ..
    } = q
    else {
        return Err(bad());
    };
    let end = |v: Option<String>, inclusive: bool| -> CouchResult<End> {
        match v {
            None => Ok(End(None)),
            Some(s) => s
                .parse::<f64>()
                .map(|n| End(Some((n, inclusive))))
                .map_err(|_| bad()),
        }
    };
    Ok((end(lower, include_lower)?, end(upper, include_upper)?))
}

/// What a query looks for in one field, for highlighting: its terms
/// (through the field's analyzer) and term prefixes, leaving out what it
/// prohibits.
pub fn query_terms(q: &Query, field: &str, analyzer: &Analyzer) -> (HashSet<String>, Vec<String>) {
    let mut terms = HashSet::new();
    let mut prefixes = Vec::new();
    collect(q, field, analyzer, &mut terms, &mut prefixes);
    (terms, prefixes)
}

fn collect(
    q: &Query,
    field: &str,
    analyzer: &Analyzer,
    terms: &mut HashSet<String>,
    prefixes: &mut Vec<String>,
) {
    let here = |f: &Option<String>| f.as_deref().unwrap_or(super::plan::DEFAULT_FIELD) == field;
    match q {
        Query::Term { field: f, text } | Query::Phrase { field: f, text, .. } if here(f) => {
            terms.extend(analyzer.for_field(field).terms(text));
        }
        Query::Prefix { field: f, prefix } if here(f) => prefixes.push(prefix.to_lowercase()),
        Query::Bool(clauses) => {
            for (occur, c) in clauses {
                if *occur != Occur::MustNot {
                    collect(c, field, analyzer, terms, prefixes);
                }
            }
        }
        Query::Boost(q, _) => collect(q, field, analyzer, terms, prefixes),
        _ => {}
    }
}

/// Highlighting's settings.
pub struct Highlight<'a> {
    pub pre: &'a str,
    pub post: &'a str,
    /// Fragments per field.
    pub number: usize,
    /// Characters per fragment, about.
    pub size: usize,
}

/// The best fragments of `text` with the words that match `terms` (or
/// start with one of `prefixes`) between the tags: those with the most
/// matches, in the order they come in the text.
pub fn highlight(
    text: &str,
    analyzer: &Analyzer,
    (terms, prefixes): &(HashSet<String>, Vec<String>),
    h: &Highlight,
) -> Vec<String> {
    let words: Vec<(usize, &str)> = text.split_word_bound_indices().collect();
    let hit = |w: &str| {
        analyzer
            .terms(w)
            .iter()
            .any(|t| terms.contains(t) || prefixes.iter().any(|p| t.starts_with(p.as_str())))
    };
    let matched: Vec<bool> = words.iter().map(|(_, w)| hit(w)).collect();
    // Fragments are runs of words about `size` characters long.
    let mut fragments: Vec<(usize, usize, usize)> = Vec::new();
    let mut start = 0;
    while start < words.len() {
        let from = words[start].0;
        let mut end = start;
        while end < words.len() && words[end].0 - from < h.size.max(1) {
            end += 1;
        }
        let n = matched[start..end].iter().filter(|m| **m).count();
        if n > 0 {
            fragments.push((start, end, n));
        }
        start = end.max(start + 1);
    }
    let mut best: Vec<&(usize, usize, usize)> = fragments.iter().collect();
    best.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    best.truncate(h.number);
    best.sort_by_key(|f| f.0);
    best.iter()
        .map(|(s, e, _)| {
            let mut out = String::new();
            for i in *s..*e {
                if matched[i] {
                    out.push_str(h.pre);
                    out.push_str(words[i].1);
                    out.push_str(h.post);
                } else {
                    out.push_str(words[i].1);
                }
            }
            out.trim().to_string()
        })
        .collect()
}

/// Rows' stored fields, as `fields` shows them: one value, or an array
/// of several; `include` keeps only the named ones.
pub fn stored_fields(
    values: Vec<(String, FieldValue)>,
    include: Option<&[String]>,
) -> Map<String, Value> {
    let mut by: Vec<(String, Vec<Value>)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (name, v) in values {
        if include.is_some_and(|i| !i.contains(&name)) {
            continue;
        }
        let v = match v {
            FieldValue::Number(n) => json!(n),
            FieldValue::Text(s) => json!(s),
        };
        match at.get(&name) {
            Some(&i) => by[i].1.push(v),
            None => {
                at.insert(name.clone(), by.len());
                by.push((name, vec![v]));
            }
        }
    }
    by.into_iter()
        .map(|(n, mut vs)| {
            let v = if vs.len() == 1 {
                vs.pop().expect("one")
            } else {
                Value::Array(vs)
            };
            (n, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::query::parse;
    use super::super::request::SortKey;
    use super::*;

    #[test]
    fn pages_follow_the_order_and_the_bookmark() {
        let hits: Vec<Hit> = (0..10)
            .map(|i| Hit {
                row: i,
                score: (i % 3) as f64,
            })
            .collect();
        let none = |_: i64, _: &str| None;
        let first = page(&hits, &[], None, 4, &none);
        let rows: Vec<i64> = first.iter().map(|(h, _)| h.row).collect();
        assert_eq!(rows, [2, 5, 8, 1]);
        let after = first.last().unwrap().1.clone();
        let second: Vec<i64> = page(&hits, &[], Some(&after), 4, &none)
            .iter()
            .map(|(h, _)| h.row)
            .collect();
        assert_eq!(second, [4, 7, 0, 3]);
        // By a field, descending; documents without it last.
        let price = |row: i64, _: &str| (row != 3).then_some(FieldValue::Number((row % 4) as f64));
        let keys = [SortKey::parse("-price<number>").unwrap()];
        let rows: Vec<i64> = page(&hits, &keys, None, 10, &price)
            .iter()
            .map(|(h, _)| h.row)
            .collect();
        assert_eq!(rows, [7, 2, 6, 1, 5, 9, 0, 4, 8, 3]);
    }

    #[test]
    fn pages_chained_by_bookmarks_give_the_full_order() {
        let mut rng = crate::xorshift::Rng(17);
        for round in 0..50 {
            let hits: Vec<Hit> = (0..rng.below(300) as i64)
                .map(|row| Hit {
                    row,
                    score: rng.below(5) as f64,
                })
                .collect();
            let values: Vec<Option<FieldValue>> = hits
                .iter()
                .map(|_| match rng.below(3) {
                    0 => None,
                    1 => Some(FieldValue::Number(rng.below(10) as f64)),
                    _ => Some(FieldValue::Text(format!("s{}", rng.below(10)))),
                })
                .collect();
            let field = |row: i64, _: &str| values[row as usize].clone();
            let keys = match round % 3 {
                0 => vec![],
                1 => vec![SortKey::parse("-f").unwrap()],
                _ => vec![
                    SortKey::parse("f<string>").unwrap(),
                    SortKey::parse("-<score>").unwrap(),
                ],
            };
            let all = page(&hits, &keys, None, usize::MAX, &field);
            let limit = 1 + rng.below(40) as usize;
            let mut chained = Vec::new();
            let mut after: Option<Vec<Value>> = None;
            loop {
                let p = page(&hits, &keys, after.as_deref(), limit, &field);
                if p.is_empty() {
                    break;
                }
                after = Some(p.last().unwrap().1.clone());
                chained.extend(p);
            }
            assert_eq!(chained, all, "round {round}");
        }
    }

    #[test]
    fn facets_count_every_match() {
        let vals = |f: &str| match f {
            "type" => vec![
                (1, FieldValue::Text("sofa".into())),
                (2, FieldValue::Text("chair".into())),
                (3, FieldValue::Text("sofa".into())),
                (3, FieldValue::Text("sofa".into())),
            ],
            _ => vec![
                (1, FieldValue::Number(50.0)),
                (2, FieldValue::Number(100.0)),
                (3, FieldValue::Number(150.0)),
            ],
        };
        assert_eq!(
            counts(&["type".into()], &vals),
            json!({"type": {"sofa": 2, "chair": 1}})
        );
        let spec = json!({"price": {"cheap": "[0 TO 100]", "dear": "{100 TO Infinity]"}});
        assert_eq!(
            ranges(spec.as_object().unwrap(), &vals).unwrap(),
            json!({"price": {"cheap": 2, "dear": 1}})
        );
        let bad = json!({"price": {"x": "cheap"}});
        assert_eq!(
            ranges(bad.as_object().unwrap(), &vals).unwrap_err().status,
            400
        );
    }

    #[test]
    fn highlights_mark_the_query_terms() {
        let q = parse("title:(quick OR jump*) -title:dog").unwrap();
        let terms = query_terms(&q, "title", &Analyzer::Standard);
        let h = Highlight {
            pre: "<b>",
            post: "</b>",
            number: 1,
            size: 100,
        };
        assert_eq!(
            highlight(
                "The Quick fox jumps over the dog",
                &Analyzer::Standard,
                &terms,
                &h
            ),
            ["The <b>Quick</b> fox <b>jumps</b> over the dog"]
        );
        let none = query_terms(&q, "body", &Analyzer::Standard);
        assert!(highlight("quick", &Analyzer::Standard, &none, &h).is_empty());
        assert_eq!(
            stored_fields(
                vec![
                    ("a".into(), FieldValue::Number(1.0)),
                    ("b".into(), FieldValue::Text("x".into())),
                    ("a".into(), FieldValue::Number(2.0)),
                ],
                None
            ),
            json!({"a": [1.0, 2.0], "b": "x"})
                .as_object()
                .unwrap()
                .clone()
        );
    }
}
