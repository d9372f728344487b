//! Head snapshots: on a clean shutdown the whole head (every series with
//! its labels, id, closed chunks and open chunk with the XOR appender
//! state) is written to `<db>/head_snapshot` together with the WAL
//! position it covers. The next open loads it with bulk copies (no sample
//! is decoded or re-encoded) and replays only the WAL written after that
//! position, instead of the whole log. Byte format:
//! `docs/format/head-snapshot.md`. Prometheus has the same idea behind
//! `--enable-feature=memory-snapshot-on-shutdown`.
//!
//! # Why a snapshot never adds, drops or duplicates a sample
//!
//! 1. **The WAL alone always rebuilds the head.** Nothing is ever removed
//!    from the WAL because a snapshot exists; the snapshot is derived data.
//!    So falling back to a full replay is always lossless, and any doubt
//!    about a snapshot (bad magic or version, checksum, truncation, an
//!    inconsistent record, a WAL position that no longer exists, a
//!    different chunk range) means: warn, delete it, replay the whole WAL.
//! 2. **A snapshot is the head state at exactly its position P.** It is
//!    written by [`crate::Db::close`] after the head refuses commits and
//!    the commits already past that check have finished (they hold the
//!    commit lock while logging and applying), under the read side of the
//!    commit lock (no truncation meanwhile), with P read under that lock:
//!    every commit logged before P is in the head, none after.
//! 3. **Records after P are exactly the later commits.** The WAL writer
//!    never appends to a segment it did not create (every open starts a new
//!    segment), so the log after P is the rest of segment `P.segment`
//!    (empty after a clean close) followed by every later segment; replaying
//!    them on the snapshot applies each later commit once, in log order, as
//!    the running process did. Series ids in those records are head ids;
//!    the snapshot stores each series' id and loading re-creates it under
//!    that id, so records naming series created before P find them.
//! 4. **Only a checkpoint rewrites the log before its end.** `checkpoint.N`
//!    replaces segments `<= N`; when `N >= P.segment` it may mix commits
//!    from before and after P, and segment `P.segment` is deleted: the
//!    position is gone and the snapshot is not used (rule 1). A checkpoint
//!    `N < P.segment` only holds commits before P, already in the snapshot,
//!    and is skipped. A segment shorter than `P.offset` (truncated by a
//!    torn-tail repair after a power loss) also voids the snapshot.
//! 5. **So a stale snapshot stays correct while P exists**, e.g. after a
//!    restart that loaded it, appended, and was killed: loading it and
//!    replaying from P gives the state the killed process had. It is
//!    therefore not deleted on load; the next clean shutdown replaces it by
//!    an atomic rename. Torn-tail and corruption repair of the segments
//!    after P work as in a full replay.
//! 6. Head truncation after P and before a crash: samples it dropped come
//!    back only if they are still in the WAL after P, exactly as a full
//!    replay would bring them back; they are also in the block just
//!    written, and queries de-duplicate by timestamp.
//!
//! Series not yet logged to the WAL (created by an append whose commit
//! never happened) are not written: a full replay would not have them
//! either.

use super::symbols::{self, pairs};
use super::{slot_of, ClosedChunk, Head, MemSeries, SeriesData, SeriesRc, SHARDS, SHARD_BITS};
use crate::chunkenc::{XorAppendState, XorChunk};
use crate::wal::record::{put_uvarint, put_varint};
use crate::wal::{self, WalPosition};
use parking_lot::Mutex;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// File name of the snapshot in the database directory.
pub const SNAPSHOT_FILE: &str = "head_snapshot";
/// Name of the file being written (renamed to [`SNAPSHOT_FILE`] when complete).
pub const SNAPSHOT_TMP_FILE: &str = "head_snapshot.tmp";

/// File magic, then the version byte and three zero bytes.
const MAGIC: [u8; 4] = *b"KBHS";
/// Current format version.
pub const VERSION: u8 = 1;
const FILE_HEADER_LEN: usize = 8;
/// Record header: type (1) + payload length u32 LE (4) + CRC32C u32 LE (4).
const FRAME_HEADER_LEN: usize = 9;

const T_META: u8 = 1;
const T_SYMBOLS: u8 = 2;
const T_SERIES: u8 = 3;
const T_END: u8 = 4;

/// Meta payload: u32 + 8 x 8 bytes.
const META_LEN: usize = 4 + 8 * 8;
/// End payload: 4 x u64.
const END_LEN: usize = 4 * 8;
/// Records are cut once their payload exceeds this.
const TARGET_RECORD: usize = 1 << 20;

