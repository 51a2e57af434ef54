//! Analyzers: how text becomes the terms a search index holds and a query
//! looks for, as the Lucene analyzers CouchDB's search offers by these
//! names do it.
//!
//! - `standard`: words by Unicode's word boundaries (UAX #29, as Lucene's
//!   `StandardTokenizer`), lower-cased, English stop words dropped.
//! - `english`: `standard`'s words less a trailing `'s`, lower-cased, stop
//!   words dropped, then stemmed (Snowball's English stemmer; Lucene's
//!   `EnglishAnalyzer` uses the older Porter stemmer, which stems a few
//!   words differently).
//! - `simple`: runs of letters, lower-cased.
//! - `whitespace`: runs of anything but whitespace, as written.
//! - `keyword`: the whole text as one term.
//! - `perfield`: `{"name": "perfield", "default": A, "fields": {f: A}}`.
//!
//! Other analyzers CouchDB names (`classic`, `email`, the other languages)
//! are refused rather than served by one of these.

use crate::error::{CouchError, CouchResult};
use serde_json::Value;
use std::collections::BTreeMap;
use unicode_segmentation::UnicodeSegmentation;

/// Lucene's `StopAnalyzer.ENGLISH_STOP_WORDS_SET`.
const STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// Lucene's longest token: longer words are dropped.
const MAX_TOKEN: usize = 255;

#[derive(Debug, Clone, PartialEq)]
pub enum Analyzer {
    Standard,
    English,
    Simple,
    Whitespace,
    Keyword,
    PerField {
        default: Box<Analyzer>,
        fields: BTreeMap<String, Analyzer>,
    },
}

fn unsupported(name: &str) -> CouchError {
    CouchError::new(
        400,
        "bad_request",
        format!(
            "Unsupported analyzer: {name} (Settee has standard, english, simple, whitespace, \
             keyword and perfield)"
        ),
    )
}

impl Analyzer {
    /// An index's or a request's `analyzer`: a name, or an object with
    /// `name` (and for `perfield`, `default` and `fields`). Absent is
    /// `standard`.
    pub fn from_json(v: Option<&Value>) -> CouchResult<Analyzer> {
        let Some(v) = v else {
            return Ok(Analyzer::Standard);
        };
        let (name, obj) = match v {
            Value::String(s) => (s.as_str(), None),
            Value::Object(o) => match o.get("name") {
                Some(Value::String(s)) => (s.as_str(), Some(o)),
                None => ("standard", Some(o)),
                Some(_) => return Err(CouchError::bad_request("analyzer name must be a string")),
            },
            _ => {
                return Err(CouchError::bad_request(
                    "analyzer must be a string or an object",
                ))
            }
        };
        Ok(match name {
            "standard" => Analyzer::Standard,
            "english" => Analyzer::English,
            "simple" => Analyzer::Simple,
            "whitespace" => Analyzer::Whitespace,
            "keyword" => Analyzer::Keyword,
            "perfield" => {
                let default = Analyzer::from_json(obj.and_then(|o| o.get("default")))?;
                let mut fields = BTreeMap::new();
                if let Some(f) = obj.and_then(|o| o.get("fields")) {
                    let f = f.as_object().ok_or_else(|| {
                        CouchError::bad_request("perfield fields must be an object")
                    })?;
                    for (field, a) in f {
                        let a = Analyzer::from_json(Some(a))?;
                        if matches!(a, Analyzer::PerField { .. }) {
                            return Err(CouchError::bad_request("perfield analyzers do not nest"));
                        }
                        fields.insert(field.clone(), a);
                    }
                }
                Analyzer::PerField {
                    default: Box::new(default),
                    fields,
                }
            }
            other => return Err(unsupported(other)),
        })
    }

    /// The analyzer of `field`.
    pub fn for_field(&self, field: &str) -> &Analyzer {
        match self {
            Analyzer::PerField { default, fields } => {
                fields.get(field).unwrap_or(default).for_field(field)
            }
            a => a,
        }
    }

    /// The terms of `text`, in order.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let stop = |w: &String| !STOP_WORDS.contains(&w.as_str());
        let short = |w: &&str| w.len() <= MAX_TOKEN;
        match self {
            Analyzer::Keyword => vec![text.to_string()],
            Analyzer::Whitespace => text
                .split_whitespace()
                .filter(short)
                .map(str::to_string)
                .collect(),
            Analyzer::Simple => text
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| !w.is_empty())
                .filter(short)
                .map(str::to_lowercase)
                .collect(),
            Analyzer::Standard => text
                .unicode_words()
                .filter(short)
                .map(str::to_lowercase)
                .filter(stop)
                .collect(),
            Analyzer::English => {
                let stemmer = rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English);
                text.unicode_words()
                    .filter(short)
                    .map(|w| {
                        let w = w
                            .strip_suffix("'s")
                            .or_else(|| w.strip_suffix("’s"))
                            .or_else(|| w.strip_suffix("'S"))
                            .unwrap_or(w);
                        w.to_lowercase()
                    })
                    .filter(stop)
                    .map(|w| stemmer.stem(&w).into_owned())
                    .collect()
            }
            Analyzer::PerField { default, .. } => default.terms(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn terms(a: &str, text: &str) -> Vec<String> {
        Analyzer::from_json(Some(&json!(a))).unwrap().terms(text)
    }

    #[test]
    fn each_analyzer_as_lucene_splits() {
        let text = "The Quick-Brown fox's 2 jumps, over the LAZY dogs!";
        assert_eq!(
            terms("standard", text),
            ["quick", "brown", "fox's", "2", "jumps", "over", "lazy", "dogs"]
        );
        assert_eq!(
            terms("english", text),
            ["quick", "brown", "fox", "2", "jump", "over", "lazi", "dog"]
        );
        assert_eq!(
            terms("simple", text),
            ["the", "quick", "brown", "fox", "s", "jumps", "over", "the", "lazy", "dogs"]
        );
        assert_eq!(
            terms("whitespace", "The Quick-Brown  fox"),
            ["The", "Quick-Brown", "fox"]
        );
        assert_eq!(terms("keyword", "New York"), ["New York"]);
        assert_eq!(
            terms("standard", "naïve Café 東京"),
            ["naïve", "café", "東", "京"]
        );
    }

    #[test]
    fn perfield_and_refusals() {
        let a = Analyzer::from_json(Some(
            &json!({"name": "perfield", "default": "english", "fields": {"id": "keyword"}}),
        ))
        .unwrap();
        assert_eq!(a.for_field("id"), &Analyzer::Keyword);
        assert_eq!(a.for_field("title"), &Analyzer::English);
        assert_eq!(Analyzer::from_json(None).unwrap(), Analyzer::Standard);
        for bad in [json!("german"), json!(7), json!({"name": "classic"})] {
            let e = Analyzer::from_json(Some(&bad)).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
    }
}
