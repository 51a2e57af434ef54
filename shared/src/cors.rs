//! CORS, as CouchDB's `[cors]` section configures it: off unless
//! `CORS_ORIGINS` is set (`*` or a comma-separated list).

/// CouchDB's default allowed methods and headers.
const DEFAULT_METHODS: &str = "GET, PUT, POST, HEAD, DELETE";
const DEFAULT_HEADERS: &str = "accept, authorization, content-type, origin, referer";
const DEFAULT_EXPOSED: &str =
    "content-type, cache-control, accept-ranges, etag, server, x-couch-request-id, x-couch-update-newrev, x-couchdb-body-time";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `None` means any origin (`*`).
    pub origins: Option<Vec<String>>,
    pub credentials: bool,
    pub methods: String,
    pub headers: String,
    pub exposed_headers: String,
    pub max_age: Option<u64>,
}

impl Cors {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<Cors> {
        let origins = get("CORS_ORIGINS").filter(|o| !o.trim().is_empty())?;
        let origins = if origins.trim() == "*" {
            None
        } else {
            Some(origins.split(',').map(|o| o.trim().to_string()).collect())
        };
        let or = |k: &str, d: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| d.to_string())
        };
        Some(Cors {
            origins,
            credentials: get("CORS_CREDENTIALS").is_some_and(|v| v.trim() == "true"),
            methods: or("CORS_METHODS", DEFAULT_METHODS),
            headers: or("CORS_HEADERS", DEFAULT_HEADERS),
            exposed_headers: or("CORS_EXPOSED_HEADERS", DEFAULT_EXPOSED),
            max_age: get("CORS_MAX_AGE").and_then(|v| v.trim().parse().ok()),
        })
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins
            .as_ref()
            .is_none_or(|list| list.iter().any(|o| o == origin))
    }

    /// The `Access-Control-Allow-Origin` value for a request's origin. With
    /// credentials the origin is echoed (browsers refuse `*` then).
    fn allow_origin(&self, origin: &str) -> String {
        if self.origins.is_none() && !self.credentials {
            "*".into()
        } else {
            origin.to_string()
        }
    }

    /// Headers for an actual (non-preflight) response.
    pub fn response_headers(&self, origin: Option<&str>) -> Vec<(String, String)> {
        let Some(origin) = origin.filter(|o| self.allows(o)) else {
            return vec![];
        };
        let mut h = vec![
            (
                "access-control-allow-origin".to_string(),
                self.allow_origin(origin),
            ),
            (
                "access-control-expose-headers".to_string(),
                self.exposed_headers.clone(),
            ),
        ];
        if self.credentials {
            h.push(("access-control-allow-credentials".into(), "true".into()));
        }
        if self.origins.is_some() || self.credentials {
            h.push(("vary".into(), "Origin".into()));
        }
        h
    }

    /// Headers answering a preflight (`OPTIONS` with
    /// `Access-Control-Request-Method`); `None` if the origin or method is
    /// not allowed.
    pub fn preflight(&self, origin: Option<&str>, method: &str) -> Option<Vec<(String, String)>> {
        let origin = origin.filter(|o| self.allows(o))?;
        let allowed = self
            .methods
            .split(',')
            .any(|m| m.trim().eq_ignore_ascii_case(method));
        if !allowed {
            return None;
        }
        let mut h = self.response_headers(Some(origin));
        h.retain(|(k, _)| k != "access-control-expose-headers");
        h.push(("access-control-allow-methods".into(), self.methods.clone()));
        h.push(("access-control-allow-headers".into(), self.headers.clone()));
        if let Some(age) = self.max_age {
            h.push(("access-control-max-age".into(), age.to_string()));
        }
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(pairs: &[(&str, &str)]) -> Option<Cors> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Cors::from_lookup(|k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn off_by_default() {
        assert_eq!(cors(&[]), None);
    }

    #[test]
    fn wildcard_and_lists() {
        let any = cors(&[("CORS_ORIGINS", "*")]).unwrap();
        assert_eq!(any.response_headers(Some("https://a.test"))[0].1, "*");
        assert!(any.response_headers(None).is_empty());
        let list = cors(&[
            ("CORS_ORIGINS", "https://a.test, https://b.test"),
            ("CORS_CREDENTIALS", "true"),
            ("CORS_MAX_AGE", "600"),
        ])
        .unwrap();
        let h = list.response_headers(Some("https://b.test"));
        assert_eq!(h[0].1, "https://b.test");
        assert!(h
            .iter()
            .any(|(k, v)| k == "access-control-allow-credentials" && v == "true"));
        assert!(list.response_headers(Some("https://evil.test")).is_empty());
        let pre = list.preflight(Some("https://a.test"), "PUT").unwrap();
        assert!(pre
            .iter()
            .any(|(k, v)| k == "access-control-max-age" && v == "600"));
        assert!(list.preflight(Some("https://a.test"), "PATCH").is_none());
        assert!(list.preflight(Some("https://evil.test"), "GET").is_none());
    }
}
