//! One scrape loop per target: on a stable offset within the interval it
//! fetches the page, parses it, relabels new series, appends every sample
//! and the synthetic `up`/`scrape_*` series in one batch, and writes stale
//! markers for series that vanished.

use crate::cache::{Entry, SeriesCache};
use crate::http1::{Fetched, Http1Client};
use crate::metrics::ScrapeMetrics;
use crate::target::{PoolConfig, Target};
use crate::ScrapeError;
use koban_httpclient::{error_chain, HttpClient};
use koban_model::exposition::{self, Format, Parser};
use koban_model::{relabel, Labels, LabelsBuilder, STALE_NAN};
use koban_storage::{Appendable, Appender, CommitReport, Metadata, SeriesRef, StorageError};
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// Health of a target as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// What the API reads about a running loop.
#[derive(Debug, Clone)]
pub struct LoopStatus {
    pub health: Health,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_duration: Duration,
    /// Metric family metadata from the last pages (HELP/TYPE/UNIT), sorted
    /// by name; names and metadata are shared between targets.
    pub metadata: Arc<Vec<(Arc<str>, Arc<Metadata>)>>,
}

impl Default for LoopStatus {
    fn default() -> Self {
        LoopStatus {
            health: Health::Unknown,
            last_error: String::new(),
            last_scrape: None,
            last_duration: Duration::ZERO,
            metadata: Arc::default(),
        }
    }
}

/// Buffers shared by all loops: scrapes are spread over the interval, so a
/// handful of page buffers serve hundreds of targets.
#[derive(Default)]
pub struct BufferPool(Mutex<Vec<Vec<u8>>>);

impl BufferPool {
    fn get(&self) -> Vec<u8> {
        self.0.lock().pop().unwrap_or_default()
    }
    fn put(&self, mut b: Vec<u8>) {
        b.clear();
        let mut v = self.0.lock();
        if v.len() < 16 {
            v.push(b);
        }
    }
}

/// Interns metadata and family names so identical ones across targets
/// are stored once.
#[derive(Default)]
pub struct MetadataInterner(
    Mutex<rustc_hash::FxHashSet<Arc<Metadata>>>,
    Mutex<rustc_hash::FxHashSet<Arc<str>>>,
);

impl MetadataInterner {
    fn intern(&self, m: Metadata) -> Arc<Metadata> {
        let mut set = self.0.lock();
        if let Some(a) = set.get(&m) {
            return a.clone();
        }
        let a = Arc::new(m);
        set.insert(a.clone());
        a
    }

    fn name(&self, n: &str) -> Arc<str> {
        let mut set = self.1.lock();
        if let Some(a) = set.get(n) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(n);
        set.insert(a.clone());
        a
    }
}

/// Shared context of every loop of the manager.
pub struct LoopContext {
    pub storage: Arc<dyn Appendable>,
    pub buffers: BufferPool,
    pub interner: MetadataInterner,
    pub metrics: ScrapeMetrics,
    /// See [`ScrapeLoop::scrape_timestamp`]; zero disables the alignment.
    pub timestamp_tolerance: Duration,
    /// See [`first_delay`]; zero spreads targets as Prometheus does.
    pub scrape_slots: u32,
}

/// Prometheus's default `--scrape.timestamp-tolerance`.
pub const DEFAULT_TIMESTAMP_TOLERANCE: Duration = Duration::from_millis(2);

/// Default `--scrape.slots`: targets start in one of this many evenly
/// spaced instants per interval (see [`first_delay`]).
pub const DEFAULT_SCRAPE_SLOTS: u32 = 20;

/// Slots narrower than this are not used: targets then get their own
/// offsets (the timer's resolution is a millisecond anyway).
const MIN_SLOT_NS: u64 = 1_000_000;

