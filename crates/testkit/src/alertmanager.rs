//! Debian's prometheus-alertmanager 0.25 and amtool as test peers.
//!
//! The binaries are `KOBAN_ALERTMANAGER` / `KOBAN_AMTOOL`, else
//! `prometheus-alertmanager` / `amtool` on PATH.

use crate::{find_bin, free_port, is_ready, peer_missing, until, Proc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running Alertmanager on loopback, killed when dropped.
pub struct Alertmanager {
    pub proc: Proc,
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Debian's amtool.
    pub amtool: PathBuf,
}

/// The receivers-only config most tests want: everything routed to a
/// receiver that sends nothing.
pub const BLACKHOLE_CONFIG: &str =
    "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n";

/// Starts Debian's Alertmanager with `config` (clustering off, its data
/// and log, `alertmanager.log`, in `dir`) and waits until it is ready.
/// None when the alertmanager or amtool binary is missing (after
/// [`peer_missing`], which fails the test under CI).
pub async fn start(dir: &Path, config: &str) -> Option<Alertmanager> {
    let Some(bin) = find_bin("KOBAN_ALERTMANAGER", "prometheus-alertmanager") else {
        peer_missing("prometheus-alertmanager");
        return None;
    };
    let Some(amtool) = find_bin("KOBAN_AMTOOL", "amtool") else {
        peer_missing("amtool");
        return None;
    };
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, config).unwrap();
    let port = free_port();
    let proc = Proc(
        Command::new(&bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--config.file={}", cfg.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("alertmanager.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    until("the alertmanager to be ready", async || {
        is_ready(port).then_some(())
    })
    .await;
    Some(Alertmanager {
        proc,
        port,
        url: format!("http://127.0.0.1:{port}"),
        amtool,
    })
}

impl Alertmanager {
    /// `amtool alert query -o json`: the alerts Alertmanager shows as
    /// active (empty while it does not answer).
    pub fn query(&self) -> Vec<Value> {
        let out = Command::new(&self.amtool)
            .args([
                &format!("--alertmanager.url={}", self.url),
                "alert",
                "query",
                "-o",
                "json",
            ])
            .output()
            .unwrap();
        if !out.status.success() {
            return Vec::new();
        }
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }
}
