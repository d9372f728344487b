//! Scrape loops against real HTTP servers on loopback, good and hostile:
//! each bad target ends with `up` 0 and its reason, and nothing else breaks.

use axum::body::Body;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use koban_model::{is_stale_nan, Labels};
use koban_scrape::scrape_loop::{
    BufferPool, Health, LoopContext, LoopStatus, MetadataInterner, ScrapeLoop,
};
use koban_scrape::target::{populate, Populated};
use koban_scrape::{PoolConfig, ScrapeManager, ScrapeMetrics};
use koban_storage::{
    Appendable, Appender, CommitReport, Result as SResult, SeriesRef, StorageError,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A minimal in-memory storage recording committed samples.
#[derive(Default, Clone)]
struct MemStore {
    inner: Arc<Mutex<MemInner>>,
}

#[derive(Default)]
struct MemInner {
    refs: HashMap<Labels, SeriesRef>,
    by_ref: Vec<Labels>,
    samples: Vec<(Labels, i64, f64)>,
}

struct MemAppender {
    store: MemStore,
    staged: Vec<(SeriesRef, i64, f64)>,
}

impl Appendable for MemStore {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(MemAppender {
            store: self.clone(),
            staged: Vec::new(),
        })
    }
}

impl Appender for MemAppender {
    fn append(&mut self, r: SeriesRef, labels: &Labels, t: i64, v: f64) -> SResult<SeriesRef> {
        let mut s = self.store.inner.lock();
        let r = if r != 0 && (r as usize) <= s.by_ref.len() {
            r
        } else {
            if labels.is_empty() {
                return Err(StorageError::InvalidLabels);
            }
            match s.refs.get(labels) {
                Some(r) => *r,
                None => {
                    s.by_ref.push(labels.clone());
                    let r = s.by_ref.len() as SeriesRef;
                    s.refs.insert(labels.clone(), r);
                    r
                }
            }
        };
        self.staged.push((r, t, v));
        Ok(r)
    }

    fn commit(self: Box<Self>) -> SResult<CommitReport> {
        let mut s = self.store.inner.lock();
        let mut rep = CommitReport::default();
        for (r, t, v) in self.staged {
            let l = s.by_ref[r as usize - 1].clone();
            s.samples.push((l, t, v));
            rep.floats += 1;
        }
        Ok(rep)
    }

    fn rollback(self: Box<Self>) -> SResult<()> {
        Ok(())
    }
}

impl MemStore {
    fn values(&self, name: &str) -> Vec<(Labels, f64)> {
        let s = self.inner.lock();
        s.samples
            .iter()
            .filter(|(l, _, _)| l.metric_name() == name)
            .map(|(l, _, v)| (l.clone(), *v))
            .collect()
    }
    fn last(&self, name: &str) -> Option<f64> {
        self.values(name).last().map(|x| x.1)
    }
}

const PAGE: &str = "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\nhttp_requests_total{method=\"get\",code=\"200\"} 1027\nhttp_requests_total{method=\"post\",code=\"200\"} 3\n# TYPE temp gauge\ntemp{job=\"inner\",instance=\"x\"} 21.5\n";

async fn serve(router: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    addr.to_string()
}

/// An endless page of valid lines, sent slowly.
fn never_ending() -> Response {
    let s = futures::stream::unfold(0u64, |i| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((
            Ok::<_, std::io::Error>(format!("m{{i=\"{i}\"}} 1\n")),
            i + 1,
        ))
    });
    Body::from_stream(s).into_response()
}

struct Fixture {
    addr: String,
    bad_addr: String,
    flip: Arc<AtomicUsize>,
}

async fn fixture() -> Fixture {
    let flip = Arc::new(AtomicUsize::new(0));
    let f2 = flip.clone();
    let router = Router::new()
        .route("/metrics", get(|| async { PAGE }))
        .route(
            "/garbage",
            get(|| async { "\u{1}\u{2}this is { not a page\n" }),
        )
        .route("/never", get(|| async { never_ending() }))
        .route(
            "/huge",
            get(|| async { "big_metric 1\n".repeat(4_000_000) }),
        )
        .route(
            "/500",
            get(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "oops") }),
        )
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route("/dup", get(|| async { "a 1\na 2\n" }))
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "late 1\n"
            }),
        )
        .route(
            "/flip",
            get(move || {
                let n = f2.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        "a 1\nb 2\n"
                    } else {
                        "a 1\n"
                    }
                }
            }),
        );
    let addr = serve(router).await;
    // A server that promises a long body, sends a bit and closes the connection.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bad_addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\nfoo 1\nbar").await;
                let _ = s.shutdown().await;
            });
        }
    });
    Fixture {
        addr,
        bad_addr,
        flip,
    }
}

