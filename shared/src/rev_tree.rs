//! A document's revision tree, as `couch_key_tree` keeps it.
//!
//! The tree is stored flat: every known revision maps to its parent's hash
//! (when the parent is still in the tree) and whether it is a deletion.
//! Branches appear when two edits share a parent or when replication brings
//! in a history that does not connect; stemming (`_revs_limit`) cuts every
//! branch to the newest `limit` revisions, which may turn inner nodes into
//! roots. Only leaves matter for the winner and for conflicts.

use crate::error::{CouchError, CouchResult};
use crate::rev::Rev;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Hash of the parent (at `pos - 1`), if the parent is still in the tree.
    pub parent: Option<String>,
    pub deleted: bool,
}

/// A leaf: a revision with no children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub rev: Rev,
    pub deleted: bool,
}

impl Leaf {
    /// CouchDB's winner order: live beats deleted, then higher position,
    /// then higher hash.
    fn rank(&self) -> (bool, &Rev) {
        (!self.deleted, &self.rev)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevTree {
    nodes: BTreeMap<Rev, Node>,
}

/// Serialised form: `(pos, hash, parent hash or "", deleted)` per node.
#[derive(Serialize, Deserialize)]
struct Stored(Vec<(u64, String, String, bool)>);

impl RevTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn contains(&self, rev: &Rev) -> bool {
        self.nodes.contains_key(rev)
    }

    pub fn get(&self, rev: &Rev) -> Option<&Node> {
        self.nodes.get(rev)
    }

    /// All revisions, oldest position first.
    pub fn revs(&self) -> impl Iterator<Item = (&Rev, &Node)> {
        self.nodes.iter()
    }

    fn children<'a>(&'a self, rev: &'a Rev) -> impl Iterator<Item = &'a Rev> + 'a {
        let lo = Rev::new(rev.pos + 1, "");
        let hi = Rev::new(rev.pos + 2, "");
        self.nodes
            .range(lo..hi)
            .filter(move |(_, n)| n.parent.as_deref() == Some(rev.hash.as_str()))
            .map(|(r, _)| r)
    }

    pub fn is_leaf(&self, rev: &Rev) -> bool {
        self.contains(rev) && self.children(rev).next().is_none()
    }

    /// Every leaf, best (winner) first.
    pub fn leaves(&self) -> Vec<Leaf> {
        let parents: HashSet<(u64, &str)> = self
            .nodes
            .iter()
            .filter_map(|(r, n)| n.parent.as_deref().map(|p| (r.pos - 1, p)))
            .collect();
        let mut leaves: Vec<Leaf> = self
            .nodes
            .iter()
            .filter(|(r, _)| !parents.contains(&(r.pos, r.hash.as_str())))
            .map(|(r, n)| Leaf {
                rev: r.clone(),
                deleted: n.deleted,
            })
            .collect();
        leaves.sort_by(|a, b| b.rank().cmp(&a.rank()));
        leaves
    }

    /// The winning revision by CouchDB's rule.
    pub fn winner(&self) -> Option<Leaf> {
        self.leaves().into_iter().next()
    }

    /// The revision and its ancestors still in the tree, newest first.
    pub fn ancestry(&self, rev: &Rev) -> Vec<Rev> {
        let mut out = Vec::new();
        let mut cur = self.nodes.get_key_value(rev);
        while let Some((r, n)) = cur {
            out.push(r.clone());
            cur = n
                .parent
                .as_ref()
                .and_then(|p| self.nodes.get_key_value(&Rev::new(r.pos - 1, p.clone())));
        }
        out
    }

    /// The leaves reachable from `rev` (itself if it is a leaf): what
    /// `latest=true` resolves a requested revision to.
    pub fn latest(&self, rev: &Rev) -> Vec<Leaf> {
        if !self.contains(rev) {
            return vec![];
        }
        self.leaves()
            .into_iter()
            .filter(|l| l.rev.pos >= rev.pos && self.ancestry(&l.rev).contains(rev))
            .collect()
    }

