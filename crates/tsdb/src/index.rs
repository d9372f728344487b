//! The block index: symbols, series with their chunk metas, and postings
//! (roaring bitmaps) per label pair. Format in docs/format/index.md.
//!
//! ```text
//! "KBIX" u8(version=1) 3 zero bytes
//! section: symbols | series | postings     (each may be zstd-compressed)
//! TOC: 3 x (u64 offset, u64 len, u64 raw_len, u32 crc32c)   LE
//! u32 crc32c of the TOC, "KBIX"
//! ```

mod postings;

pub use postings::postings_for_matchers;

use crate::block::BlockError;
use crate::encoding::{put_bytes, put_uvarint, put_varint, Decbuf, DecodeError};
use koban_model::{Label, Labels};
use memmap2::Mmap;
use roaring::RoaringBitmap;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"KBIX";
const HEADER_LEN: usize = 8;
const NSECTIONS: usize = 3;
const TOC_ENTRY: usize = 28;
const TOC_LEN: usize = NSECTIONS * TOC_ENTRY + 8;
/// Sections larger than this are zstd-compressed when it saves space.
const COMPRESS_MIN: usize = 256;

/// Where one chunk of a series lives and what it covers (closed range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    pub mint: i64,
    pub maxt: i64,
    /// Segment index << 32 | offset in the segment file.
    pub chunk_ref: u64,
}

/// Writes an index file for series given in label order.
///
/// `base` is a time close to the chunks' (the block's mint); chunk times are
/// stored relative to it.
pub fn write_index(
    path: &Path,
    base: i64,
    series: &[(Labels, Vec<ChunkMeta>)],
) -> Result<u64, BlockError> {
    // Symbols.
    let mut syms: BTreeMap<&str, u32> = BTreeMap::new();
    for (ls, _) in series {
        for l in ls {
            syms.insert(&l.name, 0);
            syms.insert(&l.value, 0);
        }
    }
    let mut sym_sec = Vec::new();
    put_uvarint(&mut sym_sec, syms.len() as u64);
    let mut prev: &str = "";
    for (i, (s, id)) in syms.iter_mut().enumerate() {
        *id = i as u32;
        let shared = prev
            .bytes()
            .zip(s.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        // Keep the split on a char boundary.
        let shared = (0..=shared)
            .rev()
            .find(|&k| s.is_char_boundary(k))
            .unwrap_or(0);
        put_uvarint(&mut sym_sec, shared as u64);
        put_bytes(&mut sym_sec, &s.as_bytes()[shared..]);
        prev = s;
    }
    // Series, and postings built alongside.
    let mut ser_sec = Vec::new();
    put_uvarint(&mut ser_sec, series.len() as u64);
    put_varint(&mut ser_sec, base);
    let mut post: BTreeMap<u32, BTreeMap<u32, RoaringBitmap>> = BTreeMap::new();
    for (id, (ls, chunks)) in series.iter().enumerate() {
        if id > 0 && series[id - 1].0 >= *ls {
            return Err(BlockError::Invalid(format!(
                "index: series not sorted or duplicated at {ls}"
            )));
        }
        put_uvarint(&mut ser_sec, ls.len() as u64);
        for l in ls {
            let n = syms[l.name.as_str()];
            let v = syms[l.value.as_str()];
            put_uvarint(&mut ser_sec, u64::from(n));
            put_uvarint(&mut ser_sec, u64::from(v));
            post.entry(n)
                .or_default()
                .entry(v)
                .or_default()
                .insert(id as u32);
        }
        put_uvarint(&mut ser_sec, chunks.len() as u64);
        let mut prev = base;
        for c in chunks {
            put_varint(&mut ser_sec, c.mint.wrapping_sub(prev));
            put_uvarint(&mut ser_sec, c.maxt.wrapping_sub(c.mint) as u64);
            put_uvarint(&mut ser_sec, c.chunk_ref);
            prev = c.maxt;
        }
    }
    let mut post_sec = Vec::new();
    put_uvarint(&mut post_sec, post.len() as u64);
    let mut bm = Vec::new();
    for (n, vals) in &post {
        put_uvarint(&mut post_sec, u64::from(*n));
        put_uvarint(&mut post_sec, vals.len() as u64);
        for (v, b) in vals {
            put_uvarint(&mut post_sec, u64::from(*v));
            bm.clear();
            b.serialize_into(&mut bm)
                .map_err(|e| BlockError::io(path, e))?;
            put_bytes(&mut post_sec, &bm);
        }
    }
    // The reader keeps u32 offsets into the series and postings sections.
    if ser_sec.len() > u32::MAX as usize || post_sec.len() > u32::MAX as usize {
        return Err(BlockError::Invalid(format!(
            "{}: index sections over 4 GiB are not supported; split the block",
            path.display()
        )));
    }
    // Assemble.
    let mut out = Vec::with_capacity(sym_sec.len() + ser_sec.len() + post_sec.len() + 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0, 0, 0]);
    let mut toc = Vec::new();
    for sec in [&sym_sec, &ser_sec, &post_sec] {
        let (data, raw_len): (Cow<'_, [u8]>, u64) = match compress(sec) {
            Some(c) => (Cow::Owned(c), sec.len() as u64),
            None => (Cow::Borrowed(sec.as_slice()), 0),
        };
        toc.extend_from_slice(&(out.len() as u64).to_le_bytes());
        toc.extend_from_slice(&(data.len() as u64).to_le_bytes());
        toc.extend_from_slice(&raw_len.to_le_bytes());
        toc.extend_from_slice(&crc32c::crc32c(&data).to_le_bytes());
        out.extend_from_slice(&data);
    }
    let toc_crc = crc32c::crc32c(&toc);
    out.extend_from_slice(&toc);
    out.extend_from_slice(&toc_crc.to_le_bytes());
    out.extend_from_slice(MAGIC);
    let mut f = File::create(path).map_err(|e| BlockError::io(path, e))?;
    f.write_all(&out).map_err(|e| BlockError::io(path, e))?;
    f.sync_all().map_err(|e| BlockError::io(path, e))?;
    Ok(out.len() as u64)
}

