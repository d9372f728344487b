//! The set of persisted blocks served next to the head, and the periodic
//! maintenance that keeps it in shape, as Prometheus does:
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
//! Blocks live in an `Arc<RwLock<Vec<Block>>>` shared with the block source
//! registered on the [`Db`]; a querier holds its own handles on the blocks
//! it reads, so compaction or retention replacing them meanwhile is
//! harmless (the files are memory-mapped: deleting the directory keeps the
//! mappings valid until the last querier drops them).
//!
//! On open, a block that fails to open (bad meta.json, index or chunk
//! checksum) is moved to `<dir>/corrupted/<name>` with an error log, and the
//! others are served.

mod admin;

use crate::block::{Block, BlockError, BlockMeta, BlockWriter};
use crate::compact::{self, range_start};
use crate::db::{Db, TsdbError};
use crate::head::HeadQuerier;
use koban_storage::{Querier, Series, StorageError};
use parking_lot::{Mutex, RwLock};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Name of the directory corrupt blocks are moved to.
pub const CORRUPTED_DIR: &str = "corrupted";

/// How often [`BlockStore::spawn`]'s thread runs [`BlockStore::maintain`].
pub const MAINTAIN_INTERVAL: Duration = Duration::from_secs(60);

/// Errors of block store maintenance, naming the file or block involved.
#[derive(Debug, thiserror::Error)]
pub enum BlockStoreError {
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error(transparent)]
    Tsdb(#[from] TsdbError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("head cut [{mint}, {maxt}): {reason}")]
    HeadCut {
        mint: i64,
        maxt: i64,
        reason: String,
    },
}

impl BlockStoreError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        BlockStoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Counters and gauges for metrics (`prometheus_tsdb_*` equivalents).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockStoreStats {
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

/// What one [`BlockStore::maintain`] pass did.
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
struct Counters {
    head_cuts: AtomicU64,
    head_cut_failures: AtomicU64,
    compactions: AtomicU64,
    compaction_failures: AtomicU64,
    retention_time: AtomicU64,
    retention_size: AtomicU64,
    corrupted: AtomicU64,
    runs: AtomicU64,
    failures: AtomicU64,
}

/// Shared, time-ordered list of served blocks.
type BlockList = Arc<RwLock<Vec<Block>>>;

/// The persisted blocks of a [`Db`] and their maintenance.
pub struct BlockStore {
    db: Arc<Db>,
    blocks: BlockList,
    /// Serialises maintenance passes.
    maintain_lock: Mutex<()>,
    counters: Counters,
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStore")
            .field("dir", &self.db.dir())
            .field("blocks", &self.blocks.read().len())
            .finish()
    }
}

