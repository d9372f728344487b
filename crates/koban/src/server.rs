//! The server: starts the components (storage, scrape, discovery and its
//! forwarding to scrape, the web layer; see [`crate::components`]), applies
//! configurations to them on reload (SIGHUP, `/-/reload`) and stops them on
//! shutdown (SIGTERM, SIGINT, `/-/quit`).

use crate::backend::ServerBackend;
use crate::cli::ServerArgs;
use crate::components::discovery::Discovery;
use crate::components::forward::Forward;
use crate::components::notifier::Notifier;
use crate::components::rules::{Rules, RulesFlags};
use crate::components::scrape::Scrape;
use crate::components::storage::Storage;
use crate::components::web::Web;
use crate::components::Components;
use crate::selfmetrics::{self, ReloadMetrics};
use anyhow::{anyhow, Context, Result};
use koban_config::Config;
use koban_scrape::{ScrapeManager, ScrapeMetrics};
use koban_tsdb::DbOptions;
use parking_lot::{Mutex, RwLock};
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
    /// Loads and validates the configuration, logging a warning for each
    /// key it sets that Koban ignores (see [`crate::ignored`]).
    fn load(&self) -> Result<Config> {
        let cfg = match self {
            ConfigSource::File(p) => koban_config::load_file(p).map_err(|e| anyhow!("{e}")),
            ConfigSource::Embedded(text) => {
                koban_config::load_str(text, std::path::Path::new("<embedded default config>"))
                    .map_err(|e| anyhow!("{e}"))
            }
        }?;
        crate::ignored::log_warnings(&cfg, &self.name());
        Ok(cfg)
    }

    fn name(&self) -> String {
        match self {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Embedded(_) => "embedded default".into(),
        }
    }
}