fn compress(sec: &[u8]) -> Option<Vec<u8>> {
    if sec.len() < COMPRESS_MIN {
        return None;
    }
    // High ratio for the usual small sections; fast for big ones so large
    // blocks still write quickly.
    let level = match sec.len() {
        0..=262_143 => 19,
        262_144..=16_777_215 => 9,
        _ => 3,
    };
    let c = zstd::bulk::compress(sec, level).ok()?;
    (c.len() + c.len() / 16 < sec.len()).then_some(c)
}

/// A verified, parsed index. Symbols and the postings table are held in
/// memory; series entries are decoded on demand.
#[derive(Debug)]
pub struct IndexReader {
    path: PathBuf,
    symbols: Vec<String>,
    base: i64,
    series: Section,
    series_offsets: Vec<u32>,
    postings: Section,
    /// Label name -> (value symbol, offset, len) sorted by value.
    table: HashMap<String, Vec<(u32, u32, u32)>>,
}

#[derive(Debug)]
enum Section {
    Mapped {
        map: std::sync::Arc<Mmap>,
        start: usize,
        end: usize,
    },
    Owned(Vec<u8>),
}

impl Section {
    fn bytes(&self) -> &[u8] {
        match self {
            Section::Mapped { map, start, end } => &map[*start..*end],
            Section::Owned(v) => v,
        }
    }
}

impl IndexReader {
    /// Opens and verifies `path`: header, TOC and every section checksum.
    pub fn open(path: &Path) -> Result<Self, BlockError> {
        let f = File::open(path).map_err(|e| BlockError::io(path, e))?;
        // SAFETY: block files are immutable once written.
        let map =
            std::sync::Arc::new(unsafe { Mmap::map(&f) }.map_err(|e| BlockError::io(path, e))?);
        let corrupt = |r: &str| BlockError::corrupt(path, "index", r);
        let m: &[u8] = &map;
        if m.len() < HEADER_LEN + TOC_LEN || &m[..4] != MAGIC || &m[m.len() - 4..] != MAGIC {
            return Err(corrupt("bad magic or too short"));
        }
        if m[4] != 1 {
            return Err(corrupt("unsupported version"));
        }
        let toc_start = m.len() - TOC_LEN;
        let toc = &m[toc_start..toc_start + NSECTIONS * TOC_ENTRY];
        let want = u32::from_le_bytes([
            m[m.len() - 8],
            m[m.len() - 7],
            m[m.len() - 6],
            m[m.len() - 5],
        ]);
        if crc32c::crc32c(toc) != want {
            return Err(corrupt("table of contents checksum mismatch"));
        }
        let mut secs = Vec::with_capacity(NSECTIONS);
        let mut d = Decbuf::new(toc);
        let names = ["symbols", "series", "postings"];
        for name in names {
            let de = |e: DecodeError| BlockError::corrupt(path, "index", &format!("TOC: {e}"));
            let off = d.u64_le().map_err(de)? as usize;
            let len = d.u64_le().map_err(de)? as usize;
            let raw_len = d.u64_le().map_err(de)? as usize;
            let crc = d.u32_le().map_err(de)?;
            if off < HEADER_LEN || off.checked_add(len).is_none_or(|e| e > toc_start) {
                return Err(corrupt(&format!("{name} section out of bounds")));
            }
            if crc32c::crc32c(&m[off..off + len]) != crc {
                return Err(corrupt(&format!("{name} section checksum mismatch")));
            }
            let sec = if raw_len == 0 {
                Section::Mapped {
                    map: map.clone(),
                    start: off,
                    end: off + len,
                }
            } else {
                let raw = zstd::bulk::decompress(&m[off..off + len], raw_len)
                    .map_err(|e| corrupt(&format!("{name} section: decompress: {e}")))?;
                if raw.len() != raw_len {
                    return Err(corrupt(&format!(
                        "{name} section: wrong decompressed length"
                    )));
                }
                Section::Owned(raw)
            };
            secs.push(sec);
        }
        let postings = secs.pop().ok_or_else(|| corrupt("BUG"))?;
        let series = secs.pop().ok_or_else(|| corrupt("BUG"))?;
        let symsec = secs.pop().ok_or_else(|| corrupt("BUG"))?;
        let in_sec = |name: &'static str| {
            move |e: DecodeError| {
                BlockError::corrupt(path, "index", &format!("{name} section: {e}"))
            }
        };

