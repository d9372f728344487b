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
use koban_testkit::{alertmanager, until};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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
    let dir = tempfile::tempdir().unwrap();
    let Some(am) = alertmanager::start(dir.path(), alertmanager::BLACKHOLE_CONFIG).await else {
        return;
    };
    let (port, url) = (am.port, am.url.clone());

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
    until("the alertmanager", async || {
        (n.alertmanagers().active.len() == 1).then_some(())
    })
    .await;

    let now = chrono::Utc::now().timestamp_millis();
    let starts = now - 60_000;
    n.send(vec![alert("KobanTest", starts, now + 3_600_000)]);
    let shown = until("the alert in amtool", async || {
        am.query()
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
    until("the alert to resolve", async || {
        let active = am.query();
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
