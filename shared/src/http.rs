//! A runtime-neutral HTTP request and response.
//!
//! The actors translate the Workers runtime's `Request`/`Response` into these
//! types at their edge, so every CouchDB endpoint can be exercised by native
//! tests without a runtime.

use crate::error::{CouchError, CouchResult};
use crate::user::UserCtx;
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::Value;

/// The `Server` header: CouchDB's name first, as clients sniff for it.
pub const SERVER_HEADER: &str = concat!("CouchDB/3.5.0 (Settee/", env!("CARGO_PKG_VERSION"), ")");

/// The method a request stands for: a `POST` may name another in
/// `X-HTTP-Method-Override` (for clients that cannot send it), as CouchDB
/// allows for its own vocabulary.
pub fn effective_method(method: &str, method_override: Option<&str>) -> String {
    const OVERRIDABLE: [&str; 8] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT", "COPY",
    ];
    match method_override {
        Some(m) if method.eq_ignore_ascii_case("POST") && OVERRIDABLE.contains(&m) => m.to_string(),
        _ => method.to_ascii_uppercase(),
    }
}

/// A request as CouchDB endpoints see it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Upper-case method name (`GET`, `COPY`, ...).
    pub method: String,
    /// Path segments, percent-decoded one by one (so `%2F` stays inside a segment).
    pub path: Vec<String>,
    /// The path as it arrived, still percent-encoded (where the segments
    /// cannot tell, e.g. a trailing slash).
    pub raw_path: String,
    /// Query parameters in order, decoded.
    pub query: Vec<(String, String)>,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Who the router authenticated; never read from a client header.
    pub user: UserCtx,
    /// The URL scheme the request arrived with (`http`, `https`); empty is `http`.
    pub scheme: String,
    /// The first path segment (by index into `path`) whose percent-decoded
    /// bytes are not UTF-8: CouchDB refuses such names, where a lossy
    /// decoding would make `%FF`, `%FE` and U+FFFD one document.
    pub invalid_segment: Option<usize>,
}

