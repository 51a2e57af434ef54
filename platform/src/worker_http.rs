//! Converts between the Workers runtime's HTTP types and [`shared::http`].
//!
//! Heads cross between wasm and JavaScript as lines ([`Head`],
//! [`header_lines`]) in one call each way: through `worker`'s wrappers
//! every header costs several calls (an iterator step, an array read and a
//! string copy per name and value), more than a small request's own work.

use js_sys::Promise;
use shared::http::{header_lines, Head, Request, Response};
use shared::user::{UserCtx, USER_CTX_HEADER};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(inline_js = r#"
function lines(headers) {
  let out = "";
  for (const [k, v] of headers) out += k + "\n" + v + "\n";
  return out;
}
function append(headers, text) {
  const parts = text.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) headers.append(parts[i], parts[i + 1]);
  return headers;
}
export function settee_head(req) {
  return req.method + "\n" + req.url + "\n" + lines(req.headers);
}
export function settee_headers(text) {
  return append(new Headers(), text);
}
export function settee_forward(stub, req, url, method, extra, withBody) {
  const headers = new Headers();
  for (const [k, v] of req.headers) if (!k.startsWith("x-settee-")) headers.append(k, v);
  const parts = extra.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) headers.set(parts[i], parts[i + 1]);
  const init = { method, headers };
  if (withBody && req.body) init.body = req.body;
  return stub.fetch(new Request(url, init));
}
export function settee_with_headers(resp, extra) {
  return new Response(resp.body, {
    status: resp.status,
    statusText: resp.statusText,
    headers: append(new Headers(resp.headers), extra),
    webSocket: resp.webSocket,
  });
}
"#)]
extern "C" {
    fn settee_head(req: &web_sys::Request) -> String;
    #[wasm_bindgen(catch)]
    fn settee_headers(lines: &str) -> Result<web_sys::Headers, JsValue>;
    #[wasm_bindgen(catch)]
    fn settee_forward(
        stub: &JsValue,
        req: &web_sys::Request,
        url: &str,
        method: &str,
        extra: &str,
        with_body: bool,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn settee_with_headers(
        resp: &web_sys::Response,
        extra: &str,
    ) -> Result<web_sys::Response, JsValue>;
}

/// The request's method, URL and headers, read in one call.
pub fn head(req: &web_sys::Request) -> Head {
    Head::parse(&settee_head(req))
}

/// Reads a runtime request (body included) into a [`Request`]. The user
/// context comes from the router's header, which only the router can set.
pub async fn from_worker(req: &mut worker::Request) -> worker::Result<Request> {
    let head = head(req.inner());
    let target = head.header(shared::http::TARGET_HEADER);
    let (path, query) = shared::http::path_and_query(target.unwrap_or(&head.url));
    let mut out = Request::new(&head.method, path, query);
    out.set_origin(&head.url);
    out.user = UserCtx::from_header(head.header(USER_CTX_HEADER));
    out.headers = head.headers;
    out.body = req.bytes().await.unwrap_or_default();
    Ok(out)
}

/// Builds a runtime response; `HEAD` answers carry the headers only.
pub fn to_worker(resp: Response, head: bool) -> worker::Result<worker::Response> {
    let pairs = resp.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let lines = header_lines(pairs.chain([("server", shared::http::SERVER_HEADER)]))
        .ok_or_else(|| worker::Error::RustError("a header holds a line break".into()))?;
    let builder = worker::Response::builder()
        .with_status(resp.status)
        .with_headers(worker::Headers(settee_headers(&lines)?));
    if head || resp.status == 304 || resp.body.is_empty() {
        Ok(builder.empty())
    } else {
        Ok(builder.fixed(resp.body))
    }
}

/// Sends `req` on to a Durable Object as `method` at `url`, with its
/// headers less any `x-settee-` ones a client sent, `extra` set over
/// them, and its body unless `with_body` is false.
pub async fn forward(
    stub: worker::Stub,
    req: &web_sys::Request,
    url: &str,
    method: &str,
    extra: &[(&str, &str)],
    with_body: bool,
) -> Result<web_sys::Response, JsValue> {
    let stub: JsValue = stub.into_rpc();
    let lines = header_lines(extra.iter().copied()).ok_or_else(line_break)?;
    let promise = settee_forward(&stub, req, url, method, &lines, with_body)?;
    Ok(JsFuture::from(promise).await?.unchecked_into())
}

/// A response with `extra` headers appended (its body passed on, not read).
pub fn with_headers(
    resp: &web_sys::Response,
    extra: &[(String, String)],
) -> Result<web_sys::Response, JsValue> {
    let lines =
        header_lines(extra.iter().map(|(k, v)| (k.as_str(), v.as_str()))).ok_or_else(line_break)?;
    settee_with_headers(resp, &lines)
}

fn line_break() -> JsValue {
    JsValue::from_str("a header holds a line break")
}

/// A request's whole body (empty when it has none).
pub async fn body(req: &web_sys::Request) -> Vec<u8> {
    let Ok(promise) = req.array_buffer() else {
        return Vec::new();
    };
    JsFuture::from(promise)
        .await
        .map(|buf| js_sys::Uint8Array::new(&buf).to_vec())
        .unwrap_or_default()
}
