//! The embedded UI in a real browser: headless Chromium driven over WebDriver
//! (chromedriver) against an in-process server under a route prefix, so every
//! relative URL of the UI is exercised too.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (installed by
//! scripts/test.sh). Paths can be overridden with KOBAN_CHROMIUM and
//! KOBAN_CHROMEDRIVER. In CI (env CI set) a missing browser fails the test;
//! elsewhere it is skipped with a message. Screenshots of every page, light
//! and dark, are written to `<target>/ui-screenshots/`.

use axum::body::Body;
use axum::http::Request;
use fantoccini::actions::InputSource;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use koban_model::Labels;
use koban_promql::memstore::MemStore;
use koban_promql::{Engine, EngineOpts};
use koban_storage::Queryable;
use koban_web::rules::{
    AlertState, AlertStatus, AlertingRuleStatus, RecordingRuleStatus, RuleGroupStatus, RuleHealth,
    RuleStatus,
};
use koban_web::{
    ActiveTarget, AppState, Backend, DroppedTarget, TargetMetadata, TsdbStatus, WebOptions,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const PREFIX: &str = "/prometheus";
const WAIT: Duration = Duration::from_secs(20);

struct Fake {
    store: Arc<MemStore>,
}

fn target(pool: &str, addr: &str, health: &str, error: &str) -> ActiveTarget {
    ActiveTarget {
        discovered_labels: BTreeMap::from([
            ("__address__".into(), addr.into()),
            ("__metrics_path__".into(), "/metrics".into()),
            ("__scheme__".into(), "http".into()),
            ("job".into(), pool.into()),
        ]),
        labels: BTreeMap::from([
            ("job".into(), pool.into()),
            ("instance".into(), addr.into()),
        ]),
        scrape_pool: pool.into(),
        scrape_url: format!("http://{addr}/metrics"),
        global_url: format!("http://{addr}/metrics"),
        last_error: error.into(),
        last_scrape: chrono::Utc::now().to_rfc3339(),
        last_scrape_duration: 0.0123,
        health: health.into(),
        scrape_interval: "15s".into(),
        scrape_timeout: "10s".into(),
    }
}

impl Backend for Fake {
    fn storage(&self) -> Arc<dyn Queryable> {
        self.store.clone()
    }
    fn targets(&self) -> (Vec<ActiveTarget>, Vec<DroppedTarget>) {
        let up = target("koban", "localhost:9090", "up", "");
        let down = target(
            "node",
            "h:9100",
            "down",
            "Get \"http://h:9100/metrics\": dial tcp: connection refused",
        );
        let dropped = DroppedTarget {
            discovered_labels: BTreeMap::from([
                ("__address__".into(), "x:2".into()),
                ("job".into(), "node".into()),
            ]),
            scrape_pool: "node".into(),
        };
        (vec![up, down], vec![dropped])
    }
    fn target_metadata(&self) -> Vec<TargetMetadata> {
        vec![]
    }
    fn config_yaml(&self) -> String {
        "global:\n  scrape_interval: 15s\nscrape_configs:\n- job_name: koban\n  static_configs:\n  - targets: [localhost:9090]\n".into()
    }
    fn tsdb_status(&self) -> TsdbStatus {
        TsdbStatus {
            num_series: 204,
            num_label_pairs: 210,
            chunk_count: 204,
            min_time: 1_700_000_000_000,
            max_time: 1_700_003_600_000,
            series_count_by_metric_name: vec![
                ("many_series".into(), 200),
                ("http_requests_total".into(), 2),
                ("up".into(), 2),
            ],
            label_value_count_by_label_name: vec![("id".into(), 200), ("instance".into(), 2)],
            memory_in_bytes_by_label_name: vec![("id".into(), 4000)],
            series_count_by_label_value_pair: vec![("job=api".into(), 204)],
        }
    }
    fn metrics_text(&self) -> String {
        "# EOF\n".into()
    }
    fn reload(&self) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async { Err("not supported".to_string()) })
    }
    fn is_ready(&self) -> bool {
        true
    }
    fn runtime_info(&self) -> Value {
        json!({
            "CWD": "/", "reloadConfigSuccess": true, "lastConfigTime": "2026-01-02T03:04:05Z",
            "corruptionCount": 0, "goroutineCount": 0, "GOMAXPROCS": 2, "GOMEMLIMIT": 0,
            "GOGC": "", "GODEBUG": "", "storageRetention": "15d", "storagePath": "data/",
            "threads": 17, "openFiles": 42, "maxOpenFiles": 1024, "rssBytes": 44_040_192,
        })
    }
    fn rule_groups(&self) -> Vec<RuleGroupStatus> {
        let m = |p: &[(&str, &str)]| -> BTreeMap<String, String> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let now = std::time::SystemTime::now();
        let alerts = vec![
            RuleStatus::Alerting(AlertingRuleStatus {
                state: AlertState::Firing,
                name: "TargetDown".into(),
                query: "up == 0".into(),
                duration: Duration::from_secs(60),
                labels: m(&[("severity", "page")]),
                annotations: m(&[("summary", "{{ $labels.instance }} is down")]),
                alerts: vec![AlertStatus {
                    labels: m(&[
                        ("alertname", "TargetDown"),
                        ("instance", "db:9100"),
                        ("severity", "page"),
                    ]),
                    annotations: m(&[("summary", "db:9100 is down")]),
                    state: AlertState::Firing,
                    active_at: Some(now - Duration::from_secs(300)),
                    keep_firing_since: None,
                    value: 0.0,
                }],
                health: RuleHealth::Ok,
                last_evaluation: Some(now),
                ..Default::default()
            }),
            RuleStatus::Alerting(AlertingRuleStatus {
                name: "Quiet".into(),
                query: "up == 5".into(),
                health: RuleHealth::Ok,
                ..Default::default()
            }),
        ];
        let recs = vec![RuleStatus::Recording(RecordingRuleStatus {
            name: "job:up:sum".into(),
            query: "sum by (job) (up)".into(),
            health: RuleHealth::Err,
            last_error: "query timed out in expression evaluation".into(),
            last_evaluation: Some(now),
            evaluation_time: Duration::from_millis(12),
            ..Default::default()
        })];
        let g = |name: &str, rules| RuleGroupStatus {
            name: name.into(),
            file: "/etc/koban/rules.yml".into(),
            rules,
            interval: Duration::from_secs(15),
            limit: 0,
            evaluation_time: Duration::from_millis(13),
            last_evaluation: Some(now),
        };
        vec![g("alerts", alerts), g("recording", recs)]
    }
    fn build_info(&self) -> koban_web::BuildInfo {
        koban_web::BuildInfo {
            version: "0.1.0".into(),
            revision: "0123456789abcdef".into(),
            branch: "main".into(),
            build_user: "dev@host".into(),
            build_date: "20260102-03:04:05".into(),
            go_version: "rustc 1.95.0".into(),
        }
    }
}

