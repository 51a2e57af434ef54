//! Design-document functions besides views' map and reduce: `_changes`
//! filters ([`filters`]), `validate_doc_update` ([`validate`]), show and
//! list functions ([`render`]) and update handlers ([`update_handlers`]).
//! Views ([`crate::views`]) use the same two entry points:
//!
//! - [`compile`], the one way a design function becomes callable (a fresh
//!   QuickJS engine of [`crate::js`], with its budgets, and the function
//!   compiled in it with its design document as `this`);
//! - [`failure`], the one mapping of a JavaScript failure to CouchDB's
//!   error, by the [`Role`] of the function that failed.

pub mod filters;
pub mod render;
pub mod update_handlers;
pub mod validate;

use crate::database::Database;
use crate::js::{Engine, FnId, JsError};
use serde_json::{Map, Value};
use shared::doc::IncomingDoc;
use shared::error::{CouchError, CouchResult};
use std::cell::RefCell;
use std::rc::Rc;

/// The access rules that reads and writes of show, list and update
/// functions go through: the request's [`crate::access::Access`].
pub trait Guard {
    fn before_read(&self, id: &str) -> CouchResult<()>;
    fn before_write(&self, db: &Database, id: &str, doc: &mut IncomingDoc) -> CouchResult<()>;
}

/// What a function is for, which decides how its failures answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Map, reduce and filter functions: a throw is a `javascript_error`,
    /// a syntax error a 400 `compilation_error`.
    Query,
    /// Show, list and update functions: `{forbidden}` and `{unauthorized}`
    /// throws are 403 and 401, anything else a `render_error`.
    Render,
    /// `validate_doc_update`: a throw is the write's refusal.
    Validate,
}

/// How a JavaScript failure of `what` (a function kind, for the reason)
/// ends the request, as CouchDB's query server answers it.
pub fn failure(what: &str, role: Role, e: &JsError) -> CouchError {
    match (e, role) {
        (JsError::Timeout | JsError::OutOfMemory, _) => {
            CouchError::new(500, "os_process_error", format!("{what}: {e}"))
        }
        (JsError::Thrown(t), Role::Validate) => validate::denial(t),
        (JsError::Thrown(t), Role::Render) if t.get("forbidden").is_some() => {
            CouchError::forbidden(t["forbidden"].as_str().unwrap_or_default())
        }
        (JsError::Thrown(t), Role::Render) if t.get("unauthorized").is_some() => {
            CouchError::unauthorized(t["unauthorized"].as_str().unwrap_or_default())
        }
        (_, Role::Render) => CouchError::new(500, "render_error", format!("{what}: {e}")),
        (JsError::Compile(m), _) => {
            CouchError::new(400, "compilation_error", format!("{what}: {m}"))
        }
        (JsError::Thrown(_), _) => CouchError::new(500, "javascript_error", format!("{what}: {e}")),
    }
}

/// A fresh engine with `src` compiled in it, `design` being its design
/// document.
pub fn compile(src: &str, design: &Value, what: &str, role: Role) -> CouchResult<(Engine, FnId)> {
    let engine = Engine::new().map_err(|e| failure(what, role, &e))?;
    let f = engine
        .compile(src, design)
        .map_err(|e| failure(what, role, &e))?;
    Ok((engine, f))
}

/// Engines with a query function compiled, kept between requests: an
/// index build continued over several alarms, or reduce queries one after
/// another, do not start QuickJS and compile again each time. Few, since
/// each may hold up to [`crate::js::MEMORY_BUDGET`].
const KEPT_ENGINES: usize = 2;

/// A compiled function in its engine, shared by the requests that use it.
pub type Compiled = Rc<(Engine, FnId)>;

thread_local! {
    static ENGINES: RefCell<Vec<(String, Compiled)>> = const { RefCell::new(Vec::new()) };
}

/// [`compile`] for map, reduce and filter functions, from the engines kept
/// in this isolate when one has the same source and design document. An
/// engine a budget stopped is not kept.
pub fn compile_query(src: &str, design: &Value, what: &str) -> CouchResult<Compiled> {
    let key = format!("{src}\u{0}{design}");
    let kept = ENGINES.with(|e| {
        let mut e = e.borrow_mut();
        e.retain(|(_, c)| c.0.healthy());
        let at = e.iter().position(|(k, _)| *k == key)?;
        // Most recently used last.
        let entry = e.remove(at);
        let engine = entry.1.clone();
        e.push(entry);
        Some(engine)
    });
    if let Some(c) = kept {
        return Ok(c);
    }
    let compiled = Rc::new(compile(src, design, what, Role::Query)?);
    ENGINES.with(|e| {
        let mut e = e.borrow_mut();
        if e.len() >= KEPT_ENGINES {
            e.remove(0);
        }
        e.push((key, compiled.clone()));
    });
    Ok(compiled)
}