        // Symbols.
        let mut d = Decbuf::new(symsec.bytes());
        let e = in_sec("symbols");
        let n = d.len_at_most(d.remaining()).map_err(e)?;
        let mut symbols: Vec<String> = Vec::with_capacity(n);
        for _ in 0..n {
            let shared = d.uvarint().map_err(e)? as usize;
            let suffix = d.len_bytes().map_err(e)?;
            let prev = symbols.last().map(String::as_bytes).unwrap_or(b"");
            if shared > prev.len() {
                return Err(corrupt("symbols section: shared prefix too long"));
            }
            let mut s = Vec::with_capacity(shared + suffix.len());
            s.extend_from_slice(&prev[..shared]);
            s.extend_from_slice(suffix);
            symbols
                .push(String::from_utf8(s).map_err(|_| corrupt("symbols section: invalid UTF-8"))?);
        }

        // Series offsets.
        let e = in_sec("series");
        let sb = series.bytes();
        let mut d = Decbuf::new(sb);
        let n = d.len_at_most(sb.len()).map_err(e)?;
        let base = d.varint().map_err(e)?;
        let mut series_offsets = Vec::with_capacity(n);
        for _ in 0..n {
            series_offsets.push(d.position() as u32);
            let nl = d.len_at_most(d.remaining()).map_err(e)?;
            for _ in 0..nl * 2 {
                d.uvarint().map_err(e)?;
            }
            let nc = d.len_at_most(d.remaining()).map_err(e)?;
            for _ in 0..nc * 3 {
                d.uvarint().map_err(e)?;
            }
        }

