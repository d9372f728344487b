//! Appending to the head: staging samples, then committing them to the WAL
//! and the series atomically.

use super::{Head, MemSeries};
use koban_model::Labels;
use koban_storage::{Appender, SeriesRef, StorageError};
use std::sync::atomic::Ordering;
use std::sync::Arc;

struct Staged {
    series: Arc<MemSeries>,
    t: i64,
    v: f64,
}

/// Buffers kept for reuse between appenders (see `HeadInner::append_bufs`).
#[derive(Default)]
pub(crate) struct AppendBufs {
    staged: Vec<Staged>,
    samples: Vec<(u64, i64, f64)>,
}

/// Pooled buffer sets kept at most; more appenders than this at once is rare.
const MAX_POOLED: usize = 16;
/// Buffers of appenders that staged more samples than this are not kept.
const MAX_POOLED_LEN: usize = 1 << 16;

/// Stages samples for one batch; see [`koban_storage::Appender`].
///
/// `append` validates against committed data (out of order, duplicate,
/// out of bounds) and returns the series ref; nothing is visible until
/// `commit`, which logs the batch to the WAL in one write and then applies
/// it under the commit lock. Samples of one batch that conflict with each
/// other (same series, not increasing) are dropped at commit and counted
/// as out of order, as Prometheus does.
pub struct HeadAppender {
    head: Head,
    staged: Vec<Staged>,
    samples: Vec<(u64, i64, f64)>,
}

impl HeadAppender {
    pub(crate) fn new(head: Head) -> Self {
        let bufs = head.inner.append_bufs.lock().pop().unwrap_or_default();
        HeadAppender {
            head,
            staged: bufs.staged,
            samples: bufs.samples,
        }
    }

    /// Number of staged samples.
    pub fn len(&self) -> usize {
        self.staged.len()
    }

    pub fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }
}

impl Appender for HeadAppender {
    fn append(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, StorageError> {
        let inner = &self.head.inner;
        if inner.closed.load(Ordering::Relaxed) {
            return Err(StorageError::Closed);
        }
        if t < inner.min_valid_time.load(Ordering::Relaxed) {
            return Err(StorageError::OutOfBounds);
        }
        let series = match (r != 0).then(|| inner.series_by_id(r)).flatten() {
            Some(s) => s,
            None => self.head.get_or_create(labels)?.0,
        };
        let ok = series.data.lock().appendable(t, v);
        match ok {
            Ok(true) => {
                let id = series.id;
                self.staged.push(Staged { series, t, v });
                Ok(id)
            }
            Ok(false) => Ok(series.id),
            Err(e) => {
                if e == StorageError::OutOfOrder {
                    inner.out_of_order.fetch_add(1, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let head = self.head.clone();
        let inner = &head.inner;
        let wal = inner.wal.read().clone();
        let _g = inner.commit_lock.write();
        if inner.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }

        // Re-home samples of series truncation removed meanwhile, and find
        // series that need a WAL series record.
        let mut new_series: Vec<Arc<MemSeries>> = Vec::new();
        for st in &mut self.staged {
            let (removed, logged) = {
                let d = st.series.data.lock();
                (d.removed, d.logged)
            };
            if removed {
                let labels = inner.symbols.read().resolve(&st.series.lset);
                st.series = head.get_or_create(&labels)?.0;
            }
            if !logged || removed {
                new_series.push(st.series.clone());
            }
        }
        new_series.sort_unstable_by_key(|s| s.id);
        new_series.dedup_by_key(|s| s.id);
        new_series.retain(|s| !s.data.lock().logged);

        if let Some(wal) = &wal {
            let series_recs: Vec<(u64, Labels)> = {
                let syms = inner.symbols.read();
                new_series
                    .iter()
                    .map(|s| (s.id, syms.resolve(&s.lset)))
                    .collect()
            };
            self.samples.clear();
            self.samples
                .extend(self.staged.iter().map(|s| (s.series.id, s.t, s.v)));
            wal.log_commit(&series_recs, &self.samples)
                .map_err(|e| StorageError::Io(e.to_string()))?;
        }
        for s in &new_series {
            s.data.lock().logged = true;
        }

        let last_seq = inner.commit_seq.load(Ordering::Acquire);
        let seq = last_seq + 1;
        // Entries every open querier already sees can go.
        let low = inner
            .readers
            .lock()
            .keys()
            .next()
            .copied()
            .unwrap_or(last_seq);
        let (mut mint, mut maxt, mut n, mut ooo) = (i64::MAX, i64::MIN, 0u64, 0u64);
        let range = inner.opts.chunk_range_ms;
        for st in &self.staged {
            let mut d = st.series.data.lock();
            match d.appendable(st.t, st.v) {
                Ok(true) => {
                    let last_t = d.last_t();
                    d.commits.record(seq, low, last_t);
                    d.append(st.t, st.v, range);
                    mint = mint.min(st.t);
                    maxt = maxt.max(st.t);
                    n += 1;
                }
                Ok(false) => {}
                Err(_) => ooo += 1,
            }
        }
        inner.commit_seq.store(seq, Ordering::Release);
        if n > 0 {
            inner.min_time.fetch_min(mint, Ordering::AcqRel);
            inner.max_time.fetch_max(maxt, Ordering::AcqRel);
            inner.samples_appended.fetch_add(n, Ordering::Relaxed);
        }
        if ooo > 0 {
            inner.out_of_order.fetch_add(ooo, Ordering::Relaxed);
        }
        Ok(())
    }

    fn rollback(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
}

impl Drop for HeadAppender {
    /// Returns the (emptied) staging buffers to the head's pool.
    fn drop(&mut self) {
        if self.staged.capacity() > MAX_POOLED_LEN || self.samples.capacity() > MAX_POOLED_LEN {
            return;
        }
        self.staged.clear();
        self.samples.clear();
        let bufs = AppendBufs {
            staged: std::mem::take(&mut self.staged),
            samples: std::mem::take(&mut self.samples),
        };
        let mut pool = self.head.inner.append_bufs.lock();
        if pool.len() < MAX_POOLED {
            pool.push(bufs);
        }
    }
}