fn make_loop(
    store: &Arc<MemStore>,
    addr: &str,
    path: &str,
    tweak: impl FnOnce(&mut PoolConfig),
) -> (ScrapeLoop, Arc<Mutex<LoopStatus>>) {
    let mut cfg = PoolConfig::with_defaults("test");
    cfg.metrics_path = path.to_string();
    cfg.interval = Duration::from_secs(2);
    cfg.timeout = Duration::from_secs(1);
    tweak(&mut cfg);
    let Populated::Active(t) = populate(&Labels::from_pairs([("__address__", addr)]), &cfg) else {
        panic!("target")
    };
    let client = koban_scrape::client::build("test", &cfg.http, cfg.timeout).unwrap();
    let ctx = Arc::new(LoopContext {
        storage: Arc::new(MemStore::clone(store)),
        buffers: BufferPool::default(),
        interner: MetadataInterner::default(),
        metrics: ScrapeMetrics::default(),
        timestamp_tolerance: koban_scrape::scrape_loop::DEFAULT_TIMESTAMP_TOLERANCE,
        scrape_slots: koban_scrape::DEFAULT_SCRAPE_SLOTS,
    });
    let status = Arc::new(Mutex::new(LoopStatus::default()));
    (
        ScrapeLoop::new(Arc::new(t), Arc::new(cfg), client, ctx, status.clone()),
        status,
    )
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[tokio::test]
async fn good_page_is_stored_with_target_labels_and_metadata() {
    install_crypto();
    let f = fixture().await;
    let store = Arc::new(MemStore::default());
    let (mut lp, status) = make_loop(&store, &f.addr, "/metrics", |_| {});
    lp.scrape_once().await;
    let st = status.lock().clone();
    assert_eq!(st.health, Health::Up, "{}", st.last_error);
    let v = store.values("http_requests_total");
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].0.get("job"), "test");
    assert_eq!(v[0].0.get("instance"), f.addr);
    assert_eq!(store.last("up"), Some(1.0));
    assert_eq!(store.last("scrape_samples_scraped"), Some(3.0));
    assert_eq!(store.last("scrape_series_added"), Some(3.0));
    // A conflicting job/instance on the page is kept as exported_*.
    let t = store.values("temp");
    assert_eq!(t[0].0.get("exported_job"), "inner");
    assert_eq!(t[0].0.get("job"), "test");
    let meta: HashMap<_, _> = st
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(meta["http_requests_total"].metric_type, "counter");
    assert_eq!(meta["http_requests_total"].help, "Requests.");
    // Second scrape: series come from the cache, none added.
    lp.scrape_once().await;
    assert_eq!(store.last("scrape_series_added"), Some(0.0));
    assert_eq!(store.values("http_requests_total").len(), 4);
}

#[tokio::test]
async fn honor_labels_keeps_page_labels() {
    install_crypto();
    let f = fixture().await;
    let store = Arc::new(MemStore::default());
    let (mut lp, _) = make_loop(&store, &f.addr, "/metrics", |c| c.honor_labels = true);
    lp.scrape_once().await;
    let t = store.values("temp");
    assert_eq!(t[0].0.get("job"), "inner");
    assert_eq!(t[0].0.get("instance"), "x");
}

#[tokio::test]
async fn vanished_series_get_a_stale_marker() {
    install_crypto();
    let f = fixture().await;
    let store = Arc::new(MemStore::default());
    let (mut lp, _) = make_loop(&store, &f.addr, "/flip", |_| {});
    lp.scrape_once().await;
    lp.scrape_once().await;
    let b = store.values("b");
    assert_eq!(b.len(), 2);
    assert!(is_stale_nan(b[1].1));
    assert_eq!(store.values("a").len(), 2);
    assert!(f.flip.load(Ordering::SeqCst) >= 2);
}

async fn expect_down(path: &str, want: &str, tweak: impl FnOnce(&mut PoolConfig)) {
    install_crypto();
    let f = fixture().await;
    let store = Arc::new(MemStore::default());
    let addr = if path == "closed" {
        f.bad_addr.clone()
    } else {
        f.addr.clone()
    };
    let (mut lp, status) = make_loop(
        &store,
        &addr,
        if path == "closed" { "/metrics" } else { path },
        tweak,
    );
    lp.scrape_once().await;
    let st = status.lock().clone();
    assert_eq!(st.health, Health::Down, "{path}");
    assert!(
        st.last_error.contains(want),
        "{path}: error {:?} lacks {want:?}",
        st.last_error
    );
    assert_eq!(store.last("up"), Some(0.0), "{path}");
}

#[tokio::test]
async fn garbage_fails_with_line() {
    expect_down("/garbage", "line 1", |_| {}).await;
}

#[tokio::test]
async fn never_ending_page_times_out() {
    expect_down("/never", "context deadline exceeded", |_| {}).await;
}

#[tokio::test]
async fn huge_page_over_body_size_limit() {
    expect_down("/huge", "body size limit exceeded", |c| {
        c.body_size_limit = 1 << 20
    })
    .await;
}

#[tokio::test]
async fn http_500() {
    expect_down("/500", "500 Internal Server Error", |_| {}).await;
}

