//! Server limits and defaults, named and defaulted as in CouchDB's ini.

/// Limits the router and actors enforce. Configured from the Worker's
/// environment (`MAX_DOCUMENT_SIZE`, `MAX_HTTP_REQUEST_SIZE`, `MAX_ATTACHMENT_SIZE`,
/// `ATTACHMENT_COMPRESSION_LEVEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `[couchdb] max_document_size`: the largest JSON body of one document.
    pub max_document_size: u64,
    /// `[chttpd] max_http_request_size`: the largest request body.
    pub max_http_request_size: u64,
    /// `[couchdb] max_attachment_size`: the largest attachment.
    pub max_attachment_size: u64,
    /// `[attachments] compression_level`: gzip level for compressible
    /// attachment types; 0 stores everything as sent.
    pub attachment_compression_level: u32,
    /// `VIEW_BUILD_BATCH`: how much index building one invocation (request
    /// or alarm) may do, in documents (a large body counts as several), so
    /// each stays within the Workers CPU limit; longer builds continue in
    /// the actor's alarm.
    pub view_build_batch: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document_size: 8_000_000,
            max_http_request_size: 4_294_967_296,
            max_attachment_size: u64::MAX,
            attachment_compression_level: 8,
            view_build_batch: 20_000,
        }
    }
}

impl Limits {
    /// Builds limits from a lookup of environment values; unset or
    /// unparsable values keep CouchDB's defaults.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let d = Limits::default();
        let num = |k: &str, default: u64| {
            get(k)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        Limits {
            max_document_size: num("MAX_DOCUMENT_SIZE", d.max_document_size),
            max_http_request_size: num("MAX_HTTP_REQUEST_SIZE", d.max_http_request_size),
            max_attachment_size: num("MAX_ATTACHMENT_SIZE", d.max_attachment_size),
            attachment_compression_level: num(
                "ATTACHMENT_COMPRESSION_LEVEL",
                d.attachment_compression_level.into(),
            )
            .min(9) as u32,
            view_build_batch: num("VIEW_BUILD_BATCH", d.view_build_batch).max(1),
        }
    }
}

/// `_revs_limit` of a new database.
pub const DEFAULT_REVS_LIMIT: u64 = 1000;

/// The CouchDB version Settee speaks.
pub const COUCHDB_VERSION: &str = "3.5.0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Limits::from_lookup(|_| None), Limits::default());
        let l = Limits::from_lookup(|k| (k == "MAX_DOCUMENT_SIZE").then(|| "100".to_string()));
        assert_eq!(l.max_document_size, 100);
        assert_eq!(l.max_http_request_size, 4_294_967_296);
        let l = Limits::from_lookup(|_| Some("junk".into()));
        assert_eq!(l, Limits::default());
    }
}
