//! The file provider: `file_sd_configs`.
//!
//! Reads JSON (`*.json`) or YAML (`*.yml`, `*.yaml`) files matching the
//! configured globs. Files are re-read when `notify` reports a change in
//! their directories and every `refresh_interval`. A file that fails to
//! parse keeps its last good targets; the error (with path and line) is
//! logged and kept in [`FileSdStatus`] until the file reads cleanly or goes
//! away. Every group gets the label `__meta_filepath`.

use crate::{BoxFuture, Discoverer, TargetGroup, ADDRESS_LABEL};
use koban_config::FileSdConfig;
use koban_model::labels::is_valid_label_name;
use koban_model::Labels;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The label file SD adds to every group: the file it came from.
pub const META_FILEPATH: &str = "__meta_filepath";

/// A file SD read or parse failure. Displays as `path:line: message`
/// (`path: message` when the line is unknown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}{}: {message}", if *line > 0 { format!(":{line}") } else { String::new() })]
pub struct FileSdError {
    pub path: String,
    /// 1-based line of the problem; 0 when unknown (e.g. I/O errors).
    pub line: u64,
    pub message: String,
}

/// Current file SD errors and a failure counter, shared by file providers
/// (for the status page and `prometheus_sd_file_read_errors_total`).
#[derive(Debug, Default)]
pub struct FileSdStatus {
    errors: Mutex<BTreeMap<String, FileSdError>>,
    read_errors_total: AtomicU64,
}

impl FileSdStatus {
    /// Files whose last read failed, sorted by path.
    pub fn errors(&self) -> Vec<FileSdError> {
        self.lock().values().cloned().collect()
    }

    /// Number of failed reads since start.
    pub fn read_errors_total(&self) -> u64 {
        self.read_errors_total.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FileSdError>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.errors.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, e: FileSdError) {
        self.read_errors_total.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(e.path.clone(), e);
    }

    fn clear(&self, path: &str) {
        self.lock().remove(path);
    }
}

