//! `POST /db/_purge`: forgetting revisions for good, as CouchDB does.
//!
//! Unlike a deletion, a purge leaves nothing to replicate: the purged
//! revisions leave the tree and their bodies go at once. A document that
//! keeps a leaf is stored again under a new sequence, so views and Mango
//! indexes re-read it; one that loses every leaf disappears from `docs`,
//! `_changes` and every index. Attachment contents only purged bodies
//! referenced are freed. Each purged id advances `purge_seq`.

use crate::database::Database;
use crate::documents::WriteBatch;
use crate::store::DocRecord;
use serde_json::{Map, Value};
use shared::attachments as atts;
use shared::error::CouchResult;
use shared::purge::{PurgeRequest, DEFAULT_PURGED_INFOS_LIMIT};
use shared::rev::Rev;

impl Database<'_> {
    /// Purges what `reqs` name; returns each id with the revisions it lost.
    pub fn purge(&self, reqs: &[PurgeRequest]) -> CouchResult<Vec<(String, Vec<Rev>)>> {
        self.meta()?;
        let (purged, freed_attachments) = self.transact(|| {
            let mut batch = self.begin_writes()?;
            let mut out = Vec::with_capacity(reqs.len());
            let mut freed_attachments = false;
            for req in reqs {
                let lost = match self.store.load_doc(&req.id)? {
                    Some(rec) => {
                        self.purge_doc(&mut batch, rec, &req.revs, &mut freed_attachments)?
                    }
                    None => vec![],
                };
                out.push((req.id.clone(), lost));
            }
            let count = out.iter().filter(|(_, lost)| !lost.is_empty()).count() as u64;
            if count > 0 {
                // As CouchDB, a purge is itself an update of the database.
                batch.stats.update_seq += 1;
                self.finish_writes(&batch)?;
                self.store
                    .set_meta("purge_seq", (self.purge_seq()? + count).into())?;
            }
            Ok((out, freed_attachments))
        })?;
        if freed_attachments {
            self.compact_attachments()?;
        }
        Ok(purged)
    }

    fn purge_doc(
        &self,
        batch: &mut WriteBatch,
        rec: DocRecord,
        revs: &[Rev],
        freed_attachments: &mut bool,
    ) -> CouchResult<Vec<Rev>> {
        let mut tree = rec.tree.clone();
        let (lost, removed) = tree.purge(revs);
        if lost.is_empty() {
            return Ok(lost);
        }
        for rev in &removed {
            if let Some(body) = self.store.body(&rec.id, rev)? {
                let map: Map<String, Value> = serde_json::from_slice(&body).unwrap_or_default();
                *freed_attachments |= !atts::stubs(&map).is_empty();
            }
        }
        if tree.is_empty() {
            self.forget_doc(batch, &rec)?;
        } else {
            self.commit(batch, &rec.id, Some(&rec), tree, None)?;
        }
        for rev in &removed {
            self.store.delete_body(&rec.id, rev)?;
        }
        Ok(lost)
    }

    /// Removes a document that lost every leaf, with its index rows.
    fn forget_doc(&self, batch: &mut WriteBatch, rec: &DocRecord) -> CouchResult<()> {
        let stats = &mut batch.stats;
        for leaf in rec.tree.leaves() {
            let size = self.store.body_size(&rec.id, &leaf.rev)?;
            stats.body_bytes = stats.body_bytes.saturating_sub(size);
        }
        if rec.deleted {
            stats.doc_del_count = stats.doc_del_count.saturating_sub(1);
        } else {
            stats.doc_count = stats.doc_count.saturating_sub(1);
        }
        for (idx, _) in self.store.view_signatures()? {
            self.store.delete_view_rows(idx, &[rec.id.as_str()])?;
        }
        self.unindex_search(&rec.id)?;
        for index in self.store.mango_indexes()? {
            self.store.set_mango_row(index.id, &rec.id, None)?;
        }
        self.store.delete_doc(&rec.id)
    }

    /// How many document purges this database has seen.
    pub fn purge_seq(&self) -> CouchResult<u64> {
        Ok(self
            .store
            .meta("purge_seq")?
            .and_then(|v| v.as_i64())
            .map_or(0, |n| n.max(0) as u64))
    }

    /// `GET /db/_purged_infos_limit`. Settee keeps no purge history (it has
    /// no replicas to tell), so the limit is only kept and reported.
    pub fn purged_infos_limit(&self) -> CouchResult<u64> {
        self.meta()?;
        Ok(self
            .store
            .meta("purged_infos_limit")?
            .and_then(|v| v.as_i64())
            .map_or(DEFAULT_PURGED_INFOS_LIMIT, |n| n.max(1) as u64))
    }

    /// `PUT /db/_purged_infos_limit`.
    pub fn set_purged_infos_limit(&self, body: &Value) -> CouchResult<()> {
        self.meta()?;
        let n = shared::purge::parse_infos_limit(body)?;
        self.store.set_meta("purged_infos_limit", n.into())
    }
}