/// How many page lines ahead `append_page` hints the storage to prefetch
/// (enough to cover a memory miss at a few hundred ns per line).
const PREFETCH_AHEAD: usize = 4;

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// The loop of one target. Owned by its task.
pub struct ScrapeLoop {
    target: Arc<Target>,
    cfg: Arc<PoolConfig>,
    client: HttpClient,
    ctx: Arc<LoopContext>,
    cache: SeriesCache,
    /// Timestamp given to the previous scrape (see `scrape_timestamp`).
    last_ts: Option<i64>,
    report_refs: [SeriesRef; 5],
    report_labels: Vec<Labels>,
    status: Arc<Mutex<LoopStatus>>,
    /// Family metadata seen on the pages, sorted by name; shared with the
    /// status (copied on the first change after publishing).
    meta: Arc<Vec<(Arc<str>, Arc<Metadata>)>>,
    meta_dirty: bool,
    /// Position in `meta` of the family last set (see `set_meta`).
    meta_cursor: usize,
    /// The target URL parsed once (None: unparsable, each fetch reports it).
    parsed_url: Option<reqwest::Url>,
    /// `X-Prometheus-Scrape-Timeout-Seconds`, formatted once.
    timeout_header: reqwest::header::HeaderValue,
    /// The plain-HTTP fast path (see [`crate::http1`]), when it applies.
    fast: Option<Http1Client>,
    /// This pool's counters, resolved once.
    scrapes_total: Counter,
    failures_total: Counter,
    refused_total: Counter,
}

/// Counts of one page.
#[derive(Debug, Default, Clone, Copy)]
struct PageCounts {
    scraped: usize,
    post_relabel: usize,
    added: usize,
}

