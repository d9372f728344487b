//! The notifier against a real Alertmanager: Debian's
//! prometheus-alertmanager 0.25, started by the test on loopback, read back
//! with its `amtool`. Alerts posted show up with their labels, annotations
//! and start time; a resolved alert (endsAt now) leaves the active list.
//!
//! The binaries are `KOBAN_ALERTMANAGER` / `KOBAN_AMTOOL`, else
//! `prometheus-alertmanager` / `amtool` on PATH. A missing one fails the
//! test in CI (CI=true) and skips it elsewhere; scripts/test.sh installs
//! them.

use koban_model::{Alert, AlertSink, Labels};
use koban_notifier::{Notifier, NotifierMetrics, Options};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn peer_missing(what: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        panic!("{what} is required in CI but missing");
    }
    eprintln!("skipping: {what} is missing (scripts/test.sh installs it)");
    true
}

fn find_bin(env: &str, name: &str) -> Option<PathBuf> {
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

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn amtool_query(amtool: &Path, url: &str) -> Vec<Value> {
    let out = Command::new(amtool)
        .args([
            &format!("--alertmanager.url={url}"),
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

/// `GET /-/ready` answers 200 (plain HTTP over a std socket).
fn is_ready(port: u16) -> bool {
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

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn alert(name: &str, starts_at: i64, ends_at: i64) -> Alert {
    Alert {
        labels: Labels::from_pairs([("alertname", name), ("severity", "page")]),
        annotations: Labels::from_pairs([("summary", format!("{name} is firing"))]),
        starts_at,
        ends_at,
        generator_url: "http://koban.test:9090/graph?g0.expr=up".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_alertmanager_and_resolve() {
    let Some(am_bin) = find_bin("KOBAN_ALERTMANAGER", "prometheus-alertmanager") else {
        peer_missing("prometheus-alertmanager");
        return;
    };
    let Some(amtool) = find_bin("KOBAN_AMTOOL", "amtool") else {
        peer_missing("amtool");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let am_cfg = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_cfg,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let port = free_port();
    let _am = Proc(
        Command::new(&am_bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--config.file={}", am_cfg.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if is_ready(port) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alertmanager never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let metrics = NotifierMetrics::default();
    let n = Notifier::start(
        Options {
            discovery_debounce: Duration::from_millis(5),
            ..Options::default()
        },
        metrics.clone(),
    );
    let cfg = koban_config::load_str(
        &format!(
            "global:\n  external_labels: {{dc: eu}}\nalerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
        Path::new("/tmp/p.yml"),
    )
    .unwrap();
    let prepared = n.prepare(&Arc::new(cfg)).unwrap();
    n.commit(prepared);
    until("the alertmanager", || {
        (n.alertmanagers().active.len() == 1).then_some(())
    })
    .await;

    let now = chrono::Utc::now().timestamp_millis();
    let starts = now - 60_000;
    n.send(vec![alert("KobanTest", starts, now + 3_600_000)]);
    let shown = until("the alert in amtool", || {
        amtool_query(&amtool, &url)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "KobanTest")
    })
    .await;
    assert_eq!(
        shown["labels"],
        serde_json::json!({"alertname": "KobanTest", "severity": "page", "dc": "eu"})
    );
    assert_eq!(
        shown["annotations"],
        serde_json::json!({"summary": "KobanTest is firing"})
    );
    assert_eq!(
        shown["generatorURL"],
        "http://koban.test:9090/graph?g0.expr=up"
    );
    let shown_start = chrono::DateTime::parse_from_rfc3339(shown["startsAt"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert_eq!(shown_start, starts);
    let shown_end = chrono::DateTime::parse_from_rfc3339(shown["endsAt"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert_eq!(shown_end, now + 3_600_000);
    assert_eq!(shown["status"]["state"], "active");

    // Resolved: endsAt now; it leaves the active alerts.
    n.send(vec![alert(
        "KobanTest",
        starts,
        chrono::Utc::now().timestamp_millis(),
    )]);
    until("the alert to resolve", || {
        let active = amtool_query(&amtool, &url);
        (!active
            .iter()
            .any(|a| a["labels"]["alertname"] == "KobanTest"))
        .then_some(())
    })
    .await;
    let l = koban_notifier::AlertmanagerLabel {
        alertmanager: format!("{url}/api/v2/alerts"),
    };
    assert_eq!(metrics.sent.get_or_create(&l).get(), 2);
    assert_eq!(metrics.errors.get_or_create(&l).get(), 0);
    n.stop().await;
}
