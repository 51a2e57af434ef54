//! Update handlers: `POST|PUT /db/_design/{ddoc}/_update/{name}[/{docid}]`
//! calls `updates.{name}(doc, req)`, which answers `[newDoc, response]`.
//! `newDoc` (unless null) is saved like any write — access rules and
//! `validate_doc_update` included — and `response` becomes the answer.

use super::{render, Guard};
use crate::js::JsError;
use crate::Database;
use serde_json::Value;
use shared::doc::IncomingDoc;
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};

/// Runs the handler and answers as CouchDB does.
pub fn handle(
    db: &Database,
    req: &Request,
    access: &dyn Guard,
    ddoc: &str,
    name: &str,
    doc_id: Option<&str>,
) -> CouchResult<(Response, bool)> {
    let meta = db.meta()?;
    let design = db.design_doc(ddoc)?;
    let (engine, f) = render::compile(&design, "updates", "update", ddoc, name)?;
    let failed = |e: JsError| render::failure("update", e);
    let old = match doc_id {
        Some(id) => {
            access.before_read(id)?;
            db.winner_doc(id)?
        }
        None => Value::Null,
    };
    let answer = engine
        .call(f, &[&old, &render::js_request(&meta.name, req, doc_id)])
        .map_err(failed)?;
    let (new_doc, resp) = match answer {
        Value::Array(mut a) if a.len() == 2 => {
            let r = a.pop().expect("two");
            (a.pop().expect("two"), r)
        }
        other => {
            return Err(CouchError::new(
                500,
                "render_error",
                format!("undefined response from update function: {other}"),
            ))
        }
    };
    let mut headers = Vec::new();
    let saved = if let Value::Object(body) = new_doc {
        let id = body
            .get("_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| CouchError::bad_request("Document id must be a string"))?;
        shared::doc::validate_id(&id)?;
        let mut doc = IncomingDoc::parse(Value::Object(body))?;
        access.before_write(db, &id, &mut doc)?;
        let rev = db.save_one(&id, &doc, true)?;
        headers.push(("x-couch-id".to_string(), id));
        headers.push(("x-couch-update-newrev".to_string(), rev.to_string()));
        true
    } else {
        false
    };
    let mut r = render::response(&resp, if saved { 201 } else { 200 }, None)?;
    r.headers.extend(headers);
    Ok((r, saved))
}
