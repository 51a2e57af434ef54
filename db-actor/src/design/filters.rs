//! `_changes` filters: a design document's `filters.{name}`
//! (`filter=ddoc/name`) and a view's map used as one (`filter=_view`).

use super::{compile, failure, source, Role};
use crate::database::Database;
use crate::js::{Engine, FnId, JsError};
use serde_json::{Map, Value};
use shared::error::CouchResult;

/// A compiled filter or view map, for `_changes` filters.
pub struct DocTest {
    engine: Engine,
    f: FnId,
}

impl DocTest {
    /// A filter function's verdict (truthy = keep). One that throws fails
    /// the request, as CouchDB's query server answers an error for it.
    pub fn filter(&self, doc: &Value, req: &Value) -> CouchResult<bool> {
        match self.engine.call(self.f, &[doc, req]) {
            Ok(v) => Ok(truthy(&v)),
            Err(e) => Err(failure("filter", Role::Query, &e)),
        }
    }

    /// Whether a view's map emits anything for the document.
    pub fn emits(&self, doc: &Value) -> CouchResult<bool> {
        if doc.get("_deleted") == Some(&Value::Bool(true)) {
            return Ok(false);
        }
        match self.engine.map(self.f, &doc.to_string()) {
            Ok(rows) => Ok(!rows.is_empty()),
            Err(JsError::Thrown(_)) => Ok(false),
            Err(e) => Err(failure("map", Role::Query, &e)),
        }
    }
}

/// JavaScript truthiness of a JSON result.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

impl Database<'_> {
    fn compiled(&self, ddoc: &Map<String, Value>, src: &str, what: &str) -> CouchResult<DocTest> {
        let (engine, f) = compile(src, &Value::Object(ddoc.clone()), what, Role::Query)?;
        Ok(DocTest { engine, f })
    }

    /// The filter function `filters.{name}` of `_design/{ddoc}`.
    pub fn filter_fn(&self, ddoc: &str, name: &str) -> CouchResult<DocTest> {
        let body = self.design_doc(ddoc)?;
        let src = source(&body, "filters", name)?;
        self.compiled(&body, &src, "filter")
    }

    /// The map of view `name` of `_design/{ddoc}`, for `filter=_view`.
    pub fn view_filter(&self, ddoc: &str, name: &str) -> CouchResult<DocTest> {
        let v = self.resolve(ddoc, name)?;
        self.compiled(&v.ddoc, &v.def.map, "map")
    }
}
