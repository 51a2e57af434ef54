//! A search index as a design document defines it: `"indexes": {name:
//! {"index": "function (doc) {...}", "analyzer": ...}}` for `_search`, or
//! `"nouveau": {name: {"index": ..., "default_analyzer": ...,
//! "field_analyzers": {...}}}` for `_nouveau`. Both run on one engine; the
//! kind only picks the design document member and the answer's shape.

use super::analyzer::Analyzer;
use super::mango_text::TextDef;
use crate::error::{CouchError, CouchResult};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Which API an index belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Clouseau's `_search` (design document member `indexes`).
    Search,
    /// `_nouveau` (member `nouveau`).
    Nouveau,
}

impl Kind {
    pub fn member(self) -> &'static str {
        match self {
            Kind::Search => "indexes",
            Kind::Nouveau => "nouveau",
        }
    }
}

/// What turns a document into fields.
#[derive(Debug, Clone)]
pub enum Source {
    /// A JavaScript index function.
    Js(String),
    /// A Mango `text` index (in a `"language": "query"` design document).
    Mango(Box<TextDef>),
}

#[derive(Debug, Clone)]
pub struct SearchDef {
    pub kind: Kind,
    pub source: Source,
    pub analyzer: Analyzer,
    /// The analyzer as written (and a Mango index's definition), which
    /// the signature covers.
    analyzer_json: Value,
}

impl SearchDef {
    /// Index `name` of `ddoc`, or CouchDB's errors: 404 when the design
    /// document has no such index, 400 when it has no `index` function.
    pub fn from_design_doc(ddoc: &Map<String, Value>, kind: Kind, name: &str) -> CouchResult<Self> {
        let Some(def) = ddoc
            .get(kind.member())
            .and_then(|i| i.get(name))
            .and_then(Value::as_object)
        else {
            return Err(CouchError::not_found(format!("{name} not found.")));
        };
        let mango = ddoc.get("language").and_then(Value::as_str) == Some("query");
        let source = match def.get("index") {
            Some(Value::String(f)) => Source::Js(f.clone()),
            Some(Value::Object(o)) if mango && kind == Kind::Search => {
                let text = TextDef::from_stored(o, def.get("analyzer"))?;
                return Ok(SearchDef {
                    kind,
                    analyzer: text.analyzer()?,
                    analyzer_json: json!([text.analyzer_json(), text.to_json()]),
                    source: Source::Mango(Box::new(text)),
                });
            }
            _ => {
                return Err(CouchError::new(
                    400,
                    "invalid_design_doc",
                    format!("index `{name}` must have parameter `index`"),
                ))
            }
        };
        let analyzer_json = match kind {
            Kind::Search => def.get("analyzer").cloned().unwrap_or(json!("standard")),
            // Nouveau's analyzers are a default and a field map: the
            // `perfield` analyzer of the same two.
            Kind::Nouveau => json!({
                "name": "perfield",
                "default": def.get("default_analyzer").cloned().unwrap_or(json!("standard")),
                "fields": def.get("field_analyzers").cloned().unwrap_or(json!({})),
            }),
        };
        Ok(SearchDef {
            kind,
            source,
            analyzer: Analyzer::from_json(Some(&analyzer_json))?,
            analyzer_json,
        })
    }

    /// Every valid index of `kind` in `ddoc`, by name.
    pub fn all(ddoc: &Map<String, Value>, kind: Kind) -> Vec<(String, SearchDef)> {
        let Some(Value::Object(indexes)) = ddoc.get(kind.member()) else {
            return Vec::new();
        };
        indexes
            .keys()
            .filter_map(|n| Some((n.clone(), Self::from_design_doc(ddoc, kind, n).ok()?)))
            .collect()
    }

    /// What the index's contents depend on: its kind, function and
    /// analyzer (not its name, as in CouchDB: renaming keeps the index).
    pub fn signature(&self) -> String {
        let mut h = Sha256::new();
        h.update(match self.kind {
            Kind::Search => b"search\0".as_slice(),
            Kind::Nouveau => b"nouveau\0".as_slice(),
        });
        h.update(self.analyzer_json.to_string().as_bytes());
        h.update([0]);
        if let Source::Js(f) = &self.source {
            h.update(f.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ddoc(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn indexes_resolve_with_couchdb_errors() {
        let d = ddoc(json!({
            "indexes": {
                "a": {"index": "function(doc){}"},
                "b": {"index": "function(doc){}", "analyzer": "english"},
                "bad": {"analyzer": "standard"}
            },
            "nouveau": {"n": {"index": "function(doc){}", "field_analyzers": {"t": "keyword"}}}
        }));
        let a = SearchDef::from_design_doc(&d, Kind::Search, "a").unwrap();
        let b = SearchDef::from_design_doc(&d, Kind::Search, "b").unwrap();
        assert_eq!(a.analyzer, Analyzer::Standard);
        assert_eq!(b.analyzer, Analyzer::English);
        assert_ne!(a.signature(), b.signature());
        let e = SearchDef::from_design_doc(&d, Kind::Search, "zz").unwrap_err();
        assert_eq!((e.status, e.reason.as_str()), (404, "zz not found."));
        let e = SearchDef::from_design_doc(&d, Kind::Search, "bad").unwrap_err();
        assert_eq!((e.status, e.error.as_str()), (400, "invalid_design_doc"));
        let n = SearchDef::from_design_doc(&d, Kind::Nouveau, "n").unwrap();
        assert_eq!(n.analyzer.for_field("t"), &Analyzer::Keyword);
        assert_eq!(n.analyzer.for_field("u"), &Analyzer::Standard);
        assert!(SearchDef::from_design_doc(&d, Kind::Nouveau, "a").is_err());
        assert_eq!(SearchDef::all(&d, Kind::Search).len(), 2);
    }
}