/// One target group as written in a file SD file.
#[derive(Deserialize)]
struct RawGroup {
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// Reads one file SD file into groups (sources `path:i`).
pub fn read_file(path: &Path) -> Result<Vec<TargetGroup>, FileSdError> {
    let p = path.to_string_lossy().into_owned();
    let fail = |line: u64, message: String| FileSdError {
        path: p.clone(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(0, e.to_string()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let raw: Vec<RawGroup> = match ext.as_str() {
        "json" => serde_json::from_str(&text).map_err(|e| fail(e.line() as u64, e.to_string()))?,
        "yml" | "yaml" => {
            let v: Option<Vec<RawGroup>> = serde_saphyr::from_str(&text).map_err(|e| {
                use serde_saphyr::MessageFormatter;
                let line = e.location().map(|l| l.line()).unwrap_or(0);
                fail(
                    line,
                    serde_saphyr::DefaultMessageFormatter
                        .format_message(e.without_snippet())
                        .into_owned(),
                )
            })?;
            v.unwrap_or_default()
        }
        _ => {
            return Err(fail(
                0,
                "unknown file extension (want .json, .yml or .yaml)".into(),
            ))
        }
    };
    let mut out = Vec::with_capacity(raw.len());
    for (i, g) in raw.into_iter().enumerate() {
        let labels = g.labels.unwrap_or_default();
        if let Some(bad) = labels.keys().find(|k| !is_valid_label_name(k)) {
            return Err(fail(
                0,
                format!("group {i}: {bad:?} is not a valid label name"),
            ));
        }
        let mut pairs: Vec<(String, String)> = labels.into_iter().collect();
        pairs.push((META_FILEPATH.to_string(), p.clone()));
        out.push(TargetGroup {
            source: format!("{p}:{i}"),
            targets: g
                .targets
                .unwrap_or_default()
                .into_iter()
                .map(|t| Labels::from_pairs([(ADDRESS_LABEL.to_string(), t)]))
                .collect(),
            labels: Labels::from_pairs(pairs),
        });
    }
    Ok(out)
}

/// The file SD provider for one `file_sd_configs` entry.
#[derive(Debug)]
pub struct FileDiscoverer {
    patterns: Vec<String>,
    refresh: Duration,
    status: Arc<FileSdStatus>,
}

impl FileDiscoverer {
    pub fn new(cfg: &FileSdConfig, status: Arc<FileSdStatus>) -> Self {
        FileDiscoverer {
            patterns: cfg.files.clone(),
            // A zero interval would spin; treat it as unset (Prometheus's 5m default).
            refresh: match cfg.refresh_interval.as_std() {
                d if d.is_zero() => Duration::from_secs(300),
                d => d,
            },
            status,
        }
    }
}

/// Provider state between refreshes.
struct State {
    patterns: Vec<String>,
    status: Arc<FileSdStatus>,
    /// Last good groups of every file currently matched.
    last_good: BTreeMap<PathBuf, Vec<TargetGroup>>,
    /// Number of groups last sent per file (to send empties when it shrinks).
    sent: BTreeMap<PathBuf, usize>,
    /// Everything sent so far, to skip sending unchanged sets.
    last_sent: Option<Vec<TargetGroup>>,
}

impl State {
    fn expand(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for p in &self.patterns {
            match glob::glob(p) {
                Ok(paths) => files.extend(paths.filter_map(Result::ok).filter(|p| p.is_file())),
                Err(e) => tracing::warn!(pattern = %p, error = %e, "file_sd: invalid glob"),
            }
        }
        files.sort();
        files.dedup();
        files
    }

    /// Re-reads all files; returns the groups to send, or None when nothing changed.
    fn refresh(&mut self) -> Option<Vec<TargetGroup>> {
        let files = self.expand();
        let current: HashSet<&PathBuf> = files.iter().collect();
        let gone: Vec<PathBuf> = self
            .last_good
            .keys()
            .filter(|p| !current.contains(p))
            .cloned()
            .collect();
        for p in gone {
            self.last_good.remove(&p);
            self.status.clear(&p.to_string_lossy());
        }
        for f in &files {
            match read_file(f) {
                Ok(groups) => {
                    self.status.clear(&f.to_string_lossy());
                    self.last_good.insert(f.clone(), groups);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "file_sd: cannot read file, keeping its last good targets");
                    self.status.set(e);
                }
            }
        }
        let mut out = Vec::new();
        let mut sent = BTreeMap::new();
        for (p, groups) in &self.last_good {
            out.extend(groups.iter().cloned());
            sent.insert(p.clone(), groups.len());
        }
        // Empty groups for sources that went away (file removed or shrunk).
        for (p, n) in &self.sent {
            let now = sent.get(p).copied().unwrap_or(0);
            for i in now..*n {
                out.push(TargetGroup {
                    source: format!("{}:{i}", p.to_string_lossy()),
                    ..Default::default()
                });
            }
        }
        self.sent = sent;
        let changed = self.last_sent.as_ref() != Some(&out);
        if changed {
            // Remember without the empties: they are only sent once.
            let keep: Vec<TargetGroup> = out
                .iter()
                .filter(|g| !g.targets.is_empty() || !g.labels.is_empty())
                .cloned()
                .collect();
            self.last_sent = Some(keep);
            Some(out)
        } else {
            None
        }
    }

    fn watch_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .patterns
            .iter()
            .map(|p| match Path::new(p).parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    fn clear_errors(&self) {
        for p in self.last_good.keys() {
            self.status.clear(&p.to_string_lossy());
        }
        for p in self.expand() {
            self.status.clear(&p.to_string_lossy());
        }
    }
}

impl Discoverer for FileDiscoverer {
    fn run(
        self: Box<Self>,
        cancel: CancellationToken,
        tx: mpsc::Sender<Vec<TargetGroup>>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut st = State {
                patterns: self.patterns,
                status: self.status,
                last_good: BTreeMap::new(),
                sent: BTreeMap::new(),
                last_sent: None,
            };
            let (wake_tx, mut wake_rx) = mpsc::channel::<()>(1);
            let mut watcher = new_watcher(wake_tx);
            let mut watched: HashSet<PathBuf> = HashSet::new();
            let mut tick = tokio::time::interval(self.refresh);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate
            let mut wake_open = watcher.is_some();
            let mut first = true;
            loop {
                if let Some(w) = watcher.as_mut() {
                    for d in st.watch_dirs() {
                        if !watched.contains(&d)
                            && notify::Watcher::watch(w, &d, notify::RecursiveMode::NonRecursive)
                                .is_ok()
                        {
                            watched.insert(d);
                        }
                    }
                }
                // File reads and parsing block; keep them off the async workers.
                let (back, update) = match tokio::task::spawn_blocking(move || {
                    let u = st.refresh();
                    (st, u)
                })
                .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "file_sd: refresh task failed; provider stops");
                        return;
                    }
                };
                st = back;
                let update = match (update, first) {
                    (Some(u), _) => Some(u),
                    (None, true) => Some(Vec::new()),
                    (None, false) => None,
                };
                first = false;
                if let Some(u) = update {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        r = tx.send(u) => if r.is_err() { break },
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                    w = wake_rx.recv(), if wake_open => if w.is_none() { wake_open = false; },
                }
            }
            st.clear_errors();
        })
    }
}

fn new_watcher(wake: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            // A full channel already holds a pending wake-up.
            let _ = wake.try_send(());
        }
    });
    match w {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "file_sd: cannot watch files, relying on refresh_interval");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_file_reports_line_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        std::fs::write(&p, "[\n {\"targets\": [\"a:1\"]},\n {\"targets\": [\"b:1\"], \"labels\": {\"x\": \"y\"}}\n]").unwrap();
        let g = read_file(&p).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].labels.get("x"), "y");
        assert_eq!(g[1].labels.get(META_FILEPATH), p.to_string_lossy());
        assert_eq!(g[1].source, format!("{}:1", p.display()));
        std::fs::write(
            &p,
            "[\n {\"targets\": [\"a:1\"]},\n {\"targets\": [\"b:1\"\n]",
        )
        .unwrap();
        let e = read_file(&p).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(
            e.to_string().starts_with(&format!("{}:4: ", p.display())),
            "{e}"
        );
        let y = dir.path().join("t.yaml");
        std::fs::write(&y, "- targets: [a:1]\n  lables: {}\n").unwrap();
        // Unknown keys are ignored, as Prometheus does for JSON.
        assert_eq!(read_file(&y).unwrap().len(), 1);
        std::fs::write(&y, "- targets: [a:1]\n- targets: {a: b}\n").unwrap();
        assert_eq!(read_file(&y).unwrap_err().line, 2);
        std::fs::write(&y, "").unwrap();
        assert!(read_file(&y).unwrap().is_empty());
        let e = read_file(&dir.path().join("missing.json")).unwrap_err();
        assert_eq!(e.line, 0);
    }
}
