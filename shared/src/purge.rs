//! `POST /db/_purge`'s wire format, as CouchDB 3's `chttpd_db` reads and
//! writes it.
//!
//! A request names revisions to forget per document: `{"id": ["rev",
//! ...]}`. Only leaves are purged, each with the ancestors no other leaf
//! shares ([`crate::rev_tree::RevTree::purge`]); a document whose leaves
//! all go disappears. CouchDB bounds a request by its `[purge]`
//! `max_document_id_number` and `max_revisions_number` settings; the
//! answer lists what was purged per id and, clustered, no `purge_seq`.

use crate::error::{CouchError, CouchResult};
use crate::rev::Rev;
use serde_json::{json, Map, Value};

/// CouchDB's default `[purge] max_document_id_number`.
pub const MAX_DOCUMENT_IDS: usize = 100;
/// CouchDB's default `[purge] max_revisions_number`.
pub const MAX_REVISIONS: usize = 1000;
/// CouchDB's default `purged_infos_limit`.
pub const DEFAULT_PURGED_INFOS_LIMIT: u64 = 1000;

/// One document's part of a purge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeRequest {
    pub id: String,
    pub revs: Vec<Rev>,
}

/// Reads a request body, refusing what CouchDB refuses.
pub fn parse(body: &Map<String, Value>) -> CouchResult<Vec<PurgeRequest>> {
    if body.len() > MAX_DOCUMENT_IDS {
        return Err(CouchError::bad_request(
            "Exceeded maximum number of documents.",
        ));
    }
    let reqs = body
        .iter()
        .map(|(id, revs)| {
            Ok(PurgeRequest {
                id: id.clone(),
                revs: Rev::list_from_json(revs)?,
            })
        })
        .collect::<CouchResult<Vec<_>>>()?;
    if reqs.iter().map(|r| r.revs.len()).sum::<usize>() > MAX_REVISIONS {
        return Err(CouchError::bad_request(
            "Exceeded maximum number of revisions.",
        ));
    }
    Ok(reqs)
}

/// The answer: every requested id with the revisions it lost, in request
/// order.
pub fn response(purged: &[(String, Vec<Rev>)]) -> Value {
    let purged: Map<String, Value> = purged
        .iter()
        .map(|(id, revs)| {
            let revs: Vec<String> = revs.iter().map(Rev::to_string).collect();
            (id.clone(), json!(revs))
        })
        .collect();
    json!({"purge_seq": null, "purged": purged})
}

/// `PUT /db/_purged_infos_limit`'s body: a positive integer.
pub fn parse_infos_limit(body: &Value) -> CouchResult<u64> {
    body.as_u64()
        .filter(|n| *n > 0)
        .ok_or_else(|| CouchError::bad_request("`purge_infos_limit` must be positive integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn reads_ids_and_revisions_in_order() {
        let reqs = parse(&obj(json!({"b": ["1-ab"], "a": ["2-cd", "1-ef"]}))).unwrap();
        assert_eq!(reqs[0].id, "b");
        assert_eq!(
            reqs[1].revs,
            ["2-cd".parse().unwrap(), "1-ef".parse().unwrap()]
        );
    }

    #[test]
    fn refuses_what_couchdb_refuses() {
        let reason = |v: Value| parse(&obj(v)).unwrap_err().reason;
        assert_eq!(
            reason(json!({"a": "1-ab"})),
            "Expected a JSON list of revisions"
        );
        assert_eq!(parse(&obj(json!({"a": ["x"]}))).unwrap_err().status, 400);
        let many: Map<String, Value> = (0..101).map(|i| (i.to_string(), json!([]))).collect();
        assert_eq!(
            parse(&many).unwrap_err().reason,
            "Exceeded maximum number of documents."
        );
        let revs: Vec<String> = (1..=1001).map(|i| format!("{i}-ab")).collect();
        assert_eq!(
            reason(json!({"a": revs})),
            "Exceeded maximum number of revisions."
        );
    }

    #[test]
    fn answers_as_a_clustered_couchdb() {
        let r = response(&[
            ("a".into(), vec!["1-ab".parse().unwrap()]),
            ("b".into(), vec![]),
        ]);
        assert_eq!(
            r,
            json!({"purge_seq": null, "purged": {"a": ["1-ab"], "b": []}})
        );
    }

    #[test]
    fn the_infos_limit_is_a_positive_integer() {
        assert_eq!(parse_infos_limit(&json!(5)).unwrap(), 5);
        for bad in [json!(0), json!(-1), json!("5"), json!(1.5)] {
            assert_eq!(parse_infos_limit(&bad).unwrap_err().status, 400);
        }
    }
}
