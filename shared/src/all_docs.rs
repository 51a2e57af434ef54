//! Options of `_all_docs`, `_design_docs` and `_local_docs`.
//!
//! These indexes are keyed by document id in raw (byte) order. A non-string
//! key sorts before every id (Erlang term order puts numbers, atoms, objects
//! and arrays before binaries), which is what CouchDB answers for such keys.

use crate::error::{CouchError, CouchResult};
use crate::http::Request;
use crate::sql::Value as SqlValue;
use serde_json::{Map, Value};

/// One end of an id range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// Before every id (a non-string key).
    BelowAll,
    Id(String),
}

impl Bound {
    fn from_key(v: &Value) -> Bound {
        match v {
            Value::String(s) => Bound::Id(s.clone()),
            _ => Bound::BelowAll,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllDocsQuery {
    /// Explicit keys (`keys=[...]` or a POST body): rows in this order.
    pub keys: Option<Vec<Value>>,
    pub start: Option<Bound>,
    pub end: Option<Bound>,
    pub inclusive_end: bool,
    pub descending: bool,
    pub limit: Option<u64>,
    pub skip: u64,
    pub include_docs: bool,
    pub conflicts: bool,
    /// With `include_docs`: attachment contents inline, as `GET /db/doc`.
    pub attachments: bool,
    pub att_encoding_info: bool,
    pub update_seq: bool,
    /// Set by [`crate::partition::scope_all_docs`]: `total_rows` and
    /// `offset` count the partition's documents only.
    pub partition: Option<String>,
}

/// Reads an option from the POST body first, then the query string.
pub(crate) struct Opts<'a> {
    pub(crate) req: &'a Request,
    pub(crate) body: Option<&'a Map<String, Value>>,
}

impl Opts<'_> {
    pub(crate) fn json(&self, names: &[&str]) -> CouchResult<Option<Value>> {
        for n in names {
            if let Some(v) = self.body.and_then(|b| b.get(*n)) {
                return Ok(Some(v.clone()));
            }
            if let Some(v) = self.req.json_param(n)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    pub(crate) fn bool(&self, name: &str, default: bool) -> CouchResult<bool> {
        if let Some(v) = self.body.and_then(|b| b.get(name)) {
            return v.as_bool().ok_or_else(|| bad_param(name, v));
        }
        Ok(self.req.bool_param(name)?.unwrap_or(default))
    }

    pub(crate) fn uint(&self, name: &str) -> CouchResult<Option<u64>> {
        if let Some(v) = self.body.and_then(|b| b.get(name)) {
            return v.as_u64().map(Some).ok_or_else(|| bad_param(name, v));
        }
        self.req.uint_param(name)
    }
}

pub(crate) fn bad_param(name: &str, v: &Value) -> CouchError {
    CouchError::new(
        400,
        "query_parse_error",
        format!("Invalid value for `{name}`: {v}"),
    )
}

impl AllDocsQuery {
    /// Parses the query string and, for POST, the JSON body.
    pub fn from_request(req: &Request, body: Option<&Map<String, Value>>) -> CouchResult<Self> {
        let o = Opts { req, body };
        let keys = match o.json(&["keys"])? {
            None => None,
            Some(Value::Array(a)) => Some(a),
            Some(_) => return Err(CouchError::bad_request("`keys` member must be an array.")),
        };
        let key = o.json(&["key"])?;
        let mut start = o.json(&["startkey", "start_key"])?;
        let mut end = o.json(&["endkey", "end_key"])?;
        if let Some(k) = key {
            if keys.is_some() {
                return Err(CouchError::new(
                    400,
                    "query_parse_error",
                    "`key` is incompatible with `keys`",
                ));
            }
            start = Some(k.clone());
            end = Some(k);
        }
        if keys.is_some() && (start.is_some() || end.is_some()) {
            return Err(CouchError::new(
                400,
                "query_parse_error",
                "`keys` is incompatible with `key`, `start_key` and `end_key`",
            ));
        }
        Ok(AllDocsQuery {
            keys,
            start: start.as_ref().map(Bound::from_key),
            end: end.as_ref().map(Bound::from_key),
            inclusive_end: o.bool("inclusive_end", true)?,
            descending: o.bool("descending", false)?,
            limit: o.uint("limit")?,
            skip: o.uint("skip")?.unwrap_or(0),
            include_docs: o.bool("include_docs", false)?,
            conflicts: o.bool("conflicts", false)?,
            attachments: o.bool("attachments", false)?,
            att_encoding_info: o.bool("att_encoding_info", false)?,
            update_seq: o.bool("update_seq", false)?,
            partition: None,
        })
    }
}

/// A range of ids (or names) in index order, as SQL can scan it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound, and whether it is included.
    pub lo: Option<(String, bool)>,
    /// Upper bound, and whether it is included.
    pub hi: Option<(String, bool)>,
    /// Nothing can match (an end key below every id).
    pub empty: bool,
}

impl KeyRange {
    /// The range a query's start/end keys select, whichever the direction:
    /// descending swaps the ends, and `inclusive_end` governs the end key.
    pub fn from_query(q: &AllDocsQuery) -> KeyRange {
        let (lo, hi, lo_incl, hi_incl) = if q.descending {
            (&q.end, &q.start, q.inclusive_end, true)
        } else {
            (&q.start, &q.end, true, q.inclusive_end)
        };
        let mut r = KeyRange::default();
        if let Some(Bound::Id(s)) = lo {
            r.lo = Some((s.clone(), lo_incl));
        }
        match hi {
            Some(Bound::Id(s)) => r.hi = Some((s.clone(), hi_incl)),
            Some(Bound::BelowAll) => r.empty = true,
            None => {}
        }
        r
    }

    /// The range as ` AND ...` conditions on `column`, with their parameters.
    pub fn sql_condition(&self, column: &str) -> (String, Vec<SqlValue>) {
        if self.empty {
            return (" AND 0".into(), vec![]);
        }
        let mut cond = String::new();
        let mut params = Vec::new();
        if let Some((lo, incl)) = &self.lo {
            cond.push_str(&format!(
                " AND {column} {} ?",
                if *incl { ">=" } else { ">" }
            ));
            params.push(lo.as_str().into());
        }
        if let Some((hi, incl)) = &self.hi {
            cond.push_str(&format!(
                " AND {column} {} ?",
                if *incl { "<=" } else { "<" }
            ));
            params.push(hi.as_str().into());
        }
        (cond, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(qs: &str) -> CouchResult<AllDocsQuery> {
        AllDocsQuery::from_request(&Request::new("GET", "/db/_all_docs", qs), None)
    }

    #[test]
    fn parses_couchdb_params() {
        let a =
            q("startkey=%22a%22&endkey=%22c%22&limit=2&skip=1&descending=false&include_docs=true")
                .unwrap();
        assert_eq!(a.start, Some(Bound::Id("a".into())));
        assert_eq!(a.end, Some(Bound::Id("c".into())));
        assert_eq!(
            (a.limit, a.skip, a.include_docs, a.inclusive_end),
            (Some(2), 1, true, true)
        );
        let k = q("key=%22x%22").unwrap();
        assert_eq!(k.start, k.end);
        assert_eq!(q("start_key=1").unwrap().start, Some(Bound::BelowAll));
        let body = json!({"keys": ["a", "b"]});
        let p = AllDocsQuery::from_request(
            &Request::new("POST", "/db/_all_docs", "include_docs=true"),
            body.as_object(),
        )
        .unwrap();
        assert_eq!(p.keys, Some(vec![json!("a"), json!("b")]));
        assert!(p.include_docs);
    }

    #[test]
    fn rejects_bad_params() {
        for bad in [
            "limit=-1",
            "startkey=abc",
            "descending=yes",
            "keys=%5B%5D&key=%22a%22",
            "keys=3",
        ] {
            assert_eq!(q(bad).unwrap_err().status, 400, "{bad}");
        }
        assert!(q("startkey=%22b%22&endkey=%22a%22&descending=true").is_ok());
        // CouchDB checks the direction of views' ranges only: a reversed
        // `_all_docs` range is valid and selects nothing.
        let r = KeyRange::from_query(&q("startkey=%22b%22&endkey=%22a%22").unwrap());
        assert_eq!(r.lo, Some(("b".into(), true)));
        assert_eq!(r.hi, Some(("a".into(), true)));
    }

    #[test]
    fn key_ranges() {
        let r = KeyRange::from_query(
            &q("startkey=%22b%22&endkey=%22d%22&inclusive_end=false").unwrap(),
        );
        assert_eq!(r.lo, Some(("b".into(), true)));
        assert_eq!(r.hi, Some(("d".into(), false)));
        assert_eq!(r.sql_condition("id").0, " AND id >= ? AND id < ?");
        let r = KeyRange::from_query(
            &q("descending=true&startkey=%22d%22&endkey=%22b%22&inclusive_end=false").unwrap(),
        );
        assert_eq!(
            (r.lo, r.hi),
            (Some(("b".into(), false)), Some(("d".into(), true)))
        );
        assert!(KeyRange::from_query(&q("endkey=1").unwrap()).empty);
    }
}
