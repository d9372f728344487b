//! The in-memory head block: the most recent samples of every active
//! series, appended by scrapes and rules and read by queries.
//!
//! Layout, chosen for a small per-series footprint:
//! * label strings are interned once in a [`symbols::SymbolTable`]; a series
//!   keeps its labels as a boxed slice of symbol ids (name, value, ...);
//! * series live in a sharded slab indexed by their id (`SeriesRef`), so an
//!   append with a known ref is a vector index, not a hash lookup;
//! * a sharded hash index maps `Labels::hash()` to series ids for appends
//!   without a ref;
//! * an inverted index ([`postings::MemPostings`]) maps label name/value to
//!   sorted series ids for queries;
//! * samples are kept in XOR chunks of at most [`chunkenc::TARGET_SAMPLES`]
//!   samples; closed chunks are exact-size shared byte slices.
//!
//! Isolation: commits are applied under the write side of a global commit
//! lock and bump a commit sequence number; a querier registers the sequence
//! it saw when it was created (its watermark) and hides, per series, the
//! samples of commits newer than that. Each series keeps a small log of
//! (commit sequence, last timestamp before that commit) for the commits
//! newer than the oldest open querier's watermark (usually one entry).
//! Selects snapshot the series under the read side of the commit lock, so
//! a select never sees part of a commit, and all selects of one querier see
//! the same commits.
//!
//! Append bounds (as Prometheus): with the head's newest in-order sample at
//! `max`, a sample at `t` goes into the in-order chunks if
//! `t >= max(truncation point, max - chunk_range/2)` and it is newer than
//! the series' last sample (an equal timestamp with the same value is
//! ignored, with another value refused as a duplicate). Otherwise, with an
//! out-of-order window `w > 0` (see [`Head::set_out_of_order_window`]), it
//! goes into the series' out-of-order buffer ([`ooo`]) if `t >= max - w`
//! (refused as a duplicate if the series already has a sample at `t` with
//! another value), else it is refused as too old; with no window it is
//! refused as out of bounds (below the first bound) or out of order. The
//! `chunk_range/2` bound keeps appends out of the window a head cut is
//! persisting, so a sample committed during a cut is never lost.

mod head_append;
mod head_delete;
mod head_read;
pub mod head_snapshot;
mod head_stats;
pub(crate) mod ooo;
mod postings;
mod symbols;

pub use head_append::HeadAppender;
pub use head_read::{HeadChunkIterator, HeadQuerier, HeadSeries};
pub use head_stats::CardinalityStats;

use crate::chunkenc::{self, XorChunk};
use koban_model::Labels;
use koban_storage::{Appendable, Appender, Querier, Queryable, StorageError};
use ooo::{OooBuf, OooSample};
use parking_lot::{Mutex, RwLock};
use postings::MemPostings;
use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use symbols::SymbolTable;

/// Number of shards of the series slab and hash index (a power of two).
const SHARDS: usize = 16;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();

/// Options of the head.
#[derive(Debug, Clone)]
pub struct HeadOptions {
    /// Chunks never span a multiple of this many milliseconds, so they align
    /// with block boundaries (Prometheus: min block duration, 2h).
    pub chunk_range_ms: i64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_range_ms: 2 * 3600 * 1000,
        }
    }
}

/// Counters and gauges describing the head, for metrics and status pages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeadStats {
    /// Series currently in the head.
    pub num_series: u64,
    /// Samples committed since start (replayed samples included).
    pub samples_appended: u64,
    /// Series created since start.
    pub series_created: u64,
    /// Samples refused as out of order (at append or commit time; with no
    /// out-of-order window). Prometheus: `prometheus_tsdb_out_of_order_samples_total`.
    pub out_of_order: u64,
    /// Samples refused as older than the append bound with no out-of-order
    /// window (`prometheus_tsdb_out_of_bound_samples_total`).
    pub out_of_bounds: u64,
    /// Samples refused as older than the out-of-order window
    /// (`prometheus_tsdb_too_old_samples_total`).
    pub too_old: u64,
    /// Samples refused because the series has another value at that
    /// timestamp (Prometheus has no TSDB counter for these; its scrape
    /// layer counts them per target).
    pub duplicates: u64,
    /// Out-of-order samples accepted into the head
    /// (`prometheus_tsdb_head_out_of_order_samples_appended_total`).
    pub ooo_appended: u64,
    /// Out-of-order samples currently held in the head.
    pub ooo_samples: u64,
    /// Smallest and largest committed timestamp; `i64::MAX`/`i64::MIN` when empty.
    pub min_time: i64,
    pub max_time: i64,
    /// Series count per metric name, largest first (top 10 as the
    /// Prometheus status page, unless more are asked for).
    pub series_per_metric: Vec<(String, u64)>,
}

/// A closed chunk: exact-size, shared with queriers without copying.
#[derive(Debug, Clone)]
pub(crate) struct ClosedChunk {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) data: Arc<[u8]>,
}

/// The closed chunks of a series, oldest first. A thin pointer (most
/// series have few or none for a long while): 8 bytes instead of 24 in
/// every series.
#[derive(Debug, Default)]
#[allow(clippy::box_collection)]
pub(crate) struct ClosedChunks(Option<Box<Vec<ClosedChunk>>>);

impl ClosedChunks {
    pub(crate) fn as_slice(&self) -> &[ClosedChunk] {
        self.0.as_deref().map_or(&[], |v| v.as_slice())
    }
    pub(crate) fn push(&mut self, c: ClosedChunk) {
        self.0.get_or_insert_with(Default::default).push(c);
    }
    pub(crate) fn retain(&mut self, f: impl FnMut(&ClosedChunk) -> bool) {
        if let Some(v) = &mut self.0 {
            v.retain(f);
            if v.is_empty() {
                self.0 = None;
            }
        }
    }
}

