//! Grouped reduce queries answered group by group.
//!
//! A group's rows are one range of the index: the rows of one encoded key
//! (`group=true`, or a key too short for its `group_level`), or every key
//! whose encoding starts with the bytes of its first N items (see
//! `shared::collate::array_prefix`). So a group's reduction is a `COUNT`
//! (`_count`) or a stored reduction (any other reduce) over that range,
//! and the next group starts just past it: a few statements per group
//! instead of a read of every row.
//!
//! Small groups are cheaper to scan than to jump over. The first groups
//! measure their sizes; when they are small on average the walk stops and
//! hands the rest of the range back to the row scan.

use crate::database::Database;
use crate::reducer::Reducer;
use crate::store::{ViewBound, ViewRange};
use serde_json::{json, Value};
use shared::error::CouchResult;
use shared::view::{self, Builtin, GroupLevel};
use std::cmp::Ordering;

/// Groups measured before the walk decides whether to go on.
const SAMPLE: usize = 4;

/// Rows a group must have on average for the walk to beat the scan: one
/// `COUNT` costs about what scanning a few dozen rows does; a stored
/// reduction, with its edges, a few hundred.
fn worth_walking(r: &Reducer) -> u64 {
    match r {
        Reducer::Builtin(Builtin::Count) => 24,
        _ => 192,
    }
}

/// What the walk found: the groups in order (`{"key", "value"}`), and the
/// part of the range it left to the scan (none when it reached the end).
pub(crate) struct Walked {
    pub groups: Vec<Value>,
    pub rest: Option<ViewRange>,
}

/// How a group's rows are bounded: exactly one key, or a key prefix.
enum Extent {
    Key(Vec<u8>),
    Prefix(Vec<u8>),
}

impl Extent {
    /// The group's far bound, in the range's direction.
    fn end(&self, descending: bool) -> Option<ViewBound> {
        let bound = |key: Vec<u8>, inclusive| ViewBound {
            key,
            doc_id: None,
            inclusive,
        };
        match (self, descending) {
            (Extent::Key(k), _) => Some(bound(k.clone(), true)),
            (Extent::Prefix(p), false) => successor(p).map(|s| bound(s, false)),
            (Extent::Prefix(p), true) => Some(bound(p.clone(), true)),
        }
    }

    /// Where the next group may start (none: no key can follow): the far
    /// bound's key, on its other side.
    fn next_start(&self, descending: bool) -> Option<ViewBound> {
        self.end(descending).map(|b| ViewBound {
            inclusive: !b.inclusive,
            ..b
        })
    }
}

/// The least byte string above every string starting with `prefix`.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < u8::MAX {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

/// The tighter of the query's far bound and the group's. On equal keys
/// the query's is at least as tight when the group's includes its key
/// (it can only add a document id bound), else the group's is.
fn tighter(
    query: Option<&ViewBound>,
    group: Option<ViewBound>,
    descending: bool,
) -> Option<ViewBound> {
    match (query, group) {
        (None, g) => g,
        (Some(q), None) => Some(q.clone()),
        (Some(q), Some(g)) => {
            let order = q.key.cmp(&g.key);
            let query_first = match order {
                Ordering::Equal => g.inclusive,
                o => (o == Ordering::Less) != descending,
            };
            Some(if query_first { q.clone() } else { g })
        }
    }
}

