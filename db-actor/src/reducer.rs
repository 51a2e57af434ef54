//! The reduce half of a view, built in or JavaScript: how it reduces rows
//! to a partial reduction, combines partial reductions, and answers from
//! them. A group's rows are reduced in one piece ([`Reducer::reduce`]) or
//! as stored reductions keep them, block by block ([`crate::reductions`]);
//! both answer alike for a reduce whose rereduce is right.

use crate::design::{compile_query, failure, Compiled, Role};
use crate::js::JsError;
use serde_json::{json, Value};
use shared::error::CouchResult;
use shared::view::{self, Builtin};

/// Rows handed to a JavaScript reduce at once (then rereduced).
const REDUCE_CHUNK: usize = 500;

/// A row as a reduce reads it: key, document id, value (`null`, or no
/// id, for what the reduce does not read; see [`Reducer::reads`]).
pub(crate) type Row = (Value, String, Value);

/// A view's reduce, as its query and its stored reductions use it.
pub(crate) enum Reducer {
    Builtin(Builtin),
    /// A compiled function, and the name of its stored reductions.
    Js(Compiled, String),
}

impl Reducer {
    pub(crate) fn new(src: &str, ddoc: &Value) -> CouchResult<Reducer> {
        match Builtin::parse(src) {
            Some(b) => Ok(Reducer::Builtin(b?)),
            None => {
                // The index signature leaves the reduce out (a new reduce
                // needs no new index), so the name says which one it is.
                let name = format!("js:{}", shared::password::sha256_hex(src));
                Ok(Reducer::Js(compile_query(src, ddoc, "reduce")?, name))
            }
        }
    }

    /// The name its stored reductions go by in the view's index.
    pub(crate) fn name(&self) -> &str {
        match self {
            Reducer::Builtin(b) => b.name(),
            Reducer::Js(_, name) => name,
        }
    }

    /// Whether a budget stopped the reduce's engine: the query fails, as
    /// reading the rows another way would only find it stopped.
    pub(crate) fn stopped(&self) -> bool {
        matches!(self, Reducer::Js(compiled, _) if !compiled.0.healthy())
    }

    /// What stored reductions gave, or `None` when they failed and the
    /// rows are to be reduced as they are read instead (which says where a
    /// value is refused). A budget that stopped the engine fails the
    /// query: reading the rows would only find it stopped.
    pub(crate) fn stored<T>(&self, got: CouchResult<T>) -> CouchResult<Option<T>> {
        match got {
            Ok(v) => Ok(Some(v)),
            Err(e) if self.stopped() => Err(e),
            Err(e) => {
                tracing::info!("stored reductions unusable: {}", e.reason);
                Ok(None)
            }
        }
    }

    /// Which parts of a row the reduce reads: `(keys, values)`.
    pub(crate) fn reads(&self) -> (bool, bool) {
        match self {
            Reducer::Builtin(Builtin::Count) => (false, false),
            Reducer::Builtin(Builtin::ApproxCountDistinct) => (true, false),
            Reducer::Builtin(_) => (false, true),
            Reducer::Js(..) => (true, true),
        }
    }

    /// The reduction of one group's rows: what [`Self::finish`] makes of
    /// their [`Self::partial`].
    pub(crate) fn reduce(&self, rows: Vec<Row>) -> CouchResult<Value> {
        match self {
            Reducer::Builtin(b) => b.reduce(&pairs(rows)),
            Reducer::Js(..) => self.partial(rows),
        }
    }

    /// The partial reduction of rows (in index order): natively, or in
    /// JavaScript chunk by chunk with a rereduce, as CouchDB's B-tree
    /// nodes do.
    pub(crate) fn partial(&self, rows: Vec<Row>) -> CouchResult<Value> {
        let (engine, f) = match self {
            Reducer::Builtin(b) => return b.partial(&pairs(rows)),
            Reducer::Js(compiled, _) => &**compiled,
        };
        let mut partials = Vec::new();
        for chunk in rows.chunks(REDUCE_CHUNK) {
            let keys = Value::Array(chunk.iter().map(|(k, id, _)| json!([k, id])).collect());
            let values = Value::Array(chunk.iter().map(|(_, _, v)| v.clone()).collect());
            let input = values.to_string().len();
            let out = tolerate(engine.call(*f, &[&keys, &values, &json!(false)]))
                .map_err(|e| failure("reduce", Role::Query, &e))?;
            view::check_reduce_limit(input, &out)?;
            partials.push(out);
        }
        match partials.len() {
            1 => Ok(partials.pop().expect("one")),
            _ => self.rereduce(partials),
        }
    }

    /// Combines partial reductions (in index order) into one.
    pub(crate) fn rereduce(&self, parts: Vec<Value>) -> CouchResult<Value> {
        match self {
            Reducer::Builtin(b) => b.rereduce(&parts),
            Reducer::Js(compiled, _) => {
                let (engine, f) = &**compiled;
                let values = Value::Array(parts);
                tolerate(engine.call(*f, &[&Value::Null, &values, &json!(true)]))
                    .map_err(|e| failure("rereduce", Role::Query, &e))
            }
        }
    }

    /// The reduction of rows from partial reductions of them, in index
    /// order; one is taken as it is, as CouchDB's `final_reduce` does.
    pub(crate) fn finish(&self, mut parts: Vec<Value>) -> CouchResult<Value> {
        let part = match parts.len() {
            1 => parts.pop().expect("one"),
            _ => self.rereduce(parts)?,
        };
        match self {
            Reducer::Builtin(b) => b.finish(part),
            Reducer::Js(..) => Ok(part),
        }
    }
}

/// The `(key, value)` pairs built-in reduces take.
fn pairs(rows: Vec<Row>) -> Vec<(Value, Value)> {
    rows.into_iter().map(|(k, _, v)| (k, v)).collect()
}

/// A reduce function that throws yields `null` for that reduction, as
/// couchjs logs non-fatal errors and goes on; running out of time or
/// memory still fails the query.
fn tolerate(out: Result<Value, JsError>) -> Result<Value, JsError> {
    match out {
        Err(JsError::Thrown(e)) => {
            tracing::warn!(error = %e, "reduce function threw; its reduction is null");
            Ok(Value::Null)
        }
        other => other,
    }
}
