//! Write-ahead log: every committed batch is appended to the current
//! segment file (`wal/00000001`, ...) in one write before it becomes
//! visible, so the head can be rebuilt after a restart or crash.
//!
//! Durability policy (see `docs/format/wal.md`): a commit is acknowledged
//! once its records are handed to the OS with write(2). That survives the
//! process being killed (SIGKILL, panic, OOM) because the page cache
//! belongs to the kernel; it does not survive a kernel crash or power loss
//! for the last `fsync_interval`. Segments are fsynced when they are cut,
//! by a background flusher every `fsync_interval`, and by [`Wal::sync`].

mod checkpoint;
pub mod record;
mod replay;

pub(crate) use replay::latest_checkpoint;
pub use replay::{replay, replay_from, ReplayStats};

use parking_lot::{Condvar, Mutex};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Default maximum segment size: 128 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;

/// WAL errors, with the path involved.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("wal {path}: {msg}")]
    Corrupt { path: PathBuf, msg: String },
}

impl WalError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        WalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// WAL options.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A new segment is started when the current one would exceed this.
    pub segment_size: u64,
    /// The background flusher fsyncs the current segment this often (None:
    /// only on segment cut, `sync` and close).
    pub fsync_interval: Option<Duration>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            fsync_interval: Some(Duration::from_secs(5)),
        }
    }
}

/// A position in the log: it covers every record of the segments before
/// `segment` and the first `offset` bytes of `segment` (a record boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalPosition {
    pub segment: u32,
    pub offset: u64,
}

/// Segment file name for number `n`.
pub fn segment_name(n: u32) -> String {
    format!("{n:08}")
}

