//! Per-target series cache: maps the raw series text of a page line
//! (`name{labels}` exactly as written) to the storage ref, so a series seen
//! before costs one hash lookup and no label parsing. Also the source of
//! staleness: a series seen in the previous scrape but not in this one gets
//! a stale marker.
//!
//! Keys are the 128-bit xxh3 hash of the series text, not the text itself:
//! 16 bytes per series instead of ~60 plus an allocation, and no key
//! comparison on lookup. Two different series of one target colliding in
//! 128 bits is not a practical concern (about 2^-100 for 10^4 series).

use koban_storage::SeriesRef;
use rustc_hash::FxHashMap;

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

/// The cache of one scrape loop, owned by it.
#[derive(Default)]
pub struct SeriesCache {
    map: FxHashMap<u128, Entry>,
    iter: u32,
}

impl SeriesCache {
    /// Starts a scrape iteration; returns its number.
    pub fn begin(&mut self) -> u32 {
        self.iter += 1;
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

    #[inline]
    pub fn get_mut(&mut self, key: u128) -> Option<&mut Entry> {
        self.map.get_mut(&key)
    }

    pub fn insert(&mut self, key: u128, e: Entry) {
        self.map.insert(key, e);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Ends a successful iteration: calls `stale` for each series seen in the
    /// previous iteration but not this one (and not dropped, and without an
    /// explicit timestamp), then forgets them.
    pub fn end(&mut self, mut stale: impl FnMut(SeriesRef)) {
        let cur = self.iter;
        self.map.retain(|_, e| {
            if e.last_iter == cur {
                return true;
            }
            if !e.dropped && !e.explicit_ts && e.last_iter + 1 == cur {
                stale(e.r);
            }
            false
        });
    }

    /// Calls `stale` for every series seen in the last iteration, then
    /// empties the cache: for a failed scrape or a target that went away.
    pub fn all_stale(&mut self, mut stale: impl FnMut(SeriesRef)) {
        let cur = self.iter;
        for e in self.map.values() {
            if !e.dropped && !e.explicit_ts && e.last_iter + 1 >= cur {
                stale(e.r);
            }
        }
        self.map.clear();
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

    #[test]
    fn vanished_series_go_stale_once() {
        let mut c = SeriesCache::default();
        let i = c.begin();
        let (a, b) = (SeriesCache::key(b"a"), SeriesCache::key(b"b"));
        c.insert(a, entry(1, i));
        c.insert(b, entry(2, i));
        c.end(|_| panic!("nothing stale yet"));
        let i = c.begin();
        c.get_mut(a).unwrap().last_iter = i;
        let mut stale = vec![];
        c.end(|r| stale.push(r));
        assert_eq!(stale, vec![2]);
        c.begin();
        c.end(|r| assert_eq!(r, 1));
        assert!(c.is_empty());
    }
}
