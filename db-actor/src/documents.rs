//! Writing and reading documents: interactive edits, replicated revisions,
//! and rendering a revision with the options CouchDB offers.

use crate::attachments::Resolved;
use crate::database::{Database, DbMeta};
use crate::store::{DocRecord, Stats};
use serde_json::{json, Value};
use shared::attachments as atts;
use shared::doc::{self, IncomingDoc};
use shared::doc_read::{OpenRev, ReadOpts};
use shared::error::{CouchError, CouchResult};
use shared::rev::Rev;
use shared::rev_tree::{path_from_revisions, RevTree};
use std::collections::HashSet;
use std::rc::Rc;

/// State carried through the writes of one transaction.
pub struct WriteBatch {
    pub meta: Rc<DbMeta>,
    pub stats: Stats,
    /// The update sequence when the batch began.
    first_seq: u64,
}

impl Database<'_> {
    /// Writes one document in its own transaction. Returns its revision.
    pub fn save_one(&self, id: &str, doc: &IncomingDoc, new_edits: bool) -> CouchResult<Rev> {
        if doc::is_local(id) {
            return Err(CouchError::bad_request("use the _local endpoints"));
        }
        self.transact(|| {
            let mut batch = self.begin_writes()?;
            let rev = if new_edits {
                self.update_doc(&mut batch, id, doc)?
            } else {
                self.merge_doc(&mut batch, id, doc)?
            };
            self.finish_writes(&batch)?;
            Ok(rev)
        })
    }

    /// Starts a write transaction's state.
    pub fn begin_writes(&self) -> CouchResult<WriteBatch> {
        let stats = self.store.stats()?;
        Ok(WriteBatch {
            meta: self.meta()?,
            first_seq: stats.update_seq,
            stats,
        })
    }

    /// Ends a transaction's writes (call it inside the transaction).
    pub fn finish_writes(&self, batch: &WriteBatch) -> CouchResult<()> {
        self.store.save_stats(&batch.stats)?;
        self.note_seq_advance(batch.stats.update_seq - batch.first_seq);
        Ok(())
    }

    fn check_size(&self, id: &str, body: &[u8]) -> CouchResult<()> {
        if body.len() as u64 > self.limits.max_document_size {
            return Err(CouchError::document_too_large(id));
        }
        Ok(())
    }

    /// An interactive edit (`new_edits=true`): the document's `_rev` must be
    /// a current leaf (or absent for a new or deleted document). Returns the
    /// new revision.
    pub fn update_doc(
        &self,
        batch: &mut WriteBatch,
        id: &str,
        doc: &IncomingDoc,
    ) -> CouchResult<Rev> {
        self.check_id(id)?;
        self.check_design(id, doc)?;
        let body = doc.body_json();
        self.check_size(id, &body)?;
        let old = self.store.load_doc(id)?;
        let parent = RevTree::edit_parent(old.as_ref().map(|r| &r.tree), doc.rev.as_ref())?;
        let atts = self.resolve_attachments(id, doc, old.as_ref(), parent.as_ref())?;
        let rev = Rev::next(parent.as_ref(), doc.deleted, &doc.body, &atts.stubs);
        let stored = self.store_attachments(&atts, &doc.body, rev.pos, body)?;
        let mut tree = old.as_ref().map(|r| r.tree.clone()).unwrap_or_default();
        tree.add_edit(parent.as_ref(), rev.clone(), doc.deleted);
        self.commit(batch, id, old.as_ref(), tree, Some((&rev, &stored)))?;
        Ok(rev)
    }

    /// A replicated revision (`new_edits=false`): its history is merged into
    /// the tree as is; a revision already present changes nothing. Returns
    /// the revision, the leaf of its `_revisions`.
    pub fn merge_doc(
        &self,
        batch: &mut WriteBatch,
        id: &str,
        doc: &IncomingDoc,
    ) -> CouchResult<Rev> {
        self.check_id(id)?;
        self.check_design(id, doc)?;
        let path = path_from_revisions(doc.rev.as_ref(), doc.revisions.as_ref())?;
        let rev = &path[0];
        let body = doc.body_json();
        self.check_size(id, &body)?;
        let old = self.store.load_doc(id)?;
        let mut tree = old.as_ref().map(|r| r.tree.clone()).unwrap_or_default();
        if !tree.merge_path(&path, doc.deleted) {
            return Ok(rev.clone());
        }
        let atts = self.resolve_attachments(id, doc, old.as_ref(), None)?;
        let stored = self.store_attachments(&atts, &doc.body, rev.pos, body)?;
        self.commit(batch, id, old.as_ref(), tree, Some((rev, &stored)))?;
        Ok(rev.clone())
    }

    /// Stores new attachment contents and returns the body to store.
    fn store_attachments(
        &self,
        atts: &Resolved,
        body: &serde_json::Map<String, Value>,
        pos: u64,
        plain: Vec<u8>,
    ) -> CouchResult<Vec<u8>> {
        if atts.stubs.is_empty() {
            return Ok(plain);
        }
        let level = self.limits.attachment_compression_level;
        for (digest, content_type, data) in &atts.blobs {
            let compress = (level > 0 && atts::is_compressible(content_type)).then_some(level);
            let remote = self.remote.is_some_and(|r| r.takes(data.len()));
            self.store.put_blob(digest, data, compress, remote)?;
        }
        Ok(atts.stored_body(body, pos))
    }

    /// Stores a changed tree: stems it, updates the counters and gives the
    /// document the next sequence. Bodies of revisions that stop being
    /// leaves stay readable (`?rev=`, `open_revs`) until `_compact`, as in
    /// CouchDB; those of stemmed revisions go now, since no path reaches
    /// them. `body_bytes` counts leaves only (CouchDB's `sizes.external`).
    pub(crate) fn commit(
        &self,
        batch: &mut WriteBatch,
        id: &str,
        old: Option<&DocRecord>,
        mut tree: RevTree,
        new_body: Option<(&Rev, &[u8])>,
    ) -> CouchResult<()> {
        for gone in tree.stem(batch.meta.revs_limit) {
            self.store.delete_body(id, &gone)?;
        }
        let leaves: HashSet<Rev> = tree.leaves().into_iter().map(|l| l.rev).collect();
        let stats = &mut batch.stats;
        if let Some(old) = old {
            for l in old.tree.leaves() {
                if !leaves.contains(&l.rev) {
                    let size = self.store.body_size(id, &l.rev)?;
                    stats.body_bytes = stats.body_bytes.saturating_sub(size);
                }
            }
            if old.deleted {
                stats.doc_del_count = stats.doc_del_count.saturating_sub(1);
            } else {
                stats.doc_count = stats.doc_count.saturating_sub(1);
            }
        }
        if let Some((rev, body)) = new_body {
            if leaves.contains(rev) {
                self.store.put_body(id, rev, body)?;
                stats.body_bytes += body.len() as u64;
            }
        }
        let winner = tree
            .winner()
            .ok_or_else(|| CouchError::internal("empty revision tree"))?;
        if winner.deleted {
            stats.doc_del_count += 1;
        } else {
            stats.doc_count += 1;
        }
        stats.update_seq += 1;
        self.store.save_doc(&DocRecord {
            id: id.to_string(),
            seq: stats.update_seq,
            winner: winner.rev,
            deleted: winner.deleted,
            tree,
        })
    }

    /// `POST /db/_compact`'s part for documents: drops the bodies of
    /// revisions that are no longer leaves. Returns how many went.
    pub fn compact_revisions(&self) -> CouchResult<usize> {
        self.stem_to_limit()?;
        self.transact(|| {
            let mut dropped = 0;
            let mut current: Option<DocRecord> = None;
            for (id, rev) in self.store.body_keys()? {
                if current.as_ref().is_none_or(|d| d.id != id) {
                    current = self.store.load_doc(&id)?;
                }
                let Ok(rev) = rev.parse::<Rev>() else {
                    continue;
                };
                let leaf = current
                    .as_ref()
                    .is_some_and(|d| d.id == id && d.tree.is_leaf(&rev));
                if !leaf {
                    self.store.delete_body(&id, &rev)?;
                    dropped += 1;
                }
            }
            Ok(dropped)
        })
    }

    /// Stems every revision tree to the current `_revs_limit`, as
    /// compaction does in CouchDB: a lowered limit applies to documents
    /// written before it only from here. Sequences do not change.
    fn stem_to_limit(&self) -> CouchResult<()> {
        const PAGE: u64 = 500;
        let limit = self.revs_limit()?;
        let mut since = 0;
        loop {
            let page = self.store.docs_by_seq(since, false, PAGE)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            since = last.seq;
            self.transact(|| {
                for mut rec in page {
                    let stemmed = rec.tree.stem(limit);
                    if stemmed.is_empty() {
                        continue;
                    }
                    for rev in &stemmed {
                        self.store.delete_body(&rec.id, rev)?;
                    }
                    self.store.save_doc(&rec)?;
                }
                Ok(())
            })?;
        }
    }

    /// The current winner and its body, unless it is a deletion.
    fn winner(&self, id: &str) -> CouchResult<Option<(DocRecord, serde_json::Map<String, Value>)>> {
        let Some(rec) = self.store.load_doc(id)? else {
            return Ok(None);
        };
        if rec.deleted {
            return Ok(None);
        }
        let body = self.store.body(id, &rec.winner)?;
        Ok(body
            .and_then(|b| serde_json::from_slice(&b).ok())
            .map(|m| (rec, m)))
    }

    /// The body of the current winner, unless it is a deletion.
    pub fn winner_body(&self, id: &str) -> CouchResult<Option<serde_json::Map<String, Value>>> {
        Ok(self.winner(id)?.map(|(_, m)| m))
    }

    /// The current winner as design functions see it, with `_id` and
    /// `_rev`; null when there is none or it is a deletion.
    pub fn winner_doc(&self, id: &str) -> CouchResult<Value> {
        Ok(match self.winner(id)? {
            Some((rec, mut m)) => {
                m.insert("_id".into(), json!(id));
                m.insert("_rev".into(), json!(rec.winner.to_string()));
                Value::Object(m)
            }
            None => Value::Null,
        })
    }

    /// Loads a document or answers 404 `missing`.
    pub fn require_doc(&self, id: &str) -> CouchResult<DocRecord> {
        self.store
            .load_doc(id)?
            .ok_or_else(|| CouchError::doc_not_found(false))
    }

    /// A revision's stored body as this request's reader may see it
    /// (credentials of others' `_replicator` documents removed).
    pub fn stored_body(&self, id: &str, rev: &Rev) -> CouchResult<Option<Vec<u8>>> {
        let Some(body) = self.store.body(id, rev)? else {
            return Ok(None);
        };
        let Some(reader) = self.redact_for.borrow().clone() else {
            return Ok(Some(body));
        };
        let Ok(mut map) = serde_json::from_slice::<serde_json::Map<String, Value>>(&body) else {
            return Ok(Some(body));
        };
        if shared::replication::docs::redact(&mut map, &reader) {
            return Ok(Some(serde_json::to_vec(&map)?));
        }
        Ok(Some(body))
    }

    /// Renders one revision of a document with the requested extras, or
    /// `None` when that revision's body is not kept.
    pub fn render_rev(
        &self,
        rec: &DocRecord,
        rev: &Rev,
        opts: &ReadOpts,
    ) -> CouchResult<Option<Vec<u8>>> {
        let Some(node) = rec.tree.get(rev) else {
            return Ok(None);
        };
        let Some(body) = self.stored_body(&rec.id, rev)? else {
            return Ok(None);
        };
        let body = self.inline_attachments(rec, rev, body, opts)?;
        let mut extras: Vec<(&str, Value)> = Vec::new();
        if opts.conflicts {
            let c = rec.conflicts(false);
            if !c.is_empty() {
                extras.push(("_conflicts", json!(c)));
            }
        }
        if opts.deleted_conflicts {
            let c = rec.conflicts(true);
            if !c.is_empty() {
                extras.push(("_deleted_conflicts", json!(c)));
            }
        }
        if opts.local_seq {
            // The integer of this shard's sequence, as CouchDB 3 gives it
            // (not the opaque `_changes` form).
            extras.push(("_local_seq", json!(rec.seq)));
        }
        let ancestry = if opts.revs || opts.revs_info {
            rec.tree.ancestry(rev)
        } else {
            vec![]
        };
        if opts.revs {
            let ids: Vec<&str> = ancestry.iter().map(|r| r.hash.as_str()).collect();
            extras.push(("_revisions", json!({"start": rev.pos, "ids": ids})));
        }
        if opts.revs_info {
            let kept = self.store.body_revs(&rec.id)?;
            let info: Vec<Value> = ancestry
                .iter()
                .map(|r| {
                    let n = rec.tree.get(r).expect("ancestor in tree");
                    let status = if n.deleted {
                        "deleted"
                    } else if kept.contains(&r.to_string()) {
                        "available"
                    } else {
                        "missing"
                    };
                    json!({"rev": r.to_string(), "status": status})
                })
                .collect();
            extras.push(("_revs_info", json!(info)));
        }
        Ok(Some(doc::render(
            &rec.id,
            &rev.to_string(),
            node.deleted,
            &body,
            &extras,
        )))
    }

    /// `GET /db/doc`: the winner, or `rev`; 404 `deleted` when the winner is
    /// a deletion and no rev was asked for. Returns the rev and JSON.
    pub fn get_doc(
        &self,
        id: &str,
        rev: Option<&Rev>,
        opts: &ReadOpts,
    ) -> CouchResult<(Rev, Vec<u8>)> {
        self.meta()?;
        let rec = self.require_doc(id)?;
        let rev = match rev {
            None if rec.deleted => return Err(CouchError::doc_not_found(true)),
            None => rec.winner.clone(),
            Some(r) if opts.latest => rec
                .tree
                .latest(r)
                .into_iter()
                .next()
                .map(|l| l.rev)
                .ok_or_else(|| CouchError::doc_not_found(false))?,
            Some(r) => r.clone(),
        };
        let json = self
            .render_rev(&rec, &rev, opts)?
            .ok_or_else(|| CouchError::doc_not_found(false))?;
        Ok((rev, json))
    }

    /// `open_revs`: each requested revision (or every leaf for `all`) as
    /// `{"ok": doc}` or `{"missing": rev}`.
    pub fn open_revs(
        &self,
        id: &str,
        revs: Option<&[Rev]>,
        opts: &ReadOpts,
    ) -> CouchResult<Vec<OpenRev>> {
        self.meta()?;
        let Some(rec) = self.store.load_doc(id)? else {
            return match revs {
                None => Err(CouchError::doc_not_found(false)),
                Some(revs) => Ok(revs.iter().map(|r| OpenRev::Missing(r.clone())).collect()),
            };
        };
        let wanted: Vec<Rev> = match revs {
            None => rec.tree.leaves().into_iter().map(|l| l.rev).collect(),
            Some(revs) => revs.to_vec(),
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for r in wanted {
            let resolved: Vec<Rev> = if opts.latest {
                rec.tree.latest(&r).into_iter().map(|l| l.rev).collect()
            } else {
                vec![r.clone()]
            };
            if resolved.is_empty() {
                out.push(OpenRev::Missing(r));
            }
            for rr in resolved {
                if !seen.insert(rr.clone()) {
                    continue;
                }
                match self.render_rev(&rec, &rr, opts)? {
                    Some(json) => out.push(OpenRev::Ok(json)),
                    None => out.push(OpenRev::Missing(rr)),
                }
            }
        }
        Ok(out)
    }
}
