//! Mango selectors: the `selector` of `POST /{db}/_find`, of partial indexes
//! and of `_changes?filter=_selector`.
//!
//! [`Selector::parse`] validates a selector and normalises it the way CouchDB
//! 3's `mango_selector:normalize/1` does:
//!
//! * a bare value means `$eq` (`{"a": 1}` is `{"a": {"$eq": 1}}`), also for
//!   arrays and for `{}` below a field (`{"a": {}}` is `a == {}`);
//! * an object of several members is an implicit `$and`;
//! * nested objects without operators are sub-fields (`{"a": {"b": 1}}` is
//!   `{"a.b": 1}`), and field names are pushed down through `$and`, `$or`,
//!   `$not` and `$nor` to the conditions;
//! * negations are pushed to the leaves (De Morgan; `$not $eq` -> `$ne`,
//!   `$not $lt` -> `$gte`, `$not $in` -> `$nin`, `$not $exists` flips);
//!   negations of other operators stay as a `$not` around that condition.
//!
//! The normalised tree is [`Node`]: `$and`/`$or` of [`FieldCondition`]s.
//!
//! # Matching semantics (CouchDB's, which we follow over PouchDB's)
//!
//! * A field that is missing (or whose path runs through a non-container)
//!   matches no condition but `{"$exists": false}`. Because negations are
//!   pushed to the leaves, `{"a": {"$ne": 1}}` and `{"$not": {"a": 1}}` do
//!   *not* match a document without `a` (PouchDB's `$ne` does; CouchDB's
//!   does not, see `match_ne_test` in `mango_selector.erl`).
//! * `$lt`/`$lte`/`$gt`/`$gte`/`$eq`/`$ne` compare with the view collation
//!   ([`crate::collate::compare`]) across types, so `{"$gt": 5}` matches any
//!   string, array or object. The field `_id` compares in raw collation
//!   ([`crate::collate::compare_raw`]), as CouchDB does.
//! * `$eq` on an array is whole-value equality (no MongoDB-style "any
//!   element"); `$in`/`$nin` against an array field test its elements.
//! * `{"$or": []}` matches everything, and so, through De Morgan, do
//!   `{"$nor": []}` and the negations of empty `$and`/`$or`.
//! * `$all` uses exact equality (`1` is not `1.0`; member order counts);
//!   `{"$all": [[...]]}` also matches an array equal to that inner array;
//!   `{"$all": []}` matches nothing.
//! * `$elemMatch` and `$allMatch` need a non-empty array, `$keyMapMatch` a
//!   non-empty object; `$size` an array; `$mod` an integer (truncated
//!   remainder, sign of the dividend, as Erlang's `rem`); `$regex` and
//!   `$beginsWith` a string.
//!
//! # `$regex`
//!
//! CouchDB runs PCRE (Erlang `re`); we run the [`regex`] crate. The pattern
//! is searched anywhere in the string (anchor with `^`/`$`). The `regex`
//! syntax has no look-around (`(?=`, `(?!`, `(?<=`, `(?<!`), no
//! backreferences (`\1`), no atomic groups or possessive quantifiers and no
//! `\Z`/`\G`; such patterns are rejected with `bad_arg`. It matches Unicode
//! code points where Erlang's `re` (without the `unicode` option) matches
//! bytes, so `.` is one character, not one byte.
//!
//! # Errors (all 400, with CouchDB's `error` strings)
//!
//! * unknown operator: `invalid_operator`, "Invalid operator: $foo";
//! * `$where`, `$geoWithin`, `$geoIntersects`, `$near`,
//!   `$nearSphere`: `not_supported`, "Unsupported operator: $where";
//! * an argument of the wrong type: `bad_arg`, "Bad argument for operator
//!   $in: 5". Stricter than CouchDB in three places: `$type` must name one
//!   of the six JSON types (CouchDB accepts any string and matches nothing),
//!   a `$mod` divisor of 0 is rejected (CouchDB fails at match time), and a
//!   non-string `$beginsWith` is `bad_arg` (CouchDB says `invalid_operator`);
//! * a condition with no field name (`{"$gt": 1}`, `{"$and": [5]}`) outside
//!   `$elemMatch`/`$allMatch`/`$keyMapMatch`: `invalid_selector`, "One or
//!   more conditions is missing a field name." (CouchDB checks only the top
//!   level and matches the others against the whole document);
//! * a field path with an empty segment (`a..b`, `a.`): `bad_request`;
//! * a selector that is not an object: `invalid_selector_json`.

use crate::collate::{compare, compare_raw};
use crate::error::{CouchError, CouchResult};
use regex::Regex;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::ops::Bound;

/// A parsed, validated and normalised Mango selector.
#[derive(Debug, Clone)]
pub struct Selector {
    /// `None` for the empty selector `{}`, which matches every document.
    root: Option<Node>,
}

/// A normalised selector tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// All must match (an empty `$and` matches everything).
    And(Vec<Node>),
    /// Any must match; an empty `$or` matches everything, as in CouchDB.
    Or(Vec<Node>),
    /// A condition on one field.
    Field(FieldCondition),
}

/// A condition on the value at a field path.
#[derive(Debug, Clone)]
pub struct FieldCondition {
    /// The dotted field name as normalised (`"a.b"`, escapes kept:
    /// `"a\\.b"`). Empty inside `$elemMatch`, `$allMatch` and `$keyMapMatch`
    /// for a condition on the element (or key) itself.
    pub field: String,
    /// The field name split into path segments, escapes removed.
    pub path: Vec<String>,
    pub cond: Cond,
}

/// A terminal condition on one value.
#[derive(Debug, Clone)]
pub enum Cond {
    Eq(Value),
    Ne(Value),
    Lt(Value),
    Lte(Value),
    Gt(Value),
    Gte(Value),
    Exists(bool),
    Type(JsonType),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Size(u64),
    Mod {
        divisor: i64,
        remainder: i64,
    },
    Regex(Regex),
    BeginsWith(String),
    All(Vec<Value>),
    ElemMatch(Box<Node>),
    AllMatch(Box<Node>),
    KeyMapMatch(Box<Node>),
    /// The negation of a condition that has no positive opposite.
    Not(Box<Cond>),
    /// `{"$text": "..."}`: a full-text query, which only a text index
    /// answers (see `shared::search::mango_text`); as a match of one
    /// document it holds, the index having chosen the documents.
    Text(String),
}

/// The JSON types `$type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    pub fn of(v: &Value) -> JsonType {
        match v {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Boolean => "boolean",
            JsonType::Number => "number",
            JsonType::String => "string",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }

    pub fn from_name(name: &str) -> Option<JsonType> {
        Some(match name {
            "null" => JsonType::Null,
            "boolean" => JsonType::Boolean,
            "number" => JsonType::Number,
            "string" => JsonType::String,
            "array" => JsonType::Array,
            "object" => JsonType::Object,
            _ => return None,
        })
    }
}

/// The values a field may take, from the `$eq`/`$gt`/`$gte`/`$lt`/`$lte`
/// conditions on it in the selector's top-level `$and`: what an index scan
/// on that field can be limited to.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeOf {
    pub lower: Bound<Value>,
    pub upper: Bound<Value>,
    /// Whether the bounds compare in raw collation (the `_id` field) rather
    /// than the default view collation.
    pub raw: bool,
}

impl RangeOf {
    /// The unbounded range.
    pub fn full(raw: bool) -> RangeOf {
        RangeOf {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            raw,
        }
    }

    fn cmp(&self, a: &Value, b: &Value) -> Ordering {
        if self.raw {
            compare_raw(a, b)
        } else {
            compare(a, b)
        }
    }

    /// The single value allowed, when the range is one point (an `$eq`).
    pub fn point(&self) -> Option<&Value> {
        match (&self.lower, &self.upper) {
            (Bound::Included(a), Bound::Included(b)) if self.cmp(a, b) == Ordering::Equal => {
                Some(a)
            }
            _ => None,
        }
    }

