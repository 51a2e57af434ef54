//! Mango `text` indexes, as CouchDB's `mango_idx_text` defines them and
//! `mango_native_proc` fills them, served by the same search engine as
//! design-document `_search` indexes.
//!
//! A document becomes one field per leaf value, named by its path and
//! type: `name.first:string`, `age:number`, `flag:boolean`, `x:null`;
//! array elements add a `[]` segment (`tags.[]:string`) and, with
//! `index_array_lengths`, the array's length is `tags:length` (CouchDB's
//! `$fieldnames` field, for `$exists`, is not kept: `$exists` is checked
//! on the documents). Every
//! string also goes to `$default` (through the default field's analyzer,
//! `standard` unless said otherwise), which `$text` searches; field values
//! themselves are whole terms (the `keyword` analyzer by default). An
//! index with `fields` indexes only those (path, type) pairs; a `selector`
//! or `partial_filter_selector` limits it to the documents it matches.
//!
//! A selector becomes a Lucene query over those fields ([`query`]) that
//! matches at least the documents the selector does: what the fields
//! cannot express (`$regex`, `$ne`, `$elemMatch`, ...) is left out rather
//! than guessed, and `_find` checks each document against the whole
//! selector anyway, as CouchDB's text cursor does.

use super::analyzer::Analyzer;
use crate::error::{CouchError, CouchResult};
use crate::selector::{Cond, Node, Selector};
use serde_json::{json, Map, Value};

fn invalid(reason: impl Into<String>) -> CouchError {
    CouchError::new(400, "invalid_index", reason)
}

/// A text index's definition (`def` in `GET /_index`).
#[derive(Debug, Clone)]
pub struct TextDef {
    /// `(path, type)` pairs; `None` indexes every field.
    pub fields: Option<Vec<(String, String)>>,
    pub default_field: bool,
    pub default_analyzer: Value,
    pub default_field_analyzer: Value,
    pub selector: Option<Value>,
    pub partial: Option<Value>,
    pub index_array_lengths: bool,
    filters: Vec<Selector>,
}

const TYPES: [&str; 3] = ["string", "number", "boolean"];

impl TextDef {
    /// The `index` member of a `POST /_index` with `"type": "text"`.
    pub fn from_request(index: &Map<String, Value>) -> CouchResult<TextDef> {
        let fields = match index.get("fields") {
            None => None,
            Some(Value::String(s)) if s == "all_fields" => None,
            Some(Value::Array(list)) if list.is_empty() => None,
            Some(Value::Array(list)) => Some(
                list.iter()
                    .map(|f| match f {
                        Value::Object(o) => match (o.get("name"), o.get("type")) {
                            (Some(Value::String(n)), Some(Value::String(t))) => {
                                Ok((n.clone(), t.clone()))
                            }
                            (Some(Value::String(n)), None) => Ok((n.clone(), "string".into())),
                            _ if o.len() == 1 => {
                                let (n, t) = o.iter().next().expect("one");
                                Ok((n.clone(), t.as_str().unwrap_or("string").to_string()))
                            }
                            _ => Err(invalid(format!("Invalid text index field: {f}"))),
                        },
                        Value::String(n) => Ok((n.clone(), "string".into())),
                        _ => Err(invalid(format!("Invalid text index field: {f}"))),
                    })
                    .collect::<CouchResult<Vec<_>>>()?,
            ),
            Some(other) => return Err(invalid(format!("Invalid text index fields: {other}"))),
        };
        if let Some(f) = &fields {
            if let Some((n, t)) = f.iter().find(|(_, t)| !TYPES.contains(&t.as_str())) {
                return Err(invalid(format!(
                    "Invalid type `{t}` for field `{n}`: use string, number or boolean"
                )));
            }
        }
        let (default_field, default_field_analyzer) = match index.get("default_field") {
            None => (true, json!("standard")),
            Some(Value::Bool(b)) => (*b, json!("standard")),
            Some(Value::Object(o)) => (
                o.get("enabled").and_then(Value::as_bool).unwrap_or(true),
                o.get("analyzer").cloned().unwrap_or(json!("standard")),
            ),
            Some(other) => return Err(invalid(format!("Invalid default_field: {other}"))),
        };
        let def = TextDef::new(
            fields,
            default_field,
            index.get("analyzer").cloned().unwrap_or(json!("keyword")),
            default_field_analyzer,
            index,
        )?;
        def.analyzer()?;
        Ok(def)
    }

