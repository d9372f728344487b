//! `/api/v1/rules` and `/api/v1/alerts` as a client sees them, from a fake
//! backend: Prometheus's JSON, every filter, pagination and its errors.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use koban_promql::memstore::MemStore;
use koban_promql::{Engine, EngineOpts};
use koban_storage::Queryable;
use koban_web::rules::*;
use koban_web::{
    ActiveTarget, AppState, Backend, DroppedTarget, TargetMetadata, TsdbStatus, WebOptions,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tower::ServiceExt;

struct Fake {
    store: Arc<MemStore>,
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn down_alert() -> AlertStatus {
    AlertStatus {
        labels: map(&[
            ("alertname", "Down"),
            ("instance", "a:1"),
            ("severity", "page"),
        ]),
        annotations: map(&[("summary", "a:1 is down")]),
        state: AlertState::Firing,
        active_at: Some(UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000)),
        keep_firing_since: None,
        value: 0.0,
    }
}

fn groups() -> Vec<RuleGroupStatus> {
    let rec = |name: &str, labels: &[(&str, &str)]| {
        RuleStatus::Recording(RecordingRuleStatus {
            name: name.into(),
            query: "sum(up)".into(),
            labels: map(labels),
            health: RuleHealth::Ok,
            evaluation_time: Duration::from_millis(1),
            last_evaluation: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            ..Default::default()
        })
    };
    let group = |file: &str, name: &str, rules: Vec<RuleStatus>| RuleGroupStatus {
        name: name.into(),
        file: file.into(),
        rules,
        interval: Duration::from_secs(15),
        limit: 0,
        evaluation_time: Duration::from_millis(3),
        last_evaluation: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
    };
    vec![
        group(
            "a.yml",
            "alerts",
            vec![RuleStatus::Alerting(AlertingRuleStatus {
                state: AlertState::Firing,
                name: "Down".into(),
                query: "up == 0".into(),
                duration: Duration::from_secs(300),
                keep_firing_for: Duration::from_secs(60),
                labels: map(&[("severity", "page")]),
                annotations: map(&[("summary", "{{ $labels.instance }} is down")]),
                alerts: vec![down_alert()],
                health: RuleHealth::Ok,
                ..Default::default()
            })],
        ),
        group("a.yml", "rec", vec![rec("job:up:sum", &[("team", "x")])]),
        group(
            "b.yml",
            "more",
            vec![
                rec("one", &[]),
                RuleStatus::Recording(RecordingRuleStatus {
                    name: "broken".into(),
                    query: "x".into(),
                    health: RuleHealth::Err,
                    last_error:
                        "vector contains metrics with the same labelset after applying rule labels"
                            .into(),
                    ..Default::default()
                }),
            ],
        ),
        group("b.yml", "empty", vec![]),
    ]
}

impl Backend for Fake {
    fn storage(&self) -> Arc<dyn Queryable> {
        self.store.clone()
    }
    fn targets(&self) -> (Vec<ActiveTarget>, Vec<DroppedTarget>) {
        (vec![], vec![])
    }
    fn target_metadata(&self) -> Vec<TargetMetadata> {
        vec![]
    }
    fn config_yaml(&self) -> String {
        String::new()
    }
    fn tsdb_status(&self) -> TsdbStatus {
        TsdbStatus::default()
    }
    fn metrics_text(&self) -> String {
        "# EOF\n".into()
    }
    fn reload(&self) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn is_ready(&self) -> bool {
        true
    }
    fn runtime_info(&self) -> Value {
        json!({})
    }
    fn rule_groups(&self) -> Vec<RuleGroupStatus> {
        groups()
    }
    fn alerts(&self) -> Vec<AlertStatus> {
        vec![down_alert()]
    }
}

fn app(prefix: &str) -> axum::Router {
    let state = Arc::new(AppState {
        backend: Arc::new(Fake {
            store: Arc::new(MemStore::new()),
        }),
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
            flags: BTreeMap::new(),
        },
        shutdown: tokio_util::sync::CancellationToken::new(),
        start_time: chrono::Utc::now(),
    });
    koban_web::router(state)
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{uri}: {e}: {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

/// (group name, rule names) of a successful `/api/v1/rules` answer.
async fn names(app: &axum::Router, uri: &str) -> Vec<(String, Vec<String>)> {
    let (s, v) = get(app, uri).await;
    assert_eq!(s, StatusCode::OK, "{uri}: {v}");
    v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let rules = g["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect();
            (g["name"].as_str().unwrap().to_string(), rules)
        })
        .collect()
}

fn n(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    pairs
        .iter()
        .map(|(g, r)| (g.to_string(), r.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[tokio::test]
async fn rules_json_is_prometheus_shape() {
    let app = app("");
    let (s, v) = get(&app, "/api/v1/rules?rule_group[]=alerts").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"status": "success", "data": {"groups": [{
            "name": "alerts", "file": "a.yml", "interval": 15.0, "limit": 0,
            "evaluationTime": 0.003, "lastEvaluation": "2023-11-14T22:13:20Z",
            "rules": [{
                "state": "firing", "name": "Down", "query": "up == 0",
                "duration": 300.0, "keepFiringFor": 60.0,
                "labels": {"severity": "page"},
                "annotations": {"summary": "{{ $labels.instance }} is down"},
                "alerts": [{
                    "labels": {"alertname": "Down", "instance": "a:1", "severity": "page"},
                    "annotations": {"summary": "a:1 is down"},
                    "state": "firing", "activeAt": "2023-11-14T22:13:20.5Z", "value": "0e+00"
                }],
                "health": "ok", "evaluationTime": 0.0,
                "lastEvaluation": "0001-01-01T00:00:00Z", "type": "alerting"
            }]
        }]}})
    );
    let (_, v) = get(&app, "/api/v1/rules?rule_group[]=more").await;
    let broken = &v["data"]["groups"][0]["rules"][1];
    assert_eq!(broken["health"], "err");
    assert!(broken["lastError"]
        .as_str()
        .unwrap()
        .contains("same labelset"));
    assert!(v["data"]["groups"][0]["rules"][0]
        .get("lastError")
        .is_none());
}

#[tokio::test]
async fn alerts_json_is_prometheus_shape() {
    let (s, v) = get(&app(""), "/api/v1/alerts").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["data"]["alerts"],
        json!([{
            "labels": {"alertname": "Down", "instance": "a:1", "severity": "page"},
            "annotations": {"summary": "a:1 is down"},
            "state": "firing", "activeAt": "2023-11-14T22:13:20.5Z", "value": "0e+00"
        }])
    );
}

