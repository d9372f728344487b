//! [`koban_storage::Querier`] over one block.

use super::chunk_encoding::DecodeScratch;
use super::tombstones::{covers, is_deleted, Tombstones};
use super::BlockInner;
use crate::index::{postings_for_matchers, ChunkMeta};
use koban_model::{Labels, Matcher};
use koban_storage::{Querier, Result, SampleIterator, SelectHints, Series, SeriesSet};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Reads a block over the closed range `[mint, maxt]`.
pub struct BlockQuerier {
    block: Arc<BlockInner>,
    mint: i64,
    maxt: i64,
    tombstones: Arc<Tombstones>,
}

impl BlockQuerier {
    pub(crate) fn new(block: Arc<BlockInner>, mint: i64, maxt: i64) -> Self {
        let tombstones = block.tombstones.read().clone();
        BlockQuerier {
            block,
            mint,
            maxt,
            tombstones,
        }
    }

    fn in_range(&self) -> bool {
        self.block.meta.overlaps(self.mint, self.maxt)
    }

    /// Matching series with a chunk in range: labels, the chunks in range
    /// and the series' deleted intervals (empty when none). Series whose
    /// chunks in range are wholly deleted are skipped.
    fn for_each_match(
        &self,
        matchers: &[Matcher],
        mut f: impl FnMut(Labels, &[ChunkMeta], &[(i64, i64)]),
    ) -> Result<()> {
        if !self.in_range() {
            return Ok(());
        }
        let ix = &self.block.index;
        let ids = postings_for_matchers(ix, matchers)?;
        let mut metas = Vec::new();
        for id in ids {
            let ls = ix.series_into(id, &mut metas)?;
            metas.retain(|m| m.mint <= self.maxt && m.maxt >= self.mint);
            let deleted = self.tombstones.get(&id).map_or(&[][..], Vec::as_slice);
            if !deleted.is_empty() {
                metas.retain(|m| !covers(deleted, m.mint.max(self.mint), m.maxt.min(self.maxt)));
            }
            if !metas.is_empty() {
                f(ls, &metas, deleted);
            }
        }
        Ok(())
    }
}

impl Querier for BlockQuerier {
    fn select(
        &self,
        _sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet> {
        // Series ids follow label order, so the output is always sorted.
        let (mut mint, mut maxt) = (self.mint, self.maxt);
        if let Some(h) = hints {
            if h.start != 0 || h.end != 0 {
                mint = mint.max(h.start);
                maxt = maxt.min(h.end);
            }
        }
        let mut out: Vec<Result<Box<dyn Series>>> = Vec::new();
        let q = BlockQuerier {
            block: self.block.clone(),
            mint,
            maxt,
            tombstones: self.tombstones.clone(),
        };
        q.for_each_match(matchers, |labels, chunks, deleted| {
            out.push(Ok(Box::new(BlockSeries {
                block: self.block.clone(),
                labels,
                chunks: chunks.to_vec(),
                mint,
                maxt,
                deleted: deleted.to_vec(),
            })));
        })?;
        Ok(Box::new(out.into_iter()))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        if !self.in_range() {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            return Ok(self
                .block
                .index
                .label_values(name)
                .into_iter()
                .map(String::from)
                .collect());
        }
        let mut set = BTreeSet::new();
        self.for_each_match(matchers, |ls, _, _| {
            let v = ls.get(name);
            if !v.is_empty() && !set.contains(v) {
                set.insert(v.to_string());
            }
        })?;
        Ok(set.into_iter().collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        if !self.in_range() {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            return Ok(self
                .block
                .index
                .label_names()
                .into_iter()
                .map(String::from)
                .collect());
        }
        let mut set = BTreeSet::new();
        self.for_each_match(matchers, |ls, _, _| {
            for l in &ls {
                if !set.contains(&l.name) {
                    set.insert(l.name.clone());
                }
            }
        })?;
        Ok(set.into_iter().collect())
    }
}

/// One series of a block, restricted to the querier's range.
pub struct BlockSeries {
    block: Arc<BlockInner>,
    labels: Labels,
    chunks: Vec<ChunkMeta>,
    mint: i64,
    maxt: i64,
    /// Deleted intervals (tombstones), usually empty.
    deleted: Vec<(i64, i64)>,
}

impl Series for BlockSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(BlockSeriesIter {
            s: self,
            maxt: self.maxt,
            next_chunk: 0,
            buf: Vec::new(),
            pos: 0,
            scratch: DecodeScratch::default(),
            done: false,
        })
    }
}

