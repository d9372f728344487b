//! Per-target series cache: maps the raw series text of a page line
//! (`name{labels}` exactly as written) to the storage ref, so a series seen
//! before costs one comparison and no label parsing. Also the source of
//! staleness: a series seen in the previous scrape but not in this one gets
//! a stale marker.
//!
//! Keys are the 128-bit xxh3 hash of the series text, not the text itself:
//! 16 bytes per series instead of ~60 plus an allocation, and no key
//! comparison on lookup. Two different series of one target colliding in
//! 128 bits is not a practical concern (about 2^-100 for 10^4 series).
//!
//! Layout, for a small footprint and cache-friendly scrapes: the entries
//! are kept in the order of the last page (pages rarely change order), so
//! the usual lookup is a comparison with the entry after the previous hit,
//! a sequential walk the CPU prefetches. Other lookups binary-search a
//! sorted index of positions (4 bytes per series); series first seen in
//! the current scrape sit in a small side map until the scrape ends, when
//! the entries are put in page order again if anything changed.
//!
//! Labels: the storage contract passes each series' labels with every
//! append (see `koban_storage::Appender`), so a cache made
//! [`SeriesCache::with_labels`] keeps them (after relabelling), built once
//! when the series is first seen, in a side map by key. Towards storage
//! that resolves its refs itself (the TSDB, `Appendable::resolves_refs`)
//! the cache keeps none: that would cost about 256 bytes per series (52 ->
//! 76 MiB RSS for 101,400 series, shared/bench/ingest.sh koban 200 5 120)
//! for labels the TSDB never reads. The slots stay 32 bytes either way.

use koban_model::Labels;
use koban_storage::SeriesRef;
use rustc_hash::FxHashMap;

/// What [`SeriesCache::labels`] returns for a series without kept labels.
static NO_LABELS: Labels = Labels::empty();

/// What the cache knows about one series of the page.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Storage ref; 0 when the series is dropped by metric relabelling.
    pub r: SeriesRef,
    /// Scrape iteration in which the series was last seen.
    pub last_iter: u32,
    /// Dropped by `metric_relabel_configs`: skip without appending.
    pub dropped: bool,
    /// The page gave an explicit timestamp: no staleness tracking (as Prometheus).
    pub explicit_ts: bool,
}

const DROPPED: u32 = 1 << 31;
const EXPLICIT_TS: u32 = 1 << 30;
const SEQ_MASK: u32 = EXPLICIT_TS - 1;

/// One cached series: 32 bytes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: u128,
    r: SeriesRef,
    last_iter: u32,
    /// Position on the last page that had it (low 30 bits) and the
    /// `DROPPED` / `EXPLICIT_TS` flags.
    meta: u32,
}

impl Slot {
    fn entry(&self) -> Entry {
        Entry {
            r: self.r,
            last_iter: self.last_iter,
            dropped: self.meta & DROPPED != 0,
            explicit_ts: self.meta & EXPLICIT_TS != 0,
        }
    }
}

/// A found series: its position in the cache, valid until the next
/// [`SeriesCache::insert`], [`SeriesCache::end`] or [`SeriesCache::all_stale`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos(u32);

/// The cache of one scrape loop, owned by it.
#[derive(Default)]
pub struct SeriesCache {
    /// In the order of the last page, then series added this scrape.
    slots: Vec<Slot>,
    /// Positions of `slots[..sorted.len()]`, sorted by key.
    sorted: Vec<u32>,
    /// Series added this scrape: key -> position (beyond `sorted.len()`).
    added: FxHashMap<u128, u32>,
    /// Where the next sample of the page is expected.
    cursor: usize,
    /// Samples looked up this scrape (the page position of the next one).
    seq: u32,
    /// Some lookup missed the expected position this scrape.
    reordered: bool,
    iter: u32,
    /// Keep each series' labels (see the module docs).
    keep_labels: bool,
    /// The labels of every cached, not dropped series, by key, when
    /// `keep_labels`.
    labels: FxHashMap<u128, Labels>,
}

impl SeriesCache {
    /// A cache that keeps each series' labels, for appenders that need
    /// them on every append (see the module docs).
    pub fn with_labels() -> Self {
        SeriesCache {
            keep_labels: true,
            ..SeriesCache::default()
        }
    }

    /// Starts a scrape iteration; returns its number.
    pub fn begin(&mut self) -> u32 {
        self.iter += 1;
        self.cursor = 0;
        self.seq = 0;
        self.reordered = false;
        self.iter
    }

    pub fn iter(&self) -> u32 {
        self.iter
    }

    /// The cache key of a series text.
    #[inline]
    pub fn key(series: &[u8]) -> u128 {
        xxhash_rust::xxh3::xxh3_128(series)
    }

