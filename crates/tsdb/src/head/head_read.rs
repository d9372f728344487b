//! Reading the head: matcher evaluation over the in-memory postings and
//! snapshotting series chunks for queriers.

use super::postings::{intersect, union, MemPostings};
use super::symbols::{lset_get, pairs, SymbolTable};
use super::{Head, HeadInner, MemSeries};
use crate::chunkenc::XorIter;
use koban_model::{Labels, MatchType, Matcher};
use koban_storage::{Querier, SampleIterator, SelectHints, Series, SeriesSet, StorageError};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A read view of the head over `[mint, maxt]`.
///
/// Isolation: the querier registers the commit sequence at creation and
/// hides, per series, samples of every commit newer than that, so commits
/// that land while a query runs are invisible to all of its selects. Drop
/// queriers when done: an open querier makes series keep commit history.
pub struct HeadQuerier {
    head: Head,
    mint: i64,
    maxt: i64,
    /// The asked mint: out-of-order samples are not hidden below the
    /// truncation point (they reach blocks only at the next head cut).
    ooo_mint: i64,
    watermark: u64,
}

impl HeadQuerier {
    pub fn new(head: Head, mint: i64, maxt: i64) -> Self {
        let watermark = {
            // Registered under the lock commits read it with, so no commit
            // trims history this querier needs.
            let mut r = head.inner.readers.lock();
            let w = head.inner.commit_seq.load(Ordering::Acquire);
            *r.entry(w).or_insert(0) += 1;
            w
        };
        // Data before the truncation point belongs to blocks (whole chunks
        // may linger in memory): hide it, as Prometheus does.
        let ooo_mint = mint;
        let mint = mint.max(head.inner.min_valid_time.load(Ordering::Acquire));
        HeadQuerier {
            head,
            mint,
            maxt,
            ooo_mint,
            watermark,
        }
    }