/// Samples every 15s over the two hours before `now_ms`, so the UI's default
/// "last hour ending now" windows have data.
fn state(now_ms: i64) -> Arc<AppState> {
    let store = Arc::new(MemStore::new());
    let start = now_ms - 2 * 3600 * 1000;
    let times: Vec<i64> = (0..=480).map(|i| start + i * 15_000).collect();
    for (inst, base) in [("a:1", 0.0), ("b:1", 1000.0)] {
        let samples: Vec<(i64, f64)> = times
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, base + i as f64 * 15.0 * (1.0 + base / 2000.0)))
            .collect();
        store.add(
            Labels::from_pairs([
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("instance", inst),
            ]),
            &samples,
        );
        let ups: Vec<(i64, f64)> = times.iter().map(|&t| (t, 1.0)).collect();
        store.add(
            Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", inst)]),
            &ups,
        );
    }
    for id in 0..200 {
        let samples: Vec<(i64, f64)> = times
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, id as f64 + ((i as f64 + id as f64) / 20.0).sin() * 5.0))
            .collect();
        let id = format!("{id:03}");
        store.add(
            Labels::from_pairs([("__name__", "many_series"), ("job", "api"), ("id", &id)]),
            &samples,
        );
    }
    Arc::new(AppState {
        backend: Arc::new(Fake { store }),
        engine: Arc::new(Engine::new(EngineOpts {
            lookback_delta_ms: 300_000,
            timeout: Duration::from_secs(10),
            max_samples: 50_000_000,
        })),
        query_slots: Arc::new(tokio::sync::Semaphore::new(20)),
        opts: WebOptions {
            listen_address: "127.0.0.1:0".into(),
            route_prefix: PREFIX.into(),
            external_url: String::new(),
            enable_lifecycle: false,
            enable_admin_api: false,
            flags: BTreeMap::from([
                ("web.listen-address".into(), "127.0.0.1:0".into()),
                ("web.route-prefix".into(), PREFIX.into()),
                ("storage.tsdb.path".into(), "data/".into()),
            ]),
        },
        shutdown: tokio_util::sync::CancellationToken::new(),
        start_time: chrono::Utc::now(),
    })
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

