//! Compaction: merging blocks ([`compact`]), choosing what to merge
//! ([`plan`]) and retention ([`blocks_beyond_retention`]).

use crate::block::{Block, BlockCompaction, BlockError, BlockMeta, BlockWriter};
use koban_model::Labels;
use std::path::Path;

/// The smallest block range: blocks cut from the head or backfilled cover 2h.
pub const MIN_BLOCK_RANGE_MS: i64 = 2 * 3600 * 1000;
/// No block range exceeds this.
pub const MAX_BLOCK_RANGE_MS: i64 = 31 * 24 * 3600 * 1000;

/// Block ranges for leveled compaction: 2h, 6h, 18h, ... (each 3x the
/// previous), capped at 10% of `retention_ms` (when non-zero) and 31 days.
pub fn compaction_ranges(retention_ms: i64) -> Vec<i64> {
    let cap = if retention_ms > 0 {
        (retention_ms / 10).min(MAX_BLOCK_RANGE_MS)
    } else {
        MAX_BLOCK_RANGE_MS
    };
    let mut out = vec![MIN_BLOCK_RANGE_MS];
    let mut r = MIN_BLOCK_RANGE_MS * 3;
    while r <= cap {
        out.push(r);
        r *= 3;
    }
    out
}

/// Start of the `range`-aligned window holding `t`.
pub fn range_start(t: i64, range: i64) -> i64 {
    t.div_euclid(range) * range
}

/// Merges `blocks` into one new block under `out_dir`. Series with the same
/// labels are joined; samples at the same timestamp are de-duplicated (the
/// block later in `blocks` wins). Returns None if the inputs hold no samples.
pub fn compact(blocks: &[Block], out_dir: &Path) -> Result<Option<Block>, BlockError> {
    let mut w = BlockWriter::new(out_dir)?;
    let mut sources: Vec<String> = blocks
        .iter()
        .flat_map(|b| b.meta().compaction.sources.iter().cloned())
        .collect();
    sources.sort();
    sources.dedup();
    w.set_compaction(BlockCompaction {
        level: blocks
            .iter()
            .map(|b| b.meta().compaction.level)
            .max()
            .unwrap_or(0)
            + 1,
        sources,
        parents: blocks.iter().map(|b| b.meta().ulid.clone()).collect(),
    });
    // K-way merge over the blocks' label-ordered series.
    let mut cursors: Vec<(u32, Option<Labels>)> = Vec::with_capacity(blocks.len());
    let mut scratch = Vec::new();
    for b in blocks {
        cursors.push((0, peek(b, 0, &mut scratch)?));
    }
    let mut samples: Vec<(i64, f64)> = Vec::new();
    while let Some(min) = cursors.iter().filter_map(|c| c.1.as_ref()).min().cloned() {
        samples.clear();
        for (b, c) in blocks.iter().zip(cursors.iter_mut()) {
            if c.1.as_ref() == Some(&min) {
                b.series_samples(c.0, &mut samples)?;
                c.0 += 1;
                c.1 = peek(b, c.0, &mut scratch)?;
            }
        }
        w.add_series(min, &samples)?;
    }
    match w.finish()? {
        Some(dir) => Ok(Some(Block::open(&dir)?)),
        None => Ok(None),
    }
}

fn peek(
    b: &Block,
    id: u32,
    scratch: &mut Vec<crate::index::ChunkMeta>,
) -> Result<Option<Labels>, BlockError> {
    if id >= b.index().num_series() {
        return Ok(None);
    }
    b.index().series_into(id, scratch).map(Some)
}