/// Errors reading or writing a head snapshot, with the file involved.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("head snapshot {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("head snapshot {path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

impl SnapshotError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn invalid(path: &Path, msg: impl Into<String>) -> Self {
        SnapshotError::Invalid {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
}

/// What a snapshot says about itself (its meta record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// The WAL position the snapshot covers (every commit before it).
    pub wal: WalPosition,
    /// The head's chunk range when written (chunks are cut on its multiples).
    pub chunk_range_ms: i64,
    /// Head min/max time (`i64::MAX`/`i64::MIN` when empty).
    pub min_time: i64,
    pub max_time: i64,
    /// Appends older than this were refused (set by head truncation).
    pub min_valid_time: i64,
    pub num_series: u64,
    pub num_symbols: u64,
    /// Unix milliseconds when written (informative only).
    pub created_ms: i64,
}

/// Counts of a written or loaded snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    pub series: u64,
    pub chunks: u64,
    pub samples: u64,
    pub bytes: u64,
}

impl Head {
    /// Waits until commits that started before the head was closed have
    /// finished (they hold the commit lock while logging and applying).
    pub(crate) fn wait_for_commits(&self) {
        drop(self.inner.commit_lock.write());
    }

    /// Number of samples in the head's chunks.
    #[cfg(test)]
    pub(crate) fn num_samples_in_chunks(&self) -> u64 {
        let mut n = 0;
        for shard in &self.inner.slab {
            for s in shard.read().slots.iter().flatten() {
                let d = s.data.lock();
                n += d.closed.iter().map(|c| chunk_samples(&c.data)).sum::<u64>();
                n += d.head.num_samples() as u64;
            }
        }
        n
    }
}

/// Sample count in an encoded XOR chunk's header.
fn chunk_samples(b: &[u8]) -> u64 {
    match b {
        [a, b, ..] => u16::from_be_bytes([*a, *b]) as u64,
        _ => 0,
    }
}

fn frame(out: &mut Vec<u8>, typ: u8, payload: &[u8]) {
    out.push(typ);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[typ]), payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Writes the snapshot of `head` at WAL position `wal` to
