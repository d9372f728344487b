//! Appending to the head: staging samples, then committing them to the WAL
//! and the series atomically.

use super::{Bounds, Head, Placement, SeriesRc};
use koban_model::Labels;
use koban_storage::{Appender, CommitReport, SeriesRef, StorageError};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

struct Staged {
    series: SeriesRc,
    t: i64,
    v: f64,
    /// Decided at commit: where the sample goes, or None if refused.
    place: Option<Placement>,
    /// A created-timestamp zero (see `append_created_timestamp`): never
    /// out of order, and its refusal is not counted.
    ct_zero: bool,
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
/// How many staged samples ahead commit prefetches series records.
const PREFETCH_AHEAD: usize = 4;

/// Stages samples for one batch; see [`koban_storage::Appender`].
///
/// `append` validates against committed data (out of order, too old,
/// duplicate, out of bounds: see the `head` module docs) and returns the
/// series ref; nothing is visible until `commit`, which decides where each
/// sample goes, logs the accepted ones to the WAL in one write and then
/// applies them under the commit lock. Samples of one batch that conflict
/// with each other (same series) are judged in batch order, as if appended
/// one by one: a later one may go out of order (within the window) or be
/// refused and counted, as Prometheus does.
///
/// Native histograms, exemplars and per-series metadata are refused with
/// `StorageError::NotSupported` (the trait's defaults): the head stores
/// floats only, for now. Created timestamps are stored as Prometheus's
/// zero samples.
pub struct HeadAppender {
    head: Head,
    /// Bounds for the append-time checks, taken at the first append
    /// (commit checks again with fresh ones).
    bounds: Option<Bounds>,
    staged: Vec<Staged>,
    samples: Vec<(u64, i64, f64)>,
    /// Refusals at append time, for the commit's report.
    refused: CommitReport,
}

impl HeadAppender {
    pub(crate) fn new(head: Head) -> Self {
        let bufs = head.inner.append_bufs.lock().pop().unwrap_or_default();
        HeadAppender {
            head,
            bounds: None,
            staged: bufs.staged,
            samples: bufs.samples,
            refused: CommitReport::default(),
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

impl HeadAppender {
    /// `append` and `append_created_timestamp`: checks (t, v) against the
    /// committed data and stages it. A zero of a created timestamp
    /// (`ct_zero`) is refused rather than put out of order, and its
    /// refusals are not counted.
    #[inline]
    fn stage(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
        ct_zero: bool,
    ) -> Result<SeriesRef, StorageError> {
        let inner = &self.head.inner;
        if inner.closed.load(Ordering::Relaxed) {
            return Err(StorageError::Closed);
        }
        let b = *self.bounds.get_or_insert_with(|| inner.bounds());
        if t < b.min_valid && t < b.ooo_min {
            // Too old for any series: refused before creating one.
            let e = if b.ooo_min == i64::MAX {
                StorageError::OutOfBounds
            } else {
                StorageError::TooOld
            };
            return Err(self.refuse(e, ct_zero));
        }
        let series = match (r != 0).then(|| inner.series_by_id(r)).flatten() {
            Some(s) => s,
            None => self.head.get_or_create(labels)?.0,
        };
        let ok = {
            let d = series.data.lock();
            let last = d.last();
            if ct_zero && last.is_some_and(|(lt, _)| t < lt) {
                return Err(StorageError::CreatedTimestampOutOfOrder);
            }
            d.appendable_after(last, t, v, &b)
        };
        match ok {
            Ok(Placement::OutOfOrder) if ct_zero => Err(StorageError::CreatedTimestampOutOfOrder),
            Ok(Placement::InOrder | Placement::OutOfOrder) => {
                let id = series.id;
                self.staged.push(Staged {
                    series,
                    t,
                    v,
                    place: None,
                    ct_zero,
                });
                Ok(id)
            }
            Ok(Placement::Ignore) => Ok(series.id),
            Err(e) => Err(self.refuse(e, ct_zero)),
        }
    }

    /// Counts refusal `e` (head metrics and this batch's report) unless it
    /// is a created-timestamp zero's, which is reported as out of order.
    #[cold]
    fn refuse(&mut self, e: StorageError, ct_zero: bool) -> StorageError {
        if ct_zero {
            return match e {
                StorageError::OutOfOrder | StorageError::TooOld => {
                    StorageError::CreatedTimestampOutOfOrder
                }
                e => e,
            };
        }
        self.head.inner.count_refused(&e);
        self.refused.count_refused(&e);
        e
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
        self.stage(r, labels, t, v, false)
    }

    /// Prometheus's created-timestamp zero: a 0 at `ct`, only in order
    /// (never into the out-of-order window: after the first scrape every
    /// sample of a counter carries the same `ct`).
    fn append_created_timestamp(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        ct: i64,
    ) -> Result<SeriesRef, StorageError> {
        if ct >= t {
            return Err(StorageError::CreatedTimestampNewerThanSample);
        }
        self.stage(r, labels, ct, 0.0, true)
    }

    #[inline]
    fn prefetch(&self, r: SeriesRef) {
        self.head.inner.prefetch_ref(r);
    }

    fn commit(mut self: Box<Self>) -> Result<CommitReport, StorageError> {
        let mut report = self.refused;
        if self.staged.is_empty() {
            return Ok(report);
        }
        let head = self.head.clone();
        let inner = &head.inner;
        let wal = inner.wal.read().clone();
        let _g = inner.commit_lock.write();
        if inner.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }

        let mut new_series: Vec<SeriesRc> = Vec::new();
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
        // Decide every sample before logging, so the WAL holds exactly the
        // accepted ones (replay then rebuilds the same data).
        let b = inner.bounds();
        decide(
            &head,
            &mut self.staged,
            &mut new_series,
            &b,
            seq,
            low,
            &mut report,
        )?;
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
            self.samples.extend(
                self.staged
                    .iter()
                    .filter(|s| matches!(s.place, Some(Placement::InOrder | Placement::OutOfOrder)))
                    .map(|s| (s.series.id, s.t, s.v)),
            );
            wal.log_commit(&series_recs, &self.samples)
                .map_err(|e| StorageError::Io(e.to_string()))?;
        }
        for s in &new_series {
            s.data.lock().logged = true;
        }

        let (mut mint, mut maxt, mut n) = (i64::MAX, i64::MIN, 0u64);
        let range = inner.opts.chunk_range_ms;
        for st in &self.staged {
            match st.place {
                Some(Placement::InOrder) => {
                    st.series.data.lock().append(st.t, st.v, range);
                    mint = mint.min(st.t);
                    maxt = maxt.max(st.t);
                    n += 1;
                }
                Some(Placement::OutOfOrder) => {
                    let mut d = st.series.data.lock();
                    let first = d.ooo().is_none();
                    if d.append_ooo(st.t, st.v, seq) {
                        drop(d);
                        inner.ooo_added(st.series.id, st.t, first, 1);
                        n += 1;
                    }
                }
                Some(Placement::Ignore) | None => {}
            }
        }
        inner.commit_seq.store(seq, Ordering::Release);
        if n > 0 {
            if mint != i64::MAX {
                inner.min_time.fetch_min(mint, Ordering::AcqRel);
                inner.max_time.fetch_max(maxt, Ordering::AcqRel);
            }
            inner.samples_appended.fetch_add(n, Ordering::Relaxed);
        }
        report.floats = n;
        Ok(report)
    }

    fn rollback(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Decides where each staged sample goes (`place`), in batch order, under
/// the commit lock and before anything is applied: against the committed
/// data, and for series staged more than once, against the earlier
/// accepted samples of the batch too. Also records commit `seq` in each
/// series' commit log (harmless if the commit then fails: the entry's
/// "last timestamp before the commit" stays true).
fn decide(
    head: &Head,
    staged: &mut [Staged],
    new_series: &mut Vec<SeriesRc>,
    b: &Bounds,
    seq: u64,
    low: u64,
    report: &mut CommitReport,
) -> Result<(), StorageError> {
    let inner = &head.inner;
    // Accepted samples per series id, built only once a series repeats.
    let mut batch: Option<HashMap<u64, Vec<usize>>> = None;
    for k in 0..staged.len() {
        // The series records are usually cold (other targets were scraped
        // since): ask for the ones a few samples ahead now.
        if let Some(ahead) = staged.get(k + PREFETCH_AHEAD) {
            super::prefetch_series(&ahead.series);
        }
        let st = &mut staged[k];
        let (repeat, mut res) = {
            let mut d = st.series.data.lock();
            if d.removed {
                // Truncation removed the series meanwhile: re-home the sample.
                drop(d);
                let labels = inner.symbols.read().resolve(&st.series.lset);
                st.series = head.get_or_create(&labels)?.0;
                d = st.series.data.lock();
            }
            if !d.logged {
                new_series.push(st.series.clone());
            }
            let last = d.last();
            let repeat = d.commits.last_seq() == seq;
            if !repeat {
                d.commits
                    .record_new(seq, low, last.map_or(i64::MIN, |l| l.0));
            }
            (repeat, d.appendable_after(last, st.t, st.v, b))
        };
        let st = &staged[k];
        if repeat || batch.is_some() {
            let map = batch.get_or_insert_with(|| {
                let mut m: HashMap<u64, Vec<usize>> = HashMap::new();
                for (i, s) in staged[..k].iter().enumerate() {
                    if matches!(s.place, Some(Placement::InOrder | Placement::OutOfOrder)) {
                        m.entry(s.series.id).or_default().push(i);
                    }
                }
                m
            });
            let prev = map.entry(st.series.id).or_default();
            if repeat && !prev.is_empty() {
                res = against_batch(res, st.t, st.v, b, prev.iter().map(|&i| &staged[i]));
            }
            if st.ct_zero && matches!(res, Ok(Placement::OutOfOrder)) {
                res = Err(StorageError::OutOfOrder);
            }
            if matches!(res, Ok(Placement::InOrder | Placement::OutOfOrder)) {
                prev.push(k);
            }
        }
        let st = &mut staged[k];
        st.place = match res {
            Ok(Placement::OutOfOrder) if st.ct_zero => None,
            Ok(p) => Some(p),
            Err(_) if st.ct_zero => None,
            Err(e) => {
                inner.count_refused(&e);
                report.count_refused(&e);
                None
            }
        };
    }
    Ok(())
}

/// Adjusts the decision `res` taken against the committed data for a
/// sample (t, v) of a series whose earlier samples `prev` in the same
/// batch were accepted.
fn against_batch<'a>(
    res: Result<Placement, StorageError>,
    t: i64,
    v: f64,
    b: &Bounds,
    prev: impl Iterator<Item = &'a Staged> + Clone,
) -> Result<Placement, StorageError> {
    let same_t = prev.clone().find(|s| s.t == t);
    let max_in = prev
        .filter(|s| s.place == Some(Placement::InOrder))
        .map(|s| s.t)
        .max();
    match res {
        Ok(Placement::InOrder) if max_in.is_none_or(|m| t > m) => Ok(Placement::InOrder),
        Ok(Placement::InOrder | Placement::OutOfOrder) => match same_t {
            Some(s) if s.v.to_bits() == v.to_bits() => Ok(Placement::Ignore),
            Some(_) => Err(StorageError::DuplicateSample),
            None if t >= b.ooo_min => Ok(Placement::OutOfOrder),
            None if b.ooo_min != i64::MAX => Err(StorageError::TooOld),
            None if t < b.min_valid => Err(StorageError::OutOfBounds),
            None => Err(StorageError::OutOfOrder),
        },
        other => other,
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