/// Chooses blocks to compact next, Prometheus-style. Returns the ids of one
/// group to merge (empty when nothing should be compacted):
///
/// 1. any set of blocks with overlapping time ranges;
/// 2. otherwise, for each range after the first in `ranges` (ascending),
///    the first window of that range holding 2+ blocks that is complete:
///    its blocks fill it, or newer blocks exist after it. The newest block
///    is never part of such a group (more data may still join it).
pub fn plan(metas: &[BlockMeta], ranges: &[i64]) -> Vec<String> {
    let mut ms: Vec<&BlockMeta> = metas.iter().collect();
    ms.sort_by_key(|m| (m.min_time, m.max_time));
    // Overlaps.
    let mut i = 0;
    while i < ms.len() {
        let mut end = ms[i].max_time;
        let mut j = i + 1;
        while j < ms.len() && ms[j].min_time < end {
            end = end.max(ms[j].max_time);
            j += 1;
        }
        if j - i > 1 {
            return ms[i..j].iter().map(|m| m.ulid.clone()).collect();
        }
        i = j;
    }
    if ms.len() < 2 {
        return Vec::new();
    }
    let newest_max = ms.iter().map(|m| m.max_time).max().unwrap_or(i64::MIN);
    let candidates = &ms[..ms.len() - 1];
    for &r in ranges.iter().skip(1) {
        let mut k = 0;
        while k < candidates.len() {
            let start = range_start(candidates[k].min_time, r);
            let end = start + r;
            let mut group = Vec::new();
            while k < candidates.len() && range_start(candidates[k].min_time, r) == start {
                if candidates[k].max_time <= end {
                    group.push(candidates[k]);
                }
                k += 1;
            }
            if group.len() < 2 {
                continue;
            }
            let gmin = group.iter().map(|m| m.min_time).min().unwrap_or(start);
            let gmax = group.iter().map(|m| m.max_time).max().unwrap_or(start);
            let full = gmin == start && gmax == end;
            if full || newest_max > end {
                return group.iter().map(|m| m.ulid.clone()).collect();
            }
        }
    }
    Vec::new()
}

/// Ids of blocks to delete for retention. `blocks` gives each block's meta
/// and size in bytes. By time (when `retention_ms > 0`): blocks whose whole
/// range ends at least `retention_ms` before `reference_time` (usually the
/// newest sample time). By size (when `max_bytes > 0`): walking from the
/// newest block back, every block from the one that takes the total over
/// `max_bytes`.
pub fn blocks_beyond_retention(
    blocks: &[(BlockMeta, u64)],
    reference_time: i64,
    retention_ms: i64,
    max_bytes: u64,
) -> Vec<String> {
    let mut sorted: Vec<&(BlockMeta, u64)> = blocks.iter().collect();
    sorted.sort_by_key(|(m, _)| std::cmp::Reverse(m.max_time));
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut over = false;
    for (m, size) in sorted {
        total = total.saturating_add(*size);
        if max_bytes > 0 && total > max_bytes {
            over = true;
        }
        let too_old = retention_ms > 0 && reference_time.saturating_sub(m.max_time) >= retention_ms;
        if over || too_old {
            out.push(m.ulid.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockStats;

    fn meta(id: &str, mint: i64, maxt: i64) -> BlockMeta {
        BlockMeta {
            ulid: id.into(),
            min_time: mint,
            max_time: maxt,
            stats: BlockStats::default(),
            compaction: BlockCompaction {
                level: 1,
                sources: vec![id.into()],
                parents: vec![],
            },
            version: 1,
        }
    }

    const H: i64 = 3600 * 1000;

    #[test]
    fn ranges() {
        assert_eq!(compaction_ranges(0)[..4], [2 * H, 6 * H, 18 * H, 54 * H]);
        assert_eq!(*compaction_ranges(0).last().unwrap(), 486 * H);
        assert_eq!(compaction_ranges(15 * 24 * H), vec![2 * H, 6 * H, 18 * H]);
    }

    #[test]
    fn plan_levels_and_overlaps() {
        let ranges = compaction_ranges(0);
        // Three 2h blocks fill the first 6h window; a fourth is newer.
        let ms = vec![
            meta("a", 0, 2 * H),
            meta("b", 2 * H, 4 * H),
            meta("c", 4 * H, 6 * H),
            meta("d", 6 * H, 8 * H),
        ];
        assert_eq!(plan(&ms, &ranges), vec!["a", "b", "c"]);
        // Incomplete window with nothing newer: wait.
        assert!(plan(&ms[..2], &ranges).is_empty());
        // Overlap wins.
        let ms = vec![
            meta("a", 0, 2 * H),
            meta("x", H, 3 * H),
            meta("b", 4 * H, 6 * H),
        ];
        assert_eq!(plan(&ms, &ranges), vec!["a", "x"]);
    }

    #[test]
    fn retention() {
        let bs = vec![
            (meta("old", 0, 2 * H), 100),
            (meta("mid", 2 * H, 4 * H), 100),
            (meta("new", 4 * H, 6 * H), 100),
        ];
        assert_eq!(blocks_beyond_retention(&bs, 6 * H, 4 * H, 0), vec!["old"]);
        assert_eq!(blocks_beyond_retention(&bs, 6 * H, 0, 250), vec!["old"]);
        assert_eq!(
            blocks_beyond_retention(&bs, 6 * H, 0, 150),
            vec!["mid", "old"]
        );
        assert!(blocks_beyond_retention(&bs, 6 * H, 0, 0).is_empty());
    }
}