#[tokio::test]
async fn every_filter() {
    let app = app("");
    assert_eq!(
        names(&app, "/api/v1/rules").await,
        n(&[
            ("alerts", &["Down"]),
            ("rec", &["job:up:sum"]),
            ("more", &["one", "broken"]),
            ("empty", &[]),
        ])
    );
    assert_eq!(
        names(&app, "/api/v1/rules?type=alert").await,
        n(&[("alerts", &["Down"])])
    );
    assert_eq!(
        names(&app, "/api/v1/rules?type=RECORD").await,
        n(&[("rec", &["job:up:sum"]), ("more", &["one", "broken"])])
    );
    assert_eq!(
        names(&app, "/api/v1/rules?rule_name[]=one&rule_name[]=Down").await,
        n(&[("alerts", &["Down"]), ("more", &["one"])])
    );
    assert_eq!(
        names(&app, "/api/v1/rules?file[]=b.yml").await,
        n(&[("more", &["one", "broken"]), ("empty", &[])])
    );
    assert_eq!(
        names(
            &app,
            "/api/v1/rules?match[]=%7Bteam%3D%22x%22%7D&match[]=%7Bseverity%3D~%22p.*%22%7D"
        )
        .await,
        n(&[("alerts", &["Down"]), ("rec", &["job:up:sum"])])
    );
    let (_, v) = get(&app, "/api/v1/rules?exclude_alerts=true&type=alert").await;
    assert_eq!(v["data"]["groups"][0]["rules"][0]["alerts"], Value::Null);
    let (_, v) = get(&app, "/api/v1/rules?exclude_alerts=false&type=alert").await;
    assert_eq!(
        v["data"]["groups"][0]["rules"][0]["alerts"][0]["state"],
        "firing"
    );
}

#[tokio::test]
async fn pagination_walks_every_group_once() {
    let app = app("");
    let mut seen = Vec::new();
    let mut uri = "/api/v1/rules?group_limit=1".to_string();
    for _ in 0..10 {
        let (s, v) = get(&app, &uri).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let groups = v["data"]["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1);
        seen.push(groups[0]["name"].as_str().unwrap().to_string());
        match v["data"]["groupNextToken"].as_str() {
            Some(t) => uri = format!("/api/v1/rules?group_limit=1&group_next_token={t}"),
            None => break,
        }
    }
    assert_eq!(seen, ["alerts", "rec", "more", "empty"]);
    let (_, v) = get(&app, "/api/v1/rules?group_limit=10").await;
    assert!(v["data"].get("groupNextToken").is_none());
}

#[tokio::test]
async fn bad_parameters_are_refused_as_prometheus_does() {
    let app = app("");
    for (q, msg) in [
        (
            "type=foo",
            r#"invalid parameter "type": not supported value "foo""#,
        ),
        (
            "exclude_alerts=maybe",
            r#"invalid parameter "exclude_alerts": error converting exclude_alerts: strconv.ParseBool: parsing "maybe": invalid syntax"#,
        ),
        (
            "group_limit=0",
            r#"invalid parameter "group_limit": group_limit needs to be greater than 0"#,
        ),
        (
            "group_limit=x",
            r#"invalid parameter "group_limit": group_limit needs to be a valid number: strconv.ParseInt: parsing "x": invalid syntax"#,
        ),
        (
            "group_next_token=abc",
            r#"invalid parameter "group_next_token": group_limit needs to be present in order to paginate over the groups"#,
        ),
        (
            "group_limit=1&group_next_token=abc",
            r#"invalid parameter "group_next_token": invalid group_next_token 'abc'. were rule groups changed?"#,
        ),
    ] {
        let (s, v) = get(&app, &format!("/api/v1/rules?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["errorType"], "bad_data", "{q}");
        assert_eq!(v["error"], msg, "{q}");
    }
    let (s, v) = get(&app, "/api/v1/rules?match[]=%7B").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with(r#"invalid parameter "match[]": "#),
        "{v}"
    );
}

#[tokio::test]
async fn rules_and_alerts_under_a_route_prefix() {
    let app = app("/koban");
    assert_eq!(
        names(&app, "/koban/api/v1/rules?type=alert").await,
        n(&[("alerts", &["Down"])])
    );
    let (s, v) = get(&app, "/koban/api/v1/alerts").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["alerts"][0]["labels"]["alertname"], "Down");
}
