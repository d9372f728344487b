//! Periodic maintenance of a [`Db`], as Prometheus does:
//!
//! 1. **head cut**: while the head spans more than 1.5x the block duration,
//!    its oldest full block-duration window is written into a new level-1
//!    block, then the head and the WAL are truncated past that window.
//!    Out-of-order samples are sealed first (after a new WAL segment is
//!    started): those in the window go into that block, older ones into one
//!    more block per block-duration window (overlapping blocks already
//!    there); then the sealed samples older than the window's end leave the
//!    head. Samples committed during the cut stay in the head and the WAL;
//!    in-order appends cannot reach the window (the head refuses samples
//!    older than its newest minus half the block duration);
//! 2. **compaction**: [`compact::plan`] picks overlapping blocks (merged
//!    first: series joined, samples sorted and de-duplicated by timestamp)
//!    or a full leveled window (2h -> 6h -> 18h ...); they are merged into
//!    one block which replaces them. Until then queries merge overlapping
//!    blocks the same way;
//! 3. **retention**: blocks beyond the time retention (relative to the
//!    newest sample, block or head) or beyond the size retention (blocks +
//!    WAL bytes, oldest first) are deleted.
//!
//! A querier holds its own handles on the blocks it reads, so compaction or
//! retention replacing them meanwhile is harmless (the files are
//! memory-mapped: deleting the directory keeps the mappings valid until the
//! last querier drops them).

use super::blocks::{dir_size, remove_block_dir, sort_blocks};
use super::{Db, TsdbError};
use crate::block::{Block, BlockError, BlockMeta, BlockWriter};
use crate::compact::{self, range_start};
use crate::head::HeadQuerier;
use koban_storage::Series;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the thread [`Db::start_maintenance`] starts runs
/// [`Db::maintain`].
pub const MAINTAIN_INTERVAL: Duration = Duration::from_secs(60);

/// Counters and gauges for metrics (`prometheus_tsdb_*` equivalents).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlocksStats {
    /// Blocks currently served.
    pub blocks: usize,
    /// Bytes on disk of the served blocks.
    pub bytes: u64,
    /// Smallest block min time (None without blocks).
    pub min_time: Option<i64>,
    /// Largest block max time, exclusive (None without blocks).
    pub max_time: Option<i64>,
    /// Blocks written from the head.
    pub head_cuts: u64,
    /// Head cuts that failed.
    pub head_cut_failures: u64,
    /// Compactions run (each merges 2+ blocks into one).
    pub compactions: u64,
    /// Compactions that failed.
    pub compaction_failures: u64,
    /// Blocks deleted by time or size retention.
    pub retention_deletions_time: u64,
    pub retention_deletions_size: u64,
    /// Blocks moved aside as corrupt when opening.
    pub corrupted_blocks: u64,
    /// Maintenance passes run / failed.
    pub maintain_runs: u64,
    pub maintain_failures: u64,
    /// The last maintenance error, if the last pass failed.
    pub last_error: Option<String>,
}

/// What one [`Db::maintain`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintainReport {
    /// Ids of blocks written from the head.
    pub cut: Vec<String>,
    /// Ids of blocks produced by compaction.
    pub compacted: Vec<String>,
    /// Ids of blocks deleted by retention.
    pub deleted: Vec<String>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) head_cuts: AtomicU64,
    pub(crate) head_cut_failures: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) compaction_failures: AtomicU64,
    pub(crate) retention_time: AtomicU64,
    pub(crate) retention_size: AtomicU64,
    pub(crate) corrupted: AtomicU64,
    pub(crate) runs: AtomicU64,
    pub(crate) failures: AtomicU64,
}