        // Postings table.
        let e = in_sec("postings");
        let pb = postings.bytes();
        let mut d = Decbuf::new(pb);
        let mut table = HashMap::new();
        let nn = d.len_at_most(symbols.len()).map_err(e)?;
        for _ in 0..nn {
            let name = d.len_at_most(symbols.len().saturating_sub(1)).map_err(e)?;
            let nv = d.len_at_most(symbols.len()).map_err(e)?;
            let mut vals = Vec::with_capacity(nv);
            for _ in 0..nv {
                let v = d.len_at_most(symbols.len().saturating_sub(1)).map_err(e)? as u32;
                let b = d.len_bytes().map_err(e)?;
                let off = (b.as_ptr() as usize - pb.as_ptr() as usize) as u32;
                vals.push((v, off, b.len() as u32));
            }
            table.insert(symbols[name].clone(), vals);
        }
        Ok(IndexReader {
            path: path.to_path_buf(),
            symbols,
            base,
            series_offsets,
            series,
            postings,
            table,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of series.
    pub fn num_series(&self) -> u32 {
        self.series_offsets.len() as u32
    }

    /// Every series id.
    pub fn all_postings(&self) -> RoaringBitmap {
        let mut b = RoaringBitmap::new();
        b.insert_range(0..self.num_series());
        b
    }

    /// Sorted label names.
    pub fn label_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.table.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Sorted values of `name` (empty when the label does not occur).
    pub fn label_values(&self, name: &str) -> Vec<&str> {
        match self.table.get(name) {
            Some(vals) => vals
                .iter()
                .map(|&(v, _, _)| self.symbols[v as usize].as_str())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Postings of `name="value"` (empty when absent).
    pub fn postings(&self, name: &str, value: &str) -> Result<RoaringBitmap, BlockError> {
        let Some(vals) = self.table.get(name) else {
            return Ok(RoaringBitmap::new());
        };
        match vals.binary_search_by(|&(v, _, _)| self.symbols[v as usize].as_str().cmp(value)) {
            Ok(i) => self.postings_at(vals[i].1, vals[i].2),
            Err(_) => Ok(RoaringBitmap::new()),
        }
    }

    /// Union of the postings of every value of `name` accepted by `pred`.
    pub fn postings_matching(
        &self,
        name: &str,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Result<RoaringBitmap, BlockError> {
        let mut out = RoaringBitmap::new();
        if let Some(vals) = self.table.get(name) {
            for &(v, off, len) in vals {
                if pred(&self.symbols[v as usize]) {
                    out |= self.postings_at(off, len)?;
                }
            }
        }
        Ok(out)
    }

    fn postings_at(&self, off: u32, len: u32) -> Result<RoaringBitmap, BlockError> {
        let b = &self.postings.bytes()[off as usize..(off + len) as usize];
        RoaringBitmap::deserialize_from(b)
            .map_err(|e| BlockError::corrupt(&self.path, "index", &format!("postings: {e}")))
    }

    /// Labels and chunk metas of series `id`.
    pub fn series(&self, id: u32) -> Result<(Labels, Vec<ChunkMeta>), BlockError> {
        let mut chunks = Vec::new();
        let ls = self.series_into(id, &mut chunks)?;
        Ok((ls, chunks))
    }

    /// Like [`IndexReader::series`], reusing `chunks`.
    pub fn series_into(&self, id: u32, chunks: &mut Vec<ChunkMeta>) -> Result<Labels, BlockError> {
        let e =
            |e: DecodeError| BlockError::corrupt(&self.path, "index", &format!("series {id}: {e}"));
        let off = *self.series_offsets.get(id as usize).ok_or_else(|| {
            BlockError::corrupt(&self.path, "index", &format!("series {id} out of range"))
        })?;
        let mut d = Decbuf::new(&self.series.bytes()[off as usize..]);
        let nl = d.len_at_most(d.remaining()).map_err(e)?;
        let mut labels = Vec::with_capacity(nl);
        let sym = |i: u64| {
            self.symbols.get(i as usize).cloned().ok_or_else(|| {
                BlockError::corrupt(
                    &self.path,
                    "index",
                    &format!("series {id}: symbol out of range"),
                )
            })
        };
        for _ in 0..nl {
            let n = d.uvarint().map_err(e)?;
            let v = d.uvarint().map_err(e)?;
            labels.push(Label {
                name: sym(n)?,
                value: sym(v)?,
            });
        }
        let nc = d.len_at_most(d.remaining()).map_err(e)?;
        chunks.clear();
        let mut prev = self.base;
        for _ in 0..nc {
            let mint = prev.wrapping_add(d.varint().map_err(e)?);
            let maxt = mint.wrapping_add(d.uvarint().map_err(e)? as i64);
            let chunk_ref = d.uvarint().map_err(e)?;
            chunks.push(ChunkMeta {
                mint,
                maxt,
                chunk_ref,
            });
            prev = maxt;
        }
        Ok(Labels::from_vec(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("index");
        let mut series = Vec::new();
        for i in 0..300 {
            let ls = Labels::from_pairs([
                ("__name__", format!("m{}", i % 7)),
                ("i", format!("{i:04}")),
                ("job", "node".into()),
            ]);
            series.push((
                ls,
                vec![ChunkMeta {
                    mint: 1000 + i,
                    maxt: 5000,
                    chunk_ref: 8 + i as u64 * 10,
                }],
            ));
        }
        series.sort_by(|a, b| a.0.cmp(&b.0));
        write_index(&p, 1000, &series).unwrap();
        let r = IndexReader::open(&p).unwrap();
        assert_eq!(r.num_series(), 300);
        for (id, s) in series.iter().enumerate() {
            assert_eq!(&r.series(id as u32).unwrap(), s);
        }
        assert_eq!(r.label_names(), vec!["__name__", "i", "job"]);
        assert_eq!(r.label_values("job"), vec!["node"]);
        assert_eq!(r.postings("job", "node").unwrap().len(), 300);
        assert_eq!(r.postings("__name__", "m3").unwrap().len(), 43);
        assert!(r.postings("__name__", "zz").unwrap().is_empty());
        let mut b = std::fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 1;
        std::fs::write(&p, &b).unwrap();
        let err = IndexReader::open(&p).unwrap_err().to_string();
        assert!(err.contains("index") && err.contains("checksum"), "{err}");
    }
}
