//! What a search index keeps of one document, from the fields its index
//! function gave: the FTS5 text of its terms (each a [`plan::token`]),
//! and its field values for ranges, sorting, stored fields, facets and
//! highlights.
//!
//! Options follow Clouseau: `index` (true, `"analyzed"`: through the
//! field's analyzer; `"not_analyzed"`: the whole string as one term;
//! false, `"no"`: not searchable), `store` (returned in `fields`),
//! `facet` (for `counts` and `ranges`). Nouveau's `@type` maps onto
//! these: `text` is analyzed, `string` one term, `double` a number,
//! `stored` only stored. Numbers are searched by ranges, never as terms;
//! booleans are the strings `true` and `false`.

use super::analyzer::Analyzer;
use super::plan;
use serde_json::Value;

/// One value of a field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub value: FieldValue,
    pub store: bool,
    pub facet: bool,
}

/// A document as the index holds it.
#[derive(Debug, Default, PartialEq)]
pub struct Indexed {
    /// Its tokens, space-separated, in the order the fields came.
    pub text: String,
    pub fields: Vec<Field>,
}

fn truthy(v: Option<&Value>, default: bool) -> bool {
    match v {
        None | Some(Value::Null) => default,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !matches!(s.as_str(), "no" | "false"),
        Some(_) => true,
    }
}

/// How a field's string is searched.
enum Searched {
    Analyzed,
    Whole,
    Not,
}

impl Indexed {
    pub fn new(entries: Vec<(String, Value, Value)>, analyzer: &Analyzer) -> Indexed {
        let mut out = Indexed::default();
        for (name, value, options) in entries {
            let opt = |k: &str| options.get(k);
            let kind = opt("@type").and_then(Value::as_str);
            let searched = match (kind, opt("index")) {
                (Some("stored"), _) => Searched::Not,
                (Some("string"), _) => Searched::Whole,
                (_, Some(Value::String(s))) if s == "not_analyzed" => Searched::Whole,
                (_, i) if !truthy(i, true) => Searched::Not,
                _ => Searched::Analyzed,
            };
            let store = kind == Some("stored") || truthy(opt("store"), false);
            let facet = truthy(opt("facet"), false);
            let value = match value {
                Value::Number(n) => FieldValue::Number(n.as_f64().unwrap_or(0.0)),
                Value::Bool(b) => FieldValue::Text(b.to_string()),
                Value::String(s) => FieldValue::Text(s),
                _ => continue,
            };
            if let FieldValue::Text(s) = &value {
                let terms = match searched {
                    Searched::Analyzed => analyzer.for_field(&name).terms(s),
                    Searched::Whole => vec![s.clone()],
                    Searched::Not => Vec::new(),
                };
                for t in terms {
                    if !out.text.is_empty() {
                        out.text.push(' ');
                    }
                    out.text.push_str(&plan::token(&name, &t));
                }
            }
            out.fields.push(Field {
                name,
                value,
                store,
                facet,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_become_tokens_and_values() {
        let d = Indexed::new(
            vec![
                ("default".into(), json!("The Quick fox"), json!({})),
                (
                    "id".into(),
                    json!("A-1"),
                    json!({"index": "not_analyzed", "store": true}),
                ),
                ("n".into(), json!(2.5), json!({"facet": true})),
                (
                    "hidden".into(),
                    json!("secret"),
                    json!({"index": false, "store": "yes"}),
                ),
                ("flag".into(), json!(true), json!({})),
                ("t".into(), json!("Big Cat"), json!({"@type": "string"})),
            ],
            &Analyzer::Standard,
        );
        let want: Vec<String> = [
            ("default", "quick"),
            ("default", "fox"),
            ("id", "A-1"),
            ("flag", "true"),
            ("t", "Big Cat"),
        ]
        .iter()
        .map(|(f, t)| plan::token(f, t))
        .collect();
        assert_eq!(d.text, want.join(" "));
        assert_eq!(d.fields.len(), 6);
        assert_eq!(d.fields[2].value, FieldValue::Number(2.5));
        assert!(d.fields[2].facet && !d.fields[2].store);
        assert!(d.fields[3].store && d.fields[1].store && !d.fields[0].store);
    }
}
