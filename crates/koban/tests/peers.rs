//! End to end with real peers: the `koban` binary scrapes Debian's
//! prometheus-node-exporter and a Python app instrumented with
//! `prometheus_client`; stored series and HELP/TYPE match their pages.
//! Reloads: a bad config is refused and the old one keeps scraping.
//!
//! A missing peer fails the test in CI (CI=true) and skips it elsewhere.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{free_port, install_crypto, peer_missing, spawn_koban, Proc};

#[path = "support/koban.rs"]
mod support;

fn node_exporter_bin() -> Option<PathBuf> {
    let from_env = std::env::var("KOBAN_NODE_EXPORTER")
        .ok()
        .filter(|s| !s.is_empty());
    let candidates = from_env
        .into_iter()
        .chain(["/usr/bin/prometheus-node-exporter".to_string()]);
    candidates.map(PathBuf::from).find(|p| p.exists())
}

fn python_has_client() -> bool {
    Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const PY_APP: &str = r#"
import sys, time
from prometheus_client import start_http_server, Counter, Gauge
c = Counter('myapp_requests', 'Requests served.', ['path', 'method'])
g = Gauge('myapp_temperature_celsius', 'Current temperature.', ['room'])
c.labels('/a', 'GET').inc(3)
c.labels('/b', 'POST').inc(5)
g.labels('kitchen').set(21.5)
start_http_server(int(sys.argv[1]), addr='127.0.0.1')
while True:
    time.sleep(1)
"#;

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.json().await.unwrap()
}

async fn wait_for<F: Fn(&Value) -> bool>(url: &str, what: &str, f: F) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(url).await {
            if let Ok(v) = r.json::<Value>().await {
                if f(&v) {
                    return v;
                }
                last = v;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}; last answer: {last}");
}

fn write_config(path: &Path, node_port: u16, py_port: u16, extra: &str) {
    std::fs::write(
        path,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n- job_name: node\n  static_configs:\n  - targets: ['127.0.0.1:{node_port}']\n- job_name: app\n  static_configs:\n  - targets: ['127.0.0.1:{py_port}']\n{extra}"
        ),
    )
    .unwrap();
}

fn start_koban(dir: &Path, cfg: &Path, port: u16) -> Proc {
    spawn_koban(
        cfg,
        &dir.join("data"),
        port,
        &dir.join("koban.log"),
        &["--web.enable-lifecycle"],
    )
}

