//! Admin operations of a [`Db`], as Prometheus's admin TSDB API: deleting
//! series, cleaning tombstones and snapshots. Each is serialised with
//! maintenance (head cuts, compaction and retention would otherwise race
//! with them over the block list).

use super::blocks::{remove_block_dir, sort_blocks};
use super::{Db, TsdbError};
use crate::block::{Block, BlockWriter};
use crate::head::HeadQuerier;
use koban_model::Matcher;
use koban_storage::Series;
use std::path::Path;
use std::sync::atomic::Ordering;

/// What [`Db::delete_series`] marked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// Head series that lost samples (or had none in range but matched).
    pub head_series: u64,
    /// (block, series) pairs given a tombstone.
    pub block_series: u64,
}

impl Db {
    /// Deletes the samples in `[mint, maxt]` of every series matching any
    /// of the matcher sets, in the head and in the blocks; they disappear
    /// from queries at once.
    ///
    /// Head: the samples are dropped from memory and a tombstone record is
    /// logged to the WAL first, so replay after a restart (or after a head
    /// snapshot, which is written without them) does not bring them back;
    /// samples appended later in the range are kept. Blocks: tombstones
    /// are written beside the block (`tombstones` file), and the samples
    /// are dropped for good by the next compaction of the block or by
    /// [`Db::clean_tombstones`].
    pub fn delete_series(
        &self,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<DeleteReport, TsdbError> {
        if mint > maxt {
            return Ok(DeleteReport::default());
        }
        // Serialised with head cuts and compaction, which would otherwise
        // drop new marks or persist deleted head samples into a new block.
        let _g = self.maintain_lock.lock();
        let mut rep = DeleteReport {
            head_series: self.head.delete(sets, mint, maxt)?,
            block_series: 0,
        };
        for b in self
            .blocks()
            .iter()
            .filter(|b| b.meta().overlaps(mint, maxt))
        {
            for m in sets {
                rep.block_series += b.delete(mint, maxt, m)?;
            }
        }
        tracing::info!(
            matchers = ?sets,
            mint,
            maxt,
            head_series = rep.head_series,
            block_series = rep.block_series,
            "TSDB series deleted"
        );
        Ok(rep)
    }

    /// Rewrites every block that has tombstones without the deleted
    /// samples into a new block (same time range and compaction level) and
    /// removes the old one; a block left empty is just removed. Returns the
    /// ids of the blocks rewritten. Open queriers keep reading the old
    /// blocks' files until they are dropped.
    pub fn clean_tombstones(&self) -> Result<Vec<String>, TsdbError> {
        let _g = self.maintain_lock.lock();
        let mut done = Vec::new();
        for b in self.blocks() {
            if b.tombstones().is_empty() {
                continue;
            }
            let mut w = BlockWriter::new(self.dir())?;
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
            tracing::info!(block = %b.meta().ulid, new = ?out.as_ref().map(|x| x.meta().ulid.clone()), "TSDB tombstones cleaned");
            remove_block_dir(&b);
            self.counters.compactions.fetch_add(1, Ordering::Relaxed);
            done.push(b.meta().ulid.clone());
        }
        Ok(done)
    }

    /// Writes a consistent copy of the database into `dst` (created if
    /// needed; should be empty): every block hard-linked (copied when
    /// linking fails), plus, with `with_head`, the head's samples as one
    /// more block. `dst` then opens as a data directory of its own
    /// ([`Db::open`]). Returns the ids of the blocks in the snapshot.
    pub fn snapshot(&self, dst: &Path, with_head: bool) -> Result<Vec<String>, TsdbError> {
        // Keeps compaction and retention from deleting blocks mid-copy.
        let _g = self.maintain_lock.lock();
        std::fs::create_dir_all(dst).map_err(|e| TsdbError::io(dst, e))?;
        let mut ids = Vec::new();
        for b in self.blocks() {
            let id = &b.meta().ulid;
            link_dir(b.dir(), &dst.join(id))?;
            ids.push(id.clone());
        }
        if with_head {
            let q = HeadQuerier::new(self.head.clone(), i64::MIN, i64::MAX);
            let series = q.select_series(false, &[]);
            drop(q);
            let mut w = BlockWriter::new(dst)?;
            let mut samples = Vec::new();
            for s in series {
                samples.clear();
                s.iter().drain_into(&mut samples);
                w.add_series(s.labels().clone(), &samples)?;
            }
            let id = w.id().to_string();
            if w.finish()?.is_some() {
                ids.push(id);
            }
        }
        tracing::info!(dir = %dst.display(), blocks = ids.len(), with_head, "TSDB snapshot written");
        Ok(ids)
    }
}

/// Recreates `src` at `dst` with hard links (copies if linking fails).
fn link_dir(src: &Path, dst: &Path) -> Result<(), TsdbError> {
    std::fs::create_dir_all(dst).map_err(|e| TsdbError::io(dst, e))?;
    let rd = std::fs::read_dir(src).map_err(|e| TsdbError::io(src, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| TsdbError::io(src, e))?;
        let (from, to) = (ent.path(), dst.join(ent.file_name()));
        let ft = ent.file_type().map_err(|e| TsdbError::io(&from, e))?;
        if ft.is_dir() {
            link_dir(&from, &to)?;
        } else if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(|e| TsdbError::io(&to, e))?;
        }
    }
    Ok(())
}
