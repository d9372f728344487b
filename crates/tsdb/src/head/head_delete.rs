//! Deleting samples from the head (admin API `delete_series`).
//!
//! Unlike blocks, which keep tombstones beside their immutable files, the
//! head drops deleted samples from memory at once: the chunks of an
//! affected series that overlap the range are re-encoded without them.
//! Before that, a tombstone record (series ref, mint, maxt) is logged to
//! the WAL, under the commit lock like a commit, so the log order is the
//! order in which deletions and commits took effect; replay applies each
//! tombstone to the samples logged before it ([`Head::replay_delete`]),
//! which rebuilds exactly the head that was running. A head snapshot is
//! written from the head, so it holds no deleted sample either.

use super::head_read::matching_ids;
use super::{ClosedChunk, Head, MemSeries, SeriesData};
use crate::chunkenc::{XorChunk, XorIter};
use koban_model::Matcher;
use koban_storage::StorageError;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Head {
    /// Deletes the samples in `[mint, maxt]` (both included) of every
    /// series matching any of the matcher sets, logging a tombstone record
    /// to the WAL first (nothing changes if that fails). Returns the number
    /// of series that lost samples. Series left without samples stay until
    /// the next truncation, as after a head cut.
    pub(crate) fn delete(
        &self,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<u64, StorageError> {
        let i = &self.inner;
        let wal = i.wal.read().clone();
        // Excludes commits (and selects) while chunks are rewritten.
        let _g = i.commit_lock.write();
        if i.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        let mut slots: Vec<u32> = sets.iter().flat_map(|m| matching_ids(i, m)).collect();
        slots.sort_unstable();
        slots.dedup();
        let series: Vec<_> = slots
            .into_iter()
            .filter_map(|slot| i.series_by_slot(slot))
            .filter(|s| s.data.lock().has_samples_in(mint, maxt))
            .collect();
        if series.is_empty() {
            return Ok(0);
        }
        if let Some(wal) = &wal {
            let ts: Vec<(u64, i64, i64)> = series.iter().map(|s| (s.id, mint, maxt)).collect();
            wal.log_tombstones(&ts)
                .map_err(|e| StorageError::Io(e.to_string()))?;
        }
        for s in &series {
            self.delete_in(s, mint, maxt);
        }
        Ok(series.len() as u64)
    }

    /// Replay: applies a logged tombstone to series `s`.
    pub(crate) fn replay_delete(&self, s: &MemSeries, mint: i64, maxt: i64) {
        self.delete_in(s, mint, maxt);
    }

    fn delete_in(&self, s: &MemSeries, mint: i64, maxt: i64) {
        let i = &self.inner;
        let ooo = s.data.lock().delete_range(mint, maxt);
        if ooo > 0 {
            i.ooo_samples.fetch_sub(ooo as u64, Ordering::Relaxed);
        }
    }
}

impl SeriesData {
    /// True if the series has a sample (in-order or out-of-order) in
    /// `[mint, maxt]`.
    fn has_samples_in(&self, mint: i64, maxt: i64) -> bool {
        let over = |lo: i64, hi: i64| lo <= maxt && hi >= mint;
        let h = &self.head;
        if h.num_samples() > 0 && over(h.min_time(), h.max_time()) && any_in(&h.bytes(), mint, maxt)
        {
            return true;
        }
        if self
            .closed
            .iter()
            .any(|c| over(c.min_t, c.max_t) && any_in(&c.data[..], mint, maxt))
        {
            return true;
        }
        self.ooo().is_some_and(|o| {
            let mut v = Vec::new();
            o.visible(mint, maxt, u64::MAX, &mut v);
            !v.is_empty()
        })
    }

    /// Drops the samples in `[mint, maxt]`: chunks overlapping the range
    /// are re-encoded without them (a chunk left empty goes). Returns the
    /// number of out-of-order samples dropped.
    fn delete_range(&mut self, mint: i64, maxt: i64) -> usize {
        let over = |lo: i64, hi: i64| lo <= maxt && hi >= mint;
        if self.closed.iter().any(|c| over(c.min_t, c.max_t)) {
            let old = std::mem::take(&mut self.closed);
            for c in old.iter() {
                if !over(c.min_t, c.max_t) {
                    self.closed.push(c.clone());
                    continue;
                }
                let keep = survivors(&c.data[..], mint, maxt);
                if let Some(nc) = encode(&keep) {
                    self.closed.push(ClosedChunk {
                        min_t: nc.min_time(),
                        max_t: nc.max_time(),
                        data: Arc::from(nc.into_bytes().into_boxed_slice()),
                    });
                }
            }
        }
        let h = &self.head;
        if h.num_samples() > 0 && over(h.min_time(), h.max_time()) {
            let keep = survivors(&h.bytes(), mint, maxt);
            self.head = encode(&keep).unwrap_or_else(XorChunk::unallocated);
        }
        let n = self.ooo_mut().map_or(0, |o| o.delete_range(mint, maxt));
        if self.ooo().is_some_and(|o| o.len() == 0) {
            self.clear_ooo();
        }
        n
    }
}

/// True if an encoded chunk has a sample in `[mint, maxt]`.
fn any_in(data: &[u8], mint: i64, maxt: i64) -> bool {
    let mut it = XorIter::new(data);
    std::iter::from_fn(|| it.next_bits())
        .take_while(|&(t, _)| t <= maxt)
        .any(|(t, _)| t >= mint)
}

/// The samples of an encoded chunk outside `[mint, maxt]`.
fn survivors(data: &[u8], mint: i64, maxt: i64) -> Vec<(i64, f64)> {
    let mut it = XorIter::new(data);
    std::iter::from_fn(|| it.next_bits())
        .filter(|&(t, _)| t < mint || t > maxt)
        .map(|(t, b)| (t, f64::from_bits(b)))
        .collect()
}

/// A chunk of `samples` (sorted), or None if there are none.
fn encode(samples: &[(i64, f64)]) -> Option<XorChunk> {
    if samples.is_empty() {
        return None;
    }
    let mut c = XorChunk::with_capacity(32);
    for &(t, v) in samples {
        c.append(t, v);
    }
    Some(c)
}
