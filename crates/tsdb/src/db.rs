//! The database: one directory holding the WAL, the in-memory head, the
//! persisted blocks and the lock that keeps other processes out, as
//! Prometheus's `tsdb.DB`. [`Db`] owns all of them: it opens them together
//! ([`Db::open`]), answers appends and queries over head and blocks
//! ([`Appendable`], [`Queryable`]), keeps them in shape ([`Db::maintain`]:
//! head cut, compaction, retention, see [`maintain`]), runs the admin
//! operations ([`admin`]) and closes them together ([`Db::close`]).
//!
//! Directory layout:
//! ```text
//! <dir>/lock          flock(2)-ed while open
//! <dir>/wal/00000001  WAL segments (see docs/format/wal.md)
//! <dir>/wal/checkpoint.NNNNNNNN/
//! <dir>/head_snapshot head state written on close (see head::head_snapshot)
//! <dir>/<block ulid>/ persisted blocks (see docs/format/block.md)
//! <dir>/corrupted/    blocks found corrupt on open, moved aside
//! <dir>/snapshots/    admin snapshots (each a data directory of its own)
//! ```

pub mod admin;
pub mod blocks;
pub mod maintain;
mod merge;

pub use admin::DeleteReport;
pub use blocks::{is_block_id, CORRUPTED_DIR, SNAPSHOTS_DIR};
pub use maintain::{BlocksStats, MaintainReport, MAINTAIN_INTERVAL};
pub use merge::MergeQuerier;

use crate::block::{Block, BlockError, BlockMeta};
use crate::head::head_snapshot::{self, Snapshot, SnapshotStats};
use crate::head::{Head, HeadOptions, HeadStats, SeriesRc};
use crate::wal::{self, record::Record, Wal, WalError, WalOptions, WalPosition};
use fs2::FileExt;
use koban_storage::{Appendable, Appender, Querier, Queryable, StorageError};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Errors opening or operating the database, with the path involved.
#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another process holds the lock on {path}")]
    Locked { path: PathBuf },
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("head cut [{mint}, {maxt}): {reason}")]
    HeadCut {
        mint: i64,
        maxt: i64,
        reason: String,
    },
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("database is closed")]
    Closed,
}

impl TsdbError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        TsdbError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<TsdbError> for StorageError {
    fn from(e: TsdbError) -> Self {
        match e {
            TsdbError::Closed => StorageError::Closed,
            TsdbError::Storage(e) => e,
            e => StorageError::Io(e.to_string()),
        }
    }
}

/// Database options.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Delete blocks older than this (time retention). None: keep (the
    /// binary applies Prometheus's 15d default when neither is set).
    pub retention: Option<Duration>,
    /// Delete oldest blocks while the total size exceeds this many bytes.
    pub retention_size: Option<u64>,
    /// Out-of-order window in ms (Prometheus `out_of_order_time_window`):
    /// samples up to this much older than the head's newest sample are
    /// accepted out of order; 0 refuses them. Changeable while open with
    /// [`Db::set_out_of_order_window`].
    pub out_of_order_window_ms: i64,
    /// Head chunks and the smallest blocks cover this much time (2h).
    pub block_duration_ms: i64,
    /// Maximum WAL segment size (128 MiB).
    pub wal_segment_size: u64,
    /// How often the WAL is fsynced in the background (None: only on
    /// segment cut, `Db::sync` and close).
    pub wal_fsync_interval: Option<Duration>,
    /// Write a head snapshot on [`Db::close`] and load it on open, replaying
    /// only the WAL written after it (default true; see
    /// [`head_snapshot`]). When false, an existing snapshot is deleted on
    /// open and the whole WAL is replayed.
    pub snapshot_on_shutdown: bool,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            retention: None,
            retention_size: None,
            out_of_order_window_ms: 0,
            block_duration_ms: 2 * 3600 * 1000,
            wal_segment_size: wal::DEFAULT_SEGMENT_SIZE,
            wal_fsync_interval: WalOptions::default().fsync_interval,
            snapshot_on_shutdown: true,
        }
    }
}

