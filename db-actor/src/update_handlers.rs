//! Update handlers: `POST|PUT /db/_design/{ddoc}/_update/{name}[/{docid}]`
//! calls `updates.{name}(doc, req)`, which answers `[newDoc, response]`.
//! `newDoc` (unless null) is saved like any write — access rules and
//! `validate_doc_update` included — and `response` becomes the answer.

use crate::access::Access;
use crate::js::{Engine, JsError};
use crate::views::design_function;
use crate::Database;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use shared::doc::IncomingDoc;
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};
use shared::uuids;

/// CouchDB's JavaScript request object.
fn js_request(db: &str, req: &Request, doc_id: Option<&str>) -> Value {
    let query: Map<String, Value> = req
        .query
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let headers: Map<String, Value> = req
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let form: Option<Map<String, Value>> = req
        .header("content-type")
        .filter(|ct| ct.starts_with("application/x-www-form-urlencoded"))
        .map(|_| {
            form_urlencoded::parse(body.as_bytes())
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect()
        });
    json!({
        "method": req.method,
        "path": req.path,
        "query": query,
        "headers": headers,
        "body": if req.body.is_empty() { Value::String("undefined".into()) } else { Value::String(body) },
        "form": form.map_or(json!({}), Value::Object),
        "id": doc_id,
        "uuid": uuids::next(),
        "info": {"db_name": db},
        "userCtx": {"db": db, "name": req.user.name, "roles": req.user.roles},
        "peer": "127.0.0.1",
    })
}

/// Runs the handler and answers as CouchDB does.
pub fn handle(
    db: &Database,
    req: &Request,
    access: &Access,
    ddoc: &str,
    name: &str,
    doc_id: Option<&str>,
) -> CouchResult<(Response, bool)> {
    let meta = db.meta()?;
    let design = db.design_doc(ddoc)?;
    let src = &design_function(&design, "updates", name).map_err(|_| {
        CouchError::not_found(format!(
            "missing update function {name} on design doc _design/{ddoc}"
        ))
    })?;
    let failed = |e: JsError| match e {
        JsError::Thrown(t) if t.get("forbidden").is_some() => {
            CouchError::forbidden(t["forbidden"].as_str().unwrap_or_default())
        }
        JsError::Thrown(t) if t.get("unauthorized").is_some() => {
            CouchError::unauthorized(t["unauthorized"].as_str().unwrap_or_default())
        }
        JsError::Timeout | JsError::OutOfMemory => {
            CouchError::new(500, "os_process_error", format!("update: {e}"))
        }
        other => CouchError::new(500, "render_error", format!("update: {other}")),
    };
    let engine = Engine::new().map_err(failed)?;
    let f = engine
        .compile(src, &Value::Object(design.clone()))
        .map_err(failed)?;
    let old = match doc_id {
        Some(id) => {
            access.before_read(id)?;
            db.winner_body(id)?.map(|mut m| {
                m.insert("_id".into(), json!(id));
                if let Ok(Some(rec)) = db.store.load_doc(id) {
                    m.insert("_rev".into(), json!(rec.winner.to_string()));
                }
                Value::Object(m)
            })
        }
        None => None,
    }
    .unwrap_or(Value::Null);
    let answer = engine
        .call(f, &[&old, &js_request(&meta.name, req, doc_id)])
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
    let mut r = render(&resp, if saved { 201 } else { 200 })?;
    r.headers.extend(headers);
    Ok((r, saved))
}

/// A show/update function's response object (or plain string).
fn render(resp: &Value, default_status: u16) -> CouchResult<Response> {
    let (status, mut headers, body, ct) = match resp {
        Value::String(s) => (
            default_status,
            vec![],
            s.clone().into_bytes(),
            "text/html; charset=utf-8",
        ),
        Value::Object(o) => {
            let status = o
                .get("code")
                .and_then(Value::as_u64)
                .map_or(default_status, |c| c as u16);
            let headers: Vec<(String, String)> = o
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| {
                    h.iter()
                        .filter_map(|(k, v)| {
                            v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let (body, ct) = if let Some(j) = o.get("json") {
                (j.to_string().into_bytes(), "application/json")
            } else if let Some(b) = o.get("base64").and_then(Value::as_str) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|_| {
                        CouchError::new(500, "render_error", "invalid base64 in response")
                    })?;
                (bytes, "application/binary")
            } else {
                let b = o.get("body").and_then(Value::as_str).unwrap_or_default();
                (b.as_bytes().to_vec(), "text/html; charset=utf-8")
            };
            (status, headers, body, ct)
        }
        Value::Null => (default_status, vec![], vec![], "text/html; charset=utf-8"),
        other => {
            return Err(CouchError::new(
                500,
                "render_error",
                format!("undefined response from update function: {other}"),
            ))
        }
    };
    if !headers.iter().any(|(k, _)| k == "content-type") {
        headers.push(("content-type".into(), ct.into()));
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}