/// `dir/`[`SNAPSHOT_FILE`]: into [`SNAPSHOT_TMP_FILE`], fsynced, renamed
/// over the old snapshot, directory fsynced. The caller guarantees that no
/// commit can run any more and that `wal` is the end of the log (see the
/// module docs, rule 2); truncation is excluded here by holding the read
/// side of the commit lock.
pub(crate) fn write(
    head: &Head,
    dir: &Path,
    wal: WalPosition,
) -> Result<SnapshotStats, SnapshotError> {
    let inner = &head.inner;
    let tmp = dir.join(SNAPSHOT_TMP_FILE);
    let _g = inner.commit_lock.read();
    let mut series: Vec<SeriesRc> =
        Vec::with_capacity(inner.num_series.load(Ordering::Relaxed) as usize);
    for shard in &inner.slab {
        series.extend(
            shard
                .read()
                .slots
                .iter()
                .flatten()
                .filter(|s| s.data.lock().logged)
                .cloned(),
        );
    }
    series.sort_unstable_by_key(|s| slot_of(s.id));

    // Only the symbols the written series use, renumbered densely in order
    // of first use (the table keeps strings of removed series forever).
    let syms = inner.symbols.read();
    let max_sym = series
        .iter()
        .flat_map(|s| pairs(&s.lset))
        .map(|(n, v)| n.max(v))
        .max()
        .map_or(0, |m| m as usize + 1);
    let mut remap = vec![u32::MAX; max_sym];
    let mut order: Vec<u32> = Vec::new();
    for s in &series {
        for (n, v) in pairs(&s.lset) {
            for id in [n, v] {
                let r = &mut remap[id as usize];
                if *r == u32::MAX {
                    *r = order.len() as u32;
                    order.push(id);
                }
            }
        }
    }

    let meta = SnapshotMeta {
        wal,
        chunk_range_ms: inner.opts.chunk_range_ms,
        min_time: inner.min_time.load(Ordering::Acquire),
        max_time: inner.max_time.load(Ordering::Acquire),
        min_valid_time: inner.min_valid_time.load(Ordering::Acquire),
        num_series: series.len() as u64,
        num_symbols: order.len() as u64,
        created_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    };

    let file = std::fs::File::create(&tmp).map_err(|e| SnapshotError::io(&tmp, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut st = SnapshotStats::default();
    let mut fr = Vec::with_capacity(TARGET_RECORD + (64 << 10));
    let mut payload = Vec::with_capacity(TARGET_RECORD + (64 << 10));
    let mut flush = |fr: &mut Vec<u8>, st: &mut SnapshotStats| -> Result<(), SnapshotError> {
        st.bytes += fr.len() as u64;
        out.write_all(fr).map_err(|e| SnapshotError::io(&tmp, e))?;
        fr.clear();
        Ok(())
    };

    let mut header = [0u8; FILE_HEADER_LEN];
    header[..4].copy_from_slice(&MAGIC);
    header[4] = VERSION;
    fr.extend_from_slice(&header);
    encode_meta(&mut payload, &meta);
    frame(&mut fr, T_META, &payload);
    flush(&mut fr, &mut st)?;

    // Symbols: count, then (len, bytes) each.
    let mut i = 0;
    while i < order.len() {
        payload.clear();
        let mut body = Vec::new();
        let mut n = 0u64;
        while i < order.len() && body.len() < TARGET_RECORD {
            let s = syms.get(order[i]).unwrap_or_default();
            put_uvarint(&mut body, s.len() as u64);
            body.extend_from_slice(s.as_bytes());
            n += 1;
            i += 1;
        }
        put_uvarint(&mut payload, n);
        payload.extend_from_slice(&body);
        frame(&mut fr, T_SYMBOLS, &payload);
        flush(&mut fr, &mut st)?;
    }
    drop(syms);

    // Series, in batches.
    let mut body = Vec::with_capacity(TARGET_RECORD + (64 << 10));
    let mut lset = Vec::with_capacity(64);
    let mut n_in_batch = 0u64;
    let mut emit = |body: &mut Vec<u8>,
                    n: &mut u64,
                    payload: &mut Vec<u8>,
                    fr: &mut Vec<u8>,
                    st: &mut SnapshotStats|
     -> Result<(), SnapshotError> {
        payload.clear();
        put_uvarint(payload, *n);
        payload.extend_from_slice(body);
        frame(fr, T_SERIES, payload);
        body.clear();
        *n = 0;
        flush(fr, st)
    };
    for s in &series {
        put_uvarint(&mut body, s.id);
        lset.clear();
        for (n, v) in pairs(&s.lset) {
            put_uvarint(&mut lset, remap[n as usize] as u64);
            put_uvarint(&mut lset, remap[v as usize] as u64);
        }
        put_uvarint(&mut body, lset.len() as u64);
        body.extend_from_slice(&lset);
        let d = s.data.lock();
        put_uvarint(&mut body, d.closed.len() as u64);
        for c in d.closed.iter() {
            put_varint(&mut body, c.min_t);
            put_varint(&mut body, c.max_t);
            put_uvarint(&mut body, c.data.len() as u64);
            body.extend_from_slice(&c.data);
            st.chunks += 1;
            st.samples += chunk_samples(&c.data);
        }
        match &d.head {
            h if h.num_samples() > 0 => {
                body.push(1);
                let a = h.append_state();
                body.extend_from_slice(&a.first_t.to_le_bytes());
                body.extend_from_slice(&a.t.to_le_bytes());
                body.extend_from_slice(&a.v.to_le_bytes());
                body.extend_from_slice(&a.t_delta.to_le_bytes());
                body.extend_from_slice(&[a.leading, a.trailing, a.free_bits]);
                let b = h.bytes();
                put_uvarint(&mut body, b.len() as u64);
                body.extend_from_slice(&b);
                st.chunks += 1;
                st.samples += h.num_samples() as u64;
            }
            _ => body.push(0),
        }
        drop(d);
        st.series += 1;
        n_in_batch += 1;
        if body.len() >= TARGET_RECORD {
            emit(&mut body, &mut n_in_batch, &mut payload, &mut fr, &mut st)?;
        }
    }
    if n_in_batch > 0 {
        emit(&mut body, &mut n_in_batch, &mut payload, &mut fr, &mut st)?;
    }

    payload.clear();
    for x in [st.series, meta.num_symbols, st.chunks, st.samples] {
        payload.extend_from_slice(&x.to_le_bytes());
    }
    frame(&mut fr, T_END, &payload);
    flush(&mut fr, &mut st)?;
    let file = out
        .into_inner()
        .map_err(|e| SnapshotError::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| SnapshotError::io(&tmp, e))?;
    drop(file);
    let dst = dir.join(SNAPSHOT_FILE);
    std::fs::rename(&tmp, &dst).map_err(|e| SnapshotError::io(&dst, e))?;
    wal::sync_dir(dir).map_err(|e| SnapshotError::invalid(dir, e.to_string()))?;
    Ok(st)
}

fn encode_meta(out: &mut Vec<u8>, m: &SnapshotMeta) {
    out.clear();
    out.extend_from_slice(&m.wal.segment.to_le_bytes());
    out.extend_from_slice(&m.wal.offset.to_le_bytes());
    for x in [
        m.chunk_range_ms,
        m.min_time,
        m.max_time,
        m.min_valid_time,
        m.num_series as i64,
        m.num_symbols as i64,
        m.created_ms,
    ] {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// A snapshot file read into memory and checked: magic, version, every
/// record's checksum, record order, the end record. Its series are decoded
/// only by [`Snapshot::load_into`].
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    data: Vec<u8>,
    meta: SnapshotMeta,
    /// (type, payload range) of every record after the meta record.
    records: Vec<(u8, Range<usize>)>,
}

impl Snapshot {
    /// Reads and checks `dir/`[`SNAPSHOT_FILE`]; `Ok(None)` if there is none.
    pub fn read(dir: &Path) -> Result<Option<Snapshot>, SnapshotError> {
        let path = dir.join(SNAPSHOT_FILE);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SnapshotError::io(&path, e)),
        };
        Self::parse(path, data).map(Some)
    }

    /// Checks the framing of `data` (the contents of `path`).
    pub fn parse(path: PathBuf, data: Vec<u8>) -> Result<Snapshot, SnapshotError> {
        let bad = |msg: String| SnapshotError::invalid(&path, msg);
        if data.len() < FILE_HEADER_LEN || data[..4] != MAGIC {
            return Err(bad("not a head snapshot (bad magic)".into()));
        }
        if data[4] != VERSION || data[5..8] != [0, 0, 0] {
            return Err(bad(format!(
                "unsupported version {} (this build reads {VERSION})",
                data[4]
            )));
        }
        let mut pos = FILE_HEADER_LEN;
        let mut records = Vec::new();
        let mut ended = false;
        while pos < data.len() {
            if ended {
                return Err(bad(format!("data after the end record at offset {pos}")));
            }
            let Some(h) = data.get(pos..pos + FRAME_HEADER_LEN) else {
                return Err(bad(format!("truncated record header at offset {pos}")));
            };
            let typ = h[0];
            let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
            let crc = u32::from_le_bytes([h[5], h[6], h[7], h[8]]);
            let start = pos + FRAME_HEADER_LEN;
            let Some(payload) = data.get(start..start.saturating_add(len)) else {
                return Err(bad(format!("truncated record at offset {pos}")));
            };
            let got = crc32c::crc32c_append(crc32c::crc32c(&[typ]), payload);
            if got != crc {
                return Err(bad(format!(
                    "checksum mismatch in record at offset {pos}: want {crc:#010x}, got {got:#010x}"
                )));
            }
            let expect_first = records.is_empty();
            match typ {
                T_META if expect_first => {}
                T_SYMBOLS | T_SERIES | T_END if !expect_first => {}
                _ => return Err(bad(format!("unexpected record type {typ} at offset {pos}"))),
            }
            ended = typ == T_END;
            records.push((typ, start..start + len));
            pos = start + len;
        }
        if !ended {
            return Err(bad("no end record (file truncated)".into()));
        }
        let meta_range = records.remove(0).1;
        let meta = decode_meta(&data[meta_range]).ok_or_else(|| bad("bad meta record".into()))?;
        Ok(Snapshot {
            path,
            data,
            meta,
            records,
        })
    }

    /// The snapshot's meta record.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Checks that the snapshot can be continued by the WAL in `wal_dir`
    /// (module docs, rule 4): its segment is there and long enough, and no
    /// checkpoint covers it. Returns why not.
    pub fn check_wal(&self, wal_dir: &Path) -> Result<(), String> {
        let p = self.meta.wal;
        match wal::latest_checkpoint(wal_dir) {
            Ok(Some((n, _))) if n >= p.segment => {
                return Err(format!(
                    "WAL checkpoint {n} covers the snapshot's segment {}",
                    p.segment
                ))
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        let seg = wal_dir.join(wal::segment_name(p.segment));
        match std::fs::metadata(&seg) {
            Ok(m) if m.is_file() && m.len() >= p.offset => Ok(()),
            Ok(m) => Err(format!(
                "WAL segment {} is {} bytes, the snapshot covers {}",
                seg.display(),
                m.len(),
                p.offset
            )),
            Err(e) => Err(format!("WAL segment {}: {e}", seg.display())),
        }
    }

    /// Loads the snapshot into `head`, which must be new and empty (no
    /// series, no symbols, WAL not attached). On error the head is left
    /// partly filled: the caller discards it.
    pub(crate) fn load_into(&self, head: &Head) -> Result<SnapshotStats, SnapshotError> {
        let inner = &head.inner;
        let bad = |msg: String| SnapshotError::invalid(&self.path, msg);
        if inner.num_series.load(Ordering::Acquire) != 0
            || inner.next_slot.load(Ordering::Acquire) != 1
        {
            return Err(bad("BUG: snapshot loaded into a non-empty head".into()));
        }
        if self.meta.chunk_range_ms != inner.opts.chunk_range_ms {
            return Err(bad(format!(
                "written with chunk range {} ms, the head uses {} ms",
                self.meta.chunk_range_ms, inner.opts.chunk_range_ms
            )));
        }
        let mut st = SnapshotStats {
            bytes: self.data.len() as u64,
            ..Default::default()
        };
        let mut syms = inner.symbols.write();
        let mut nsyms: u64 = 0;
        let mut postings = inner.postings.write();
        let mut hash_buf: Vec<u8> = Vec::with_capacity(256);
        let mut max_slot = 0u32;
        for (typ, range) in &self.records {
            let mut d = Dec::new(&self.data[range.clone()]);
            match *typ {
                T_SYMBOLS => {
                    if st.series > 0 {
                        return Err(bad("symbols after series".into()));
                    }
                    let n = d
                        .uvarint()
                        .ok_or_else(|| bad("bad symbols record".into()))?;
                    for _ in 0..n {
                        let s = d.str().ok_or_else(|| bad("bad symbol".into()))?;
                        if syms.intern(s) as u64 != nsyms {
                            return Err(bad(format!("duplicate symbol {s:?}")));
                        }
                        nsyms += 1;
                    }
                    d.done()
                        .ok_or_else(|| bad("trailing bytes in symbols record".into()))?;
                }
                T_SERIES => {
                    let n = d.uvarint().ok_or_else(|| bad("bad series record".into()))?;
                    for _ in 0..n {
                        let (ms, slot) =
                            decode_series(&mut d, nsyms, &syms, &mut hash_buf, &mut st)
                                .map_err(|m| bad(format!("series {}: {m}", st.series)))?;
                        let hash = xxhash_rust::xxh3::xxh3_64(&hash_buf);
                        {
                            let mut h = inner.hashes[(hash as usize) & (SHARDS - 1)].lock();
                            let twin = h.t.find(hash, |&o| {
                                inner
                                    .series_by_slot(o)
                                    .is_some_and(|o| pairs(&o.lset).eq(pairs(&ms.lset)))
                            });
                            if twin.is_some() {
                                return Err(bad(format!(
                                    "series {} has the labels of another series",
                                    ms.id
                                )));
                            }
                            // The symbol table is locked here: rehash with it.
                            h.t.insert_unique(hash, slot, |&o| {
                                inner
                                    .series_by_slot(o)
                                    .map_or(0, |o| syms.resolve(&o.lset).hash())
                            });
                        }
                        let ms = SeriesRc::new(ms);
                        {
                            let mut sh = inner.slab[(slot as usize) & (SHARDS - 1)].write();
                            let idx = (slot >> SHARD_BITS) as usize;
                            if sh.slots.len() <= idx {
                                sh.slots.resize(idx + 1, None);
                            }
                            if sh.slots[idx].is_some() {
                                return Err(bad(format!("two series in slot {slot}")));
                            }
                            sh.slots[idx] = Some(ms.clone());
                        }
                        postings.add(pairs(&ms.lset), slot);
                        max_slot = max_slot.max(slot);
                        st.series += 1;
                    }
                    d.done()
                        .ok_or_else(|| bad("trailing bytes in series record".into()))?;
                }
                T_END => {
                    let e = self.data.get(range.clone()).filter(|b| b.len() == END_LEN);
                    let e = e.ok_or_else(|| bad("bad end record".into()))?;
                    let get = |i: usize| {
                        u64::from_le_bytes(e[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]))
                    };
                    let want = (get(0), get(1), get(2), get(3));
                    let got = (st.series, nsyms, st.chunks, st.samples);
                    if want != got
                        || want.0 != self.meta.num_series
                        || want.1 != self.meta.num_symbols
                    {
                        return Err(bad(format!(
                            "end record says (series, symbols, chunks, samples) = {want:?}, read {got:?}"
                        )));
                    }
                }
                t => return Err(bad(format!("BUG: unchecked record type {t}"))),
            }
        }
        drop(postings);
        drop(syms);
        inner
            .next_slot
            .fetch_max(max_slot.saturating_add(1), Ordering::AcqRel);
        inner.generation.fetch_add(st.series, Ordering::AcqRel);
        inner.num_series.fetch_add(st.series, Ordering::AcqRel);
        inner.series_created.fetch_add(st.series, Ordering::Relaxed);
        inner
            .samples_appended
            .fetch_add(st.samples, Ordering::Relaxed);
        inner.min_time.store(self.meta.min_time, Ordering::Release);
        inner.max_time.store(self.meta.max_time, Ordering::Release);
        inner
            .min_valid_time
            .store(self.meta.min_valid_time, Ordering::Release);
        Ok(st)
    }
}

fn decode_meta(b: &[u8]) -> Option<SnapshotMeta> {
    if b.len() != META_LEN {
        return None;
    }
    let i = |k: usize| i64::from_le_bytes(b[4 + 8 * k..12 + 8 * k].try_into().unwrap_or([0; 8]));
    Some(SnapshotMeta {
        wal: WalPosition {
            segment: u32::from_le_bytes(b[0..4].try_into().ok()?),
            offset: i(0) as u64,
        },
        chunk_range_ms: i(1),
        min_time: i(2),
        max_time: i(3),
        min_valid_time: i(4),
        num_series: u64::try_from(i(5)).ok()?,
        num_symbols: u64::try_from(i(6)).ok()?,
        created_ms: i(7),
    })
}

/// Decodes one series entry; fills `hash_buf` with the bytes
/// [`koban_model::Labels::hash`] hashes (name, 0xff, value, 0xff, ...).
fn decode_series(
    d: &mut Dec<'_>,
    nsyms: u64,
    syms: &symbols::SymbolTable,
    hash_buf: &mut Vec<u8>,
    st: &mut SnapshotStats,
) -> Result<(MemSeries, u32), String> {
    let id = d.uvarint().ok_or("bad id")?;
    let slot = slot_of(id);
    if slot == 0 {
        return Err(format!("invalid id {id:#x}"));
    }
    let n = d.uvarint().ok_or("bad label set length")? as usize;
    let lset = d.bytes(n).ok_or("truncated label set")?;
    hash_buf.clear();
    let mut ld = Dec::new(lset);
    let mut npairs = 0;
    let mut last_name: Option<&str> = None;
    while !ld.is_empty() {
        let name = ld
            .uvarint()
            .filter(|&x| x < nsyms)
            .ok_or("bad label name")?;
        let value = ld
            .uvarint()
            .filter(|&x| x < nsyms)
            .ok_or("bad label value")?;
        let name = syms.get(name as u32).ok_or("bad label name")?;
        let value = syms.get(value as u32).ok_or("bad label value")?;
        if last_name.is_some_and(|l| l >= name) {
            return Err("labels not sorted".into());
        }
        last_name = Some(name);
        hash_buf.extend_from_slice(name.as_bytes());
        hash_buf.push(0xff);
        hash_buf.extend_from_slice(value.as_bytes());
        hash_buf.push(0xff);
        npairs += 1;
    }
    if npairs == 0 {
        return Err("no labels".into());
    }
    let mut data = SeriesData::new();
    data.logged = true;
    let nclosed = d.uvarint().ok_or("bad chunk count")?;
    for _ in 0..nclosed {
        let min_t = d.varint().ok_or("bad chunk min time")?;
        let max_t = d.varint().ok_or("bad chunk max time")?;
        let len = d.uvarint().ok_or("bad chunk length")? as usize;
        let b = d.bytes(len).ok_or("truncated chunk")?;
        if b.len() < 2 || min_t > max_t {
            return Err("bad closed chunk".into());
        }
        st.chunks += 1;
        st.samples += chunk_samples(b);
        data.closed.push(ClosedChunk {
            min_t,
            max_t,
            data: Arc::from(b),
        });
    }
    match d.byte().ok_or("bad head chunk flag")? {
        0 => {}
        1 => {
            let first_t = d.i64().ok_or("bad head chunk state")?;
            let t = d.i64().ok_or("bad head chunk state")?;
            let v = d.i64().ok_or("bad head chunk state")? as u64;
            let t_delta = d.i64().ok_or("bad head chunk state")?;
            let s = d.bytes(3).ok_or("bad head chunk state")?;
            let st8 = XorAppendState {
                first_t,
                t,
                v,
                t_delta,
                leading: s[0],
                trailing: s[1],
                free_bits: s[2],
            };
            let len = d.uvarint().ok_or("bad head chunk length")? as usize;
            let b = d.bytes(len).ok_or("truncated head chunk")?;
            let c = XorChunk::from_parts(b, st8).map_err(|e| e.to_string())?;
            if c.num_samples() == 0 {
                return Err("empty head chunk".into());
            }
            st.chunks += 1;
            st.samples += c.num_samples() as u64;
            data.head = c;
        }
        f => return Err(format!("bad head chunk flag {f}")),
    }
    Ok((
        MemSeries {
            id,
            lset: lset.into(),
            data: Mutex::new(data),
        },
        slot,
    ))
}

/// Bounds-checked little decoder (no panics on any input).
struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    fn new(b: &'a [u8]) -> Self {
        Dec { b, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn done(&self) -> Option<()> {
        self.is_empty().then_some(())
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut u = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return None;
            }
            u |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Some(u);
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i64> {
        let u = self.uvarint()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn i64(&mut self) -> Option<i64> {
        let b = self.bytes(8)?;
        Some(i64::from_le_bytes(b.try_into().ok()?))
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = self.uvarint()? as usize;
        std::str::from_utf8(self.bytes(n)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::HeadOptions;
    use koban_model::{Labels, MatchType, Matcher, STALE_NAN_BITS};
    use koban_storage::{Appendable, Queryable};

    #[test]
    fn hash_bytes_match_labels_hash() {
        let ls = Labels::from_pairs([("__name__", "up"), ("job", "a"), ("é", "日本"), ("z", "")]);
        let mut buf = Vec::new();
        for l in ls.iter() {
            buf.extend_from_slice(l.name.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(l.value.as_bytes());
            buf.push(0xff);
        }
        assert_eq!(xxhash_rust::xxh3::xxh3_64(&buf), ls.hash());
    }

    fn lbl(i: usize) -> Labels {
        Labels::from_pairs([
            ("__name__", format!("m{}", i % 3)),
            ("i", i.to_string()),
            ("job", "snap".to_string()),
        ])
    }

    fn val(i: usize, t: i64) -> f64 {
        match (i as i64 + t) % 5 {
            0 => f64::from_bits(STALE_NAN_BITS),
            1 => f64::from_bits(0x7ff8_0000_0000_0000 | (t as u64 & 0xfff)),
            _ => t as f64 * 0.37 - i as f64,
        }
    }

    fn head() -> Head {
        Head::new(HeadOptions {
            chunk_range_ms: 100_000,
        })
    }

    /// Appends samples t in `ts` (seconds) to series 0..n.
    fn fill(h: &Head, n: usize, ts: std::ops::Range<i64>) {
        for t in ts {
            let mut app = h.appender();
            for i in 0..n {
                app.append(0, &lbl(i), t * 1000, val(i, t)).unwrap();
            }
            app.commit().unwrap();
        }
    }

    fn dump(h: &Head) -> Vec<(String, Vec<(i64, u64)>)> {
        let q = h.querier(i64::MIN, i64::MAX).unwrap();
        let ms = [Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()];
        q.select(true, None, &ms)
            .unwrap()
            .map(|s| {
                let s = s.unwrap();
                let mut it = s.iter();
                let mut v = Vec::new();
                while let Some((t, x)) = it.next() {
                    v.push((t, x.to_bits()));
                }
                (s.labels().to_string(), v)
            })
            .collect()
    }

    const POS: WalPosition = WalPosition {
        segment: 7,
        offset: 1234,
    };

    /// A head with closed and open chunks, a truncation, a removed series
    /// (leaving unused symbols) and an unlogged series.
    fn sample_head() -> Head {
        let h = head();
        // Series 12 only has old samples: truncation removes it. (Appended
        // first: later the head refuses samples older than its newest
        // minus half the chunk range.)
        let mut app = h.appender();
        app.append(0, &lbl(12), 1000, 1.0).unwrap();
        app.commit().unwrap();
        fill(&h, 12, 0..130);
        h.truncate(2000);
        fill(&h, 12, 130..250);
        // Created by an append whose commit never came: not logged.
        let mut app = h.appender();
        app.append(0, &lbl(99), 300_000, 1.0).unwrap();
        std::mem::forget(app);
        h
    }

    #[test]
    fn round_trip_restores_everything_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let h = sample_head();
        let st = write(&h, dir.path(), POS).unwrap();
        assert_eq!(st.series, 12);
        assert_eq!(st.samples, h.num_samples_in_chunks());
        assert!(st.chunks > 24, "{st:?}");
        let snap = Snapshot::read(dir.path()).unwrap().unwrap();
        assert_eq!(snap.meta().wal, POS);
        assert_eq!(snap.meta().min_valid_time, 2000);
        assert_eq!(snap.meta().num_series, 12);
        let h2 = head();
        let st2 = snap.load_into(&h2).unwrap();
        assert_eq!(
            (st2.series, st2.chunks, st2.samples),
            (st.series, st.chunks, st.samples)
        );
        let want: Vec<_> = dump(&h)
            .into_iter()
            .filter(|s| !s.0.contains("\"99\""))
            .collect();
        assert_eq!(dump(&h2), want);
        assert_eq!((h2.min_time(), h2.max_time()), (h.min_time(), h.max_time()));
        assert_eq!(h2.num_series(), 12);
        // Same ids, and appending continues with identical chunk bytes.
        h.for_each_series(|id, l| {
            if let Some(s) = h2.series_by_id(id) {
                assert_eq!(h2.inner.symbols.read().resolve(&s.lset), *l);
            } else {
                assert_eq!(l, &lbl(99));
            }
        });
        h2.inner.rebuild_free_slots();
        fill(&h, 12, 250..400);
        fill(&h2, 12, 250..400);
        let want: Vec<_> = dump(&h)
            .into_iter()
            .filter(|s| !s.0.contains("\"99\""))
            .collect();
        assert_eq!(dump(&h2), want);
        for i in 0..12 {
            let a = h.inner.get_or_create(&lbl(i), None).unwrap().0;
            let b = h2.inner.get_or_create(&lbl(i), None).unwrap().0;
            assert_eq!(a.id, b.id);
            let (da, db) = (a.data.lock(), b.data.lock());
            let bytes = |d: &SeriesData| -> Vec<Vec<u8>> {
                d.closed
                    .iter()
                    .map(|c| c.data.to_vec())
                    .chain((d.head.num_samples() > 0).then(|| d.head.bytes().to_vec()))
                    .collect()
            };
            assert_eq!(bytes(&da), bytes(&db), "series {i}");
        }
        // Lookups by labels find the loaded series, new series get fresh slots.
        let (_, created) = h2.inner.get_or_create(&lbl(3), None).unwrap();
        assert!(!created);
        let (s, created) = h2.inner.get_or_create(&lbl(500), None).unwrap();
        assert!(created);
        assert!(h2.series_by_id(s.id).is_some());
        assert_eq!(h2.num_series(), 13);
    }

    #[test]
    fn empty_head_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let st = write(&head(), dir.path(), POS).unwrap();
        assert_eq!((st.series, st.samples), (0, 0));
        let h2 = head();
        Snapshot::read(dir.path())
            .unwrap()
            .unwrap()
            .load_into(&h2)
            .unwrap();
        assert_eq!(
            (h2.num_series(), h2.min_time(), h2.max_time()),
            (0, i64::MAX, i64::MIN)
        );
    }

    #[test]
    fn every_corruption_is_an_error_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let h = head();
        fill(&h, 3, 0..130);
        write(&h, dir.path(), POS).unwrap();
        let good = std::fs::read(dir.path().join(SNAPSHOT_FILE)).unwrap();
        let try_load = |b: Vec<u8>| -> bool {
            match Snapshot::parse(PathBuf::from("x"), b) {
                Ok(s) => s.load_into(&head()).is_ok(),
                Err(_) => false,
            }
        };
        assert!(try_load(good.clone()));
        for cut in 0..good.len() {
            assert!(!try_load(good[..cut].to_vec()), "cut at {cut}");
        }
        for i in 0..good.len() {
            for bit in [0x01, 0x80] {
                let mut b = good.clone();
                b[i] ^= bit;
                assert!(!try_load(b), "flip {bit:#x} at {i}");
            }
        }
        let mut b = good.clone();
        b.push(0);
        assert!(!try_load(b), "trailing byte");
    }

    #[test]
    fn other_chunk_range_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let h = head();
        fill(&h, 2, 0..10);
        write(&h, dir.path(), POS).unwrap();
        let other = Head::new(HeadOptions {
            chunk_range_ms: 7_200_000,
        });
        let err = Snapshot::read(dir.path())
            .unwrap()
            .unwrap()
            .load_into(&other)
            .unwrap_err();
        assert!(err.to_string().contains("chunk range"), "{err}");
    }
}
