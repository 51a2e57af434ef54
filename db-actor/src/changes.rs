//! `_changes`: documents in update-sequence order, each once, at its latest
//! change.

use crate::database::{Database, DbMeta};
use crate::store::DocRecord;
use serde_json::{json, Value};
use shared::changes::{ChangesPage, ChangesQuery, Filter};
use shared::doc_read::ReadOpts;
use shared::error::CouchResult;
use shared::seq::Since;

/// Rows read from storage per step while a filter discards some.
const SCAN_BATCH: u64 = 500;

impl crate::feed::ChangeSource for Database<'_> {
    fn page(&self, q: &ChangesQuery, since: u64) -> CouchResult<ChangesPage> {
        self.changes(q, since)
    }
}

impl Database<'_> {
    /// The numeric sequence a query starts after (`now` is the current one;
    /// a sequence of an earlier incarnation of this database, 0).
    pub fn resolve_since(&self, q: &ChangesQuery) -> CouchResult<u64> {
        Ok(match q.since {
            Since::Seq(n) => match &q.since_instance {
                Some(tag) if *tag != self.meta()?.instance => 0,
                _ => n,
            },
            Since::Now => self.store.stats()?.update_seq,
        })
    }

    /// The changes after `since` that `q` selects.
    pub fn changes(&self, q: &ChangesQuery, since: u64) -> CouchResult<ChangesPage> {
        if q.redact_for.is_some() {
            self.redact_for.replace(q.redact_for.clone());
        }
        let meta = self.meta()?;
        let update_seq = self.store.stats()?.update_seq;
        let limit = q.limit.unwrap_or(u64::MAX).max(1);
        let records = self.select_changes(q, since, limit)?;
        let limited = records.len() as u64 >= limit;
        let last = match (records.last(), q.descending) {
            (Some(r), _) if limited || q.descending => r.seq,
            _ if q.descending => since,
            _ => update_seq.max(since),
        };
        let pending = if q.descending {
            0
        } else {
            self.store.count_since(last)?
        };
        let rows = records
            .iter()
            .map(|r| self.change_row(&meta, r, q))
            .collect::<CouchResult<_>>()?;
        Ok(ChangesPage {
            rows,
            seqs: records.iter().map(|r| meta.seq(r.seq)).collect(),
            last_seq: meta.seq(last),
            last,
            pending,
        })
    }

    fn select_changes(
        &self,
        q: &ChangesQuery,
        since: u64,
        limit: u64,
    ) -> CouchResult<Vec<DocRecord>> {
        match &q.filter {
            Filter::All => self.store.docs_by_seq(since, q.descending, limit),
            Filter::DocIds(ids) => {
                let mut recs = Vec::new();
                for id in ids {
                    if let Some(r) = self.store.load_doc(id)? {
                        if r.seq > since && !recs.iter().any(|x: &DocRecord| x.id == r.id) {
                            recs.push(r);
                        }
                    }
                }
                recs.sort_by_key(|r| r.seq);
                if q.descending {
                    recs.reverse();
                }
                recs.truncate(limit.min(usize::MAX as u64) as usize);
                Ok(recs)
            }
            Filter::Design => self.scan(q, since, limit, |r| Ok(r.id.starts_with("_design/"))),
            Filter::Js { ddoc, name, req } => {
                let test = self.filter_fn(ddoc, name)?;
                self.filtered(q, since, limit, |doc| test.filter(doc, req))
            }
            Filter::View { ddoc, name } => {
                let test = self.view_filter(ddoc, name)?;
                self.filtered(q, since, limit, |doc| test.emits(doc))
            }
            // Deletions never match a selector.
            Filter::Selector(sel) => self.filtered(q, since, limit, |doc| {
                Ok(doc.get("_deleted") != Some(&Value::Bool(true)) && sel.matches(doc))
            }),
        }
    }

    /// Changes whose winning revision (a deletion as `{"_id", "_rev",
    /// "_deleted": true}`) `keep` accepts.
    fn filtered(
        &self,
        q: &ChangesQuery,
        since: u64,
        limit: u64,
        keep: impl Fn(&Value) -> CouchResult<bool>,
    ) -> CouchResult<Vec<DocRecord>> {
        self.meta()?;
        let opts = ReadOpts::default();
        self.scan(q, since, limit, |r| {
            let doc = match self.render_rev(r, &r.winner, &opts)? {
                Some(json) => serde_json::from_slice(&json)?,
                None => json!({"_id": r.id, "_rev": r.winner.to_string(), "_deleted": true}),
            };
            keep(&doc)
        })
    }

    /// Changes after `since` whose records `keep` accepts, read in batches
    /// so a selective filter over a long history holds one batch at a time.
    fn scan(
        &self,
        q: &ChangesQuery,
        since: u64,
        limit: u64,
        keep: impl Fn(&DocRecord) -> CouchResult<bool>,
    ) -> CouchResult<Vec<DocRecord>> {
        let take = limit.min(usize::MAX as u64) as usize;
        let mut out = Vec::new();
        let mut cursor = if q.descending { u64::MAX } else { since };
        loop {
            let batch = if q.descending {
                self.store.docs_before(cursor, SCAN_BATCH)?
            } else {
                self.store.docs_by_seq(cursor, false, SCAN_BATCH)?
            };
            let Some(last) = batch.last() else { break };
            let exhausted = (batch.len() as u64) < SCAN_BATCH;
            cursor = last.seq;
            for r in batch {
                if (!q.descending || r.seq > since) && keep(&r)? {
                    out.push(r);
                }
            }
            if out.len() >= take || exhausted || (q.descending && cursor <= since) {
                break;
            }
        }
        out.truncate(take);
        Ok(out)
    }

    fn change_row(&self, meta: &DbMeta, r: &DocRecord, q: &ChangesQuery) -> CouchResult<Vec<u8>> {
        let changes: Vec<_> = if q.all_leaves {
            r.tree
                .leaves()
                .iter()
                .map(|l| json!({"rev": l.rev.to_string()}))
                .collect()
        } else {
            vec![json!({"rev": r.winner.to_string()})]
        };
        let mut row = format!(
            "{{\"seq\":{},\"id\":{},\"changes\":{}",
            json!(meta.seq(r.seq)),
            json!(r.id),
            json!(changes)
        )
        .into_bytes();
        if r.deleted {
            row.extend_from_slice(b",\"deleted\":true");
        }
        if q.include_docs {
            let opts = ReadOpts {
                conflicts: q.conflicts,
                attachments: q.attachments,
                att_encoding_info: q.att_encoding_info,
                ..Default::default()
            };
            row.extend_from_slice(b",\"doc\":");
            match self.render_rev(r, &r.winner, &opts)? {
                Some(doc) => row.extend_from_slice(&doc),
                None => row.extend_from_slice(b"null"),
            }
        }
        row.push(b'}');
        Ok(row)
    }
}
