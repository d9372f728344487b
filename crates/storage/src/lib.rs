//! The storage contract between Koban's producers (scrape, rules, remote
//! write) and consumers (PromQL, federation, the HTTP API) and its
//! implementations (the TSDB, remote read). Nothing here does I/O.
//!
//! Timestamps are milliseconds since the Unix epoch. Time ranges are closed:
//! `[mint, maxt]`.

use koban_model::{Exemplar, FloatHistogram, Histogram, Labels, Matcher};
use std::sync::Arc;

/// An opaque, storage-assigned handle for a series, valid for the lifetime of
/// the storage (the head may reassign it after the series is garbage
/// collected; appending with a stale ref falls back to the labels).
/// `0` means "unknown".
pub type SeriesRef = u64;

/// Errors from storage implementations. Append errors are per sample and do
/// not poison the appender: the caller may count them and go on.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StorageError {
    #[error("out of order sample")]
    OutOfOrder,
    #[error("duplicate sample for timestamp")]
    DuplicateSample,
    #[error("out of bounds")]
    OutOfBounds,
    #[error("too old sample")]
    TooOld,
    #[error("label set is empty or has no metric name")]
    InvalidLabels,
    /// [`Appender::append_created_timestamp`]: the created timestamp is
    /// not before the sample's. Callers ignore it (as Prometheus).
    #[error("CT is newer or the same as sample's timestamp, ignoring")]
    CreatedTimestampNewerThanSample,
    /// [`Appender::append_created_timestamp`]: the series already has a
    /// sample at or after the created timestamp (the usual case after the
    /// first scrape of a counter). Callers ignore it (as Prometheus).
    #[error("created timestamp out of order, ignoring")]
    CreatedTimestampOutOfOrder,
    /// The storage does not implement this kind of data (yet); the text
    /// names it, e.g. "native histograms are not supported by Koban yet".
    #[error("{0}")]
    NotSupported(&'static str),
    /// A malformed histogram or exemplar; the text says what is wrong.
    #[error("{0}")]
    Invalid(String),
    #[error("storage is read-only or closed")]
    Closed,
    #[error("query canceled")]
    Canceled,
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Other(String),
}

/// The text of [`StorageError::NotSupported`] for native histograms.
pub const HISTOGRAMS_NOT_SUPPORTED: &str = "native histograms are not supported by Koban yet";
/// The text of [`StorageError::NotSupported`] for exemplars.
pub const EXEMPLARS_NOT_SUPPORTED: &str = "exemplar storage is not supported by Koban yet";
/// The text of [`StorageError::NotSupported`] for per-series metadata.
pub const METADATA_NOT_SUPPORTED: &str =
    "storing metadata per series is not supported by Koban yet";

/// What one batch did, returned by [`Appender::commit`].
///
/// Refusals count every sample of the batch that was refused, whether
/// `append` already returned the error for it or the commit decided it
/// (samples of one batch conflicting with each other or with a batch
/// committed meanwhile). A caller therefore counts refusals from the
/// report only, not from the per-sample errors too. Samples of
/// [`Appender::append_created_timestamp`] are synthetic and not counted
/// in either half.
///
/// New fields may be added: build it with `Default` and field updates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitReport {
    /// Float samples made visible (stale markers included; samples equal
    /// to one already stored, which are dropped silently, not included).
    pub floats: u64,
    /// Histogram samples made visible.
    pub histograms: u64,
    /// Exemplars stored.
    pub exemplars: u64,
    /// Refused: older than the series' last sample (no out-of-order window).
    pub out_of_order: u64,
    /// Refused: before the storage's lowest appendable time.
    pub out_of_bounds: u64,
    /// Refused: a different value at a timestamp the series already has.
    pub duplicate: u64,
    /// Refused: older than the out-of-order window allows.
    pub too_old: u64,
}

impl CommitReport {
    /// Samples refused, all reasons together.
    pub fn refused(&self) -> u64 {
        self.out_of_order + self.out_of_bounds + self.duplicate + self.too_old
    }

    /// Counts a refusal if `e` is one of the four per-sample reasons;
    /// returns whether it was.
    pub fn count_refused(&mut self, e: &StorageError) -> bool {
        let c = match e {
            StorageError::OutOfOrder => &mut self.out_of_order,
            StorageError::OutOfBounds => &mut self.out_of_bounds,
            StorageError::DuplicateSample => &mut self.duplicate,
            StorageError::TooOld => &mut self.too_old,
            _ => return false,
        };
        *c += 1;
        true
    }

