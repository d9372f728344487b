//! The server: opens storage, starts discovery, scraping and the web layer,
//! handles reloads (SIGHUP, `/-/reload`) and shutdown (SIGTERM, SIGINT,
//! `/-/quit`).

use crate::backend::ServerBackend;
use crate::cli::ServerArgs;
use crate::selfmetrics::{self, ReloadMetrics};
use anyhow::{anyhow, Context, Result};
use koban_config::Config;
use koban_discovery::DiscoveryManager;
use koban_model::Labels;
use koban_scrape::{ScrapeManager, ScrapeMetrics};
use koban_tsdb::{Db, DbOptions};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// The embedded default, already adapted to the listen address.
    Embedded(String),
}

impl ConfigSource {
    fn load(&self) -> Result<Config> {
        match self {
            ConfigSource::File(p) => koban_config::load_file(p).map_err(|e| anyhow!("{e}")),
            ConfigSource::Embedded(text) => {
                koban_config::load_str(text, std::path::Path::new("<embedded default config>"))
                    .map_err(|e| anyhow!("{e}"))
            }
        }
    }
}

/// Applies configuration changes to the running components.
pub struct Reloader {
    source: ConfigSource,
    scrape: Arc<ScrapeManager>,
    discovery: Arc<DiscoveryManager>,
    current: RwLock<Arc<Config>>,
    metrics: ReloadMetrics,
    last_ok: AtomicBool,
    last_time: Mutex<String>,
    lock: tokio::sync::Mutex<()>,
    retention: String,
    /// Storage, for settings a reload changes (the out-of-order window).
    db: Arc<Db>,
    /// `--storage.tsdb.out-of-order-time-window` (ms), used when the
    /// configuration has no `storage.tsdb` section.
    ooo_flag_ms: i64,
}

/// The out-of-order window to apply (ms): the configuration's
/// `storage.tsdb.out_of_order_time_window` when it has a `storage.tsdb`
/// section (as Prometheus, which only reads the file), else the flag.
pub fn out_of_order_window_ms(cfg: &Config, flag_ms: i64) -> i64 {
    match &cfg.storage.tsdb {
        Some(t) => i64::try_from(t.out_of_order_time_window.as_millis()).unwrap_or(i64::MAX),
        None => flag_ms,
    }
}

impl Reloader {
    pub fn current(&self) -> Arc<Config> {
        self.current.read().clone()
    }

    pub fn last_ok(&self) -> bool {
        self.last_ok.load(Ordering::Relaxed)
    }

    pub fn last_time(&self) -> String {
        self.last_time.lock().clone()
    }

    pub fn retention_text(&self) -> String {
        self.retention.clone()
    }

    /// Loads the configuration again and applies it. A bad config is refused
    /// as a whole: the old one keeps running and the reason is returned.
    pub async fn reload(&self) -> Result<(), String> {
        let _serial = self.lock.lock().await;
        let res = self.apply(self.source.load());
        match &res {
            Ok(()) => {
                tracing::info!(source = ?self.source_name(), "completed loading of configuration file");
            }
            Err(e) => {
                tracing::error!(source = ?self.source_name(), error = %format!("{e:#}"), "error reloading config; keeping the old one");
            }
        }
        res.map_err(|e| format!("{e:#}"))
    }

    fn source_name(&self) -> String {
        match &self.source {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Embedded(_) => "embedded default".into(),
        }
    }

    fn apply(&self, loaded: Result<Config>) -> Result<()> {
        let res = (|| -> Result<()> {
            let cfg = loaded?;
            let pools = crate::pools::pool_configs(&cfg)?;
            self.scrape
                .apply_config(pools)
                .map_err(|e| anyhow!("{e}"))?;
            self.discovery.apply_config(&cfg);
            let ooo = out_of_order_window_ms(&cfg, self.ooo_flag_ms);
            if ooo != self.db.out_of_order_window() {
                tracing::info!(window_ms = ooo, "TSDB out-of-order window changed");
                self.db.set_out_of_order_window(ooo);
            }
            *self.current.write() = Arc::new(cfg);
            Ok(())
        })();
        let ok = res.is_ok();
        self.last_ok.store(ok, Ordering::Relaxed);
        self.metrics.last_reload_successful.set(ok as i64);
        if ok {
            let now = chrono::Utc::now();
            self.metrics
                .last_reload_success_timestamp_seconds
                .set(now.timestamp_millis() as f64 / 1000.0);
            *self.last_time.lock() = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        }
        res
    }
}

fn init_logging(args: &ServerArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(match args.log_level.as_str() {
        "debug" | "info" | "warn" | "error" => args.log_level.as_str(),
        other => {
            return Err(anyhow!(
                "--log.level: unknown level {other:?} (use debug, info, warn or error)"
            ))
        }
    })?;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format.as_str() {
        "json" => b.json().init(),
        "logfmt" => b.with_ansi(false).init(),
        other => {
            return Err(anyhow!(
                "--log.format: unknown format {other:?} (use logfmt or json)"
            ))
        }
    }
    Ok(())
}