impl Request {
    /// The body as sent before any `Content-Encoding` (clients such as
    /// IBM's Cloudant SDK, used by couchbackup, gzip what they send). The
    /// decoded body may not exceed `limit` bytes.
    pub fn decoded(mut self, limit: u64) -> CouchResult<Self> {
        let encoding = self
            .header("content-encoding")
            .map(|e| e.trim().to_ascii_lowercase());
        match encoding.as_deref() {
            None | Some("" | "identity") => return Ok(self),
            Some("gzip" | "x-gzip") => {}
            Some(other) => {
                return Err(CouchError::new(
                    415,
                    "bad_content_type",
                    format!("Content-Encoding {other} is not supported"),
                ))
            }
        }
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(self.body.as_slice())
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|_| CouchError::bad_request("Request body is not valid gzip content"))?;
        if out.len() as u64 > limit {
            return Err(CouchError::request_too_large());
        }
        self.body = out;
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-encoding"));
        Ok(self)
    }

    /// Builds a request from a method, a raw (still percent-encoded) path and
    /// query string.
    pub fn new(method: &str, raw_path: &str, raw_query: &str) -> Self {
        let (path, invalid_segment) = decode_segments(raw_path);
        Request {
            method: method.to_ascii_uppercase(),
            path,
            invalid_segment,
            raw_path: raw_path.to_string(),
            query: parse_query(raw_query),
            ..Default::default()
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// Records the URL the request arrived at (`scheme://host[:port]/...`,
    /// as the runtime serializes it): its scheme, and its host as the
    /// `Host` header when the runtime did not pass one on. Read from the
    /// text: a full URL parse costs more than a small request's work.
    pub fn set_origin(&mut self, url: &str) {
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        self.scheme = scheme.to_ascii_lowercase();
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if self.header("host").is_none() && !host.is_empty() {
            self.headers.push(("host".into(), host.to_string()));
        }
    }

    /// `path` as an absolute URL on the host the client addressed, as
    /// CouchDB's `absolute_uri` writes `Location` headers: the host from
    /// `X-Forwarded-Host` or `Host`, the scheme from `X-Forwarded-Proto`,
    /// `X-Forwarded-Ssl: on` or the request. Without a host, `path` itself.
    pub fn absolute_uri(&self, path: &str) -> String {
        let Some(host) = self
            .header("x-forwarded-host")
            .or_else(|| self.header("host"))
        else {
            return path.to_string();
        };
        let scheme = match (
            self.header("x-forwarded-proto"),
            self.header("x-forwarded-ssl"),
        ) {
            (Some(p), _) => p,
            (None, Some(ssl)) if ssl.eq_ignore_ascii_case("on") => "https",
            _ if self.scheme.is_empty() => "http",
            _ => self.scheme.as_str(),
        };
        format!("{scheme}://{host}{path}")
    }

    /// The query parameters encoded again (`a=1&b=x+y`), for passing on.
    pub fn query_string(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.query)
            .finish()
    }

    /// The last value of a query parameter, as CouchDB takes it.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: `true`/`false` in any case (CouchDB's
    /// `parse_boolean` lower-cases first, and Python clients send `True`);
    /// anything else is a 400.
    pub fn bool_param(&self, name: &str) -> CouchResult<Option<bool>> {
        match self.param(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(CouchError::new(
                400,
                "query_parse_error",
                format!("Invalid boolean parameter: \"{v}\""),
            )),
        }
    }

    pub fn flag(&self, name: &str) -> CouchResult<bool> {
        Ok(self.bool_param(name)?.unwrap_or(false))
    }

    /// A non-negative integer parameter.
    pub fn uint_param(&self, name: &str) -> CouchResult<Option<u64>> {
        match self.param(name) {
            None => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                CouchError::new(
                    400,
                    "query_parse_error",
                    format!("Invalid value for `{name}`: \"{v}\""),
                )
            }),
        }
    }

    /// A parameter whose value is JSON (`key`, `startkey`, `keys`, ...).
    pub fn json_param(&self, name: &str) -> CouchResult<Option<Value>> {
        match self.param(name) {
            None => Ok(None),
            Some(v) => serde_json::from_str(v).map(Some).map_err(|_| {
                CouchError::bad_request(format!("Invalid JSON for parameter `{name}`: {v}"))
            }),
        }
    }

    /// The body parsed as JSON; an empty body is a 400 like CouchDB's.
    pub fn json_body(&self) -> CouchResult<Value> {
        if self.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(CouchError::bad_request(
                "Request body must be a JSON object",
            ));
        }
        serde_json::from_slice(&self.body).map_err(CouchError::from)
    }

    /// Like [`Request::json_body`] but requires a JSON object.
    pub fn json_object_body(&self) -> CouchResult<serde_json::Map<String, Value>> {
        match self.json_body()? {
            Value::Object(m) => Ok(m),
            _ => Err(CouchError::bad_request(
                "Request body must be a JSON object",
            )),
        }
    }

    /// Whether the client accepts `mime` explicitly.
    pub fn accepts(&self, mime: &str) -> bool {
        self.header("accept").is_some_and(|a| a.contains(mime))
    }
}

/// Splits a raw path into decoded segments. Empty segments are dropped, as
/// CouchDB (mochiweb) does for `//`.
pub fn split_path(raw: &str) -> Vec<String> {
    decode_segments(raw).0
}

/// The decoded segments of a raw path, and the index of the first whose
/// bytes are not UTF-8 (it is decoded lossily, for messages only).
fn decode_segments(raw: &str) -> (Vec<String>, Option<usize>) {
    let mut invalid = None;
    let segments = raw_segments(raw)
        .enumerate()
        .map(|(i, s)| {
            // A `+` is a space, as CouchDB's default `decode_plus_to_space`
            // (a literal plus comes as `%2B`).
            let s = s.replace('+', " ");
            let decoded = percent_decode_str(&s);
            match decoded.clone().decode_utf8() {
                Ok(text) => text.into_owned(),
                Err(_) => {
                    invalid = invalid.or(Some(i));
                    decoded.decode_utf8_lossy().into_owned()
                }
            }
        })
        .collect();
    (segments, invalid)
}

/// The header in which the router hands a database actor the request
/// target as the client sent it: a URL string given to the runtime's
/// `Request` constructor is parsed again, and WHATWG parsing resolves `.`,
/// `..`, `%2E` and `%2E%2E` segments, which would turn `DELETE /db/doc/..`
/// into `DELETE /db/`. Clients cannot set it (the router drops `x-settee-`
/// headers).
pub const TARGET_HEADER: &str = "x-settee-target";