    /// Adds `o`'s counts to these.
    pub fn add(&mut self, o: &CommitReport) {
        self.floats += o.floats;
        self.histograms += o.histograms;
        self.exemplars += o.exemplars;
        self.out_of_order += o.out_of_order;
        self.out_of_bounds += o.out_of_bounds;
        self.duplicate += o.duplicate;
        self.too_old += o.too_old;
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Staged writes for one batch (one scrape, one rule evaluation). Nothing is
/// visible to queries until [`Appender::commit`] returns Ok; [`Appender::rollback`]
/// (or dropping the appender) discards the batch.
///
/// The caller owns the appender and uses it from one task. The family is
/// modelled on Prometheus's `storage.Appender` (with its exemplar,
/// histogram, metadata and created-timestamp extensions), so producers
/// written against it need no change when storage learns more.
///
/// Every method takes the series as a ref *and* its labels: `labels` is
/// the series' full label set (the caller keeps it, e.g. the scrape cache
/// holds each series' labels), so an appender that is not the TSDB
/// (remote write, agent mode, a fan-out's secondary, a test double) can
/// learn which series a ref means. The one exception: towards storage
/// whose [`Appendable::resolves_refs`] is true (the TSDB), a caller
/// passing a valid ref that storage returned may pass empty labels; such
/// storage answers a stale ref with empty labels with `InvalidLabels`,
/// and the caller retries with the labels and ref 0. A stale or unknown
/// ref with labels falls back to the labels. `r` is a ref returned by an
/// earlier call for the same series on an appender of the same storage,
/// or 0.
pub trait Appender: Send {
    /// Stages one float sample of the series `labels`. Returns the series
    /// ref to pass next time.
    ///
    /// Fails per sample with `OutOfOrder`, `DuplicateSample`, `OutOfBounds`,
    /// `TooOld` or `InvalidLabels`; the batch stays usable. The first four
    /// are counted in the commit's [`CommitReport`] as well.
    fn append(&mut self, r: SeriesRef, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef>;

    /// Stages one native histogram sample at `t`: exactly one of `h`
    /// (integer counts) and `fh` (float counts) is given. Same refs,
    /// labels and per-sample errors as [`Appender::append`], plus
    /// `Invalid` for a malformed histogram.
    ///
    /// The default (and, for now, the TSDB) refuses with
    /// `NotSupported(`[`HISTOGRAMS_NOT_SUPPORTED`]`)`; the caller counts
    /// the sample as not stored and goes on.
    fn append_histogram(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        h: Option<&Histogram>,
        fh: Option<&FloatHistogram>,
    ) -> Result<SeriesRef> {
        let _ = (r, labels, t, h, fh);
        Err(StorageError::NotSupported(HISTOGRAMS_NOT_SUPPORTED))
    }

    /// Stages an exemplar for the series (normally right after appending
    /// the sample it belongs to). `Invalid` for an exemplar failing
    /// [`Exemplar::validate`]; an exemplar equal to the series' last one
    /// is accepted and dropped (pages repeat them).
    ///
    /// The default (and the TSDB: Koban keeps no exemplars yet) refuses
    /// with `NotSupported(`[`EXEMPLARS_NOT_SUPPORTED`]`)`.
    fn append_exemplar(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        e: &Exemplar,
    ) -> Result<SeriesRef> {
        let _ = (r, labels, e);
        Err(StorageError::NotSupported(EXEMPLARS_NOT_SUPPORTED))
    }

    /// Records the metric family metadata of the series as of this batch.
    ///
    /// The default (and the TSDB) refuses with
    /// `NotSupported(`[`METADATA_NOT_SUPPORTED`]`)`: the scrape loop keeps
    /// each target's family metadata itself, which `/api/v1/metadata` and
    /// `/api/v1/targets/metadata` serve, and does not call this yet.
    fn update_metadata(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        m: &koban_model::Metadata,
    ) -> Result<SeriesRef> {
        let _ = (r, labels, m);
        Err(StorageError::NotSupported(METADATA_NOT_SUPPORTED))
    }

    /// Stages the zero sample a created timestamp stands for (Prometheus's
    /// `AppendCTZeroSample`): a 0 at `ct`, before the series' sample at
    /// `t`, so `rate()` and `increase()` see a counter start from zero.
    /// Call it before appending the sample at `t`.
    ///
    /// Refused with `CreatedTimestampNewerThanSample` when `ct >= t`, and
    /// with `CreatedTimestampOutOfOrder` when the series already has a
    /// sample after `ct` (the common case after the first scrape: such
    /// zero samples are never put in the out-of-order window); other
    /// errors as [`Appender::append`]. Callers ignore the first two. A
    /// zero already stored at `ct` is accepted and dropped.
    ///
    /// The default stages it through [`Appender::append`] (whose report
    /// then counts a refusal); implementations with an out-of-order
    /// window must override it to keep zeros out of that window. The
    /// TSDB does, and does not count these refusals in the report.
    fn append_created_timestamp(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        ct: i64,
    ) -> Result<SeriesRef> {
        if ct >= t {
            return Err(StorageError::CreatedTimestampNewerThanSample);
        }
        match self.append(r, labels, ct, 0.0) {
            Err(StorageError::OutOfOrder | StorageError::TooOld) => {
                Err(StorageError::CreatedTimestampOutOfOrder)
            }
            other => other,
        }
    }

    /// A hint that the caller will append to series `r` (a ref returned by
    /// an earlier append) in a moment: implementations may start loading
    /// what that append will touch, so a caller that knows its next series
    /// (a scrape loop does: pages keep their order) can hide memory
    /// latency. Never fails and changes nothing visible; an unknown or
    /// stale `r` is ignored. The default does nothing.
    #[inline]
    fn prefetch(&self, r: SeriesRef) {
        let _ = r;
    }

    /// Makes every staged sample durable (per the implementation's WAL
    /// policy) and visible, atomically for readers, and reports what the
    /// batch stored and refused (see [`CommitReport`]). An error (I/O,
    /// closed storage) means nothing of the batch was made visible.
    fn commit(self: Box<Self>) -> Result<CommitReport>;

    /// Discards staged samples.
    fn rollback(self: Box<Self>) -> Result<()>;
}

/// Something that hands out appenders. Shared across tasks.
pub trait Appendable: Send + Sync {
    fn appender(&self) -> Box<dyn Appender>;

    /// True when this storage's appenders know every ref they returned by
    /// themselves and never read `labels` for a valid one (the TSDB): a
    /// caller may then skip keeping labels per series and pass empty ones
    /// with such refs (the scrape loop does, saving about 256 bytes of
    /// RSS per series). The default, false, is right for everything else:
    /// labels come with every append.
    fn resolves_refs(&self) -> bool {
        false
    }
}

/// Hints passed with a select so storage can prune work.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectHints {
    /// Time range actually needed, ms (closed).
    pub start: i64,
    pub end: i64,
    /// Query resolution step, ms (0 for instant queries).
    pub step: i64,
    /// Range of the enclosing range selector, ms (0 if none).
    pub range: i64,
    /// Name of the function that consumes the series, if any.
    pub func: Option<String>,
    /// Only labels are needed (series/labels APIs), no samples.
    pub labels_only: bool,
}

/// A forward iterator over one series' samples in increasing time order.
pub trait SampleIterator: Send {
    /// Advances to the next sample; returns None at the end.
    fn next(&mut self) -> Option<(i64, f64)>;

    /// Advances to the first sample with timestamp >= `t` (never backwards)
    /// and returns it. The default walks `next`.
    fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        while let Some((st, v)) = self.next() {
            if st >= t {
                return Some((st, v));
            }
        }
        None
    }

    /// Appends every remaining sample to `out`, as calling `next` until it
    /// returns None would. Implementations may copy in bulk.
    fn drain_into(&mut self, out: &mut Vec<(i64, f64)>) {
        while let Some(s) = self.next() {
            out.push(s);
        }
    }
}

/// One selected series: its labels and a fresh iterator over its samples
/// restricted to the querier's range.
pub trait Series: Send {
    fn labels(&self) -> &Labels;
    fn iter(&self) -> Box<dyn SampleIterator + '_>;
}

/// A sample iterator over a slice held in memory.
pub struct VecIterator<'a> {
    samples: &'a [(i64, f64)],
    pos: usize,
}