impl std::ops::Deref for ClosedChunks {
    type Target = [ClosedChunk];
    fn deref(&self) -> &[ClosedChunk] {
        self.as_slice()
    }
}

/// Per-series mutable state.
///
/// Field order is chosen (see [`MemSeries`]): the head chunk's appender
/// state, then what every commit reads or writes, then the rest. 96
/// bytes: every pointer here is thin (one word), what few series need
/// (out-of-order samples, commit log overflow) shares one box.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct SeriesData {
    /// The open chunk; [`XorChunk::unallocated`] (no samples) when there is
    /// none. Not an `Option`: its tag would live in the chunk's buffer
    /// field, outside the record's first cache line.
    pub(crate) head: XorChunk,
    /// True once a series record for this series is in the WAL.
    pub(crate) logged: bool,
    /// Set when truncation removed the series from the head; a pending
    /// commit then re-creates it from its labels.
    pub(crate) removed: bool,
    /// Commits that touched the series and some open querier may not see;
    /// also owns the series' out-of-order samples (see [`Rare`]).
    pub(crate) commits: CommitLog,
    pub(crate) closed: ClosedChunks,
}

/// Where an acceptable sample goes (see [`SeriesData::appendable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Newer than the series' last sample: the in-order chunks.
    InOrder,
    /// Within the out-of-order window: the out-of-order buffer.
    OutOfOrder,
    /// Identical to a sample the series has: ignored silently.
    Ignore,
}

/// Append bounds derived from the head at one moment (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// In-order samples must be at least this recent.
    pub(crate) min_valid: i64,
    /// Out-of-order samples must be at least this recent; `i64::MAX` when
    /// there is no out-of-order window.
    pub(crate) ooo_min: i64,
}

/// Per-series (commit sequence, last timestamp before that commit), oldest
/// first; one entry inline (sequence 0 marks an empty one; commit
/// sequences start at 1), more (queriers open across commits) in the
/// series' [`Rare`] box, which the log owns.
#[derive(Debug, Default)]
pub(crate) struct CommitLog {
    inline: [(u64, i64); INLINE_COMMITS],
    /// What few series ever need: commit log overflow and out-of-order
    /// samples. One thin pointer for both keeps the series record 8 bytes
    /// smaller than a pointer each would.
    rare: Option<Box<Rare>>,
}

/// The rarely used parts of a series (see [`CommitLog::rare`]): dropped
/// as soon as both are empty.
#[derive(Debug, Default)]
pub(crate) struct Rare {
    /// Commit log entries after the inline ones.
    more: Vec<(u64, i64)>,
    /// Out-of-order samples; `None` for series that have none.
    ooo: Option<OooBuf>,
}

/// Commit log entries kept inline: with no querier open across a commit
/// (the usual case) a series has one entry.
const INLINE_COMMITS: usize = 1;

impl CommitLog {
    fn len_inline(&self) -> usize {
        self.inline.iter().take_while(|e| e.0 != 0).count()
    }

    /// The overflow entries (empty if none).
    fn more(&self) -> &[(u64, i64)] {
        self.rare.as_deref().map_or(&[], |r| r.more.as_slice())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, i64)> + '_ {
        self.inline
            .iter()
            .copied()
            .take_while(|e| e.0 != 0)
            .chain(self.more().iter().copied())
    }

    fn push(&mut self, e: (u64, i64)) {
        let n = self.len_inline();
        if n < self.inline.len() && self.more().is_empty() {
            self.inline[n] = e;
        } else {
            self.rare.get_or_insert_with(Default::default).more.push(e);
        }
    }

    /// Sequence of the newest entry (0 if none).
    #[inline]
    pub(crate) fn last_seq(&self) -> u64 {
        match self.more().last() {
            Some(e) => e.0,
            None => self
                .inline
                .iter()
                .rev()
                .find(|e| e.0 != 0)
                .map_or(0, |e| e.0),
        }
    }

    /// Drops entries every open querier sees (sequence <= `low`).
    pub(crate) fn trim(&mut self, low: u64) {
        if self.more().is_empty() {
            let mut k = [(0, 0); INLINE_COMMITS];
            let mut n = 0;
            for e in self.inline.iter().take_while(|e| e.0 != 0) {
                if e.0 > low {
                    k[n] = *e;
                    n += 1;
                }
            }
            self.inline = k;
            return;
        }
        let all: Vec<(u64, i64)> = self.iter().filter(|e| e.0 > low).collect();
        self.inline = [(0, 0); INLINE_COMMITS];
        if let Some(r) = &mut self.rare {
            r.more = Vec::new();
        }
        self.drop_rare_if_empty();
        for e in all {
            self.push(e);
        }
    }

    /// Frees the rare box once nothing is left in it.
    fn drop_rare_if_empty(&mut self) {
        if self
            .rare
            .as_ref()
            .is_some_and(|r| r.more.is_empty() && r.ooo.is_none())
        {
            self.rare = None;
        }
    }

    /// Records a commit (call once per commit, before its first sample).
    #[cfg(test)]
    pub(crate) fn record(&mut self, seq: u64, low: u64, last_t: i64) {
        if self.last_seq() != seq {
            self.record_new(seq, low, last_t);
        }
    }

    /// [`CommitLog::record`] for a caller that checked `last_seq() != seq`.
    #[inline]
    pub(crate) fn record_new(&mut self, seq: u64, low: u64, last_t: i64) {
        self.trim(low);
        self.push((seq, last_t));
    }

    /// The largest timestamp visible to a querier with watermark `w`.
    pub(crate) fn visible_until(&self, w: u64) -> i64 {
        self.iter().find(|e| e.0 > w).map_or(i64::MAX, |e| e.1)
    }
}