/// Splits a request URL (`http://host/p?q#f`) or origin-form target
/// (`/p?q`) into its path and query as written, without resolving dot
/// segments or decoding anything.
pub fn path_and_query(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let target = if url.starts_with('/') {
        url
    } else {
        after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
    };
    let target = target.split('#').next().unwrap_or_default();
    target.split_once('?').unwrap_or((target, ""))
}

/// The [`TARGET_HEADER`] value for a request URL: its path and query as
/// sent, with anything but printable ASCII percent-encoded (a header holds
/// bytes, and decoding the path restores them).
pub fn target_header(url: &str) -> String {
    let (path, query) = path_and_query(url);
    let target = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    percent_encoding::utf8_percent_encode(&target, percent_encoding::CONTROLS).to_string()
}

/// The value of the header `name` (in any case) among `headers`.
pub fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A request's method, URL and headers as they cross from JavaScript to
/// wasm in one call (one call per header costs more than the request's
/// own work in the router): each line ends with `\n`, which no method,
/// serialized URL, header name or header value holds (`Headers` refuses
/// CR, LF and NUL in values).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Head {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// Reads `method\nurl\n` followed by [`header_lines`].
    pub fn parse(lines: &str) -> Head {
        let mut it = lines.split('\n');
        let method = it.next().unwrap_or_default().to_string();
        let url = it.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            headers.push((k.to_string(), v.to_string()));
        }
        Head {
            method,
            url,
            headers,
        }
    }

    /// The value of a header, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
}

/// Headers as lines for JavaScript to build a `Headers` from in one call:
/// name and value, each followed by `\n`. `None` when one holds a line
/// break, which no header may (`Headers` would refuse it too).
pub fn header_lines<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
    let mut out = String::new();
    for (k, v) in pairs {
        if k.contains('\n') || v.contains('\n') {
            return None;
        }
        out.push_str(k);
        out.push('\n');
        out.push_str(v);
        out.push('\n');
    }
    Some(out)
}

fn raw_segments(raw: &str) -> impl Iterator<Item = &str> {
    raw.split('/').filter(|s| !s.is_empty())
}

/// An HTTP `Date` (RFC 7231 IMF-fixdate) for seconds since the epoch:
/// CouchDB sends one with every answer, and clients' caches read it.
pub fn http_date(secs: u64) -> String {
    crate::date::rfc1123(secs.saturating_mul(1000))
}

/// Decodes a query string (`a=1&b=x+y`) into pairs.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.trim_start_matches('?').as_bytes())
        .into_owned()
        .collect()
}

/// Percent-encodes one path segment (for `Location` headers and redirects).
pub fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'(')
    .remove(b')')
    .remove(b'$')
    .remove(b'+');

/// A response body: bytes ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response with CouchDB's standard headers.
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        let bytes = serde_json::to_vec(body).expect("serialisable");
        Self::raw_json(status, bytes)
    }

    /// A JSON response from already-serialised bytes (the fast path for
    /// stored document bodies).
    pub fn raw_json(status: u16, mut bytes: Vec<u8>) -> Self {
        bytes.push(b'\n');
        Response {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "must-revalidate".into()),
            ],
            body: bytes,
        }
    }

    pub fn ok() -> Self {
        Self::json(200, &serde_json::json!({"ok": true}))
    }

    pub fn error(err: &CouchError) -> Self {
        Self::json(err.status, &err.to_json())
    }

    pub fn empty(status: u16) -> Self {
        Response {
            status,
            headers: vec![],
            body: vec![],
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_header(name, value);
        self
    }

    /// Tags a 200 answer with an `ETag` of its body and `extra` (what else
    /// the answer stands for), and answers 304 to a request whose
    /// `If-None-Match` already holds it: view results change only when their
    /// index does, so clients can revalidate them cheaply.
    pub fn conditional(self, req: &Request, extra: &str) -> Self {
        let tag = etag(&[&self.body, extra.as_bytes()]);
        self.tagged(req, tag)
    }

    /// Gives a 200 the `ETag` `tag` (quoted here), or answers a request
    /// that already holds it with 304.
    pub fn tagged(self, req: &Request, tag: String) -> Self {
        if self.status != 200 {
            return self;
        }
        let etag = format!("\"{tag}\"");
        if req
            .header("if-none-match")
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
        {
            return Response::empty(304).with_header("etag", etag);
        }
        self.with_header("etag", etag)
    }

    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The body parsed as JSON (for tests).
    pub fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl From<CouchError> for Response {
    fn from(e: CouchError) -> Self {
        Response::error(&e)
    }
}

/// Collapses a handler result into a response.
pub fn respond(result: CouchResult<Response>) -> Response {
    result.unwrap_or_else(|e| Response::error(&e))
}

/// An entity tag: the hex MD5 of `parts`, each length-prefixed so no two
/// lists of parts collide.
pub fn etag(parts: &[&[u8]]) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    crate::rev::hex(&h.finalize())
}