/// Decodes one chunk at a time into a buffer.
struct BlockSeriesIter<'a> {
    s: &'a BlockSeries,
    maxt: i64,
    next_chunk: usize,
    buf: Vec<(i64, f64)>,
    pos: usize,
    scratch: DecodeScratch,
    done: bool,
}

impl BlockSeriesIter<'_> {
    /// Loads the next chunk; false at the end (or on a decode error, which
    /// is logged: the iterator interface has no error path). Kept out of
    /// line so `next` stays small.
    #[inline(never)]
    fn load(&mut self) -> bool {
        let Some(m) = self.s.chunks.get(self.next_chunk) else {
            self.done = true;
            return false;
        };
        self.next_chunk += 1;
        self.buf.clear();
        self.pos = 0;
        if let Err(e) = self
            .s
            .block
            .decode_chunk(m, &mut self.buf, &mut self.scratch)
        {
            tracing::error!(error = %e, series = %self.s.labels, "reading block chunk");
            self.buf.clear();
            self.done = true;
            return false;
        }
        if !self.s.deleted.is_empty() {
            let deleted = &self.s.deleted;
            self.buf.retain(|x| !is_deleted(deleted, x.0));
        }
        self.pos = self.buf.partition_point(|x| x.0 < self.s.mint);
        true
    }
}

impl BlockSeriesIter<'_> {
    #[inline(never)]
    fn next_slow(&mut self) -> Option<(i64, f64)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(&s) = self.buf.get(self.pos) {
                if s.0 > self.maxt {
                    self.done = true;
                    self.buf.clear();
                    return None;
                }
                self.pos += 1;
                return Some(s);
            }
            if !self.load() {
                return None;
            }
        }
    }
}

impl SampleIterator for BlockSeriesIter<'_> {
    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        if let Some(&s) = self.buf.get(self.pos) {
            if s.0 <= self.maxt {
                self.pos += 1;
                return Some(s);
            }
            self.done = true;
            self.buf.clear();
            return None;
        }
        self.next_slow()
    }

    fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        if self.done {
            return None;
        }
        // Skip whole chunks that end before t.
        if self
            .buf
            .get(self.pos..)
            .is_none_or(|r| r.last().is_none_or(|l| l.0 < t))
        {
            while let Some(m) = self.s.chunks.get(self.next_chunk) {
                if m.maxt >= t {
                    break;
                }
                self.next_chunk += 1;
            }
            self.buf.clear();
            self.pos = 0;
        }
        let rest = &self.buf[self.pos..];
        self.pos += rest.partition_point(|x| x.0 < t);
        while let Some(s) = self.next() {
            if s.0 >= t {
                return Some(s);
            }
        }
        None
    }

    fn drain_into(&mut self, out: &mut Vec<(i64, f64)>) {
        loop {
            if self.done {
                return;
            }
            let rest = self.buf.get(self.pos..).unwrap_or(&[]);
            if !rest.is_empty() {
                let n = rest.partition_point(|x| x.0 <= self.maxt);
                out.extend_from_slice(&rest[..n]);
                if n < rest.len() {
                    self.done = true;
                    self.buf.clear();
                    return;
                }
                self.pos = self.buf.len();
            }
            if !self.s.deleted.is_empty() {
                if !self.load() {
                    return;
                }
                continue;
            }
            // No tombstones: decode straight into `out` and trim to range.
            let Some(m) = self.s.chunks.get(self.next_chunk) else {
                self.done = true;
                return;
            };
            self.next_chunk += 1;
            let start = out.len();
            if let Err(e) = self.s.block.decode_chunk(m, out, &mut self.scratch) {
                tracing::error!(error = %e, series = %self.s.labels, "reading block chunk");
                out.truncate(start);
                self.done = true;
                return;
            }
            let lo = out[start..].partition_point(|x| x.0 < self.s.mint);
            if lo > 0 {
                out.drain(start..start + lo);
            }
            let hi = out[start..].partition_point(|x| x.0 <= self.maxt);
            if start + hi < out.len() {
                out.truncate(start + hi);
                self.done = true;
                return;
            }
        }
    }
}