/// Shared handle of a series record: an `Arc` without a weak count (see
/// [`MemSeries`] for why its size matters).
pub(crate) type SeriesRc = triomphe::Arc<MemSeries>;

/// Asks the CPU to load both cache lines of a series' 128-byte `Arc`
/// allocation (count, lock, head chunk state; commit log): a hint only.
#[inline(always)]
pub(crate) fn prefetch_series(s: &SeriesRc) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // The record follows the reference count.
        let p = (SeriesRc::as_ptr(s) as *const i8).wrapping_sub(8);
        // SAFETY: prefetching is a hint that never faults, whatever the
        // address; nothing is read or written.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}

/// One series in the head (opaque outside the crate).
///
/// Laid out for the scrape path, where a series is usually cold in the CPU
/// caches (every other target was scraped since its last sample): with the
/// reference count, the id, the lock and the head chunk's appender state
/// in the first 64 bytes of the allocation and the commit's fields in the
/// next 64, an append-time check costs about one cache miss and a commit
/// one more (`head_append` bench; commit prefetches ahead). The allocation
/// (count + record) is exactly 128 bytes, a mimalloc size class, so two
/// cache lines (pinned by `head::tests`):
///
/// | bytes   | fields                                                       |
/// |---------|--------------------------------------------------------------|
/// | 0..8    | `Arc` count                                                  |
/// | 8..16   | `id`                                                         |
/// | 16..24  | the lock                                                     |
/// | 24..64  | head chunk: t, v, acc, t_delta, count, window, buffer length |
/// | 64..80  | head chunk: buffer pointer, first_t                          |
/// | 80..88  | `logged`, `removed`                                          |
/// | 88..112 | commit log (and the rare box: overflow, out-of-order samples) |
/// | 112..128| closed chunks, `lset`                                        |
#[derive(Debug)]
#[repr(C)]
pub(crate) struct MemSeries {
    pub(crate) id: u64,
    pub(crate) data: Mutex<SeriesData>,
    /// Symbol ids name0, value0, name1, value1, ... as varints
    /// (see [`symbols::encode_lset`]), behind one pointer.
    pub(crate) lset: symbols::ThinBytes,
}

impl SeriesData {
    fn new() -> Self {
        SeriesData {
            closed: ClosedChunks::default(),
            head: XorChunk::unallocated(),
            logged: false,
            commits: CommitLog::default(),
            removed: false,
        }
    }

    /// The out-of-order samples; `None` for series that have none.
    #[inline]
    pub(crate) fn ooo(&self) -> Option<&OooBuf> {
        self.commits.rare.as_deref().and_then(|r| r.ooo.as_ref())
    }

    /// [`SeriesData::ooo`], mutably.
    pub(crate) fn ooo_mut(&mut self) -> Option<&mut OooBuf> {
        self.commits
            .rare
            .as_deref_mut()
            .and_then(|r| r.ooo.as_mut())
    }

    /// Drops the out-of-order samples (and the rare box if nothing else
    /// is in it).
    pub(crate) fn clear_ooo(&mut self) {
        if let Some(r) = &mut self.commits.rare {
            r.ooo = None;
        }
        self.commits.drop_rare_if_empty();
    }

    /// The last committed sample: (t, value bits if known).
    #[inline]
    pub(crate) fn last(&self) -> Option<(i64, Option<u64>)> {
        let h = &self.head;
        if h.num_samples() > 0 {
            Some((h.max_time(), h.last_value().map(f64::to_bits)))
        } else {
            self.closed.last().map(|c| (c.max_t, None))
        }
    }

    /// Checks whether (t, v) may be appended to the committed samples
    /// within bounds `b`, and where it goes (see the module docs).
    #[inline]
    pub(crate) fn appendable(&self, t: i64, v: f64, b: &Bounds) -> Result<Placement, StorageError> {
        self.appendable_after(self.last(), t, v, b)
    }

    /// [`SeriesData::appendable`] with `last` = [`SeriesData::last`].
    #[inline]
    pub(crate) fn appendable_after(
        &self,
        last: Option<(i64, Option<u64>)>,
        t: i64,
        v: f64,
        b: &Bounds,
    ) -> Result<Placement, StorageError> {
        if t >= b.min_valid {
            let Some((last_t, last_v)) = last else {
                return Ok(Placement::InOrder);
            };
            if t > last_t {
                return Ok(Placement::InOrder);
            }
            if t == last_t {
                return match last_v {
                    Some(bits) if bits == v.to_bits() => Ok(Placement::Ignore),
                    Some(_) => Err(StorageError::DuplicateSample),
                    None => self.ooo_placement(t, v),
                };
            }
        }
        self.appendable_slow(t, v, b)
    }

    #[cold]
    fn appendable_slow(&self, t: i64, v: f64, b: &Bounds) -> Result<Placement, StorageError> {
        if t >= b.ooo_min {
            return self.ooo_placement(t, v);
        }
        if b.ooo_min != i64::MAX {
            return Err(StorageError::TooOld);
        }
        if t < b.min_valid {
            return Err(StorageError::OutOfBounds);
        }
        Err(StorageError::OutOfOrder)
    }