/// Checks a design document being saved, as CouchDB does: its fields'
/// types (`shared::design_doc`), then its views' map and reduce functions
/// compile (a syntax error is 400 `compilation_error`, an unknown built-in
/// reduce 400 `invalid_design_doc`). Other functions are compiled when
/// used, as in CouchDB; views in a language Settee does not run are kept
/// (CouchDB allows saving them) and refused when queried.
pub fn validate_on_save(design: &Map<String, Value>) -> CouchResult<()> {
    shared::design_doc::validate_fields(design)?;
    let lang = design.get("language").and_then(Value::as_str);
    if !lang.is_none_or(|l| shared::view::QUERY_LANGUAGES.contains(&l)) {
        return Ok(());
    }
    let Some(Value::Object(views)) = design.get("views") else {
        return Ok(());
    };
    let views: Vec<(&String, &Value)> = views.iter().filter(|(n, _)| *n != "lib").collect();
    let Some((first, _)) = views.first() else {
        return Ok(());
    };
    let engine =
        Engine::new().map_err(|e| failure(&format!("map of view {first}"), Role::Query, &e))?;
    let this = Value::Object(design.clone());
    let try_compile = |src: &str, what: &str| -> CouchResult<()> {
        engine
            .compile(src, &this)
            .map(drop)
            .map_err(|e| failure(what, Role::Query, &e))
    };
    for (name, view) in views {
        if let Some(map) = view.get("map").and_then(Value::as_str) {
            try_compile(map, &format!("map of view {name}"))?;
        }
        if let Some(reduce) = view.get("reduce").and_then(Value::as_str) {
            match shared::view::Builtin::parse(reduce) {
                Some(builtin) => drop(builtin?),
                None => try_compile(reduce, &format!("reduce of view {name}"))?,
            }
        }
    }
    Ok(())
}

/// The source of `{section}.{name}` in a design document (404 if absent).
pub fn source(design: &Map<String, Value>, section: &str, name: &str) -> CouchResult<String> {
    design
        .get(section)
        .and_then(|f| f.get(name))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| CouchError::not_found(format!("missing json key: {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_mapping_by_role() {
        let thrown = JsError::Thrown(json!({"forbidden": "no"}));
        let status = |role, e: &JsError| {
            let c = failure("f", role, e);
            (c.status, c.error)
        };
        assert_eq!(status(Role::Render, &thrown), (403, "forbidden".into()));
        assert_eq!(status(Role::Validate, &thrown), (403, "forbidden".into()));
        assert_eq!(
            status(Role::Query, &thrown),
            (500, "javascript_error".into())
        );
        let syntax = JsError::Compile("unexpected token".into());
        assert_eq!(
            status(Role::Query, &syntax),
            (400, "compilation_error".into())
        );
        assert_eq!(status(Role::Render, &syntax), (500, "render_error".into()));
        for role in [Role::Query, Role::Render, Role::Validate] {
            assert_eq!(
                status(role, &JsError::Timeout),
                (500, "os_process_error".into())
            );
        }
        let message = JsError::Thrown(json!({"message": "bad field"}));
        let refused = failure("validate_doc_update", Role::Validate, &message);
        assert_eq!(
            (refused.status, refused.reason.as_str()),
            (500, "bad field")
        );
    }

    #[test]
    fn compile_reports_by_role_and_sources_are_found() {
        let ddoc = json!({"filters": {"f": "function(doc) { return true; }"}});
        let body = ddoc.as_object().unwrap();
        let src = source(body, "filters", "f").unwrap();
        assert!(compile(&src, &ddoc, "filter", Role::Query).is_ok());
        assert_eq!(source(body, "filters", "g").unwrap_err().status, 404);
        let e = compile("function (", &ddoc, "map", Role::Query)
            .err()
            .unwrap();
        assert_eq!(e.error, "compilation_error");
    }
}
