//! The storage contract as a scrape loop keeps it towards an appender that
//! is not the TSDB (a recording test double with refs of its own): every
//! append carries the series' full labels, cache hits and stale markers
//! included, so such an appender can tell which series a ref means; and
//! refusals reported by the commit reach the scrape counters. Towards
//! storage that resolves its refs (as the TSDB) the loop keeps no labels
//! and passes none on cache hits.

use axum::routing::get;
use axum::Router;
use koban_model::relabel::{Action, RelabelConfig, RelabelRegex};
use koban_model::{is_stale_nan, Labels};
use koban_scrape::scrape_loop::{
    BufferPool, Health, LoopContext, LoopStatus, MetadataInterner, ScrapeLoop,
};
use koban_scrape::target::{populate, Populated};
use koban_scrape::{PoolConfig, ScrapeMetrics};
use koban_storage::{
    Appendable, Appender, CommitReport, Result as SResult, SeriesRef, StorageError,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One append call as the appender saw it.
#[derive(Debug, Clone)]
struct Call {
    scrape: usize,
    r: SeriesRef,
    labels: Labels,
    v: f64,
}

/// Hands out refs of its own (from 1000 on), learned from the labels of
/// the first append of a series; can forget a series (as a collected
/// one) so its ref goes stale. Refuses samples with value 666 appended
/// with a ref as duplicates and reports them at commit.
#[derive(Default, Clone)]
struct Recorder {
    inner: Arc<Mutex<RecInner>>,
    scrape: Arc<AtomicUsize>,
    /// Claims `resolves_refs` (as the TSDB).
    resolves: bool,
}

#[derive(Default)]
struct RecInner {
    refs: HashMap<Labels, SeriesRef>,
    by_ref: HashMap<SeriesRef, Labels>,
    next: SeriesRef,
    calls: Vec<Call>,
    /// An append with a known ref whose labels were not the ref's series.
    mismatches: Vec<String>,
}

struct RecAppender {
    rec: Recorder,
    report: CommitReport,
}

impl Appendable for Recorder {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(RecAppender {
            rec: self.clone(),
            report: CommitReport::default(),
        })
    }

    fn resolves_refs(&self) -> bool {
        self.resolves
    }
}

impl Appender for RecAppender {
    fn append(&mut self, r: SeriesRef, labels: &Labels, _t: i64, v: f64) -> SResult<SeriesRef> {
        let scrape = self.rec.scrape.load(Ordering::SeqCst);
        let mut s = self.rec.inner.lock();
        s.calls.push(Call {
            scrape,
            r,
            labels: labels.clone(),
            v,
        });
        let known = r != 0;
        let r = match s.by_ref.get(&r) {
            Some(l) if l == labels || (self.rec.resolves && labels.is_empty()) => r,
            Some(l) => {
                let m = format!("ref {r} is {l} but came with {labels}");
                s.mismatches.push(m);
                r
            }
            None => {
                if labels.is_empty() {
                    return Err(StorageError::InvalidLabels);
                }
                match s.refs.get(labels) {
                    Some(r) => *r,
                    None => {
                        s.next += 1;
                        let r = 1000 + s.next;
                        s.refs.insert(labels.clone(), r);
                        s.by_ref.insert(r, labels.clone());
                        r
                    }
                }
            }
        };
        if v == 666.0 && known {
            self.report.count_refused(&StorageError::DuplicateSample);
            return Err(StorageError::DuplicateSample);
        }
        self.report.floats += 1;
        Ok(r)
    }

    fn commit(self: Box<Self>) -> SResult<CommitReport> {
        Ok(self.report)
    }

    fn rollback(self: Box<Self>) -> SResult<()> {
        Ok(())
    }
}

impl Recorder {
    fn forget(&self, name: &str) {
        let mut s = self.inner.lock();
        let gone: Vec<Labels> = s
            .refs
            .keys()
            .filter(|l| l.metric_name() == name)
            .cloned()
            .collect();
        for l in gone {
            let r = s.refs.remove(&l).unwrap();
            s.by_ref.remove(&r);
        }
    }
}

/// The page of scrape `n` (1-based): `b` vanishes after the first,
/// `d` appears in the second, `dropme` is dropped by relabelling.
fn page(n: usize) -> String {
    let mut p = String::from("# TYPE a counter\na{x=\"1\"} 1\n");
    if n == 1 {
        p.push_str("b 2\n");
    }
    p.push_str("c{y=\"2\",z=\"3\"} 666\ndropme 5\n");
    if n >= 2 {
        p.push_str("d 4\n");
    }
    p
}

/// A scrape loop on the page server, appending to `rec`.
async fn setup(rec: &Recorder) -> (ScrapeLoop, Arc<Mutex<LoopStatus>>, ScrapeMetrics, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let served = rec.scrape.clone();
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let n = served.load(Ordering::SeqCst);
            async move { page(n) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });

    let mut cfg = PoolConfig::with_defaults("rec");
    cfg.interval = Duration::from_secs(2);
    cfg.timeout = Duration::from_secs(1);
    let mut rule = RelabelConfig::new(Action::Drop);
    rule.source_labels = vec!["__name__".into()];
    rule.regex = RelabelRegex::new("dropme").unwrap();
    cfg.metric_relabel_configs = vec![rule];
    let Populated::Active(t) =
        populate(&Labels::from_pairs([("__address__", addr.as_str())]), &cfg)
    else {
        panic!("target")
    };
    let client = koban_scrape::client::build("test", &cfg.http, cfg.timeout).unwrap();
    let metrics = ScrapeMetrics::default();
    let ctx = Arc::new(LoopContext {
        storage: Arc::new(rec.clone()),
        buffers: BufferPool::default(),
        interner: MetadataInterner::default(),
        metrics: metrics.clone(),
        timestamp_tolerance: Duration::ZERO,
        scrape_slots: 0,
    });
    let status = Arc::new(Mutex::new(LoopStatus::default()));
    let lp = ScrapeLoop::new(Arc::new(t), Arc::new(cfg), client, ctx, status.clone());
    (lp, status, metrics, addr)
}

