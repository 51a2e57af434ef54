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
//! Kept for every reduce ([`crate::reducer`]): a level-1 block reduces
//! its rows (reading keys and document ids only for a reduce that reads
//! them), higher ones rereduce; `_approx_count_distinct` keeps sketches.
//! A view gets them on its first reduce query; from then on the index
//! notes the positions of rows it adds or removes (`reductions_dirty`), and
//! the next reduce query recomputes the blocks holding them, level by
//! level, before reading (or rebuilds them all when that is cheaper).

use crate::database::Database;
use crate::reducer::{Reducer, Row};
use crate::store::{ViewPos, ViewRange};
use serde_json::Value;
use shared::error::CouchResult;

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

/// The stored reduction of an empty block.
const EMPTY: &str = "null";

/// What a block holds: rows at level 1, the stored reductions of the
/// blocks below it above.
enum Held {
    Row(Row),
    Part(String),
}

/// A partial reduction as a block stores it. A JavaScript reduce may
/// answer `null`, which would read as an empty block: its answers are
/// kept in a one-element array.
fn store(r: &Reducer, part: Option<&Value>) -> String {
    match (part, r) {
        (None, _) => EMPTY.into(),
        (Some(p), Reducer::Js(..)) => Value::Array(vec![p.clone()]).to_string(),
        (Some(p), Reducer::Builtin(_)) => p.to_string(),
    }
}

/// A stored reduction; `None` for an empty block.
fn load(r: &Reducer, text: &str) -> CouchResult<Option<Value>> {
    let v: Value = serde_json::from_str(text)?;
    Ok(match (v, r) {
        (Value::Null, _) => None,
        (Value::Array(mut a), Reducer::Js(..)) => a.pop(),
        (v, _) => Some(v),
    })
}

/// A row as `r` reads it, from its position, value JSON and key JSON (if
/// read); the document id only with the key, as only then is it used.
fn row(r: &Reducer, (p, value, key): &(ViewPos, String, Option<String>)) -> CouchResult<Row> {
    let (_, values) = r.reads();
    let (key, id) = match key {
        Some(k) => (serde_json::from_str(k)?, p.doc_id.clone()),
        None => (Value::Null, String::new()),
    };
    let value = if values {
        serde_json::from_str(value)?
    } else {
        Value::Null
    };
    Ok((key, id, value))
}

/// The stored reduction of a block from what it holds.
fn block_reduction(r: &Reducer, held: Vec<Held>) -> CouchResult<String> {
    let mut rows = Vec::new();
    let mut parts = Vec::new();
    for h in held {
        match h {
            Held::Row(row) => rows.push(row),
            Held::Part(text) => parts.extend(load(r, &text)?),
        }
    }
    let part = if !rows.is_empty() {
        Some(r.partial(rows)?)
    } else if !parts.is_empty() {
        Some(r.rereduce(parts)?)
    } else {
        None
    };
    Ok(store(r, part.as_ref()))
}