impl<'a> VecIterator<'a> {
    pub fn new(samples: &'a [(i64, f64)]) -> Self {
        VecIterator { samples, pos: 0 }
    }
}

impl SampleIterator for VecIterator<'_> {
    fn next(&mut self) -> Option<(i64, f64)> {
        let s = self.samples.get(self.pos).copied();
        self.pos += 1;
        s
    }

    fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        let rest = &self.samples[self.pos.min(self.samples.len())..];
        let i = rest.partition_point(|s| s.0 < t);
        self.pos += i;
        self.next()
    }

    fn drain_into(&mut self, out: &mut Vec<(i64, f64)>) {
        if let Some(rest) = self.samples.get(self.pos..) {
            out.extend_from_slice(rest);
        }
        self.pos = self.samples.len();
    }
}

/// A series materialised in memory: the simplest [`Series`].
#[derive(Debug, Clone, PartialEq)]
pub struct MemSeries {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

impl Series for MemSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }
    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(VecIterator::new(&self.samples))
    }
}

/// A set of series returned by a select, consumed once.
pub type SeriesSet = Box<dyn Iterator<Item = Result<Box<dyn Series>>> + Send>;

/// A read view over a fixed time range `[mint, maxt]`. It sees a consistent
/// snapshot: no half-committed batch.
pub trait Querier: Send + Sync {
    /// Series matching every matcher (at least one must not match the empty
    /// string for a sensible query; implementations may refuse otherwise).
    /// With `sorted`, series come in label-set order.
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet>;

