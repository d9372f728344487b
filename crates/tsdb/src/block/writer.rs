//! Writing a block directory.

use super::chunks::SegmentWriter;
use super::{chunk_encoding, new_block_id, BlockCompaction, BlockError, BlockMeta, BlockStats};
use crate::index::{write_index, ChunkMeta};
use koban_model::Labels;
use std::path::{Path, PathBuf};

/// Chunks are cut after this many samples: big enough that a regular
/// series costs almost nothing, small enough to decode quickly on seek.
pub const MAX_CHUNK_SAMPLES: usize = 4096;

/// Writes a block from series given in any order. Chunk data streams to
/// disk as series arrive; the index is written by [`BlockWriter::finish`],
/// which then renames `<id>.tmp` to `<id>` so readers never see a partial block.
pub struct BlockWriter {
    parent: PathBuf,
    id: String,
    tmp: PathBuf,
    segs: Option<SegmentWriter>,
    series: Vec<(Labels, Vec<ChunkMeta>)>,
    mint: i64,
    maxt: i64,
    stats: BlockStats,
    compaction: BlockCompaction,
    buf: Vec<u8>,
    sorted: Vec<(i64, f64)>,
}

impl BlockWriter {
    /// Starts a level-1 block under `parent`.
    pub fn new(parent: &Path) -> Result<Self, BlockError> {
        let id = new_block_id();
        let tmp = parent.join(format!("{id}.tmp"));
        std::fs::create_dir_all(&tmp).map_err(|e| BlockError::io(&tmp, e))?;
        let segs = SegmentWriter::new(&tmp.join("chunks"))?;
        Ok(BlockWriter {
            parent: parent.to_path_buf(),
            compaction: BlockCompaction {
                level: 1,
                sources: vec![id.clone()],
                parents: Vec::new(),
            },
            id,
            tmp,
            segs: Some(segs),
            series: Vec::new(),
            mint: i64::MAX,
            maxt: i64::MIN,
            stats: BlockStats::default(),
            buf: Vec::new(),
            sorted: Vec::new(),
        })
    }

    /// The id the block will have.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sets the compaction history (for blocks made by compaction).
    pub fn set_compaction(&mut self, c: BlockCompaction) {
        self.compaction = c;
    }

    /// Adds one series. Samples need not be sorted; for equal timestamps the
    /// last one given wins. An empty series is ignored. The same labels may
    /// be added again only with samples after the earlier ones.
    pub fn add_series(&mut self, labels: Labels, samples: &[(i64, f64)]) -> Result<(), BlockError> {
        if samples.is_empty() {
            return Ok(());
        }
        if labels.is_empty() {
            return Err(BlockError::Invalid("series with no labels".into()));
        }
        let samples = if samples.windows(2).all(|w| w[0].0 < w[1].0) {
            samples
        } else {
            self.sorted.clear();
            self.sorted.extend_from_slice(samples);
            // Stable sort keeps input order among equal timestamps; keep the last.
            self.sorted.sort_by_key(|s| s.0);
            let mut out: Vec<(i64, f64)> = Vec::with_capacity(self.sorted.len());
            for &s in &self.sorted {
                match out.last_mut() {
                    Some(l) if l.0 == s.0 => *l = s,
                    _ => out.push(s),
                }
            }
            self.sorted = out;
            &self.sorted
        };
        let Some(segs) = self.segs.as_mut() else {
            return Err(BlockError::Invalid("BUG: writer already finished".into()));
        };
        let mut metas = Vec::with_capacity(samples.len().div_ceil(MAX_CHUNK_SAMPLES));
        for c in samples.chunks(MAX_CHUNK_SAMPLES) {
            self.buf.clear();
            chunk_encoding::encode(c, &mut self.buf);
            let r = segs.write(&self.buf)?;
            metas.push(ChunkMeta {
                mint: c[0].0,
                maxt: c[c.len() - 1].0,
                chunk_ref: r,
            });
        }
        self.mint = self.mint.min(samples[0].0);
        self.maxt = self.maxt.max(samples[samples.len() - 1].0);
        self.stats.num_samples += samples.len() as u64;
        self.stats.num_chunks += metas.len() as u64;
        self.series.push((labels, metas));
        Ok(())
    }

    /// Like [`BlockWriter::add_series`] for samples from an iterator.
    pub fn add_series_iter(
        &mut self,
        labels: Labels,
        samples: impl IntoIterator<Item = (i64, f64)>,
    ) -> Result<(), BlockError> {
        let v: Vec<(i64, f64)> = samples.into_iter().collect();
        self.add_series(labels, &v)
    }

    /// Samples added so far.
    pub fn num_samples(&self) -> u64 {
        self.stats.num_samples
    }

    /// Writes the index and meta.json and moves the block into place.
    /// Returns the block's directory, or None (and leaves nothing behind)
    /// when no samples were added.
    pub fn finish(mut self) -> Result<Option<PathBuf>, BlockError> {
        let r = self.finish_inner();
        if r.is_err() {
            // Leave nothing half-written behind.
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
        r
    }

    fn finish_inner(&mut self) -> Result<Option<PathBuf>, BlockError> {
        if let Some(s) = self.segs.take() {
            s.finish()?;
        }
        if self.series.is_empty() {
            std::fs::remove_dir_all(&self.tmp).map_err(|e| BlockError::io(&self.tmp, e))?;
            return Ok(None);
        }
        let mut series = std::mem::take(&mut self.series);
        series.sort_by(|a, b| a.0.cmp(&b.0).then(a.1[0].mint.cmp(&b.1[0].mint)));
        // Merge repeated label sets whose chunks do not overlap.
        let mut merged: Vec<(Labels, Vec<ChunkMeta>)> = Vec::with_capacity(series.len());
        for (ls, metas) in series {
            match merged.last_mut() {
                Some((pl, pm)) if *pl == ls => {
                    let last = pm.last().map_or(i64::MIN, |m| m.maxt);
                    if metas[0].mint <= last {
                        return Err(BlockError::Invalid(format!(
                            "series {ls} added twice with overlapping samples"
                        )));
                    }
                    pm.extend(metas);
                }
                _ => merged.push((ls, metas)),
            }
        }
        self.stats.num_series = merged.len() as u64;
        write_index(&self.tmp.join("index"), self.mint, &merged)?;
        let meta = BlockMeta {
            ulid: self.id.clone(),
            min_time: self.mint,
            max_time: self.maxt.saturating_add(1),
            stats: self.stats.clone(),
            compaction: self.compaction.clone(),
            version: 1,
        };
        let mp = self.tmp.join("meta.json");
        let json = serde_json::to_vec_pretty(&meta)
            .map_err(|e| BlockError::Invalid(format!("meta.json: {e}")))?;
        std::fs::write(&mp, json).map_err(|e| BlockError::io(&mp, e))?;
        sync_dir(&self.tmp)?;
        let dst = self.parent.join(&self.id);
        std::fs::rename(&self.tmp, &dst).map_err(|e| BlockError::io(&dst, e))?;
        sync_dir(&self.parent)?;
        Ok(Some(dst))
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        // An unfinished writer leaves no half-written block behind.
        if self.segs.is_some() {
            self.segs = None;
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), BlockError> {
    let f = std::fs::File::open(dir).map_err(|e| BlockError::io(dir, e))?;
    f.sync_all().map_err(|e| BlockError::io(dir, e))
}