/// The `ETag` of an answer decided by `state` and by the request itself:
/// its reader, method, query and body.
pub fn request_etag(req: &Request, state: &[&[u8]]) -> String {
    let user = serde_json::to_vec(&(&req.user.name, &req.user.roles)).expect("serialisable");
    let query = serde_json::to_vec(&req.query).expect("serialisable");
    let mut parts = state.to_vec();
    parts.extend([&user[..], req.method.as_bytes(), &query, &req.body]);
    etag(&parts)
}

/// Answers 405 with CouchDB's reason listing the methods this path takes.
pub fn method_not_allowed<T>(allowed: &str) -> CouchResult<T> {
    Err(CouchError::method_not_allowed(allowed))
}

#[cfg(test)]
mod tests {
    #[test]
    fn head_lines_round_trip() {
        let lines = format!(
            "PUT\nhttp://h/db/a%20b?x=1\n{}",
            header_lines([
                ("authorization", "Basic YTpi"),
                ("x-empty", ""),
                ("accept", "*/*")
            ])
            .unwrap()
        );
        let head = Head::parse(&lines);
        assert_eq!(head.method, "PUT");
        assert_eq!(head.url, "http://h/db/a%20b?x=1");
        assert_eq!(
            head.headers,
            vec![
                ("authorization".to_string(), "Basic YTpi".to_string()),
                ("x-empty".to_string(), String::new()),
                ("accept".to_string(), "*/*".to_string()),
            ]
        );
        assert_eq!(head.header("Authorization"), Some("Basic YTpi"));
        assert_eq!(head.header("missing"), None);
        assert!(Head::parse("GET\nhttp://h/\n").headers.is_empty());
        let mut req = Request::new("GET", "/", "");
        req.set_origin("https://user:pw@[::1]:6984/db?x=1");
        assert_eq!(
            (req.scheme.as_str(), req.header("host")),
            ("https", Some("[::1]:6984"))
        );
        let mut req = Request::new("GET", "/", "").with_header("host", "couch.example");
        req.set_origin("http://127.0.0.1:5984");
        assert_eq!(
            (req.scheme.as_str(), req.header("host")),
            ("http", Some("couch.example"))
        );
        assert_eq!(header_lines([("content-type", "text/plain\nx: y")]), None);
    }

    use super::*;

    #[test]
    fn targets_keep_their_dot_segments_and_bad_bytes() {
        assert_eq!(
            path_and_query("http://h:5984/db/doc/%2E%2E?rev=1-a#x"),
            ("/db/doc/%2E%2E", "rev=1-a")
        );
        assert_eq!(path_and_query("https://h/db/./.."), ("/db/./..", ""));
        assert_eq!(path_and_query("/db/%2E?a=b"), ("/db/%2E", "a=b"));
        assert_eq!(path_and_query("http://h"), ("/", ""));
        assert_eq!(
            target_header("http://h/d/\u{e9}/%2E?q=1"),
            "/d/%C3%A9/%2E?q=1"
        );
        let r = Request::new("DELETE", "/db/doc/..", "");
        assert_eq!(r.path, ["db", "doc", ".."]);
        assert_eq!(r.invalid_segment, None);
        assert_eq!(
            Request::new("GET", "/db/a/%FF", "").invalid_segment,
            Some(2)
        );
        assert_eq!(
            Request::new("GET", "/db/%EF%BF%BD", "").invalid_segment,
            None
        );
    }