/// Segment numbers present in `dir`, sorted.
pub fn list_segments(dir: &Path) -> Result<Vec<u32>, WalError> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(WalError::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| WalError::io(dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = name.parse::<u32>() {
                out.push(n);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

struct Writer {
    seg: u32,
    file: File,
    path: PathBuf,
    size: u64,
    dirty: bool,
    /// Set after a write error that could not be cleaned up.
    broken: Option<String>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

struct Shared {
    dir: PathBuf,
    opts: WalOptions,
    w: Mutex<Writer>,
    stop: Mutex<bool>,
    stop_cv: Condvar,
}

/// The write side of the WAL. Shared by all committing appenders.
pub struct Wal {
    shared: Arc<Shared>,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

fn open_segment(dir: &Path, n: u32) -> Result<(File, PathBuf), WalError> {
    let path = dir.join(segment_name(n));
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| WalError::io(&path, e))?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// fsyncs a directory so new/renamed entries are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io(dir, e))
}

impl Wal {
    /// Opens the WAL in `dir` for writing, starting a fresh segment after
    /// the last existing one (replay first with [`replay`]).
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal, WalError> {
        std::fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
        // Never reuse a number a checkpoint covers, even if every segment
        // file is gone: replay would skip the new segment.
        let last = list_segments(dir)?.last().copied().unwrap_or(0);
        let cp = replay::latest_checkpoint(dir)?.map_or(0, |c| c.0);
        let seg = last.max(cp) + 1;
        let (file, path) = open_segment(dir, seg)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            w: Mutex::new(Writer {
                seg,
                file,
                path,
                size: 0,
                dirty: false,
                broken: None,
                buf: Vec::new(),
                scratch: Vec::new(),
            }),
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
        });
        let flusher = match opts.fsync_interval {
            Some(iv) => {
                let sh = shared.clone();
                let h = std::thread::Builder::new()
                    .name("koban-wal-flush".into())
                    .spawn(move || flusher_loop(sh, iv))
                    .map_err(|e| WalError::io(dir, e))?;
                Some(h)
            }
            None => None,
        };
        Ok(Wal {
            shared,
            flusher: Mutex::new(flusher),
        })
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Number of the segment currently written.
    pub fn current_segment(&self) -> u32 {
        self.shared.w.lock().seg
    }

    /// Logs one commit: series records (if any) then the samples, in one
    /// write(2). Returns once the OS has the data (see the module docs).
    pub fn log_commit(
        &self,
        series: &[(u64, koban_model::Labels)],
        samples: &[(u64, i64, f64)],
    ) -> Result<(), WalError> {
        let mut g = self.shared.w.lock();
        let w = &mut *g;
        if let Some(msg) = &w.broken {
            return Err(WalError::Corrupt {
                path: w.path.clone(),
                msg: msg.clone(),
            });
        }
        w.buf.clear();
        if !series.is_empty() {
            record::encode_series(&mut w.buf, &mut w.scratch, series);
        }
        if !samples.is_empty() {
            record::encode_samples(&mut w.buf, samples);
        }
        if w.buf.is_empty() {
            return Ok(());
        }
        if w.size > 0 && w.size + w.buf.len() as u64 > self.shared.opts.segment_size {
            self.cut_locked(w)?;
        }
        if let Err(e) = w.file.write_all_at(&w.buf, w.size) {
            // Drop any partial record so later writes follow a clean end.
            if let Err(e2) = w.file.set_len(w.size) {
                w.broken = Some(format!("write failed ({e}) and could not be undone ({e2})"));
            }
            return Err(WalError::io(&w.path, e));
        }
        w.size += w.buf.len() as u64;
        w.dirty = true;
        if w.buf.capacity() > 1 << 20 {
            w.buf = Vec::new();
            w.scratch = Vec::new();
        }
        Ok(())
    }

    /// Logs one tombstones record (head deletions: ref, mint, maxt) in one
    /// write(2), as [`Wal::log_commit`].
    pub fn log_tombstones(&self, ts: &[(u64, i64, i64)]) -> Result<(), WalError> {
        if ts.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        record::encode_tombstones(&mut buf, &mut Vec::new(), ts);
        self.write_record(&buf)
    }

    /// Appends one encoded record (or several) at the end of the current
    /// segment, cutting a new segment first if it would overflow.
    fn write_record(&self, buf: &[u8]) -> Result<(), WalError> {
        let mut g = self.shared.w.lock();
        let w = &mut *g;
        if let Some(msg) = &w.broken {
            return Err(WalError::Corrupt {
                path: w.path.clone(),
                msg: msg.clone(),
            });
        }
        if w.size > 0 && w.size + buf.len() as u64 > self.shared.opts.segment_size {
            self.cut_locked(w)?;
        }
        if let Err(e) = w.file.write_all_at(buf, w.size) {
            if let Err(e2) = w.file.set_len(w.size) {
                w.broken = Some(format!("write failed ({e}) and could not be undone ({e2})"));
            }
            return Err(WalError::io(&w.path, e));
        }
        w.size += buf.len() as u64;
        w.dirty = true;
        Ok(())
    }

    /// The end of the log: the position after the last record written.
    /// Fails if a write error left the current segment in doubt.
    pub fn position(&self) -> Result<WalPosition, WalError> {
        let w = self.shared.w.lock();
        if let Some(msg) = &w.broken {
            return Err(WalError::Corrupt {
                path: w.path.clone(),
                msg: msg.clone(),
            });
        }
        Ok(WalPosition {
            segment: w.seg,
            offset: w.size,
        })
    }

    /// Closes the current segment (fsynced) and starts the next; returns
    /// the new segment's number. Everything logged before the call is in
    /// segments lower than the returned number.
    pub fn cut_segment(&self) -> Result<u32, WalError> {
        let mut g = self.shared.w.lock();
        self.cut_locked(&mut g)?;
        Ok(g.seg)
    }

    fn cut_locked(&self, w: &mut Writer) -> Result<(), WalError> {
        w.file.sync_data().map_err(|e| WalError::io(&w.path, e))?;
        let (file, path) = open_segment(&self.shared.dir, w.seg + 1)?;
        w.seg += 1;
        w.file = file;
        w.path = path;
        w.size = 0;
        w.dirty = false;
        w.broken = None;
        Ok(())
    }

    /// fsyncs the current segment.
    pub fn sync(&self) -> Result<(), WalError> {
        sync_shared(&self.shared)
    }

    /// Replaces everything before segment `before` with a checkpoint that
    /// keeps series records for which `keep_series(ref)` is true and their
    /// samples with `t >= mint`; then deletes those segments. Call after
    /// [`Wal::cut_segment`] once blocks hold the older data.
    pub fn truncate_before(
        &self,
        before: u32,
        mint: i64,
        keep_series: impl Fn(u64) -> bool,
    ) -> Result<(), WalError> {
        let cur = self.current_segment();
        let before = before.min(cur);
        checkpoint::checkpoint(&self.shared.dir, before, mint, keep_series)
    }

    /// Stops the flusher and fsyncs. Further commits still work (they are
    /// written, not fsynced by the flusher).
    pub fn close(&self) -> Result<(), WalError> {
        *self.shared.stop.lock() = true;
        self.shared.stop_cv.notify_all();
        if let Some(h) = self.flusher.lock().take() {
            let _ = h.join();
        }
        self.sync()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "WAL: fsync on close failed");
        }
    }
}

fn sync_shared(sh: &Shared) -> Result<(), WalError> {
    // Clone the handle so the fsync does not block committers.
    let (file, path) = {
        let mut w = sh.w.lock();
        if !w.dirty {
            return Ok(());
        }
        w.dirty = false;
        (
            w.file.try_clone().map_err(|e| WalError::io(&w.path, e))?,
            w.path.clone(),
        )
    };
    file.sync_data().map_err(|e| WalError::io(&path, e))
}

fn flusher_loop(sh: Arc<Shared>, every: Duration) {
    loop {
        {
            let mut stop = sh.stop.lock();
            if *stop {
                return;
            }
            sh.stop_cv.wait_for(&mut stop, every);
            if *stop {
                return;
            }
        }
        if let Err(e) = sync_shared(&sh) {
            tracing::error!(error = %e, "WAL: background fsync failed");
        }
    }
}