    /// Whether no value fits (contradictory conditions such as `$gt: 5`
    /// with `$lt: 3`): the selector then matches nothing.
    pub fn is_empty(&self) -> bool {
        match (&self.lower, &self.upper) {
            (Bound::Included(a), Bound::Included(b)) => self.cmp(a, b) == Ordering::Greater,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                self.cmp(a, b) != Ordering::Less
            }
            _ => false,
        }
    }

    /// Whether `v` lies in the range.
    pub fn contains(&self, v: &Value) -> bool {
        let above = match &self.lower {
            Bound::Unbounded => true,
            Bound::Included(l) => self.cmp(v, l) != Ordering::Less,
            Bound::Excluded(l) => self.cmp(v, l) == Ordering::Greater,
        };
        let below = match &self.upper {
            Bound::Unbounded => true,
            Bound::Included(u) => self.cmp(v, u) != Ordering::Greater,
            Bound::Excluded(u) => self.cmp(v, u) == Ordering::Less,
        };
        above && below
    }

    fn tighten_lower(&mut self, new: Bound<Value>) {
        let replace = match (&self.lower, &new) {
            (_, Bound::Unbounded) => false,
            (Bound::Unbounded, _) => true,
            (
                Bound::Included(old) | Bound::Excluded(old),
                Bound::Included(v) | Bound::Excluded(v),
            ) => match self.cmp(v, old) {
                Ordering::Greater => true,
                Ordering::Less => false,
                Ordering::Equal => matches!(new, Bound::Excluded(_)),
            },
        };
        if replace {
            self.lower = new;
        }
    }

    fn tighten_upper(&mut self, new: Bound<Value>) {
        let replace = match (&self.upper, &new) {
            (_, Bound::Unbounded) => false,
            (Bound::Unbounded, _) => true,
            (
                Bound::Included(old) | Bound::Excluded(old),
                Bound::Included(v) | Bound::Excluded(v),
            ) => match self.cmp(v, old) {
                Ordering::Less => true,
                Ordering::Greater => false,
                Ordering::Equal => matches!(new, Bound::Excluded(_)),
            },
        };
        if replace {
            self.upper = new;
        }
    }
}

// --- Errors ---

fn bad_arg(op: &str, arg: &Value) -> CouchError {
    CouchError::new(
        400,
        "bad_arg",
        format!("Bad argument for operator {op}: {arg}"),
    )
}

fn invalid_operator(op: &str) -> CouchError {
    CouchError::new(400, "invalid_operator", format!("Invalid operator: {op}"))
}

fn not_supported(op: &str) -> CouchError {
    CouchError::new(400, "not_supported", format!("Unsupported operator: {op}"))
}

fn missing_field_name() -> CouchError {
    CouchError::new(
        400,
        "invalid_selector",
        "One or more conditions is missing a field name.",
    )
}

// --- Parsing and normalisation ---

impl Selector {
    /// Validates and normalises a selector.
    pub fn parse(selector: &Value) -> CouchResult<Selector> {
        match selector {
            Value::Object(m) if m.is_empty() => Ok(Selector { root: None }),
            Value::Object(_) => Ok(Selector {
                root: Some(parse_node(selector, "", false, false)?),
            }),
            other => Err(CouchError::new(
                400,
                "invalid_selector_json",
                format!("Selector must be a JSON object, not: {other}"),
            )),
        }
    }

    /// Whether this is the empty selector `{}` (matches every document).
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// The normalised tree; `None` for the empty selector.
    pub fn root(&self) -> Option<&Node> {
        self.root.as_ref()
    }

    /// Whether `doc` (a document body, `_id` and `_rev` included) matches.
    pub fn matches(&self, doc: &Value) -> bool {
        self.root.as_ref().is_none_or(|n| n.matches(doc, false))
    }

    /// The normalised selector as JSON, as CouchDB's `_explain` shows it.
    pub fn to_json(&self) -> Value {
        self.root.as_ref().map_or_else(|| json!({}), Node::to_json)
    }

    /// Every field the selector constrains, in order of appearance, without
    /// repeats (through `$and`/`$or`, not into the relative fields of
    /// `$elemMatch` and friends).
    pub fn fields(&self) -> Vec<String> {
        fn walk(node: &Node, out: &mut Vec<String>) {
            match node {
                Node::And(kids) | Node::Or(kids) => kids.iter().for_each(|k| walk(k, out)),
                Node::Field(f) => {
                    if !f.field.is_empty() && !out.contains(&f.field) {
                        out.push(f.field.clone());
                    }
                }
            }
        }
        let mut out = Vec::new();
        if let Some(root) = &self.root {
            walk(root, &mut out);
        }
        out
    }

    /// For each field with `$eq`/`$gt`/`$gte`/`$lt`/`$lte` conditions in the
    /// top-level `$and` (nested `$and`s included, `$or` branches not), the
    /// intersection of the ranges they allow, in order of first appearance.
    /// Every field listed must exist in a matching document.
    pub fn field_ranges(&self) -> Vec<(String, RangeOf)> {
        fn conjuncts<'a>(node: &'a Node, out: &mut Vec<&'a FieldCondition>) {
            match node {
                Node::And(kids) => kids.iter().for_each(|k| conjuncts(k, out)),
                Node::Or(_) => {}
                Node::Field(f) => out.push(f),
            }
        }
        let mut fields = Vec::new();
        if let Some(root) = &self.root {
            conjuncts(root, &mut fields);
        }
        let mut out: Vec<(String, RangeOf)> = Vec::new();
        for f in fields {
            let (lower, upper) = match &f.cond {
                Cond::Eq(v) => (Bound::Included(v), Bound::Included(v)),
                Cond::Gt(v) => (Bound::Excluded(v), Bound::Unbounded),
                Cond::Gte(v) => (Bound::Included(v), Bound::Unbounded),
                Cond::Lt(v) => (Bound::Unbounded, Bound::Excluded(v)),
                Cond::Lte(v) => (Bound::Unbounded, Bound::Included(v)),
                _ => continue,
            };
            if f.field.is_empty() {
                continue;
            }
            let i = match out.iter().position(|(name, _)| *name == f.field) {
                Some(i) => i,
                None => {
                    out.push((f.field.clone(), RangeOf::full(f.field == "_id")));
                    out.len() - 1
                }
            };
            let range = &mut out[i].1;
            range.tighten_lower(lower.cloned());
            range.tighten_upper(upper.cloned());
        }
        out
    }
}

/// Normalises `sel`, found at field path `path` (dotted, escapes kept),
/// negated when `neg`. `relative` inside `$elemMatch` & co., where a
/// condition may apply to the element itself (empty path).
fn parse_node(sel: &Value, path: &str, neg: bool, relative: bool) -> CouchResult<Node> {
    let members = match sel {
        Value::Object(m) if !m.is_empty() => m,
        // A bare value (or `{}`) is an equality.
        other => return field_node(path, Cond::Eq(other.clone()), neg, relative),
    };
    if members.len() == 1 {
        let (key, arg) = members.iter().next().expect("one member");
        return parse_member(key, arg, path, neg, relative);
    }
    let kids = members
        .iter()
        .map(|(key, arg)| parse_member(key, arg, path, neg, relative))
        .collect::<CouchResult<Vec<_>>>()?;
    Ok(junction(kids, neg))
}

/// `$and` of `kids`, or `$or` when negated (De Morgan).
fn junction(kids: Vec<Node>, neg: bool) -> Node {
    if neg {
        Node::Or(kids)
    } else {
        Node::And(kids)
    }
}

fn parse_member(
    key: &str,
    arg: &Value,
    path: &str,
    neg: bool,
    relative: bool,
) -> CouchResult<Node> {
    if !key.starts_with('$') {
        let sub = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        return parse_node(arg, &sub, neg, relative);
    }
    let list = |each_neg: bool| -> CouchResult<Vec<Node>> {
        match arg {
            Value::Array(items) => items
                .iter()
                .map(|a| parse_node(a, path, each_neg, relative))
                .collect(),
            _ => Err(bad_arg(key, arg)),
        }
    };
    let object = || -> CouchResult<&Value> {
        match arg {
            Value::Object(_) => Ok(arg),
            _ => Err(bad_arg(key, arg)),
        }
    };
    match key {
        // As CouchDB normalises it: a condition on the `$default` field.
        "$text" => match arg {
            Value::String(t) if path.is_empty() && !relative => Ok(Node::Field(FieldCondition {
                field: "$default".into(),
                path: vec!["$default".into()],
                cond: Cond::Text(t.clone()),
            })),
            Value::String(_) => Err(bad_arg(key, arg)),
            _ => Err(bad_arg(key, arg)),
        },
        "$and" => Ok(junction(list(neg)?, neg)),
        // not (a or b) = not a and not b
        "$or" => Ok(junction(list(neg)?, !neg)),
        // nor = and of negations; not nor = or of positives
        "$nor" => Ok(junction(list(!neg)?, neg)),
        "$not" => parse_node(object()?, path, !neg, relative),
        "$elemMatch" | "$allMatch" | "$keyMapMatch" => {
            let inner = Box::new(parse_node(object()?, "", false, true)?);
            let cond = match key {
                "$elemMatch" => Cond::ElemMatch(inner),
                "$allMatch" => Cond::AllMatch(inner),
                _ => Cond::KeyMapMatch(inner),
            };
            field_node(path, cond, neg, relative)
        }
        _ => field_node(path, parse_operator(key, arg)?, neg, relative),
    }
}