impl ScrapeLoop {
    pub fn new(
        target: Arc<Target>,
        cfg: Arc<PoolConfig>,
        client: HttpClient,
        ctx: Arc<LoopContext>,
        status: Arc<Mutex<LoopStatus>>,
    ) -> Self {
        let report_labels = REPORT_NAMES
            .iter()
            .map(|n| {
                let mut b = target.labels.builder();
                b.set(koban_model::METRIC_NAME, n);
                b.labels()
            })
            .collect();
        let parsed_url = reqwest::Url::parse(&target.url).ok();
        let timeout_header = format!("{}", target.timeout.as_secs_f64());
        // The fast path takes plain-HTTP targets whose requests carry only
        // fixed headers (no proxy, oauth2 or secret files to re-read).
        let fast = parsed_url.as_ref().and_then(|u| {
            let fixed = client.fixed_headers()?;
            let mut extra = vec![
                ("User-Agent", crate::client::USER_AGENT),
                ("Accept", exposition::ACCEPT_HEADER),
                (
                    "X-Prometheus-Scrape-Timeout-Seconds",
                    timeout_header.as_str(),
                ),
            ];
            extra.extend(fixed.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            Http1Client::new(u, &extra)
        });
        let pool = ScrapeMetrics::pool(&cfg.job_name);
        let scrapes_total = ctx.metrics.scrapes.get_or_create(&pool).clone();
        let failures_total = ctx.metrics.scrape_failures.get_or_create(&pool).clone();
        let refused_total = ctx.metrics.samples_refused.get_or_create(&pool).clone();
        let cache = if ctx.storage.resolves_refs() {
            SeriesCache::default()
        } else {
            SeriesCache::with_labels()
        };
        ScrapeLoop {
            fast,
            scrapes_total,
            failures_total,
            refused_total,
            cfg,
            client,
            ctx,
            cache,
            last_ts: None,
            report_refs: [0; 5],
            report_labels,
            status,
            meta: Default::default(),
            meta_dirty: false,
            meta_cursor: 0,
            parsed_url,
            timeout_header: reqwest::header::HeaderValue::from_str(&timeout_header)
                // A formatted float is always a valid header value.
                .unwrap_or(reqwest::header::HeaderValue::from_static("0")),
            target,
        }
    }

    /// Runs until `cancel` fires. With `stale_on_exit`, writes stale markers
    /// for every series of the target when it stops (the target went away).
    pub async fn run(
        mut self,
        cancel: CancellationToken,
        stale_on_exit: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let interval = self.target.interval;
        let now_ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let iv_ns = interval.as_nanos().max(1) as u64;
        let first = first_delay(self.target.hash(), iv_ns, now_ns, self.ctx.scrape_slots);
        let start = tokio::time::Instant::now() + Duration::from_nanos(first);
        let mut ticker = tokio::time::interval_at(start, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = self.scrape_once() => {}
                    }
                }
            }
        }
        if stale_on_exit.load(std::sync::atomic::Ordering::Relaxed) {
            self.write_all_stale();
        }
    }

    /// The timestamp of a scrape starting at `now` (ms since the epoch).
    /// When `now` is within the tolerance (at most 1% of the interval) of
    /// a whole number of intervals after the previous scrape's timestamp,
    /// that scheduled time is used instead, as Prometheus does: timers
    /// jitter by a millisecond or two, and an uneven timestamp costs every
    /// sample of the page about two bytes in the chunks instead of a bit.
    fn scrape_timestamp(&mut self, now: i64) -> i64 {
        let iv = i64::try_from(self.target.interval.as_millis()).unwrap_or(i64::MAX);
        let tol = i64::try_from(self.ctx.timestamp_tolerance.as_millis()).unwrap_or(i64::MAX);
        let ts = aligned_timestamp(self.last_ts, now, iv, tol);
        self.last_ts = Some(ts);
        ts
    }

    /// Stale markers for every series of the target, including the synthetic ones.
    fn write_all_stale(&mut self) {
        // After the last scrape's timestamp even if that one was aligned
        // forward a little (see `scrape_timestamp`).
        let now = now_ms();
        let ts = self.last_ts.map_or(now, |last| now.max(last + 1));
        let mut app = self.ctx.storage.appender();
        self.cache.begin();
        self.cache.all_stale(|r, l| {
            let _ = app.append(r, l, ts, STALE_NAN);
        });
        for i in 0..REPORT_NAMES.len() {
            if self.report_refs[i] != 0 {
                let _ = app.append(self.report_refs[i], &self.report_labels[i], ts, STALE_NAN);
            }
        }
        match app.commit() {
            Ok(rep) => self.count_refused(&rep),
            Err(e) => {
                tracing::warn!(target = %self.target.url, error = %e, "writing stale markers failed")
            }
        }
    }

    /// One scrape: fetch, parse, append, report. Never fails: errors go to the target's status.
    pub async fn scrape_once(&mut self) {
        let started = Instant::now();
        let ts = self.scrape_timestamp(now_ms());
        let mut buf = self.ctx.buffers.get();
        let fetched = match tokio::time::timeout(self.target.timeout, self.fetch(&mut buf)).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Timeout),
        };
        self.scrapes_total.inc();
        self.cache.begin();
        let mut app = self.ctx.storage.appender();
        let result = match fetched {
            Ok(format) => self.append_page(&mut *app, &buf, format, ts),
            Err(e) => Err(e),
        };
        self.ctx.buffers.put(buf);
        let counts = match result {
            Ok(c) => {
                self.cache.end(|r, l| {
                    let _ = app.append(r, l, ts, STALE_NAN);
                });
                Ok(c)
            }
            Err(e) => {
                let _ = app.rollback();
                app = self.ctx.storage.appender();
                self.cache.all_stale(|r, l| {
                    let _ = app.append(r, l, ts, STALE_NAN);
                });
                Err(e)
            }
        };
        let duration = started.elapsed();
        let c = counts.as_ref().copied().unwrap_or_default();
        let up = if counts.is_ok() { 1.0 } else { 0.0 };
        let values = [
            up,
            duration.as_secs_f64(),
            c.scraped as f64,
            c.post_relabel as f64,
            c.added as f64,
        ];
        for (i, v) in values.into_iter().enumerate() {
            match app.append(self.report_refs[i], &self.report_labels[i], ts, v) {
                Ok(r) => self.report_refs[i] = r,
                Err(e) => {
                    tracing::debug!(target = %self.target.url, error = %e, "appending report series")
                }
            }
        }
        let committed = app.commit();
        if let Ok(rep) = &committed {
            self.count_refused(rep);
        }
        let mut st = self.status.lock();
        st.last_scrape = Some(SystemTime::now());
        st.last_duration = duration;
        match (&counts, committed) {
            (Ok(_), Ok(_)) => {
                st.health = Health::Up;
                st.last_error.clear();
            }
            (Err(e), _) => {
                self.failures_total.inc();
                st.health = Health::Down;
                st.last_error = e.to_string();
                tracing::debug!(target = %self.target.url, error = %e, "scrape failed");
            }
            (Ok(_), Err(e)) => {
                self.failures_total.inc();
                st.health = Health::Down;
                st.last_error = format!("storage: {e}");
            }
        }
        if self.meta_dirty {
            st.metadata = self.meta.clone();
            self.meta_dirty = false;
        }
    }

    /// Counts the samples storage refused in a committed batch, per pool
    /// and per reason, and says so in the log once per batch (as
    /// Prometheus warns once per scrape with the number dropped).
    fn count_refused(&self, rep: &CommitReport) {
        let n = rep.refused();
        if n == 0 {
            return;
        }
        self.refused_total.inc_by(n);
        let m = &self.ctx.metrics;
        m.sample_out_of_order.inc_by(rep.out_of_order);
        m.sample_duplicate_timestamp.inc_by(rep.duplicate);
        m.sample_out_of_bounds
            .inc_by(rep.out_of_bounds + rep.too_old);
        tracing::warn!(
            target = %self.target.url,
            out_of_order = rep.out_of_order,
            duplicate_timestamp = rep.duplicate,
            out_of_bounds = rep.out_of_bounds,
            too_old = rep.too_old,
            "storage refused samples of a scrape"
        );
    }

    /// Fetches the page into `buf`, enforcing `body_size_limit`; returns its format.
    async fn fetch(&mut self, buf: &mut Vec<u8>) -> Result<Format, ScrapeError> {
        let url = &self.target.url;
        if let Some(fast) = &mut self.fast {
            let err = |reason: String| ScrapeError::Http {
                url: url.clone(),
                reason,
            };
            match fast.fetch(buf, self.cfg.body_size_limit, err).await? {
                Fetched::Page(ct) => {
                    return Ok(ct
                        .as_deref()
                        .map(exposition::format_from_content_type)
                        .unwrap_or(Format::Text))
                }
                // The general client applies the redirect policy.
                Fetched::Redirect => {}
            }
        }
        let http_err = |e: reqwest::Error| ScrapeError::Http {
            url: url.clone(),
            reason: error_chain(&e),
        };
        let req = match &self.parsed_url {
            Some(u) => self.client.request(reqwest::Method::GET, u.clone()).await,
            None => self.client.request(reqwest::Method::GET, url).await,
        };
        let req = req
            .map_err(|e| ScrapeError::Http {
                url: url.clone(),
                reason: error_chain(&e),
            })?
            .header(
                reqwest::header::ACCEPT,
                reqwest::header::HeaderValue::from_static(exposition::ACCEPT_HEADER),
            )
            .header(
                reqwest::header::HeaderName::from_static("x-prometheus-scrape-timeout-seconds"),
                self.timeout_header.clone(),
            );
        let mut resp = req.send().await.map_err(http_err)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ScrapeError::Status(format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )));
        }
        let format = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(exposition::format_from_content_type)
            .unwrap_or(Format::Text);
        let limit = self.cfg.body_size_limit;
        buf.clear();
        while let Some(chunk) = resp.chunk().await.map_err(http_err)? {
            if limit > 0 && (buf.len() + chunk.len()) as u64 > limit {
                return Err(ScrapeError::BodySizeLimit(limit));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(format)
    }

    /// Parses the page and stages every sample. Fails the whole scrape on a
    /// parse error, a limit, or a duplicate series.
    fn append_page(
        &mut self,
        app: &mut dyn Appender,
        buf: &[u8],
        format: Format,
        ts: i64,
    ) -> Result<PageCounts, ScrapeError> {
        let mut parser = Parser::new(buf, format);
        let mut counts = PageCounts::default();
        let iter = self.cache.iter();
        let sample_limit = self.cfg.sample_limit;
        loop {
            let entry = match parser.next() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => return Err(ScrapeError::Parse(e.to_string())),
            };
            let s = match entry {
                exposition::Entry::Sample(s) => s,
                other => {
                    self.note_metadata(&other);
                    continue;
                }
            };
            counts.scraped += 1;
            let t = match s.timestamp {
                Some(t) if self.cfg.honor_timestamps => t,
                _ => ts,
            };
            let key = SeriesCache::key(s.series);
            // The storage's series records are usually cold (every other
            // target was scraped since): ask for the ones a few lines ahead.
            let ahead = self.cache.ahead(PREFETCH_AHEAD);
            if ahead != 0 {
                app.prefetch(ahead);
            }
            let found = self.cache.lookup(key);
            let (r, labels_needed) = match found {
                Some(p) => {
                    let e = self.cache.get(p);
                    if e.last_iter == iter {
                        return Err(ScrapeError::Duplicate {
                            series: String::from_utf8_lossy(s.series).into_owned(),
                        });
                    }
                    self.cache.touch(p);
                    if e.dropped {
                        continue;
                    }
                    (e.r, false)
                }
                None => (0, true),
            };
            counts.post_relabel += 1;
            if sample_limit > 0 && counts.post_relabel > sample_limit {
                return Err(ScrapeError::SampleLimit {
                    got: count_remaining(&mut parser, counts.post_relabel),
                    limit: sample_limit,
                });
            }
            let res = if labels_needed {
                let Some(labels) = self.sample_labels(page_labels(&s))? else {
                    counts.post_relabel -= 1;
                    self.cache.insert(
                        key,
                        Entry {
                            r: 0,
                            last_iter: iter,
                            dropped: true,
                            explicit_ts: false,
                        },
                        Labels::empty(),
                    );
                    continue;
                };
                let res = app.append(0, &labels, t, s.value);
                if let Ok(r) = res {
                    counts.added += 1;
                    self.cache.insert(
                        key,
                        Entry {
                            r,
                            last_iter: iter,
                            dropped: false,
                            explicit_ts: s.timestamp.is_some(),
                        },
                        labels,
                    );
                }
                res
            } else {
                // The cached labels (empty towards the TSDB, see the
                // cache docs): storage re-creates a series whose ref went
                // stale (collected) from them, or asks for them.
                let p = found.expect("BUG: cache hit without a position");
                match app.append(r, self.cache.labels(p), t, s.value) {
                    Err(StorageError::InvalidLabels) => {
                        match self.sample_labels(page_labels(&s))? {
                            Some(labels) => {
                                let res = app.append(0, &labels, t, s.value);
                                if let Ok(r2) = res {
                                    self.cache.set_ref(p, r2);
                                }
                                res
                            }
                            None => continue,
                        }
                    }
                    Ok(r2) => {
                        if r2 != r {
                            self.cache.set_ref(p, r2);
                        }
                        Ok(r2)
                    }
                    other => other,
                }
            };
            match res {
                // Refusals are counted from the commit's report.
                Ok(_)
                | Err(
                    StorageError::OutOfOrder
                    | StorageError::DuplicateSample
                    | StorageError::OutOfBounds
                    | StorageError::TooOld,
                ) => {}
                Err(e) => return Err(ScrapeError::Storage(e.to_string())),
            }
        }
        Ok(counts)
    }

    /// Target labels merged into the sample's (honor_labels semantics), then
    /// metric relabelling and label limits. None: dropped by relabelling.
    fn sample_labels(&self, mut b: LabelsBuilder) -> Result<Option<Labels>, ScrapeError> {
        for l in self.target.labels.iter() {
            let existing = b.get(&l.name).to_string();
            if self.cfg.honor_labels {
                if existing.is_empty() {
                    b.set(&l.name, &l.value);
                }
            } else {
                if !existing.is_empty() {
                    // Keep the page's value as exported_<name>, prefixing again on conflicts.
                    let mut name = format!("exported_{}", l.name);
                    while !b.get(&name).is_empty() {
                        name = format!("exported_{name}");
                    }
                    b.set(&name, &existing);
                }
                b.set(&l.name, &l.value);
            }
        }
        if !self.cfg.metric_relabel_configs.is_empty()
            && !relabel::process_builder(&mut b, &self.cfg.metric_relabel_configs)
        {
            return Ok(None);
        }
        let labels = b.into_labels();
        check_label_limits(&labels, &self.cfg)?;
        Ok(Some(labels))
    }

    fn note_metadata(&mut self, e: &exposition::Entry<'_>) {
        match e {
            exposition::Entry::Help { name, help } => {
                self.set_meta(&name.decoded(), MetaField::Help, &help.decoded())
            }
            exposition::Entry::Type { name, metric_type } => {
                self.set_meta(&name.decoded(), MetaField::Type, metric_type.as_str())
            }
            exposition::Entry::Unit { name, unit } => {
                self.set_meta(&name.decoded(), MetaField::Unit, &unit.decoded())
            }
            _ => {}
        }
    }

    /// Records one field of a family's metadata; allocates only when it changed.
    fn set_meta(&mut self, name: &str, field: MetaField, v: &str) {
        // Pages list their families in the same order every scrape (and
        // exporters sort them): try where the last family was, and the
        // next one, before searching.
        let c = self.meta_cursor;
        let pos = match (self.meta.get(c), self.meta.get(c + 1)) {
            (Some((n, _)), _) if **n == *name => Ok(c),
            (_, Some((n, _))) if **n == *name => Ok(c + 1),
            _ => self.meta.binary_search_by(|(n, _)| (**n).cmp(name)),
        };
        self.meta_cursor = match pos {
            Ok(i) | Err(i) => i,
        };
        if let Ok(i) = pos {
            if field.get(&self.meta[i].1) == v {
                return;
            }
        }
        let meta = Arc::make_mut(&mut self.meta);
        let mut m = match pos {
            Ok(i) => (*meta[i].1).clone(),
            Err(_) => Metadata::default(),
        };
        *field.get_mut(&mut m) = v.to_string();
        let m = self.ctx.interner.intern(m);
        match pos {
            Ok(i) => meta[i].1 = m,
            Err(i) => meta.insert(i, (self.ctx.interner.name(name), m)),
        }
        self.meta_dirty = true;
    }
}

