//! Persistent blocks: one directory per time range holding `meta.json`, an
//! `index` and `chunks/NNNNNN` segment files (formats in docs/format/).
//!
//! [`Block::open`] verifies every checksum and fails with an error naming the
//! file; [`BlockQuerier`] answers [`koban_storage::Querier`] over a block;
//! [`BlockWriter`] writes a new block atomically (`<dir>.tmp` then rename).

pub mod bits;
pub mod chunk_encoding;
pub mod chunks;
pub mod ints;
mod querier;
pub mod tombstones;
mod writer;

pub use querier::{BlockQuerier, BlockSeries};
pub use writer::{BlockWriter, MAX_CHUNK_SAMPLES};

use crate::encoding::Decbuf;
use crate::index::{ChunkMeta, IndexReader};
use chunk_encoding::DecodeScratch;
use chunks::ChunkReader;
use koban_model::Labels;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Errors from block, index, compaction and backfill code. Each names the
/// file (and where useful the line or section) it is about.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: corrupt {what}: {reason}")]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl BlockError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        BlockError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn corrupt(path: &Path, what: &'static str, reason: &str) -> Self {
        BlockError::Corrupt {
            path: path.to_path_buf(),
            what,
            reason: reason.to_string(),
        }
    }
}

impl From<BlockError> for koban_storage::StorageError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Io { .. } => koban_storage::StorageError::Io(e.to_string()),
            _ => koban_storage::StorageError::Other(e.to_string()),
        }
    }
}

/// Sample counts of a block.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
}

/// Compaction history of a block.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockCompaction {
    /// 1 for blocks cut from the head or backfilled; parents' max + 1 after compaction.
    pub level: u32,
    /// Ids of the level-1 blocks whose data this block holds.
    pub sources: Vec<String>,
    /// Ids of the blocks directly merged into this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
}

/// The contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: String,
    /// Smallest sample timestamp (ms).
    pub min_time: i64,
    /// Largest sample timestamp + 1 (exclusive, as Prometheus).
    pub max_time: i64,
    pub stats: BlockStats,
    pub compaction: BlockCompaction,
    pub version: u32,
}

impl BlockMeta {
    /// True if the block may hold samples in the closed range `[mint, maxt]`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint < self.max_time
    }

    pub fn read(dir: &Path) -> Result<BlockMeta, BlockError> {
        let p = dir.join("meta.json");
        let b = std::fs::read(&p).map_err(|e| BlockError::io(&p, e))?;
        let m: BlockMeta = serde_json::from_slice(&b)
            .map_err(|e| BlockError::corrupt(&p, "meta.json", &e.to_string()))?;
        if m.version != 1 {
            return Err(BlockError::corrupt(
                &p,
                "meta.json",
                &format!("unsupported version {}", m.version),
            ));
        }
        Ok(m)
    }
}

#[derive(Debug)]
pub(crate) struct BlockInner {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    size: u64,
    /// Replaced wholesale on delete; queriers keep the snapshot they started with.
    tombstones: parking_lot::RwLock<Arc<tombstones::Tombstones>>,
}

/// An open, verified, immutable block. Cloning is cheap (shared).
#[derive(Debug, Clone)]
pub struct Block {
    inner: Arc<BlockInner>,
}

impl Block {
    /// Opens the block in `dir`, verifying the index and every chunk
    /// segment checksum. A damaged block fails with an error naming the file.
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let meta = BlockMeta::read(dir)?;
        let index = IndexReader::open(&dir.join("index"))?;
        let chunks = ChunkReader::open(&dir.join("chunks"))?;
        let ts = tombstones::read(&dir.join("tombstones"))?;
        let size = dir_size(dir)?;
        Ok(Block {
            inner: Arc::new(BlockInner {
                dir: dir.to_path_buf(),
                meta,
                index,
                chunks,
                size,
                tombstones: parking_lot::RwLock::new(Arc::new(ts)),
            }),
        })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.inner.meta
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Bytes on disk.
    pub fn size(&self) -> u64 {
        self.inner.size
    }

    pub fn index(&self) -> &IndexReader {
        &self.inner.index
    }

