//! A `_search` (or `_nouveau`) request's parameters, as CouchDB's
//! `dreyfus_httpd` reads them: from the query string (`q` and `bookmark`
//! as text, the rest as JSON) or a POST body's members, with its defaults
//! (`limit` 25, at most 200) and its errors.

use crate::error::{CouchError, CouchResult};
use crate::http::Request;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

fn parse_error(reason: impl Into<String>) -> CouchError {
    CouchError::new(400, "query_parse_error", reason)
}

/// The value a field is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortType {
    Number,
    String,
    /// No `<type>`: numbers first, then strings.
    Any,
}

/// One key of a `sort`.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// `<score>`: relevance, best first.
    Score { descending: bool },
    /// `<doc>`: index order.
    Doc { descending: bool },
    Field {
        name: String,
        kind: SortType,
        descending: bool,
    },
}

impl SortKey {
    /// `"-price<number>"`, `"name"`, `"<score>"`, ...
    pub fn parse(s: &str) -> CouchResult<SortKey> {
        let (descending, rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (name, kind) = match rest.find('<') {
            Some(i) if rest.ends_with('>') => (&rest[..i], &rest[i + 1..rest.len() - 1]),
            _ => (rest, ""),
        };
        Ok(match (name, kind) {
            ("", "score") => SortKey::Score {
                descending: !descending,
            },
            ("", "doc") => SortKey::Doc { descending },
            ("", _) => return Err(parse_error(format!("Invalid sort: {s}"))),
            (_, k) => SortKey::Field {
                name: name.to_string(),
                kind: match k {
                    "number" => SortType::Number,
                    "string" => SortType::String,
                    "" => SortType::Any,
                    _ => {
                        return Err(parse_error(format!(
                            "Unknown sort type `{k}` in {s}: use number or string"
                        )))
                    }
                },
                descending,
            },
        })
    }
}

/// A request's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub q: String,
    pub limit: u64,
    /// Where the previous page ended: its last row's `order`.
    pub after: Option<Vec<Value>>,
    /// Keys to sort by (relevance when empty).
    pub sort: Vec<SortKey>,
    pub include_docs: bool,
    pub include_fields: Option<Vec<String>>,
    pub counts: Option<Vec<String>>,
    /// Per field, named ranges as Lucene range queries.
    pub ranges: Option<Map<String, Value>>,
    /// `[field, value, value...]` lists: a document must have one of
    /// each list's values.
    pub drilldown: Vec<Vec<String>>,
    pub highlight_fields: Option<Vec<String>>,
    pub highlight_pre_tag: String,
    pub highlight_post_tag: String,
    pub highlight_number: u64,
    pub highlight_size: u64,
    /// `stale=ok` or `update=false`: answer from the index as it is.
    pub stale: bool,
    pub partition: Option<String>,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            q: "*:*".into(),
            limit: 25,
            after: None,
            sort: Vec::new(),
            include_docs: false,
            include_fields: None,
            counts: None,
            ranges: None,
            drilldown: Vec::new(),
            highlight_fields: None,
            highlight_pre_tag: "<em>".into(),
            highlight_post_tag: "</em>".into(),
            highlight_number: 1,
            highlight_size: 100,
            stale: false,
            partition: None,
        }
    }
}

/// The most rows one request may ask for (CouchDB's `max_limit`).
pub const MAX_LIMIT: u64 = 200;

/// Reads a parameter from a POST body, else the query string (as JSON,
/// or as the text itself where it is not JSON: CouchDB insists on JSON,
/// which clients often forget for strings).
struct Params<'a> {
    req: &'a Request,
    body: Option<&'a Map<String, Value>>,
}