    /// Purges leaves as `couch_key_tree:remove_leafs/2` does: each given
    /// leaf goes with every ancestor no remaining leaf descends from
    /// (revisions that are not leaves are ignored). Returns the purged
    /// leaves and every revision that left the tree.
    pub fn purge(&mut self, revs: &[Rev]) -> (Vec<Rev>, Vec<Rev>) {
        let purged: Vec<Rev> = self
            .leaves()
            .into_iter()
            .map(|l| l.rev)
            .filter(|l| revs.contains(l))
            .collect();
        if purged.is_empty() {
            return (purged, vec![]);
        }
        let kept: HashSet<Rev> = self
            .leaves()
            .iter()
            .filter(|l| !purged.contains(&l.rev))
            .flat_map(|l| self.ancestry(&l.rev))
            .collect();
        let removed: Vec<Rev> = self
            .nodes
            .keys()
            .filter(|r| !kept.contains(r))
            .cloned()
            .collect();
        for r in &removed {
            self.nodes.remove(r);
        }
        (purged, removed)
    }

    /// Adds a new edit (`new_edits=true`): `rev` as a child of `parent`.
    /// The caller has checked that `parent` is a leaf.
    pub fn add_edit(&mut self, parent: Option<&Rev>, rev: Rev, deleted: bool) {
        let parent = parent.filter(|p| self.contains(p)).map(|p| p.hash.clone());
        self.nodes.insert(rev, Node { parent, deleted });
    }

    /// Merges a replicated history (`new_edits=false`): `path` is the leaf and
    /// its ancestors, newest first, with consecutive positions. Known nodes
    /// are kept; unknown ones are added; a stemmed root whose parent arrives
    /// is grafted back. Returns whether the leaf was new.
    pub fn merge_path(&mut self, path: &[Rev], deleted: bool) -> bool {
        let Some(leaf) = path.first() else {
            return false;
        };
        let is_new = !self.contains(leaf);
        for i in (0..path.len()).rev() {
            let parent = path.get(i + 1).map(|p| p.hash.clone());
            match self.nodes.get_mut(&path[i]) {
                Some(node) => {
                    if node.parent.is_none() {
                        node.parent = parent;
                    }
                }
                None => {
                    self.nodes.insert(
                        path[i].clone(),
                        Node {
                            parent,
                            deleted: i == 0 && deleted,
                        },
                    );
                }
            }
        }
        is_new
    }

    /// Keeps on every branch only the `limit` newest revisions (counted from
    /// each leaf), as `_revs_limit` asks. Returns the revisions removed.
    pub fn stem(&mut self, limit: u64) -> Vec<Rev> {
        let limit = limit.max(1);
        // Distance of each node to its nearest leaf; children come after
        // parents in key order, so a reverse walk sees children first.
        let mut dist: HashMap<Rev, u64> = HashMap::with_capacity(self.nodes.len());
        for (rev, node) in self.nodes.iter().rev() {
            let d = *dist.entry(rev.clone()).or_insert(0);
            if let Some(p) = &node.parent {
                let pk = Rev::new(rev.pos - 1, p.clone());
                let e = dist.entry(pk).or_insert(u64::MAX);
                *e = (*e).min(d + 1);
            }
        }
        let removed: Vec<Rev> = self
            .nodes
            .keys()
            .filter(|r| dist.get(*r).copied().unwrap_or(0) >= limit)
            .cloned()
            .collect();
        for r in &removed {
            self.nodes.remove(r);
        }
        if !removed.is_empty() {
            let keys: Vec<Rev> = self.nodes.keys().cloned().collect();
            for r in keys {
                let orphan = self.nodes[&r]
                    .parent
                    .as_ref()
                    .is_some_and(|p| !self.contains(&Rev::new(r.pos - 1, p.clone())));
                if orphan {
                    self.nodes.get_mut(&r).expect("present").parent = None;
                }
            }
        }
        removed
    }

