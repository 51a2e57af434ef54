//! The bulk endpoints replication runs on: `_bulk_docs`, `_bulk_get`,
//! `_revs_diff` and `_missing_revs`.

use crate::database::Database;
use serde_json::{json, Map, Value};
use shared::doc::{is_design, is_local, IncomingDoc};
use shared::doc_read::{OpenRev, ReadOpts};
use shared::error::{CouchError, CouchResult};
use shared::rev::Rev;
use shared::uuids;
use std::collections::HashSet;

impl Database<'_> {
    /// `POST /db/_bulk_docs`. Malformed documents fail the whole request
    /// (as CouchDB parses them all first); conflicts are reported per
    /// document. With `new_edits: false` only failures are listed.
    /// `before_write` checks (and may transform) each document; its
    /// refusals are reported per document.
    pub fn bulk_docs(
        &self,
        mut body: Map<String, Value>,
        before_write: &dyn Fn(&str, &mut IncomingDoc) -> CouchResult<()>,
    ) -> CouchResult<Vec<Value>> {
        // The documents are taken out of the body, not copied.
        let docs = match body.remove("docs") {
            Some(Value::Array(docs)) => docs,
            None => {
                return Err(CouchError::bad_request(
                    "POST body must include `docs` parameter.",
                ))
            }
            Some(_) => {
                return Err(CouchError::bad_request(
                    "`docs` parameter must be an array.",
                ))
            }
        };
        let new_edits = match body.get("new_edits") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(CouchError::bad_request(
                    "`new_edits` parameter must be a boolean.",
                ))
            }
        };
        // A malformed revision is that document's error (CouchDB answers
        // per document); any other malformed document fails the request.
        let mut parsed: Vec<Entry> = docs
            .into_iter()
            .map(|d| {
                let given_id = d.get("_id").and_then(Value::as_str).map(str::to_string);
                if let Some(id) = given_id.as_deref().filter(|i| is_local(i)) {
                    shared::doc::validate_id(id)?;
                    return Ok(Entry::Local(id.to_string(), d));
                }
                let doc = match IncomingDoc::parse(d) {
                    Err(e) if e.reason == CouchError::bad_rev().reason => match given_id {
                        Some(id) => return Ok(Entry::Doc(id, Err(e))),
                        None => return Err(e),
                    },
                    doc => doc?,
                };
                let id = doc.id.clone().unwrap_or_else(uuids::next);
                self.check_id(&id)?;
                Ok(Entry::Doc(id, Ok(Box::new(doc))))
            })
            .collect::<CouchResult<_>>()?;
        // Documents written once each, none of them a design document
        // (whose functions the later ones may need), go out together.
        let ids: Vec<String> = parsed
            .iter()
            .filter_map(|e| match e {
                Entry::Doc(id, Ok(_)) => Some(id.clone()),
                _ => None,
            })
            .collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let distinct: HashSet<&str> = ids.iter().copied().collect();
        let together = distinct.len() == ids.len() && !ids.iter().any(|id| is_design(id));
        let written = self.transact(|| {
            if together {
                self.store.buffer_writes(&ids)?;
            }
            let mut batch = self.begin_writes()?;
            let mut results = Vec::with_capacity(parsed.len());
            for entry in parsed.iter_mut() {
                let (id, doc) = match entry {
                    Entry::Local(..) => {
                        results.push(None);
                        continue;
                    }
                    Entry::Doc(id, Ok(doc)) => (id, &mut **doc),
                    Entry::Doc(id, Err(e)) => {
                        results.push(Some(failure(id, e)));
                        continue;
                    }
                };
                // What the checks refuse (validation, a design document
                // that does not compile, access) is that document's error.
                match before_write(id, doc) {
                    Err(e) if e.status < 500 => {
                        results.push(Some(failure(id, &e)));
                        continue;
                    }
                    Err(e) => return Err(e),
                    Ok(()) => {}
                }
                let r = if new_edits {
                    self.update_doc(&mut batch, id, doc).map(Some)
                } else {
                    self.merge_doc(&mut batch, id, doc).map(|_| None)
                };
                results.push(match r {
                    Ok(Some(rev)) => Some(json!({"ok": true, "id": id, "rev": rev.to_string()})),
                    Ok(None) => None,
                    Err(e) if matches!(e.status, 401 | 403 | 404 | 409) => Some(failure(id, &e)),
                    Err(e) => return Err(e),
                });
            }
            self.store.flush_writes()?;
            self.finish_writes(&batch)?;
            Ok(results)
        });
        self.store.discard_writes();
        let mut results: Vec<Option<Value>> = written?;
        // `_local` documents have no history and their own transaction each,
        // as CouchDB writes them apart from the others.
        for (slot, entry) in results.iter_mut().zip(parsed) {
            if let Entry::Local(id, body) = entry {
                *slot = match self.put_local(&id, body, None) {
                    Ok(rev) if new_edits => Some(json!({"ok": true, "id": id, "rev": rev})),
                    Ok(_) => None,
                    Err(e) if e.status < 500 => Some(failure(&id, &e)),
                    Err(e) => return Err(e),
                };
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// `POST /db/_bulk_get`: each requested document (revision) as
    /// `{"ok": doc}` or an error, grouped by request entry. The records
    /// and the bodies asked for are read ahead, many per statement, and
    /// the answer is assembled from the rendered documents as they are.
    pub fn bulk_get(&self, body: &Map<String, Value>, opts: &ReadOpts) -> CouchResult<Vec<u8>> {
        let docs = body
            .get("docs")
            .and_then(Value::as_array)
            .ok_or_else(|| CouchError::bad_request("Missing JSON list of 'docs'."))?;
        let ids: Vec<&str> = docs
            .iter()
            .filter_map(|d| d.get("id").and_then(Value::as_str))
            .collect();
        let _reads = self.store.read_ahead(&ids)?;
        self.read_ahead_bodies(docs, opts)?;
        let mut out = br#"{"results":["#.to_vec();
        for (i, d) in docs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let id = d.get("id").and_then(Value::as_str);
            let Some(id) = id else {
                let e = json!({"id": null, "docs": [{"error": {
                    "id": null, "rev": null, "error": "illegal_docid", "reason": "Document id must be a string."
                }}]});
                serde_json::to_writer(&mut out, &e)?;
                continue;
            };
            out.extend_from_slice(br#"{"id":"#);
            serde_json::to_writer(&mut out, id)?;
            out.extend_from_slice(br#","docs":["#);
            for (j, entry) in self.bulk_get_entry(id, d, opts).into_iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                match entry {
                    Ok(json) => {
                        out.extend_from_slice(br#"{"ok":"#);
                        out.extend(json);
                        out.push(b'}');
                    }
                    Err(e) => serde_json::to_writer(&mut out, &e)?,
                }
            }
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }

    /// The answers to one `_bulk_get` entry: rendered documents, or error
    /// entries.
    fn bulk_get_entry(&self, id: &str, d: &Value, opts: &ReadOpts) -> Vec<Result<Vec<u8>, Value>> {
        let mut opts = opts.clone();
        if let Some(since) = d.get("atts_since") {
            match Rev::list_from_json(since) {
                Ok(revs) => opts.atts_since = Some(revs),
                Err(e) => return vec![Err(error_entry(id, d.get("rev"), &e))],
            }
        }
        let answer = match d.get("rev").map(Rev::from_json).transpose() {
            Err(e) => Err(e),
            Ok(Some(rev)) => self.open_revs(id, Some(&[rev]), &opts),
            Ok(None) => self.winner_only(id, &opts),
        };
        match answer {
            Ok(list) => list
                .into_iter()
                .map(|o| match o {
                    OpenRev::Ok(json) => Ok(json),
                    OpenRev::Missing(r) => Err(error_entry(
                        id,
                        Some(&json!(r.to_string())),
                        &CouchError::doc_not_found(false),
                    )),
                })
                .collect(),
            Err(e) => vec![Err(error_entry(id, d.get("rev"), &e))],
        }
    }

    /// Reads ahead the bodies a `_bulk_get` will render: the revision
    /// asked (or the leaves it leads to with `latest`), or the winner.
    fn read_ahead_bodies(&self, docs: &[Value], opts: &ReadOpts) -> CouchResult<()> {
        let mut wanted: Vec<(&str, String)> = Vec::new();
        for d in docs {
            let Some(id) = d.get("id").and_then(Value::as_str) else {
                continue;
            };
            let Some(rec) = self.store.load_doc(id)? else {
                continue;
            };
            match d.get("rev").map(Rev::from_json) {
                None => wanted.push((id, rec.winner.to_string())),
                Some(Ok(rev)) if opts.latest => wanted.extend(
                    rec.tree
                        .latest(&rev)
                        .into_iter()
                        .map(|l| (id, l.rev.to_string())),
                ),
                Some(Ok(rev)) => wanted.push((id, rev.to_string())),
                Some(Err(_)) => {}
            }
        }
        self.store.read_ahead_bodies(wanted)
    }

    fn winner_only(&self, id: &str, opts: &ReadOpts) -> CouchResult<Vec<OpenRev>> {
        let rec = self.require_doc(id)?;
        self.meta()?;
        Ok(vec![match self.render_rev(&rec, &rec.winner, opts)? {
            Some(j) => OpenRev::Ok(j),
            None => OpenRev::Missing(rec.winner.clone()),
        }])
    }

    /// `POST /db/_revs_diff`: which of the given revisions are unknown, and
    /// which known leaves could be their ancestors.
    pub fn revs_diff(&self, body: &Map<String, Value>) -> CouchResult<Map<String, Value>> {
        self.meta()?;
        let ids: Vec<&str> = body.keys().map(String::as_str).collect();
        let _reads = self.store.read_ahead(&ids)?;
        let mut out = Map::new();
        for (id, revs) in body {
            let revs = parse_rev_list(revs)?;
            let rec = self.store.load_doc(id)?;
            let missing: Vec<&Rev> = revs
                .iter()
                .filter(|r| !rec.as_ref().is_some_and(|d| d.tree.contains(r)))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let mut entry = Map::new();
            entry.insert(
                "missing".into(),
                json!(missing.iter().map(|r| r.to_string()).collect::<Vec<_>>()),
            );
            if let Some(rec) = &rec {
                let max_pos = missing.iter().map(|r| r.pos).max().unwrap_or(0);
                let ancestors: Vec<String> = rec
                    .tree
                    .leaves()
                    .into_iter()
                    .filter(|l| l.rev.pos < max_pos)
                    .map(|l| l.rev.to_string())
                    .collect();
                if !ancestors.is_empty() {
                    entry.insert("possible_ancestors".into(), json!(ancestors));
                }
            }
            out.insert(id.clone(), Value::Object(entry));
        }
        Ok(out)
    }

    /// `POST /db/_missing_revs`: the older form of `_revs_diff`.
    pub fn missing_revs(&self, body: &Map<String, Value>) -> CouchResult<Value> {
        let diff = self.revs_diff(body)?;
        let missing: Map<String, Value> = diff
            .into_iter()
            .map(|(id, v)| (id, v.get("missing").cloned().unwrap_or(json!([]))))
            .collect();
        Ok(json!({ "missing_revs": missing }))
    }
}

/// One document of a `_bulk_docs` request.
enum Entry {
    Doc(String, CouchResult<Box<IncomingDoc>>),
    Local(String, Value),
}

fn failure(id: &str, e: &CouchError) -> Value {
    json!({"id": id, "error": e.error, "reason": e.reason})
}

fn parse_rev_list(v: &Value) -> CouchResult<Vec<Rev>> {
    v.as_array()
        .ok_or_else(|| CouchError::bad_request("Each document id must map to a list of revisions"))?
        .iter()
        .map(Rev::from_json)
        .collect()
}

fn error_entry(id: &str, rev: Option<&Value>, e: &CouchError) -> Value {
    json!({"error": {
        "id": id,
        "rev": rev.cloned().unwrap_or(json!("undefined")),
        "error": e.error,
        "reason": e.reason,
    }})
}
