//! One invocation's share of index building. The Workers runtime stops an
//! invocation that uses too much CPU, so a build spends at most the budget
//! and leaves the rest to the actor's alarm (each alarm has a budget of its
//! own); a query that needs the index waits for those alarms and runs
//! again ([`crate::build_scheduler`]).

use shared::view::IndexName;
use std::cell::{Cell, RefCell};

pub struct Builds {
    /// Documents this invocation may still map (a large body counts as
    /// several).
    left: Cell<u64>,
    /// Views a query found unfinished: they must be brought up to date
    /// before it can answer.
    awaited: RefCell<Vec<IndexName>>,
    /// Views a query asked to update after answering (`update=lazy`).
    lazy: RefCell<Vec<IndexName>>,
}

/// Bytes of document body that cost as much as one more document.
const BUDGET_BYTES_PER_DOC: u64 = 4_096;

impl Builds {
    pub fn new(budget: u64) -> Builds {
        Builds {
            left: Cell::new(budget),
            awaited: RefCell::default(),
            lazy: RefCell::default(),
        }
    }

    /// Documents this invocation may still map.
    pub fn left(&self) -> u64 {
        self.left.get()
    }

    /// Counts one document mapped, by its body's size.
    pub fn spend(&self, body_len: usize) {
        let cost = 1 + body_len as u64 / BUDGET_BYTES_PER_DOC;
        self.left.set(self.left.get().saturating_sub(cost));
    }

    /// Lowers the budget to at most `n` documents.
    pub fn limit(&self, n: u64) {
        self.left.set(self.left.get().min(n));
    }

    /// A query cannot answer before this view is built.
    pub fn wait_for(&self, view: IndexName) {
        self.awaited.borrow_mut().push(view);
    }

    /// A query answered from this view as it was (`update=lazy`).
    pub fn update_later(&self, view: IndexName) {
        self.lazy.borrow_mut().push(view);
    }

    /// The views a query waits for, and those to update in the background.
    pub fn take(&self) -> (Vec<IndexName>, Vec<IndexName>) {
        (self.awaited.take(), self.lazy.take())
    }
}
