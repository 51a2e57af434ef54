//! `_local` documents: never replicated, no history; revisions count `0-1`,
//! `0-2`, ... and a stale one is a 409, which replication checkpointers
//! (PouchDB's, CouchDB's) rely on.

use crate::database::Database;
use serde_json::Value;
use shared::doc;
use shared::error::{CouchError, CouchResult};

fn parse_local_rev(rev: &str) -> CouchResult<u64> {
    rev.strip_prefix("0-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(CouchError::bad_rev)
}

impl Database<'_> {
    /// `GET /db/_local/id`: the document JSON.
    pub fn get_local(&self, id: &str) -> CouchResult<Vec<u8>> {
        self.meta()?;
        let (rev, body) = self
            .store
            .local_doc(id)?
            .ok_or_else(|| CouchError::doc_not_found(false))?;
        Ok(doc::render(id, &format!("0-{rev}"), false, &body, &[]))
    }

    /// `PUT /db/_local/id` (or a delete when `_deleted` is true). The given
    /// rev must match the stored one. Returns the new rev.
    pub fn put_local(&self, id: &str, body: Value, given_rev: Option<&str>) -> CouchResult<String> {
        shared::doc::validate_id(id)?;
        let Value::Object(mut map) = body else {
            return Err(CouchError::bad_request("Document must be a JSON object"));
        };
        let body_rev = match map.shift_remove("_rev") {
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(CouchError::bad_rev()),
            None => None,
        };
        let rev = body_rev.as_deref().or(given_rev);
        let deleted = map.shift_remove("_deleted") == Some(Value::Bool(true));
        map.shift_remove("_id");
        map.retain(|k, _| !matches!(k.as_str(), "_revisions" | "_revs_info" | "_conflicts"));
        // Stored as sent, as CouchDB keeps a local document's body: its
        // `_attachments` (PouchDB keeps some there) are data, not contents.
        if let Some(k) = map.keys().find(|k| {
            k.starts_with('_') && !shared::doc::is_kept_special(k) && *k != "_attachments"
        }) {
            return Err(CouchError::doc_validation(format!(
                "Bad special document member: {k}"
            )));
        }
        let body = serde_json::to_vec(&map).expect("serialisable");
        if body.len() as u64 > self.limits.max_document_size {
            return Err(CouchError::document_too_large(id));
        }
        self.transact(|| {
            self.meta()?;
            let current = self.store.local_doc(id)?.map(|(r, _)| r);
            let given = rev.map(parse_local_rev).transpose()?;
            match (current, given) {
                (Some(c), Some(g)) if c == g => {}
                (None, None) => {}
                // CouchDB lets a missing local doc be written with any rev.
                (None, Some(_)) if !deleted => {}
                (None, Some(_)) => return Err(CouchError::doc_not_found(false)),
                _ => return Err(CouchError::conflict()),
            }
            if deleted {
                self.store.delete_local_doc(id)?;
                return Ok("0-0".to_string());
            }
            let next = current.unwrap_or_else(|| given.unwrap_or(0)) + 1;
            self.store.put_local_doc(id, next, &body)?;
            Ok(format!("0-{next}"))
        })
    }
}