fn result(v: &Value) -> &Vec<Value> {
    v["data"]["result"].as_array().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_node_exporter_and_python_client() {
    install_crypto();
    let Some(node_bin) = node_exporter_bin() else {
        peer_missing("prometheus-node-exporter");
        return;
    };
    if !python_has_client() && peer_missing("python3 with prometheus_client") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node_port = free_port();
    let _node = Proc(
        Command::new(node_bin)
            .arg(format!("--web.listen-address=127.0.0.1:{node_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let py_port = free_port();
    let script = dir.path().join("app.py");
    std::fs::write(&script, PY_APP).unwrap();
    let _py = Proc(
        Command::new("python3")
            .arg(&script)
            .arg(py_port.to_string())
            .spawn()
            .unwrap(),
    );
    let cfg = dir.path().join("prometheus.yml");
    write_config(&cfg, node_port, py_port, "");
    let port = free_port();
    let _koban = start_koban(dir.path(), &cfg, port);
    let base = format!("http://127.0.0.1:{port}");

    let targets = wait_for(&format!("{base}/api/v1/targets"), "both targets up", |v| {
        v["data"]["activeTargets"]
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|t| t["health"] == "up"))
    })
    .await;
    for t in targets["data"]["activeTargets"].as_array().unwrap() {
        assert_eq!(t["lastError"], "");
        assert!(t["scrapeUrl"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"));
    }

    // The Python app's counters and gauge, with their labels and values.
    let v = wait_for(
        &format!("{base}/api/v1/query?query=myapp_requests_total"),
        "app counters",
        |v| v["data"]["result"].as_array().is_some_and(|a| a.len() == 2),
    )
    .await;
    let mut got: Vec<(String, String, String)> = result(&v)
        .iter()
        .map(|s| {
            (
                s["metric"]["path"].as_str().unwrap().to_string(),
                s["metric"]["method"].as_str().unwrap().to_string(),
                s["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("/a".into(), "GET".into(), "3".into()),
            ("/b".into(), "POST".into(), "5".into())
        ]
    );
    let v = get_json(&format!(
        "{base}/api/v1/query?query=myapp_temperature_celsius"
    ))
    .await;
    assert_eq!(result(&v)[0]["value"][1], "21.5");
    assert_eq!(result(&v)[0]["metric"]["room"], "kitchen");
    assert_eq!(result(&v)[0]["metric"]["job"], "app");

    // HELP and TYPE as the pages say.
    let meta = get_json(&format!("{base}/api/v1/metadata")).await;
    let m = &meta["data"]["myapp_temperature_celsius"][0];
    assert_eq!(m["type"], "gauge");
    assert_eq!(m["help"], "Current temperature.");
    let page = reqwest::get(format!("http://127.0.0.1:{node_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let help_line = page
        .lines()
        .find(|l| l.starts_with("# HELP node_cpu_seconds_total "))
        .expect("node exporter HELP");
    let help = help_line.trim_start_matches("# HELP node_cpu_seconds_total ");
    let m = &meta["data"]["node_cpu_seconds_total"][0];
    assert_eq!(m["type"], "counter");
    assert_eq!(m["help"], help);

    // Node exporter series are there, with the job's labels.
    let v = get_json(&format!(
        "{base}/api/v1/query?query=count(node_cpu_seconds_total)"
    ))
    .await;
    let n: f64 = result(&v)[0]["value"][1].as_str().unwrap().parse().unwrap();
    let on_page = page
        .lines()
        .filter(|l| l.starts_with("node_cpu_seconds_total{"))
        .count();
    assert_eq!(n as usize, on_page);

    // A bad config is refused; the old one keeps running.
    write_config(
        &cfg,
        node_port,
        py_port,
        "- job_name: broken\n  bogus_key: 1\n",
    );
    let r = reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(body.contains("bogus_key"), "{body}");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "koban_config_last_reload_successful 0"),
        "{metrics}"
    );
    let v = get_json(&format!("{base}/api/v1/targets")).await;
    assert_eq!(v["data"]["activeTargets"].as_array().unwrap().len(), 2);

    // A good change applies: the app job goes away.
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n- job_name: node\n  static_configs:\n  - targets: ['127.0.0.1:{node_port}']\n"),
    )
    .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_for(
        &format!("{base}/api/v1/targets"),
        "one target after reload",
        |v| {
            v["data"]["activeTargets"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
        },
    )
    .await;
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics
        .lines()
        .any(|l| l == "koban_config_last_reload_successful 1"));
    assert!(metrics.contains("koban_tsdb_head_samples_appended_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default_scrapes_itself() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("koban.log")).unwrap();
    let _koban = Proc(
        Command::new(env!("CARGO_BIN_EXE_koban"))
            .current_dir(dir.path())
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let v = wait_for(
        &format!("{base}/api/v1/targets"),
        "the self-scrape target",
        |v| {
            v["data"]["activeTargets"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        },
    )
    .await;
    let ready = reqwest::get(format!("{base}/-/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let t = &v["data"]["activeTargets"][0];
    assert_eq!(t["labels"]["job"], "koban");
    assert_eq!(t["scrapeUrl"], format!("http://localhost:{port}/metrics"));
    assert!(
        dir.path().join("data").exists(),
        "data goes to ./data by default"
    );
}

#[test]
fn unknown_flag_is_refused_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_koban"))
        .arg("--storage.tsdb.bogus=1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--storage.tsdb.bogus"), "{err}");
}

#[test]
fn check_config_reports_location_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "scrape_configs:\n- job_name: a\n  static_configs:\n  - targets: ['h:1', 'h:2']\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_koban"))
        .args(["check", "config"])
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 scrape jobs, 2 static targets"), "{text}");
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "scrape_configs:\n- job_name: a\n  scrape_intervall: 5s\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_koban"))
        .args(["check", "config"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("bad.yml:3:3"), "{text}");
    assert!(text.contains("scrape_intervall"), "{text}");
}

#[test]
fn check_config_reads_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tls.yml");
    std::fs::write(
        &cfg,
        "scrape_configs:\n- job_name: a\n  scheme: https\n  tls_config: {ca_file: missing-ca.pem}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_koban"))
        .args(["check", "config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    let want = format!(
        "invalid scrape config for job \"a\": unable to read tls_config ca_file {}",
        dir.path().join("missing-ca.pem").display()
    );
    assert!(text.contains(&want), "{text}");
}

#[test]
fn out_of_order_window_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ooo.yml");
    std::fs::write(
        &cfg,
        "storage:\n  tsdb:\n    out_of_order_time_window: 30m\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_koban"))
        .args(["check", "config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
}

#[test]
fn shared_examples_load_or_name_the_missing_provider() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/examples");
    assert!(shared.exists(), "{} is missing", shared.display());
    for (file, want) in [
        ("conoha-static.yml", None),
        ("dns-sd.yml", None),
        ("ec2-relabel.yml", Some("ec2_sd_configs")),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_koban"))
            .args(["check", "config"])
            .arg(shared.join(file))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        match want {
            None => assert!(out.status.success(), "{file}: {text}"),
            Some(key) => {
                assert!(!out.status.success(), "{file}");
                assert!(
                    text.contains(key) && text.contains("not supported"),
                    "{file}: {text}"
                );
            }
        }
    }
}