    /// Snapshots the matching series with data in range.
    pub fn select_series(&self, sorted: bool, matchers: &[Matcher]) -> Vec<HeadSeries> {
        let inner = &self.head.inner;
        let _g = inner.commit_lock.read();
        let ids = matching_ids(inner, matchers);
        let syms = inner.symbols.read();
        let mut out = Vec::with_capacity(ids.len());
        for slot in ids {
            let Some(s) = inner.series_by_slot(slot) else {
                continue;
            };
            if let Some(hs) = self.snapshot(&syms, &s) {
                out.push(hs);
            }
        }
        drop(syms);
        if sorted {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        out
    }

    fn snapshot(&self, syms: &SymbolTable, s: &MemSeries) -> Option<HeadSeries> {
        let d = s.data.lock();
        let mut ooo = Vec::new();
        if let Some(o) = d.ooo() {
            o.visible(self.ooo_mint, self.maxt, self.watermark, &mut ooo);
        }
        let limit = self.maxt.min(d.commits.visible_until(self.watermark));
        if limit < self.mint && ooo.is_empty() {
            return None;
        }
        let mut chunks = Vec::new();
        for c in d.closed.iter() {
            if c.max_t >= self.mint && c.min_t <= limit {
                chunks.push(ChunkRef {
                    min_t: c.min_t,
                    max_t: c.max_t,
                    data: c.data.clone(),
                });
            }
        }
        let h = &d.head;
        if h.num_samples() > 0 && h.max_time() >= self.mint && h.min_time() <= limit {
            chunks.push(ChunkRef {
                min_t: h.min_time(),
                max_t: h.max_time(),
                data: Arc::from(h.bytes()),
            });
        }
        drop(d);
        if chunks.is_empty() && ooo.is_empty() {
            return None;
        }
        Some(HeadSeries {
            labels: syms.resolve(&s.lset),
            chunks,
            mint: self.mint,
            maxt: limit,
            ooo,
        })
    }

    fn overlaps_head(&self) -> bool {
        let h = &self.head;
        let min = h.min_time().min(h.ooo_min_time());
        min <= self.maxt && h.max_time() >= self.ooo_mint
    }
}

impl Drop for HeadQuerier {
    fn drop(&mut self) {
        let mut r = self.head.inner.readers.lock();
        if let Some(c) = r.get_mut(&self.watermark) {
            *c -= 1;
            if *c == 0 {
                r.remove(&self.watermark);
            }
        }
    }
}

/// Series slots (sorted) matching every matcher.
pub(crate) fn matching_ids(inner: &HeadInner, matchers: &[Matcher]) -> Vec<u32> {
    let syms = inner.symbols.read();
    let p = inner.postings.read();
    let mut cand: Option<Vec<u32>> = None;
    let mut filters: Vec<&Matcher> = Vec::new();
    // Narrowing matchers (not matching "") select via postings; the others
    // filter the candidates by label value.
    for m in matchers {
        if m.matches_empty() {
            filters.push(m);
            continue;
        }
        let ids = postings_for(&syms, &p, m);
        let next = match cand {
            None => ids,
            Some(c) => intersect(&c, &ids),
        };
        if next.is_empty() {
            return next;
        }
        cand = Some(next);
    }
    drop(p);
    let ids = match cand {
        Some(c) => c,
        None => {
            drop(syms);
            let all = inner.all_slots();
            return filter_ids(inner, &inner.symbols.read(), all, &filters);
        }
    };
    filter_ids(inner, &syms, ids, &filters)
}

fn filter_ids(
    inner: &HeadInner,
    syms: &SymbolTable,
    mut ids: Vec<u32>,
    filters: &[&Matcher],
) -> Vec<u32> {
    if filters.is_empty() {
        return ids;
    }
    let names: Vec<Option<u32>> = filters.iter().map(|m| syms.lookup(&m.name)).collect();
    ids.retain(|&id| {
        let Some(s) = inner.series_by_slot(id) else {
            return false;
        };
        filters.iter().zip(&names).all(|(m, name)| {
            let v = name
                .and_then(|n| lset_get(&s.lset, n))
                .and_then(|v| syms.get(v))
                .unwrap_or("");
            m.matches(v)
        })
    });
    ids
}

fn postings_for(syms: &SymbolTable, p: &MemPostings, m: &Matcher) -> Vec<u32> {
    let Some(name) = syms.lookup(&m.name) else {
        return Vec::new();
    };
    match m.kind {
        MatchType::Equal => syms
            .lookup(&m.value)
            .map_or_else(Vec::new, |v| p.get(name, v).to_vec()),
        MatchType::Regex if m.set_matches().is_some() => {
            let lists = m
                .set_matches()
                .unwrap_or_default()
                .iter()
                .filter_map(|s| syms.lookup(s))
                .map(|v| p.get(name, v))
                .collect();
            union(lists)
        }
        _ => union(
            p.values(name)
                .filter(|(v, _)| syms.get(*v).is_some_and(|s| m.matches(s)))
                .map(|(_, l)| l)
                .collect(),
        ),
    }
}

impl Querier for HeadQuerier {
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet, StorageError> {
        let _ = hints;
        let v = self.select_series(sorted, matchers);
        Ok(Box::new(
            v.into_iter().map(|s| Ok(Box::new(s) as Box<dyn Series>)),
        ))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if !self.overlaps_head() {
            return Ok(Vec::new());
        }
        let inner = &self.head.inner;
        let mut out: Vec<String> = if matchers.is_empty() {
            let syms = inner.symbols.read();
            let Some(n) = syms.lookup(name) else {
                return Ok(Vec::new());
            };
            let p = inner.postings.read();
            p.values(n)
                .filter_map(|(v, _)| syms.get(v))
                .map(str::to_string)
                .collect()
        } else {
            let ids = matching_ids(inner, matchers);
            let syms = inner.symbols.read();
            let Some(n) = syms.lookup(name) else {
                return Ok(Vec::new());
            };
            let mut vals: Vec<u32> = ids
                .iter()
                .filter_map(|&id| inner.series_by_slot(id))
                .filter_map(|s| lset_get(&s.lset, n))
                .collect();
            vals.sort_unstable();
            vals.dedup();
            vals.into_iter()
                .filter_map(|v| syms.get(v))
                .map(str::to_string)
                .collect()
        };
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if !self.overlaps_head() {
            return Ok(Vec::new());
        }
        let inner = &self.head.inner;
        let mut out: Vec<String> = if matchers.is_empty() {
            let syms = inner.symbols.read();
            let p = inner.postings.read();
            p.names()
                .filter_map(|n| syms.get(n))
                .map(str::to_string)
                .collect()
        } else {
            let ids = matching_ids(inner, matchers);
            let mut names: Vec<u32> = ids
                .iter()
                .filter_map(|&id| inner.series_by_slot(id))
                .flat_map(|s| pairs(&s.lset).map(|p| p.0).collect::<Vec<_>>())
                .collect();
            names.sort_unstable();
            names.dedup();
            let syms = inner.symbols.read();
            names
                .into_iter()
                .filter_map(|n| syms.get(n))
                .map(str::to_string)
                .collect()
        };
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[derive(Debug, Clone)]
struct ChunkRef {
    min_t: i64,
    max_t: i64,
    data: Arc<[u8]>,
}

/// A snapshot of one head series restricted to the querier's range.
#[derive(Debug, Clone)]
pub struct HeadSeries {
    labels: Labels,
    chunks: Vec<ChunkRef>,
    mint: i64,
    maxt: i64,
    /// Out-of-order samples in range, sorted (empty for most series).
    ooo: Vec<(i64, f64)>,
}

impl HeadSeries {
    /// Number of chunks in the snapshot.
    pub fn num_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// The encoded XOR chunks (min_t, max_t, bytes) of the snapshot; the
    /// samples outside the querier's range are not filtered out here.
    /// Out-of-order samples are not in these chunks (see
    /// [`HeadSeries::ooo_samples`]).
    pub fn chunks(&self) -> impl Iterator<Item = (i64, i64, &[u8])> {
        self.chunks.iter().map(|c| (c.min_t, c.max_t, &c.data[..]))
    }
}

impl HeadSeries {
    /// The out-of-order samples of the snapshot in range, sorted.
    pub fn ooo_samples(&self) -> &[(i64, f64)] {
        &self.ooo
    }
}

impl Series for HeadSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        let it = HeadChunkIterator {
            chunks: &self.chunks,
            idx: 0,
            cur: None,
            mint: self.mint,
            maxt: self.maxt,
        };
        if self.ooo.is_empty() {
            Box::new(it)
        } else {
            Box::new(OooMergeIterator {
                inner: it,
                peek: None,
                started: false,
                ooo: &self.ooo,
                idx: 0,
            })
        }
    }
}

/// Merges a series' in-order samples with its out-of-order ones by
/// timestamp (an in-order sample wins a tie).
struct OooMergeIterator<'a> {
    inner: HeadChunkIterator<'a>,
    peek: Option<(i64, f64)>,
    started: bool,
    ooo: &'a [(i64, f64)],
    idx: usize,
}