/// How [`Db::open`] rebuilt the head.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// The head snapshot loaded, and the WAL position replay continued from.
    pub snapshot: Option<(SnapshotStats, WalPosition)>,
    /// Why an existing snapshot was not used (the whole WAL was replayed).
    pub snapshot_rejected: Option<String>,
    /// The WAL replay (after the snapshot's position when one was loaded).
    pub replay: wal::ReplayStats,
    /// Time spent loading the snapshot and replaying the WAL.
    pub duration: Duration,
}

/// Statistics of the whole database: head and blocks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbStats {
    pub head: HeadStats,
    pub blocks: BlocksStats,
}

/// An open database: head, WAL and blocks. Implements [`Appendable`] and
/// [`Queryable`] (queries merge blocks and head).
pub struct Db {
    dir: PathBuf,
    opts: DbOptions,
    head: Head,
    wal: Arc<Wal>,
    closed: AtomicBool,
    /// Set by [`Db::crash`]: drop without close (no snapshot).
    crashed: AtomicBool,
    open_report: OpenReport,
    /// Served blocks, time-ordered. A querier clones the handles it reads.
    blocks: RwLock<Vec<Block>>,
    /// Serialises maintenance passes and admin operations.
    maintain_lock: Mutex<()>,
    counters: maintain::Counters,
    last_error: Mutex<Option<String>>,
    /// The maintenance thread ([`Db::start_maintenance`]), joined on close.
    maintenance: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Cancelled by [`Db::close`]: stops the maintenance thread.
    stop_maintenance: tokio_util::sync::CancellationToken,
    /// Holds the flock until dropped.
    _lock: File,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.dir).finish()
    }
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: takes the lock
    /// file, rebuilds the head (head snapshot and/or WAL replay, repairing
    /// a torn tail, see [`wal::replay`]), starts a new WAL segment and
    /// opens the blocks (see [`blocks`]: corrupt ones are moved aside, not
    /// fatal). Blocking; call off the async workers.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, TsdbError> {
        if opts.out_of_order_window_ms < 0 {
            return Err(TsdbError::InvalidOption(format!(
                "out_of_order_window_ms must be >= 0, got {}",
                opts.out_of_order_window_ms
            )));
        }
        if opts.block_duration_ms <= 0 {
            return Err(TsdbError::InvalidOption(format!(
                "block_duration_ms must be > 0, got {}",
                opts.block_duration_ms
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| TsdbError::io(dir, e))?;
        let lock_path = dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| TsdbError::io(&lock_path, e))?;
        if lock.try_lock_exclusive().is_err() {
            return Err(TsdbError::Locked { path: lock_path });
        }
        let wal_dir = dir.join("wal");
        let (head, open_report) = rebuild_head(dir, &wal_dir, &opts)?;
        head.set_out_of_order_window(opts.out_of_order_window_ms);
        let wal = Arc::new(Wal::open(
            &wal_dir,
            WalOptions {
                segment_size: opts.wal_segment_size,
                fsync_interval: opts.wal_fsync_interval,
            },
        )?);
        head.set_wal(Some(wal.clone()));
        let (blocks, load) = blocks::load(dir)?;
        let counters = maintain::Counters::default();
        counters.corrupted.store(load.corrupted, Ordering::Relaxed);
        Ok(Db {
            dir: dir.to_path_buf(),
            opts,
            head,
            wal,
            closed: AtomicBool::new(false),
            crashed: AtomicBool::new(false),
            open_report,
            blocks: RwLock::new(blocks),
            maintain_lock: Mutex::new(()),
            counters,
            last_error: Mutex::new(None),
            maintenance: Mutex::new(None),
            stop_maintenance: tokio_util::sync::CancellationToken::new(),
            _lock: lock,
        })
    }

    /// The database directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn options(&self) -> &DbOptions {
        &self.opts
    }

    /// The in-memory head. For tests and tools (statistics, forcing a
    /// truncation); the database's own work goes through [`Db::maintain`].
    #[doc(hidden)]
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The WAL.
    pub(crate) fn wal(&self) -> &Arc<Wal> {
        &self.wal
    }

    /// Changes the out-of-order window (ms, 0: refuse out-of-order
    /// samples) for later appends, e.g. on a configuration reload.
    /// Out-of-order samples already accepted stay queryable.
    pub fn set_out_of_order_window(&self, ms: i64) {
        self.head.set_out_of_order_window(ms);
    }

    /// The current out-of-order window in ms.
    pub fn out_of_order_window(&self) -> i64 {
        self.head.out_of_order_window()
    }

    /// Head and block statistics (top 10 metric names by series count).
    pub fn stats(&self) -> DbStats {
        DbStats {
            head: self.head.stats(10),
            blocks: self.blocks_stats(),
        }
    }

    /// Cardinality statistics of the head for the TSDB status page (top
    /// `limit` of each list), as Prometheus computes them.
    pub fn head_cardinality(&self, limit: usize) -> crate::head::CardinalityStats {
        self.head.cardinality(limit)
    }

    /// The served blocks, oldest first.
    pub(crate) fn blocks(&self) -> Vec<Block> {
        self.blocks.read().clone()
    }

    /// Metas of the served blocks, oldest first.
    pub fn block_metas(&self) -> Vec<BlockMeta> {
        self.blocks
            .read()
            .iter()
            .map(|b| b.meta().clone())
            .collect()
    }

    fn blocks_stats(&self) -> BlocksStats {
        let bs = self.blocks.read();
        let c = &self.counters;
        BlocksStats {
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

    /// fsyncs the WAL: every commit acknowledged before the call survives
    /// power loss.
    pub fn sync(&self) -> Result<(), TsdbError> {
        Ok(self.wal.sync()?)
    }

    /// After blocks hold every sample older than `mint` (and
    /// [`Head::truncate`] dropped them): starts a new WAL segment and
    /// replaces all older segments by a checkpoint with the live series and
    /// their samples at or after `mint`. For tests and tools; head cuts
    /// ([`Db::maintain`]) do this themselves.
    #[doc(hidden)]
    pub fn truncate_wal(&self, mint: i64) -> Result<(), TsdbError> {
        let seg = self.wal.cut_segment()?;
        self.truncate_wal_before(seg, mint)
    }

    /// Replaces the WAL segments before `seg` (from [`Wal::cut_segment`])
    /// by a checkpoint with the live series and their samples at or after
    /// `mint`. Every sample older than `mint` in those segments must be in
    /// blocks.
    pub(crate) fn truncate_wal_before(&self, seg: u32, mint: i64) -> Result<(), TsdbError> {
        let head = self.head.clone();
        self.wal
            .truncate_before(seg, mint, |r| head.series_by_id(r).is_some())?;
        Ok(())
    }

    /// How the head was rebuilt on open (snapshot, WAL replay, duration).
    pub fn open_report(&self) -> &OpenReport {
        &self.open_report
    }

    /// Stops the maintenance thread (waiting for the pass in progress),
    /// refuses further appends and queries, waits for commits in flight,
    /// fsyncs and stops the WAL flusher, and (with
    /// [`DbOptions::snapshot_on_shutdown`]) writes the head snapshot the
    /// next open starts from. A failed snapshot is logged, not returned:
    /// the WAL holds everything. The lock is released when the `Db` is
    /// dropped. Blocking; later calls do nothing.
    pub fn close(&self) -> Result<(), TsdbError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop_maintenance.cancel();
        if let Some(h) = self.maintenance.lock().take() {
            // The thread itself may drop the last handle (and so close).
            if h.thread().id() != std::thread::current().id() && h.join().is_err() {
                tracing::error!("TSDB maintenance thread panicked");
            }
        }
        // A pass started by hand (Db::maintain) finishes first.
        drop(self.maintain_lock.lock());
        self.head.set_closed();
        // Commits that passed the closed check finish before the WAL's last
        // fsync and before the snapshot position is taken.
        self.head.wait_for_commits();
        self.wal.close()?;
        if self.opts.snapshot_on_shutdown && !self.crashed.load(Ordering::Acquire) {
            self.write_snapshot();
        }
        Ok(())
    }

    fn write_snapshot(&self) {
        // SEAM: the snapshot format does not carry out-of-order buffers;
        // with any held, the next start replays the WAL instead (an older
        // snapshot stays valid while its WAL position exists, see
        // `head_snapshot`).
        let ooo = self.head.stats_ooo_samples();
        if ooo > 0 {
            tracing::info!(
                ooo_samples = ooo,
                "TSDB head snapshot not written: the head holds out-of-order samples; the next start replays the WAL"
            );
            return;
        }
        let started = std::time::Instant::now();
        let res = self
            .wal
            .position()
            .map_err(|e| e.to_string())
            .and_then(|pos| {
                head_snapshot::write(&self.head, &self.dir, pos)
                    .map(|st| (st, pos))
                    .map_err(|e| e.to_string())
            });
        match res {
            Ok((st, pos)) => tracing::info!(
                series = st.series,
                chunks = st.chunks,
                samples = st.samples,
                bytes = st.bytes,
                wal_segment = pos.segment,
                wal_offset = pos.offset,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "TSDB head snapshot written"
            ),
            Err(e) => {
                let tmp = self.dir.join(head_snapshot::SNAPSHOT_TMP_FILE);
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!(dir = %self.dir.display(), error = %e,
                    "TSDB head snapshot not written; the next start replays the whole WAL")
            }
        }
    }

    /// For tests: drops the database as if the process had been killed
    /// (no snapshot is written; the WAL keeps what commits wrote).
    #[doc(hidden)]
    pub fn crash(self) {
        self.crashed.store(true, Ordering::Release);
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "closing TSDB");
        }
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender> {
        self.head.appender()
    }

    /// Refs are head series ids; labels are read only for a stale one.
    fn resolves_refs(&self) -> bool {
        true
    }
}

