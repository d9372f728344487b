//! The HTTP API as a client sees it: same JSON, error types and status codes
//! as Prometheus, under a route prefix too.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use koban_model::Labels;
use koban_promql::memstore::MemStore;
use koban_promql::{Engine, EngineOpts};
use koban_storage::Queryable;
use koban_web::{
    ActiveTarget, AppState, Backend, DroppedTarget, TargetMetadata, TsdbStatus, WebOptions,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

struct Fake {
    store: Arc<MemStore>,
}

impl Backend for Fake {
    fn storage(&self) -> Arc<dyn Queryable> {
        self.store.clone()
    }
    fn targets(&self) -> (Vec<ActiveTarget>, Vec<DroppedTarget>) {
        let t = ActiveTarget {
            discovered_labels: BTreeMap::from([("__address__".into(), "h:1".into())]),
            labels: BTreeMap::from([
                ("job".into(), "node".into()),
                ("instance".into(), "h:1".into()),
            ]),
            scrape_pool: "node".into(),
            scrape_url: "http://h:1/metrics".into(),
            global_url: "http://h:1/metrics".into(),
            last_error: "connection refused".into(),
            last_scrape: "0001-01-01T00:00:00Z".into(),
            last_scrape_duration: 0.0,
            health: "down".into(),
            scrape_interval: "15s".into(),
            scrape_timeout: "10s".into(),
        };
        let d = DroppedTarget {
            discovered_labels: BTreeMap::from([("__address__".into(), "x:2".into())]),
            scrape_pool: "node".into(),
        };
        (vec![t], vec![d])
    }
    fn target_metadata(&self) -> Vec<TargetMetadata> {
        vec![]
    }
    fn config_yaml(&self) -> String {
        "global: {}\n".into()
    }
    fn tsdb_status(&self) -> TsdbStatus {
        TsdbStatus::default()
    }
    fn metrics_text(&self) -> String {
        "# EOF\n".into()
    }
    fn reload(&self) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async { Err("bad config".to_string()) })
    }
    fn is_ready(&self) -> bool {
        true
    }
    fn runtime_info(&self) -> Value {
        serde_json::json!({})
    }
}

fn app(prefix: &str) -> axum::Router {
    let store = Arc::new(MemStore::new());
    for (inst, base) in [("a:1", 0.0), ("b:1", 100.0)] {
        let samples: Vec<(i64, f64)> = (0..=20)
            .map(|i| (i * 15_000, base + i as f64 * 15.0))
            .collect();
        store.add(
            Labels::from_pairs([
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("instance", inst),
            ]),
            &samples,
        );
    }
    store.add(
        Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", "a:1")]),
        &[(0, 1.0), (300_000, 1.0)],
    );
    let state = Arc::new(AppState {
        backend: Arc::new(Fake { store }),
        engine: Arc::new(Engine::new(EngineOpts {
            lookback_delta_ms: 300_000,
            timeout: Duration::from_secs(10),
            max_samples: 1_000_000,
        })),
        query_slots: Arc::new(tokio::sync::Semaphore::new(20)),
        opts: WebOptions {
            listen_address: "127.0.0.1:0".into(),
            route_prefix: prefix.into(),
            external_url: String::new(),
            enable_lifecycle: false,
            enable_admin_api: false,
            flags: BTreeMap::from([("web.listen-address".into(), "127.0.0.1:0".into())]),
        },
        shutdown: tokio_util::sync::CancellationToken::new(),
        start_time: chrono::Utc::now(),
    });
    koban_web::router(state)
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if method == "POST" {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn json(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let (s, b) = call(app, "GET", uri, "").await;
    (
        s,
        serde_json::from_str(&b).unwrap_or_else(|e| panic!("{uri}: {e}: {b}")),
    )
}

#[tokio::test]
async fn instant_query_json_matches_prometheus() {
    let app = app("");
    let (s, body) = call(&app, "GET", "/api/v1/query?query=up&time=300", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"a:1","job":"api"},"value":[300,"1"]}]}}"#
    );
    let (_, body) = call(&app, "GET", "/api/v1/query?query=1.5&time=1.234", "").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1.234,"1.5"]}}"#
    );
    let (_, body) = call(&app, "GET", "/api/v1/query?query=%22hi%22&time=2", "").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"string","result":[2,"hi"]}}"#
    );
}