impl Database<'_> {
    /// Walks `range` group by group while groups are large enough,
    /// stopping once `want` groups are found. `identity` gives the length
    /// of the encoded-key bytes that identify a row's group (the whole key
    /// for a group of one key). Stored reductions that fail to be made
    /// leave the whole range to the scan.
    pub(crate) fn walk_groups(
        &self,
        idx: i64,
        r: &Reducer,
        range: &ViewRange,
        level: GroupLevel,
        identity: &dyn Fn(&[u8]) -> usize,
        want: usize,
    ) -> CouchResult<Walked> {
        let everything = || Walked {
            groups: Vec::new(),
            rest: Some(range.clone()),
        };
        let mut rows_seen = 0u64;
        let tree = match r {
            Reducer::Builtin(Builtin::Count) => None,
            // Sampled before the stored reductions are made or brought up
            // to date, which small groups would not use.
            _ => match self.sample_rows(idx, range, identity)? {
                Some(rows) if rows < worth_walking(r) * SAMPLE as u64 => return Ok(everything()),
                sampled => {
                    rows_seen = sampled.unwrap_or(u64::MAX);
                    let Some(tree) = r.stored(self.current_reductions(idx, r))? else {
                        return Ok(everything());
                    };
                    Some(tree)
                }
            },
        };
        let mut groups = Vec::new();
        let mut range = range.clone();
        let mut first = self.store.view_first(idx, &range)?;
        while let Some(row) = first {
            let enough = groups.len() >= want;
            if enough || (groups.len() == SAMPLE && rows_seen < worth_walking(r) * SAMPLE as u64) {
                let rest = (!enough).then_some(range);
                return Ok(Walked { groups, rest });
            }
            let (group, next) = split_group(&range, &row.sort_key, identity);
            let value = match tree {
                None => {
                    let (n, after) =
                        self.store
                            .view_count_then_first(idx, &group, next.as_ref())?;
                    rows_seen += n;
                    first = after;
                    json!(n)
                }
                Some(tree) => {
                    let Some(value) = r.stored(self.reduction_from(idx, tree, r, &group))? else {
                        return Ok(Walked {
                            groups,
                            rest: Some(range),
                        });
                    };
                    first = match &next {
                        Some(next) => self.store.view_first(idx, next)?,
                        None => None,
                    };
                    value.unwrap_or(Value::Null)
                }
            };
            let key: Value = serde_json::from_str(&row.key)?;
            groups.push(json!({"key": view::group_key(&key, level), "value": value}));
            match next {
                Some(next) => range = next,
                None => break,
            }
        }
        Ok(Walked { groups, rest: None })
    }

    /// The rows of the first [`SAMPLE`] groups of `range`; `None` when it
    /// has fewer groups (all of them are walked then).
    fn sample_rows(
        &self,
        idx: i64,
        range: &ViewRange,
        identity: &dyn Fn(&[u8]) -> usize,
    ) -> CouchResult<Option<u64>> {
        let mut range = range.clone();
        let mut rows = 0;
        let mut first = self.store.view_first(idx, &range)?;
        for _ in 0..SAMPLE {
            let Some(row) = first else { return Ok(None) };
            let (group, next) = split_group(&range, &row.sort_key, identity);
            let (n, after) = self
                .store
                .view_count_then_first(idx, &group, next.as_ref())?;
            rows += n;
            first = after;
            match next {
                Some(next) => range = next,
                None => return Ok(None),
            }
        }
        Ok(Some(rows))
    }
}

/// The group of `range` that starts with the row sorting as `sort_key`,
/// and the rest of the range after it (none when nothing can follow).
fn split_group(
    range: &ViewRange,
    sort_key: &[u8],
    identity: &dyn Fn(&[u8]) -> usize,
) -> (ViewRange, Option<ViewRange>) {
    let len = identity(sort_key);
    let extent = if len == sort_key.len() {
        Extent::Key(sort_key.to_vec())
    } else {
        Extent::Prefix(sort_key[..len].to_vec())
    };
    let desc = range.descending;
    let group = ViewRange {
        start: range.start.clone(),
        end: tighter(range.end.as_ref(), extent.end(desc), desc),
        descending: desc,
    };
    let next = extent.next_start(desc).map(|start| ViewRange {
        start: Some(start),
        ..range.clone()
    });
    (group, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_is_above_every_extension_of_the_prefix() {
        assert_eq!(successor(&[1, 2, 3]), Some(vec![1, 2, 4]));
        assert_eq!(successor(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(successor(&[0xff]), None);
        assert!(successor(&[7, 9]).unwrap().as_slice() > [7, 9, 0xff, 0xff].as_slice());
    }

    fn b(key: &[u8], inclusive: bool) -> ViewBound {
        ViewBound {
            key: key.to_vec(),
            doc_id: None,
            inclusive,
        }
    }

    #[test]
    fn the_tighter_bound_is_nearer_in_the_range_direction() {
        let pick = |q: ViewBound, g: ViewBound, desc| tighter(Some(&q), Some(g), desc).unwrap();
        assert_eq!(pick(b(&[3], true), b(&[5], false), false).key, vec![3]);
        assert_eq!(pick(b(&[7], true), b(&[5], false), false).key, vec![5]);
        assert_eq!(pick(b(&[3], true), b(&[5], true), true).key, vec![5]);
        assert_eq!(pick(b(&[7], true), b(&[5], true), true).key, vec![7]);
        // Equal keys: an exclusive group bound wins, an inclusive one
        // leaves the query's (which may add a document id).
        assert!(!pick(b(&[5], true), b(&[5], false), false).inclusive);
        let with_id = ViewBound {
            doc_id: Some("d".into()),
            ..b(&[5], true)
        };
        assert_eq!(
            pick(with_id, b(&[5], true), false).doc_id.as_deref(),
            Some("d")
        );
    }
}
