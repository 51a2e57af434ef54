//! Partitioned databases and shards, as CouchDB 3 names them.
//!
//! In a partitioned database every document id but `_design/` and
//! `_local/` ones is `partition:docid`; a partition's documents sort
//! together (`p:` up to `p;`), so a partition query is a range of the id
//! index. Settee holds a database in one actor, so its `q` shards are
//! ranges of CouchDB's hash space on one node, reported as CouchDB does.

use crate::all_docs::{AllDocsQuery, Bound};
use crate::doc;
use crate::error::{CouchError, CouchResult};
use serde_json::{json, Value};

/// `PUT /db?partitioned=...`: whether to partition the database `name`.
pub fn create_option(value: Option<&str>, name: &str) -> CouchResult<bool> {
    match value {
        None | Some("false") => Ok(false),
        Some("true")
            if name.starts_with('_')
                || name.ends_with("/_users")
                || name.ends_with("/_replicator") =>
        {
            Err(CouchError::bad_request(
                "Cannot partition a system database",
            ))
        }
        Some("true") => Ok(true),
        Some(_) => Err(CouchError::bad_request(
            "`partitioned` parameter can only be set to true.",
        )),
    }
}

fn illegal_partition(reason: &str) -> CouchError {
    CouchError::new(400, "illegal_partition", reason)
}

/// A partition name (`GET /db/_partition/{p}`, and the part before the
/// colon of an id).
pub fn validate_partition(p: &str) -> CouchResult<()> {
    if p.is_empty() {
        return Err(illegal_partition("Partition must not be empty"));
    }
    if p.starts_with('_') {
        return Err(illegal_partition(
            "Partition must not start with an underscore",
        ));
    }
    if p.contains(':') {
        return Err(illegal_partition("Partition must not contain a colon"));
    }
    Ok(())
}

/// A document id in a partitioned database, after [`doc::validate_id`].
pub fn validate_docid(id: &str) -> CouchResult<()> {
    if doc::is_design(id) || doc::is_local(id) {
        return Ok(());
    }
    match id.split_once(':') {
        None => Err(CouchError::illegal_docid(
            "Doc id must be of form partition:id",
        )),
        Some((p, rest)) => {
            validate_partition(p)?;
            doc::validate_id(rest)
        }
    }
}

/// The first and the after-last id of partition `p`.
pub fn id_range(p: &str) -> (String, String) {
    (format!("{p}:"), format!("{p};"))
}

/// Narrows an `_all_docs` query to partition `p`: ranges are cut to the
/// partition's, and keys of other partitions are left out.
pub fn scope_all_docs(mut q: AllDocsQuery, p: &str) -> AllDocsQuery {
    let (first, after) = id_range(p);
    if let Some(keys) = &mut q.keys {
        keys.retain(|k| k.as_str().is_some_and(|k| k.starts_with(&first)));
        return q;
    }
    let (lo, hi) = if q.descending {
        (&q.end, &q.start)
    } else {
        (&q.start, &q.end)
    };
    // The later of the two low ends, the earlier of the two high ones; the
    // partition's own high end is the first id past it, so excluded.
    let lo = match lo {
        Some(Bound::Id(id)) if *id > first => id.clone(),
        _ => first,
    };
    let (hi, hi_inclusive) = match hi {
        Some(Bound::Id(id)) if *id < after => (id.clone(), q.inclusive_end),
        _ => (after, false),
    };
    if q.descending {
        q.start = Some(Bound::Id(hi));
        q.end = Some(Bound::Id(lo));
    } else {
        q.start = Some(Bound::Id(lo));
        q.end = Some(Bound::Id(hi));
        q.inclusive_end = hi_inclusive;
    }
    q
}

/// CouchDB's hash of a document id for shard placement: the partition's
/// in a partitioned database, else the whole id.
pub fn hash(id: &str, partitioned: bool) -> u32 {
    let key = match id.split_once(':') {
        Some((p, _)) if partitioned && !id.starts_with('_') => p,
        _ => id,
    };
    crc32fast::hash(key.as_bytes())
}