    /// A definition from its parts; `index` gives the members requests
    /// and design documents spell alike (`selector`,
    /// `partial_filter_selector`, `index_array_lengths`).
    fn new(
        fields: Option<Vec<(String, String)>>,
        default_field: bool,
        default_analyzer: Value,
        default_field_analyzer: Value,
        index: &Map<String, Value>,
    ) -> CouchResult<TextDef> {
        let selector = index.get("selector").cloned();
        let partial = index.get("partial_filter_selector").cloned();
        let index_array_lengths = index
            .get("index_array_lengths")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let keep = |v: Option<Value>| v.filter(|s| s.as_object().is_some_and(|o| !o.is_empty()));
        let (selector, partial) = (keep(selector), keep(partial));
        let filters = selector
            .iter()
            .chain(partial.iter())
            .map(Selector::parse)
            .collect::<CouchResult<Vec<_>>>()?;
        Ok(TextDef {
            fields,
            default_field,
            default_analyzer,
            default_field_analyzer,
            selector,
            partial,
            index_array_lengths,
            filters,
        })
    }

    /// The stored `index` member of a design document's `indexes` entry.
    pub fn from_stored(
        index: &Map<String, Value>,
        analyzer: Option<&Value>,
    ) -> CouchResult<TextDef> {
        let fields = match index.get("fields") {
            Some(Value::Array(list)) => Some(
                list.iter()
                    .filter_map(|f| {
                        let (n, t) = f.as_object()?.iter().next()?;
                        Some((n.clone(), t.as_str()?.to_string()))
                    })
                    .collect(),
            ),
            _ => None,
        };
        let default = index.get("default_field").and_then(Value::as_object);
        let default_field_analyzer = analyzer
            .and_then(|a| a.pointer("/fields/$default"))
            .cloned()
            .or_else(|| default.and_then(|d| d.get("analyzer")).cloned())
            .unwrap_or(json!("standard"));
        TextDef::new(
            fields,
            default.is_none_or(|d| d.get("enabled").and_then(Value::as_bool).unwrap_or(true)),
            index
                .get("default_analyzer")
                .cloned()
                .unwrap_or(json!("keyword")),
            default_field_analyzer,
            index,
        )
    }

    /// `def` as `GET /_index` lists it and the design document stores it.
    pub fn to_json(&self) -> Value {
        let fields = match &self.fields {
            None => json!("all_fields"),
            Some(f) => json!(f
                .iter()
                .map(|(n, t)| json!({ n.clone(): t }))
                .collect::<Vec<_>>()),
        };
        let default_field = if self.default_field {
            json!({"enabled": true, "analyzer": self.default_field_analyzer})
        } else {
            json!({"enabled": false})
        };
        json!({
            "default_analyzer": self.default_analyzer,
            "default_field": default_field,
            "selector": self.selector.clone().unwrap_or(json!({})),
            "partial_filter_selector": self.partial.clone().unwrap_or(json!({})),
            "fields": fields,
            "index_array_lengths": self.index_array_lengths,
        })
    }

    /// The analyzer as the design document stores it: field values whole
    /// (unless said otherwise), `$default` through its own.
    pub fn analyzer_json(&self) -> Value {
        json!({
            "name": "perfield",
            "default": self.default_analyzer,
            "fields": {"$default": self.default_field_analyzer},
        })
    }

    pub fn analyzer(&self) -> CouchResult<Analyzer> {
        Analyzer::from_json(Some(&self.analyzer_json()))
    }

    /// What the index holds of `doc` (with `_id`), as the `(field, value,
    /// options)` an index function gives; `None` when its selector
    /// leaves the document out.
    pub fn entries(&self, doc: &Value) -> Option<Vec<(String, Value, Value)>> {
        if self.filters.iter().any(|s| !s.matches(doc)) {
            return None;
        }
        let mut out = Vec::new();
        if let Value::Object(m) = doc {
            for (k, v) in m {
                if k == "_rev" {
                    continue;
                }
                self.walk(&escape(k), v, &mut out);
            }
        }
        Some(out)
    }

    fn wanted(&self, path: &str, ty: &str) -> bool {
        self.fields
            .as_ref()
            .is_none_or(|f| f.iter().any(|(n, t)| n == path && t == ty))
    }