/// Loads configurations and applies them to the running components, for
/// the first load, SIGHUP and `/-/reload`. Keeps the configuration in
/// effect for `/api/v1/status/config` and the reload state for
/// `/api/v1/status/runtimeinfo` and the `koban_config_*` metrics.
pub struct Reloader {
    source: ConfigSource,
    components: Arc<Components>,
    current: RwLock<Arc<Config>>,
    metrics: ReloadMetrics,
    last_ok: AtomicBool,
    last_time: Mutex<String>,
    /// Serialises reloads, so `current` is the configuration applied last.
    lock: tokio::sync::Mutex<()>,
    retention: String,
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
        let res = match self.source.load() {
            Ok(cfg) => self.apply(Arc::new(cfg)).await,
            Err(e) => {
                self.record(false);
                Err(e)
            }
        };
        match &res {
            Ok(()) => {
                tracing::info!(source = %self.source.name(), "completed loading of configuration file");
            }
            Err(e) => {
                tracing::error!(source = %self.source.name(), error = %format!("{e:#}"), "error reloading config; keeping the old one");
            }
        }
        res.map_err(|e| format!("{e:#}"))
    }

    /// Applies a loaded configuration to every component, or to none.
    async fn apply(&self, cfg: Arc<Config>) -> Result<()> {
        let res = self.components.apply(&cfg).await;
        if res.is_ok() {
            *self.current.write() = cfg;
        }
        self.record(res.is_ok());
        res
    }

    fn record(&self, ok: bool) {
        self.last_ok.store(ok, Ordering::Relaxed);
        self.metrics.last_reload_successful.set(ok as i64);
        if ok {
            let now = chrono::Utc::now();
            self.metrics
                .last_reload_success_timestamp_seconds
                .set(now.timestamp_millis() as f64 / 1000.0);
            *self.last_time.lock() = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        }
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

/// Settings from the flags, checked before anything starts.
struct Flags {
    storage: StorageFlags,
    lookback: Duration,
    query_timeout: Duration,
    /// Zero with `--scrape.adjust-timestamps=false`.
    timestamp_tolerance: Duration,
    outage_tolerance: Duration,
    grace_period: Duration,
    resend_delay: Duration,
}

impl Flags {
    fn parse(args: &ServerArgs) -> Result<Flags> {
        if args.query_max_concurrency == 0 {
            return Err(anyhow!(
                "--query.max-concurrency: must be at least 1 (0 would queue every query forever)"
            ));
        }
        Ok(Flags {
            storage: storage_flags(args)?,
            lookback: duration_flag("query.lookback-delta", &args.lookback_delta)?,
            query_timeout: duration_flag("query.timeout", &args.query_timeout)?,
            timestamp_tolerance: match args.scrape_adjust_timestamps {
                true => duration_flag(
                    "scrape.timestamp-tolerance",
                    &args.scrape_timestamp_tolerance,
                )?,
                false => Duration::ZERO,
            },
            outage_tolerance: duration_flag(
                "rules.alert.for-outage-tolerance",
                &args.for_outage_tolerance,
            )?,
            grace_period: duration_flag("rules.alert.for-grace-period", &args.for_grace_period)?,
            resend_delay: duration_flag("rules.alert.resend-delay", &args.resend_delay)?,
        })
    }
}

/// Storage settings from the flags.
struct StorageFlags {
    opts: DbOptions,
    /// `--storage.tsdb.out-of-order-time-window` (ms; 0 when unset).
    ooo_flag_ms: i64,
    /// Retention as `/api/v1/status/runtimeinfo` shows it.
    retention_text: String,
}

fn storage_flags(args: &ServerArgs) -> Result<StorageFlags> {
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
    Ok(StorageFlags {
        opts: DbOptions {
            retention,
            retention_size,
            ..DbOptions::default()
        },
        ooo_flag_ms,
        retention_text,
    })
}

/// Starts every component, applies the configuration, serves until a
/// signal or `/-/quit`, then stops the components in reverse order.
async fn run(args: ServerArgs) -> Result<()> {
    let start_time = chrono::Utc::now();
    let source = config_source(&args);
    let cfg = Arc::new(source.load().context("loading configuration")?);
    let flags = Flags::parse(&args)?;
    let components = Arc::new(Components::new());
    let res = start_and_serve(&args, flags, source, cfg, start_time, &components).await;
    components.stop().await;
    res?;
    tracing::info!("see you next time");
    Ok(())
}

/// Starts the components onto `components` (which the caller stops,
/// whatever this returns), applies `cfg` and serves until shutdown is
/// requested.
async fn start_and_serve(
    args: &ServerArgs,
    flags: Flags,
    source: ConfigSource,
    cfg: Arc<Config>,
    start_time: chrono::DateTime<chrono::Utc>,
    components: &Arc<Components>,
) -> Result<()> {
    let storage = Storage::open(
        &args.tsdb_path,
        flags.storage.opts,
        &cfg,
        flags.storage.ooo_flag_ms,
        CancellationToken::new(),
    )
    .await?;
    let db = storage.db().clone();
    components.push(storage).await;

    let reload_metrics = ReloadMetrics::default();
    let mut registry = selfmetrics::registry(&reload_metrics, start_time);
    registry.register_collector(Box::new(selfmetrics::TsdbCollector(db.clone())));
    let scrape_metrics = ScrapeMetrics::default();
    scrape_metrics.register(&mut registry);
    let rule_metrics = koban_rules::RuleMetrics::default();
    rule_metrics.register(&mut registry);
    let notifier_metrics = koban_notifier::NotifierMetrics::default();
    notifier_metrics.register(&mut registry);
    let registry = Arc::new(registry);

    let scrape = Scrape::new(
        ScrapeManager::new(db.clone(), scrape_metrics, CancellationToken::new())
            .with_timestamp_tolerance(flags.timestamp_tolerance)
            .with_scrape_slots(args.scrape_slots),
    );
    let scrape_manager = scrape.manager().clone();
    components.push(scrape).await;
    let discovery = Discovery::start(Duration::from_secs(5));
    let forward = Forward::start(
        discovery.manager(),
        scrape_manager.clone(),
        CancellationToken::new(),
    );
    components.push(discovery).await;
    components.push(forward).await;

    let engine = Arc::new(koban_promql::Engine::new(koban_promql::EngineOpts {
        lookback_delta_ms: flags.lookback.as_millis() as i64,
        timeout: flags.query_timeout,
        max_samples: args.query_max_samples,
    }));
    // Before the rules, which send to it: it stops after them.
    let notifier = Notifier::start(
        koban_notifier::Options {
            queue_capacity: args.notification_queue_capacity,
            discovery_debounce: Duration::from_secs(5),
            drain_on_shutdown: args.drain_notification_queue,
        },
        notifier_metrics,
    );
    let alert_notifier = notifier.notifier().clone();
    components.push(notifier).await;
    let rules = Rules::new(
        engine.clone(),
        db.clone(),
        RulesFlags {
            outage_tolerance: flags.outage_tolerance,
            grace_period: flags.grace_period,
            resend_delay: flags.resend_delay,
            external_url: external_url(args),
            state_dir: args.tsdb_path.join("rules_state"),
        },
        rule_metrics,
        Some(alert_notifier.clone() as Arc<dyn koban_model::AlertSink>),
        CancellationToken::new(),
    );
    let rule_manager = rules.manager().clone();
    components.push(rules).await;

    let reloader = Arc::new(Reloader {
        source,
        components: components.clone(),
        current: RwLock::new(cfg.clone()),
        metrics: reload_metrics,
        last_ok: AtomicBool::new(false),
        last_time: Mutex::new(String::new()),
        lock: tokio::sync::Mutex::new(()),
        retention: flags.storage.retention_text,
    });
    reloader
        .apply(cfg)
        .await
        .context("applying configuration")?;

    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let backend = Arc::new(ServerBackend {
        db,
        scrape: scrape_manager,
        registry,
        reloader: reloader.clone(),
        ready: AtomicBool::new(true),
        hostname,
        storage_path: args.tsdb_path.display().to_string(),
        rules: rule_manager,
        notifier: alert_notifier,
    });
    // Cancelled by `/-/quit`; SIGTERM and SIGINT stop the same way.
    let shutdown = CancellationToken::new();
    let state = Arc::new(koban_web::AppState {
        backend,
        engine,
        query_slots: Arc::new(tokio::sync::Semaphore::new(
            args.query_max_concurrency
                .min(tokio::sync::Semaphore::MAX_PERMITS),
        )),
        opts: koban_web::WebOptions {
            listen_address: args.listen_address.clone(),
            route_prefix: route_prefix(args),
            external_url: args.external_url.clone().unwrap_or_default(),
            enable_lifecycle: args.enable_lifecycle,
            enable_admin_api: args.enable_admin_api,
            flags: args.as_map(),
        },
        shutdown: shutdown.clone(),
        start_time,
    });
    let listener = bind(&args.listen_address).await?;
    tracing::info!(address = %args.listen_address, "listening");
    components
        .push(Web::start(listener, state, CancellationToken::new()))
        .await;

    // Signals: SIGHUP reloads; SIGTERM and SIGINT stop.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = hup.recv() => { let _ = reloader.reload().await; }
            _ = term.recv() => { tracing::info!("received SIGTERM, exiting gracefully"); break; }
            _ = tokio::signal::ctrl_c() => { tracing::info!("received SIGINT, exiting gracefully"); break; }
            _ = shutdown.cancelled() => { tracing::info!("shutdown requested over HTTP"); break; }
        }
    }
    Ok(())
}