fn parse_operator(op: &str, arg: &Value) -> CouchResult<Cond> {
    let array = || match arg {
        Value::Array(items) => Ok(items.clone()),
        _ => Err(bad_arg(op, arg)),
    };
    Ok(match op {
        "$eq" => Cond::Eq(arg.clone()),
        "$ne" => Cond::Ne(arg.clone()),
        "$lt" => Cond::Lt(arg.clone()),
        "$lte" => Cond::Lte(arg.clone()),
        "$gt" => Cond::Gt(arg.clone()),
        "$gte" => Cond::Gte(arg.clone()),
        "$in" => Cond::In(array()?),
        "$nin" => Cond::Nin(array()?),
        "$all" => Cond::All(array()?),
        "$exists" => Cond::Exists(arg.as_bool().ok_or_else(|| bad_arg(op, arg))?),
        "$type" => Cond::Type(
            arg.as_str()
                .and_then(JsonType::from_name)
                .ok_or_else(|| bad_arg(op, arg))?,
        ),
        "$size" => Cond::Size(arg.as_u64().ok_or_else(|| bad_arg(op, arg))?),
        "$mod" => match arg.as_array().map(Vec::as_slice) {
            Some([d, r]) => match (d.as_i64(), r.as_i64()) {
                (Some(divisor), Some(remainder)) if divisor != 0 => {
                    Cond::Mod { divisor, remainder }
                }
                _ => return Err(bad_arg(op, arg)),
            },
            _ => return Err(bad_arg(op, arg)),
        },
        "$regex" => {
            let pattern = arg.as_str().ok_or_else(|| bad_arg(op, arg))?;
            Cond::Regex(Regex::new(pattern).map_err(|_| bad_arg(op, arg))?)
        }
        "$beginsWith" => {
            Cond::BeginsWith(arg.as_str().ok_or_else(|| bad_arg(op, arg))?.to_string())
        }
        "$where" | "$geoWithin" | "$geoIntersects" | "$near" | "$nearSphere" => {
            return Err(not_supported(op))
        }
        _ => return Err(invalid_operator(op)),
    })
}

fn field_node(field: &str, cond: Cond, neg: bool, relative: bool) -> CouchResult<Node> {
    if field.is_empty() && !relative {
        return Err(missing_field_name());
    }
    Ok(Node::Field(FieldCondition {
        field: field.to_string(),
        path: parse_path(field)?,
        cond: if neg { cond.negate() } else { cond },
    }))
}

/// A field name's path segments (escaped dots kept in their segment), as
/// index definitions, sorts and `fields` name fields.
pub fn field_path(field: &str) -> CouchResult<Vec<String>> {
    parse_path(field)
}

/// The value at `path` in `doc`, if there is one.
pub fn value_at<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    match lookup(doc, path) {
        Lookup::Found(v) => Some(v),
        Lookup::Missing | Lookup::BadPath => None,
    }
}

/// Splits a field name on the dots not escaped by a backslash, then drops
/// the backslashes (CouchDB's `mango_util:parse_field/1`): `a.b` is two
/// segments, `a\.b` the one segment `a.b`.
fn parse_path(field: &str) -> CouchResult<Vec<String>> {
    if field.is_empty() {
        return Ok(Vec::new());
    }
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut after_backslash = false;
    for c in field.chars() {
        if c == '.' && !after_backslash {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
        after_backslash = c == '\\';
    }
    parts.push(current);
    if parts.iter().any(String::is_empty) {
        return Err(CouchError::bad_request(format!(
            "Invalid field name: {field}"
        )));
    }
    Ok(parts.into_iter().map(|p| p.replace('\\', "")).collect())
}

impl Cond {
    /// The condition matching exactly the present values this one rejects.
    pub fn negate(self) -> Cond {
        match self {
            Cond::Eq(v) => Cond::Ne(v),
            Cond::Ne(v) => Cond::Eq(v),
            Cond::Lt(v) => Cond::Gte(v),
            Cond::Lte(v) => Cond::Gt(v),
            Cond::Gt(v) => Cond::Lte(v),
            Cond::Gte(v) => Cond::Lt(v),
            Cond::In(v) => Cond::Nin(v),
            Cond::Nin(v) => Cond::In(v),
            Cond::Exists(b) => Cond::Exists(!b),
            Cond::Not(c) => *c,
            other => Cond::Not(Box::new(other)),
        }
    }

    /// The operator's name (`"$eq"`, ...).
    pub fn operator(&self) -> &'static str {
        match self {
            Cond::Eq(_) => "$eq",
            Cond::Ne(_) => "$ne",
            Cond::Lt(_) => "$lt",
            Cond::Lte(_) => "$lte",
            Cond::Gt(_) => "$gt",
            Cond::Gte(_) => "$gte",
            Cond::Exists(_) => "$exists",
            Cond::Type(_) => "$type",
            Cond::In(_) => "$in",
            Cond::Nin(_) => "$nin",
            Cond::Size(_) => "$size",
            Cond::Mod { .. } => "$mod",
            Cond::Regex(_) => "$regex",
            Cond::BeginsWith(_) => "$beginsWith",
            Cond::All(_) => "$all",
            Cond::ElemMatch(_) => "$elemMatch",
            Cond::AllMatch(_) => "$allMatch",
            Cond::KeyMapMatch(_) => "$keyMapMatch",
            Cond::Not(_) => "$not",
            Cond::Text(_) => "$text",
        }
    }

    pub fn to_json(&self) -> Value {
        let arg = match self {
            Cond::Eq(v) | Cond::Ne(v) | Cond::Lt(v) | Cond::Lte(v) | Cond::Gt(v) | Cond::Gte(v) => {
                v.clone()
            }
            Cond::In(v) | Cond::Nin(v) | Cond::All(v) => Value::Array(v.clone()),
            Cond::Exists(b) => Value::Bool(*b),
            Cond::Type(t) => json!(t.name()),
            Cond::Size(n) => json!(n),
            Cond::Mod { divisor, remainder } => json!([divisor, remainder]),
            Cond::Regex(re) => json!(re.as_str()),
            Cond::BeginsWith(p) => json!(p),
            Cond::ElemMatch(n) | Cond::AllMatch(n) | Cond::KeyMapMatch(n) => n.to_json(),
            Cond::Not(c) => c.to_json(),
            Cond::Text(t) => json!(t),
        };
        let mut m = Map::new();
        m.insert(self.operator().to_string(), arg);
        Value::Object(m)
    }

    /// Whether the (present) value `v` satisfies the condition; `raw`
    /// selects raw collation for comparisons.
    pub fn matches(&self, v: &Value, raw: bool) -> bool {
        let cmp = |a: &Value, b: &Value| {
            if raw {
                compare_raw(a, b)
            } else {
                compare(a, b)
            }
        };
        let equal = |a: &Value, b: &Value| cmp(a, b) == Ordering::Equal;
        match self {
            Cond::Eq(a) => equal(v, a),
            Cond::Ne(a) => !equal(v, a),
            Cond::Lt(a) => cmp(v, a) == Ordering::Less,
            Cond::Lte(a) => cmp(v, a) != Ordering::Greater,
            Cond::Gt(a) => cmp(v, a) == Ordering::Greater,
            Cond::Gte(a) => cmp(v, a) != Ordering::Less,
            Cond::Exists(should) => *should,
            Cond::Type(t) => JsonType::of(v) == *t,
            Cond::In(args) => match v {
                Value::Array(items) => args.iter().any(|a| items.iter().any(|i| equal(i, a))),
                _ => args.iter().any(|a| equal(v, a)),
            },
            Cond::Nin(args) => match v {
                Value::Array(items) => args.iter().all(|a| items.iter().all(|i| !equal(i, a))),
                _ => args.iter().all(|a| !equal(v, a)),
            },
            Cond::Size(n) => matches!(v, Value::Array(items) if items.len() as u64 == *n),
            Cond::Mod { divisor, remainder } => {
                integer(v).is_some_and(|i| i % i128::from(*divisor) == i128::from(*remainder))
            }
            Cond::Regex(re) => v.as_str().is_some_and(|s| re.is_match(s)),
            Cond::BeginsWith(prefix) => v.as_str().is_some_and(|s| s.starts_with(prefix.as_str())),
            Cond::All(args) => {
                if args.is_empty() {
                    return false;
                }
                // `{"$all": [[1, 2]]}` also matches the array `[1, 2]` itself
                // (compared with Erlang's `==`, i.e. raw collation equality).
                if let [inner @ Value::Array(_)] = args.as_slice() {
                    if compare_raw(inner, v) == Ordering::Equal {
                        return true;
                    }
                }
                match v {
                    Value::Array(items) => args
                        .iter()
                        .all(|a| items.iter().any(|i| exactly_equal(i, a))),
                    _ => false,
                }
            }
            Cond::ElemMatch(node) => {
                matches!(v, Value::Array(items) if items.iter().any(|i| node.matches(i, raw)))
            }
            Cond::AllMatch(node) => matches!(
                v,
                Value::Array(items) if !items.is_empty() && items.iter().all(|i| node.matches(i, raw))
            ),
            Cond::KeyMapMatch(node) => matches!(
                v,
                Value::Object(m) if m.keys().any(|k| node.matches(&Value::String(k.clone()), raw))
            ),
            Cond::Not(c) => !c.matches(v, raw),
            Cond::Text(_) => true,
        }
    }
}

