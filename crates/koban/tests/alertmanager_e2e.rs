//! Alerting end to end: the `koban` binary scrapes a static metrics page
//! (served by `python3 -m http.server` on loopback), evaluates an alerting
//! rule with `for:`, labels and annotations over it and sends the alert to
//! a real Alertmanager (Debian's prometheus-alertmanager 0.25), read back
//! with its `amtool` as a user would. When the page's value drops, the
//! alert resolves in Alertmanager.
//!
//! The binaries are `KOBAN_ALERTMANAGER` / `KOBAN_AMTOOL`, else
//! `prometheus-alertmanager` / `amtool` on PATH. A missing peer fails the
//! test in CI (CI=true) and skips it elsewhere; scripts/test.sh installs
//! them.

use koban_testkit::alertmanager;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use support::{client, find_bin, free_port, now_ms, peer_missing, spawn_koban, until, Proc};

#[path = "support/koban.rs"]
mod support;

// The summary is a template: Alertmanager shows it rendered.
const RULES: &str = r#"groups:
- name: app
  rules:
  - alert: QueueTooLong
    expr: app_queue_depth > 10
    for: 2s
    labels: {severity: page}
    annotations:
      summary: "queue of {{ $labels.job }} is {{ $value | humanize }} long"
      runbook: "https://runbooks.example/queue"
"#;

fn time_ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .timestamp_millis()
}

fn write_metrics(dir: &Path, depth: u32) {
    // Written aside then renamed: the scraper never sees half a page.
    let tmp = dir.join("metrics.tmp");
    std::fs::write(
        &tmp,
        format!("# TYPE app_queue_depth gauge\napp_queue_depth {depth}\n"),
    )
    .unwrap();
    std::fs::rename(&tmp, dir.join("metrics.txt")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_alert_reaches_alertmanager_and_resolves_there() {
    let Some(python) = find_bin("KOBAN_PYTHON", "python3") else {
        peer_missing("python3");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Alertmanager, clustering off, routing everything to a blackhole.
    let Some(am) = alertmanager::start(d, alertmanager::BLACKHOLE_CONFIG).await else {
        return;
    };
    let (am_port, am_url) = (am.port, am.url.clone());

    // The scrape target: a static page whose value the test controls.
    let www = d.join("www");
    std::fs::create_dir(&www).unwrap();
    write_metrics(&www, 50);
    let app_port = free_port();
    let _app = Proc(
        Command::new(&python)
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(app_port.to_string())
            .arg("--directory")
            .arg(&www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    std::fs::write(d.join("rules.yml"), RULES).unwrap();
    let cfg = d.join("koban.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
  external_labels: {{dc: eu1, replica: a}}
rule_files: [rules.yml]
alerting:
  alertmanagers:
  - static_configs:
    - targets: ['127.0.0.1:{am_port}']
scrape_configs:
- job_name: app
  metrics_path: /metrics.txt
  static_configs:
  - targets: ['127.0.0.1:{app_port}']
"
        ),
    )
    .unwrap();
    let port = free_port();
    let started = now_ms();
    let _koban = spawn_koban(
        &cfg,
        &d.join("data"),
        port,
        &d.join("koban.log"),
        &["--rules.alert.resend-delay=1s"],
    );

    // Firing in Alertmanager, as amtool shows it.
    let a = until("the alert in Alertmanager", async || {
        am.query()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "QueueTooLong")
    })
    .await;
    assert_eq!(
        a["labels"],
        serde_json::json!({
            "alertname": "QueueTooLong", "severity": "page", "job": "app",
            "instance": format!("127.0.0.1:{app_port}"), "dc": "eu1", "replica": "a"
        }),
        "{a}"
    );
    assert_eq!(
        a["annotations"],
        serde_json::json!({
            "summary": "queue of app is 50 long",
            "runbook": "https://runbooks.example/queue"
        }),
        "{a}"
    );
    assert_eq!(a["status"]["state"], "active", "{a}");
    let starts_at = time_ms(&a["startsAt"]);
    assert!(
        starts_at >= started - 1000 && starts_at <= now_ms(),
        "startsAt {starts_at} outside the test's run: {a}"
    );
    assert!(
        time_ms(&a["endsAt"]) > now_ms() - 1000,
        "a firing alert ends in the future: {a}"
    );
    assert!(
        a["generatorURL"]
            .as_str()
            .is_some_and(|u| u.contains("/graph?g0.expr=")),
        "{a}"
    );

    // Koban's own view agrees: as in Prometheus, Alertmanager's startsAt is
    // when the alert fired, at least `for: 2s` after it became active.
    let base = format!("http://127.0.0.1:{port}");
    let local = until("koban's firing alert", async || {
        let v: Value = client()
            .get(format!("{base}/api/v1/alerts"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["state"] == "firing")
            .cloned()
    })
    .await;
    assert!(
        time_ms(&local["activeAt"]) + 2000 <= starts_at,
        "{local} vs {a}"
    );

    // The condition goes away: the alert resolves in Alertmanager.
    write_metrics(&www, 0);
    until(
        "the alert to leave Alertmanager's active list",
        async || {
            let active = am.query();
            (!active
                .iter()
                .any(|a| a["labels"]["alertname"] == "QueueTooLong"))
            .then_some(())
        },
    )
    .await;
    // Still known to Alertmanager (not expired yet) at most as resolved:
    // its end is in the past.
    let v: Value = client()
        .get(format!(
            "{am_url}/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for a in v.as_array().unwrap() {
        if a["labels"]["alertname"] == "QueueTooLong" {
            assert!(time_ms(&a["endsAt"]) <= now_ms(), "not resolved: {a}");
        }
    }
    let local: Value = client()
        .get(format!("{base}/api/v1/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(local["data"]["alerts"], serde_json::json!([]), "{local}");
}