#[derive(Clone, Copy)]
enum MetaField {
    Help,
    Type,
    Unit,
}

impl MetaField {
    fn get(self, m: &Metadata) -> &str {
        match self {
            MetaField::Help => &m.help,
            MetaField::Type => &m.metric_type,
            MetaField::Unit => &m.unit,
        }
    }
    fn get_mut(self, m: &mut Metadata) -> &mut String {
        match self {
            MetaField::Help => &mut m.help,
            MetaField::Type => &mut m.metric_type,
            MetaField::Unit => &mut m.unit,
        }
    }
}

/// The labels a page line gives, `__name__` included.
fn page_labels(s: &exposition::SampleEntry<'_>) -> LabelsBuilder {
    let mut b = LabelsBuilder::new();
    s.for_each_label(|n, v| {
        b.set(n, v);
    });
    b
}

/// Counts the samples left on the page, for the sample-limit message.
fn count_remaining(p: &mut Parser<'_>, so_far: usize) -> usize {
    let mut n = so_far;
    while let Ok(Some(e)) = p.next() {
        if matches!(e, exposition::Entry::Sample(_)) {
            n += 1;
        }
    }
    n
}

fn check_label_limits(l: &Labels, cfg: &PoolConfig) -> Result<(), ScrapeError> {
    let err = |reason: String| ScrapeError::LabelLimit {
        series: l.to_string(),
        reason,
    };
    if cfg.label_limit > 0 && l.len() > cfg.label_limit {
        return Err(err(format!(
            "{} labels, limit is {}",
            l.len(),
            cfg.label_limit
        )));
    }
    for x in l.iter() {
        if cfg.label_name_length_limit > 0 && x.name.len() > cfg.label_name_length_limit {
            return Err(err(format!(
                "label name {:?} is longer than {}",
                x.name, cfg.label_name_length_limit
            )));
        }
        if cfg.label_value_length_limit > 0 && x.value.len() > cfg.label_value_length_limit {
            return Err(err(format!(
                "value of label {:?} is longer than {}",
                x.name, cfg.label_value_length_limit
            )));
        }
    }
    Ok(())
}