#[tokio::test]
async fn post_form_and_range_query() {
    let app = app("");
    let (s, body) = call(
        &app,
        "POST",
        "/api/v1/query_range",
        "query=sum(rate(http_requests_total[1m]))&start=60&end=120&step=30",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["resultType"], "matrix");
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 3);
    assert_eq!(values[0][0], 60);
    let rate: f64 = values[0][1].as_str().unwrap().parse().unwrap();
    assert!((rate - 2.0).abs() < 1e-9, "{rate}");
}

#[tokio::test]
async fn errors_have_prometheus_types_and_codes() {
    let app = app("");
    let (s, v) = json(&app, "/api/v1/query?query=sum(").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["errorType"], "bad_data");
    assert!(
        v["error"].as_str().unwrap().contains("1:5: parse error"),
        "{v}"
    );
    let (s, v) = json(&app, "/api/v1/query_range?query=up&start=10&end=20&step=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("zero or negative query resolution step widths are not accepted"));
    let (s, v) = json(
        &app,
        "/api/v1/query_range?query=up&start=0&end=100000&step=1",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("exceeded maximum resolution of 11,000 points"));
    let (s, v) = json(&app, "/api/v1/query_range?query=up&start=20&end=10&step=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("end timestamp must not be before start time"));
    let (s, v) = json(&app, "/api/v1/query?query=up&time=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("invalid parameter \"time\""));
    let (s, v) = json(&app, "/api/v1/series").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "no match[] parameter provided");
    let (s, _) = call(&app, "GET", "/api/v1/admin/tsdb/snapshot", "").await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, _) = call(
        &app,
        "POST",
        "/api/v1/admin/tsdb/delete_series",
        "match[]=up",
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    for path in [
        "/api/v1/admin/tsdb/clean_tombstones",
        "/api/v1/admin/tsdb/snapshot",
    ] {
        let (s, body) = call(&app, "POST", path, "").await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(body.contains("admin APIs disabled"), "{path}: {body}");
    }
    let (s, _) = call(&app, "POST", "/-/reload", "").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn series_labels_and_values() {
    let app = app("");
    let (_, v) = json(
        &app,
        "/api/v1/series?match[]=http_requests_total&start=0&end=300",
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][0]["instance"], "a:1");
    let (_, v) = json(&app, "/api/v1/labels").await;
    assert_eq!(
        v["data"],
        serde_json::json!(["__name__", "instance", "job"])
    );
    let (_, v) = json(&app, "/api/v1/label/instance/values?match[]=up").await;
    assert_eq!(v["data"], serde_json::json!(["a:1"]));
    let (_, v) = json(&app, "/api/v1/label/__name__/values?limit=1").await;
    assert_eq!(v["data"], serde_json::json!(["http_requests_total"]));
    assert_eq!(v["warnings"][0], "results truncated due to limit");
}

#[tokio::test]
async fn targets_and_status() {
    let app = app("");
    let (_, v) = json(&app, "/api/v1/targets").await;
    assert_eq!(v["data"]["activeTargets"][0]["health"], "down");
    assert_eq!(
        v["data"]["activeTargets"][0]["lastError"],
        "connection refused"
    );
    assert_eq!(
        v["data"]["droppedTargets"][0]["discoveredLabels"]["__address__"],
        "x:2"
    );
    assert_eq!(v["data"]["droppedTargetCounts"]["node"], 1);
    let (_, v) = json(&app, "/api/v1/targets?state=dropped").await;
    assert_eq!(v["data"]["activeTargets"].as_array().unwrap().len(), 0);
    let (_, v) = json(&app, "/api/v1/status/config").await;
    assert_eq!(v["data"]["yaml"], "global: {}\n");
    let (_, v) = json(&app, "/api/v1/status/flags").await;
    assert_eq!(v["data"]["web.listen-address"], "127.0.0.1:0");
    let (_, v) = json(&app, "/api/v1/format_query?query=sum(up)by(job)").await;
    assert_eq!(v["data"], "sum by (job) (up)");
    let (_, v) = json(&app, "/api/v1/rules").await;
    assert_eq!(v["data"]["groups"], serde_json::json!([]));
}

#[tokio::test]
async fn everything_works_under_a_route_prefix() {
    let app = app("/prometheus/");
    let (s, v) = json(&app, "/prometheus/api/v1/query?query=up&time=300").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["result"][0]["value"][1], "1");
    let (s, _) = call(&app, "GET", "/api/v1/query?query=up", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = call(&app, "GET", "/prometheus/-/healthy", "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("Healthy"));
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/prometheus/targets")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "./#/targets");
    let (s, body) = call(&app, "GET", "/prometheus/", "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("<title>Koban</title>"));
}