/// Runs the server until shutdown; returns the process exit code.
pub fn main(args: ServerArgs) -> ExitCode {
    if let Err(e) = init_logging(&args) {
        eprintln!("koban: {e:#}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("koban")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("koban: starting runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "koban stopped");
            eprintln!("koban: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_source(args: &ServerArgs) -> ConfigSource {
    if let Some(p) = &args.config_file {
        return ConfigSource::File(p.clone());
    }
    let local = PathBuf::from("prometheus.yml");
    if local.exists() {
        return ConfigSource::File(local);
    }
    // The default scrapes this very server, wherever it listens and under its route prefix.
    let port = args.listen_address.rsplit(':').next().unwrap_or("9090");
    let mut text =
        koban_config::DEFAULT_CONFIG.replace("localhost:9090", &format!("localhost:{port}"));
    let prefix = koban_web::normalize_prefix(&route_prefix(args));
    if !prefix.is_empty() {
        text = text.replace(
            "  - job_name: koban\n",
            &format!("  - job_name: koban\n    metrics_path: {prefix}/metrics\n"),
        );
    }
    ConfigSource::Embedded(text)
}

/// `--web.route-prefix`, defaulting to the path of `--web.external-url`.
fn route_prefix(args: &ServerArgs) -> String {
    match (&args.route_prefix, &args.external_url) {
        (Some(p), _) => p.clone(),
        (None, Some(u)) => url_path(u),
        (None, None) => String::new(),
    }
}

fn duration_flag(name: &str, v: &str) -> Result<Duration> {
    koban_config::parse_duration(v)
        .map(|d| Duration::from_millis(d.as_millis()))
        .map_err(|e| anyhow!("--{name}: {e}"))
}

async fn run(args: ServerArgs) -> Result<()> {
    let source = config_source(&args);
    let cfg = source.load().context("loading configuration")?;
    let lookback = duration_flag("query.lookback-delta", &args.lookback_delta)?;
    let query_timeout = duration_flag("query.timeout", &args.query_timeout)?;
    let timestamp_tolerance = match args.scrape_adjust_timestamps {
        true => duration_flag(
            "scrape.timestamp-tolerance",
            &args.scrape_timestamp_tolerance,
        )?,
        false => Duration::ZERO,
    };
    let retention = match (&args.retention_time, &args.retention_size) {
        (Some(t), _) => Some(duration_flag("storage.tsdb.retention.time", t)?),
        (None, None) => Some(Duration::from_secs(15 * 86_400)),
        (None, Some(_)) => None,
    };
    let retention_size = match &args.retention_size {
        Some(s) => Some(
            koban_config::parse_byte_size(s)
                .map_err(|e| anyhow!("--storage.tsdb.retention.size: {e}"))?
                .0,
        ),
        None => None,
    };
    let ooo_flag_ms = match &args.out_of_order_window {
        Some(w) => {
            let d = duration_flag("storage.tsdb.out-of-order-time-window", w)?;
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
        }
        None => 0,
    };
    let retention_text = match (retention, retention_size) {
        (Some(t), Some(s)) => format!("{}s or {s}B", t.as_secs()),
        (Some(t), None) => format!("{}s", t.as_secs()),
        (None, Some(s)) => format!("{s}B"),
        (None, None) => String::new(),
    };

    let path = args.tsdb_path.clone();
    tracing::info!(path = %path.display(), "opening storage");
    let opts = DbOptions {
        retention,
        retention_size,
        out_of_order_window_ms: out_of_order_window_ms(&cfg, ooo_flag_ms),
        ..DbOptions::default()
    };
    let db = tokio::task::spawn_blocking(move || Db::open(&path, opts))
        .await
        .context("storage task")?
        .with_context(|| format!("opening storage at {}", args.tsdb_path.display()))?;
    let db = Arc::new(db);
    let blocks = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || koban_tsdb::BlockStore::open(db))
            .await
            .context("block store task")?
            .context("opening blocks")?
    };
    let blocks = Arc::new(blocks);
    tracing::info!(blocks = blocks.stats().blocks, "storage ready");

    let cancel = CancellationToken::new();
    // Head cuts, compaction and retention run on their own thread.
    let maintenance = blocks
        .clone()
        .spawn(cancel.child_token())
        .context("starting storage maintenance")?;
    let reload_metrics = ReloadMetrics::default();
    let mut registry = selfmetrics::registry(&reload_metrics);
    registry.register_collector(Box::new(selfmetrics::TsdbCollector(
        db.clone(),
        blocks.clone(),
    )));
    let scrape_metrics = ScrapeMetrics::default();
    scrape_metrics.register(&mut registry);
    let registry = Arc::new(registry);

    let scrape = Arc::new(
        ScrapeManager::new(db.clone(), scrape_metrics, cancel.child_token())
            .with_timestamp_tolerance(timestamp_tolerance)
            .with_scrape_slots(args.scrape_slots),
    );
    let discovery = Arc::new(DiscoveryManager::new(Duration::from_secs(5)));
    let reloader = Arc::new(Reloader {
        source,
        scrape: scrape.clone(),
        discovery: discovery.clone(),
        current: RwLock::new(Arc::new(cfg.clone())),
        metrics: reload_metrics,
        last_ok: AtomicBool::new(false),
        last_time: Mutex::new(String::new()),
        lock: tokio::sync::Mutex::new(()),
        retention: retention_text,
        db: db.clone(),
        ooo_flag_ms,
    });
    reloader.apply(Ok(cfg)).context("applying configuration")?;

    // Discovery updates flow to the scrape manager; unchanged jobs are left alone.
    {
        let mut rx = discovery.subscribe();
        let scrape = scrape.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut last: HashMap<String, Vec<Labels>> = HashMap::new();
            loop {
                let snapshot = rx.borrow_and_update().clone();
                let mut seen = Vec::new();
                for (job, groups) in snapshot.iter() {
                    let merged = merge_groups(groups);
                    seen.push(job.clone());
                    if last.get(job) != Some(&merged) {
                        scrape.sync(job, merged.clone());
                        last.insert(job.clone(), merged);
                    }
                }
                last.retain(|k, _| seen.contains(k));
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = rx.changed() => if r.is_err() { break },
                }
            }
        });
    }

    let engine = Arc::new(koban_promql::Engine::new(koban_promql::EngineOpts {
        lookback_delta_ms: lookback.as_millis() as i64,
        timeout: query_timeout,
        max_samples: args.query_max_samples,
    }));
    let route_prefix = route_prefix(&args);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let backend = Arc::new(ServerBackend {
        db: db.clone(),
        blocks: blocks.clone(),
        scrape: scrape.clone(),
        registry,
        reloader: reloader.clone(),
        ready: AtomicBool::new(true),
        hostname,
        storage_path: args.tsdb_path.display().to_string(),
    });
    let state = Arc::new(koban_web::AppState {
        backend,
        engine,
        opts: koban_web::WebOptions {
            listen_address: args.listen_address.clone(),
            route_prefix,
            external_url: args.external_url.clone().unwrap_or_default(),
            enable_lifecycle: args.enable_lifecycle,
            enable_admin_api: args.enable_admin_api,
            flags: args.as_map(),
        },
        shutdown: cancel.clone(),
        start_time: chrono::Utc::now(),
    });
    let listener = tokio::net::TcpListener::bind(&args.listen_address)
        .await
        .with_context(|| format!("listening on {}", args.listen_address))?;
    tracing::info!(address = %args.listen_address, "listening");
    let web = tokio::spawn(koban_web::serve_on(listener, state, cancel.clone()));

    // Signals: SIGHUP reloads; SIGTERM and SIGINT stop.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = hup.recv() => { let _ = reloader.reload().await; }
            _ = term.recv() => { tracing::info!("received SIGTERM, exiting gracefully"); break; }
            _ = tokio::signal::ctrl_c() => { tracing::info!("received SIGINT, exiting gracefully"); break; }
            _ = cancel.cancelled() => { tracing::info!("shutdown requested over HTTP"); break; }
        }
    }
    cancel.cancel();
    discovery.stop();
    scrape.stop(false);
    match web.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "web server"),
        Err(e) => tracing::warn!(error = %e, "web task"),
        Ok(Ok(())) => {}
    }
    // Maintenance must be finished before the head and WAL close under it.
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || {
        if maintenance.join().is_err() {
            tracing::error!("storage maintenance thread panicked");
        }
        db2.close()
    })
    .await
    .context("closing storage")?
    .context("closing storage")?;
    tracing::info!("see you next time");
    Ok(())
}

/// Group labels merged under each target's labels.
fn merge_groups(groups: &[koban_discovery::TargetGroup]) -> Vec<Labels> {
    let mut out = Vec::new();
    for g in groups {
        for t in &g.targets {
            let mut b = g.labels.builder();
            for l in t.iter() {
                b.set(&l.name, &l.value);
            }
            out.push(b.labels());
        }
    }
    out
}

/// The path part of an external URL, for the default route prefix.
fn url_path(u: &str) -> String {
    let rest = u.split_once("://").map(|(_, r)| r).unwrap_or(u);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_url_path_is_the_default_prefix() {
        assert_eq!(url_path("http://example.com/prometheus/"), "/prometheus/");
        assert_eq!(url_path("http://example.com"), "");
    }

    #[test]
    fn group_labels_yield_to_target_labels() {
        let g = koban_discovery::TargetGroup {
            source: "0".into(),
            targets: vec![Labels::from_pairs([("__address__", "a:1"), ("env", "dev")])],
            labels: Labels::from_pairs([("env", "prod"), ("team", "x")]),
        };
        let m = merge_groups(&[g]);
        assert_eq!(
            m[0].to_string(),
            r#"{__address__="a:1", env="dev", team="x"}"#
        );
    }
}
