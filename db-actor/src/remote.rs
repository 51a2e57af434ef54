//! Attachment contents kept outside the actor (an R2 bucket), addressed by
//! digest: the actor's SQLite holds only a reference row.
//!
//! The engine stays synchronous: a write stores a large content locally as
//! *staged* (so nothing is lost if the upload fails or the actor dies), and
//! the binding uploads staged contents after the request and then drops the
//! local copy. A read that needs a remote content records it as *wanted*
//! and renders a placeholder; the binding fetches what is wanted and runs
//! the (read-only) request again with the contents at hand.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

/// Default of `R2_ATTACHMENT_THRESHOLD`: contents larger than this go to
/// the bucket.
pub const DEFAULT_THRESHOLD: u64 = 1 << 20;

/// A request's view of the bucket.
#[derive(Debug, Default)]
pub struct RemoteBlobs {
    /// Contents strictly larger than this many bytes go to the bucket.
    pub threshold: u64,
    fetched: RefCell<HashMap<String, Rc<Vec<u8>>>>,
    wanted: RefCell<BTreeSet<String>>,
    /// Uploaded contents compaction dropped: to delete from the bucket.
    doomed: RefCell<Vec<String>>,
    /// The request can be run again with what it wanted; when not (a
    /// stream already answering), a content not at hand is an error rather
    /// than a placeholder.
    rerunnable: Cell<bool>,
}

impl RemoteBlobs {
    pub fn new(threshold: u64) -> Self {
        RemoteBlobs {
            threshold,
            rerunnable: Cell::new(true),
            ..Default::default()
        }
    }

    /// Whether a missing content may be noted as wanted (see `rerunnable`).
    pub fn set_rerunnable(&self, yes: bool) {
        self.rerunnable.set(yes);
    }

    pub fn rerunnable(&self) -> bool {
        self.rerunnable.get()
    }

    /// Whether content of `len` bytes belongs in the bucket.
    pub fn takes(&self, len: usize) -> bool {
        len as u64 > self.threshold
    }

    /// The content if fetched already; otherwise notes it as wanted.
    pub fn get(&self, digest: &str) -> Option<Rc<Vec<u8>>> {
        let hit = self.fetched.borrow().get(digest).cloned();
        if hit.is_none() {
            self.wanted.borrow_mut().insert(digest.to_string());
        }
        hit
    }

    /// Digests a read wanted and did not have, emptied.
    pub fn take_wanted(&self) -> Vec<String> {
        std::mem::take(&mut *self.wanted.borrow_mut())
            .into_iter()
            .collect()
    }

    /// Hands a fetched content to the next run of the request.
    pub fn provide(&self, digest: &str, data: Vec<u8>) {
        self.fetched
            .borrow_mut()
            .insert(digest.to_string(), Rc::new(data));
    }

    /// Notes an uploaded content that no revision references any more.
    pub fn doom(&self, digest: &str) {
        self.doomed.borrow_mut().push(digest.to_string());
    }

    /// Whether compaction left contents to delete from the bucket.
    pub fn has_doomed(&self) -> bool {
        !self.doomed.borrow().is_empty()
    }

    /// Contents to delete from the bucket, emptied.
    pub fn take_doomed(&self) -> Vec<String> {
        std::mem::take(&mut *self.doomed.borrow_mut())
    }

    /// Forgets this request's contents (the actor keeps one `RemoteBlobs`).
    pub fn clear(&self) {
        self.fetched.borrow_mut().clear();
        self.wanted.borrow_mut().clear();
        self.doomed.borrow_mut().clear();
    }
}

/// The bucket key of a database's content: per database and incarnation,
/// so a deleted database's contents can be dropped by prefix.
pub fn key(db: &str, instance: &str, digest: &str) -> String {
    format!("{}{digest}", prefix(db, instance))
}

/// The prefix of every key of one database incarnation.
pub fn prefix(db: &str, instance: &str) -> String {
    format!("{db}/{instance}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_until_provided() {
        let r = RemoteBlobs::new(10);
        assert!(r.takes(11) && !r.takes(10));
        assert!(r.get("md5-a").is_none());
        assert!(r.get("md5-a").is_none());
        assert_eq!(r.take_wanted(), ["md5-a"]);
        assert!(r.take_wanted().is_empty());
        r.provide("md5-a", vec![1, 2]);
        assert_eq!(r.get("md5-a").as_deref(), Some(&vec![1, 2]));
        assert!(r.take_wanted().is_empty());
        assert_eq!(key("db", "x1", "md5-a"), "db/x1/md5-a");
    }
}
