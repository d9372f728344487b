//! Query limits as a client sees them over a real connection: the sample
//! limit (422), the timeout (503), `--query.max-concurrency` queueing, a
//! client that goes away cancelling its query, hostile subqueries that
//! leave the server healthy and small, and raw `"` in the request line.

use futures::future::BoxFuture;
use koban_model::Labels;
use koban_promql::memstore::MemStore;
use koban_promql::{Engine, EngineOpts};
use koban_storage::Queryable;
use koban_web::{
    ActiveTarget, AppState, Backend, DroppedTarget, TargetMetadata, TsdbStatus, WebOptions,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Fake {
    store: Arc<MemStore>,
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
        String::new()
    }
    fn reload(&self) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn is_ready(&self) -> bool {
        true
    }
    fn runtime_info(&self) -> Value {
        serde_json::json!({})
    }
}

/// Three minutes of `up` scraped every 15s, ending at `NOW`.
const NOW: i64 = 1_700_000_000_000;

/// A query that steps every inner step without output: runs until its
/// timeout or cancellation, in constant memory.
const ENDLESS: &str = "count_over_time((vector(1) unless on() vector(1))[1000y:1s])";

async fn server(opts: EngineOpts, concurrency: usize) -> (SocketAddr, Arc<AppState>) {
    let store = Arc::new(MemStore::new());
    let pts: Vec<(i64, f64)> = (0..=12)
        .map(|i| (NOW - 180_000 + i * 15_000, 1.0))
        .collect();
    store.add(
        Labels::from_pairs([("__name__", "up"), ("job", "koban"), ("instance", "a:1")]),
        &pts,
    );
    let state = Arc::new(AppState {
        backend: Arc::new(Fake { store }),
        engine: Arc::new(Engine::new(opts)),
        query_slots: Arc::new(tokio::sync::Semaphore::new(concurrency)),
        opts: WebOptions {
            listen_address: "127.0.0.1:0".into(),
            route_prefix: String::new(),
            external_url: String::new(),
            enable_lifecycle: false,
            enable_admin_api: false,
            flags: BTreeMap::new(),
        },
        shutdown: tokio_util::sync::CancellationToken::new(),
        start_time: chrono::Utc::now(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let st = state.clone();
    tokio::spawn(async move {
        koban_web::serve_on(listener, st, tokio_util::sync::CancellationToken::new()).await
    });
    (addr, state)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends `GET target` as raw bytes and reads the whole response:
/// (status, body as JSON, or as a string when it is not JSON).
async fn get_raw(addr: SocketAddr, target: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    let v = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    (status, v)
}

async fn query(addr: SocketAddr, q: &str, extra: &str) -> (u16, Value) {
    let t = NOW as f64 / 1000.0;
    get_raw(
        addr,
        &format!("/api/v1/query?query={}&time={t}{extra}", enc(q)),
    )
    .await
}

/// Waits (bounded) until `n` query permits are taken.
async fn wait_running(st: &AppState, n: usize, total: usize) {
    for _ in 0..2000 {
        if st.query_slots.available_permits() == total - n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("queries did not start");
}

#[tokio::test]
async fn too_many_samples_is_422_with_prometheus_error() {
    let (addr, _) = server(
        EngineOpts {
            max_samples: 100,
            ..Default::default()
        },
        4,
    )
    .await;
    for q in [
        "count_over_time(vector(1)[1h:1s])",
        "vector(1)[1h:1s]",
        "count_over_time(up[1h:1s])",
    ] {
        let (s, v) = query(addr, q, "").await;
        assert_eq!(s, 422, "{q}: {v}");
        assert_eq!(v["errorType"], "execution", "{q}");
        assert_eq!(
            v["error"],
            "query processing would load too many samples into memory in query execution",
            "{q}"
        );
    }
    // Sparse subqueries count the points they produce, not their steps.
    let (s, v) = query(addr, "count_over_time(up[100y:1s] offset 1h)", "").await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn timeout_is_503_with_prometheus_error() {
    let (addr, _) = server(
        EngineOpts {
            timeout: Duration::from_millis(300),
            ..Default::default()
        },
        4,
    )
    .await;
    let (s, v) = query(addr, ENDLESS, "").await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["errorType"], "timeout");
    assert_eq!(v["error"], "query timed out in expression evaluation");
    // A per-request timeout shorter than the engine's.
    let (addr, _) = server(EngineOpts::default(), 4).await;
    let (s, v) = query(addr, ENDLESS, "&timeout=200ms").await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["errorType"], "timeout");
}

/// With one query slot: a query waits while another runs (and times out
/// in line when its timeout is short); a client that goes away cancels its
/// running query, and the waiting query then gets the slot and answers.
#[tokio::test]
async fn queries_over_max_concurrency_wait_and_disconnects_cancel() {
    let (addr, st) = server(EngineOpts::default(), 1).await;
    // The running query, from a client that will go away.
    let mut a = TcpStream::connect(addr).await.unwrap();
    let t = NOW as f64 / 1000.0;
    a.write_all(
        format!(
            "GET /api/v1/query?query={}&time={t} HTTP/1.1\r\nHost: localhost\r\n\r\n",
            enc(ENDLESS)
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    wait_running(&st, 1, 1).await;
    // Waits in line past its timeout.
    let (s, v) = query(addr, "up", "&timeout=300ms").await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["errorType"], "timeout");
    assert_eq!(v["error"], "query timed out in query queue");
    // Waits in line, then answers once the running query is cancelled.
    let waiting = tokio::spawn(async move { query(addr, "up", "").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "the second query must wait for the slot"
    );
    drop(a);
    let (s, v) = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("the queued query must get the slot of the cancelled one")
        .unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["result"][0]["value"][1], "1");
    wait_running(&st, 0, 1).await;
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// The reported queries, 20 at once: each answers from the few minutes of
/// data it reads, `/-/healthy` keeps answering, and memory stays small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_subqueries_leave_the_server_healthy_and_small() {
    let (addr, _) = server(EngineOpts::default(), 20).await;
    let qs = [
        "sum_over_time(up[1y:1s])",
        "sum_over_time(up[100y:1s])",
        "count_over_time(up[2y:1s])",
        "max_over_time(rate(up[1m])[10y:1s])",
    ];
    let mut tasks = Vec::new();
    for i in 0..20 {
        let q = qs[i % qs.len()];
        tasks.push(tokio::spawn(async move { (q, query(addr, q, "").await) }));
    }
    let (s, v) = tokio::time::timeout(Duration::from_secs(30), get_raw(addr, "/-/healthy"))
        .await
        .expect("/-/healthy must answer while queries run");
    assert_eq!(s, 200, "{v}");
    let mut peak = rss_bytes();
    for t in tasks {
        let (q, (s, v)) = tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("hostile query must answer")
            .unwrap();
        peak = peak.max(rss_bytes());
        assert_eq!(s, 200, "{q}: {v}");
        let r = &v["data"]["result"][0]["value"][1];
        match q {
            // Every second from the first sample to the query time.
            "count_over_time(up[2y:1s])" => assert_eq!(r, "181", "{q}"),
            "sum_over_time(up[1y:1s])" | "sum_over_time(up[100y:1s])" => {
                assert_eq!(r, "181", "{q}")
            }
            _ => assert_eq!(r, "0", "{q}"),
        }
    }
    assert!(peak < 1 << 30, "peak RSS {peak} bytes");
}

/// `curl 'localhost:9090/api/v1/query?query=up{job="koban"}'` sends the
/// quotes unencoded; Prometheus answers it, and so does Koban.
#[tokio::test]
async fn raw_quotes_in_the_request_line_are_accepted() {
    let (addr, _) = server(EngineOpts::default(), 4).await;
    let t = NOW as f64 / 1000.0;
    let (s, v) = get_raw(
        addr,
        &format!("/api/v1/query?query=up{{job=\"koban\"}}&time={t}"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["result"][0]["metric"]["job"], "koban");
    // Other bytes Go accepts and hyper does not.
    let (s, v) = get_raw(
        addr,
        &format!("/api/v1/query?query=up{{job!=\"<a#b>\"}}&time={t}"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["result"][0]["metric"]["job"], "koban");
    // Two requests on one connection, both with raw quotes.
    let mut c = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /api/v1/query?query=up{{job=\"koban\"}}&time={t} HTTP/1.1\r\nHost: localhost\r\n\r\n"
    );
    let last = format!(
        "GET /api/v1/query?query=up{{job=\"koban\"}}&time={t} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    c.write_all(format!("{req}{last}").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
}
