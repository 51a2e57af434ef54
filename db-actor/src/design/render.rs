//! CouchDB's rendering functions: show functions
//! (`/_design/{ddoc}/_show/{name}[/{docid}]`) turn a document into any
//! response, list functions (`/_design/{ddoc}/_list/{name}/[{ddoc}/]{view}`)
//! turn a view's rows into one. Both are deprecated in CouchDB 3 but still
//! served by it; they share the request object and the response format with
//! update handlers.

use super::{Guard, Role};
use crate::js::{Engine, JsError};
use crate::Database;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use shared::doc_read::ReadOpts;
use shared::error::{CouchError, CouchResult};
use shared::http::{Request, Response};
use shared::uuids;
use shared::view::ViewQuery;

/// How a rendering function's failure answers (see [`super::failure`]).
pub fn failure(what: &str, e: JsError) -> CouchError {
    super::failure(what, Role::Render, &e)
}

/// Compiles `{kind}.{name}` of a design document, or CouchDB's 404.
pub fn compile(
    design: &Map<String, Value>,
    kind: &str,
    what: &str,
    ddoc: &str,
    name: &str,
) -> CouchResult<(Engine, crate::js::FnId)> {
    let src = super::source(design, kind, name).map_err(|_| {
        CouchError::not_found(format!(
            "missing {what} function {name} on design doc _design/{ddoc}"
        ))
    })?;
    super::compile(&src, &Value::Object(design.clone()), what, Role::Render)
}

/// What a show or list function produced.
struct Rendered {
    result: Value,
    chunks: String,
    start: Value,
    mime: Option<String>,
}