    /// Sorted, unique values of `name` among series matching `matchers`
    /// (all series when empty) that have samples in range.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>>;

    /// Sorted, unique label names among matching series.
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>>;
}

/// Something that opens queriers. Shared across tasks.
pub trait Queryable: Send + Sync {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>>;
}

/// Both halves, as the binary wires the TSDB into every component.
pub trait Storage: Appendable + Queryable {}
impl<T: Appendable + Queryable> Storage for T {}

/// Shared handle passed to components.
pub type DynStorage = Arc<dyn Storage>;

/// Metric family metadata; lives in the model crate (re-exported here for
/// the crates that always took it from storage).
pub use koban_model::Metadata;

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps the last timestamp per series (ref = index + 1).
    #[derive(Default)]
    struct Last {
        series: Vec<(Labels, i64)>,
        report: CommitReport,
    }

    impl Appender for Last {
        fn append(&mut self, r: SeriesRef, labels: &Labels, t: i64, _v: f64) -> Result<SeriesRef> {
            let i = match self.series.iter().position(|(l, _)| l == labels) {
                Some(i) => i,
                None => {
                    self.series.push((labels.clone(), i64::MIN));
                    self.series.len() - 1
                }
            };
            assert!(r == 0 || r == i as u64 + 1);
            if t <= self.series[i].1 {
                self.report.count_refused(&StorageError::OutOfOrder);
                return Err(StorageError::OutOfOrder);
            }
            self.series[i].1 = t;
            self.report.floats += 1;
            Ok(i as u64 + 1)
        }
        fn commit(self: Box<Self>) -> Result<CommitReport> {
            Ok(self.report)
        }
        fn rollback(self: Box<Self>) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn defaults_refuse_what_is_not_supported_by_name() {
        let mut a = Last::default();
        let l = Labels::from_pairs([("__name__", "h")]);
        let h = Histogram::default();
        let e = a.append_histogram(0, &l, 1, Some(&h), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "native histograms are not supported by Koban yet"
        );
        let e = a.append_exemplar(0, &l, &Exemplar::default()).unwrap_err();
        assert_eq!(e, StorageError::NotSupported(EXEMPLARS_NOT_SUPPORTED));
        let e = a
            .update_metadata(0, &l, &koban_model::Metadata::default())
            .unwrap_err();
        assert_eq!(e, StorageError::NotSupported(METADATA_NOT_SUPPORTED));
    }

    #[test]
    fn created_timestamp_zero_only_before_the_sample_and_the_series_end() {
        let mut a = Box::new(Last::default());
        let l = Labels::from_pairs([("__name__", "c_total")]);
        assert_eq!(
            a.append_created_timestamp(0, &l, 100, 100),
            Err(StorageError::CreatedTimestampNewerThanSample)
        );
        let r = a.append_created_timestamp(0, &l, 100, 50).unwrap();
        a.append(r, &l, 100, 7.0).unwrap();
        // The next scrape: same created timestamp, now behind the series.
        assert_eq!(
            a.append_created_timestamp(r, &l, 200, 50),
            Err(StorageError::CreatedTimestampOutOfOrder)
        );
        let rep = a.commit().unwrap();
        assert_eq!(rep.floats, 2);
        assert_eq!(rep.refused(), 1);
    }

    #[test]
    fn report_counts_the_four_refusal_reasons_only() {
        let mut r = CommitReport::default();
        for e in [
            StorageError::OutOfOrder,
            StorageError::OutOfBounds,
            StorageError::DuplicateSample,
            StorageError::TooOld,
            StorageError::InvalidLabels,
            StorageError::CreatedTimestampOutOfOrder,
        ] {
            r.count_refused(&e);
        }
        assert_eq!(
            (r.out_of_order, r.out_of_bounds, r.duplicate, r.too_old),
            (1, 1, 1, 1)
        );
        let mut sum = CommitReport::default();
        sum.add(&r);
        sum.add(&r);
        assert_eq!(sum.refused(), 8);
    }

    #[test]
    fn vec_iterator_seek_never_goes_back() {
        let s = [(1, 1.0), (5, 2.0), (9, 3.0)];
        let mut it = VecIterator::new(&s);
        assert_eq!(it.seek(4), Some((5, 2.0)));
        assert_eq!(it.seek(0), Some((9, 3.0)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn drain_into_appends_the_rest() {
        let s = [(1, 1.0), (5, 2.0), (9, 3.0)];
        let mut it = VecIterator::new(&s);
        it.next();
        let mut out = vec![(0, 0.0)];
        it.drain_into(&mut out);
        assert_eq!(out, vec![(0, 0.0), (5, 2.0), (9, 3.0)]);
        assert_eq!(it.next(), None);
    }
}
