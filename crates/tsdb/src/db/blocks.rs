//! The persisted blocks of a [`Db`](super::Db): finding and opening them
//! when the database opens, and the helpers the maintenance and admin
//! phases share (ordering, deleting, sizes).
//!
//! On open, a block that fails to open (bad meta.json, index or chunk
//! checksum) is moved to `<dir>/corrupted/<name>` with an error log, and the
//! others are served. Blocks that a newer block lists as compaction parents
//! (left over by a crash between writing the merged block and deleting its
//! inputs) are deleted.

use super::TsdbError;
use crate::block::{Block, BlockError};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Name of the directory corrupt blocks are moved to.
pub const CORRUPTED_DIR: &str = "corrupted";

/// Name of the directory admin snapshots are written to.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// What [`load`] found besides the blocks.
#[derive(Debug, Default)]
pub(crate) struct LoadReport {
    /// Blocks moved aside as corrupt.
    pub(crate) corrupted: u64,
}

/// Opens the blocks in `dir`, oldest first.
///
/// Block directories are those named like a block id (26 base32
/// characters) or holding a `meta.json`; `wal`, `lock`, `chunks_head`,
/// `corrupted`, `snapshots`, hidden entries and `*.tmp` are skipped
/// (leftover `<block id>.tmp` directories of interrupted writes are
/// removed). Fails only if `dir` cannot be listed.
pub(crate) fn load(dir: &Path) -> Result<(Vec<Block>, LoadReport), TsdbError> {
    let mut report = LoadReport::default();
    let mut blocks = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| TsdbError::io(dir, e))?;
    let mut entries: Vec<PathBuf> = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| TsdbError::io(dir, e))?;
        entries.push(ent.path());
    }
    entries.sort();
    let mut candidates: Vec<(String, PathBuf)> = Vec::new();
    for path in entries {
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if !path.is_dir() || name.starts_with('.') || SKIP.contains(&name.as_str()) {
            continue;
        }
        if let Some(stem) = name.strip_suffix(".tmp") {
            if is_block_id(stem) {
                tracing::info!(dir = %path.display(), "removing leftover temporary block directory");
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    tracing::warn!(dir = %path.display(), error = %e, "removing temporary block directory");
                }
            }
            continue;
        }
        if !is_block_id(&name) && !path.join("meta.json").is_file() {
            continue;
        }
        candidates.push((name, path));
    }
    let started = std::time::Instant::now();
    for ((name, path), r) in candidates.iter().zip(open_all(&candidates)) {
        match r {
            Ok(b) => blocks.push(b),
            Err(e) if !is_corruption(&e) => {
                // Not the block's fault (permissions, fd limits...): leave it in place.
                tracing::error!(block = %path.display(), error = %e, "TSDB block cannot be opened: not served");
            }
            Err(e) => {
                report.corrupted += 1;
                let dst = move_aside(dir, name, path);
                tracing::error!(
                    block = %path.display(),
                    error = %e,
                    moved_to = %dst.as_ref().map_or_else(|e| format!("(move failed: {e})"), |p| p.display().to_string()),
                    "CORRUPT TSDB BLOCK: not served, moved aside"
                );
            }
        }
    }
    // Parents of another block were merged into it already.
    let parents: HashSet<String> = blocks
        .iter()
        .flat_map(|b| b.meta().compaction.parents.iter().cloned())
        .collect();
    blocks.retain(|b| {
        if parents.contains(&b.meta().ulid) {
            tracing::info!(block = %b.dir().display(), "deleting block already merged by compaction");
            remove_block_dir(b);
            false
        } else {
            true
        }
    });
    sort_blocks(&mut blocks);
    tracing::info!(
        dir = %dir.display(),
        blocks = blocks.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "TSDB blocks loaded"
    );
    Ok((blocks, report))
}

/// Top-level names that are never blocks.
const SKIP: &[&str] = &[
    "wal",
    "wbl",
    "lock",
    "chunks_head",
    SNAPSHOTS_DIR,
    CORRUPTED_DIR,
];

/// True for a 26-character Crockford base32 block id.
pub fn is_block_id(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !b"ILOU".contains(&c)))
}

pub(crate) fn sort_blocks(bs: &mut [Block]) {
    bs.sort_by(|a, b| {
        let (ma, mb) = (a.meta(), b.meta());
        (ma.min_time, ma.max_time, &ma.ulid).cmp(&(mb.min_time, mb.max_time, &mb.ulid))
    });
}

/// Removes a block's directory. Open queriers keep their memory maps.
pub(crate) fn remove_block_dir(b: &Block) {
    if let Err(e) = std::fs::remove_dir_all(b.dir()) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(block = %b.dir().display(), error = %e, "deleting block directory");
        }
    }
}

/// Opens the blocks (verifying their checksums) on a few threads; results
/// are in input order.
fn open_all(cands: &[(String, PathBuf)]) -> Vec<Result<Block, BlockError>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    if cands.len() < 2 || threads == 1 {
        return cands.iter().map(|(_, p)| Block::open(p)).collect();
    }
    let per = cands.len().div_ceil(threads);
    std::thread::scope(|s| {
        let hs: Vec<_> = cands
            .chunks(per)
            .map(|c| s.spawn(move || c.iter().map(|(_, p)| Block::open(p)).collect::<Vec<_>>()))
            .collect();
        hs.into_iter()
            .zip(cands.chunks(per))
            .flat_map(|(h, c)| {
                h.join().unwrap_or_else(|_| {
                    c.iter()
                        .map(|(_, p)| {
                            Err(BlockError::io(
                                p,
                                std::io::Error::other("BUG: panic while opening the block"),
                            ))
                        })
                        .collect()
                })
            })
            .collect()
    })
}

/// True if `e` means the block's files are damaged or missing (rather
/// than, say, permissions or file descriptor limits).
fn is_corruption(e: &BlockError) -> bool {
    use std::io::ErrorKind::{InvalidData, NotFound, UnexpectedEof};
    match e {
        BlockError::Io { source, .. } => {
            matches!(source.kind(), NotFound | UnexpectedEof | InvalidData)
        }
        BlockError::Corrupt { .. } | BlockError::Parse { .. } | BlockError::Invalid(_) => true,
    }
}

/// Moves the block directory `path` (named `name`) to `<dir>/corrupted/`,
/// adding a numeric suffix if that name is taken.
fn move_aside(dir: &Path, name: &str, path: &Path) -> Result<PathBuf, std::io::Error> {
    let cdir = dir.join(CORRUPTED_DIR);
    std::fs::create_dir_all(&cdir)?;
    let mut dst = cdir.join(name);
    let mut n = 1;
    while dst.exists() {
        dst = cdir.join(format!("{name}.{n}"));
        n += 1;
    }
    std::fs::rename(path, &dst)?;
    Ok(dst)
}

/// Total size of the files under `dir` (0 if missing; unreadable entries skipped).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids() {
        assert!(is_block_id(&crate::block::new_block_id()));
        assert!(!is_block_id("wal"));
        assert!(!is_block_id("01ARZ3NDEKTSV4RRFFQ69G5FAVX"));
        assert!(!is_block_id("01ARZ3NDEKTSV4RRFFQ69G5FAI"));
        assert!(is_block_id("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
    }

    #[test]
    fn move_aside_adds_suffix() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..2 {
            let p = d.path().join("X");
            std::fs::create_dir(&p).unwrap();
            let dst = move_aside(d.path(), "X", &p).unwrap();
            let want = if i == 0 { "X" } else { "X.1" };
            assert_eq!(dst, d.path().join(CORRUPTED_DIR).join(want));
            assert!(!p.exists());
        }
    }
}