impl SampleIterator for OooMergeIterator<'_> {
    fn next(&mut self) -> Option<(i64, f64)> {
        if !self.started {
            self.started = true;
            self.peek = self.inner.next();
        }
        let o = self.ooo.get(self.idx).copied();
        match (self.peek, o) {
            (Some(a), Some(b)) if b.0 < a.0 => {
                self.idx += 1;
                Some(b)
            }
            (Some(a), b) => {
                if b.is_some_and(|b| b.0 == a.0) {
                    self.idx += 1;
                }
                self.peek = self.inner.next();
                Some(a)
            }
            (None, b) => {
                self.idx += usize::from(b.is_some());
                b
            }
        }
    }

    fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        if !self.started || self.peek.is_some_and(|p| p.0 < t) {
            self.started = true;
            self.peek = self.inner.seek(t);
        }
        self.idx += self.ooo[self.idx.min(self.ooo.len())..].partition_point(|s| s.0 < t);
        self.next()
    }
}

/// Iterates the samples of a [`HeadSeries`] within its range.
pub struct HeadChunkIterator<'a> {
    chunks: &'a [ChunkRef],
    idx: usize,
    cur: Option<XorIter<&'a [u8]>>,
    mint: i64,
    maxt: i64,
}

impl SampleIterator for HeadChunkIterator<'_> {
    fn next(&mut self) -> Option<(i64, f64)> {
        loop {
            if let Some(it) = &mut self.cur {
                match it.next() {
                    Some((t, v)) => {
                        if t < self.mint {
                            continue;
                        }
                        if t > self.maxt {
                            self.cur = None;
                            self.idx = self.chunks.len();
                            return None;
                        }
                        return Some((t, v));
                    }
                    None => self.cur = None,
                }
            }
            let c = self.chunks.get(self.idx)?;
            self.idx += 1;
            self.cur = Some(XorIter::new(&c.data[..]));
        }
    }

    /// Chunks wholly inside the range are decoded in bulk; a partly read
    /// chunk and the chunks at the range's edges go sample by sample.
    fn drain_into(&mut self, out: &mut Vec<(i64, f64)>) {
        loop {
            if self.cur.is_none() {
                let Some(c) = self.chunks.get(self.idx) else {
                    return;
                };
                if self.mint <= c.min_t && c.max_t <= self.maxt {
                    self.idx += 1;
                    XorIter::new(&c.data[..]).drain_into(out);
                    continue;
                }
            }
            match self.next() {
                Some(s) => out.push(s),
                None => return,
            }
        }
    }

    fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        // Skip whole chunks that end before `t`.
        let cur_ends_before =
            self.idx > 0 && self.chunks.get(self.idx - 1).is_some_and(|c| c.max_t < t);
        if self.cur.is_none() || cur_ends_before {
            self.cur = None;
            while self.chunks.get(self.idx).is_some_and(|c| c.max_t < t) {
                self.idx += 1;
            }
        }
        while let Some((st, v)) = self.next() {
            if st >= t {
                return Some((st, v));
            }
        }
        None
    }
}
