//! Test support shared by Koban's integration tests (a dev-dependency
//! only): child processes that die with the test, free loopback ports,
//! polling, finding peer binaries, and the peers themselves
//! ([`alertmanager`]).
//!
//! Peers: a test looks its peer up with [`find_bin`] and, when it is
//! missing, calls [`peer_missing`], which fails the test under CI
//! (`CI=true`: scripts/test.sh installs every peer) and skips it elsewhere.

pub mod alertmanager;

use std::path::PathBuf;
use std::process::{Child, Command};
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

/// `GET /-/ready` on 127.0.0.1:`port` answers 200 (plain HTTP over a std
/// socket, so any test can use it without a client).
pub fn is_ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    if c.write_all(b"GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = c.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
}