#[tokio::test]
async fn redirect_loop() {
    expect_down("/loop", "redirect", |_| {}).await;
}

#[tokio::test]
async fn duplicate_series() {
    expect_down("/dup", "duplicate sample", |_| {}).await;
}

#[tokio::test]
async fn hanging_target() {
    expect_down("/hang", "context deadline exceeded", |_| {}).await;
}

#[tokio::test]
async fn connection_closed_mid_body() {
    expect_down("closed", "Get ", |_| {}).await;
}

#[tokio::test]
async fn sample_limit_fails_whole_scrape() {
    expect_down("/metrics", "sample limit exceeded", |c| c.sample_limit = 2).await;
}

#[tokio::test]
async fn label_limit_fails_whole_scrape() {
    expect_down("/metrics", "label limit exceeded", |c| c.label_limit = 3).await;
}

#[tokio::test]
async fn bad_targets_do_not_stop_good_ones() {
    install_crypto();
    let f = fixture().await;
    let store = Arc::new(MemStore::default());
    let mgr = ScrapeManager::new(
        Arc::new(MemStore::clone(&store)),
        ScrapeMetrics::default(),
        tokio_util::sync::CancellationToken::new(),
    );
    let mut good = PoolConfig::with_defaults("good");
    good.interval = Duration::from_millis(200);
    good.timeout = Duration::from_millis(200);
    let mut bad = good.clone();
    bad.job_name = "bad".into();
    bad.metrics_path = "/hang".into();
    mgr.apply_config(vec![good, bad]).unwrap();
    mgr.sync(
        "good",
        vec![Labels::from_pairs([("__address__", f.addr.as_str())])],
    );
    mgr.sync(
        "bad",
        vec![Labels::from_pairs([("__address__", f.addr.as_str())])],
    );
    // Wait (bounded) until the good target has been scraped a few times.
    for _ in 0..200 {
        if store.values("http_requests_total").len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.values("http_requests_total").len() >= 6);
    let snaps = mgr.active_targets();
    assert_eq!(snaps.len(), 2);
    for s in &snaps {
        if s.pool == "good" {
            assert_eq!(s.status.health, Health::Up);
        }
    }
    mgr.stop(false);
}

/// An HTTPS server presenting a certificate for 127.0.0.1 signed by its own
/// CA; it answers PAGE to requests with `Authorization: <auth>` and 401 to
/// others. Returns the address and the CA's PEM.
async fn https_target(auth: &'static str) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use tokio::io::AsyncReadExt;
    let ca_key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = p.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(s).await else {
                    return;
                };
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&req).to_ascii_lowercase();
                let want = format!("authorization: {}\r\n", auth.to_ascii_lowercase());
                let resp = if head.contains(&want) {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                        PAGE.len()
                    )
                } else {
                    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr.to_string(), ca.pem())
}

#[tokio::test]
async fn https_target_with_custom_ca_and_basic_auth() {
    install_crypto();
    // "u:p" in base64.
    let (addr, ca_pem) = https_target("Basic dTpw").await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let pw_file = dir.path().join("pw");
    std::fs::write(&ca_file, ca_pem).unwrap();
    std::fs::write(&pw_file, "p\n").unwrap();
    let store = Arc::new(MemStore::default());
    let (mut lp, status) = make_loop(&store, &addr, "/metrics", |c| {
        c.scheme = "https".into();
        c.http.tls_config.ca_file = ca_file.display().to_string();
        c.http.basic_auth = Some(koban_httpclient::BasicAuth {
            username: "u".into(),
            password_file: pw_file.display().to_string(),
            ..Default::default()
        });
    });
    lp.scrape_once().await;
    let st = status.lock().clone();
    assert_eq!(st.health, Health::Up, "{}", st.last_error);
    assert_eq!(store.values("http_requests_total").len(), 2);

    // A rotated password is used by the next scrape, without a reload.
    std::fs::write(&pw_file, "rotated\n").unwrap();
    lp.scrape_once().await;
    let st = status.lock().clone();
    assert_eq!(st.health, Health::Down);
    assert_eq!(
        st.last_error,
        "server returned HTTP status 401 Unauthorized"
    );
}

#[tokio::test]
async fn plain_http_fast_path_sends_basic_auth() {
    install_crypto();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    let app = Router::new().route(
        "/metrics",
        get(move |h: axum::http::HeaderMap| {
            let seen = seen2.clone();
            async move {
                let a = h
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                seen.lock().push(a);
                PAGE
            }
        }),
    );
    let addr = serve(app).await;
    let store = Arc::new(MemStore::default());
    let (mut lp, status) = make_loop(&store, &addr, "/metrics", |c| {
        c.http.basic_auth = Some(koban_httpclient::BasicAuth {
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        });
    });
    lp.scrape_once().await;
    assert_eq!(status.lock().health, Health::Up);
    assert_eq!(*seen.lock(), vec!["Basic dTpw".to_string()]);
}
