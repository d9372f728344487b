//! Test support shared by the binary tests of `koban`: an HTTP client and
//! starting the `koban` binary on a config, beside what koban-testkit has
//! for every crate (child processes, ports, polling, peers), re-exported.
//!
//! Included by each test file with `#[path = "support/koban.rs"] mod
//! support;` (not a test target of its own); each test uses a part.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

#[allow(unused_imports)] // each test binary uses its own subset
pub use koban_testkit::{find_bin, free_port, now_ms, peer_missing, until, Proc};

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

/// A prometheus.yml for rule tests: 1 s scrape and evaluation intervals,
/// `rule_files: [rules.yml]` (beside the config) and Koban scraping itself
/// on 127.0.0.1:`port`.
pub fn rules_config(port: u16) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs:\n- job_name: self\n  static_configs:\n  - targets: ['127.0.0.1:{port}']\n"
    )
}