    /// Finds the series with `key`, as the next series of the page (call
    /// once per page line, in page order).
    #[inline]
    pub fn lookup(&mut self, key: u128) -> Option<Pos> {
        let seq = self.seq;
        self.seq = self.seq.saturating_add(1);
        let pos = match self.slots.get(self.cursor) {
            Some(s) if s.key == key && self.cursor < self.sorted.len() => self.cursor,
            _ => {
                self.reordered = true;
                self.find(key)?
            }
        };
        self.cursor = pos + 1;
        let s = &mut self.slots[pos];
        s.meta = (s.meta & !SEQ_MASK) | seq.min(SEQ_MASK);
        Some(Pos(pos as u32))
    }

    /// The storage ref of the series expected `d` lines after the next
    /// one, if the page keeps the last page's order (a prefetch hint for
    /// the storage; 0 when unknown or dropped).
    #[inline]
    pub fn ahead(&self, d: usize) -> SeriesRef {
        let i = self.cursor + d;
        match self.slots.get(i) {
            Some(s) if i < self.sorted.len() => s.r,
            _ => 0,
        }
    }

    fn find(&self, key: u128) -> Option<usize> {
        let slots = &self.slots;
        if let Ok(i) = self
            .sorted
            .binary_search_by(|&p| slots[p as usize].key.cmp(&key))
        {
            return Some(self.sorted[i] as usize);
        }
        self.added.get(&key).map(|&p| p as usize)
    }

    /// The entry at `p`.
    #[inline]
    pub fn get(&self, p: Pos) -> Entry {
        self.slots[p.0 as usize].entry()
    }

    /// The labels of the entry at `p`: empty when it is dropped or the
    /// cache keeps no labels.
    #[inline]
    pub fn labels(&self, p: Pos) -> &Labels {
        self.labels_of(self.slots[p.0 as usize].key)
    }

    #[inline]
    fn labels_of(&self, key: u128) -> &Labels {
        if !self.keep_labels {
            return &NO_LABELS;
        }
        self.labels.get(&key).unwrap_or(&NO_LABELS)
    }

    /// Marks the entry at `p` as seen in the current iteration.
    #[inline]
    pub fn touch(&mut self, p: Pos) {
        self.slots[p.0 as usize].last_iter = self.iter;
    }

    /// Updates the storage ref of the entry at `p`.
    pub fn set_ref(&mut self, p: Pos, r: SeriesRef) {
        self.slots[p.0 as usize].r = r;
    }