/// The `q` shard ranges (`00000000-1fffffff`, ...).
pub fn ranges(q: u64) -> Vec<(u32, u32, String)> {
    let q = q.clamp(1, 256);
    let size = (1u64 << 32) / q;
    (0..q)
        .map(|i| {
            let lo = (i * size) as u32;
            let hi = if i == q - 1 {
                u32::MAX
            } else {
                ((i + 1) * size - 1) as u32
            };
            (lo, hi, format!("{lo:08x}-{hi:08x}"))
        })
        .collect()
}

/// `GET /db/_shards`.
pub fn shards(q: u64, node: &str) -> Value {
    let map: serde_json::Map<String, Value> = ranges(q)
        .into_iter()
        .map(|(_, _, r)| (r, json!([node])))
        .collect();
    json!({ "shards": map })
}

/// `GET /db/_shards/{docid}`.
pub fn shard_of(id: &str, partitioned: bool, q: u64, node: &str) -> Value {
    let h = hash(id, partitioned);
    let range = ranges(q)
        .into_iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&h))
        .map(|(_, _, r)| r)
        .unwrap_or_default();
    json!({ "range": range, "nodes": [node] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_a_partitioned_database() {
        assert!(validate_docid("p:a").is_ok());
        assert!(validate_docid("_design/x").is_ok());
        assert!(validate_docid("_local/x").is_ok());
        let err = |id: &str| validate_docid(id).unwrap_err();
        assert_eq!(err("plain").reason, "Doc id must be of form partition:id");
        assert_eq!(err(":a").error, "illegal_partition");
        assert_eq!(err("p:").reason, "Document id must not be empty");
        assert_eq!(
            err("p:_x").reason,
            "Only reserved document ids may start with underscore."
        );
        assert_eq!(
            validate_partition("_p").unwrap_err().error,
            "illegal_partition"
        );
        assert_eq!(create_option(Some("tru"), "db").unwrap_err().status, 400);
        assert!(create_option(Some("true"), "_users").is_err());
        assert!(create_option(Some("true"), "db").unwrap());
        assert!(!create_option(Some("false"), "db").unwrap());
    }

    #[test]
    fn all_docs_stays_within_the_partition() {
        let q = scope_all_docs(AllDocsQuery::default(), "p");
        assert_eq!(
            (q.start, q.end, q.inclusive_end),
            (
                Some(Bound::Id("p:".into())),
                Some(Bound::Id("p;".into())),
                false
            )
        );
        let q = AllDocsQuery {
            start: Some(Bound::Id("p:m".into())),
            end: Some(Bound::Id("z".into())),
            inclusive_end: true,
            ..Default::default()
        };
        let q = scope_all_docs(q, "p");
        assert_eq!(
            (q.start, q.end, q.inclusive_end),
            (
                Some(Bound::Id("p:m".into())),
                Some(Bound::Id("p;".into())),
                false
            )
        );
        let q = AllDocsQuery {
            start: Some(Bound::Id("p:b".into())),
            end: Some(Bound::Id("p:c".into())),
            inclusive_end: true,
            ..Default::default()
        };
        let q = scope_all_docs(q, "p");
        assert_eq!(
            (q.end, q.inclusive_end),
            (Some(Bound::Id("p:c".into())), true)
        );
        let q = AllDocsQuery {
            descending: true,
            ..Default::default()
        };
        let q = scope_all_docs(q, "p");
        assert_eq!(
            (q.start, q.end),
            (Some(Bound::Id("p;".into())), Some(Bound::Id("p:".into())))
        );
        let q = AllDocsQuery {
            keys: Some(vec![json!("p:a"), json!("q:a"), json!(1)]),
            ..Default::default()
        };
        assert_eq!(scope_all_docs(q, "p").keys, Some(vec![json!("p:a")]));
    }

    #[test]
    fn shards_split_the_hash_space() {
        assert_eq!(
            shards(1, "n")["shards"],
            json!({"00000000-ffffffff": ["n"]})
        );
        let r = ranges(8);
        assert_eq!(r[0].2, "00000000-1fffffff");
        assert_eq!(r[7].2, "e0000000-ffffffff");
        assert_eq!(shard_of("a", false, 1, "n")["range"], "00000000-ffffffff");
        assert_eq!(
            hash("p:a", true),
            hash("p:b", true),
            "one partition, one shard"
        );
    }
}