    fn walk(&self, path: &str, v: &Value, out: &mut Vec<(String, Value, Value)>) {
        let mut leaf = |ty: &str, value: Value| {
            if !self.wanted(path, ty) {
                return;
            }
            if self.default_field {
                if let Value::String(s) = &value {
                    out.push(("$default".into(), json!(s), json!({})));
                }
            }
            out.push((format!("{path}:{ty}"), value, json!({})));
        };
        match v {
            Value::String(s) => leaf("string", json!(s)),
            Value::Number(_) => leaf("number", v.clone()),
            Value::Bool(b) => leaf("boolean", json!(b.to_string())),
            Value::Null => leaf("null", json!("true")),
            Value::Array(items) => {
                if self.index_array_lengths && self.wanted(path, "number") {
                    out.push((format!("{path}:length"), json!(items.len()), json!({})));
                }
                let inner = format!("{path}.[]");
                for i in items {
                    self.walk(&inner, i, out);
                }
            }
            Value::Object(m) => {
                for (k, v) in m {
                    self.walk(&format!("{path}.{}", escape(k)), v, out);
                }
            }
        }
    }

    /// Whether the index can answer `selector` (CouchDB's `is_usable`):
    /// it indexes every field the selector names, and it is not empty.
    pub fn usable(&self, selector: &Selector) -> bool {
        if selector.is_empty() {
            return false;
        }
        match &self.fields {
            None => true,
            Some(f) => selector.fields().iter().all(|name| {
                name == "$default" && self.default_field || f.iter().any(|(n, _)| n == name)
            }),
        }
    }
}

/// A text index of a design document.
#[derive(Debug, Clone)]
pub struct TextIndex {
    /// `_design/...`.
    pub ddoc: String,
    pub name: String,
    pub def: TextDef,
    pub partitioned: bool,
}

impl TextIndex {
    /// The text indexes of a `"language": "query"` design document, by
    /// name (those that do not parse are skipped).
    pub fn from_design_doc(
        id: &str,
        body: &Map<String, Value>,
        db_partitioned: bool,
    ) -> Vec<TextIndex> {
        if body.get("language").and_then(Value::as_str) != Some("query") {
            return Vec::new();
        }
        let Some(Value::Object(indexes)) = body.get("indexes") else {
            return Vec::new();
        };
        let partitioned = db_partitioned && !crate::view::design_says_global(body);
        indexes
            .iter()
            .filter_map(|(name, entry)| {
                let index = entry.get("index")?.as_object()?;
                Some(TextIndex {
                    ddoc: id.to_string(),
                    name: name.clone(),
                    def: TextDef::from_stored(index, entry.get("analyzer")).ok()?,
                    partitioned,
                })
            })
            .collect()
    }

    /// As `GET /db/_index` lists it.
    pub fn to_json(&self) -> Value {
        json!({
            "ddoc": self.ddoc,
            "name": self.name,
            "type": "text",
            "partitioned": self.partitioned,
            "def": self.def.to_json(),
        })
    }
}

impl TextDef {
    /// The entry of the design document's `indexes` that stores it.
    pub fn stored_json(&self) -> Value {
        json!({"index": self.to_json(), "analyzer": self.analyzer_json()})
    }
}

/// A key as a path segment: its dots escaped, as selectors write them.
fn escape(k: &str) -> String {
    k.replace('.', "\\.")
}