    /// Placement of a sample that is not newer than the series' last one:
    /// out of order unless the series already has a sample at `t`.
    fn ooo_placement(&self, t: i64, v: f64) -> Result<Placement, StorageError> {
        match self.value_at(t) {
            Some(bits) if bits == v.to_bits() => Ok(Placement::Ignore),
            Some(_) => Err(StorageError::DuplicateSample),
            None => Ok(Placement::OutOfOrder),
        }
    }

    /// Value bits of the sample at `t`, in-order or out-of-order (decodes
    /// the in-order chunk covering `t`: used off the in-order fast path).
    pub(crate) fn value_at(&self, t: i64) -> Option<u64> {
        if let Some(bits) = self.ooo().and_then(|o| o.value_at(t)) {
            return Some(bits);
        }
        let find = |it: &mut dyn Iterator<Item = (i64, u64)>| {
            it.take_while(|s| s.0 <= t).find(|s| s.0 == t).map(|s| s.1)
        };
        let h = &self.head;
        if h.num_samples() > 0 && h.min_time() <= t && t <= h.max_time() {
            let mut it = chunkenc::XorIter::new(h.bytes());
            return find(&mut std::iter::from_fn(|| it.next_bits()));
        }
        let c = self.closed.iter().find(|c| c.min_t <= t && t <= c.max_t)?;
        let mut it = chunkenc::XorIter::new(&c.data[..]);
        find(&mut std::iter::from_fn(|| it.next_bits()))
    }

    /// Adds an out-of-order sample the caller checked with
    /// [`SeriesData::appendable`] (committed with sequence `seq`). Returns
    /// false if the series already had a sample at `t` (nothing changes).
    pub(crate) fn append_ooo(&mut self, t: i64, v: f64, seq: u64) -> bool {
        self.commits
            .rare
            .get_or_insert_with(Default::default)
            .ooo
            .get_or_insert_with(Default::default)
            .insert(OooSample { t, v, seq })
    }

    /// Appends a sample the caller checked with [`SeriesData::appendable`].
    pub(crate) fn append(&mut self, t: i64, v: f64, chunk_range_ms: i64) {
        let c = &self.head;
        let cut = c.num_samples() == 0
            || c.num_samples() >= chunkenc::TARGET_SAMPLES
            || c.is_full()
            || (chunk_range_ms > 0
                && t.div_euclid(chunk_range_ms) != c.min_time().div_euclid(chunk_range_ms));
        if cut {
            // Constant series need ~40 bytes per 120 samples; the buffer
            // grows in small steps from there.
            let old = std::mem::replace(&mut self.head, XorChunk::with_capacity(32));
            if old.num_samples() > 0 {
                self.closed.push(ClosedChunk {
                    min_t: old.min_time(),
                    max_t: old.max_time(),
                    data: Arc::from(old.into_bytes().into_boxed_slice()),
                });
            }
        }
        self.head.append(t, v);
    }

    fn num_samples(&self) -> usize {
        self.closed.len() + self.head.num_samples() + self.ooo().map_or(0, |o| o.len())
    }
}

/// A shard of the series slab: `slots[slot >> SHARD_BITS]`.
#[derive(Default)]
struct SlabShard {
    slots: Vec<Option<SeriesRc>>,
}

/// A shard of the label-hash index.
#[derive(Default)]
struct HashShard {
    /// Slots of the series, by label hash. Only the 4-byte slot is stored
    /// (about 7.5 bytes per series with the table's control bytes and
    /// spare room, against 26 for a map of hash to id): lookups compare
    /// the candidates' labels, which also resolves hash collisions, and a
    /// resize recomputes each entry's hash from its series' labels.
    t: hashbrown::HashTable<u32>,
}

pub(crate) struct HeadInner {
    pub(crate) opts: HeadOptions,
    pub(crate) symbols: RwLock<SymbolTable>,
    slab: [RwLock<SlabShard>; SHARDS],
    hashes: [Mutex<HashShard>; SHARDS],
    pub(crate) postings: RwLock<MemPostings>,
    /// Next never-used slot (slot 0 is never used, so no id is 0).
    next_slot: std::sync::atomic::AtomicU32,
    /// Slots freed by truncation, reused by new series.
    free_slots: Mutex<Vec<u32>>,
    /// Series creations so far; the high half of new series ids.
    generation: AtomicU64,
    /// Commits hold the write side while applying; selects the read side.
    pub(crate) commit_lock: RwLock<()>,
    /// Sequence number of the last applied commit.
    pub(crate) commit_seq: AtomicU64,
    /// Watermarks of open queriers (watermark -> count).
    pub(crate) readers: Mutex<std::collections::BTreeMap<u64, usize>>,
    pub(crate) wal: RwLock<Option<Arc<crate::wal::Wal>>>,
    pub(crate) min_time: AtomicI64,
    pub(crate) max_time: AtomicI64,
    /// Samples older than this are refused with `OutOfBounds` (set on truncation).
    pub(crate) min_valid_time: AtomicI64,
    pub(crate) num_series: AtomicU64,
    pub(crate) samples_appended: AtomicU64,
    pub(crate) series_created: AtomicU64,
    pub(crate) out_of_order: AtomicU64,
    pub(crate) out_of_bounds: AtomicU64,
    pub(crate) too_old: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) ooo_appended: AtomicU64,
    /// Out-of-order samples held (open and sealed).
    pub(crate) ooo_samples: AtomicU64,
    /// Out-of-order window in ms (0: none).
    pub(crate) ooo_window: AtomicI64,
    /// Smallest out-of-order timestamp held (`i64::MAX` when none).
    pub(crate) ooo_min_time: AtomicI64,
    /// Ids of the series with an out-of-order buffer. A leaf lock: nothing
    /// else is locked while it is held.
    pub(crate) ooo_series: Mutex<HashSet<u64>>,
    pub(crate) closed: std::sync::atomic::AtomicBool,
    /// Staging buffers of finished appenders, reused by new ones so a
    /// scrape does not grow fresh vectors every time.
    pub(crate) append_bufs: Mutex<Vec<head_append::AppendBufs>>,
}