/// The error and its causes, joined, e.g. "error sending request: connection refused".
/// Nanoseconds from `now_ns` (since the epoch) to a target's first scrape.
///
/// Every target keeps a stable phase within the interval `iv_ns`, derived
/// from its hash, so restarts and reloads keep its schedule, as in
/// Prometheus. Prometheus gives each target its own offset; when `slots`
/// is not zero Koban rounds the offset down to one of `slots` evenly
/// spaced instants, so targets still spread over the interval but several
/// start together: they share the timer wake-up, their responses arrive
/// while the previous ones are being parsed, and the runtime and kernel
/// costs of a scrape (timer, epoll, context switches: a large share of the
/// CPU of a page of a few hundred samples) are paid once per group
/// (shared/bench/ingest.sh koban 200 5 150: 1.10 -> 0.71-0.74 s of CPU per
/// million samples). A group holds about targets/`slots` scrapes.
fn first_delay(hash: u64, iv_ns: u64, now_ns: u64, slots: u32) -> u64 {
    let iv_ns = iv_ns.max(1);
    let mut offset = hash % iv_ns;
    if slots > 0 {
        let width = iv_ns / u64::from(slots);
        if width >= MIN_SLOT_NS {
            offset -= offset % width;
        }
    }
    let phase = now_ns % iv_ns;
    if offset >= phase {
        offset - phase
    } else {
        iv_ns - phase + offset
    }
}

