//! Admin operations on the block store: deleting series (tombstones),
//! cleaning tombstones and snapshots, as Prometheus's admin TSDB API.

use super::{remove_block_dir, sort_blocks, BlockStore, BlockStoreError};
use crate::block::{Block, BlockWriter};
use crate::head::HeadQuerier;
use koban_model::Matcher;
use koban_storage::Series;
use std::path::Path;
use std::sync::atomic::Ordering;

impl BlockStore {
    /// Marks the samples in `[mint, maxt]` of every block series matching
    /// any of the matcher sets as deleted (tombstones: hidden from queries
    /// at once, dropped by the next compaction or [`BlockStore::clean_tombstones`]).
    /// Returns the number of (block, series) pairs marked.
    ///
    /// Only persisted blocks are affected: samples still in the head are
    /// not deleted (the head has no deletion API yet).
    pub fn delete_series(
        &self,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<u64, BlockStoreError> {
        // Serialised with compaction, which would otherwise drop new marks.
        let _g = self.maintain_lock.lock();
        let mut n = 0;
        for b in self
            .blocks()
            .iter()
            .filter(|b| b.meta().overlaps(mint, maxt))
        {
            for m in sets {
                n += b.delete(mint, maxt, m)?;
            }
        }
        Ok(n)
    }

    /// Rewrites every block that has tombstones without the deleted
    /// samples (a block left empty is removed). Returns the ids of the
    /// blocks rewritten.
    pub fn clean_tombstones(&self) -> Result<Vec<String>, BlockStoreError> {
        let _g = self.maintain_lock.lock();
        let mut done = Vec::new();
        for b in self.blocks() {
            if b.tombstones().is_empty() {
                continue;
            }
            let mut w = BlockWriter::new(self.db.dir())?;
            // Same level and history: this is the same block, minus deletions.
            w.set_compaction(b.meta().compaction.clone());
            let mut samples = Vec::new();
            for id in 0..b.index().num_series() {
                samples.clear();
                let ls = b.series_samples(id, &mut samples)?;
                w.add_series(ls, &samples)?;
            }
            let out = match w.finish()? {
                Some(dir) => Some(Block::open(&dir)?),
                None => None,
            };
            {
                let mut bs = self.blocks.write();
                bs.retain(|x| x.meta().ulid != b.meta().ulid);
                if let Some(nb) = &out {
                    bs.push(nb.clone());
                }
                sort_blocks(&mut bs);
            }
            tracing::info!(block = %b.meta().ulid, new = ?out.as_ref().map(|x| x.meta().ulid.clone()), "tombstones cleaned");
            remove_block_dir(&b);
            self.counters.compactions.fetch_add(1, Ordering::Relaxed);
            done.push(b.meta().ulid.clone());
        }
        Ok(done)
    }

    /// Writes a consistent copy of the database into `dst` (created; must
    /// not exist or be empty): every block hard-linked (copied when linking
    /// fails), plus, with `with_head`, the head's samples as one more block.
    /// Returns the ids of the blocks in the snapshot.
    pub fn snapshot(&self, dst: &Path, with_head: bool) -> Result<Vec<String>, BlockStoreError> {
        // Keeps compaction and retention from deleting blocks mid-copy.
        let _g = self.maintain_lock.lock();
        std::fs::create_dir_all(dst).map_err(|e| BlockStoreError::io(dst, e))?;
        let mut ids = Vec::new();
        for b in self.blocks() {
            let id = &b.meta().ulid;
            link_dir(b.dir(), &dst.join(id))?;
            ids.push(id.clone());
        }
        if with_head {
            let q = HeadQuerier::new(self.db.head().clone(), i64::MIN, i64::MAX);
            let mut w = BlockWriter::new(dst)?;
            let mut samples = Vec::new();
            let series = q.select_series(false, &[]);
            drop(q);
            for s in series {
                samples.clear();
                let mut it = s.iter();
                while let Some(x) = it.next() {
                    samples.push(x);
                }
                w.add_series(s.labels().clone(), &samples)?;
            }
            let id = w.id().to_string();
            if w.finish()?.is_some() {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

/// Recreates `src` at `dst` with hard links (copies if linking fails).
fn link_dir(src: &Path, dst: &Path) -> Result<(), BlockStoreError> {
    std::fs::create_dir_all(dst).map_err(|e| BlockStoreError::io(dst, e))?;
    let rd = std::fs::read_dir(src).map_err(|e| BlockStoreError::io(src, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| BlockStoreError::io(src, e))?;
        let (from, to) = (ent.path(), dst.join(ent.file_name()));
        let ft = ent.file_type().map_err(|e| BlockStoreError::io(&from, e))?;
        if ft.is_dir() {
            link_dir(&from, &to)?;
        } else if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(|e| BlockStoreError::io(&to, e))?;
        }
    }
    Ok(())
}
