//! Stored reductions: partial reductions of a view's rows kept beside its
//! index, so a reduce query over a key range combines O(log n) of them and
//! the rows at its edges, not every row (CouchDB answers from the
//! reductions in its B-tree's inner nodes).
//!
//! The model is a deterministic skip list over the index order. Each row
//! has a height, from a hash of its position (key, document id, emit
//! number): at least `L` with probability `FANOUT^-L`. At level `L >= 1`
//! the rows of height `>= L` start blocks, and one more block starts
//! before the first row (the sentinel, an empty key). A level-1 block's
//! reduction is its rows'; a level-`L` block is exactly the level-`(L-1)`
//! blocks starting inside it, so its reduction rereduces theirs. A row's
//! height depends on nothing else, so a write changes only the blocks
//! around the rows it adds and removes, one per level.
//!
//! Kept for built-in reduces whose partial results combine exactly
//! (`_sum`, `_count`, `_stats`; see `shared::view::Builtin::rereduces`).
//! A view gets them on its first reduce query; from then on the index
//! notes the positions of rows it adds or removes (`reductions_dirty`), and
//! the next reduce query recomputes the blocks holding them, level by
//! level, before reading (or rebuilds them all when that is cheaper).

use crate::database::Database;
use crate::store::{ViewPos, ViewRange};
use serde_json::Value;
use shared::error::CouchResult;
use shared::view::Builtin;

/// Expected blocks of one level per block of the next.
const FANOUT_BITS: u32 = 4;
/// Levels above the rows: 16^6 rows before the top level has more than
/// one block on average.
pub const LEVELS: i64 = 6;
/// Entries read per statement while walking a level.
const CHUNK: u64 = 64;
/// Recomputing the blocks around one changed row costs about as much as
/// rebuilding this many rows' worth of blocks in one pass: more changes
/// than the rows over this are rebuilt.
const ROWS_PER_CHANGE: u64 = 32;
/// Changes recomputed one by one at most; beyond, everything is rebuilt.
const MOST_CHANGES: u64 = 4_096;

/// A row's height: how many levels' blocks it starts.
pub fn height(p: &ViewPos) -> i64 {
    let mut h = crc32fast::Hasher::new();
    h.update(&p.key);
    h.update(p.doc_id.as_bytes());
    h.update(&p.n.to_le_bytes());
    (i64::from(h.finalize().trailing_zeros() / FANOUT_BITS)).min(LEVELS)
}

/// The start of every level's first block: before any row.
fn sentinel() -> ViewPos {
    ViewPos {
        key: Vec::new(),
        doc_id: String::new(),
        n: -1,
    }
}

/// Parses a stored reduction; `null` is an empty block.
fn parse(red: &str) -> CouchResult<Option<Value>> {
    let v: Value = serde_json::from_str(red)?;
    Ok((!v.is_null()).then_some(v))
}

/// The reduction (JSON, `null` when empty) of a level's block from what it
/// holds: row values at level 1, the reductions of the blocks below it
/// above.
fn block_reduction(b: Builtin, level: i64, held: &[String]) -> CouchResult<String> {
    if level == 1 {
        if held.is_empty() {
            return Ok("null".into());
        }
        let rows = held
            .iter()
            .map(|v| Ok((Value::Null, serde_json::from_str(v)?)))
            .collect::<CouchResult<Vec<_>>>()?;
        return Ok(b.reduce(&rows)?.to_string());
    }
    let parts: Vec<Value> = held
        .iter()
        .map(|r| parse(r))
        .collect::<CouchResult<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        return Ok("null".into());
    }
    Ok(b.rereduce(&parts)?.to_string())
}

