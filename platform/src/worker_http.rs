//! Converts between the Workers runtime's HTTP types and [`shared::http`].

use shared::http::{Request, Response};
use shared::user::{UserCtx, USER_CTX_HEADER};
use worker::Headers;

/// Reads a runtime request (body included) into a [`Request`]. The user
/// context comes from the router's header, which only the router can set.
pub async fn from_worker(req: &mut worker::Request) -> worker::Result<Request> {
    let url = req.url()?;
    let raw = req.inner().url();
    let target = req.headers().get(shared::http::TARGET_HEADER)?;
    let (path, query) = shared::http::path_and_query(target.as_deref().unwrap_or(&raw));
    let mut out = Request::new(&req.inner().method(), path, query);
    out.headers = req.headers().entries().collect();
    out.set_origin(url.scheme(), url.host_str(), url.port());
    out.user = UserCtx::from_header(req.headers().get(USER_CTX_HEADER)?.as_deref());
    out.body = req.bytes().await.unwrap_or_default();
    Ok(out)
}

/// Builds a runtime response; `HEAD` answers carry the headers only.
pub fn to_worker(resp: Response, head: bool) -> worker::Result<worker::Response> {
    let headers = Headers::new();
    for (k, v) in &resp.headers {
        headers.append(k, v)?;
    }
    headers.set("server", shared::http::SERVER_HEADER)?;
    let builder = worker::Response::builder()
        .with_status(resp.status)
        .with_headers(headers);
    if head || resp.status == 304 || resp.body.is_empty() {
        Ok(builder.empty())
    } else {
        Ok(builder.fixed(resp.body))
    }
}