    /// A querier over `[mint, maxt]`.
    pub fn querier(&self, mint: i64, maxt: i64) -> BlockQuerier {
        BlockQuerier::new(self.inner.clone(), mint, maxt)
    }

    /// Every sample of series `id` not deleted by tombstones, in time
    /// order, appended to `out`; the series' labels are returned.
    pub fn series_samples(&self, id: u32, out: &mut Vec<(i64, f64)>) -> Result<Labels, BlockError> {
        let mut metas = Vec::new();
        let ls = self.inner.index.series_into(id, &mut metas)?;
        let mut scratch = DecodeScratch::default();
        let start = out.len();
        for m in &metas {
            self.inner.decode_chunk(m, out, &mut scratch)?;
        }
        let ts = self.tombstones();
        if let Some(ivs) = ts.get(&id) {
            let mut i = start;
            for j in start..out.len() {
                if !tombstones::is_deleted(ivs, out[j].0) {
                    out[i] = out[j];
                    i += 1;
                }
            }
            out.truncate(i);
        }
        Ok(ls)
    }

    /// The current deletion marks.
    pub fn tombstones(&self) -> Arc<tombstones::Tombstones> {
        self.inner.tombstones.read().clone()
    }

    /// Marks the samples in `[mint, maxt]` of every series matching
    /// `matchers` as deleted, persisting the `tombstones` file before
    /// queriers opened afterwards see it. Returns the number of series marked.
    pub fn delete(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[koban_model::Matcher],
    ) -> Result<u64, BlockError> {
        let mut guard = self.inner.tombstones.write();
        let mut ts: tombstones::Tombstones = (**guard).clone();
        let ids = crate::index::postings_for_matchers(&self.inner.index, matchers)?;
        let mut metas = Vec::new();
        let mut n = 0;
        for id in ids {
            self.inner.index.series_into(id, &mut metas)?;
            if metas.iter().any(|m| m.mint <= maxt && m.maxt >= mint) {
                tombstones::add_interval(ts.entry(id).or_default(), mint, maxt);
                n += 1;
            }
        }
        if n > 0 {
            tombstones::write(&self.inner.dir.join("tombstones"), &ts)?;
            *guard = Arc::new(ts);
        }
        Ok(n)
    }
}

impl BlockInner {
    /// Decodes one chunk, appending its samples to `out`.
    pub(crate) fn decode_chunk(
        &self,
        m: &ChunkMeta,
        out: &mut Vec<(i64, f64)>,
        scratch: &mut DecodeScratch,
    ) -> Result<usize, BlockError> {
        let Some((data, path)) = self.chunks.chunk(m.chunk_ref) else {
            return Err(BlockError::corrupt(
                &self.dir.join("index"),
                "index",
                &format!("chunk reference {:#x} out of range", m.chunk_ref),
            ));
        };
        chunk_encoding::decode(&mut Decbuf::new(data), m.mint, out, scratch)
            .map_err(|e| BlockError::corrupt(path, "chunk", &format!("at {:#x}: {e}", m.chunk_ref)))
    }
}

fn dir_size(dir: &Path) -> Result<u64, BlockError> {
    let mut total = 0;
    let rd = std::fs::read_dir(dir).map_err(|e| BlockError::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| BlockError::io(dir, e))?;
        let md = ent.metadata().map_err(|e| BlockError::io(&ent.path(), e))?;
        total += if md.is_dir() {
            dir_size(&ent.path())?
        } else {
            md.len()
        };
    }
    Ok(total)
}

/// A new unique, time-sortable block id: 26 Crockford base32 characters
/// (48-bit millisecond time, 80 random bits), as a ULID.
pub fn new_block_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    let r1 = h.finish();
    h.write_u64(r1);
    let r2 = h.finish();
    let v: u128 = (u128::from(now & ((1 << 48) - 1)) << 80)
        | (u128::from(r1) << 16)
        | u128::from(r2 & 0xffff);
    const ALPHA: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..26)
        .map(|i| ALPHA[((v >> (125 - i * 5)) & 31) as usize] as char)
        .collect()
}