/// `now`, or the scheduled time a whole number of intervals `iv` after
/// `last` when `now` is within `tol` of it (`tol` capped at 1% of `iv`;
/// all in ms). See `ScrapeLoop::scrape_timestamp`.
fn aligned_timestamp(last: Option<i64>, now: i64, iv: i64, tol: i64) -> i64 {
    let tol = tol.min(iv / 100);
    match last {
        Some(last) if tol > 0 && now > last => {
            // Nearest whole number of intervals (ticks may have been skipped).
            let k = (now - last).saturating_add(iv / 2) / iv;
            let scheduled = last.saturating_add(k.saturating_mul(iv));
            if k >= 1 && (now - scheduled).abs() <= tol {
                scheduled
            } else {
                now
            }
        }
        _ => now,
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{aligned_timestamp, first_delay};

    #[test]
    fn first_scrape_keeps_a_stable_phase() {
        let iv = 15_000_000_000u64;
        let now = 1_700_000_000_123_456_789u64;
        for hash in [
            0u64,
            1,
            7_499_999_999,
            14_999_999_999,
            u64::MAX,
            0x9e37_79b9_7f4a_7c15,
        ] {
            for slots in [0, 1, 20, 1_000_000] {
                let d = first_delay(hash, iv, now, slots);
                assert!(d < iv, "hash {hash} slots {slots}: delay {d}");
                // The same phase whenever the loop starts.
                let later = now + 123_456_789_012;
                let d2 = first_delay(hash, iv, later, slots);
                assert_eq!((now + d) % iv, (later + d2) % iv);
            }
            // Without slots the phase is the hash's own offset.
            assert_eq!((now + first_delay(hash, iv, now, 0)) % iv, hash % iv);
        }
    }

    #[test]
    fn slots_group_targets_on_evenly_spaced_instants() {
        let iv = 5_000_000_000u64;
        let now = 1_700_000_000_000_000_000u64;
        let mut phases = std::collections::BTreeSet::new();
        for i in 0..1000u64 {
            let hash = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let phase = (now + first_delay(hash, iv, now, 20)) % iv;
            // On a slot boundary, at or before the target's own offset.
            assert_eq!(phase % (iv / 20), 0);
            assert!(phase <= hash % iv && hash % iv - phase < iv / 20);
            phases.insert(phase);
        }
        assert_eq!(phases.len(), 20);
        // Slots under a millisecond wide are not used.
        let hash = 123_456_789u64;
        assert_eq!(
            (now + first_delay(hash, 10_000_000, now, 20)) % 10_000_000,
            hash % 10_000_000
        );
    }

    const IV: i64 = 15_000;

    #[test]
    fn jitter_within_tolerance_keeps_the_schedule() {
        let t0 = 1_700_000_000_000;
        assert_eq!(aligned_timestamp(None, t0, IV, 2), t0);
        assert_eq!(aligned_timestamp(Some(t0), t0 + IV + 1, IV, 2), t0 + IV);
        assert_eq!(aligned_timestamp(Some(t0), t0 + IV + 2, IV, 2), t0 + IV);
        assert_eq!(aligned_timestamp(Some(t0), t0 + IV - 2, IV, 2), t0 + IV);
        // A skipped tick: aligned to the second interval.
        assert_eq!(
            aligned_timestamp(Some(t0), t0 + 2 * IV + 1, IV, 2),
            t0 + 2 * IV
        );
    }

    #[test]
    fn beyond_tolerance_or_disabled_uses_the_clock() {
        let t0 = 1_700_000_000_000;
        assert_eq!(aligned_timestamp(Some(t0), t0 + IV + 3, IV, 2), t0 + IV + 3);
        assert_eq!(aligned_timestamp(Some(t0), t0 + IV / 2, IV, 2), t0 + IV / 2);
        assert_eq!(aligned_timestamp(Some(t0), t0 + IV + 1, IV, 0), t0 + IV + 1);
        // The tolerance is at most 1% of the interval: none below 100 ms.
        assert_eq!(aligned_timestamp(Some(t0), t0 + 51, 50, 2), t0 + 51);
        assert_eq!(
            aligned_timestamp(Some(t0), t0 + 1_010, 1_000, 20),
            t0 + 1_000
        );
        assert_eq!(
            aligned_timestamp(Some(t0), t0 + 1_011, 1_000, 20),
            t0 + 1_011
        );
        // The clock going back is passed through.
        assert_eq!(aligned_timestamp(Some(t0), t0 - 5, IV, 2), t0 - 5);
    }
}
