//! Per-target series cache: maps the raw series text of a page line
//! (`name{labels}` exactly as written) to the storage ref, so a series seen
//! before costs one hash lookup and no label parsing. Also the source of
//! staleness: a series seen in the previous scrape but not in this one gets
//! a stale marker.

use koban_storage::SeriesRef;
use rustc_hash::FxHashMap;

/// What the cache knows about one series of the page.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Storage ref; 0 when the series is dropped by metric relabelling.
    pub r: SeriesRef,
    /// Scrape iteration in which the series was last seen.
    pub last_iter: u64,
    /// Dropped by `metric_relabel_configs`: skip without appending.
    pub dropped: bool,
    /// The page gave an explicit timestamp: no staleness tracking (as Prometheus).
    pub explicit_ts: bool,
}

/// The cache of one scrape loop, owned by it.
#[derive(Default)]
pub struct SeriesCache {
    map: FxHashMap<Box<[u8]>, Entry>,
    iter: u64,
}

impl SeriesCache {
    /// Starts a scrape iteration; returns its number.
    pub fn begin(&mut self) -> u64 {
        self.iter += 1;
        self.iter
    }

    pub fn iter(&self) -> u64 {
        self.iter
    }

    #[inline]
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.map.get_mut(key)
    }

    pub fn insert(&mut self, key: &[u8], e: Entry) {
        self.map.insert(key.into(), e);
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
    pub fn end(&mut self, mut stale: impl FnMut(&[u8], SeriesRef)) {
        let cur = self.iter;
        self.map.retain(|k, e| {
            if e.last_iter == cur {
                return true;
            }
            if !e.dropped && !e.explicit_ts && e.last_iter + 1 == cur {
                stale(k, e.r);
            }
            false
        });
    }

    /// Calls `stale` for every series seen in the last iteration, then
    /// empties the cache: for a failed scrape or a target that went away.
    pub fn all_stale(&mut self, mut stale: impl FnMut(&[u8], SeriesRef)) {
        let cur = self.iter;
        for (k, e) in self.map.iter() {
            if !e.dropped && !e.explicit_ts && e.last_iter + 1 >= cur {
                stale(k, e.r);
            }
        }
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vanished_series_go_stale_once() {
        let mut c = SeriesCache::default();
        let i = c.begin();
        c.insert(
            b"a",
            Entry {
                r: 1,
                last_iter: i,
                dropped: false,
                explicit_ts: false,
            },
        );
        c.insert(
            b"b",
            Entry {
                r: 2,
                last_iter: i,
                dropped: false,
                explicit_ts: false,
            },
        );
        c.end(|_, _| panic!("nothing stale yet"));
        let i = c.begin();
        c.get_mut(b"a").unwrap().last_iter = i;
        let mut stale = vec![];
        c.end(|k, r| stale.push((k.to_vec(), r)));
        assert_eq!(stale, vec![(b"b".to_vec(), 2)]);
        c.begin();
        c.end(|k, _| assert_eq!(k, b"a"));
        assert!(c.is_empty());
    }
}
