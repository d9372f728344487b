//! Test support shared by the binary tests of `koban`: child processes
//! that die with the test, free loopback ports, an HTTP client, starting
//! the `koban` binary on a config, and finding peer binaries.
//!
//! Included by each test file with `#[path = "support/koban.rs"] mod
//! support;` (not a test target of its own); each test uses a part.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGTERM, then waits (bounded, 30 s) for a successful exit.
    pub fn stop(mut self) {
        let pid = self.0.id().to_string();
        let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(st.success());
        for _ in 0..300 {
            if let Some(st) = self.0.try_wait().unwrap() {
                assert!(st.success(), "process exited with {st}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("process did not stop within 30 s of SIGTERM");
    }
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Wall-clock time in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Installs rustls's crypto provider (once per process; later calls are
/// no-ops).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client (crypto provider installed).
pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::new()
}

/// Starts the `koban` binary on `cfg` with its data in `data`, listening
/// on 127.0.0.1:`port`, with `extra` flags; stderr goes to `log` (created).
pub fn spawn_koban(cfg: &Path, data: &Path, port: u16, log: &Path, extra: &[&str]) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Proc(
        Command::new(env!("CARGO_BIN_EXE_koban"))
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// Reports a missing peer: panics in CI (CI=true), else prints a skip note
/// and returns true (the caller returns).
pub fn peer_missing(what: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        panic!("{what} is required in CI but missing");
    }
    eprintln!("skipping: {what} is missing (scripts/test.sh installs it)");
    true
}

/// A peer binary: `$env` if set and existing, else `name` on PATH.
pub fn find_bin(env: &str, name: &str) -> Option<PathBuf> {
    let from_env = std::env::var(env)
        .ok()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name));
    from_env.into_iter().chain(on_path).find(|p| p.exists())
}

/// Polls `f` every 100 ms until it returns Some, panicking after a
/// generous 60 s naming `what`.
pub async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
