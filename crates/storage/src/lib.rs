//! The storage contract between Koban's producers (scrape, rules, remote
//! write) and consumers (PromQL, federation, the HTTP API) and its
//! implementations (the TSDB, remote read). Nothing here does I/O.
//!
//! Timestamps are milliseconds since the Unix epoch. Time ranges are closed:
//! `[mint, maxt]`.

use koban_model::{Labels, Matcher};
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
    #[error("storage is read-only or closed")]
    Closed,
    #[error("query canceled")]
    Canceled,
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Staged writes for one batch (one scrape, one rule evaluation). Nothing is
/// visible to queries until [`Appender::commit`] returns Ok; [`Appender::rollback`]
/// (or dropping the appender) discards the batch.
///
/// The caller owns the appender and uses it from one task.
pub trait Appender: Send {
    /// Stages one float sample. `r` is a ref returned by an earlier append of
    /// the same series (or 0); when it is valid `labels` is not read. Returns
    /// the series ref to pass next time.
    ///
    /// Fails per sample with `OutOfOrder`, `DuplicateSample`, `OutOfBounds`
    /// or `InvalidLabels`; the batch stays usable.
    fn append(&mut self, r: SeriesRef, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef>;

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
    /// policy) and visible, atomically for readers.
    fn commit(self: Box<Self>) -> Result<()>;

    /// Discards staged samples.
    fn rollback(self: Box<Self>) -> Result<()>;
}

/// Something that hands out appenders. Shared across tasks.
pub trait Appendable: Send + Sync {
    fn appender(&self) -> Box<dyn Appender>;
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

/// Metadata of a metric family as scraped (HELP/TYPE/UNIT).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Metadata {
    pub metric_type: String,
    pub help: String,
    pub unit: String,
}

#[cfg(test)]
mod tests {
    use super::*;

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