impl Database<'_> {
    /// The reduction of the rows of `range`, from the view's stored
    /// reductions (made or brought up to date first); `None` for an empty
    /// range.
    pub(crate) fn stored_reduction(
        &self,
        idx: i64,
        b: Builtin,
        range: &ViewRange,
    ) -> CouchResult<Option<Value>> {
        let tree = self.current_reductions(idx, b)?;
        self.reduction_from(idx, tree, b, range)
    }

    /// The view's stored reductions for `b`, made or brought up to date:
    /// the tree [`Self::reduction_from`] reads.
    pub(crate) fn current_reductions(&self, idx: i64, b: Builtin) -> CouchResult<i64> {
        self.transact(|| self.current_tree(idx, b))
    }

    /// The reduction of the rows of `range` from `tree`, which is current.
    pub(crate) fn reduction_from(
        &self,
        idx: i64,
        tree: i64,
        b: Builtin,
        range: &ViewRange,
    ) -> CouchResult<Option<Value>> {
        let Some((first, last)) = self.store.view_range_ends(idx, range)? else {
            return Ok(None);
        };
        let after_last = self
            .store
            .view_rows_from(idx, Some(&last), true, 1)?
            .pop()
            .map(|(p, _)| p);
        let before_first = self.store.view_rows_from(idx, None, false, 1)?.pop();
        let starts_index = before_first.is_some_and(|(p, _)| p == first);
        let ends = (&first, &last, after_last.as_ref());
        let parts = self.cover((idx, tree), b, ends, starts_index)?;
        Ok(Some(b.rereduce(&parts)?))
    }

    /// The view's tree for reduce `b`, current: made from scratch when
    /// missing or after many changes, else with the blocks around the
    /// changed rows recomputed.
    fn current_tree(&self, idx: i64, b: Builtin) -> CouchResult<i64> {
        let Some(tree) = self.store.reduction_tree(idx, b.name())? else {
            let tree = self.store.add_reduction_tree(idx, b.name())?;
            self.rebuild_tree((idx, tree), b)?;
            return Ok(tree);
        };
        let dirty = self.store.reduction_dirty(tree, MOST_CHANGES + 1)?;
        if dirty.is_empty() {
            return Ok(tree);
        }
        // The rows, from the level-2 blocks (about one per 256 rows).
        let rows = self.store.reduction_blocks(tree, 2)? << (2 * FANOUT_BITS);
        let changes = dirty.len() as u64;
        if changes > MOST_CHANGES || changes * ROWS_PER_CHANGE > rows {
            self.rebuild_tree((idx, tree), b)?;
            return Ok(tree);
        }
        let present = self.store.view_rows_exist(idx, &dirty)?;
        for level in 1..=LEVELS {
            // The blocks to recompute: the one holding each changed row,
            // and the one before a row that starts a block now (it ended
            // later until then).
            let mut starts: Vec<ViewPos> = Vec::new();
            for p in &dirty {
                let starts_block = height(p) >= level && present.contains(p);
                if starts_block {
                    self.store
                        .put_reductions(tree, &[(level, p.clone(), "null".into())])?;
                    starts.extend(self.store.reduction_block_of(tree, level, p, true)?);
                } else if height(p) >= level {
                    self.store.delete_reduction(tree, level, p)?;
                }
                let start = self
                    .store
                    .reduction_block_of(tree, level, p, false)?
                    .unwrap_or_else(sentinel);
                starts.push(start);
            }
            starts.sort();
            starts.dedup();
            for start in starts {
                self.recompute_block((idx, tree), b, level, &start)?;
            }
        }
        self.store.clear_reduction_dirty(tree)?;
        Ok(tree)
    }

    /// Recomputes the reduction of the level's block starting at `start`.
    fn recompute_block(
        &self,
        (idx, tree): (i64, i64),
        b: Builtin,
        level: i64,
        start: &ViewPos,
    ) -> CouchResult<()> {
        let next = self
            .store
            .reductions_from(tree, level, start, true, 1)?
            .pop()
            .map(|(p, _)| p);
        // What the block holds, page by page from its start: rows at level
        // 1 (the sentinel is before every row), the blocks below above it.
        let mut held = Vec::new();
        let mut from = start.clone();
        let mut after = false;
        'pages: loop {
            let page = if level == 1 {
                self.store.view_rows_from(idx, Some(&from), after, CHUNK)?
            } else {
                self.store
                    .reductions_from(tree, level - 1, &from, after, CHUNK)?
            };
            let full = page.len() as u64 == CHUNK;
            for (p, text) in page {
                if next.as_ref().is_some_and(|n| p >= *n) {
                    break 'pages;
                }
                held.push(text);
                from = p;
            }
            if !full {
                break;
            }
            after = true;
        }
        let red = block_reduction(b, level, &held)?;
        self.store
            .put_reductions(tree, &[(level, start.clone(), red)])
    }

    /// Makes every block's reduction in one pass over the rows.
    fn rebuild_tree(&self, (idx, tree): (i64, i64), b: Builtin) -> CouchResult<()> {
        self.store.clear_reduction_tree(tree)?;
        // Per level, the open block: its start and what it holds so far
        // (row values at level 1, lower blocks' reductions above).
        let mut open: Vec<(ViewPos, Vec<String>)> =
            (0..LEVELS).map(|_| (sentinel(), Vec::new())).collect();
        let mut done: Vec<(i64, ViewPos, String)> = Vec::new();
        let close = |level: usize,
                     open: &mut Vec<(ViewPos, Vec<String>)>,
                     done: &mut Vec<(i64, ViewPos, String)>,
                     next: ViewPos|
         -> CouchResult<()> {
            let (start, held) = std::mem::replace(&mut open[level], (next, Vec::new()));
            let red = block_reduction(b, level as i64 + 1, &held)?;
            if level + 1 < open.len() {
                open[level + 1].1.push(red.clone());
            }
            done.push((level as i64 + 1, start, red));
            Ok(())
        };
        let mut from: Option<ViewPos> = None;
        loop {
            let rows = self.store.view_rows_from(idx, from.as_ref(), true, 5_000)?;
            let full = rows.len() == 5_000;
            for (p, v) in rows {
                let h = height(&p) as usize;
                for level in 0..h {
                    close(level, &mut open, &mut done, p.clone())?;
                }
                open[0].1.push(v);
                from = Some(p);
            }
            if done.len() >= 1_000 {
                self.store.put_reductions(tree, &done)?;
                done.clear();
            }
            if !full {
                break;
            }
        }
        for level in 0..open.len() {
            close(level, &mut open, &mut done, sentinel())?;
        }
        self.store.put_reductions(tree, &done)
    }

    /// The partial reductions covering the rows `first..=last`: whole
    /// blocks as high as they fit, rows at the edges. Climbing from
    /// `first`, each level's blocks are taken until one starts that is a
    /// block of a higher level too; then, from the highest that fits,
    /// descending, until the rows before `last`. `after_last` is the row
    /// after `last` (none at the end of the index); `from_start` says
    /// `first` is the index's first row, so the sentinel blocks start it.
    fn cover(
        &self,
        (idx, tree): (i64, i64),
        b: Builtin,
        (first, last, after_last): (&ViewPos, &ViewPos, Option<&ViewPos>),
        from_start: bool,
    ) -> CouchResult<Vec<Value>> {
        // A block ending just before `next` lies inside the range when no
        // row after `last` comes before `next`.
        let inside = |next: Option<&ViewPos>| match (next, after_last) {
            (_, None) => true,
            (Some(n), Some(a)) => n <= a,
            (None, Some(_)) => false,
        };
        let mut parts: Vec<Value> = Vec::new();
        let mut values: Vec<(Value, Value)> = Vec::new();
        let (mut level, mut cur, mut climbing) = if from_start {
            (LEVELS, sentinel(), false)
        } else {
            (height(first), first.clone(), true)
        };
        'walk: loop {
            if level == 0 {
                let mut from = cur.clone();
                let mut after = false;
                loop {
                    let rows = self.store.view_rows_from(idx, Some(&from), after, CHUNK)?;
                    let full = rows.len() as u64 == CHUNK;
                    for (p, v) in rows {
                        if climbing && p != cur && height(&p) >= 1 {
                            level = height(&p);
                            cur = p;
                            continue 'walk;
                        }
                        values.push((Value::Null, serde_json::from_str(&v)?));
                        if p >= *last {
                            break 'walk;
                        }
                        from = p;
                    }
                    if !full {
                        break 'walk;
                    }
                    after = true;
                }
            }
            let mut blocks = self
                .store
                .reductions_from(tree, level, &cur, false, CHUNK + 1)?;
            let mut i = 0;
            loop {
                // The last of a full page is read again as the next page's
                // first, so every block taken knows where it ends.
                if i + 1 == blocks.len() && blocks.len() as u64 == CHUNK + 1 {
                    let from = blocks[i].0.clone();
                    blocks = self
                        .store
                        .reductions_from(tree, level, &from, false, CHUNK + 1)?;
                    i = 0;
                }
                let Some((start, red)) = blocks.get(i) else {
                    break 'walk;
                };
                if climbing && *start != cur && level < LEVELS && height(start) > level {
                    level = height(start);
                    cur = start.clone();
                    continue 'walk;
                }
                let next = blocks.get(i + 1).map(|(p, _)| p);
                if !inside(next) {
                    climbing = false;
                    level -= 1;
                    cur = start.clone();
                    continue 'walk;
                }
                parts.extend(parse(red)?);
                match (next, after_last) {
                    (None, _) => break 'walk,
                    (Some(n), Some(a)) if n >= a => break 'walk,
                    _ => i += 1,
                }
            }
        }
        if !values.is_empty() {
            parts.push(b.reduce(&values)?);
        }
        Ok(parts)
    }
}
