//! `validate_doc_update`: every design document's validation function runs
//! on each write of an ordinary document, and any of them may refuse it.
//! The functions are compiled once per set of sources and the sources read
//! again only after a design document changed.

use super::{failure, Role};
use crate::database::Database;
use crate::js::{Engine, FnId};
use serde_json::{json, Value};
use shared::doc::IncomingDoc;
use shared::error::{CouchError, CouchResult};
use shared::user::UserCtx;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

const WHAT: &str = "validate_doc_update";

thread_local! {
    /// The compiled `validate_doc_update` functions of the design documents
    /// last seen, by their sources: writes reuse one engine.
    static VALIDATORS: RefCell<Option<(String, Engine, Vec<FnId>)>> = const { RefCell::new(None) };
    /// Each database's validator sources (by incarnation), with the design
    /// sequence they were read at.
    static VALIDATOR_SOURCES: RefCell<HashMap<String, (u64, Rc<Validators>)>> = RefCell::default();
}

/// The `validate_doc_update` sources of a database, with their design
/// documents, and all sources joined: what the compiled engine is keyed by.
struct Validators {
    key: String,
    sources: Vec<(String, Value)>,
}

impl Database<'_> {
    /// The `validate_doc_update` sources of the design documents, with their
    /// design documents: read again only after a design document changed,
    /// so ordinary writes skip reading every design document.
    fn validators(&self, instance: &str) -> CouchResult<Rc<Validators>> {
        let seq = self.store.design_seq()?;
        let cached = VALIDATOR_SOURCES.with(|c| {
            c.borrow()
                .get(instance)
                .filter(|(s, _)| *s == seq)
                .map(|(_, v)| v.clone())
        });
        if let Some(v) = cached {
            return Ok(v);
        }
        let mut sources = Vec::new();
        for (_, ddoc) in self.design_docs()? {
            let src = ddoc.get("validate_doc_update").and_then(Value::as_str);
            if let Some(src) = src.map(str::to_string) {
                sources.push((src, Value::Object(ddoc)));
            }
        }
        let key = sources
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join("\u{0}");
        let sources = Rc::new(Validators { key, sources });
        VALIDATOR_SOURCES.with(|c| {
            let mut c = c.borrow_mut();
            // Databases sharing an isolate each keep an entry; bounded.
            if c.len() >= 64 {
                c.clear();
            }
            c.insert(instance.to_string(), (seq, sources.clone()));
        });
        Ok(sources)
    }

    /// Runs every design document's `validate_doc_update` on a write of
    /// `id` (not design or local documents, which only admins write).
    pub fn validate_write(&self, id: &str, doc: &IncomingDoc, user: &UserCtx) -> CouchResult<()> {
        if id.starts_with("_design/") {
            return Ok(());
        }
        let meta = self.meta()?;
        let validators = self.validators(&meta.instance)?;
        if validators.sources.is_empty() {
            return Ok(());
        }
        let mut new_doc = doc.body.clone();
        new_doc.insert("_id".into(), json!(id));
        if let Some(rev) = &doc.rev {
            new_doc.insert("_rev".into(), json!(rev.to_string()));
        }
        if doc.deleted {
            new_doc.insert("_deleted".into(), json!(true));
        }
        let old_doc = self.winner_doc(id)?;
        let user_ctx = json!({"db": meta.name, "name": user.name, "roles": user.roles});
        let args = [&Value::Object(new_doc), &old_doc, &user_ctx, &meta.security];
        let key = &validators.key;
        VALIDATORS.with(|cell| {
            let mut slot = cell.borrow_mut();
            let fresh = !matches!(&*slot, Some((k, e, _)) if k == key && e.healthy());
            if fresh {
                let engine = Engine::new().map_err(|e| failure(WHAT, Role::Validate, &e))?;
                let fns = validators
                    .sources
                    .iter()
                    .map(|(src, ddoc)| engine.compile(src, ddoc))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| failure(WHAT, Role::Validate, &e))?;
                *slot = Some((key.clone(), engine, fns));
            }
            let (_, engine, fns) = slot.as_ref().expect("set");
            for f in fns {
                engine
                    .call(*f, &args)
                    .map_err(|e| failure(WHAT, Role::Validate, &e))?;
            }
            Ok(())
        })
    }
}

/// What a validation function threw, as CouchDB answers it.
pub(super) fn denial(thrown: &Value) -> CouchError {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(m) = thrown.get("forbidden") {
        return CouchError::forbidden(text(m));
    }
    if let Some(m) = thrown.get("unauthorized") {
        return CouchError::unauthorized(text(m));
    }
    let reason = match thrown.get("message") {
        Some(m) => text(m),
        None => text(thrown),
    };
    CouchError::new(500, "doc_validation", reason)
}
