//! The notifier against fake Alertmanagers: small axum servers on
//! 127.0.0.1:0 recording what they receive.

use super::*;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use koban_model::{Alert, Labels};
use parking_lot::Mutex;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    /// Accepts the request and never answers.
    Hang,
    Fail,
}

#[derive(Clone)]
struct FakeAm {
    addr: String,
    posts: Arc<Mutex<Vec<Vec<Value>>>>,
}

impl FakeAm {
    async fn start(mode: Mode) -> FakeAm {
        let posts: Arc<Mutex<Vec<Vec<Value>>>> = Arc::default();
        let handler = move |State(p): State<Arc<Mutex<Vec<Vec<Value>>>>>, body: String| async move {
            let v: Vec<Value> = serde_json::from_str(&body).expect("a JSON array");
            p.lock().push(v);
            match mode {
                Mode::Ok => StatusCode::OK,
                Mode::Hang => std::future::pending().await,
                Mode::Fail => StatusCode::INTERNAL_SERVER_ERROR,
            }
        };
        let app = axum::Router::new()
            .route("/api/v2/alerts", post(handler))
            .route("/prefix/api/v2/alerts", post(handler))
            .with_state(posts.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(l, app).await });
        FakeAm { addr, posts }
    }

    /// Every alert received, in order, as `alertname` values.
    fn names(&self) -> Vec<String> {
        self.posts
            .lock()
            .iter()
            .flatten()
            .map(|a| a["labels"]["alertname"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn alerts(&self) -> Vec<Value> {
        self.posts.lock().iter().flatten().cloned().collect()
    }

    fn post_sizes(&self) -> Vec<usize> {
        self.posts.lock().iter().map(Vec::len).collect()
    }
}

fn alert(name: &str) -> Alert {
    Alert {
        labels: Labels::from_pairs([("alertname", name), ("severity", "page")]),
        annotations: Labels::from_pairs([("summary", format!("{name} fired"))]),
        starts_at: 1_700_000_000_000,
        ends_at: 1_700_000_240_000,
        generator_url: format!("http://koban:9090/graph?g0.expr={name}"),
    }
}

fn alerts(prefix: &str, n: usize) -> Vec<Alert> {
    (0..n).map(|i| alert(&format!("{prefix}{i}"))).collect()
}

fn start(capacity: usize) -> (Notifier, NotifierMetrics) {
    let metrics = NotifierMetrics::default();
    let n = Notifier::start(
        Options {
            queue_capacity: capacity,
            discovery_debounce: Duration::from_millis(5),
            drain_on_shutdown: false,
        },
        metrics.clone(),
    );
    (n, metrics)
}

fn apply(n: &Notifier, yaml: &str) {
    apply_at(n, yaml, Path::new("/tmp/p.yml"));
}

fn apply_at(n: &Notifier, yaml: &str, path: &Path) {
    let cfg = Arc::new(koban_config::load_str(yaml, path).unwrap());
    let p = n.prepare(&cfg).unwrap();
    n.commit(p);
}

/// Polls `f` until it holds; fails after a generous deadline.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn am_config(addrs: &[&str]) -> String {
    let list: Vec<String> = addrs.iter().map(|a| format!("'{a}'")).collect();
    format!(
        "alerting:\n  alertmanagers:\n    - static_configs: [{{targets: [{}]}}]\n",
        list.join(", ")
    )
}

#[tokio::test]
async fn alerts_arrive_in_batches_of_at_most_64() {
    let am = FakeAm::start(Mode::Ok).await;
    let (n, m) = start(10_000);
    apply(&n, &am_config(&[&am.addr]));
    until("the alertmanager", || n.alertmanagers().active.len() == 1).await;
    n.send(alerts("a", 150));
    until("150 alerts", || am.names().len() == 150).await;
    let sizes = am.post_sizes();
    assert!(sizes.iter().all(|s| *s <= MAX_BATCH), "{sizes:?}");
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    let want: Vec<String> = (0..150).map(|i| format!("a{i}")).collect();
    assert_eq!(am.names(), want);
    let url = format!("http://{}/api/v2/alerts", am.addr);
    let l = NotifierMetrics::label(&url);
    until("the sent count", || m.sent.get_or_create(&l).get() == 150).await;
    assert_eq!(m.errors.get_or_create(&l).get(), 0);
    assert_eq!(m.dropped.get(), 0);
    assert_eq!(m.alertmanagers_discovered.get(), 1);
    // What Alertmanager receives: postableAlerts.
    let first = &am.alerts()[0];
    assert_eq!(
        first,
        &serde_json::json!({
            "labels": {"alertname": "a0", "severity": "page"},
            "annotations": {"summary": "a0 fired"},
            "startsAt": "2023-11-14T22:13:20.000Z",
            "endsAt": "2023-11-14T22:17:20.000Z",
            "generatorURL": "http://koban:9090/graph?g0.expr=a0",
        })
    );
    n.stop().await;
}

#[tokio::test]
async fn a_hanging_alertmanager_does_not_delay_the_others() {
    let good = FakeAm::start(Mode::Ok).await;
    let hang = FakeAm::start(Mode::Hang).await;
    let (n, m) = start(10_000);
    // A timeout far longer than the test: only independence lets the good one through.
    apply(
        &n,
        &format!(
            "alerting:\n  alertmanagers:\n    - timeout: 1h\n      static_configs: [{{targets: ['{}', '{}']}}]\n",
            hang.addr, good.addr
        ),
    );
    until("two alertmanagers", || n.alertmanagers().active.len() == 2).await;
    n.send(alerts("first", 1));
    until("the first alert", || good.names() == ["first0"]).await;
    until("the hanging one to get it", || hang.names() == ["first0"]).await;
    for round in 1..5 {
        n.send(alerts(&format!("r{round}-"), 70));
        until("the next round", || good.names().len() == 1 + 70 * round).await;
    }
    // The hanging one is still stuck on its first post.
    assert_eq!(hang.names(), ["first0"]);
    // Its alerts are still queued (it has not passed them), none dropped.
    assert_eq!(m.queue_length.get(), 1 + 4 * 70);
    assert_eq!(m.dropped.get(), 0);
    n.stop().await;
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_them() {
    let hang = FakeAm::start(Mode::Hang).await;
    let (n, m) = start(10);
    apply(
        &n,
        &format!(
            "alerting:\n  alertmanagers:\n    - timeout: 1h\n      static_configs: [{{targets: ['{}']}}]\n",
            hang.addr
        ),
    );
    until("the alertmanager", || n.alertmanagers().active.len() == 1).await;
    n.send(alerts("a", 100));
    assert_eq!(m.dropped.get(), 90);
    n.send(alerts("b", 5));
    assert_eq!(m.dropped.get(), 95);
    assert_eq!(m.queue_length.get(), 10);
    assert_eq!(m.queue_capacity.get(), 10);
    n.stop().await;
}

#[tokio::test]
async fn failed_posts_are_counted_as_errors() {
    let bad = FakeAm::start(Mode::Fail).await;
    let (n, m) = start(100);
    apply(&n, &am_config(&[&bad.addr]));
    until("the alertmanager", || n.alertmanagers().active.len() == 1).await;
    n.send(alerts("a", 3));
    let l = NotifierMetrics::label(&format!("http://{}/api/v2/alerts", bad.addr));
    until("the errors", || m.errors.get_or_create(&l).get() == 3).await;
    assert_eq!(m.sent.get_or_create(&l).get(), 3);
    until("an empty queue", || m.queue_length.get() == 0).await;
    n.stop().await;
}

#[tokio::test]
async fn external_labels_then_global_and_per_set_alert_relabelling() {
    let a = FakeAm::start(Mode::Ok).await;
    let b = FakeAm::start(Mode::Ok).await;
    let (n, _) = start(100);
    apply(
        &n,
        &format!(
            "\
global:
  external_labels: {{dc: eu, replica: r1}}
alerting:
  alert_relabel_configs:
    - action: labeldrop
      regex: replica
    - source_labels: [alertname]
      regex: Dropped
      action: drop
  alertmanagers:
    - static_configs: [{{targets: ['{a}']}}]
    - path_prefix: /prefix/
      static_configs: [{{targets: ['{b}']}}]
      alert_relabel_configs:
        - source_labels: [dc]
          target_label: region
        - source_labels: [alertname]
          regex: OnlyA
          action: drop
",
            a = a.addr,
            b = b.addr
        ),
    );
    until("two alertmanagers", || n.alertmanagers().active.len() == 2).await;
    assert_eq!(
        n.alertmanagers().active,
        [
            format!("http://{}/api/v2/alerts", a.addr),
            format!("http://{}/prefix/api/v2/alerts", b.addr)
        ]
    );
    let mut own = alert("Own");
    own.labels = Labels::from_pairs([("alertname", "Own"), ("dc", "us")]);
    n.send(vec![alert("Dropped"), alert("OnlyA"), own, alert("Last")]);
    until("alerts at a", || a.names() == ["OnlyA", "Own", "Last"]).await;
    until("alerts at b", || b.names() == ["Own", "Last"]).await;
    let labels = |v: &Value| v["labels"].clone();
    assert_eq!(
        labels(&a.alerts()[1]),
        serde_json::json!({"alertname": "Own", "dc": "us"})
    );
    assert_eq!(
        labels(&a.alerts()[2]),
        serde_json::json!({"alertname": "Last", "dc": "eu", "severity": "page"})
    );
    assert_eq!(
        labels(&b.alerts()[1]),
        serde_json::json!({"alertname": "Last", "dc": "eu", "region": "eu", "severity": "page"})
    );
    n.stop().await;
}

#[tokio::test]
async fn relabelled_alertmanagers_are_listed_as_dropped() {
    let am = FakeAm::start(Mode::Ok).await;
    let (n, m) = start(100);
    apply(
        &n,
        &format!(
            "\
alerting:
  alertmanagers:
    - scheme: http
      static_configs: [{{targets: ['{}', '127.0.0.1:1']}}]
      relabel_configs:
        - source_labels: [__address__]
          regex: '.*:1'
          action: drop
",
            am.addr
        ),
    );
    until("the alertmanager", || n.alertmanagers().active.len() == 1).await;
    assert_eq!(
        n.alertmanagers(),
        AlertmanagerList {
            active: vec![format!("http://{}/api/v2/alerts", am.addr)],
            dropped: vec!["http://127.0.0.1:1/api/v2/alerts".into()],
        }
    );
    assert_eq!(m.alertmanagers_discovered.get(), 1);
    n.stop().await;
}

#[tokio::test]
async fn without_alertmanagers_alerts_are_dropped_at_once() {
    let (n, m) = start(100);
    n.send(alerts("a", 4));
    assert_eq!(m.dropped.get(), 4);
    assert_eq!(m.queue_length.get(), 0);
    apply(&n, "global:\n  external_labels: {a: b}\n");
    n.send(alerts("a", 1));
    assert_eq!(m.dropped.get(), 5);
    n.stop().await;
}

#[tokio::test]
async fn file_sd_alertmanagers_follow_the_file_and_reloads() {
    let a = FakeAm::start(Mode::Ok).await;
    let b = FakeAm::start(Mode::Ok).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ams.json");
    let write = |addr: &str| {
        let tmp = dir.path().join("tmp.json");
        std::fs::write(&tmp, format!(r#"[{{"targets": ["{addr}"]}}]"#)).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
    };
    write(&a.addr);
    let (n, m) = start(100);
    let cfg_path = dir.path().join("p.yml");
    let yaml = "alerting:\n  alertmanagers:\n    - file_sd_configs: [{files: [ams.json]}]\n";
    apply_at(&n, yaml, &cfg_path);
    let url = |am: &FakeAm| format!("http://{}/api/v2/alerts", am.addr);
    until("a from the file", || n.alertmanagers().active == [url(&a)]).await;
    n.send(alerts("x", 1));
    until("x at a", || a.names() == ["x0"]).await;
    write(&b.addr);
    until("b from the file", || n.alertmanagers().active == [url(&b)]).await;
    n.send(alerts("y", 1));
    until("y at b", || b.names() == ["y0"]).await;
    assert_eq!(a.names(), ["x0"]);
    // a's series went with it.
    let text = {
        let mut r = prometheus_client::registry::Registry::default();
        m.register(&mut r);
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &r).unwrap();
        s
    };
    assert!(!text.contains(&a.addr), "{text}");
    assert!(
        text.contains(&format!(
            "koban_notifications_sent_total{{alertmanager=\"{}\"}} 1",
            url(&b)
        )),
        "{text}"
    );
    // A reload with a changed timeout keeps b and its place in the queue.
    let yaml2 = "alerting:\n  alertmanagers:\n    - timeout: 3s\n      file_sd_configs: [{files: [ams.json]}]\n";
    apply_at(&n, yaml2, &cfg_path);
    n.send(alerts("z", 1));
    until("z at b", || b.names() == ["y0", "z0"]).await;
    // Removing every Alertmanager stops sending.
    apply(&n, "global: {}\n");
    assert!(n.alertmanagers().active.is_empty());
    assert_eq!(m.alertmanagers_discovered.get(), 0);
    n.stop().await;
}

#[test]
fn api_v1_is_refused_with_prometheus_words() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (n, _) = start(10);
        let mut cfg = koban_config::load_str(&am_config(&["a:1"]), Path::new("p.yml")).unwrap();
        cfg.alerting.alertmanagers[0].api_version = "v1".into();
        let e = n.prepare(&Arc::new(cfg)).err().unwrap();
        assert_eq!(
            e.to_string(),
            "alerting.alertmanagers config-0: expected Alertmanager api version to be one of [v2] but got v1"
        );
        n.stop().await;
    });
}
