//! CouchDB's error model: an HTTP status plus a `{"error","reason"}` body.
//!
//! The `error` strings are the ones CouchDB 3 sends; clients (PouchDB in
//! particular) branch on them, so they are part of the protocol.

use serde_json::{json, Value};
use std::fmt;

/// An error as CouchDB reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouchError {
    pub status: u16,
    pub error: String,
    pub reason: String,
}

pub type CouchResult<T> = Result<T, CouchError>;

impl CouchError {
    pub fn new(status: u16, error: impl Into<String>, reason: impl Into<String>) -> Self {
        CouchError {
            status,
            error: error.into(),
            reason: reason.into(),
        }
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(400, "bad_request", reason)
    }

    pub fn invalid_json() -> Self {
        Self::bad_request("invalid UTF-8 JSON")
    }

    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(404, "not_found", reason)
    }

    /// A document that never existed (`missing`) or whose winner is deleted.
    pub fn doc_not_found(deleted: bool) -> Self {
        Self::not_found(if deleted { "deleted" } else { "missing" })
    }

    pub fn db_not_found() -> Self {
        Self::not_found("Database does not exist.")
    }

    pub fn conflict() -> Self {
        Self::new(409, "conflict", "Document update conflict.")
    }

    pub fn db_exists() -> Self {
        Self::new(
            412,
            "file_exists",
            "The database could not be created, the file already exists.",
        )
    }

    pub fn bad_rev() -> Self {
        Self::bad_request("Invalid rev format")
    }

    pub fn illegal_docid(reason: impl Into<String>) -> Self {
        Self::new(400, "illegal_docid", reason)
    }

    pub fn doc_validation(reason: impl Into<String>) -> Self {
        Self::new(400, "doc_validation", reason)
    }

    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", reason)
    }

    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(403, "forbidden", reason)
    }

    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(405, "method_not_allowed", format!("Only {allowed} allowed"))
    }

    pub fn request_too_large() -> Self {
        Self::new(413, "too_large", "the request entity is too large")
    }

    pub fn document_too_large(id: &str) -> Self {
        Self::new(413, "document_too_large", id)
    }

    pub fn unsupported_media_type(reason: impl Into<String>) -> Self {
        Self::new(415, "bad_content_type", reason)
    }

    pub fn not_implemented(reason: impl Into<String>) -> Self {
        Self::new(501, "not_implemented", reason)
    }

    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(500, "internal_server_error", reason)
    }

    /// The body CouchDB sends for this error.
    pub fn to_json(&self) -> Value {
        json!({ "error": self.error, "reason": self.reason })
    }

    /// Reads back an answer another actor sent: `Ok(body)` below 400, else
    /// the error its [`CouchError::to_json`] body describes.
    pub fn check_reply(status: u16, body: Value) -> Result<Value, CouchError> {
        if status < 400 {
            return Ok(body);
        }
        Err(CouchError::new(
            status,
            body["error"].as_str().unwrap_or("error"),
            body["reason"].as_str().unwrap_or(""),
        ))
    }
}

impl fmt::Display for CouchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.error, self.reason)
    }
}

impl std::error::Error for CouchError {}

impl From<serde_json::Error> for CouchError {
    /// Any JSON error is CouchDB's `invalid UTF-8 JSON`, except nesting past
    /// serde_json's limit, which is named: the body is valid, only deep.
    fn from(e: serde_json::Error) -> Self {
        if e.to_string().starts_with("recursion limit exceeded") {
            return CouchError::bad_request(
                "JSON nested too deeply: at most 127 levels of arrays and objects are accepted",
            );
        }
        CouchError::invalid_json()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replies_read_back_as_errors_or_bodies() {
        let e = super::CouchError::conflict();
        let back = super::CouchError::check_reply(e.status, e.to_json()).unwrap_err();
        assert_eq!(
            (back.status, back.error, back.reason),
            (e.status, e.error, e.reason)
        );
        let ok = serde_json::json!({"ok": true});
        assert_eq!(super::CouchError::check_reply(201, ok.clone()).unwrap(), ok);
        let bare = super::CouchError::check_reply(502, serde_json::Value::Null).unwrap_err();
        assert_eq!((bare.status, bare.error.as_str()), (502, "error"));
    }

    use super::*;

    #[test]
    fn bodies_match_couchdb() {
        assert_eq!(
            CouchError::conflict().to_json(),
            json!({"error": "conflict", "reason": "Document update conflict."})
        );
        assert_eq!(CouchError::doc_not_found(true).reason, "deleted");
        assert_eq!(
            CouchError::method_not_allowed("GET,HEAD").reason,
            "Only GET,HEAD allowed"
        );
    }
}
