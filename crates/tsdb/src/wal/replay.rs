//! Reading the WAL back on open, with repair of torn or corrupt segments.

use super::record::{self, parse_frame, Frame, Record};
use super::{list_segments, segment_name, WalError, WalPosition};
use std::path::{Path, PathBuf};

/// What replay found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayStats {
    /// Checkpoint replayed first, if any (its number: it covers segments <= n).
    pub checkpoint: Option<u32>,
    /// Segments read.
    pub segments: usize,
    pub records: u64,
    pub series: u64,
    pub samples: u64,
    /// A torn record at the end was cut off: (segment path, new length).
    pub truncated_tail: Option<(PathBuf, u64)>,
    /// Corruption before the end: (segment path, offset, directory the
    /// unreadable rest was moved to). Data before the offset was replayed.
    pub corrupt: Option<(PathBuf, u64, PathBuf)>,
    /// Where replay started ([`replay_from`]); None: the whole log.
    pub from: Option<WalPosition>,
    /// First and last segment read (checkpoint not included).
    pub segment_range: Option<(u32, u32)>,
}

/// Latest complete checkpoint directory in `dir`: (number, path).
pub(crate) fn latest_checkpoint(dir: &Path) -> Result<Option<(u32, PathBuf)>, WalError> {
    let mut best: Option<(u32, PathBuf)> = None;
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(WalError::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| WalError::io(dir, e))?;
        let name = e.file_name();
        let Some(n) = name.to_str().and_then(|s| s.strip_prefix("checkpoint.")) else {
            continue;
        };
        if n.len() != 8 || !n.bytes().all(|b| b.is_ascii_digit()) {
            continue; // e.g. an unfinished "checkpoint.N.tmp"
        }
        if let Ok(n) = n.parse::<u32>() {
            if best.as_ref().is_none_or(|b| n > b.0) {
                best = Some((n, e.path()));
            }
        }
    }
    Ok(best)
}

/// Replays the WAL in `dir` (checkpoint first, then segments in order),
/// calling `f` for every record.
///
/// A torn record at the very end (the process died mid-write, or power
/// failed) is cut off with a warning. A corrupt record followed by more
/// data stops replay there: everything before it is kept, the rest of that
/// segment and all later segments are moved into `dir/corrupted-<seg>-<offset>/`
/// and an error is logged. Only I/O errors fail the replay.
pub fn replay(dir: &Path, f: impl FnMut(Record)) -> Result<ReplayStats, WalError> {
    replay_from(dir, None, f)
}

/// [`replay`] starting at `start` instead of the beginning: the checkpoint
/// and segments before `start.segment` are not read, and segment
/// `start.segment` is read from byte `start.offset` (which must be a record
/// boundary, e.g. a [`super::Wal::position`]). Repair works as in
/// [`replay`]. The caller checks that the position exists (the segment is
/// there and at least `offset` long, no checkpoint covers it); a segment
/// shorter than `offset` is an error.
///
/// Reading and decoding run on a helper thread, one batch of records ahead
/// of `f` (which runs on the calling thread, in log order), so decoding
/// overlaps with applying; without a thread it all runs inline.
pub fn replay_from(
    dir: &Path,
    start: Option<WalPosition>,
    mut f: impl FnMut(Record),
) -> Result<ReplayStats, WalError> {
    /// Records per batch handed to the calling thread.
    const BATCH: usize = 64;
    /// Batches decoded ahead at most.
    const AHEAD: usize = 8;
    std::thread::scope(|sc| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Record>>(AHEAD);
        let reader = std::thread::Builder::new()
            .name("koban-wal-replay".into())
            .spawn_scoped(sc, move || {
                let mut batch = Vec::with_capacity(BATCH);
                let res = replay_inline(dir, start, |r| {
                    batch.push(r);
                    if batch.len() >= BATCH {
                        // The receiver only goes away when this scope ends.
                        let _ = tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                    }
                });
                if !batch.is_empty() {
                    let _ = tx.send(batch);
                }
                res
            });
        match reader {
            Ok(h) => {
                for batch in rx {
                    batch.into_iter().for_each(&mut f);
                }
                h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
            }
            Err(e) => {
                tracing::debug!(error = %e, "no WAL reader thread; replaying inline");
                replay_inline(dir, start, f)
            }
        }
    })
}