impl BlockStore {
    /// Loads the blocks in `db`'s directory and registers them as the
    /// Db's block source, so `db.querier()` merges them with the head.
    ///
    /// Block directories are those named like a block id (26 base32
    /// characters) or holding a `meta.json`; `wal`, `lock`, `chunks_head`,
    /// `corrupted`, hidden entries and `*.tmp` are skipped (leftover
    /// `<block id>.tmp` directories of interrupted writes are removed). A
    /// block that fails to open is moved to `<dir>/corrupted/`. Blocks that
    /// a newer block lists as compaction parents (left over by a crash
    /// between writing the merged block and deleting its inputs) are deleted.
    pub fn open(db: Arc<Db>) -> Result<BlockStore, BlockStoreError> {
        let dir = db.dir().to_path_buf();
        let counters = Counters::default();
        let mut blocks = Vec::new();
        let rd = std::fs::read_dir(&dir).map_err(|e| BlockStoreError::io(&dir, e))?;
        let mut entries: Vec<PathBuf> = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| BlockStoreError::io(&dir, e))?;
            entries.push(ent.path());
        }
        entries.sort();
        let mut candidates: Vec<(String, PathBuf)> = Vec::new();
        for path in entries {
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if !path.is_dir() || name.starts_with('.') || SKIP.contains(&name.as_str()) {
                continue;
            }
            if let Some(stem) = name.strip_suffix(".tmp") {
                if is_block_id(stem) {
                    tracing::info!(dir = %path.display(), "removing leftover temporary block directory");
                    if let Err(e) = std::fs::remove_dir_all(&path) {
                        tracing::warn!(dir = %path.display(), error = %e, "removing temporary block directory");
                    }
                }
                continue;
            }
            if !is_block_id(&name) && !path.join("meta.json").is_file() {
                continue;
            }
            candidates.push((name, path));
        }
        let started = std::time::Instant::now();
        for ((name, path), r) in candidates.iter().zip(open_all(&candidates)) {
            match r {
                Ok(b) => blocks.push(b),
                Err(e) if !is_corruption(&e) => {
                    // Not the block's fault (permissions, fd limits...): leave it in place.
                    tracing::error!(block = %path.display(), error = %e, "TSDB block cannot be opened: not served");
                }
                Err(e) => {
                    counters.corrupted.fetch_add(1, Ordering::Relaxed);
                    let dst = move_aside(&dir, name, path);
                    tracing::error!(
                        block = %path.display(),
                        error = %e,
                        moved_to = %dst.as_ref().map_or_else(|e| format!("(move failed: {e})"), |p| p.display().to_string()),
                        "CORRUPT TSDB BLOCK: not served, moved aside"
                    );
                }
            }
        }
        // Parents of another block were merged into it already.
        let parents: HashSet<String> = blocks
            .iter()
            .flat_map(|b| b.meta().compaction.parents.iter().cloned())
            .collect();
        blocks.retain(|b| {
            if parents.contains(&b.meta().ulid) {
                tracing::info!(block = %b.dir().display(), "deleting block already merged by compaction");
                remove_block_dir(b);
                false
            } else {
                true
            }
        });
        sort_blocks(&mut blocks);
        tracing::info!(
            dir = %dir.display(),
            blocks = blocks.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "TSDB blocks loaded"
        );
        let blocks: BlockList = Arc::new(RwLock::new(blocks));
        let src = blocks.clone();
        db.set_block_source(Box::new(move |mint, maxt| {
            let bs = src.read();
            Ok(bs
                .iter()
                .filter(|b| b.meta().overlaps(mint, maxt))
                .map(|b| Box::new(b.querier(mint, maxt)) as Box<dyn Querier>)
                .collect::<Vec<_>>())
        }));
        Ok(BlockStore {
            db,
            blocks,
            maintain_lock: Mutex::new(()),
            counters,
            last_error: Mutex::new(None),
        })
    }

    /// The database.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// The served blocks, oldest first.
    pub fn blocks(&self) -> Vec<Block> {
        self.blocks.read().clone()
    }

    /// Metas of the served blocks, oldest first.
    pub fn metas(&self) -> Vec<BlockMeta> {
        self.blocks
            .read()
            .iter()
            .map(|b| b.meta().clone())
            .collect()
    }

    /// Current statistics.
    pub fn stats(&self) -> BlockStoreStats {
        let bs = self.blocks.read();
        let c = &self.counters;
        BlockStoreStats {
            blocks: bs.len(),
            bytes: bs.iter().map(Block::size).sum(),
            min_time: bs.iter().map(|b| b.meta().min_time).min(),
            max_time: bs.iter().map(|b| b.meta().max_time).max(),
            head_cuts: c.head_cuts.load(Ordering::Relaxed),
            head_cut_failures: c.head_cut_failures.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            compaction_failures: c.compaction_failures.load(Ordering::Relaxed),
            retention_deletions_time: c.retention_time.load(Ordering::Relaxed),
            retention_deletions_size: c.retention_size.load(Ordering::Relaxed),
            corrupted_blocks: c.corrupted.load(Ordering::Relaxed),
            maintain_runs: c.runs.load(Ordering::Relaxed),
            maintain_failures: c.failures.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
        }
    }

    /// Runs one maintenance pass: head cut, compaction, retention (see the
    /// module docs). Blocking; passes are serialised. Every phase runs even
    /// if an earlier one failed; the first error is returned (and kept in
    /// [`BlockStoreStats::last_error`]).
    pub fn maintain(&self) -> Result<MaintainReport, BlockStoreError> {
        let _g = self.maintain_lock.lock();
        self.counters.runs.fetch_add(1, Ordering::Relaxed);
        let mut report = MaintainReport::default();
        let mut first_err: Option<BlockStoreError> = None;
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

    /// Starts a background thread (not a tokio worker: the work blocks)
    /// running [`BlockStore::maintain`] right away and then every
    /// [`MAINTAIN_INTERVAL`] until `cancel` is cancelled. Errors are logged
    /// and counted in [`BlockStore::stats`].
    pub fn spawn(
        self: Arc<Self>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        self.spawn_with_interval(cancel, MAINTAIN_INTERVAL)
    }

    /// [`BlockStore::spawn`] with a chosen interval.
    pub fn spawn_with_interval(
        self: Arc<Self>,
        cancel: tokio_util::sync::CancellationToken,
        interval: Duration,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("tsdb-maintain".into())
            .spawn(move || {
                const POLL: Duration = Duration::from_millis(200);
                while !cancel.is_cancelled() {
                    // Errors are logged and recorded in stats by maintain.
                    let _ = self.maintain();
                    let until = std::time::Instant::now() + interval;
                    while !cancel.is_cancelled() {
                        let now = std::time::Instant::now();
                        if now >= until {
                            break;
                        }
                        std::thread::sleep(POLL.min(until - now));
                    }
                }
                tracing::debug!("TSDB maintenance thread stopped");
            })
    }

    /// Cuts blocks from the head while it spans more than 1.5x the block
    /// duration.
    fn cut_head(&self, report: &mut MaintainReport) -> Result<(), BlockStoreError> {
        let range = self.db.options().block_duration_ms;
        let head = self.db.head();
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
            let seg = self.db.wal().cut_segment().map_err(TsdbError::from)?;
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
            if !wait_for_head_readers(head, wait_until) {
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
            self.db.truncate_wal_before(seg, end)?;
            if head.min_time() < end && head.min_time() != i64::MAX {
                return Err(BlockStoreError::HeadCut {
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
    fn write_head_range(&self, start: i64, end: i64) -> Result<Option<Block>, BlockStoreError> {
        let q = HeadQuerier::new(self.db.head().clone(), start, end - 1);
        let series = q.select_series(false, &[]);
        // The snapshot is self-contained; an open querier would make the
        // head keep commit history while the block is written.
        drop(q);
        let mut w = BlockWriter::new(self.db.dir())?;
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
    fn write_sealed_ooo(&self, before: i64, range: i64) -> Result<Vec<Block>, BlockStoreError> {
        let mut writers: std::collections::BTreeMap<i64, BlockWriter> = Default::default();
        let mut err: Option<BlockError> = None;
        let dir = self.db.dir();
        self.db
            .head()
            .for_each_sealed_ooo(before, |labels, samples| {
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
    fn compact_blocks(&self, report: &mut MaintainReport) -> Result<(), BlockStoreError> {
        let retention_ms = self.retention_ms();
        let ranges = compact::compaction_ranges(retention_ms);
        // Bounded: each round removes at least one block.
        for _ in 0..1000 {
            let metas = self.metas();
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
            let out = compact::compact(&inputs, self.db.dir())?;
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
        self.db
            .options()
            .retention
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Deletes blocks beyond time and size retention.
    fn apply_retention(&self, report: &mut MaintainReport) {
        let retention_ms = self.retention_ms();
        let max_bytes = self.db.options().retention_size.unwrap_or(0);
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
        let head_max = self.db.head().max_time();
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
            let wal = dir_size(&self.db.dir().join("wal"));
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

/// Waits until every head querier opened before the call has been dropped
/// (or `until` passes; returns false then). A querier opened before a new
/// block was added does not read that block, so truncating the head under it
/// would hide the block's samples from its later selects (Prometheus waits
/// for such readers too).
///
/// SEAM: reads the head's reader registry (crate-internal); a
/// `Head::wait_for_readers` method would be the cleaner home.
fn wait_for_head_readers(head: &crate::head::Head, until: std::time::Instant) -> bool {
    // Queriers register the commit sequence they saw; those opened after
    // now see at least this one (equal when no commit happened since: those
    // are waited for as well, harmlessly).
    let seq = head.inner.commit_seq.load(Ordering::Acquire);
    loop {
        let oldest = head.inner.readers.lock().keys().next().copied();
        if oldest.is_none_or(|w| w > seq) {
            return true;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Top-level names that are never blocks.
const SKIP: &[&str] = &[
    "wal",
    "wbl",
    "lock",
    "chunks_head",
    "snapshots",
    CORRUPTED_DIR,
];

/// True for a 26-character Crockford base32 block id.
pub fn is_block_id(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !b"ILOU".contains(&c)))
}

fn sort_blocks(bs: &mut [Block]) {
    bs.sort_by(|a, b| {
        let (ma, mb) = (a.meta(), b.meta());
        (ma.min_time, ma.max_time, &ma.ulid).cmp(&(mb.min_time, mb.max_time, &mb.ulid))
    });
}

/// Removes a block's directory. Open queriers keep their memory maps.
fn remove_block_dir(b: &Block) {
    if let Err(e) = std::fs::remove_dir_all(b.dir()) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(block = %b.dir().display(), error = %e, "deleting block directory");
        }
    }
}

/// Opens the blocks (verifying their checksums) on a few threads; results
/// are in input order.
fn open_all(cands: &[(String, PathBuf)]) -> Vec<Result<Block, BlockError>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    if cands.len() < 2 || threads == 1 {
        return cands.iter().map(|(_, p)| Block::open(p)).collect();
    }
    let per = cands.len().div_ceil(threads);
    std::thread::scope(|s| {
        let hs: Vec<_> = cands
            .chunks(per)
            .map(|c| s.spawn(move || c.iter().map(|(_, p)| Block::open(p)).collect::<Vec<_>>()))
            .collect();
        hs.into_iter()
            .zip(cands.chunks(per))
            .flat_map(|(h, c)| {
                h.join().unwrap_or_else(|_| {
                    c.iter()
                        .map(|(_, p)| {
                            Err(BlockError::io(
                                p,
                                std::io::Error::other("BUG: panic while opening the block"),
                            ))
                        })
                        .collect()
                })
            })
            .collect()
    })
}

/// True if `e` means the block's files are damaged or missing (rather
/// than, say, permissions or file descriptor limits).
fn is_corruption(e: &BlockError) -> bool {
    use std::io::ErrorKind::{InvalidData, NotFound, UnexpectedEof};
    match e {
        BlockError::Io { source, .. } => {
            matches!(source.kind(), NotFound | UnexpectedEof | InvalidData)
        }
        BlockError::Corrupt { .. } | BlockError::Parse { .. } | BlockError::Invalid(_) => true,
    }
}

/// Moves the block directory `path` (named `name`) to `<dir>/corrupted/`,
/// adding a numeric suffix if that name is taken.
fn move_aside(dir: &Path, name: &str, path: &Path) -> Result<PathBuf, std::io::Error> {
    let cdir = dir.join(CORRUPTED_DIR);
    std::fs::create_dir_all(&cdir)?;
    let mut dst = cdir.join(name);
    let mut n = 1;
    while dst.exists() {
        dst = cdir.join(format!("{name}.{n}"));
        n += 1;
    }
    std::fs::rename(path, &dst)?;
    Ok(dst)
}

/// Total size of the files under `dir` (0 if missing; unreadable entries skipped).
fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl From<BlockStoreError> for StorageError {
    fn from(e: BlockStoreError) -> Self {
        StorageError::Io(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids() {
        assert!(is_block_id(&crate::block::new_block_id()));
        assert!(!is_block_id("wal"));
        assert!(!is_block_id("01ARZ3NDEKTSV4RRFFQ69G5FAVX"));
        assert!(!is_block_id("01ARZ3NDEKTSV4RRFFQ69G5FAI"));
        assert!(is_block_id("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
    }

    #[test]
    fn move_aside_adds_suffix() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..2 {
            let p = d.path().join("X");
            std::fs::create_dir(&p).unwrap();
            let dst = move_aside(d.path(), "X", &p).unwrap();
            let want = if i == 0 { "X" } else { "X.1" };
            assert_eq!(dst, d.path().join(CORRUPTED_DIR).join(want));
            assert!(!p.exists());
        }
    }
}