impl Queryable for Db {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        let head = self.head.querier(mint, maxt)?;
        let mut qs: Vec<Box<dyn Querier>> = self
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta().overlaps(mint, maxt))
            .map(|b| Box::new(b.querier(mint, maxt)) as Box<dyn Querier>)
            .collect();
        if qs.is_empty() {
            return Ok(head);
        }
        qs.push(head);
        Ok(Box::new(MergeQuerier::new(qs)))
    }
}

/// Builds the head: from the snapshot plus the WAL after it when a usable
/// snapshot exists, else by replaying the whole WAL. A snapshot that cannot
/// be used is logged, deleted, and never fails the open.
fn rebuild_head(
    dir: &Path,
    wal_dir: &Path,
    opts: &DbOptions,
) -> Result<(Head, OpenReport), TsdbError> {
    let new_head = || {
        Head::new(HeadOptions {
            chunk_range_ms: opts.block_duration_ms,
        })
    };
    let started = std::time::Instant::now();
    let mut report = OpenReport::default();
    let snap_path = dir.join(head_snapshot::SNAPSHOT_FILE);
    if !opts.snapshot_on_shutdown {
        remove_snapshot(&snap_path);
    } else {
        match load_snapshot(dir, wal_dir, new_head()) {
            Ok(None) => {}
            Ok(Some((head, st, pos))) => match replay_into(&head, wal_dir, Some(pos)) {
                Ok(rs) => {
                    report.replay = rs;
                    report.snapshot = Some((st, pos));
                    report.duration = started.elapsed();
                    tracing::info!(
                        dir = %dir.display(),
                        series = head.num_series(),
                        snapshot_samples = report.snapshot.as_ref().map_or(0, |s| s.0.samples),
                        wal_samples = report.replay.samples,
                        wal_segments = report.replay.segments,
                        elapsed_ms = report.duration.as_millis() as u64,
                        "TSDB head rebuilt from snapshot and WAL"
                    );
                    return Ok((head, report));
                }
                Err(e) => {
                    let msg = format!("replaying the WAL after the snapshot failed: {e}");
                    tracing::warn!(dir = %dir.display(), error = %msg,
                        "TSDB head snapshot not used; replaying the whole WAL");
                    report.snapshot_rejected = Some(msg);
                    remove_snapshot(&snap_path);
                }
            },
            Err(msg) => {
                tracing::warn!(dir = %dir.display(), error = %msg,
                    "TSDB head snapshot not used; replaying the whole WAL");
                report.snapshot_rejected = Some(msg);
                remove_snapshot(&snap_path);
            }
        }
    }
    let head = new_head();
    report.replay = replay_into(&head, wal_dir, None)?;
    report.duration = started.elapsed();
    tracing::info!(
        dir = %dir.display(),
        series = head.num_series(),
        samples = report.replay.samples,
        wal_segments = report.replay.segments,
        elapsed_ms = report.duration.as_millis() as u64,
        "TSDB head rebuilt from WAL"
    );
    return Ok((head, report));

    /// Reads, checks and loads the snapshot into a new head; Err(why) if
    /// it exists but cannot be used.
    #[allow(clippy::type_complexity)]
    fn load_snapshot(
        dir: &Path,
        wal_dir: &Path,
        head: Head,
    ) -> Result<Option<(Head, SnapshotStats, WalPosition)>, String> {
        let started = std::time::Instant::now();
        let Some(snap) = Snapshot::read(dir).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        snap.check_wal(wal_dir)?;
        let st = snap.load_into(&head).map_err(|e| e.to_string())?;
        let pos = snap.meta().wal;
        tracing::info!(
            series = st.series,
            chunks = st.chunks,
            samples = st.samples,
            bytes = st.bytes,
            wal_segment = pos.segment,
            wal_offset = pos.offset,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "TSDB head snapshot loaded"
        );
        Ok(Some((head, st, pos)))
    }
}

