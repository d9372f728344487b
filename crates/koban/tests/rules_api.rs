//! `/api/v1/rules` and `/api/v1/alerts` of the real `koban` binary: a rule
//! file it evaluates shows its group, rules, health and a firing alert
//! with Prometheus's JSON fields.

use serde_json::Value;
use std::time::Duration;
use support::{client, free_port, spawn_koban};

#[path = "support/koban.rs"]
mod support;

const RULES: &str = r#"groups:
- name: self
  interval: 1s
  limit: 100
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
    labels: {team: core}
  - alert: SelfUp
    expr: up == 1
    keep_firing_for: 1m
    labels: {severity: page}
    annotations: {summary: "instance is up"}
"#;

async fn get(url: &str) -> Option<Value> {
    let r = client().get(url).send().await.ok()?;
    let v: Value = r.json().await.ok()?;
    assert_eq!(v["status"], "success", "{url}: {v}");
    Some(v["data"].clone())
}

fn is_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z'))
}

#[tokio::test]
async fn rules_and_alerts_apis_show_the_evaluated_rule_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let cfg = dir.path().join("koban.yml");
    std::fs::write(&cfg, support::rules_config(port)).unwrap();
    let _proc = spawn_koban(
        &cfg,
        &dir.path().join("data"),
        port,
        &dir.path().join("koban.log"),
        &[],
    );
    let base = format!("http://127.0.0.1:{port}");
    // Poll (generous deadline) until the alert fires: the target must be
    // scraped first.
    let mut alerts = Vec::new();
    for _ in 0..600 {
        if let Some(d) = get(&format!("{base}/api/v1/alerts")).await {
            alerts = d["alerts"].as_array().cloned().unwrap_or_default();
            if alerts.iter().any(|a| a["state"] == "firing") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = alerts
        .iter()
        .find(|a| a["state"] == "firing")
        .unwrap_or_else(|| panic!("no firing alert within 60 s: {alerts:?}"));
    assert_eq!(
        a["labels"],
        serde_json::json!({
            "alertname": "SelfUp", "instance": format!("127.0.0.1:{port}"),
            "job": "self", "severity": "page"
        })
    );
    assert_eq!(
        a["annotations"],
        serde_json::json!({"summary": "instance is up"})
    );
    assert_eq!(a["value"], "1e+00");
    assert!(is_time(&a["activeAt"]), "{a}");
    let mut keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["activeAt", "annotations", "labels", "state", "value"]
    );

    let d = get(&format!("{base}/api/v1/rules")).await.unwrap();
    let g = &d["groups"][0];
    assert_eq!(g["name"], "self");
    assert!(g["file"].as_str().unwrap().ends_with("rules.yml"), "{g}");
    assert_eq!(g["interval"], 1.0);
    assert_eq!(g["limit"], 100);
    assert!(g["evaluationTime"].as_f64().is_some());
    assert!(is_time(&g["lastEvaluation"]));
    let rec = &g["rules"][0];
    assert_eq!(rec["type"], "recording");
    assert_eq!(rec["name"], "job:up:sum");
    assert_eq!(rec["query"], "sum by (job) (up)");
    assert_eq!(rec["labels"], serde_json::json!({"team": "core"}));
    assert_eq!(rec["health"], "ok");
    assert!(rec.get("lastError").is_none());
    let al = &g["rules"][1];
    assert_eq!(al["type"], "alerting");
    assert_eq!(al["name"], "SelfUp");
    assert_eq!(al["query"], "up == 1");
    assert_eq!(al["state"], "firing");
    assert_eq!(al["duration"], 0.0);
    assert_eq!(al["keepFiringFor"], 60.0);
    assert_eq!(al["labels"], serde_json::json!({"severity": "page"}));
    assert_eq!(al["health"], "ok");
    assert_eq!(al["alerts"][0]["labels"]["alertname"], "SelfUp");
    assert!(is_time(&al["lastEvaluation"]));

    let d = get(&format!(
        "{base}/api/v1/rules?type=record&exclude_alerts=true"
    ))
    .await
    .unwrap();
    assert_eq!(d["groups"][0]["rules"].as_array().unwrap().len(), 1);
    let d = get(&format!(
        "{base}/api/v1/rules?type=alert&exclude_alerts=true"
    ))
    .await
    .unwrap();
    assert_eq!(d["groups"][0]["rules"][0]["alerts"], Value::Null);
}