#[tokio::test]
async fn every_append_carries_the_series_labels_across_scrapes() {
    let rec = Recorder::default();
    let (mut lp, status, metrics, addr) = setup(&rec).await;
    for n in 1..=3 {
        rec.scrape.store(n, Ordering::SeqCst);
        if n == 3 {
            // `a` was collected: its ref is stale, the labels re-create it.
            rec.forget("a");
        }
        lp.scrape_once().await;
        let st = status.lock().clone();
        assert_eq!(st.health, Health::Up, "scrape {n}: {}", st.last_error);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let (new_a, a) = {
        let s = rec.inner.lock();
        assert!(s.mismatches.is_empty(), "{:?}", s.mismatches);
        let want = |name: &str, extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("__name__", name),
                ("job", "rec"),
                ("instance", addr.as_str()),
            ];
            pairs.extend_from_slice(extra);
            Labels::from_pairs(pairs)
        };
        let a = want("a", &[("x", "1")]);
        let b = want("b", &[]);
        let c = want("c", &[("y", "2"), ("z", "3")]);
        let d = want("d", &[]);
        let names = |n: usize| -> Vec<(Labels, bool, bool)> {
            s.calls
                .iter()
                .filter(|c| {
                    c.scrape == n
                        && !c.labels.metric_name().starts_with("scrape_")
                        && c.labels.metric_name() != "up"
                })
                .map(|c| (c.labels.clone(), c.r != 0, is_stale_nan(c.v)))
                .collect()
        };
        // (labels, passed a ref: a cache hit, a stale marker)
        assert_eq!(
            names(1),
            vec![
                (a.clone(), false, false),
                (b.clone(), false, false),
                (c.clone(), false, false)
            ]
        );
        assert_eq!(
            names(2),
            vec![
                (a.clone(), true, false),
                (c.clone(), true, false),
                (d.clone(), false, false),
                (b.clone(), true, true),
            ]
        );
        assert_eq!(
            names(3),
            vec![
                (a.clone(), true, false),
                (c.clone(), true, false),
                (d.clone(), true, false)
            ]
        );
        // The synthetic series carry their labels on every scrape too.
        for n in 1..=3 {
            let up: Vec<&Call> = s
                .calls
                .iter()
                .filter(|c| c.scrape == n && c.labels.metric_name() == "up")
                .collect();
            assert_eq!(up.len(), 1);
            assert_eq!(up[0].labels, want("up", &[]));
            assert_eq!(up[0].r != 0, n > 1);
        }
        // After the stale ref of `a` the loop uses the new one.
        let new_a = s.refs[&a];
        let old_a = s
            .calls
            .iter()
            .find(|c| c.scrape == 2 && c.labels == a)
            .unwrap()
            .r;
        assert_ne!(new_a, old_a);
        (new_a, a)
    };
    rec.scrape.store(4, Ordering::SeqCst);
    lp.scrape_once().await;
    let s = rec.inner.lock();
    assert_eq!(
        s.calls
            .iter()
            .find(|c| c.scrape == 4 && c.labels == a)
            .unwrap()
            .r,
        new_a
    );

    // `c` is refused on every scrape after the first and counted from
    // the commit reports.
    let pool = ScrapeMetrics::pool("rec");
    assert_eq!(metrics.samples_refused.get_or_create(&pool).get(), 3);
    assert_eq!(metrics.sample_duplicate_timestamp.get(), 3);
    assert_eq!(metrics.sample_out_of_order.get(), 0);
}

#[tokio::test]
async fn storage_resolving_its_refs_gets_no_labels_on_cache_hits_and_asks_for_stale_ones() {
    let rec = Recorder {
        resolves: true,
        ..Recorder::default()
    };
    let (mut lp, status, _metrics, _addr) = setup(&rec).await;
    for n in 1..=3 {
        rec.scrape.store(n, Ordering::SeqCst);
        if n == 3 {
            rec.forget("a");
        }
        lp.scrape_once().await;
        let st = status.lock().clone();
        assert_eq!(st.health, Health::Up, "scrape {n}: {}", st.last_error);
    }
    let s = rec.inner.lock();
    assert!(s.mismatches.is_empty(), "{:?}", s.mismatches);
    let a: Vec<(usize, bool, bool)> = s
        .calls
        .iter()
        .filter(|c| c.labels.metric_name() == "a" || (c.r != 0 && c.labels.is_empty()))
        .filter(|c| {
            c.labels.metric_name() == "a"
                || s.by_ref.get(&c.r).is_none_or(|l| l.metric_name() == "a")
        })
        .map(|c| (c.scrape, c.r != 0, c.labels.is_empty()))
        .collect();
    // First seen: labels; cache hit: ref only; stale ref: refused, then
    // labels with ref 0.
    assert_eq!(
        a,
        vec![
            (1, false, false),
            (2, true, true),
            (3, true, true),
            (3, false, false)
        ]
    );
}
