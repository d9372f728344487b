//! An in-memory storage for rule tests (`koban test rules`, unit tests):
//! queries read a [`MemStore`], appends are staged per appender and land
//! in it on commit, and every committed sample is logged in order.

use koban_model::Labels;
use koban_promql::memstore::MemStore;
use koban_storage::{Appendable, Appender, CommitReport, Querier, Queryable, Result, SeriesRef};
use parking_lot::Mutex;
use std::sync::Arc;

/// See the module docs. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct MemStorage {
    pub store: MemStore,
    log: Arc<Mutex<Vec<(Labels, i64, f64)>>>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every committed sample so far, in commit order.
    pub fn log(&self) -> Vec<(Labels, i64, f64)> {
        self.log.lock().clone()
    }

    /// Forgets the log (not the data).
    pub fn clear_log(&self) {
        self.log.lock().clear();
    }
}

impl Queryable for MemStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>> {
        self.store.querier(mint, maxt)
    }
}

struct MemAppender {
    to: MemStorage,
    staged: Vec<(Labels, i64, f64)>,
}

impl Appender for MemAppender {
    fn append(&mut self, _r: SeriesRef, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef> {
        if labels.is_empty() {
            return Err(koban_storage::StorageError::InvalidLabels);
        }
        self.staged.push((labels.clone(), t, v));
        Ok(0)
    }

    fn commit(self: Box<Self>) -> Result<CommitReport> {
        let n = self.staged.len() as u64;
        for (l, t, v) in &self.staged {
            self.to.store.add(l.clone(), &[(*t, *v)]);
        }
        self.to.log.lock().extend(self.staged);
        let mut r = CommitReport::default();
        r.floats = n;
        Ok(r)
    }

    fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(MemAppender {
            to: self.clone(),
            staged: Vec::new(),
        })
    }
}