impl Params<'_> {
    fn text(&self, names: &[&str]) -> Option<Value> {
        names.iter().find_map(|n| {
            self.body
                .and_then(|b| b.get(*n).cloned())
                .or_else(|| self.req.param(n).map(|v| Value::String(v.to_string())))
        })
    }

    fn json(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.body.and_then(|b| b.get(name)) {
            return Some(v.clone());
        }
        let raw = self.req.param(name)?;
        Some(serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())))
    }

    fn strings(&self, name: &str) -> CouchResult<Option<Vec<String>>> {
        match self.json(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s])),
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    v => Err(parse_error(format!("`{name}` must hold strings, not {v}"))),
                })
                .collect::<CouchResult<Vec<_>>>()
                .map(Some),
            Some(v) => Err(parse_error(format!(
                "`{name}` must be a string or an array of strings, not {v}"
            ))),
        }
    }

    fn positive(&self, name: &str, default: u64) -> CouchResult<u64> {
        match self.json(name) {
            None => Ok(default),
            Some(v) => match v.as_i64() {
                Some(n) if n > 0 => Ok(n as u64),
                Some(_) => Err(parse_error(format!("{name} must be greater than zero"))),
                None => Err(parse_error(format!("Invalid value for {name}: {v}"))),
            },
        }
    }

    fn bool(&self, name: &str) -> CouchResult<bool> {
        match self.json(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(v) => Err(parse_error(format!("Invalid value for {name}: {v}"))),
        }
    }
}

impl SearchQuery {
    pub fn from_request(req: &Request, body: Option<&Map<String, Value>>) -> CouchResult<Self> {
        let p = Params { req, body };
        if let Some(g) = ["group_field", "group_by"]
            .into_iter()
            .find(|g| p.text(&[g]).is_some())
        {
            return Err(parse_error(format!(
                "`{g}` is not supported: Settee's search does not group results"
            )));
        }
        let q = match p.text(&["q", "query"]) {
            Some(Value::String(q)) => q,
            Some(v) => return Err(parse_error(format!("`q` must be a string, not {v}"))),
            None => return Err(parse_error("Query must include a 'q' or 'query' argument")),
        };
        let limit = match p.json("limit") {
            None => 25,
            Some(v) => match v.as_i64() {
                Some(n) if n > MAX_LIMIT as i64 => {
                    return Err(parse_error(format!(
                        "Value for limit is too large, must not exceed {MAX_LIMIT}"
                    )))
                }
                Some(n) if n >= 0 => n as u64,
                Some(_) => return Err(parse_error("limit must be greater than or equal to zero")),
                None => return Err(parse_error(format!("Invalid value for limit: {v}"))),
            },
        };
        let after = match p.text(&["bookmark"]) {
            None | Some(Value::Null) => None,
            Some(Value::String(b)) if b.is_empty() => None,
            Some(Value::String(b)) => Some(unpack_bookmark(&b)?),
            Some(v) => return Err(parse_error(format!("Invalid bookmark: {v}"))),
        };
        let sort = p
            .strings("sort")?
            .unwrap_or_default()
            .iter()
            .map(|s| SortKey::parse(s))
            .collect::<CouchResult<Vec<_>>>()?;
        let ranges = match p.json("ranges") {
            None => None,
            Some(Value::Object(o)) => Some(o),
            Some(v) => return Err(parse_error(format!("`ranges` must be an object, not {v}"))),
        };
        let drilldown = match p.json("drilldown") {
            None => Vec::new(),
            Some(Value::Array(a)) => {
                let lists = if a.first().is_some_and(Value::is_array) {
                    a
                } else {
                    vec![Value::Array(a)]
                };
                lists
                    .into_iter()
                    .map(|l| match l {
                        Value::Array(items) if items.len() >= 2 => items
                            .into_iter()
                            .map(|i| match i {
                                Value::String(s) => Ok(s),
                                other => Ok(other.to_string()),
                            })
                            .collect::<CouchResult<Vec<_>>>(),
                        other => Err(parse_error(format!(
                            "`drilldown` must be [field, value, ...] lists, not {other}"
                        ))),
                    })
                    .collect::<CouchResult<Vec<_>>>()?
            }
            Some(v) => return Err(parse_error(format!("Invalid drilldown: {v}"))),
        };
        let tag = |name: &str, default: &str| -> CouchResult<String> {
            match p.json(name) {
                None => Ok(default.to_string()),
                Some(Value::String(s)) => Ok(s),
                Some(v) => Err(parse_error(format!("`{name}` must be a string, not {v}"))),
            }
        };
        let stale = match p.text(&["stale"]) {
            None => false,
            Some(Value::String(s)) if s == "ok" => true,
            Some(_) => return Err(parse_error("stale only available as stale=ok")),
        } || matches!(p.text(&["update"]), Some(Value::String(s)) if s == "false")
            || p.json("update") == Some(Value::Bool(false));
        Ok(SearchQuery {
            q,
            limit,
            after,
            sort,
            include_docs: p.bool("include_docs")?,
            include_fields: p.strings("include_fields")?,
            counts: p.strings("counts")?,
            ranges,
            drilldown,
            highlight_fields: p.strings("highlight_fields")?,
            highlight_pre_tag: tag("highlight_pre_tag", "<em>")?,
            highlight_post_tag: tag("highlight_post_tag", "</em>")?,
            highlight_number: p.positive("highlight_number", 1)?,
            highlight_size: p.positive("highlight_size", 100)?,
            stale,
            partition: match p.text(&["partition"]) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            },
        })
    }
}

