//! Rules end to end against the `koban` binary: it scrapes itself every
//! second and evaluates a rule file every second. Recorded series and
//! `ALERTS` are queryable; an alert firing before a kill -9 is firing
//! after the restart at once, never pending.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{client, free_port, now_ms, spawn_koban, Proc};

#[path = "support/koban.rs"]
mod support;

const RULES: &str = r#"groups:
- name: self
  interval: 1s
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
    labels: {team: core}
  - alert: SelfUp
    expr: up == 1
    for: 3s
    keep_firing_for: 1m
    labels: {severity: page}
    annotations: {summary: "instance is up"}
  - alert: Never
    expr: up == 5
"#;

struct Server {
    dir: PathBuf,
    port: u16,
    proc: Option<Proc>,
}

impl Server {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(dir: &Path) -> Server {
        let port = free_port();
        std::fs::write(dir.join("rules.yml"), RULES).unwrap();
        let cfg = dir.join(format!("koban-{port}.yml"));
        std::fs::write(&cfg, support::rules_config(port)).unwrap();
        let proc = spawn_koban(
            &cfg,
            &dir.join("data"),
            port,
            &dir.join(format!("koban-{port}.log")),
            &[],
        );
        Server {
            dir: dir.to_path_buf(),
            port,
            proc: Some(proc),
        }
    }

    /// SIGKILL, then a new process on the same data.
    fn kill_and_restart(&mut self) {
        drop(self.proc.take());
        *self = Server::start(&self.dir);
    }
}

/// The result of an instant query, or None while the server is not up.
async fn query(s: &Server, q: &str) -> Option<Vec<Value>> {
    let r = client()
        .post(format!("{}/api/v1/query", s.base()))
        .form(&[("query", q)])
        .send()
        .await
        .ok()?;
    let v: Value = r.json().await.ok()?;
    assert_eq!(v["status"], "success", "{q}: {v}");
    Some(v["data"]["result"].as_array().unwrap().clone())
}

/// Polls (generous deadline) until `q` returns something.
async fn wait_for(s: &Server, q: &str) -> Vec<Value> {
    for _ in 0..600 {
        if let Some(r) = query(s, q).await {
            if !r.is_empty() {
                return r;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{q}: no result within 60 s");
}

async fn wait_ready(s: &Server) {
    for _ in 0..600 {
        if let Ok(r) = client().get(format!("{}/-/ready", s.base())).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not ready within 30 s");
}

#[tokio::test]
async fn recorded_series_and_alerts_over_scraped_data() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let r = wait_for(&s, "job:up:sum").await;
    assert_eq!(
        r[0]["metric"],
        serde_json::json!({"__name__": "job:up:sum", "job": "self", "team": "core"})
    );
    assert_eq!(r[0]["value"][1], "1");
    let r = wait_for(&s, r#"ALERTS{alertstate="firing"}"#).await;
    assert_eq!(
        r[0]["metric"],
        serde_json::json!({
            "__name__": "ALERTS", "alertname": "SelfUp", "alertstate": "firing",
            "instance": format!("127.0.0.1:{}", s.port), "job": "self", "severity": "page"
        })
    );
    let r = wait_for(&s, "ALERTS_FOR_STATE").await;
    let active_at: f64 = r[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(active_at > 1e9 && active_at <= (now_ms() / 1000) as f64);
    assert!(query(&s, r#"ALERTS{alertname="Never"}"#)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_alert_firing_before_kill_9_is_firing_right_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    wait_for(&s, r#"ALERTS{alertname="SelfUp", alertstate="firing"}"#).await;
    // Let the state reach the disk after the evaluation that fired it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kill_and_restart();
    let restart = now_ms();
    wait_ready(&s).await;
    // The first evaluations after the restart: firing, with no pending one.
    let after = |r: &[Value], state: &str| -> Vec<f64> {
        r.iter()
            .filter(|x| x["metric"]["alertstate"] == state)
            .flat_map(|x| x["values"].as_array().unwrap().clone())
            .map(|p| p[0].as_f64().unwrap())
            .filter(|&t| t * 1000.0 > restart as f64)
            .collect()
    };
    let mut firing = Vec::new();
    for _ in 0..600 {
        let r = query(&s, r#"ALERTS{alertname="SelfUp"}[1m]"#)
            .await
            .unwrap_or_default();
        firing = after(&r, "firing");
        assert_eq!(
            after(&r, "pending"),
            Vec::<f64>::new(),
            "pending after restart: {r:?}"
        );
        if firing.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(firing.len() >= 3, "no firing evaluations after the restart");
}