    /// Decides the parent of an interactive edit (`new_edits=true`), or
    /// refuses it with 409 as CouchDB does: the given rev must be a leaf; with
    /// no rev, the document must not exist or its winner must be deleted.
    pub fn edit_parent(tree: Option<&RevTree>, given: Option<&Rev>) -> CouchResult<Option<Rev>> {
        match (tree.filter(|t| !t.is_empty()), given) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(CouchError::conflict()),
            (Some(t), Some(r)) if t.is_leaf(r) => Ok(Some(r.clone())),
            (Some(_), Some(_)) => Err(CouchError::conflict()),
            (Some(t), None) => match t.winner() {
                Some(w) if w.deleted => Ok(Some(w.rev)),
                _ => Err(CouchError::conflict()),
            },
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let stored = Stored(
            self.nodes
                .iter()
                .map(|(r, n)| {
                    (
                        r.pos,
                        r.hash.clone(),
                        n.parent.clone().unwrap_or_default(),
                        n.deleted,
                    )
                })
                .collect(),
        );
        rmp_serde::to_vec(&stored).expect("serialisable")
    }

    pub fn from_bytes(bytes: &[u8]) -> CouchResult<RevTree> {
        let Stored(rows) = rmp_serde::from_slice(bytes)
            .map_err(|e| CouchError::internal(format!("corrupt revision tree: {e}")))?;
        let nodes = rows
            .into_iter()
            .map(|(pos, hash, parent, deleted)| {
                let parent = (!parent.is_empty()).then_some(parent);
                (Rev::new(pos, hash), Node { parent, deleted })
            })
            .collect();
        Ok(RevTree { nodes })
    }
}