/// Binds `--web.listen-address`.
async fn bind(addr: &str) -> Result<tokio::net::TcpListener> {
    let mut err = None;
    for a in listen_candidates(addr) {
        match tokio::net::TcpListener::bind(&a).await {
            Ok(l) => return Ok(l),
            Err(e) => err = Some(e),
        }
    }
    let e = err.unwrap_or_else(|| std::io::Error::other("no address to bind"));
    Err(e).with_context(|| format!("--web.listen-address: listening on {addr}"))
}

/// Addresses to try, in order, for a listen address. An empty host
/// (`:9090`, which Prometheus accepts) means every interface: IPv6 and
/// IPv4 where the system has IPv6 (Linux binds both through `[::]`), else
/// IPv4.
fn listen_candidates(addr: &str) -> Vec<String> {
    match addr.strip_prefix(':') {
        Some(port) => vec![format!("[::]:{port}"), format!("0.0.0.0:{port}")],
        None => vec![addr.to_string()],
    }
}

/// `--web.external-url`, or Prometheus's default: `http://HOSTNAME:PORT`
/// plus the route prefix.
fn external_url(args: &ServerArgs) -> String {
    if let Some(u) = &args.external_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let port = args.listen_address.rsplit(':').next().unwrap_or("9090");
    let prefix = koban_web::normalize_prefix(&route_prefix(args));
    format!("http://{host}:{port}{prefix}")
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
    fn an_empty_listen_host_means_every_interface() {
        assert_eq!(listen_candidates(":9090"), ["[::]:9090", "0.0.0.0:9090"]);
        assert_eq!(listen_candidates("127.0.0.1:9090"), ["127.0.0.1:9090"]);
    }

    #[tokio::test]
    async fn a_listen_address_without_host_binds() {
        let l = bind(":0").await.unwrap();
        assert!(l.local_addr().unwrap().ip().is_unspecified());
    }

    #[test]
    fn external_url_path_is_the_default_prefix() {
        assert_eq!(url_path("http://example.com/prometheus/"), "/prometheus/");
        assert_eq!(url_path("http://example.com"), "");
    }
}