impl Node {
    /// Whether `value` matches; `raw` selects raw collation (inherited from
    /// an enclosing `_id` condition).
    pub fn matches(&self, value: &Value, raw: bool) -> bool {
        match self {
            Node::And(kids) => kids.iter().all(|k| k.matches(value, raw)),
            Node::Or(kids) => kids.is_empty() || kids.iter().any(|k| k.matches(value, raw)),
            Node::Field(f) => f.matches(value, raw),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Node::And(kids) => {
                json!({ "$and": kids.iter().map(Node::to_json).collect::<Vec<_>>() })
            }
            Node::Or(kids) => json!({ "$or": kids.iter().map(Node::to_json).collect::<Vec<_>>() }),
            Node::Field(f) => {
                let mut m = Map::new();
                m.insert(f.field.clone(), f.cond.to_json());
                Value::Object(m)
            }
        }
    }
}

impl FieldCondition {
    pub fn matches(&self, value: &Value, raw: bool) -> bool {
        let raw = raw || self.field == "_id";
        if let Cond::Text(_) = self.cond {
            return true;
        }
        match lookup(value, &self.path) {
            Lookup::Found(v) => self.cond.matches(v, raw),
            Lookup::Missing => matches!(self.cond, Cond::Exists(false)),
            Lookup::BadPath => false,
        }
    }
}

enum Lookup<'a> {
    Found(&'a Value),
    /// An object on the way lacks the member.
    Missing,
    /// The path runs into a scalar, or a non-index (or out-of-range index)
    /// segment meets an array. Even `$exists: false` fails, as in CouchDB.
    BadPath,
}

/// Follows `path`, a segment indexing an array when it is an integer.
fn lookup<'a>(mut v: &'a Value, path: &[String]) -> Lookup<'a> {
    for seg in path {
        v = match v {
            Value::Object(m) => match m.get(seg) {
                Some(x) => x,
                None => return Lookup::Missing,
            },
            Value::Array(items) => match seg.parse::<usize>() {
                Ok(i) if i < items.len() => &items[i],
                _ => return Lookup::BadPath,
            },
            _ => return Lookup::BadPath,
        };
    }
    Lookup::Found(v)
}