fn run(
    engine: &Engine,
    f: crate::js::FnId,
    what: &str,
    args: &[&Value],
    rows: Option<&Value>,
    req: &Request,
) -> CouchResult<Rendered> {
    let out = engine
        .render(f, args, rows, req.header("accept"), req.param("format"))
        .map_err(|e| failure(what, e))?;
    if let Some(types) = out.get("not_acceptable") {
        return Err(CouchError::new(
            406,
            "not_acceptable",
            format!(
                "Content-Type(s) {} not supported, try one of: {}",
                req.header("accept")
                    .or(req.param("format"))
                    .unwrap_or("*/*"),
                types
                    .as_array()
                    .map(|t| t
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ),
        ));
    }
    let chunks = out["chunks"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Ok(Rendered {
        result: out["result"].clone(),
        chunks,
        start: out["start"].clone(),
        mime: out["mime"].as_str().map(str::to_string),
    })
}

/// `GET|POST /db/_design/{ddoc}/_show/{name}[/{docid}]`: the function gets
/// the document (null when there is none, or no id) and the request.
pub fn show(
    db: &Database,
    req: &Request,
    access: &dyn Guard,
    ddoc: &str,
    name: &str,
    doc_id: Option<&str>,
) -> CouchResult<Response> {
    let meta = db.meta()?;
    let design = db.design_doc(ddoc)?;
    let (engine, f) = compile(&design, "shows", "show", ddoc, name)?;
    let (doc, doc_rev) = match doc_id {
        Some(id) => {
            access.before_read(id)?;
            match db.get_doc(id, None, &ReadOpts::default()) {
                Ok((rev, body)) => (serde_json::from_slice(&body)?, rev.to_string()),
                Err(e) if e.status == 404 => (Value::Null, String::new()),
                Err(e) => return Err(e),
            }
        }
        None => (Value::Null, String::new()),
    };
    // As CouchDB's `show_etag`: the design document's and the document's
    // revisions, the Accept header and the reader (and here the query too).
    let ddoc_rev = db
        .store
        .load_doc(&format!("_design/{ddoc}"))?
        .map(|r| r.winner.to_string())
        .unwrap_or_default();
    let accept = req.header("accept").unwrap_or_default();
    let tag = shared::http::request_etag(
        req,
        &[ddoc_rev.as_bytes(), doc_rev.as_bytes(), accept.as_bytes()],
    );
    let out = run(
        &engine,
        f,
        "show",
        &[&doc, &js_request(&meta.name, req, doc_id)],
        None,
        req,
    );
    // couchjs answers a show of a missing document that fails with a
    // TypeError (reading a member of `null`) as the document's 404.
    let out = match out {
        Err(e)
            if doc_id.is_some()
                && doc.is_null()
                && e.error == "render_error"
                && e.reason.contains("TypeError") =>
        {
            return Err(CouchError::not_found("document not found"))
        }
        out => out?,
    };
    Ok(response(&out.result, 200, out.mime.as_deref())?.tagged(req, tag))
}

/// `GET|POST /db/_design/{ddoc}/_list/{name}/[{view_ddoc}/]{view}`: the
/// function reads the view's rows (queried with the request's parameters)
/// through `getRow`; `head` has `total_rows` and `offset`.
#[allow(clippy::too_many_arguments)]
pub fn list(
    db: &Database,
    req: &Request,
    body: Option<&Map<String, Value>>,
    ddoc: &str,
    name: &str,
    view_ddoc: &str,
    view: &str,
) -> CouchResult<Response> {
    let meta = db.meta()?;
    let design = db.design_doc(ddoc)?;
    let (engine, f) = compile(&design, "lists", "list", ddoc, name)?;
    let q = ViewQuery::from_request(req, body)?;
    let mut result = db.query_view(view_ddoc, view, &q)?;
    let rows = result["rows"].take();
    let mut head = Map::new();
    for k in ["total_rows", "offset", "update_seq"] {
        if let Some(v) = result.get(k) {
            head.insert(k.into(), v.clone());
        }
    }
    let req_obj = js_request(&meta.name, req, None);
    let out = run(
        &engine,
        f,
        "list",
        &[&Value::Object(head), &req_obj],
        Some(&rows),
        req,
    )?;
    let mut text = out.chunks;
    match &out.result {
        Value::String(s) => text.push_str(s),
        Value::Null => {}
        other => text.push_str(&other.to_string()),
    }
    // `start({code, headers})` and the text sent make one response object.
    let resp = json!({"code": out.start["code"], "headers": out.start["headers"], "body": text});
    response(
        &resp,
        200,
        Some(out.mime.as_deref().unwrap_or("application/json")),
    )
}

/// CouchDB's JavaScript request object.
pub fn js_request(db: &str, req: &Request, doc_id: Option<&str>) -> Value {
    let query: Map<String, Value> = req
        .query
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    // The runtime lower-cases names; CouchDB hands functions the names as
    // clients send them, which is almost always the canonical `X-Foo` form.
    let headers: Map<String, Value> = req
        .headers
        .iter()
        .filter(|(k, _)| k != shared::user::USER_CTX_HEADER)
        .map(|(k, v)| (canonical_header_name(k), Value::String(v.clone())))
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

/// The `headers` member of a response object, names lowercased.
fn headers_of(o: &Map<String, Value>) -> Vec<(String, String)> {
    o.get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A show or update function's response object (or plain string) as an
/// HTTP response; `mime` is the type `provides` chose.
pub fn response(resp: &Value, default_status: u16, mime: Option<&str>) -> CouchResult<Response> {
    let html = mime.unwrap_or("text/html; charset=utf-8");
    let (status, mut headers, body, ct) = match resp {
        Value::String(s) => (default_status, vec![], s.clone().into_bytes(), html),
        Value::Object(o) => {
            let status = o
                .get("code")
                .and_then(Value::as_u64)
                .map_or(default_status, |c| c as u16);
            let headers = headers_of(o);
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
                (b.as_bytes().to_vec(), html)
            };
            (status, headers, body, ct)
        }
        Value::Null => (default_status, vec![], vec![], html),
        other => {
            return Err(CouchError::new(
                500,
                "render_error",
                format!("undefined response from render function: {other}"),
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

/// `x-foo-bar` as `X-Foo-Bar`.
fn canonical_header_name(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}