/// The head block. Cheap to clone (a shared handle). Its internals are
/// private to this module and its children.
#[derive(Clone)]
pub struct Head {
    inner: Arc<HeadInner>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("num_series", &self.inner.num_series.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for Head {
    fn default() -> Self {
        Self::new(HeadOptions::default())
    }
}

impl Head {
    /// An empty head without a WAL.
    pub fn new(opts: HeadOptions) -> Self {
        Head {
            inner: Arc::new(HeadInner {
                opts,
                symbols: RwLock::new(SymbolTable::default()),
                slab: std::array::from_fn(|_| RwLock::new(SlabShard::default())),
                hashes: std::array::from_fn(|_| Mutex::new(HashShard::default())),
                postings: RwLock::new(MemPostings::default()),
                next_slot: std::sync::atomic::AtomicU32::new(1),
                free_slots: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
                commit_lock: RwLock::new(()),
                commit_seq: AtomicU64::new(0),
                readers: Mutex::new(std::collections::BTreeMap::new()),
                wal: RwLock::new(None),
                min_time: AtomicI64::new(i64::MAX),
                max_time: AtomicI64::new(i64::MIN),
                min_valid_time: AtomicI64::new(i64::MIN),
                num_series: AtomicU64::new(0),
                samples_appended: AtomicU64::new(0),
                series_created: AtomicU64::new(0),
                out_of_order: AtomicU64::new(0),
                out_of_bounds: AtomicU64::new(0),
                too_old: AtomicU64::new(0),
                duplicates: AtomicU64::new(0),
                ooo_appended: AtomicU64::new(0),
                ooo_samples: AtomicU64::new(0),
                ooo_window: AtomicI64::new(0),
                ooo_min_time: AtomicI64::new(i64::MAX),
                ooo_series: Mutex::new(HashSet::new()),
                closed: std::sync::atomic::AtomicBool::new(false),
                append_bufs: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Attaches the WAL every later commit is logged to.
    pub(crate) fn set_wal(&self, wal: Option<Arc<crate::wal::Wal>>) {
        *self.inner.wal.write() = wal;
    }

    /// Refuses every later append and commit with `StorageError::Closed`.
    pub(crate) fn set_closed(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// Sets the out-of-order window (ms; 0 or less: out-of-order samples
    /// are refused). Takes effect for appends and commits from now on;
    /// out-of-order samples already held stay queryable.
    pub fn set_out_of_order_window(&self, ms: i64) {
        self.inner.ooo_window.store(ms.max(0), Ordering::Release);
    }

    /// The out-of-order window in ms (0: none).
    pub fn out_of_order_window(&self) -> i64 {
        self.inner.ooo_window.load(Ordering::Acquire)
    }

    /// Out-of-order samples held.
    pub(crate) fn stats_ooo_samples(&self) -> u64 {
        self.inner.ooo_samples.load(Ordering::Acquire)
    }

    /// Smallest out-of-order timestamp held (`i64::MAX` when none).
    pub fn ooo_min_time(&self) -> i64 {
        self.inner.ooo_min_time.load(Ordering::Acquire)
    }

    /// Smallest committed in-order timestamp (`i64::MAX` when empty;
    /// out-of-order samples are not included, see [`Head::ooo_min_time`]).
    pub fn min_time(&self) -> i64 {
        self.inner.min_time.load(Ordering::Acquire)
    }

    /// Largest committed timestamp (`i64::MIN` when empty; out-of-order
    /// samples are always older).
    pub fn max_time(&self) -> i64 {
        self.inner.max_time.load(Ordering::Acquire)
    }

    /// Number of series in the head.
    pub fn num_series(&self) -> u64 {
        self.inner.num_series.load(Ordering::Relaxed)
    }

    /// Counters and the per-metric series counts (top `top_n` metric names).
    pub fn stats(&self, top_n: usize) -> HeadStats {
        let i = &self.inner;
        let mut per_metric = {
            let syms = i.symbols.read();
            i.postings
                .read()
                .value_counts(&syms, koban_model::METRIC_NAME)
        };
        per_metric.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        per_metric.truncate(top_n);
        HeadStats {
            num_series: i.num_series.load(Ordering::Relaxed),
            samples_appended: i.samples_appended.load(Ordering::Relaxed),
            series_created: i.series_created.load(Ordering::Relaxed),
            out_of_order: i.out_of_order.load(Ordering::Relaxed),
            out_of_bounds: i.out_of_bounds.load(Ordering::Relaxed),
            too_old: i.too_old.load(Ordering::Relaxed),
            duplicates: i.duplicates.load(Ordering::Relaxed),
            ooo_appended: i.ooo_appended.load(Ordering::Relaxed),
            ooo_samples: i.ooo_samples.load(Ordering::Relaxed),
            min_time: self.min_time(),
            max_time: self.max_time(),
            series_per_metric: per_metric,
        }
    }

    /// Drops every chunk whose samples are all older than `mint` (they are
    /// persisted in blocks), removes series left without samples, and
    /// refuses later appends older than `mint` with `OutOfBounds`.
    /// Returns the number of series removed.
    pub fn truncate(&self, mint: i64) -> usize {
        let i = &self.inner;
        i.min_valid_time.fetch_max(mint, Ordering::AcqRel);
        // Exclude commits and selects while series disappear.
        let _g = i.commit_lock.write();
        let mut removed = Vec::new();
        let mut new_min = i64::MAX;
        for shard in &i.slab {
            let mut sh = shard.write();
            for slot in sh.slots.iter_mut() {
                let Some(s) = slot else { continue };
                let mut d = s.data.lock();
                d.closed.retain(|c| c.max_t >= mint);
                if d.head.num_samples() > 0 && d.head.max_time() < mint {
                    d.head = XorChunk::unallocated();
                }
                match (d.closed.first(), &d.head) {
                    (Some(c), _) => new_min = new_min.min(c.min_t),
                    (None, h) if h.num_samples() > 0 => new_min = new_min.min(h.min_time()),
                    _ => {}
                }
                // Series without samples go too (a pending commit re-creates them).
                if d.num_samples() == 0 {
                    d.removed = true;
                    drop(d);
                    removed.push(s.clone());
                    *slot = None;
                }
            }
        }
        if !removed.is_empty() {
            // Lock order as series creation: hash shards before postings.
            let hashes: Vec<u64> = {
                let syms = i.symbols.read();
                removed
                    .iter()
                    .map(|s| syms.resolve(&s.lset).hash())
                    .collect()
            };
            for (s, h) in removed.iter().zip(hashes) {
                i.hash_remove(h, s.id);
            }
            let mut p = i.postings.write();
            for s in &removed {
                p.remove(symbols::pairs(&s.lset), slot_of(s.id));
            }
            drop(p);
            i.free_slots
                .lock()
                .extend(removed.iter().map(|s| slot_of(s.id)));
            i.num_series
                .fetch_sub(removed.len() as u64, Ordering::Relaxed);
        }
        i.min_time.store(
            if new_min == i64::MAX {
                i64::MAX
            } else {
                new_min.max(mint)
            },
            Ordering::Release,
        );
        if new_min == i64::MAX {
            i.max_time.store(i64::MIN, Ordering::Release);
        }
        removed.len()
    }

    /// Calls `f` with the id and labels of every series (for WAL checkpoints).
    pub fn for_each_series(&self, mut f: impl FnMut(u64, &Labels)) {
        let i = &self.inner;
        for shard in &i.slab {
            let series: Vec<SeriesRc> = shard.read().slots.iter().flatten().cloned().collect();
            let syms = i.symbols.read();
            for s in series {
                f(s.id, &syms.resolve(&s.lset));
            }
        }
    }

    /// Replay is done: every unused slot below the high-water mark becomes
    /// reusable by new series.
    pub(crate) fn finish_replay(&self) {
        self.inner.rebuild_free_slots();
    }

    /// Waits until every head querier opened before the call has been
    /// dropped (or `until` passes; returns false then). A querier opened
    /// before a new block was added does not read that block, so
    /// truncating the head under it would hide the block's samples from
    /// its later selects (Prometheus waits for such readers too).
    pub(crate) fn wait_for_readers(&self, until: std::time::Instant) -> bool {
        // Queriers register the commit sequence they saw; those opened
        // after now see at least this one (equal when no commit happened
        // since: those are waited for as well, harmlessly).
        let seq = self.inner.commit_seq.load(Ordering::Acquire);
        loop {
            let oldest = self.inner.readers.lock().keys().next().copied();
            if oldest.is_none_or(|w| w > seq) {
                return true;
            }
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Looks up a series by ref.
    pub(crate) fn series_by_id(&self, id: u64) -> Option<SeriesRc> {
        self.inner.series_by_id(id)
    }

    /// Finds or creates the series for `labels`. Returns the series and
    /// whether it was created.
    pub(crate) fn get_or_create(&self, labels: &Labels) -> Result<(SeriesRc, bool), StorageError> {
        self.inner.get_or_create(labels, None)
    }

    /// Replay: creates the series with the given id (or returns the existing
    /// series with the same labels).
    pub(crate) fn replay_series(&self, id: u64, labels: &Labels) -> Result<SeriesRc, StorageError> {
        let (s, _) = self.inner.get_or_create(labels, Some(id))?;
        // Only a series that kept its WAL id is named by a record there; one
        // that got a new id (slot clash) must log a series record before its
        // next samples, or a later replay would not know them.
        if s.id == id {
            s.data.lock().logged = true;
        }
        Ok(s)
    }

    /// Replay: appends one sample bypassing the WAL. Every logged sample
    /// is kept whatever the window and bounds are now (it was accepted
    /// when logged): into the in-order chunks if it is newer than the
    /// series' last sample (as every in-order sample was at commit time;
    /// WALs written before the bounds existed hold such samples older than
    /// the head's newest minus half a chunk range, kept in order too),
    /// otherwise into the out-of-order buffer; only samples at a timestamp
    /// the series already has are skipped.
    pub(crate) fn replay_sample(&self, s: &MemSeries, t: i64, v: f64) {
        let i = &self.inner;
        let b = Bounds {
            min_valid: i64::MIN,
            ooo_min: i64::MIN,
        };
        let mut d = s.data.lock();
        match d.appendable(t, v, &b) {
            Ok(Placement::InOrder) => {
                d.append(t, v, i.opts.chunk_range_ms);
                drop(d);
                i.samples_appended.fetch_add(1, Ordering::Relaxed);
                i.min_time.fetch_min(t, Ordering::AcqRel);
                i.max_time.fetch_max(t, Ordering::AcqRel);
            }
            Ok(Placement::OutOfOrder) => {
                let first = d.ooo().is_none();
                if d.append_ooo(t, v, 0) {
                    drop(d);
                    i.ooo_added(s.id, t, first, 1);
                    i.samples_appended.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Placement::Ignore) => {}
            Err(_) => {
                i.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Head cut, step 1: moves every out-of-order sample held to the
    /// sealed lists (see [`ooo`]). Call after starting a new WAL segment:
    /// commits hold the commit lock while logging and applying, so every
    /// sample in older segments is then sealed or in-order. Returns false
    /// if the head holds no out-of-order samples.
    pub(crate) fn seal_ooo(&self) -> bool {
        let i = &self.inner;
        let _g = i.commit_lock.write();
        let ids = i.ooo_ids();
        if ids.is_empty() {
            return false;
        }
        for id in ids {
            if let Some(s) = i.series_by_id(id) {
                if let Some(o) = s.data.lock().ooo_mut() {
                    o.seal();
                }
            }
        }
        true
    }

    /// Head cut, step 2: calls `f(labels, samples)` for every series with
    /// sealed out-of-order samples older than `end` (samples sorted).
    pub(crate) fn for_each_sealed_ooo(&self, end: i64, mut f: impl FnMut(Labels, &[(i64, f64)])) {
        let i = &self.inner;
        let mut buf = Vec::new();
        for id in i.ooo_ids() {
            let Some(s) = i.series_by_id(id) else {
                continue;
            };
            buf.clear();
            if let Some(o) = s.data.lock().ooo() {
                buf.extend(
                    o.sealed()
                        .iter()
                        .take_while(|x| x.t < end)
                        .map(|x| (x.t, x.v)),
                );
            }
            if !buf.is_empty() {
                let labels = i.symbols.read().resolve(&s.lset);
                f(labels, &buf);
            }
        }
    }

    /// Head cut, step 3 (once blocks hold them): drops the sealed
    /// out-of-order samples older than `end`; the other sealed samples
    /// return to the open lists. Returns the number of samples dropped.
    pub(crate) fn release_sealed_ooo(&self, end: i64) -> usize {
        let i = &self.inner;
        let _g = i.commit_lock.write();
        let mut dropped = 0;
        let mut emptied = Vec::new();
        let mut new_min = i64::MAX;
        for id in i.ooo_ids() {
            let Some(s) = i.series_by_id(id) else {
                emptied.push(id);
                continue;
            };
            let mut d = s.data.lock();
            let Some(o) = d.ooo_mut() else {
                emptied.push(id);
                continue;
            };
            dropped += o.release_sealed(end);
            match o.time_range() {
                Some((lo, _)) => new_min = new_min.min(lo),
                None => {
                    d.clear_ooo();
                    emptied.push(id);
                }
            }
        }
        let mut set = i.ooo_series.lock();
        for id in emptied {
            set.remove(&id);
        }
        drop(set);
        i.ooo_min_time.store(new_min, Ordering::Release);
        i.ooo_samples.fetch_sub(dropped as u64, Ordering::Relaxed);
        dropped
    }
}

/// The slab slot of a series id (its low 32 bits).
#[inline]
pub(crate) fn slot_of(id: u64) -> u32 {
    id as u32
}

impl HeadInner {
    /// The series with this id, if it is still in the head (a ref whose
    /// slot was reused by another series does not match).
    #[inline]
    pub(crate) fn series_by_id(&self, id: u64) -> Option<SeriesRc> {
        self.series_by_slot(slot_of(id)).filter(|s| s.id == id)
    }

    /// Starts loading the record of series `id` into the CPU caches (see
    /// [`koban_storage::Appender::prefetch`]); does nothing if there is no
    /// such series. Takes no reference: the slot's pointer is only used
    /// as a prefetch address.
    #[inline]
    pub(crate) fn prefetch_ref(&self, id: u64) {
        if id != 0 {
            self.with_slot(slot_of(id), |s| {
                if let Some(s) = s {
                    prefetch_series(s);
                }
            });
        }
    }

    #[inline]
    pub(crate) fn series_by_slot(&self, slot: u32) -> Option<SeriesRc> {
        self.with_slot(slot, |s| s.cloned())
    }

    /// Calls `f` with the series in `slot` (if any) under its shard's read
    /// lock.
    #[inline]
    fn with_slot<R>(&self, slot: u32, f: impl FnOnce(Option<&SeriesRc>) -> R) -> R {
        let shard = self.slab[(slot as usize) & (SHARDS - 1)].read();
        f(shard
            .slots
            .get((slot >> SHARD_BITS) as usize)
            .and_then(Option::as_ref))
    }

    /// Replay is done: every unused slot below the high-water mark becomes
    /// reusable.
    pub(crate) fn rebuild_free_slots(&self) {
        let next = self.next_slot.load(Ordering::Acquire);
        let mut free = Vec::new();
        for slot in 1..next {
            if self.series_by_slot(slot).is_none() {
                free.push(slot);
            }
        }
        free.reverse();
        *self.free_slots.lock() = free;
    }

    fn hash_remove(&self, hash: u64, id: u64) {
        let mut h = self.hashes[(hash as usize) & (SHARDS - 1)].lock();
        if let Ok(e) = h.t.find_entry(hash, |&s| s == slot_of(id)) {
            e.remove();
        }
    }

    /// The label hash of the series in `slot`, for resizing the hash
    /// index. A slot truncation has just emptied (its index entry is
    /// removed right after) hashes to 0: that entry is then unreachable by
    /// its hash but harmless, as every lookup compares labels.
    fn slot_hash(&self, slot: u32) -> u64 {
        self.series_by_slot(slot)
            .map_or(0, |s| self.symbols.read().resolve(&s.lset).hash())
    }

    fn labels_equal(&self, s: &MemSeries, labels: &Labels) -> bool {
        let syms = self.symbols.read();
        let mut it = symbols::pairs(&s.lset);
        labels.iter().all(|l| {
            it.next().is_some_and(|(n, v)| {
                syms.get(n) == Some(l.name.as_str()) && syms.get(v) == Some(l.value.as_str())
            })
        }) && it.next().is_none()
    }

    fn get_or_create(
        &self,
        labels: &Labels,
        want_id: Option<u64>,
    ) -> Result<(SeriesRc, bool), StorageError> {
        if labels.is_empty() || labels.metric_name().is_empty() {
            return Err(StorageError::InvalidLabels);
        }
        let hash = labels.hash();
        let mut h = self.hashes[(hash as usize) & (SHARDS - 1)].lock();
        let mut found = None;
        h.t.find(hash, |&slot| match self.series_by_slot(slot) {
            Some(s) if self.labels_equal(&s, labels) => {
                found = Some(s);
                true
            }
            _ => false,
        });
        if let Some(s) = found {
            return Ok((s, false));
        }
        // Create it while holding the hash shard, so no twin is created.
        let gen = self.generation.fetch_add(1, Ordering::AcqRel);
        let id = match want_id {
            // Replay keeps the logged id when its slot is free (no
            // truncation runs during replay, so the free list is empty).
            Some(id) if slot_of(id) != 0 && self.series_by_slot(slot_of(id)).is_none() => {
                self.next_slot
                    .fetch_max(slot_of(id).saturating_add(1), Ordering::AcqRel);
                id
            }
            _ => {
                let slot = match self.free_slots.lock().pop() {
                    Some(s) => s,
                    None => self.next_slot.fetch_add(1, Ordering::AcqRel),
                };
                ((gen & 0xffff_ffff) << 32) | slot as u64
            }
        };
        let slot = slot_of(id);
        let lset = {
            let mut syms = self.symbols.write();
            symbols::encode_lset(
                labels
                    .iter()
                    .flat_map(|l| [syms.intern(&l.name), syms.intern(&l.value)]),
            )
        };
        let s = SeriesRc::new(MemSeries {
            id,
            lset,
            data: Mutex::new(SeriesData::new()),
        });
        {
            let mut sh = self.slab[(slot as usize) & (SHARDS - 1)].write();
            let idx = (slot >> SHARD_BITS) as usize;
            if sh.slots.len() <= idx {
                sh.slots.resize(idx + 1, None);
            }
            sh.slots[idx] = Some(s.clone());
        }
        self.postings.write().add(symbols::pairs(&s.lset), slot);
        h.t.insert_unique(hash, slot, |&s| self.slot_hash(s));
        drop(h);
        self.num_series.fetch_add(1, Ordering::Relaxed);
        self.series_created.fetch_add(1, Ordering::Relaxed);
        Ok((s, true))
    }

    /// Append bounds at this moment (see the module docs).
    #[inline]
    pub(crate) fn bounds(&self) -> Bounds {
        let maxt = self.max_time.load(Ordering::Acquire);
        let min_valid = self
            .min_valid_time
            .load(Ordering::Acquire)
            .max(maxt.saturating_sub(self.opts.chunk_range_ms / 2));
        let w = self.ooo_window.load(Ordering::Relaxed);
        Bounds {
            min_valid,
            ooo_min: if w > 0 {
                maxt.saturating_sub(w)
            } else {
                i64::MAX
            },
        }
    }

    /// Counts a refused sample under its reason.
    pub(crate) fn count_refused(&self, e: &StorageError) {
        let c = match e {
            StorageError::OutOfOrder => &self.out_of_order,
            StorageError::OutOfBounds => &self.out_of_bounds,
            StorageError::TooOld => &self.too_old,
            StorageError::DuplicateSample => &self.duplicates,
            _ => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Book-keeping after `n` out-of-order samples were added to series
    /// `id` (the smallest at `t`; `first`: its buffer was just created).
    pub(crate) fn ooo_added(&self, id: u64, t: i64, first: bool, n: u64) {
        if first {
            self.ooo_series.lock().insert(id);
        }
        self.ooo_min_time.fetch_min(t, Ordering::AcqRel);
        self.ooo_samples.fetch_add(n, Ordering::Relaxed);
        self.ooo_appended.fetch_add(n, Ordering::Relaxed);
    }

    /// Ids of the series with an out-of-order buffer.
    pub(crate) fn ooo_ids(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.ooo_series.lock().iter().copied().collect();
        v.sort_unstable();
        v
    }

    /// Every live series slot, sorted.
    pub(crate) fn all_slots(&self) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.num_series.load(Ordering::Relaxed) as usize);
        for shard in &self.slab {
            ids.extend(shard.read().slots.iter().flatten().map(|s| slot_of(s.id)));
        }
        ids.sort_unstable();
        ids
    }
}

impl Appendable for Head {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(HeadAppender::new(self.clone()))
    }

    /// Refs are head series ids; labels are read only for a stale one.
    fn resolves_refs(&self) -> bool {
        true
    }
}

impl Queryable for Head {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(HeadQuerier::new(self.clone(), mint, maxt)))
    }
}

#[cfg(test)]
mod tests;