/// A bookmark: the last row's `order`, as URL-safe base64 of its JSON
/// (opaque to clients, as CouchDB's).
pub fn pack_bookmark(order: &[Value]) -> String {
    URL_SAFE_NO_PAD.encode(Value::Array(order.to_vec()).to_string())
}

fn unpack_bookmark(b: &str) -> CouchResult<Vec<Value>> {
    let bad = || CouchError::bad_request("Invalid bookmark parameter supplied");
    let bytes = URL_SAFE_NO_PAD
        .decode(b.trim_end_matches('='))
        .map_err(|_| bad())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Array(a)) => Ok(a),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(qs: &str) -> CouchResult<SearchQuery> {
        SearchQuery::from_request(&Request::new("GET", "/", qs), None)
    }

    #[test]
    fn parameters_as_dreyfus_reads_them() {
        let q = get("q=title:foo&limit=5&include_docs=true&sort=%22-price%3Cnumber%3E%22&counts=%5B%22type%22%5D&drilldown=%5B%22type%22,%22a%22%5D").unwrap();
        assert_eq!(
            (q.q.as_str(), q.limit, q.include_docs),
            ("title:foo", 5, true)
        );
        assert_eq!(
            q.sort,
            vec![SortKey::Field {
                name: "price".into(),
                kind: SortType::Number,
                descending: true
            }]
        );
        assert_eq!(q.counts, Some(vec!["type".to_string()]));
        assert_eq!(q.drilldown, vec![vec!["type".to_string(), "a".to_string()]]);
        // Unquoted strings are taken as they are.
        assert_eq!(get("q=a&sort=name").unwrap().sort.len(), 1);
        assert_eq!(
            get("query=a&sort=%5B%22%3Cscore%3E%22%5D").unwrap().sort,
            vec![SortKey::Score { descending: true }]
        );
        let body = json!({"q": "x", "limit": 3, "highlight_fields": ["t"]});
        let q =
            SearchQuery::from_request(&Request::new("POST", "/", ""), body.as_object()).unwrap();
        assert_eq!(
            (q.limit, q.highlight_fields),
            (3, Some(vec!["t".to_string()]))
        );
        let order = vec![json!(1.5), json!("doc")];
        let b = pack_bookmark(&order);
        assert_eq!(
            get(&format!("q=a&bookmark={b}")).unwrap().after,
            Some(order)
        );
    }

    #[test]
    fn bad_parameters_get_couchdb_errors() {
        for (qs, reason) in [
            ("limit=3", "Query must include a 'q' or 'query' argument"),
            (
                "q=a&limit=201",
                "Value for limit is too large, must not exceed 200",
            ),
            (
                "q=a&limit=-1",
                "limit must be greater than or equal to zero",
            ),
            ("q=a&stale=no", "stale only available as stale=ok"),
            (
                "q=a&group_field=t",
                "`group_field` is not supported: Settee's search does not group results",
            ),
            (
                "q=a&highlight_number=0",
                "highlight_number must be greater than zero",
            ),
            (
                "q=a&sort=%22x%3Cdate%3E%22",
                "Unknown sort type `date` in x<date>: use number or string",
            ),
        ] {
            let e = get(qs).unwrap_err();
            assert_eq!(
                (e.status, e.error.as_str(), e.reason.as_str()),
                (400, "query_parse_error", reason)
            );
        }
        let e = get("q=a&bookmark=!!").unwrap_err();
        assert_eq!((e.status, e.error.as_str()), (400, "bad_request"));
    }
}