fn find_tool(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for c in candidates {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(c);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// chromedriver, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

async fn start_driver(bin: &Path) -> TestResult<Driver> {
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let driver = Driver { child, port };
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            return Err("chromedriver did not start listening".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(driver)
}

async fn browser(
    driver: &Driver,
    chromium: &Path,
    profile: &Path,
    dark: bool,
) -> TestResult<Client> {
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,900".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    if dark {
        args.push("--force-dark-mode".into());
        args.push("--blink-settings=preferredColorScheme=0".into());
    }
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await?;
    Ok(client)
}

/// A browser session on the test server with helpers.
struct Ui {
    c: Client,
    base: String,
    shots: PathBuf,
}

impl Ui {
    async fn goto(&self, path: &str) -> TestResult {
        self.c.goto(&format!("{}{path}", self.base)).await?;
        Ok(())
    }

    async fn js(&self, script: &str) -> TestResult<Value> {
        Ok(self.c.execute(script, vec![]).await?)
    }

    /// Polls `script` (a JS expression) until it is truthy; returns its value.
    async fn until(&self, what: &str, script: &str) -> TestResult<Value> {
        let deadline = Instant::now() + WAIT;
        let wrapped = format!("return ({script});");
        loop {
            let v = self.c.execute(&wrapped, vec![]).await?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(v);
            }
            if Instant::now() > deadline {
                self.shot("timeout").await;
                return Err(format!("timed out waiting for {what} ({script})").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn click(&self, css: &str) -> TestResult {
        self.c
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await?
            .click()
            .await?;
        Ok(())
    }

    async fn type_into(&self, css: &str, keys: &str) -> TestResult {
        let e = self
            .c
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await?;
        e.send_keys(keys).await?;
        Ok(())
    }

    /// Saves a screenshot; failures to take one only print a message.
    async fn shot(&self, name: &str) {
        match self.c.screenshot().await {
            Ok(png) => {
                let p = self.shots.join(format!("{name}.png"));
                if let Err(e) = std::fs::write(&p, png) {
                    eprintln!("cannot write {}: {e}", p.display());
                }
            }
            Err(e) => eprintln!("screenshot {name}: {e}"),
        }
    }

    /// Captures the next downloads' Blobs so a test can read exported files.
    async fn capture_downloads(&self) -> TestResult {
        self.js(
            "if (!window.__blobs) { window.__blobs = []; const o = URL.createObjectURL; \
             URL.createObjectURL = (b) => { window.__blobs.push(b); return o.call(URL, b); }; }",
        )
        .await?;
        Ok(())
    }

    /// Clicks `css` and returns the text of the file it made the browser download.
    async fn download(&self, css: &str) -> TestResult<String> {
        self.capture_downloads().await?;
        let before = self.js("return window.__blobs.length").await?;
        self.click(css).await?;
        self.until("a download", &format!("window.__blobs.length > {before}"))
            .await?;
        let text = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 window.__blobs[window.__blobs.length - 1].text().then(done);",
                vec![],
            )
            .await?;
        Ok(text.as_str().unwrap_or_default().to_string())
    }

    async fn editor_value(&self, panel: usize) -> TestResult<String> {
        let v = self
            .js(&format!(
                "return document.querySelectorAll('.panel .editor-input')[{panel}].value"
            ))
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Waits for the autocomplete list to offer `label` and returns the list's text.
    async fn offered(&self, label: &str) -> TestResult<String> {
        let script = format!(
            "(() => {{ const p = document.querySelector('.ac-popup:not([hidden])'); \
             return p && [...p.querySelectorAll('.ac-label')].some(e => e.textContent === {l}) && p.innerText; }})()",
            l = serde_json::to_string(label)?
        );
        let v = self
            .until(&format!("autocomplete offering {label}"), &script)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }
}

/// The API's answer, asked of the same router directly.
async fn api(app: &axum::Router, uri: &str) -> TestResult<Value> {
    let resp = app
        .clone()
        .oneshot(Request::get(format!("{PREFIX}{uri}")).body(Body::empty())?)
        .await?;
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&bytes)?)
}

/// The CSV the UI should export for an API query result (see export.js).
fn expected_csv(data: &Value) -> String {
    let result = data["result"].as_array().cloned().unwrap_or_default();
    let mut names: Vec<String> = result
        .iter()
        .flat_map(|s| {
            s["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
        })
        .collect();
    names.sort_by(|a, b| (a != "__name__", a).cmp(&(b != "__name__", b)));
    names.dedup();
    let mut out = names.join(",") + ",timestamp,value\n";
    for s in &result {
        let prefix: Vec<String> = names
            .iter()
            .map(|n| s["metric"][n].as_str().unwrap_or("").to_string())
            .collect();
        let samples = match s.get("values") {
            Some(v) => v.as_array().cloned().unwrap_or_default(),
            None => vec![s["value"].clone()],
        };
        for p in samples {
            out += &format!(
                "{},{},{}\n",
                prefix.join(","),
                p[0],
                p[1].as_str().unwrap_or("")
            );
        }
    }
    out
}

/// Table-driven checks of static/promql.js and static/export.js run in the
/// browser; resolves to the list of failures.
const UNIT_CHECKS: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const p = await import('./static/promql.js');
  const x = await import('./static/export.js');
  const bad = [];
  const ctx = (src, caret = src.length) => JSON.stringify(p.contextAt(src, caret));
  const want = (src, exp) => { const got = ctx(src); if (got !== JSON.stringify(exp)) bad.push(`${src}: ${got}`); };
  want('http_re', { kind: 'metric', prefix: 'http_re', from: 0 });
  want('rate(http_re', { kind: 'metric', prefix: 'http_re', from: 5 });
  want('up{', { kind: 'labelName', prefix: '', from: 3, metric: 'up' });
  want('up{job="a", ins', { kind: 'labelName', prefix: 'ins', from: 12, metric: 'up' });
  want('up{job=', { kind: 'labelValue', prefix: '', from: 7, metric: 'up', label: 'job', quote: '' });
  want('up{job!~"ap', { kind: 'labelValue', prefix: 'ap', from: 8, metric: 'up', label: 'job', quote: '"' });
  want('sum by (jo', { kind: 'labelName', prefix: 'jo', from: 8, metric: '' });
  want('rate(up[', { kind: 'duration', prefix: '', from: 8 });
  want('rate(up[5', { kind: 'duration', prefix: '5', from: 8 });
  want('up{job="a"}', null);
  want('"http_re', null);
  want('1 + 2', null);
  const kinds = p.classify(p.tokenize('sum by (job) (rate(x{a="b"}[5m] offset 1h)) # c')).filter((t) => t.c).map((t) => t.c).join(' ');
  if (kinds !== 'agg kw brace label brace brace fn brace metric brace label op str brace brace dur brace kw dur brace brace comment') bad.push(`classify: ${kinds}`);
  const e = p.errorPosition('1:5: parse error: unexpected end of input', 'sum(');
  if (!e || e.offset !== 4) bad.push(`errorPosition: ${JSON.stringify(e)}`);
  const e2 = p.errorPosition('invalid parameter "query": 2:3: parse error: x', 'a\nbcd');
  if (!e2 || e2.offset !== 4 || e2.line !== 2) bad.push(`errorPosition 2: ${JSON.stringify(e2)}`);
  const csv = x.toCSV({ resultType: 'vector', result: [{ metric: { __name__: 'm', b: 'x,"y"', a: '1' }, value: [1.5, '2'] }, { metric: { c: 'z' }, value: [1.5, 'NaN'] }] });
  if (csv !== '__name__,a,b,c,timestamp,value\nm,1,"x,""y""",,1.5,2\n,,,z,1.5,NaN\n') bad.push(`csv: ${csv}`);
  if (x.toCSV({ resultType: 'scalar', result: [3, '4'] }) !== 'timestamp,value\n3,4\n') bad.push('scalar csv');
  done(bad);
})().catch((err) => done([String(err)]));
"#;

fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("create screenshot dir");
    dir
}

/// The UI's files come from the binary with their content types, under the prefix.
#[tokio::test]
async fn assets_are_served_under_the_prefix() {
    let app = koban_web::router(state(0));
    let get = |path: String| {
        let app = app.clone();
        async move {
            app.oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap()
        }
    };
    for (path, ctype) in [
        ("/", "text/html; charset=utf-8"),
        ("/graph", "text/html; charset=utf-8"),
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/style.css", "text/css; charset=utf-8"),
        (
            "/vendor/uplot/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
        ),
        ("/vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
        ("/vendor/uplot/LICENSE", "text/plain; charset=utf-8"),
    ] {
        let resp = get(format!("{PREFIX}{path}")).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], ctype, "{path}");
        assert!(resp.headers().contains_key("etag"), "{path}");
        assert!(resp.headers().contains_key("cache-control"), "{path}");
    }
    for path in ["/static/nope.js", "/static/../index.html"] {
        let resp = get(format!("{PREFIX}{path}")).await;
        assert_eq!(resp.status(), 404, "{path}");
    }
    // Without the prefix there is no UI.
    assert_eq!(get("/static/app.js".into()).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_in_headless_chromium() {
    let chromium = find_tool(
        "KOBAN_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let chromedriver = find_tool("KOBAN_CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        if in_ci() {
            panic!("chromium and chromedriver are required in CI (apt-get install chromium chromium-driver)");
        }
        eprintln!(
            "skipping: chromium/chromedriver not found (apt-get install chromium chromium-driver)"
        );
        return;
    };
    // The newest sample is on a 15s boundary a little before now.
    let now_ms = chrono::Utc::now().timestamp_millis() / 15_000 * 15_000;
    let st = state(now_ms);
    let app = koban_web::router(st.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cancel = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(koban_web::serve_on(listener, st, cancel.clone()));
    let base = format!("http://{addr}{PREFIX}");
    let driver = start_driver(&chromedriver)
        .await
        .expect("start chromedriver");
    let profiles = tempfile::tempdir().expect("tempdir");
    let shots = screenshot_dir();

    let client = browser(&driver, &chromium, &profiles.path().join("light"), false)
        .await
        .expect("start chromium");
    let ui = Ui {
        c: client,
        base: base.clone(),
        shots: shots.clone(),
    };
    let res = light_flow(&ui, &app, now_ms).await;
    if res.is_err() {
        ui.shot("failure").await;
    }
    let _ = ui.c.close().await;
    res.expect("light-theme UI flow");

    let client = browser(&driver, &chromium, &profiles.path().join("dark"), true)
        .await
        .expect("start chromium (dark)");
    let ui = Ui {
        c: client,
        base,
        shots,
    };
    let res = dark_flow(&ui).await;
    if res.is_err() {
        ui.shot("failure-dark").await;
    }
    let _ = ui.c.close().await;
    res.expect("dark-theme UI flow");
    cancel.cancel();
    let _ = server.await;
}

async fn light_flow(ui: &Ui, app: &axum::Router, now_ms: i64) -> TestResult {
    // The home page under the prefix loads every asset through relative URLs.
    ui.goto("/").await?;
    ui.until(
        "the editor",
        "document.querySelector('.panel .editor-input')",
    )
    .await?;
    assert_eq!(
        ui.js("return typeof uPlot").await?,
        json!("function"),
        "uPlot loaded"
    );

    // The editor's PromQL analysis and the CSV writer, checked in the page itself.
    let failures = ui.c.execute_async(UNIT_CHECKS, vec![]).await?;
    assert_eq!(failures, json!([]), "in-page checks");

    // Autocomplete: metric name, label name, label value.
    let ed = ".panel .editor-input";
    ui.type_into(ed, "http_req").await?;
    ui.offered("http_requests_total").await?;
    ui.type_into(ed, "\u{E007}").await?; // Enter accepts
    assert_eq!(ui.editor_value(0).await?, "http_requests_total");
    ui.type_into(ed, "{ins").await?;
    ui.offered("instance").await?;
    ui.type_into(ed, "\u{E004}").await?; // Tab accepts
    assert_eq!(ui.editor_value(0).await?, "http_requests_total{instance");
    ui.type_into(ed, "=~").await?;
    let list = ui.offered("b:1").await?;
    assert!(list.contains("a:1"), "{list}");
    ui.type_into(ed, "\u{E007}").await?;
    assert_eq!(
        ui.editor_value(0).await?,
        "http_requests_total{instance=~\"a:1\""
    );
    // Caret before the closing quote, extend the regex, close the selector.
    ui.type_into(ed, "\u{E012}|b:1\u{E010}}").await?;
    ui.type_into(ed, "\u{E00C}").await?; // Escape closes any list
    let expr = "http_requests_total{instance=~\"a:1|b:1\"}";
    assert_eq!(ui.editor_value(0).await?, expr);

    // Table view at a fixed evaluation time, checked against the API.
    let t = now_ms - 60_000;
    let t_str = chrono::DateTime::from_timestamp_millis(t)
        .ok_or("time")?
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    ui.type_into(".panel .controls .time-input", &format!("{t_str}\u{E007}"))
        .await?;
    ui.click(".panel .execute").await?;
    ui.until(
        "two table rows",
        "document.querySelectorAll('.panel table.data tbody tr').length === 2",
    )
    .await?;
    let table = ui
        .js("return document.querySelector('.panel table.data').innerText")
        .await?;
    let table = table.as_str().unwrap_or_default();
    assert!(
        table.contains("instance=\"a:1\"") && table.contains("instance=\"b:1\""),
        "{table}"
    );
    ui.shot("query-table").await;
    let q: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    let want = api(app, &format!("/api/v1/query?query={q}&time={}", t / 1000)).await?;
    let csv = ui.download(".panel .export-csv").await?;
    assert_eq!(csv, expected_csv(&want["data"]), "table CSV vs API");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let exported = ui.download(".panel .export-json").await?;
    let exported: Value = serde_json::from_str(&exported)?;
    assert_eq!(exported, want, "table JSON vs API");

    // Graph view: canvas, legend with both series, CSV against the API.
    ui.click(".panel .tab:nth-child(2)").await?;
    ui.type_into(".panel .controls .time-input", &format!("{t_str}\u{E007}"))
        .await?;
    ui.until(
        "the graph",
        "document.querySelector('.panel .chart canvas') && document.querySelectorAll('.panel .legend-row').length === 2",
    )
    .await?;
    let legend = ui
        .js("return document.querySelector('.panel .legend').innerText")
        .await?;
    let legend = legend.as_str().unwrap_or_default();
    assert!(legend.contains("instance=\"b:1\""), "{legend}");
    // Hovering shows the values in the legend and a tooltip.
    let canvas = ui.c.find(Locator::Css(".panel .u-over")).await?;
    ui.c.perform_actions(fantoccini::actions::MouseActions::new("mouse".into()).then(
        fantoccini::actions::PointerAction::MoveToElement {
            element: canvas.clone(),
            x: -100.0,
            y: -40.0,
            duration: None,
        },
    ))
    .await?;
    ui.until("hover values", "document.querySelector('.panel .legend-value').textContent !== '' && !document.querySelector('.chart-tooltip').hidden").await?;
    ui.shot("query-graph").await;
    let (end, step) = (t / 1000, 3600 / 250);
    let want = api(
        app,
        &format!(
            "/api/v1/query_range?query={q}&start={}&end={end}&step={step}",
            end - 3600
        ),
    )
    .await?;
    let csv = ui.download(".panel .export-csv").await?;
    assert_eq!(csv, expected_csv(&want["data"]), "graph CSV vs API");
    assert!(csv.lines().count() > 400, "{} lines", csv.lines().count());
    // Clicking a legend entry isolates that series.
    ui.click(".panel .legend-row:nth-child(2)").await?;
    ui.until("isolated series", "document.querySelectorAll('.panel .legend-row.hidden').length === 1 && document.querySelector('.panel .legend-row.hidden').dataset.i === '0'").await?;
    // The URL holds the page state.
    let url = ui.c.current_url().await?;
    let pairs: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs.get("g0.expr").map(String::as_str), Some(expr));
    assert_eq!(pairs.get("g0.tab").map(String::as_str), Some("0"));
    assert_eq!(pairs.get("g0.range_input").map(String::as_str), Some("1h"));

    // A second panel: function help in the autocomplete, errors at their position.
    ui.click(".add-panel").await?;
    let ed2 = ".panel:nth-child(2) .editor-input";
    ui.type_into(ed2, "rat").await?;
    ui.offered("rate").await?;
    ui.until(
        "function help",
        "document.querySelector('.panel:nth-child(2) .ac-help').textContent.includes('rate(v range-vector)')",
    )
    .await?;
    ui.shot("query-autocomplete").await;
    ui.type_into(ed2, "\u{E00C}\u{E003}\u{E003}\u{E003}sum(")
        .await?;
    ui.click(".panel:nth-child(2) .execute").await?;
    let err = ui
        .until(
            "the parse error",
            "!document.querySelector('.panel:nth-child(2) .error').hidden && document.querySelector('.panel:nth-child(2) .error').innerText",
        )
        .await?;
    assert!(
        err.as_str()
            .unwrap_or_default()
            .contains("1:5: parse error"),
        "{err}"
    );
    ui.until(
        "error marker",
        "document.querySelector('.panel:nth-child(2) .err-pos')",
    )
    .await?;
    ui.shot("query-error").await;
    // Format asks the server for the canonical form.
    ui.type_into(ed2, "\u{E003}\u{E003}\u{E003}\u{E003}sum by(job)(up)")
        .await?;
    ui.click(".panel:nth-child(2) .format").await?;
    ui.until(
        "the formatted expression",
        "document.querySelectorAll('.panel .editor-input')[1].value === 'sum by (job) (up)'",
    )
    .await?;

    // Targets: the down target with its error.
    ui.goto("/#/targets").await?;
    let row = ui
        .until(
            "the down target",
            "document.querySelector('tr.target.down') && document.querySelector('tr.target.down').innerText",
        )
        .await?;
    let row = row.as_str().unwrap_or_default();
    assert!(
        row.contains("connection refused") && row.contains("DOWN"),
        "{row}"
    );
    ui.shot("targets").await;
    // The health filter hides healthy targets.
    ui.click(".health-filter.up input").await?;
    ui.until(
        "only unhealthy targets",
        "document.querySelectorAll('tr.target').length === 1",
    )
    .await?;

    for (hash, name, probe) in [
        ("service-discovery", "service-discovery", "document.querySelector('.badge.dropped')"),
        ("status", "status", "document.querySelector('pre.config') && document.body.innerText.includes('many_series')"),
    ] {
        ui.goto(&format!("/#/{hash}")).await?;
        ui.until(name, probe).await?;
        ui.shot(name).await;
    }
    // Alerts: the firing alert with its rendered annotation; the state
    // filters hide it and keep the inactive rule.
    ui.goto("/#/alerts").await?;
    let text = ui
        .until(
            "the firing alert",
            "document.querySelector('tr.alert-instance.firing') && document.querySelector('tr.alert-instance.firing').innerText",
        )
        .await?;
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("db:9100 is down") && text.contains("FIRING") && text.contains("ago"),
        "{text}"
    );
    let body = ui
        .js("return document.getElementById('main').innerText")
        .await?;
    let body = body.as_str().unwrap_or_default();
    assert!(
        body.contains("Firing (1)") && body.contains("Inactive (1)") && body.contains("Quiet"),
        "{body}"
    );
    ui.shot("alerts").await;
    ui.click(".state-filter.firing input").await?;
    ui.until(
        "only the inactive rule",
        "document.querySelectorAll('details.alert-rule').length === 1 && document.querySelector('details.alert-rule.inactive')",
    )
    .await?;
    // Rules: group health, last evaluation and duration, the rule's error.
    ui.goto("/#/rules").await?;
    let text = ui
        .until(
            "the failing recording rule",
            "document.querySelector('section.rule-group.err') && document.querySelector('section.rule-group.err').innerText",
        )
        .await?;
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("query timed out")
            && text.contains("record: job:up:sum")
            && text.contains("interval 15s")
            && text.contains("took 13.0ms"),
        "{text}"
    );
    ui.until(
        "the healthy group",
        "document.querySelector('section.rule-group.ok')",
    )
    .await?;
    ui.shot("rules").await;
    ui.goto("/#/status").await?;
    ui.until("status", "document.getElementById('st-Runtime')")
        .await?;

    // The status page shows Koban's own runtime figures, not Go's.
    let runtime = ui
        .js("return document.getElementById('st-Runtime').innerText")
        .await?;
    let runtime = runtime.as_str().unwrap_or_default();
    for want in [
        "Threads\t17",
        "Open files\t42 of 1024",
        "Resident memory\t42.0 MiB",
        "Uptime\t",
        "Configuration reload\tSuccessful",
    ] {
        assert!(runtime.contains(want), "{want:?} in {runtime:?}");
    }
    for go in ["goroutine", "GOGC", "GODEBUG", "GOMEMLIMIT"] {
        assert!(!runtime.contains(go), "{go} in {runtime:?}");
    }
    let build = ui
        .js("return document.getElementById('st-Build').innerText")
        .await?;
    let build = build.as_str().unwrap_or_default();
    for want in [
        "Revision\t0123456789abcdef",
        "Build user\tdev@host",
        "Build date\t20260102-03:04:05",
        "Rust version\trustc 1.95.0",
    ] {
        assert!(build.contains(want), "{want:?} in {build:?}");
    }

    // A Prometheus-style link opens the graph and runs the expression.
    ui.goto("/graph?g0.expr=up&g0.tab=0&g0.range_input=1h")
        .await?;
    ui.until(
        "the linked graph",
        "document.querySelector('.panel .chart canvas') && document.querySelectorAll('.panel .legend-row').length === 2",
    )
    .await?;
    assert_eq!(ui.editor_value(0).await?, "up");
    ui.goto("/graph?g0.expr=up&g0.tab=1").await?;
    ui.until(
        "the linked table",
        "document.querySelectorAll('.panel table.data tbody tr').length === 2",
    )
    .await?;

    // 200 series of 1,000 points.
    ui.goto("/graph?g0.expr=many_series&g0.tab=0&g0.range_input=1h&g0.step_input=3.6")
        .await?;
    ui.until(
        "200 series",
        "document.querySelectorAll('.panel .legend-row').length === 200",
    )
    .await?;
    ui.shot("query-graph-200-series").await;
    // How long hovering takes per frame (printed, not asserted: no timing assertions).
    let frame = ui
        .c
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             const over = document.querySelector('.panel .u-over'); const r = over.getBoundingClientRect(); \
             const frame = () => new Promise((res) => requestAnimationFrame(() => res())); \
             (async () => { await frame(); const t0 = performance.now(); let sync = 0; \
               for (let i = 0; i < 60; i++) { \
                 const a = performance.now(); over.dispatchEvent(new MouseEvent('mousemove', { clientX: r.left + 5 + i * (r.width - 10) / 60, clientY: r.top + r.height * (i % 7) / 7, bubbles: true })); sync += performance.now() - a; \
                 await frame(); } \
               done(((performance.now() - t0) / 60).toFixed(1) + ' ms, of which in handlers ' + (sync / 60).toFixed(1)); })();",
            vec![],
        )
        .await?;
    eprintln!("200 series x 1001 points: {frame} ms per hover frame (60 Hz = 16.7 ms)");
    Ok(())
}

