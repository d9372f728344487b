//! Chunk segment files `chunks/000001`, `chunks/000002`, ... of a block.
//!
//! ```text
//! "KBCH" u8(version=1) 3 zero bytes      header, 8 bytes
//! chunk data ...                          encoded chunks back to back
//! u64 LE data_end                         offset where chunk data ends
//! u32 LE crc32c                           of every byte before the footer
//! ```
//!
//! A chunk reference is `segment_index << 32 | offset_in_file`, where
//! segment_index counts from 0 for `000001`.

use super::BlockError;
use memmap2::Mmap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"KBCH";
const HEADER_LEN: usize = 8;
const FOOTER_LEN: usize = 12;
/// Segments are cut after this many bytes.
pub const SEGMENT_MAX: u64 = 512 << 20;

pub fn segment_path(dir: &Path, idx: usize) -> PathBuf {
    dir.join(format!("{:06}", idx + 1))
}

/// Appends chunks to segment files in a directory.
pub struct SegmentWriter {
    dir: PathBuf,
    idx: usize,
    cur: Option<(BufWriter<File>, PathBuf, u64, u32)>,
}

impl SegmentWriter {
    pub fn new(dir: &Path) -> Result<Self, BlockError> {
        std::fs::create_dir_all(dir).map_err(|e| BlockError::io(dir, e))?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            idx: 0,
            cur: None,
        })
    }

    /// Writes one encoded chunk, returning its reference.
    pub fn write(&mut self, chunk: &[u8]) -> Result<u64, BlockError> {
        if let Some((_, _, off, _)) = &self.cur {
            if *off + chunk.len() as u64 > SEGMENT_MAX {
                self.close_current()?;
                self.idx += 1;
            }
        }
        if self.cur.is_none() {
            let path = segment_path(&self.dir, self.idx);
            let f = File::create(&path).map_err(|e| BlockError::io(&path, e))?;
            let mut w = BufWriter::with_capacity(1 << 16, f);
            let mut header = [0u8; HEADER_LEN];
            header[..4].copy_from_slice(MAGIC);
            header[4] = 1;
            w.write_all(&header).map_err(|e| BlockError::io(&path, e))?;
            let h = crc32c::crc32c(&header);
            self.cur = Some((w, path, HEADER_LEN as u64, h));
        }
        let Some((w, path, off, h)) = self.cur.as_mut() else {
            unreachable!("BUG: segment just opened")
        };
        let r = ((self.idx as u64) << 32) | *off;
        w.write_all(chunk).map_err(|e| BlockError::io(path, e))?;
        *h = crc32c::crc32c_append(*h, chunk);
        *off += chunk.len() as u64;
        Ok(r)
    }

    fn close_current(&mut self) -> Result<(), BlockError> {
        if let Some((mut w, path, off, h)) = self.cur.take() {
            let end = off.to_le_bytes();
            let crc = crc32c::crc32c_append(h, &end);
            w.write_all(&end).map_err(|e| BlockError::io(&path, e))?;
            w.write_all(&crc.to_le_bytes())
                .map_err(|e| BlockError::io(&path, e))?;
            let f = w
                .into_inner()
                .map_err(|e| BlockError::io(&path, e.into_error()))?;
            f.sync_all().map_err(|e| BlockError::io(&path, e))?;
        }
        Ok(())
    }

    /// Finishes the last segment.
    pub fn finish(mut self) -> Result<(), BlockError> {
        self.close_current()
    }
}

/// Memory-mapped, checksum-verified chunk segments.
#[derive(Debug)]
pub struct ChunkReader {
    segs: Vec<(PathBuf, Mmap, usize)>,
}

impl ChunkReader {
    /// Maps every segment in `dir` and verifies its checksum.
    pub fn open(dir: &Path) -> Result<Self, BlockError> {
        let mut segs = Vec::new();
        loop {
            let path = segment_path(dir, segs.len());
            let f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(BlockError::io(&path, e)),
            };
            // SAFETY: block files are immutable once written; nothing in this
            // process writes to them while mapped.
            let m = unsafe { Mmap::map(&f) }.map_err(|e| BlockError::io(&path, e))?;
            let corrupt = |r: &str| BlockError::corrupt(&path, "chunk segment", r);
            if m.len() < HEADER_LEN + FOOTER_LEN || &m[..4] != MAGIC {
                return Err(corrupt("bad header or too short"));
            }
            if m[4] != 1 {
                return Err(corrupt("unsupported version"));
            }
            let body = m.len() - 4;
            let want = u32::from_le_bytes([m[body], m[body + 1], m[body + 2], m[body + 3]]);
            if crc32c::crc32c(&m[..body]) != want {
                return Err(corrupt("checksum mismatch"));
            }
            let mut e = [0u8; 8];
            e.copy_from_slice(&m[body - 8..body]);
            let end = u64::from_le_bytes(e) as usize;
            if end != m.len() - FOOTER_LEN {
                return Err(corrupt("footer length mismatch"));
            }
            segs.push((path, m, end));
        }
        Ok(ChunkReader { segs })
    }

    /// The bytes from the chunk at `r` to the end of its segment's data.
    pub fn chunk(&self, r: u64) -> Option<(&[u8], &Path)> {
        let (path, m, end) = self.segs.get((r >> 32) as usize)?;
        let off = (r & 0xffff_ffff) as usize;
        if off < HEADER_LEN || off >= *end {
            return None;
        }
        Some((&m[off..*end], path))
    }

    pub fn segments(&self) -> usize {
        self.segs.len()
    }
}