    /// Adds a series not found by [`SeriesCache::lookup`] (called right
    /// after that lookup, for the same page line) with its labels (empty
    /// for a dropped one; not kept unless [`SeriesCache::with_labels`]).
    pub fn insert(&mut self, key: u128, e: Entry, labels: Labels) {
        if self.keep_labels && !labels.is_empty() {
            self.labels.insert(key, labels);
        }
        let mut meta = self.seq.saturating_sub(1).min(SEQ_MASK);
        if e.dropped {
            meta |= DROPPED;
        }
        if e.explicit_ts {
            meta |= EXPLICIT_TS;
        }
        self.added.insert(key, self.slots.len() as u32);
        self.slots.push(Slot {
            key,
            r: e.r,
            last_iter: e.last_iter,
            meta,
        });
        self.reordered = true;
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Ends a successful iteration: calls `stale` with the ref and labels
    /// of each series seen in the previous iteration but not this one (and
    /// not dropped, and without an explicit timestamp), then forgets them.
    pub fn end(&mut self, mut stale: impl FnMut(SeriesRef, &Labels)) {
        let cur = self.iter;
        let mut gone = false;
        for s in &self.slots {
            if s.last_iter != cur {
                gone = true;
                if s.meta & (DROPPED | EXPLICIT_TS) == 0 && s.last_iter.wrapping_add(1) == cur {
                    stale(s.r, self.labels_of(s.key));
                }
            }
        }
        if gone && self.keep_labels {
            for s in &self.slots {
                if s.last_iter != cur {
                    self.labels.remove(&s.key);
                }
            }
        }
        if gone || self.reordered {
            self.slots.retain(|s| s.last_iter == cur);
            self.slots.sort_unstable_by_key(|s| s.meta & SEQ_MASK);
            self.reindex();
        }
    }

    /// Rebuilds the sorted index and drops spare capacity.
    fn reindex(&mut self) {
        if self.slots.capacity() > self.slots.len() + self.slots.len() / 8 + 4 {
            self.slots.shrink_to_fit();
        }
        let slots = &self.slots;
        self.sorted.clear();
        self.sorted.extend(0..slots.len() as u32);
        self.sorted.sort_unstable_by_key(|&p| slots[p as usize].key);
        if self.sorted.capacity() > self.sorted.len() + self.sorted.len() / 8 + 4 {
            self.sorted.shrink_to_fit();
        }
        // The side map is only needed within a scrape; don't keep its table.
        self.added = FxHashMap::default();
    }

    /// Calls `stale` with the ref and labels of every series seen in the
    /// last iteration, then empties the cache: for a failed scrape or a
    /// target that went away.
    pub fn all_stale(&mut self, mut stale: impl FnMut(SeriesRef, &Labels)) {
        let cur = self.iter;
        for s in &self.slots {
            if s.meta & (DROPPED | EXPLICIT_TS) == 0 && s.last_iter.wrapping_add(1) >= cur {
                stale(s.r, self.labels_of(s.key));
            }
        }
        *self = SeriesCache {
            iter: self.iter,
            keep_labels: self.keep_labels,
            ..SeriesCache::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(r: SeriesRef, last_iter: u32) -> Entry {
        Entry {
            r,
            last_iter,
            dropped: false,
            explicit_ts: false,
        }
    }

    /// One scrape of `page` (series names); returns refs found (0: new, inserted with ref = name index + 1).
    fn scrape(c: &mut SeriesCache, page: &[&str]) -> (Vec<SeriesRef>, Vec<SeriesRef>) {
        let i = c.begin();
        let mut found = vec![];
        for (n, s) in page.iter().enumerate() {
            let k = SeriesCache::key(s.as_bytes());
            match c.lookup(k) {
                Some(p) => {
                    assert_ne!(c.get(p).last_iter, i, "duplicate {s}");
                    c.touch(p);
                    found.push(c.get(p).r);
                }
                None => {
                    c.insert(
                        k,
                        entry(100 + n as u64, i),
                        Labels::from_pairs([("__name__", *s)]),
                    );
                    found.push(0);
                }
            }
        }
        let mut stale = vec![];
        c.end(|r, _| stale.push(r));
        (found, stale)
    }

    #[test]
    fn vanished_series_go_stale_once() {
        let mut c = SeriesCache::default();
        let i = c.begin();
        let (a, b) = (SeriesCache::key(b"a"), SeriesCache::key(b"b"));
        assert!(c.lookup(a).is_none());
        c.insert(a, entry(1, i), Labels::empty());
        assert!(c.lookup(b).is_none());
        c.insert(b, entry(2, i), Labels::empty());
        c.end(|_, _| panic!("nothing stale yet"));
        c.begin();
        let p = c.lookup(a).unwrap();
        c.touch(p);
        let mut stale = vec![];
        c.end(|r, _| stale.push(r));
        assert_eq!(stale, vec![2]);
        c.begin();
        c.end(|r, _| assert_eq!(r, 1));
        assert!(c.is_empty());
    }

    #[test]
    fn order_changes_keep_every_series() {
        let mut c = SeriesCache::default();
        let (f, s) = scrape(&mut c, &["a", "b", "c", "d"]);
        assert_eq!((f, s), (vec![0, 0, 0, 0], vec![]));
        let (f, _) = scrape(&mut c, &["a", "b", "c", "d"]);
        assert_eq!(f, vec![100, 101, 102, 103]);
        // Inserted in the middle, reordered, one gone.
        let (f, s) = scrape(&mut c, &["d", "x", "b", "a"]);
        assert_eq!(f, vec![103, 0, 101, 100]);
        assert_eq!(s, vec![102]);
        let (f, s) = scrape(&mut c, &["d", "x", "b", "a"]);
        assert_eq!(f, vec![103, 101, 101, 100]);
        assert!(s.is_empty());
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn labels_are_kept_only_when_asked_and_forgotten_with_the_series() {
        let mut c = SeriesCache::with_labels();
        scrape(&mut c, &["a", "b"]);
        let i = c.begin();
        let p = c.lookup(SeriesCache::key(b"a")).unwrap();
        c.touch(p);
        assert_eq!(c.labels(p).metric_name(), "a");
        assert_eq!(c.get(p).last_iter, i);
        let mut stale = vec![];
        c.end(|r, l| stale.push((r, l.metric_name().to_string())));
        assert_eq!(stale, vec![(101, "b".to_string())]);
        assert_eq!(c.labels.len(), 1);
        let mut all = vec![];
        c.begin();
        c.all_stale(|_, l| all.push(l.metric_name().to_string()));
        assert_eq!(all, vec!["a"]);
        assert!(c.labels.is_empty() && c.keep_labels);

        let mut c = SeriesCache::default();
        scrape(&mut c, &["a"]);
        c.begin();
        let p = c.lookup(SeriesCache::key(b"a")).unwrap();
        assert!(c.labels(p).is_empty());
        assert!(c.labels.is_empty());
    }

    #[test]
    fn duplicates_are_found_within_a_scrape() {
        let mut c = SeriesCache::default();
        let i = c.begin();
        let k = SeriesCache::key(b"a");
        assert!(c.lookup(k).is_none());
        c.insert(k, entry(1, i), Labels::empty());
        let p = c.lookup(k).expect("a series added this scrape is found");
        assert_eq!(c.get(p).last_iter, i);
        c.end(|_, _| {});
        let i = c.begin();
        let p = c.lookup(k).unwrap();
        c.touch(p);
        let p = c.lookup(k).unwrap();
        assert_eq!(c.get(p).last_iter, i);
    }
}