impl Db {
    /// Runs one maintenance pass: head cut, compaction, retention (see the
    /// module docs). Blocking; passes are serialised. Every phase runs even
    /// if an earlier one failed; the first error is returned (and kept in
    /// [`BlocksStats::last_error`]).
    pub fn maintain(&self) -> Result<MaintainReport, TsdbError> {
        let _g = self.maintain_lock.lock();
        self.counters.runs.fetch_add(1, Ordering::Relaxed);
        let mut report = MaintainReport::default();
        let mut first_err: Option<TsdbError> = None;
        if let Err(e) = self.cut_head(&mut report) {
            self.counters
                .head_cut_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "TSDB head cut failed");
            first_err.get_or_insert(e);
        }
        if let Err(e) = self.compact_blocks(&mut report) {
            self.counters
                .compaction_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "TSDB compaction failed");
            first_err.get_or_insert(e);
        }
        self.apply_retention(&mut report);
        match first_err {
            Some(e) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                *self.last_error.lock() = Some(e.to_string());
                Err(e)
            }
            None => {
                *self.last_error.lock() = None;
                Ok(report)
            }
        }
    }

    /// Starts the maintenance thread (not a tokio worker: the work blocks):
    /// [`Db::maintain`] right away and then every [`MAINTAIN_INTERVAL`],
    /// until `cancel` is cancelled or the database is closed
    /// ([`Db::close`] waits for the pass in progress). Errors are logged and
    /// counted in [`Db::stats`]. Call at most once.
    pub fn start_maintenance(
        self: &Arc<Self>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<(), TsdbError> {
        self.start_maintenance_every(cancel, MAINTAIN_INTERVAL)
    }

    /// [`Db::start_maintenance`] with a chosen interval.
    pub fn start_maintenance_every(
        self: &Arc<Self>,
        cancel: tokio_util::sync::CancellationToken,
        interval: Duration,
    ) -> Result<(), TsdbError> {
        let mut slot = self.maintenance.lock();
        if slot.is_some() {
            return Err(TsdbError::InvalidOption(
                "BUG: maintenance started twice".into(),
            ));
        }
        // A weak handle: the thread does not keep the database open.
        let db = Arc::downgrade(self);
        let stop = self.stop_maintenance.clone();
        let h = std::thread::Builder::new()
            .name("tsdb-maintain".into())
            .spawn(move || {
                const POLL: Duration = Duration::from_millis(200);
                let done = || cancel.is_cancelled() || stop.is_cancelled();
                while !done() {
                    let Some(db) = db.upgrade() else { break };
                    // Errors are logged and recorded in stats by maintain.
                    let _ = db.maintain();
                    drop(db);
                    let until = std::time::Instant::now() + interval;
                    while !done() {
                        let now = std::time::Instant::now();
                        if now >= until {
                            break;
                        }
                        std::thread::sleep(POLL.min(until - now));
                    }
                }
                tracing::debug!("TSDB maintenance thread stopped");
            })
            .map_err(|e| TsdbError::io(&self.dir, e))?;
        *slot = Some(h);
        Ok(())
    }

    /// Cuts blocks from the head while it spans more than 1.5x the block
    /// duration.
    fn cut_head(&self, report: &mut MaintainReport) -> Result<(), TsdbError> {
        let range = self.options().block_duration_ms;
        let head = self.head();
        let wait_until = std::time::Instant::now() + HEAD_READER_WAIT;
        loop {
            let (hmin, hmax) = (head.min_time(), head.max_time());
            if hmin == i64::MAX || hmax == i64::MIN || hmax.saturating_sub(hmin) <= range / 2 * 3 {
                return Ok(());
            }
            let start = range_start(hmin, range);
            let end = start.saturating_add(range);
            let started = std::time::Instant::now();
            // Every sample committed before this point is in segments
            // before `seg`: in-order in the head, or out-of-order and
            // sealed just below, so all of them reach blocks before those
            // segments are truncated.
            let seg = self.wal().cut_segment()?;
            let has_ooo = head.seal_ooo();
            let block = self.write_head_range(start, end)?;
            if let Some(b) = &block {
                report.cut.push(b.meta().ulid.clone());
                self.counters.head_cuts.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    block = %b.meta().ulid,
                    mint = start,
                    maxt = end,
                    series = b.meta().stats.num_series,
                    samples = b.meta().stats.num_samples,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "TSDB head block written"
                );
                self.add_block(b.clone());
            }
            if has_ooo {
                for b in self.write_sealed_ooo(start, range)? {
                    report.cut.push(b.meta().ulid.clone());
                    self.counters.head_cuts.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        block = %b.meta().ulid,
                        mint = b.meta().min_time,
                        maxt = b.meta().max_time,
                        series = b.meta().stats.num_series,
                        samples = b.meta().stats.num_samples,
                        "TSDB out-of-order head block written"
                    );
                    self.add_block(b);
                }
            }
            if !head.wait_for_readers(wait_until) {
                tracing::warn!(
                    mint = start,
                    maxt = end,
                    "TSDB head cut: queriers opened before the cut still running; truncating anyway"
                );
            }
            head.truncate(end);
            if has_ooo {
                head.release_sealed_ooo(end);
            }
            self.truncate_wal_before(seg, end)?;
            if head.min_time() < end && head.min_time() != i64::MAX {
                return Err(TsdbError::HeadCut {
                    mint: start,
                    maxt: end,
                    reason: format!(
                        "head min time {} did not move past the cut",
                        head.min_time()
                    ),
                });
            }
        }
    }

    /// Writes every head sample in `[start, end)` into a new block.
    fn write_head_range(&self, start: i64, end: i64) -> Result<Option<Block>, TsdbError> {
        let q = HeadQuerier::new(self.head().clone(), start, end - 1);
        let series = q.select_series(false, &[]);
        // The snapshot is self-contained; an open querier would make the
        // head keep commit history while the block is written.
        drop(q);
        let mut w = BlockWriter::new(self.dir())?;
        let mut samples: Vec<(i64, f64)> = Vec::new();
        for s in &series {
            samples.clear();
            let mut it = s.iter();
            while let Some(x) = it.next() {
                samples.push(x);
            }
            w.add_series(s.labels().clone(), &samples)?;
        }
        match w.finish()? {
            Some(dir) => Ok(Some(Block::open(&dir)?)),
            None => Ok(None),
        }
    }

    /// Writes the sealed out-of-order head samples older than `before`
    /// into one block per `range`-aligned window.
    fn write_sealed_ooo(&self, before: i64, range: i64) -> Result<Vec<Block>, TsdbError> {
        let mut writers: std::collections::BTreeMap<i64, BlockWriter> = Default::default();
        let mut err: Option<BlockError> = None;
        let dir = self.dir();
        self.head().for_each_sealed_ooo(before, |labels, samples| {
            let mut rest = samples;
            while let (Some(first), None) = (rest.first(), &err) {
                let w = range_start(first.0, range);
                let n = rest.partition_point(|s| s.0 < w.saturating_add(range));
                let res = match writers.entry(w) {
                    std::collections::btree_map::Entry::Occupied(e) => Ok(e.into_mut()),
                    std::collections::btree_map::Entry::Vacant(e) => {
                        BlockWriter::new(dir).map(|bw| e.insert(bw))
                    }
                }
                .and_then(|bw| bw.add_series(labels.clone(), &rest[..n]));
                if let Err(e) = res {
                    err = Some(e);
                }
                rest = &rest[n..];
            }
        });
        if let Some(e) = err {
            return Err(e.into());
        }
        let mut out = Vec::new();
        for (_, w) in writers {
            if let Some(dir) = w.finish()? {
                out.push(Block::open(&dir)?);
            }
        }
        Ok(out)
    }

    fn add_block(&self, b: Block) {
        let mut bs = self.blocks.write();
        bs.push(b);
        sort_blocks(&mut bs);
    }

    /// Runs the compaction plan until it has nothing left to do.
    fn compact_blocks(&self, report: &mut MaintainReport) -> Result<(), TsdbError> {
        let retention_ms = self.retention_ms();
        let ranges = compact::compaction_ranges(retention_ms);
        // Bounded: each round removes at least one block.
        for _ in 0..1000 {
            let metas = self.block_metas();
            let ids = compact::plan(&metas, &ranges);
            if ids.len() < 2 {
                return Ok(());
            }
            let inputs: Vec<Block> = {
                let bs = self.blocks.read();
                bs.iter()
                    .filter(|b| ids.contains(&b.meta().ulid))
                    .cloned()
                    .collect()
            };
            if inputs.len() != ids.len() {
                return Ok(()); // BUG guard: plan named blocks we do not hold.
            }
            let started = std::time::Instant::now();
            let out = compact::compact(&inputs, self.dir())?;
            self.counters.compactions.fetch_add(1, Ordering::Relaxed);
            {
                let mut bs = self.blocks.write();
                bs.retain(|b| !ids.contains(&b.meta().ulid));
                if let Some(b) = &out {
                    bs.push(b.clone());
                }
                sort_blocks(&mut bs);
            }
            if let Some(b) = &out {
                report.compacted.push(b.meta().ulid.clone());
            }
            tracing::info!(
                sources = ?ids,
                block = out.as_ref().map_or("(empty)", |b| b.meta().ulid.as_str()),
                mint = out.as_ref().map(|b| b.meta().min_time),
                maxt = out.as_ref().map(|b| b.meta().max_time),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "TSDB blocks compacted"
            );
            for b in &inputs {
                remove_block_dir(b);
            }
        }
        Ok(())
    }

    fn retention_ms(&self) -> i64 {
        self.options()
            .retention
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Deletes blocks beyond time and size retention.
    fn apply_retention(&self, report: &mut MaintainReport) {
        let retention_ms = self.retention_ms();
        let max_bytes = self.options().retention_size.unwrap_or(0);
        if retention_ms <= 0 && max_bytes == 0 {
            return;
        }
        let list: Vec<(BlockMeta, u64)> = self
            .blocks
            .read()
            .iter()
            .map(|b| (b.meta().clone(), b.size()))
            .collect();
        if list.is_empty() {
            return;
        }
        let head_max = self.head().max_time();
        let reference = list
            .iter()
            .map(|(m, _)| m.max_time)
            .chain((head_max != i64::MIN).then(|| head_max.saturating_add(1)))
            .max()
            .unwrap_or(i64::MIN);
        let by_time: HashSet<String> =
            compact::blocks_beyond_retention(&list, reference, retention_ms, 0)
                .into_iter()
                .collect();
        let by_size: HashSet<String> = if max_bytes > 0 {
            // The WAL counts towards the size limit, as in Prometheus.
            let wal = dir_size(&self.dir().join("wal"));
            let budget = max_bytes.saturating_sub(wal).max(1);
            compact::blocks_beyond_retention(&list, reference, 0, budget)
                .into_iter()
                .collect()
        } else {
            HashSet::new()
        };
        if by_time.is_empty() && by_size.is_empty() {
            return;
        }
        let removed: Vec<Block> = {
            let mut bs = self.blocks.write();
            let (gone, keep): (Vec<Block>, Vec<Block>) =
                std::mem::take(&mut *bs).into_iter().partition(|b| {
                    by_time.contains(&b.meta().ulid) || by_size.contains(&b.meta().ulid)
                });
            *bs = keep;
            gone
        };
        for b in &removed {
            let id = &b.meta().ulid;
            let reason = if by_time.contains(id) {
                self.counters.retention_time.fetch_add(1, Ordering::Relaxed);
                "time"
            } else {
                self.counters.retention_size.fetch_add(1, Ordering::Relaxed);
                "size"
            };
            tracing::info!(block = %id, mint = b.meta().min_time, maxt = b.meta().max_time, reason, "deleting block beyond retention");
            remove_block_dir(b);
            report.deleted.push(id.clone());
        }
    }
}

/// How long one maintenance pass waits for head queriers opened before a
/// head cut to finish before truncating the head anyway.
const HEAD_READER_WAIT: Duration = Duration::from_secs(30);
