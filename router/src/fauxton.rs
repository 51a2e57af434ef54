//! Fauxton, CouchDB's admin UI, at `/_utils/`. Its built release (the npm
//! package `fauxton`, fetched by `scripts/setup.sh` into `.settee/fauxton`)
//! is the Worker's static assets: Workers Static Assets on Cloudflare, a
//! disk service in the local `workerd`, both bound as [`ASSETS_BINDING`].
//! The router maps `/_utils/...` onto those files and answers with the
//! content type and caching CouchDB's own `/_utils` handler would.

use shared::error::{CouchError, CouchResult};
use shared::http::{encode_segment, Request, Response};

/// The binding of the static assets.
pub const ASSETS_BINDING: &str = "ASSETS";

/// Where a `/_utils` request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asset {
    /// `/_utils` without its slash: relative links need it.
    Redirect(String),
    /// This file of the release, as a path from its root.
    File(String),
}

/// The file a `/_utils/...` request asks for (`rest`: the segments after
/// `_utils`).
pub fn resolve(req: &Request, rest: &[String]) -> CouchResult<Asset> {
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        return Err(CouchError::method_not_allowed("GET,HEAD"));
    }
    if rest.is_empty() && !req.raw_path.ends_with('/') {
        let query = req.query_string();
        let sep = if query.is_empty() { "" } else { "?" };
        return Ok(Asset::Redirect(format!("/_utils/{sep}{query}")));
    }
    // Segments are decoded: a `..` or an encoded slash cannot climb out.
    if rest
        .iter()
        .any(|s| s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\']))
    {
        return Err(CouchError::not_found("missing"));
    }
    Ok(Asset::File(match rest {
        [] => "/index.html".to_string(),
        segs => segs
            .iter()
            .map(|s| format!("/{}", encode_segment(s)))
            .collect(),
    }))
}

/// The headers a file is sent with: its type by extension, and caching
/// that lets browsers keep the content-hashed bundles while always
/// revalidating the page that names them.
pub fn headers(path: &str) -> Vec<(String, String)> {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    let content_type = match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "application/javascript",
        "css" => "text/css",
        "json" => "application/json",
        "png" => "image/png",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "eot" => "application/vnd.ms-fontobject",
        _ => "application/octet-stream",
    };
    let cache = if is_hashed(path) {
        "public, max-age=31536000, immutable"
    } else if ext == "html" {
        "no-cache"
    } else {
        "public, max-age=86400"
    };
    vec![
        ("content-type".into(), content_type.into()),
        ("cache-control".into(), cache.into()),
    ]
}

/// Webpack's release names bundles `name.<20 hex digits>.ext`.
fn is_hashed(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split('.')
        .any(|part| part.len() >= 16 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The answer when the assets are not bound (a build without Fauxton).
pub fn not_installed() -> Response {
    Response::error(&CouchError::not_found(
        "Fauxton is not installed: run `make setup` (scripts/setup.sh fetches it)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(raw: &str) -> CouchResult<Asset> {
        let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
        let req = Request::new("GET", path, query);
        resolve(&req, &req.path[1..])
    }

    #[test]
    fn paths_map_onto_the_release() {
        assert_eq!(get("/_utils").unwrap(), Asset::Redirect("/_utils/".into()));
        assert_eq!(
            get("/_utils?x=1").unwrap(),
            Asset::Redirect("/_utils/?x=1".into())
        );
        assert_eq!(get("/_utils/").unwrap(), Asset::File("/index.html".into()));
        assert_eq!(
            get("/_utils/dashboard.assets/js/bundle.bdfacd9ba862d16e41b9.js").unwrap(),
            Asset::File("/dashboard.assets/js/bundle.bdfacd9ba862d16e41b9.js".into())
        );
        for bad in ["/_utils/%2E%2E/x", "/_utils/a%2Fb", "/_utils/.."] {
            assert_eq!(get(bad).unwrap_err().status, 404, "{bad}");
        }
        let post = Request::new("POST", "/_utils/", "");
        assert_eq!(resolve(&post, &[]).unwrap_err().status, 405);
    }

    #[test]
    fn types_and_caching() {
        let h = |p: &str| headers(p);
        assert_eq!(h("/index.html")[0].1, "text/html; charset=utf-8");
        assert_eq!(h("/index.html")[1].1, "no-cache");
        let js = h("/dashboard.assets/js/vendor.172b4f2c2b64f35c7dfc.js");
        assert_eq!(js[0].1, "application/javascript");
        assert_eq!(js[1].1, "public, max-age=31536000, immutable");
        let font = h("/dashboard.assets/fonts/fauxtonicon5.woff");
        assert_eq!(font[0].1, "font/woff");
        assert_eq!(font[1].1, "public, max-age=86400");
    }
}