/// Lucene's special characters escaped in a field name or term.
fn lucene(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "+-&|!(){}[]^\"~*?:\\/ ".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A value as a query term of its typed field, or `None` for what the
/// index holds no term for (arrays, objects).
fn term(path: &str, v: &Value) -> Option<String> {
    let (ty, text) = match v {
        Value::String(s) => (
            "string",
            format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        ),
        Value::Number(n) => ("number", n.to_string()),
        Value::Bool(b) => ("boolean", b.to_string()),
        Value::Null => ("null", "true".into()),
        _ => return None,
    };
    Some(format!("{}:{text}", lucene(&format!("{path}:{ty}"))))
}

/// A range of a typed field: numbers or strings only.
fn range(path: &str, v: &Value, lower: bool, inclusive: bool) -> Option<String> {
    let (ty, bound) = match v {
        Value::Number(n) => ("number", n.to_string()),
        Value::String(s) => ("string", lucene(s)),
        _ => return None,
    };
    let open = if ty == "number" { "Infinity" } else { "*" };
    let (lo, hi) = if lower {
        (bound, open.to_string())
    } else {
        (
            if ty == "number" {
                "-Infinity".into()
            } else {
                "*".into()
            },
            bound,
        )
    };
    let (l, r) = match (lower, inclusive) {
        (true, true) => ("[", "]"),
        (true, false) => ("{", "]"),
        (false, true) => ("[", "]"),
        (false, false) => ("[", "}"),
    };
    Some(format!(
        "{}:{l}{lo} TO {hi}{r}",
        lucene(&format!("{path}:{ty}"))
    ))
}

/// The Lucene query of `selector` (`*:*` where nothing narrows it).
pub fn query(selector: &Selector) -> String {
    selector
        .root()
        .and_then(node)
        .unwrap_or_else(|| "*:*".to_string())
}

/// A node's query, or `None` when the index cannot narrow it.
fn node(n: &Node) -> Option<String> {
    match n {
        Node::And(kids) => {
            let parts: Vec<String> = kids.iter().filter_map(node).collect();
            match parts.len() {
                0 => None,
                1 => parts.into_iter().next(),
                _ => Some(format!("({})", parts.join(" AND "))),
            }
        }
        Node::Or(kids) => {
            let parts: Option<Vec<String>> = kids.iter().map(node).collect();
            match parts?.as_slice() {
                [] => None,
                [one] => Some(one.clone()),
                many => Some(format!("({})", many.join(" OR "))),
            }
        }
        Node::Field(f) => {
            let path = &f.field;
            match &f.cond {
                Cond::Text(t) => Some(format!("($default:({t}))")),
                Cond::Eq(v) => term(path, v),
                Cond::In(vs) => {
                    // `$in` also matches an array holding one of them.
                    let each: Option<Vec<String>> = vs
                        .iter()
                        .map(|v| {
                            Some(format!(
                                "{} OR {}",
                                term(path, v)?,
                                term(&format!("{path}.[]"), v)?
                            ))
                        })
                        .collect();
                    let each = each?;
                    (!each.is_empty()).then(|| format!("({})", each.join(" OR ")))
                }
                Cond::Gt(v) => range(path, v, true, false),
                Cond::Gte(v) => range(path, v, true, true),
                Cond::Lt(v) => range(path, v, false, false),
                Cond::Lte(v) => range(path, v, false, true),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(index: Value) -> TextDef {
        TextDef::from_request(index.as_object().unwrap()).unwrap()
    }

    #[test]
    fn documents_become_typed_fields() {
        let d = def(json!({}));
        let doc = json!({"_id": "x", "_rev": "1-a", "name": {"first": "Ann Lee"}, "age": 30,
            "ok": true, "tags": ["a", "b"], "a.b": null});
        let got = d.entries(&doc).unwrap();
        let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        for want in [
            "_id:string",
            "name.first:string",
            "age:number",
            "ok:boolean",
            "tags:length",
            "tags.[]:string",
            "a\\.b:null",
            "$default",
        ] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        assert!(!names.iter().any(|n| n.starts_with("_rev")));
        let only =
            def(json!({"fields": [{"name": "age", "type": "number"}], "default_field": false}));
        let got = only.entries(&doc).unwrap();
        assert!(got.iter().all(|(n, _, _)| n == "age:number"), "{got:?}");
        let partial = def(json!({"partial_filter_selector": {"age": {"$gt": 40}}}));
        assert!(partial.entries(&doc).is_none());
        assert!(TextDef::from_request(
            json!({"fields": [{"name": "a", "type": "date"}]})
                .as_object()
                .unwrap()
        )
        .is_err());
        // Stored and read back, a definition is the same.
        let back = TextDef::from_stored(
            only.to_json().as_object().unwrap(),
            Some(&only.analyzer_json()),
        )
        .unwrap();
        assert_eq!(back.to_json(), only.to_json());
    }

    #[test]
    fn selectors_become_queries_that_cover_them() {
        let q = |s: Value| query(&Selector::parse(&s).unwrap());
        assert_eq!(q(json!({"$text": "bond"})), "($default:(bond))");
        assert_eq!(q(json!({"name": "Ann Lee"})), "name\\:string:\"Ann Lee\"");
        assert_eq!(
            q(json!({"age": {"$gte": 30}})),
            "age\\:number:[30 TO Infinity]"
        );
        assert_eq!(
            q(json!({"age": {"$lt": 30}})),
            "age\\:number:[-Infinity TO 30}"
        );
        assert_eq!(
            q(json!({"$text": "bond", "year": 1962})),
            "(($default:(bond)) AND year\\:number:1962)"
        );
        assert_eq!(q(json!({"a": {"$regex": "x"}})), "*:*");
        assert_eq!(q(json!({"$or": [{"a": 1}, {"b": {"$regex": "x"}}]})), "*:*");
        assert_eq!(
            q(json!({"a": {"$in": [1]}})),
            "(a\\:number:1 OR a.\\[\\]\\:number:1)"
        );
        // Every query parses.
        for s in [
            json!({"name": "a \"quoted\" b\\c"}),
            json!({"x.y": {"$gt": "m"}}),
        ] {
            super::super::query::parse(&q(s)).unwrap();
        }
    }
}
