//! Partitioned databases and shards, as CouchDB 3 names them.
//!
//! In a partitioned database every document id but `_design/` and
//! `_local/` ones is `partition:docid`; a partition's documents sort
//! together (`p:` up to `p;`), so a partition query is a range of the id
//! index. Settee holds a database in one actor, so its `q` shards are
//! ranges of CouchDB's hash space on one node, reported as CouchDB does.
//!
//! Partitioned view and Mango indexes store each row's key after its
//! partition's [`key_prefix`], so a partition's rows are one contiguous
//! range of the index (in their own order within it) and a partition query
//! reads only them, however large the other partitions grow.

use crate::all_docs::{AllDocsQuery, Bound, KeyRange};
use crate::doc;
use crate::error::{CouchError, CouchResult};
use crate::mango::KeyBounds;
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

/// The partition of a document id (design and local documents have none).
pub fn of(id: &str) -> Option<&str> {
    if id.starts_with('_') {
        return None;
    }
    id.split_once(':').map(|(p, _)| p)
}

/// What a partitioned index puts before a row's encoded key: the
/// partition's bytes, escaped and terminated as collation keys are, so no
/// partition's prefix is the start of another's.
pub fn key_prefix(p: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len() + 2);
    crate::collate::push_terminated(p.as_bytes(), &mut out);
    out
}

/// The encoded keys of partition `p`'s rows: from its prefix (included) to
/// the first key past them (excluded). The prefix ends in its terminator
/// `00 00`; raising the last byte to `01` sorts after every key that starts
/// with the prefix and before every other partition's.
pub fn key_range(p: &str) -> (Vec<u8>, Vec<u8>) {
    let lo = key_prefix(p);
    let mut hi = lo.clone();
    *hi.last_mut().expect("terminated") = 0x01;
    (lo, hi)
}

/// An id range cut to partition `p`'s ids.
pub fn scope_ids(mut r: KeyRange, p: &str) -> KeyRange {
    let (first, after) = id_range(p);
    if r.lo.as_ref().is_none_or(|(lo, _)| *lo < first) {
        r.lo = Some((first, true));
    }
    if r.hi.as_ref().is_none_or(|(hi, _)| *hi >= after) {
        r.hi = Some((after, false));
    }
    r
}

/// A Mango index scan's bounds moved into partition `p`'s rows.
pub fn scope_bounds(mut b: KeyBounds, p: &str) -> KeyBounds {
    let (lo, hi) = key_range(p);
    let within = |k: Vec<u8>| [lo.as_slice(), &k].concat();
    b.lower = Some(match b.lower.take() {
        Some((k, incl)) => (within(k), incl),
        None => (lo.clone(), true),
    });
    b.upper = Some(match b.upper.take() {
        Some((k, incl)) => (within(k), incl),
        None => (hi, false),
    });
    b
}

/// The limit of a partition query: at most `max` rows
/// (`partition_query_limit`), which is also the limit when none is given.
pub fn query_limit(limit: Option<u64>, max: u64) -> CouchResult<u64> {
    match limit {
        Some(l) if l > max => Err(CouchError::new(
            400,
            "query_parse_error",
            format!("Limit is too large, must not exceed {max}"),
        )),
        Some(l) => Ok(l),
        None => Ok(max),
    }
}

/// Narrows an `_all_docs` query to partition `p`: ranges are cut to the
/// partition's, and keys of other partitions are left out.
pub fn scope_all_docs(mut q: AllDocsQuery, p: &str) -> AllDocsQuery {
    q.partition = Some(p.to_string());
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
    fn partition_keys_are_contiguous_and_apart() {
        use crate::collate::encode_key;
        use serde_json::json;
        assert_eq!(of("p:a:b"), Some("p"));
        assert_eq!(of("_design/x"), None);
        assert_eq!(of("plain"), None);
        let row = |p: &str, k: Value| [key_prefix(p), encode_key(&k)].concat();
        // Each partition's rows lie inside its range, and no other's do,
        // even for partitions that are prefixes of one another or hold NUL.
        let parts = ["a", "a\u{0}", "a\u{0}b", "ab", "b", "A", "\u{ff}"];
        let keys = [
            json!(null),
            json!(1),
            json!("z"),
            json!([{"x": [1]}]),
            json!({}),
        ];
        for p in parts {
            let (lo, hi) = key_range(p);
            for q in parts {
                for k in &keys {
                    let r = row(q, k.clone());
                    assert_eq!(lo <= r && r < hi, p == q, "{p:?} {q:?} {k}");
                }
            }
        }
        // Within a partition, keys keep their collation order.
        assert!(row("p", json!(1)) < row("p", json!("a")));
        assert!(row("p", json!("a")) < row("p", json!(["a"])));
    }

    #[test]
    fn ids_and_index_bounds_stay_within_the_partition() {
        let all = scope_ids(KeyRange::default(), "p");
        assert_eq!(all.lo, Some(("p:".into(), true)));
        assert_eq!(all.hi, Some(("p;".into(), false)));
        let narrow = KeyRange {
            lo: Some(("p:b".into(), false)),
            hi: Some(("p:m".into(), true)),
            empty: false,
        };
        assert_eq!(scope_ids(narrow.clone(), "p"), narrow);
        let (lo, hi) = key_range("p");
        let b = scope_bounds(KeyBounds::default(), "p");
        assert_eq!(
            (b.lower, b.upper),
            (Some((lo.clone(), true)), Some((hi, false)))
        );
        let b = scope_bounds(
            KeyBounds {
                lower: Some((vec![5], false)),
                upper: Some((vec![9], true)),
                ..Default::default()
            },
            "p",
        );
        assert_eq!(b.lower, Some(([lo.as_slice(), &[5]].concat(), false)));
        assert_eq!(b.upper, Some(([lo.as_slice(), &[9]].concat(), true)));
    }

    #[test]
    fn partition_queries_are_limited() {
        assert_eq!(query_limit(None, 2000).unwrap(), 2000);
        assert_eq!(query_limit(Some(2000), 2000).unwrap(), 2000);
        assert_eq!(query_limit(Some(5), 2000).unwrap(), 5);
        let e = query_limit(Some(2001), 2000).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (400, "Limit is too large, must not exceed 2000")
        );
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
