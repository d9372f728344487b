//! Secrets and certificates that come inline or from files re-read when
//! they change.
//!
//! Each [`Source::get`] on a file stats it (one `metadata` call, a few
//! microseconds, done on the calling task: cheaper than a hop to the
//! blocking pool) and re-reads it only when its modification time, size or
//! inode changed. A rotated password, token or certificate therefore
//! applies from the next request on, without a config reload.

use crate::Error;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// Identity of one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(m: &std::fs::Metadata) -> Stamp {
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(m);
    #[cfg(not(unix))]
    let ino = 0;
    Stamp {
        mtime: m.modified().ok(),
        len: m.len(),
        ino,
    }
}

/// One read of a file: its stamp, content and version.
type Read = (Stamp, Arc<[u8]>, u64);

/// Bytes of a source (None: unset) and their version.
pub(crate) type Versioned = (Option<Arc<[u8]>>, u64);

/// A file read again when it changes.
#[derive(Debug)]
pub(crate) struct WatchedFile {
    /// What the file holds, for errors (`basic_auth password_file`).
    what: &'static str,
    path: PathBuf,
    /// The last version read, and a counter bumped on every change.
    cached: Mutex<Option<Read>>,
}

impl WatchedFile {
    fn get(&self) -> Result<(Arc<[u8]>, u64), Error> {
        let io = |source| Error::ReadFile {
            what: self.what,
            path: self.path.clone(),
            source,
        };
        let meta = std::fs::metadata(&self.path).map_err(io)?;
        let st = stamp(&meta);
        let mut cached = self.cached.lock();
        let version = match &*cached {
            Some((s, data, v)) if *s == st => return Ok((data.clone(), *v)),
            Some((_, _, v)) => v + 1,
            None => 0,
        };
        let data: Arc<[u8]> = std::fs::read(&self.path).map_err(io)?.into();
        *cached = Some((st, data.clone(), version));
        Ok((data, version))
    }
}

/// Where a secret or certificate comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    None,
    Inline(Arc<[u8]>),
    File(Arc<WatchedFile>),
}

impl Source {
    /// `inline` if set, else `file` if set, else nothing.
    pub(crate) fn new(what: &'static str, inline: &str, file: &str) -> Source {
        if !inline.is_empty() {
            Source::Inline(inline.as_bytes().into())
        } else if !file.is_empty() {
            Source::File(Arc::new(WatchedFile {
                what,
                path: PathBuf::from(file),
                cached: Mutex::new(None),
            }))
        } else {
            Source::None
        }
    }

    pub(crate) fn is_file(&self) -> bool {
        matches!(self, Source::File(_))
    }

    /// The current bytes (None when unset) and a version that changes
    /// whenever the bytes may have.
    pub(crate) fn get(&self) -> Result<Versioned, Error> {
        match self {
            Source::None => Ok((None, 0)),
            Source::Inline(b) => Ok((Some(b.clone()), 0)),
            Source::File(f) => f.get().map(|(b, v)| (Some(b), v)),
        }
    }

    /// The current value as a secret string, surrounding whitespace
    /// trimmed as Prometheus does for files (empty when unset).
    pub(crate) fn text(&self) -> Result<String, Error> {
        let (b, _) = self.get()?;
        let Some(b) = b else {
            return Ok(String::new());
        };
        let s = String::from_utf8_lossy(&b);
        Ok(if self.is_file() {
            s.trim().to_string()
        } else {
            s.into_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_is_reread_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "one\n").unwrap();
        let s = Source::new("password_file", "", p.to_str().unwrap());
        assert_eq!(s.text().unwrap(), "one");
        let (_, v0) = s.get().unwrap();
        assert_eq!(s.get().unwrap().1, v0, "unchanged file keeps its version");
        std::fs::write(&p, "second\n").unwrap();
        assert_eq!(s.text().unwrap(), "second");
        std::fs::remove_file(&p).unwrap();
        let e = s.text().unwrap_err().to_string();
        assert!(e.starts_with("unable to read password_file "), "{e}");
    }
}