fn replay_inline(
    dir: &Path,
    start: Option<WalPosition>,
    mut f: impl FnMut(Record),
) -> Result<ReplayStats, WalError> {
    let mut st = ReplayStats {
        from: start,
        ..ReplayStats::default()
    };
    let mut first_seg = 0u32;
    if let Some(p) = start {
        first_seg = p.segment;
    } else if let Some((n, cp)) = latest_checkpoint(dir)? {
        tracing::info!(checkpoint = %cp.display(), "replaying WAL checkpoint");
        st.checkpoint = Some(n);
        first_seg = n + 1;
        for s in list_segments(&cp)? {
            let path = cp.join(segment_name(s));
            let data = std::fs::read(&path).map_err(|e| WalError::io(&path, e))?;
            let (end, err) = read_records(&data, &mut st, &mut f);
            if let Some(msg) = err {
                tracing::error!(path = %path.display(), offset = end, error = %msg,
                    "corrupt WAL checkpoint; series or samples after this point are lost");
                break;
            }
        }
    }
    let segs: Vec<u32> = list_segments(dir)?
        .into_iter()
        .filter(|&s| s >= first_seg)
        .collect();
    let total = segs.len();
    st.segment_range = segs.first().zip(segs.last()).map(|(a, b)| (*a, *b));
    for (i, &s) in segs.iter().enumerate() {
        let path = dir.join(segment_name(s));
        let data = std::fs::read(&path).map_err(|e| WalError::io(&path, e))?;
        let base = match start {
            Some(p) if p.segment == s => usize::try_from(p.offset)
                .ok()
                .filter(|&o| o <= data.len())
                .ok_or_else(|| WalError::Corrupt {
                    path: path.clone(),
                    msg: format!(
                        "replay start offset {} is past the end of the segment ({} bytes)",
                        p.offset,
                        data.len()
                    ),
                })?,
            _ => 0,
        };
        tracing::info!(
            segment = s,
            of = total,
            bytes = data.len() - base,
            "replaying WAL segment"
        );
        st.segments += 1;
        let (end, err) = read_records(&data[base..], &mut st, &mut f);
        let end = base + end;
        let Some(msg) = err else { continue };
        // Later segments hold no data: this is the tail of the log.
        let mut later_empty = true;
        for &l in &segs[i + 1..] {
            let p = dir.join(segment_name(l));
            let len = std::fs::metadata(&p)
                .map_err(|e| WalError::io(&p, e))?
                .len();
            later_empty &= len == 0;
        }
        let is_tail = later_empty && frame_reaches_eof(&data[end..]);
        if is_tail {
            tracing::warn!(path = %path.display(), offset = end, dropped_bytes = data.len() - end, error = %msg,
                "torn record at the end of the WAL; truncating it (earlier data kept)");
            truncate(&path, end as u64)?;
            st.truncated_tail = Some((path, end as u64));
            continue;
        }
        let aside = dir.join(format!("corrupted-{}-{end}", segment_name(s)));
        tracing::error!(path = %path.display(), offset = end, error = %msg, moved_to = %aside.display(),
            "CORRUPT WAL RECORD in the middle of the log: replay stops here; the rest of the log is moved aside \
             and its samples are NOT loaded");
        std::fs::create_dir_all(&aside).map_err(|e| WalError::io(&aside, e))?;
        let rest = aside.join(format!("{}.rest", segment_name(s)));
        std::fs::write(&rest, &data[end..]).map_err(|e| WalError::io(&rest, e))?;
        truncate(&path, end as u64)?;
        for &l in &segs[i + 1..] {
            let from = dir.join(segment_name(l));
            let to = aside.join(segment_name(l));
            std::fs::rename(&from, &to).map_err(|e| WalError::io(&from, e))?;
        }
        super::sync_dir(dir)?;
        st.corrupt = Some((path, end as u64, aside));
        break;
    }
    tracing::info!(
        segments = st.segments,
        series = st.series,
        samples = st.samples,
        "WAL replay done"
    );
    Ok(st)
}

/// True if the (broken) frame at the start of `rest` claims to extend to or
/// past the end of the data, or the rest is all zero: a write cut short.
fn frame_reaches_eof(rest: &[u8]) -> bool {
    if rest.len() < record::HEADER_LEN || rest.iter().all(|&b| b == 0) {
        return true;
    }
    let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
    record::HEADER_LEN + len >= rest.len()
}

fn truncate(path: &Path, len: u64) -> Result<(), WalError> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| WalError::io(path, e))?;
    f.set_len(len)
        .and_then(|_| f.sync_all())
        .map_err(|e| WalError::io(path, e))
}

/// Reads frames from `data`; returns the offset after the last good record
/// and the error that stopped reading, if any.
fn read_records(
    data: &[u8],
    st: &mut ReplayStats,
    f: &mut impl FnMut(Record),
) -> (usize, Option<String>) {
    let mut pos = 0;
    while pos < data.len() {
        match parse_frame(&data[pos..]) {
            Frame::Ok(typ, payload, n) => match record::decode(typ, payload) {
                Ok(rec) => {
                    st.records += 1;
                    match &rec {
                        Record::Series(s) => st.series += s.len() as u64,
                        Record::Samples(s) => st.samples += s.len() as u64,
                        Record::Tombstones(_) => {}
                    }
                    f(rec);
                    pos += n;
                }
                Err(e) => return (pos, Some(format!("undecodable record: {e}"))),
            },
            Frame::Incomplete => return (pos, Some("incomplete record".into())),
            Frame::Corrupt(msg) => return (pos, Some(msg)),
        }
    }
    (pos, None)
}