/// The value of an integral JSON number (floats such as `2.0` are not).
fn integer(v: &Value) -> Option<i128> {
    let n = v.as_number()?;
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Erlang's `=:=` on JSON terms: no int/float coercion, member order counts.
fn exactly_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (integer(a), integer(b)) {
            (Some(i), Some(j)) => i == j,
            (None, None) => x.as_f64() == y.as_f64(),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| exactly_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kp, vp), (kq, vq))| kp == kq && exactly_equal(vp, vq))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(v: Value) -> Selector {
        Selector::parse(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    /// CouchDB's `check_selector`: `{"x": cond}` must match `{"x": value}`
    /// exactly when expected, and its negation exactly when not.
    fn check(cond: Value, table: &[(bool, Value)]) {
        let pos = sel(json!({ "x": cond }));
        let neg = sel(json!({ "$not": { "x": cond } }));
        for (want, value) in table {
            let doc = json!({ "x": value });
            assert_eq!(pos.matches(&doc), *want, "{cond} on {value}");
            assert_eq!(neg.matches(&doc), !*want, "$not {cond} on {value}");
        }
    }

    #[test]
    fn comparison_operators() {
        let cases: Vec<(Value, Vec<(bool, Value)>)> = vec![
            (
                json!({"$lt": 5}),
                vec![(true, json!(4)), (false, json!(5)), (false, json!(6))],
            ),
            (
                json!({"$lte": 5}),
                vec![(true, json!(4)), (true, json!(5)), (false, json!(6))],
            ),
            (
                json!({"$gt": 5}),
                vec![(false, json!(4)), (false, json!(5)), (true, json!(6))],
            ),
            (
                json!({"$gte": 5}),
                vec![(false, json!(4)), (true, json!(5)), (true, json!(6))],
            ),
            (
                json!({"$eq": 5}),
                vec![(true, json!(5)), (true, json!(5.0)), (false, json!(6))],
            ),
            (
                json!({"$ne": 5}),
                vec![(false, json!(5)), (false, json!(5.0)), (true, json!(6))],
            ),
            (
                json!({"$lt": "hello"}),
                vec![
                    (true, json!("held")),
                    (false, json!("hello")),
                    (false, json!("help")),
                ],
            ),
            (
                json!({"$gte": "hello"}),
                vec![
                    (false, json!("held")),
                    (true, json!("hello")),
                    (true, json!("help")),
                ],
            ),
            // Strings collate by ICU: "a" < "A" < "b".
            (
                json!({"$gt": "a"}),
                vec![
                    (false, json!("a")),
                    (true, json!("A")),
                    (true, json!("b")),
                    (true, json!("B")),
                ],
            ),
            (
                json!({"$lt": [1, 2, 3]}),
                vec![
                    (true, json!([1, 2, 2])),
                    (true, json!([1, 2])),
                    (false, json!([1, 2, 3])),
                    (false, json!([1, 2, 4])),
                    (false, json!([1, 3])),
                ],
            ),
            (
                json!({"$gte": [1, 2, 3]}),
                vec![
                    (false, json!([1, 2, 2])),
                    (false, json!([1, 2])),
                    (true, json!([1, 2, 3])),
                    (true, json!([1, 2, 4])),
                    (true, json!([1, 3])),
                ],
            ),
            (
                json!({"$eq": [1, [2, 3, 4], 5]}),
                vec![
                    (true, json!([1, [2, 3, 4], 5])),
                    (false, json!([1, [2, 3, 4]])),
                    (false, json!([1, [2, 3, 4], 5, 6])),
                    (false, json!([1, [2, 7, 4], 5])),
                    // No MongoDB-style "any element equals".
                    (false, json!(1)),
                ],
            ),
            (
                json!({"$eq": {"a": {"b": {"c": 7}}}}),
                vec![
                    (true, json!({"a": {"b": {"c": 7}}})),
                    (false, json!({"a": {"b": {"c": 8}}})),
                    (false, json!({"a": {"b": {"d": 7}}})),
                    (false, json!({"a": {"d": {"c": 7}}})),
                    (false, json!({"a": {"b": {"c": 7}}, "z": 1})),
                ],
            ),
            // Type mismatches compare by collation order across types.
            (
                json!({"$gt": 5}),
                vec![
                    (false, json!(null)),
                    (false, json!(true)),
                    (true, json!("4")),
                    (true, json!([])),
                    (true, json!({})),
                ],
            ),
            (
                json!({"$lt": "a"}),
                vec![
                    (true, json!(null)),
                    (true, json!(false)),
                    (true, json!(1e9)),
                    (false, json!(["a"])),
                ],
            ),
            (
                json!({"$eq": null}),
                vec![
                    (true, json!(null)),
                    (false, json!(false)),
                    (false, json!(0)),
                    (false, json!("")),
                ],
            ),
            (
                json!({"$eq": "11"}),
                vec![(true, json!("11")), (false, json!(11))],
            ),
            // A bare value is $eq.
            (json!(5), vec![(true, json!(5)), (false, json!("5"))]),
            (
                json!([1, 2]),
                vec![(true, json!([1, 2])), (false, json!([2, 1]))],
            ),
        ];
        for (cond, table) in cases {
            check(cond, &table);
        }
    }

    #[test]
    fn in_nin_all_size_mod() {
        let in_args = json!([42, false, "bar", [["nested"], "list"], {"b": 2}]);
        let cases: Vec<(Value, Vec<(bool, Value)>)> = vec![
            (
                json!({"$in": []}),
                vec![(false, json!(0)), (false, json!(true)), (false, json!([]))],
            ),
            (
                json!({"$in": in_args}),
                vec![
                    (true, json!(42)),
                    (true, json!(42.0)),
                    (true, json!(false)),
                    (true, json!("bar")),
                    (true, json!({"b": 2})),
                    (false, json!(43)),
                    (false, json!(true)),
                    (false, json!("bars")),
                    (false, json!({"b": 2, "c": 3})),
                    // An array value matches when one of its elements does ...
                    (true, json!([0, 42])),
                    (true, json!([0, {"b": 2}])),
                    (false, json!([])),
                    // ... so an array argument only matches nested in one.
                    (false, json!([["nested"], "list"])),
                    (true, json!([0, [["nested"], "list"]])),
                ],
            ),
            (
                json!({"$nin": []}),
                vec![(true, json!(0)), (true, json!([]))],
            ),
            (
                json!({"$nin": in_args}),
                vec![
                    (false, json!(42)),
                    (false, json!("bar")),
                    (true, json!(43)),
                    (true, json!({"b": 2, "c": 3})),
                    (false, json!([0, 42])),
                    (true, json!([])),
                    (true, json!([["nested"], "list"])),
                    (false, json!([0, [["nested"], "list"]])),
                ],
            ),
            (
                json!({"$all": []}),
                vec![
                    (false, json!([])),
                    (false, json!([42])),
                    (false, json!({})),
                    (false, json!("foo")),
                ],
            ),
            (
                json!({"$all": [1, 2, 3, 4]}),
                vec![
                    (true, json!([3, 2, 4, 1])),
                    (true, json!([0, 4, 3, 5, 2, 1, 6])),
                    (false, json!([3, 2, 4])),
                    (false, json!([])),
                    // Exact equality: 1.0 is not 1.
                    (false, json!([1.0, 2, 3, 4])),
                    (false, json!(1)),
                ],
            ),
            (
                json!({"$all": [[1, 2, 3, 4]]}),
                vec![
                    (true, json!([1, 2, 3, 4])),
                    (false, json!([4, 3, 2, 1])),
                    (false, json!([1, 3, 4])),
                    (false, json!([])),
                    (true, json!([5, [1, 2, 3, 4], 6])),
                    (false, json!([5, [1, 3, 4], 6])),
                    (false, json!([5, [1, 3, 2, 4], 6])),
                ],
            ),
            (
                json!({"$all": ["hello"]}),
                vec![
                    (false, json!("hello")),
                    (true, json!(["hello"])),
                    (true, json!([0, "hello", 1])),
                    (false, json!([])),
                ],
            ),
            (
                json!({"$all": [{"a": 1}]}),
                vec![
                    (true, json!([{"a": 1}])),
                    (false, json!([{"a": 1, "b": 2}])),
                ],
            ),
            (
                json!({"$size": 3}),
                vec![
                    (false, json!(3)),
                    (false, json!("fun")),
                    (true, json!([0, 0, 0])),
                    (false, json!([0, 0])),
                    (false, json!([0, 0, 0, 0])),
                    (false, json!({"a": 1, "b": 2, "c": 3})),
                ],
            ),
            (
                json!({"$size": 0}),
                vec![(true, json!([])), (false, json!({}))],
            ),
            (
                json!({"$mod": [28, 1]}),
                vec![
                    (true, json!(1)),
                    (true, json!(29)),
                    (true, json!(57)),
                    (false, json!(58)),
                    (false, json!("57")),
                    (false, json!(29.0)),
                ],
            ),
            (
                // Erlang `rem`: the remainder takes the dividend's sign.
                json!({"$mod": [3, -2]}),
                vec![(true, json!(-5)), (false, json!(1)), (false, json!(4))],
            ),
            (
                json!({"$mod": [-3, 1]}),
                vec![
                    (true, json!(4)),
                    (false, json!(-4)),
                    (true, json!(u64::MAX - 2)),
                ],
            ),
            (
                json!({"$mod": [2, 0]}),
                vec![(true, json!(0)), (true, json!(-4)), (false, json!(7))],
            ),
        ];
        for (cond, table) in cases {
            check(cond, &table);
        }
    }

    #[test]
    fn type_exists_regex_begins_with() {
        let cases: Vec<(Value, Vec<(bool, Value)>)> = vec![
            (
                json!({"$type": "null"}),
                vec![
                    (true, json!(null)),
                    (false, json!(false)),
                    (false, json!({})),
                ],
            ),
            (
                json!({"$type": "boolean"}),
                vec![(true, json!(true)), (true, json!(false)), (false, json!(0))],
            ),
            (
                json!({"$type": "number"}),
                vec![
                    (true, json!(42)),
                    (true, json!(2.5)),
                    (true, json!(-1)),
                    (false, json!(true)),
                    (false, json!([1])),
                    (false, json!("1")),
                ],
            ),
            (
                json!({"$type": "string"}),
                vec![
                    (true, json!("")),
                    (true, json!("hello")),
                    (false, json!([])),
                ],
            ),
            (
                json!({"$type": "array"}),
                vec![
                    (true, json!([])),
                    (true, json!([1, 2])),
                    (false, json!({})),
                    (false, json!("hi")),
                ],
            ),
            (
                json!({"$type": "object"}),
                vec![
                    (true, json!({})),
                    (true, json!({"a": 1})),
                    (false, json!([["a", 1]])),
                    (false, json!(null)),
                ],
            ),
            (
                json!({"$exists": true}),
                vec![(true, json!(null)), (true, json!(false)), (true, json!([]))],
            ),
            (
                json!({"$exists": false}),
                vec![(false, json!(null)), (false, json!(0))],
            ),
            (
                json!({"$regex": "^[0-9a-f]+$"}),
                vec![
                    (false, json!("")),
                    (true, json!("3a0df5e")),
                    (false, json!("3a0gf5e")),
                    (false, json!(42)),
                    (false, json!(["3a0df5e"])),
                ],
            ),
            (
                // Unanchored search, Unicode-aware.
                json!({"$regex": "b.r"}),
                vec![
                    (true, json!("foobar")),
                    (true, json!("bér")),
                    (false, json!("BAR")),
                ],
            ),
            (
                json!({"$regex": "(?i)^bar"}),
                vec![(true, json!("BARN")), (false, json!("a bar"))],
            ),
            (
                json!({"$beginsWith": "foo"}),
                vec![
                    (true, json!("foo")),
                    (true, json!("food")),
                    (true, json!("fool me once")),
                    (false, json!("more food")),
                    (false, json!("fo")),
                    (false, json!("Foo")),
                    (false, json!(42)),
                    (false, json!(["foo"])),
                ],
            ),
            (
                json!({"$beginsWith": ""}),
                vec![(true, json!("")), (true, json!("x")), (false, json!(1))],
            ),
        ];
        for (cond, table) in cases {
            check(cond, &table);
        }
    }

    #[test]
    fn elem_match_all_match_key_map_match() {
        let cases: Vec<(Value, Vec<(bool, Value)>)> = vec![
            (
                json!({"$elemMatch": {"$eq": 0}}),
                vec![
                    (false, json!([])),
                    (true, json!([0])),
                    (false, json!([1])),
                    (true, json!([0, 1])),
                    (false, json!(0)),
                ],
            ),
            (
                json!({"$elemMatch": {"$ne": 0}}),
                vec![
                    (false, json!([])),
                    (false, json!([0])),
                    (true, json!([1])),
                    (true, json!([0, 1])),
                ],
            ),
            (
                json!({"$elemMatch": {"$gte": 80, "$lt": 85}}),
                vec![
                    (true, json!([79, 82])),
                    (false, json!([79, 85])),
                    (false, json!({"a": 82})),
                ],
            ),
            (
                json!({"$elemMatch": {"name": "b", "n": {"$gt": 1}}}),
                vec![
                    (true, json!([{"name": "a", "n": 5}, {"name": "b", "n": 2}])),
                    (false, json!([{"name": "a", "n": 5}, {"name": "b", "n": 1}])),
                    (false, json!(["b"])),
                ],
            ),
            (
                json!({"$elemMatch": {"$elemMatch": {"$eq": 1}}}),
                vec![(true, json!([[0], [2, 1]])), (false, json!([1, [2]]))],
            ),
            (
                json!({"$allMatch": {"$eq": 0}}),
                vec![
                    (false, json!([])),
                    (true, json!([0])),
                    (false, json!([1])),
                    (false, json!([0, 1])),
                    (false, json!(0)),
                ],
            ),
            (
                json!({"$allMatch": {"a": {"$exists": true}}}),
                vec![
                    (true, json!([{"a": null}, {"a": 1}])),
                    (false, json!([{"a": 1}, {"b": 1}])),
                ],
            ),
            (
                json!({"$keyMapMatch": {"$regex": "^[a-z]+$"}}),
                vec![
                    (true, json!({"hello": 0})),
                    (true, json!({"a": 1, "b": 2})),
                    (true, json!({"a": 1, "b4": 2})),
                    (false, json!({"b4": 2})),
                    (false, json!({})),
                    (false, json!(["a"])),
                ],
            ),
            (
                json!({"$keyMapMatch": {"$eq": "k"}}),
                vec![(true, json!({"j": 0, "k": 0})), (false, json!({"K": "k"}))],
            ),
        ];
        for (cond, table) in cases {
            check(cond, &table);
        }
    }

    #[test]
    fn missing_fields_match_only_exists_false() {
        let conds = [
            json!(0),
            json!({"$eq": null}),
            json!({"$ne": 0}),
            json!({"$gt": null}),
            json!({"$lt": {}}),
            json!({"$in": [null]}),
            json!({"$nin": [0]}),
            json!({"$exists": true}),
            json!({"$type": "null"}),
            json!({"$size": 0}),
            json!({"$mod": [2, 0]}),
            json!({"$regex": ""}),
            json!({"$beginsWith": ""}),
            json!({"$all": [0]}),
            json!({"$elemMatch": {}}),
            json!({"$allMatch": {}}),
            json!({"$keyMapMatch": {}}),
            json!({"$not": {"$eq": 0}}),
            json!({"$not": {"$regex": "a"}}),
            json!({"$not": {"$size": 1}}),
            json!({"$not": {"$exists": false}}),
        ];
        let empty = json!({});
        let other = json!({"y": 0});
        for cond in conds {
            let s = sel(json!({ "x": cond }));
            assert!(!s.matches(&empty), "{cond}");
            assert!(!s.matches(&other), "{cond}");
            let nested = sel(json!({ "a": { "x": cond } }));
            assert!(!nested.matches(&json!({"a": {}})), "{cond}");
        }
        for cond in [
            json!({"$exists": false}),
            json!({"$not": {"$exists": true}}),
        ] {
            let s = sel(json!({ "x": cond }));
            assert!(s.matches(&empty), "{cond}");
            assert!(s.matches(&other), "{cond}");
            assert!(!s.matches(&json!({"x": null})), "{cond}");
        }
        // `$not` with `$exists: true` inside does match the missing field.
        check(
            json!({"$exists": true, "$eq": 0}),
            &[(false, json!(1)), (true, json!(0))],
        );
        let s = sel(json!({"x": {"$not": {"$exists": true, "$eq": 0}}}));
        assert!(s.matches(&empty));
        assert!(s.matches(&json!({"x": 1})));
        assert!(!s.matches(&json!({"x": 0})));
    }

    #[test]
    fn combinations() {
        // (selector, matching docs, non-matching docs)
        let cases: Vec<(Value, Vec<Value>, Vec<Value>)> = vec![
            (
                json!({"a": 1, "b": 2}),
                vec![json!({"a": 1, "b": 2, "c": 3})],
                vec![json!({"a": 1}), json!({"a": 1, "b": 3})],
            ),
            (
                json!({"$or": [{"a": 1}, {"b": 2}]}),
                vec![json!({"a": 1}), json!({"b": 2}), json!({"a": 1, "b": 2})],
                vec![json!({}), json!({"a": 2, "b": 1})],
            ),
            (
                json!({"$nor": [{"a": 1}, {"b": 2}]}),
                vec![json!({"a": 2, "b": 1})],
                // Negations need the fields: `$nor` is `a != 1 and b != 2`.
                vec![json!({"a": 1, "b": 1}), json!({"a": 2}), json!({})],
            ),
            (
                json!({"$not": {"a": 1}}),
                vec![json!({"a": 2}), json!({"a": [1]})],
                vec![json!({"a": 1}), json!({})],
            ),
            (
                json!({"$not": {"$or": [{"a": 1}, {"a": 2}]}}),
                vec![json!({"a": 3})],
                vec![json!({"a": 1}), json!({"a": 2}), json!({})],
            ),
            (
                json!({"$not": {"$and": [{"a": {"$gt": 3}}, {"a": {"$lt": 7}}]}}),
                vec![json!({"a": 2}), json!({"a": 9})],
                vec![json!({"a": 5}), json!({})],
            ),
            (
                json!({"$not": {"$not": {"a": 1}}}),
                vec![json!({"a": 1})],
                vec![json!({"a": 2}), json!({})],
            ),
            (
                json!({"$not": {"$nor": [{"a": 1}, {"b": 1}]}}),
                vec![json!({"a": 1}), json!({"b": 1})],
                vec![json!({"a": 2, "b": 2}), json!({})],
            ),
            (
                json!({"x": {"$and": [{"$gt": 3}, {"$lt": 7}]}}),
                vec![json!({"x": 6})],
                vec![json!({"x": 2}), json!({"x": 9}), json!({})],
            ),
            (
                json!({"x": {"$or": [{"$lt": 3}, {"$gt": 7}]}}),
                vec![json!({"x": 2}), json!({"x": 9})],
                vec![json!({"x": 6}), json!({})],
            ),
            (
                json!({"x": {"$nor": [{"$lt": 3}, {"$gt": 7}]}}),
                vec![json!({"x": 6})],
                vec![json!({"x": 2}), json!({"x": 9}), json!({})],
            ),
            (
                json!({"x": {"$not": {"$or": [{"$lt": 3}, {"$gt": 7}]}}}),
                vec![json!({"x": 6})],
                vec![json!({"x": 2}), json!({})],
            ),
            (
                json!({"x": {"$not": {"$and": [{"$gt": 3}, {"$lt": 7}]}}}),
                vec![json!({"x": 2}), json!({"x": 9})],
                vec![json!({"x": 6}), json!({})],
            ),
            // Empty $and/$or/$nor match anything, present or not, and so do
            // the negations of the empty ones.
            (
                json!({"x": {"$and": []}}),
                vec![json!({}), json!({"x": 0})],
                vec![],
            ),
            (
                json!({"x": {"$or": []}}),
                vec![json!({}), json!({"x": []})],
                vec![],
            ),
            (
                json!({"x": {"$nor": []}}),
                vec![json!({}), json!({"x": false})],
                vec![],
            ),
            (
                json!({"x": {"$not": {"$and": []}}}),
                vec![json!({}), json!({"x": 0})],
                vec![],
            ),
            (
                json!({"x": {"$not": {"$or": []}}}),
                vec![json!({}), json!({"x": 0})],
                vec![],
            ),
            (json!({"$and": []}), vec![json!({})], vec![]),
            (
                json!({"a": {"$gt": 1}, "$or": [{"b": "x"}, {"c": {"$exists": false}}]}),
                vec![json!({"a": 2, "b": "x", "c": 1}), json!({"a": 2})],
                vec![json!({"a": 2, "c": 1}), json!({"a": 1})],
            ),
            (
                json!({"tags": {"$elemMatch": {"$in": ["a", "b"]}}, "$not": {"tags": {"$size": 1}}}),
                vec![json!({"tags": ["x", "b"]})],
                vec![
                    json!({"tags": ["a"]}),
                    json!({"tags": ["x", "y"]}),
                    json!({}),
                ],
            ),
            (
                json!({"$not": {"x": {"$elemMatch": {"$eq": 1}}}}),
                vec![json!({"x": [2]}), json!({"x": []}), json!({"x": "1"})],
                vec![json!({"x": [1]}), json!({})],
            ),
        ];
        for (selector, yes, no) in cases {
            let s = sel(selector.clone());
            for doc in yes {
                assert!(s.matches(&doc), "{selector} should match {doc}");
            }
            for doc in no {
                assert!(!s.matches(&doc), "{selector} should not match {doc}");
            }
        }
    }

    #[test]
    fn nested_objects_and_paths() {
        let docs = [
            json!({}),
            json!({"x": {}}),
            json!({"x": {"a": 1}}),
            json!({"x": {"a": 1, "b": 2}}),
            json!({"x": []}),
        ];
        // (selector, whether each of `docs` matches)
        let cases: Vec<(Value, [bool; 5])> = vec![
            (json!({}), [true; 5]),
            (json!({"x": {}}), [false, true, false, false, false]),
            (json!({"$not": {"x": {}}}), [false, false, true, true, true]),
            (json!({"x": {"a": 1}}), [false, false, true, true, false]),
            (
                json!({"x": {"a": 1, "b": 2}}),
                [false, false, false, true, false],
            ),
            (json!({"x.b": 2}), [false, false, false, true, false]),
            (
                json!({"x": {"$eq": {"a": 1}}}),
                [false, false, true, false, false],
            ),
            (
                json!({"x.a": {"$exists": false}}),
                [true, true, false, false, false],
            ),
        ];
        for (selector, want) in cases {
            let s = sel(selector.clone());
            for (doc, want) in docs.iter().zip(want) {
                assert_eq!(s.matches(doc), want, "{selector} on {doc}");
            }
        }

        let doc = json!({
            "a": {"b": {"c": 1}},
            "a.b": {"c": 2},
            "arr": [{"n": 1}, {"n": 2}, [10, 20]],
            "s": "str",
            "we\\ird": 3
        });
        // (selector, matches)
        let cases: Vec<(Value, bool)> = vec![
            (json!({"a.b.c": 1}), true),
            (json!({"a": {"b.c": 1}}), true),
            (json!({"a": {"b": {"c": 1}}}), true),
            (json!({"a\\.b.c": 2}), true),
            (json!({"a\\.b": {"c": 2}}), true),
            (json!({"a\\.b.c": 1}), false),
            (json!({"arr.0.n": 1}), true),
            (json!({"arr.1.n": 2}), true),
            (json!({"arr.2.1": 20}), true),
            (json!({"arr.+1.n": 2}), true),
            (json!({"arr.-1.n": {"$exists": false}}), false),
            (json!({"arr.3": {"$exists": false}}), false),
            (json!({"arr.n": {"$exists": false}}), false),
            (json!({"s.length": {"$exists": false}}), false),
            (json!({"s.x.y": {"$exists": false}}), false),
            (json!({"a.zz.c": {"$exists": false}}), true),
            (json!({"we\\\\ird": 3}), false),
            (json!({"weird": 3}), false),
            (json!({"we\\ird": 3}), false),
        ];
        for (selector, want) in cases {
            assert_eq!(sel(selector.clone()).matches(&doc), want, "{selector}");
        }
        // The backslash-free spelling of a key holding a backslash: the
        // field "we\\ird" cannot be reached (escapes are removed).
        assert_eq!(parse_path("a\\.b.c").unwrap(), ["a.b", "c"]);
        assert_eq!(parse_path("a\\\\.b").unwrap(), ["a.b"]);
        assert_eq!(parse_path("x.0.y").unwrap(), ["x", "0", "y"]);
    }

    #[test]
    fn id_uses_raw_collation() {
        let doc = json!({"_id": "B", "name": "B"});
        // ICU: "a" < "B"; raw (bytes): "B" < "a".
        assert!(sel(json!({"name": {"$gt": "a"}})).matches(&doc));
        assert!(!sel(json!({"_id": {"$gt": "a"}})).matches(&doc));
        assert!(sel(json!({"_id": {"$lt": "a"}})).matches(&doc));
        // Raw type order: numbers < strings, as in CouchDB's cmp_raw.
        assert!(sel(json!({"_id": {"$gt": 5}})).matches(&doc));
        assert!(sel(json!({"_id": {"$lt": {}}})).matches(&json!({"_id": 1})));
        assert!(!sel(json!({"_id": {"$lt": {}}})).matches(&doc));
        assert!(sel(json!({"_id": "B", "_rev": {"$exists": false}})).matches(&doc));
    }

    #[test]
    fn normalisation() {
        // (selector, normalised form)
        let cases: Vec<(Value, Value)> = vec![
            (json!({}), json!({})),
            (json!({"a": 1}), json!({"a": {"$eq": 1}})),
            (json!({"a": {}}), json!({"a": {"$eq": {}}})),
            (
                json!({"a": [1, {"$gt": 1}]}),
                json!({"a": {"$eq": [1, {"$gt": 1}]}}),
            ),
            (json!({"x": {"a": 1}}), json!({"x.a": {"$eq": 1}})),
            (
                json!({"x": {"a": 1, "b": 2}}),
                json!({"$and": [{"x.a": {"$eq": 1}}, {"x.b": {"$eq": 2}}]}),
            ),
            (
                json!({"foo": {"$and": [{"$gt": 5}, {"$lt": 10}]}}),
                json!({"$and": [{"foo": {"$gt": 5}}, {"foo": {"$lt": 10}}]}),
            ),
            (
                json!({"$not": {"foo": {"$gt": 10}}}),
                json!({"foo": {"$lte": 10}}),
            ),
            (
                json!({"$not": {"$and": [{"foo": {"$gt": 10}}, {"foo": {"$lt": 5}}]}}),
                json!({"$or": [{"foo": {"$lte": 10}}, {"foo": {"$gte": 5}}]}),
            ),
            (
                json!({"$nor": [{"a": {"$in": [1]}}, {"b": {"$exists": true}}]}),
                json!({"$and": [{"a": {"$nin": [1]}}, {"b": {"$exists": false}}]}),
            ),
            (
                json!({"a": {"$not": {"$regex": "^x"}}}),
                json!({"a": {"$not": {"$regex": "^x"}}}),
            ),
            (
                json!({"a": {"$not": {"$not": {"$size": 2}}}}),
                json!({"a": {"$size": 2}}),
            ),
            (
                json!({"a": {"$elemMatch": {"$gte": 80, "$lt": 85}}}),
                json!({"a": {"$elemMatch": {"$and": [{"": {"$gte": 80}}, {"": {"$lt": 85}}]}}}),
            ),
            (
                json!({"a": {"$elemMatch": {"b": {"$not": {"$eq": 1}}}}}),
                json!({"a": {"$elemMatch": {"b": {"$ne": 1}}}}),
            ),
            (
                json!({"$not": {"a": {"$allMatch": {"$type": "number"}}}}),
                json!({"a": {"$not": {"$allMatch": {"": {"$type": "number"}}}}}),
            ),
            (
                json!({"x": {"$mod": [3, 1], "$all": [1]}}),
                json!({"$and": [{"x": {"$mod": [3, 1]}}, {"x": {"$all": [1]}}]}),
            ),
        ];
        for (selector, want) in cases {
            assert_eq!(sel(selector.clone()).to_json(), want, "{selector}");
        }
        assert!(sel(json!({})).is_empty());
        assert!(!sel(json!({"$and": []})).is_empty());
    }

    #[test]
    fn validation_errors() {
        // (selector, error, reason)
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"a": {"$foo": 1}}),
                "invalid_operator",
                "Invalid operator: $foo",
            ),
            (
                json!({"$foo": [1]}),
                "invalid_operator",
                "Invalid operator: $foo",
            ),
            (
                json!({"a": {"$elemMatch": {"$bar": 1}}}),
                "invalid_operator",
                "Invalid operator: $bar",
            ),
            (
                json!({"a": {"$where": "x"}}),
                "not_supported",
                "Unsupported operator: $where",
            ),
            (
                json!({"a": {"$text": "x"}}),
                "bad_arg",
                "Bad argument for operator $text: \"x\"",
            ),
            (
                json!({"a": {"$near": [0, 0]}}),
                "not_supported",
                "Unsupported operator: $near",
            ),
            (
                json!({"a": {"$in": 5}}),
                "bad_arg",
                "Bad argument for operator $in: 5",
            ),
            (
                json!({"a": {"$nin": {"x": 1}}}),
                "bad_arg",
                "Bad argument for operator $nin: {\"x\":1}",
            ),
            (
                json!({"a": {"$all": "x"}}),
                "bad_arg",
                "Bad argument for operator $all: \"x\"",
            ),
            (
                json!({"a": {"$size": 1.5}}),
                "bad_arg",
                "Bad argument for operator $size: 1.5",
            ),
            (
                json!({"a": {"$size": -1}}),
                "bad_arg",
                "Bad argument for operator $size: -1",
            ),
            (
                json!({"a": {"$size": "3"}}),
                "bad_arg",
                "Bad argument for operator $size: \"3\"",
            ),
            (
                json!({"a": {"$mod": [2]}}),
                "bad_arg",
                "Bad argument for operator $mod: [2]",
            ),
            (
                json!({"a": {"$mod": [0, 1]}}),
                "bad_arg",
                "Bad argument for operator $mod: [0,1]",
            ),
            (
                json!({"a": {"$mod": [2.5, 1]}}),
                "bad_arg",
                "Bad argument for operator $mod: [2.5,1]",
            ),
            (
                json!({"a": {"$mod": [2, 1, 0]}}),
                "bad_arg",
                "Bad argument for operator $mod: [2,1,0]",
            ),
            (
                json!({"a": {"$mod": 2}}),
                "bad_arg",
                "Bad argument for operator $mod: 2",
            ),
            (
                json!({"a": {"$regex": 1}}),
                "bad_arg",
                "Bad argument for operator $regex: 1",
            ),
            (
                json!({"a": {"$regex": "("}}),
                "bad_arg",
                "Bad argument for operator $regex: \"(\"",
            ),
            (
                json!({"a": {"$regex": "(?=x)"}}),
                "bad_arg",
                "Bad argument for operator $regex: \"(?=x)\"",
            ),
            (
                json!({"a": {"$regex": "(a)\\1"}}),
                "bad_arg",
                "Bad argument for operator $regex: \"(a)\\\\1\"",
            ),
            (
                json!({"a": {"$exists": "true"}}),
                "bad_arg",
                "Bad argument for operator $exists: \"true\"",
            ),
            (
                json!({"a": {"$exists": 1}}),
                "bad_arg",
                "Bad argument for operator $exists: 1",
            ),
            (
                json!({"a": {"$type": "int"}}),
                "bad_arg",
                "Bad argument for operator $type: \"int\"",
            ),
            (
                json!({"a": {"$type": 1}}),
                "bad_arg",
                "Bad argument for operator $type: 1",
            ),
            (
                json!({"a": {"$beginsWith": 1}}),
                "bad_arg",
                "Bad argument for operator $beginsWith: 1",
            ),
            (
                json!({"$and": {"a": 1}}),
                "bad_arg",
                "Bad argument for operator $and: {\"a\":1}",
            ),
            (
                json!({"$or": 1}),
                "bad_arg",
                "Bad argument for operator $or: 1",
            ),
            (
                json!({"$nor": "a"}),
                "bad_arg",
                "Bad argument for operator $nor: \"a\"",
            ),
            (
                json!({"a": {"$not": 1}}),
                "bad_arg",
                "Bad argument for operator $not: 1",
            ),
            (
                json!({"$not": [{"a": 1}]}),
                "bad_arg",
                "Bad argument for operator $not: [{\"a\":1}]",
            ),
            (
                json!({"a": {"$elemMatch": [1]}}),
                "bad_arg",
                "Bad argument for operator $elemMatch: [1]",
            ),
            (
                json!({"a": {"$allMatch": 1}}),
                "bad_arg",
                "Bad argument for operator $allMatch: 1",
            ),
            (
                json!({"a": {"$keyMapMatch": "k"}}),
                "bad_arg",
                "Bad argument for operator $keyMapMatch: \"k\"",
            ),
            (
                json!({"$gt": 1}),
                "invalid_selector",
                "One or more conditions is missing a field name.",
            ),
            (
                json!({"$and": [5]}),
                "invalid_selector",
                "One or more conditions is missing a field name.",
            ),
            (
                json!({"$or": [{}]}),
                "invalid_selector",
                "One or more conditions is missing a field name.",
            ),
            (
                json!({"": 1}),
                "invalid_selector",
                "One or more conditions is missing a field name.",
            ),
            (
                json!({"a..b": 1}),
                "bad_request",
                "Invalid field name: a..b",
            ),
            (json!({"a.": 1}), "bad_request", "Invalid field name: a."),
            (
                json!({"a": {"": 1}}),
                "bad_request",
                "Invalid field name: a.",
            ),
            (
                json!([{"a": 1}]),
                "invalid_selector_json",
                "Selector must be a JSON object, not: [{\"a\":1}]",
            ),
            (
                json!("a"),
                "invalid_selector_json",
                "Selector must be a JSON object, not: \"a\"",
            ),
        ];
        for (selector, error, reason) in cases {
            let err = Selector::parse(&selector).expect_err(&selector.to_string());
            assert_eq!(
                (err.status, err.error.as_str(), err.reason.as_str()),
                (400, error, reason),
                "{selector}"
            );
        }
    }

    #[test]
    fn valid_edge_cases_parse() {
        for selector in [
            json!({"a": {"$mod": [-3, 0]}}),
            json!({"a": {"$size": 0}}),
            json!({"a": {"$in": []}}),
            json!({"a": {"$all": []}}),
            json!({"a": {"$regex": ""}}),
            json!({"a": {"$eq": {"$gt": 1}}}),
            json!({"a": {"$elemMatch": {}}}),
            json!({"a": {"$elemMatch": {"$gt": 1}}}),
            json!({"a": {"$not": {}}}),
            json!({"$and": [], "$or": [], "$nor": []}),
            json!({"": {"a": 1}}),
        ] {
            assert!(Selector::parse(&selector).is_ok(), "{selector}");
        }
        // `{"": {"a": 1}}` is `{"a": 1}`, as in CouchDB's path joining.
        assert_eq!(sel(json!({"": {"a": 1}})).fields(), ["a"]);
    }

    #[test]
    fn fields_lists_constrained_fields() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({}), vec![]),
            (json!({"field": 1}), vec!["field"]),
            (json!({"field1": {"field2": 1}}), vec!["field1.field2"]),
            (json!({"$and": []}), vec![]),
            (json!({"$and": [{"f1": 1}, {"f2": 1}]}), vec!["f1", "f2"]),
            (
                json!({"$or": [{"f1": 1}, {"f2": 1}, {"f1": 2}]}),
                vec!["f1", "f2"],
            ),
            (json!({"$nor": [{"f1": 1}, {"f2": 1}]}), vec!["f1", "f2"]),
            (
                json!({"a": {"$elemMatch": {"b": 1}}, "c\\.d": 1}),
                vec!["a", "c\\.d"],
            ),
        ];
        for (selector, want) in cases {
            assert_eq!(sel(selector.clone()).fields(), want, "{selector}");
        }
    }

    #[test]
    fn field_ranges_for_the_planner() {
        use Bound::{Excluded, Included, Unbounded};
        type Expected<'a> = Vec<(&'a str, Bound<Value>, Bound<Value>)>;
        let cases: Vec<(Value, Expected)> = vec![
            (json!({}), vec![]),
            (
                json!({"a": 1}),
                vec![("a", Included(json!(1)), Included(json!(1)))],
            ),
            (
                json!({"a": {"$gt": 1, "$lte": 5}, "b": {"$lt": "x"}}),
                vec![
                    ("a", Excluded(json!(1)), Included(json!(5))),
                    ("b", Unbounded, Excluded(json!("x"))),
                ],
            ),
            (
                json!({"a": {"$gte": 1, "$gt": 1, "$lt": 9}, "$and": [{"a": {"$gte": 3}}, {"a": {"$lte": 9}}]}),
                vec![("a", Included(json!(3)), Excluded(json!(9)))],
            ),
            // On equal bounds the exclusive one wins, whatever the order.
            (
                json!({"a": {"$gte": 2, "$gt": 2, "$lt": 4, "$lte": 4}}),
                vec![("a", Excluded(json!(2)), Excluded(json!(4)))],
            ),
            (
                json!({"a": {"$gt": 2.0, "$gte": 2, "$lte": 4, "$lt": 4}}),
                vec![("a", Excluded(json!(2.0)), Excluded(json!(4)))],
            ),
            // Only top-level conjuncts: $or branches and other operators
            // constrain nothing here.
            (
                json!({"$or": [{"a": 1}, {"a": 2}], "b": {"$in": [1]}, "c": {"$ne": 1}, "d": {"$exists": true}}),
                vec![],
            ),
            // `$not $lt` is `$gte`.
            (
                json!({"$not": {"a": {"$lt": 3}}}),
                vec![("a", Included(json!(3)), Unbounded)],
            ),
            (
                json!({"x": {"y": {"$gte": "m"}}, "z": {"$elemMatch": {"$gt": 1}}}),
                vec![("x.y", Included(json!("m")), Unbounded)],
            ),
        ];
        for (selector, want) in cases {
            let got = sel(selector.clone()).field_ranges();
            let got: Vec<_> = got
                .iter()
                .map(|(f, r)| (f.as_str(), r.lower.clone(), r.upper.clone()))
                .collect();
            assert_eq!(got, want, "{selector}");
        }

        let ranges = sel(json!({"a": {"$gt": 5, "$lt": 3}, "b": 2, "c": {"$gt": 1, "$lte": 1}}))
            .field_ranges();
        assert!(ranges[0].1.is_empty());
        assert!(!ranges[1].1.is_empty());
        assert_eq!(ranges[1].1.point(), Some(&json!(2)));
        assert!(ranges[2].1.is_empty());
        assert_eq!(ranges[0].1.point(), None);

        // Ranges collate like the matcher: across types, and raw for _id.
        let r = &sel(json!({"a": {"$gt": 5}})).field_ranges()[0].1;
        assert!(r.contains(&json!("text")) && r.contains(&json!(6)) && !r.contains(&json!(5)));
        let r = &sel(json!({"_id": {"$gte": "B", "$lt": "a"}})).field_ranges()[0].1;
        assert!(r.raw && r.contains(&json!("Z")) && !r.contains(&json!("b")));
        assert!(!r.is_empty());
        let r = &sel(json!({"name": {"$gte": "B", "$lt": "a"}})).field_ranges()[0].1;
        assert!(!r.raw && r.is_empty());
    }
}