/// Builds the path (leaf first) that a replicated document describes with
/// `_revisions: {start, ids}`, or just its `_rev`. As in `couch_doc`,
/// `_revisions` wins: a `_rev` beside it is not consulted.
pub fn path_from_revisions(
    rev: Option<&Rev>,
    revisions: Option<&serde_json::Value>,
) -> CouchResult<Vec<Rev>> {
    let Some(revs) = revisions else {
        return rev.map(|r| vec![r.clone()]).ok_or_else(|| {
            CouchError::bad_request("Document rev is required with new_edits=false")
        });
    };
    let start = revs.get("start").and_then(|s| s.as_u64());
    let ids = revs.get("ids").and_then(|i| i.as_array());
    let (Some(start), Some(ids)) = (start, ids) else {
        return Err(CouchError::bad_request(
            "_revisions must have start and ids",
        ));
    };
    if ids.is_empty() || start < ids.len() as u64 {
        return Err(CouchError::bad_request(
            "_revisions start is too small for its ids",
        ));
    }
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            id.as_str()
                .filter(|s| !s.is_empty())
                .map(|h| Rev::new(start - i as u64, h))
                .ok_or_else(CouchError::bad_rev)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(s: &str) -> Rev {
        s.parse().unwrap()
    }

    /// A tree from linear paths given leaf-first, e.g. `["3-c 2-b 1-a"]`;
    /// a `!` suffix on the leaf marks it deleted.
    fn tree(paths: &[&str]) -> RevTree {
        let mut t = RevTree::new();
        for p in paths {
            let mut deleted = false;
            let revs: Vec<Rev> = p
                .split_whitespace()
                .map(|s| {
                    if let Some(s) = s.strip_suffix('!') {
                        deleted = true;
                        r(s)
                    } else {
                        r(s)
                    }
                })
                .collect();
            t.merge_path(&revs, deleted);
        }
        t
    }

    fn leaves(t: &RevTree) -> Vec<String> {
        t.leaves()
            .iter()
            .map(|l| format!("{}{}", l.rev, if l.deleted { "!" } else { "" }))
            .collect()
    }

    #[test]
    fn winner_table() {
        let cases: &[(&[&str], &str)] = &[
            (&["1-a"], "1-a"),
            (&["2-b 1-a", "2-c 1-a"], "2-c"),
            (&["3-x 2-b 1-a", "2-c 1-a"], "3-x"),
            // A live conflict beats a deeper deleted winner.
            (&["3-x! 2-b 1-a", "2-c 1-a"], "2-c"),
            // All leaves deleted: highest deleted wins.
            (&["3-x! 2-b 1-a", "2-c! 1-a"], "3-x"),
            // Disconnected branches (stemmed histories) compete too.
            (&["5-e 4-d", "2-b 1-a"], "5-e"),
        ];
        for (paths, want) in cases {
            let t = tree(paths);
            assert_eq!(t.winner().unwrap().rev.to_string(), *want, "{paths:?}");
        }
    }

    #[test]
    fn leaves_sorted_best_first() {
        let t = tree(&["2-b 1-a", "2-c! 1-a", "3-d 2-e 1-a"]);
        assert_eq!(leaves(&t), ["3-d", "2-b", "2-c!"]);
        assert!(t.is_leaf(&r("2-b")));
        assert!(!t.is_leaf(&r("1-a")));
        assert!(!t.is_leaf(&r("9-z")));
    }

    #[test]
    fn merge_is_idempotent_and_reports_new_leaves() {
        let mut t = tree(&["2-b 1-a"]);
        assert!(!t.merge_path(&[r("2-b"), r("1-a")], false));
        assert!(!t.merge_path(&[r("1-a")], false), "known inner node");
        assert!(t.merge_path(&[r("3-c"), r("2-b"), r("1-a")], false));
        assert_eq!(leaves(&t), ["3-c"]);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn merging_a_stemmed_branch() {
        // Local tree stemmed to its last two revisions.
        let mut t = tree(&["4-d 3-c 2-b 1-a"]);
        t.stem(2);
        assert_eq!(t.ancestry(&r("4-d")), vec![r("4-d"), r("3-c")]);
        // A peer sends the full history plus a new edit: it must extend the
        // existing branch, not create a conflict.
        t.merge_path(&[r("5-e"), r("4-d"), r("3-c"), r("2-b"), r("1-a")], false);
        assert_eq!(leaves(&t), ["5-e"]);
        t.stem(2);
        assert_eq!(t.ancestry(&r("5-e")), vec![r("5-e"), r("4-d")]);
        assert_eq!(t.len(), 2);
        // A peer sending only an old, stemmed-away ancestry adds a branch.
        let mut t2 = tree(&["5-e 4-d"]);
        assert!(t2.merge_path(&[r("2-x"), r("1-a")], false));
        assert_eq!(leaves(&t2), ["5-e", "2-x"]);
    }

    #[test]
    fn stemming_keeps_limit_per_branch() {
        let mut t = tree(&["4-d 3-c 2-b 1-a", "2-x 1-a"]);
        let mut removed = t.stem(2);
        removed.sort();
        // 1-a is within 2 of leaf 2-x, so it stays.
        assert_eq!(removed, vec![r("2-b")]);
        assert_eq!(t.ancestry(&r("4-d")), vec![r("4-d"), r("3-c")]);
        assert_eq!(t.ancestry(&r("2-x")), vec![r("2-x"), r("1-a")]);
        let removed = t.stem(1);
        assert_eq!(removed.len(), 2);
        assert_eq!(leaves(&t), ["4-d", "2-x"]);
    }

    #[test]
    fn purge_removes_a_leaf_and_its_own_branch() {
        let mut t = tree(&["3-c 2-b 1-a", "2-x 1-a"]);
        // An inner revision or an unknown one purges nothing.
        assert_eq!(t.purge(&[r("2-b"), r("9-z")]), (vec![], vec![]));
        let (purged, removed) = t.purge(&[r("3-c")]);
        assert_eq!(purged, [r("3-c")]);
        assert_eq!(removed, [r("2-b"), r("3-c")]);
        assert_eq!(leaves(&t), ["2-x"]);
        let (_, removed) = t.purge(&[r("2-x")]);
        assert_eq!(removed, [r("1-a"), r("2-x")]);
        assert!(t.is_empty());
    }

    #[test]
    fn identical_edits_on_two_nodes_converge() {
        let base = tree(&["1-a"]);
        let rev = Rev::next(Some(&r("1-a")), false, &serde_json::Map::new(), &[]);
        let (mut n1, mut n2) = (base.clone(), base);
        n1.add_edit(Some(&r("1-a")), rev.clone(), false);
        n2.add_edit(Some(&r("1-a")), rev.clone(), false);
        // Replicating n2's history into n1 adds nothing.
        let path = n2.ancestry(&rev);
        assert!(!n1.merge_path(&path, false));
        assert_eq!(n1, n2);
        assert_eq!(n1.leaves().len(), 1);
    }

    #[test]
    fn edit_parent_rules() {
        let t = tree(&["2-b 1-a", "2-c! 1-a"]);
        let del = tree(&["2-d! 1-a"]);
        type Case<'a> = (
            Option<&'a RevTree>,
            Option<&'a str>,
            Result<Option<&'a str>, u16>,
        );
        let cases: Vec<Case> = vec![
            (None, None, Ok(None)),
            (None, Some("1-a"), Err(409)),
            (Some(&t), Some("2-b"), Ok(Some("2-b"))),
            (Some(&t), Some("2-c"), Ok(Some("2-c"))),
            (Some(&t), Some("1-a"), Err(409)),
            (Some(&t), Some("3-q"), Err(409)),
            (Some(&t), None, Err(409)),
            (Some(&del), None, Ok(Some("2-d"))),
        ];
        for (tr, given, want) in cases {
            let given = given.map(r);
            let got = RevTree::edit_parent(tr, given.as_ref())
                .map(|p| p.map(|p| p.to_string()))
                .map_err(|e| e.status);
            assert_eq!(got, want.map(|p| p.map(String::from)), "{given:?}");
        }
    }

    #[test]
    fn latest_follows_descendants() {
        let t = tree(&["3-c 2-b 1-a", "2-x! 1-a"]);
        let l: Vec<String> = t
            .latest(&r("1-a"))
            .iter()
            .map(|l| l.rev.to_string())
            .collect();
        assert_eq!(l, ["3-c", "2-x"]);
        assert_eq!(t.latest(&r("3-c"))[0].rev, r("3-c"));
        assert!(t.latest(&r("7-q")).is_empty());
    }

    #[test]
    fn bytes_round_trip() {
        let mut t = tree(&["3-c 2-b 1-a", "2-x! 1-a"]);
        t.stem(2);
        assert_eq!(RevTree::from_bytes(&t.to_bytes()).unwrap(), t);
        assert!(RevTree::from_bytes(b"junk").is_err());
    }

    #[test]
    fn revisions_paths() {
        let rev = r("3-c");
        let p = path_from_revisions(
            Some(&rev),
            Some(&json!({"start": 3, "ids": ["c", "b", "a"]})),
        )
        .unwrap();
        assert_eq!(p, vec![r("3-c"), r("2-b"), r("1-a")]);
        assert_eq!(
            path_from_revisions(Some(&rev), None).unwrap(),
            vec![rev.clone()]
        );
        // `_revisions` decides, whatever `_rev` says (PouchDB 5 sends such).
        assert_eq!(
            path_from_revisions(Some(&rev), Some(&json!({"start": 3, "ids": ["x"]}))).unwrap(),
            vec![r("3-x")]
        );
        assert_eq!(
            path_from_revisions(None, Some(&json!({"start": 1, "ids": ["x"]}))).unwrap(),
            vec![r("1-x")]
        );
        assert_eq!(path_from_revisions(None, None).unwrap_err().status, 400);
        for bad in [
            json!({"start": 1, "ids": ["c", "b"]}),
            json!({"start": 3, "ids": []}),
            json!({"ids": ["c"]}),
            json!({"start": 3, "ids": [1]}),
        ] {
            assert_eq!(
                path_from_revisions(Some(&rev), Some(&bad))
                    .unwrap_err()
                    .status,
                400
            );
        }
    }
}