fn remove_snapshot(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "removing TSDB head snapshot"),
    }
}

/// Replays the WAL in `wal_dir` into `head`, from `from` (after a loaded
/// snapshot) or from the start.
fn replay_into(
    head: &Head,
    wal_dir: &Path,
    from: Option<WalPosition>,
) -> Result<wal::ReplayStats, TsdbError> {
    let mut refs: HashMap<u64, SeriesRc, BuildRefHasher> = HashMap::default();
    let mut unknown = 0u64;
    let st = wal::replay_from(wal_dir, from, |rec| match rec {
        Record::Series(v) => {
            for (r, l) in v {
                match head.replay_series(r, &l) {
                    Ok(s) => {
                        refs.insert(r, s);
                    }
                    Err(e) => {
                        tracing::warn!(series = %l, error = %e, "WAL replay: skipping invalid series")
                    }
                }
            }
        }
        Record::Samples(v) => {
            for (r, t, val) in v {
                match refs.get(&r) {
                    Some(s) => head.replay_sample(s, t, val),
                    // After a snapshot, records name the snapshot's series by
                    // their head ids (module docs of head_snapshot, rule 3).
                    None => match from.and_then(|_| head.series_by_id(r)) {
                        Some(s) => {
                            head.replay_sample(&s, t, val);
                            refs.insert(r, s);
                        }
                        None => unknown += 1,
                    },
                }
            }
        }
        Record::Tombstones(v) => {
            for (r, mint, maxt) in v {
                let s = match refs.get(&r) {
                    Some(s) => Some(s.clone()),
                    None => from.and_then(|_| head.series_by_id(r)),
                };
                // A tombstone for a series the log no longer names removed
                // nothing that replay could bring back.
                if let Some(s) = s {
                    head.replay_delete(&s, mint, maxt);
                }
            }
        }
    })?;
    head.finish_replay();
    if unknown > 0 {
        tracing::warn!(
            samples = unknown,
            "WAL replay: samples for unknown series refs skipped"
        );
    }
    Ok(st)
}

/// Hashes WAL series refs (u64 ids) for the replay map: a cheap full
/// mix (the default SipHash costs more than the lookup).
#[derive(Default, Clone, Copy)]
struct BuildRefHasher;

#[derive(Default)]
struct RefHasher(u64);

impl std::hash::Hasher for RefHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ *b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        // splitmix64's finalizer: ids are (generation << 32 | slot) with
        // generation and slot often moving together, so every bit must mix.
        let mut z = v;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
    }
}

impl std::hash::BuildHasher for BuildRefHasher {
    type Hasher = RefHasher;
    fn build_hasher(&self) -> RefHasher {
        RefHasher(0)
    }
}