    #[test]
    fn gzip_request_bodies_are_decoded() {
        let body = br#"{"docs":[{"id":"a"}]}"#;
        let gz = crate::attachments::gzip(body, 6);
        let req = |enc: &str, b: &[u8]| {
            Request::new("POST", "/db/_bulk_get", "")
                .with_header("content-encoding", enc)
                .with_body(b.to_vec())
        };
        let r = req("gzip", &gz).decoded(1000).unwrap();
        assert_eq!(r.body, body);
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(req("identity", body).decoded(1000).unwrap().body, body);
        assert_eq!(req("gzip", body).decoded(1000).unwrap_err().status, 400);
        assert_eq!(req("br", body).decoded(1000).unwrap_err().status, 415);
        // A small body that inflates past the limit is refused.
        let bomb = crate::attachments::gzip(&vec![b' '; 100_000], 9);
        assert_eq!(req("gzip", &bomb).decoded(1000).unwrap_err().status, 413);
    }

    #[test]
    fn path_segments_keep_encoded_slashes() {
        let r = Request::new("get", "/db/a%2Fb/att%20x", "rev=1-a&x=a+b");
        assert_eq!(r.path, vec!["db", "a/b", "att x"]);
        assert_eq!(r.method, "GET");
        let q = Request::new("GET", "/_all_dbs", "startkey=%22a%26b%22&x=a+b%2Bc");
        assert_eq!(q.query_string(), "startkey=%22a%26b%22&x=a+b%2Bc");
        assert_eq!(parse_query(&q.query_string()), q.query);
        assert_eq!(r.param("rev"), Some("1-a"));
        assert_eq!(r.param("x"), Some("a b"));
        assert_eq!(
            split_path("/db/some+crazy%2Bname"),
            ["db", "some crazy+name"]
        );
    }

    #[test]
    fn bad_params_are_400() {
        let r = Request::new("GET", "/db", "limit=abc&descending=maybe&key=%7B");
        assert_eq!(r.uint_param("limit").unwrap_err().status, 400);
        assert_eq!(r.bool_param("descending").unwrap_err().status, 400);
        assert_eq!(r.json_param("key").unwrap_err().status, 400);
    }

    #[test]
    fn absolute_uri_follows_the_host_asked_for() {
        let r = Request::new("PUT", "/db", "");
        assert_eq!(r.absolute_uri("/db"), "/db");
        let r = r.with_header("Host", "127.0.0.1:5984");
        assert_eq!(r.absolute_uri("/db"), "http://127.0.0.1:5984/db");
        let r = Request {
            scheme: "https".into(),
            ..r
        };
        assert_eq!(r.absolute_uri("/db"), "https://127.0.0.1:5984/db");
        let r = r
            .with_header("x-forwarded-host", "couch.example")
            .with_header("x-forwarded-proto", "http");
        assert_eq!(r.absolute_uri("/d/x"), "http://couch.example/d/x");
    }

    #[test]
    fn conditional_answers_304_to_its_own_etag() {
        let req = Request::new("GET", "/db/_design/d/_view/v", "");
        let r = Response::json(200, &serde_json::json!({"rows": []})).conditional(&req, "");
        let etag = r.header("etag").unwrap().to_string();
        let again = Response::json(200, &serde_json::json!({"rows": []}))
            .conditional(&req.clone().with_header("if-none-match", &etag), "");
        assert_eq!(
            (again.status, again.header("etag")),
            (304, Some(etag.as_str()))
        );
        let changed = Response::json(200, &serde_json::json!({"rows": [1]}))
            .conditional(&req.with_header("if-none-match", &etag), "");
        assert_eq!(changed.status, 200);
        assert_ne!(changed.header("etag"), Some(etag.as_str()));
    }

    #[test]
    fn method_override_applies_to_post_only() {
        assert_eq!(effective_method("POST", Some("PUT")), "PUT");
        assert_eq!(effective_method("POST", Some("put")), "POST");
        assert_eq!(effective_method("POST", Some("PATCH")), "POST");
        assert_eq!(effective_method("GET", Some("PUT")), "GET");
        assert_eq!(effective_method("POST", None), "POST");
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_796_358_080), "Fri, 04 Dec 2026 04:21:20 GMT");
    }

    #[test]
    fn booleans_ignore_case() {
        let r = Request::new("GET", "/db", "a=True&b=FALSE&c=1");
        assert_eq!(r.bool_param("a").unwrap(), Some(true));
        assert_eq!(r.bool_param("b").unwrap(), Some(false));
        assert_eq!(r.bool_param("c").unwrap_err().status, 400);
    }

    #[test]
    fn encode_segment_round_trips() {
        let s = "a/b c?é";
        assert_eq!(split_path(&encode_segment(s)), vec![s]);
    }
}