async fn dark_flow(ui: &Ui) -> TestResult {
    ui.goto("/graph?g0.expr=rate(http_requests_total%5B5m%5D)&g0.tab=0&g0.stacked=1&g0.range_input=1h&g1.expr=sum%20by%20(job)%20(up)&g1.tab=1")
        .await?;
    let dark = ui
        .js("return matchMedia('(prefers-color-scheme: dark)').matches")
        .await?;
    if dark != json!(true) {
        eprintln!("note: the browser did not switch to the dark scheme; dark screenshots show the light theme");
    }
    ui.until(
        "the graph",
        "document.querySelector('.panel .chart canvas') && document.querySelectorAll('.panel table.data tbody tr').length === 1",
    )
    .await?;
    ui.shot("dark-query").await;
    for (hash, probe) in [
        ("targets", "document.querySelector('tr.target.down')"),
        (
            "service-discovery",
            "document.querySelector('.badge.dropped')",
        ),
        (
            "alerts",
            "document.querySelector('tr.alert-instance.firing')",
        ),
        ("rules", "document.querySelector('section.rule-group.err')"),
        ("status", "document.querySelector('pre.config')"),
    ] {
        ui.goto(&format!("/#/{hash}")).await?;
        ui.until(hash, probe).await?;
        ui.shot(&format!("dark-{hash}")).await;
    }
    Ok(())
}