impl Database<'_> {
    /// The reduction of the rows of `range`, from the view's stored
    /// reductions (made or brought up to date first); `None` for an empty
    /// range.
    pub(crate) fn stored_reduction(
        &self,
        idx: i64,
        r: &Reducer,
        range: &ViewRange,
    ) -> CouchResult<Option<Value>> {
        let tree = self.current_reductions(idx, r)?;
        self.reduction_from(idx, tree, r, range)
    }

    /// The view's stored reductions for `r`, made or brought up to date:
    /// the tree [`Self::reduction_from`] reads.
    pub(crate) fn current_reductions(&self, idx: i64, r: &Reducer) -> CouchResult<i64> {
        self.transact(|| self.current_tree(idx, r))
    }

    /// The reduction of the rows of `range` from `tree`, which is current.
    pub(crate) fn reduction_from(
        &self,
        idx: i64,
        tree: i64,
        r: &Reducer,
        range: &ViewRange,
    ) -> CouchResult<Option<Value>> {
        let Some((first, last)) = self.store.view_range_ends(idx, range)? else {
            return Ok(None);
        };
        let after_last = self
            .store
            .view_rows_from(idx, Some(&last), true, 1, false)?
            .pop()
            .map(|(p, ..)| p);
        let before_first = self.store.view_rows_from(idx, None, false, 1, false)?.pop();
        let starts_index = before_first.is_some_and(|(p, ..)| p == first);
        let ends = (&first, &last, after_last.as_ref());
        let parts = self.cover((idx, tree), r, ends, starts_index)?;
        Ok(Some(r.finish(parts)?))
    }

    /// The view's tree for reduce `r`, current: made from scratch when
    /// missing or after many changes, else with the blocks around the
    /// changed rows recomputed.
    fn current_tree(&self, idx: i64, r: &Reducer) -> CouchResult<i64> {
        let Some(tree) = self.store.reduction_tree(idx, r.name())? else {
            let tree = self.store.add_reduction_tree(idx, r.name())?;
            self.rebuild_tree((idx, tree), r)?;
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
            self.rebuild_tree((idx, tree), r)?;
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
                        .put_reductions(tree, &[(level, p.clone(), EMPTY.into())])?;
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
                self.recompute_block((idx, tree), r, level, &start)?;
            }
        }
        self.store.clear_reduction_dirty(tree)?;
        Ok(tree)
    }

    /// Recomputes the reduction of the level's block starting at `start`.
    fn recompute_block(
        &self,
        (idx, tree): (i64, i64),
        r: &Reducer,
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
            let page: Vec<(ViewPos, Held)> = if level == 1 {
                self.store
                    .view_rows_from(idx, Some(&from), after, CHUNK, r.reads().0)?
                    .into_iter()
                    .map(|raw| {
                        let held = Held::Row(row(r, &raw)?);
                        Ok((raw.0, held))
                    })
                    .collect::<CouchResult<_>>()?
            } else {
                self.store
                    .reductions_from(tree, level - 1, &from, after, CHUNK)?
                    .into_iter()
                    .map(|(p, text)| (p, Held::Part(text)))
                    .collect()
            };
            let full = page.len() as u64 == CHUNK;
            for (p, h) in page {
                if next.as_ref().is_some_and(|n| p >= *n) {
                    break 'pages;
                }
                held.push(h);
                from = p;
            }
            if !full {
                break;
            }
            after = true;
        }
        let red = block_reduction(r, held)?;
        self.store
            .put_reductions(tree, &[(level, start.clone(), red)])
    }

    /// Makes every block's reduction in one pass over the rows.
    fn rebuild_tree(&self, (idx, tree): (i64, i64), r: &Reducer) -> CouchResult<()> {
        self.store.clear_reduction_tree(tree)?;
        // Per level, the open block: its start and what it holds so far.
        let mut open: Vec<(ViewPos, Vec<Held>)> =
            (0..LEVELS).map(|_| (sentinel(), Vec::new())).collect();
        let mut done: Vec<(i64, ViewPos, String)> = Vec::new();
        let close = |level: usize,
                     open: &mut Vec<(ViewPos, Vec<Held>)>,
                     done: &mut Vec<(i64, ViewPos, String)>,
                     next: ViewPos|
         -> CouchResult<()> {
            let (start, held) = std::mem::replace(&mut open[level], (next, Vec::new()));
            let red = block_reduction(r, held)?;
            if level + 1 < open.len() {
                open[level + 1].1.push(Held::Part(red.clone()));
            }
            done.push((level as i64 + 1, start, red));
            Ok(())
        };
        let mut from: Option<ViewPos> = None;
        loop {
            let rows = self
                .store
                .view_rows_from(idx, from.as_ref(), true, 5_000, r.reads().0)?;
            let full = rows.len() == 5_000;
            for raw in rows {
                for level in 0..height(&raw.0) as usize {
                    close(level, &mut open, &mut done, raw.0.clone())?;
                }
                open[0].1.push(Held::Row(row(r, &raw)?));
                from = Some(raw.0);
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
        r: &Reducer,
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
        // In index order: a reduce may care.
        let mut parts: Vec<Value> = Vec::new();
        let mut edge: Vec<Row> = Vec::new();
        let flush = |edge: &mut Vec<Row>, parts: &mut Vec<Value>| -> CouchResult<()> {
            if !edge.is_empty() {
                parts.push(r.partial(std::mem::take(edge))?);
            }
            Ok(())
        };
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
                    let rows =
                        self.store
                            .view_rows_from(idx, Some(&from), after, CHUNK, r.reads().0)?;
                    let full = rows.len() as u64 == CHUNK;
                    for raw in rows {
                        let p = &raw.0;
                        if climbing && *p != cur && height(p) >= 1 {
                            flush(&mut edge, &mut parts)?;
                            level = height(p);
                            cur = raw.0;
                            continue 'walk;
                        }
                        edge.push(row(r, &raw)?);
                        if *p >= *last {
                            break 'walk;
                        }
                        from = raw.0;
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
                parts.extend(load(r, red)?);
                match (next, after_last) {
                    (None, _) => break 'walk,
                    (Some(n), Some(a)) if n >= a => break 'walk,
                    _ => i += 1,
                }
            }
        }
        flush(&mut edge, &mut parts)?;
        Ok(parts)
    }
}
