//! Koban's HTTP surface: the Prometheus HTTP API v1 (same JSON), the
//! lifecycle endpoints (`/-/healthy`, `/-/ready`, `/-/reload`, `/-/quit`),
//! Koban's own `/metrics`, `/federate` and the embedded UI.
//!
//! The web crate knows no concrete storage or scrape type: the binary hands
//! it a [`Backend`] and a PromQL [`Engine`]. Errors from every layer are
//! mapped to HTTP status codes in one place, [`api::ApiError`].

pub mod api;
pub mod json;
pub mod lenient;
pub mod params;
pub mod rules;
pub mod selector;

use axum::routing::{get, post};
use axum::Router;
use futures::future::BoxFuture;
use koban_promql::Engine;
use koban_storage::{Metadata, Queryable};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Errors starting the web server.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("http server: {0}")]
    Serve(std::io::Error),
}

/// Runtime options of the web layer, from the command line.
#[derive(Debug, Clone)]
pub struct WebOptions {
    pub listen_address: String,
    /// Path prefix every route is served under, normalised: "" or "/x" (no trailing slash).
    pub route_prefix: String,
    pub external_url: String,
    pub enable_lifecycle: bool,
    pub enable_admin_api: bool,
    /// Flag values as given, for `/api/v1/status/flags`.
    pub flags: BTreeMap<String, String>,
}

/// One active target as `/api/v1/targets` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveTarget {
    pub discovered_labels: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub scrape_pool: String,
    pub scrape_url: String,
    pub global_url: String,
    pub last_error: String,
    /// RFC 3339 with nanoseconds; "0001-01-01T00:00:00Z" before the first scrape.
    pub last_scrape: String,
    pub last_scrape_duration: f64,
    /// "up", "down" or "unknown".
    pub health: String,
    pub scrape_interval: String,
    pub scrape_timeout: String,
}

/// A target dropped by relabelling, kept for the API with its discovered labels.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DroppedTarget {
    pub discovered_labels: BTreeMap<String, String>,
    pub scrape_pool: String,
}

/// Metadata of one metric on one target, for `/api/v1/targets/metadata`.
#[derive(Debug, Clone)]
pub struct TargetMetadata {
    pub target: BTreeMap<String, String>,
    pub metric: String,
    pub meta: Metadata,
}

/// Head statistics for `/api/v1/status/tsdb`.
#[derive(Debug, Clone, Default)]
pub struct TsdbStatus {
    pub num_series: u64,
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    pub min_time: i64,
    pub max_time: i64,
    /// (metric name, series count), highest first.
    pub series_count_by_metric_name: Vec<(String, u64)>,
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

/// How the binary was built, for `/api/v1/status/buildinfo`, with
/// Prometheus's field names (`goVersion` holds the Rust compiler's version).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub version: String,
    /// Git commit, or "unknown" outside a checkout.
    pub revision: String,
    pub branch: String,
    /// `user@host`.
    pub build_user: String,
    /// `YYYYMMDD-HH:MM:SS` (UTC).
    pub build_date: String,
    /// `rustc --version`.
    pub go_version: String,
}

/// What the web layer needs from the rest of Koban. Implemented by the binary,
/// called from request handlers; every method must be cheap or run its heavy
/// work off the async workers itself.
pub trait Backend: Send + Sync + 'static {
    /// The storage queries and metadata APIs read from.
    fn storage(&self) -> Arc<dyn Queryable>;
    /// Scrape targets: (active, dropped).
    fn targets(&self) -> (Vec<ActiveTarget>, Vec<DroppedTarget>);
    /// Metadata per target (for `/api/v1/targets/metadata` and `/api/v1/metadata`).
    fn target_metadata(&self) -> Vec<TargetMetadata>;
    /// The loaded configuration as YAML.
    fn config_yaml(&self) -> String;
    fn tsdb_status(&self) -> TsdbStatus;
    /// Koban's own metrics in the text exposition format.
    fn metrics_text(&self) -> String;
    /// Reloads the configuration; Err carries the reason shown to the caller.
    fn reload(&self) -> BoxFuture<'static, Result<(), String>>;
    /// True once storage is open and replayed.
    fn is_ready(&self) -> bool;
    /// Runtime information for `/api/v1/status/runtimeinfo`: an object with
    /// Prometheus's fields (`CWD`, `reloadConfigSuccess`, `lastConfigTime`,
    /// `corruptionCount`, `goroutineCount`, `GOMAXPROCS`, `GOMEMLIMIT`,
    /// `GOGC`, `GODEBUG`, `storageRetention`), which clients read, and
    /// Koban's own (`threads`, `openFiles`, `maxOpenFiles`, `rssBytes`,
    /// `storagePath`). The handler adds `startTime` and `uptimeSeconds`.
    fn runtime_info(&self) -> serde_json::Value;
    /// How the binary was built. The default knows only the version.
    fn build_info(&self) -> BuildInfo {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            ..BuildInfo::default()
        }
    }
    /// WAL replay progress for `/api/v1/status/walreplay`: (first segment,
    /// last segment, segment being replayed). The default, (0, 0, 0), means
    /// nothing to replay.
    fn wal_replay(&self) -> (u32, u32, u32) {
        (0, 0, 0)
    }
    /// Deletes series matching any of `selectors` in [start, end] (admin
    /// API), in memory and on disk. Blocking: called off the async workers.
    fn delete_series(
        &self,
        _matchers: Vec<Vec<koban_model::Matcher>>,
        _start: i64,
        _end: i64,
    ) -> Result<(), String> {
        Err("deleting series is not supported by this storage yet".into())
    }
    /// Rewrites the blocks holding deleted data without it (admin API).
    /// Blocking: called off the async workers.
    fn clean_tombstones(&self) -> Result<(), String> {
        Err("cleaning tombstones is not supported by this storage yet".into())
    }
    /// Writes a snapshot of the storage (blocks hard-linked, plus the
    /// head unless `skip_head`) and returns its directory name under
    /// `<data>/snapshots/` (admin API). Blocking: called off the async
    /// workers.
    fn snapshot(&self, _skip_head: bool) -> Result<String, String> {
        Err("snapshots are not supported by this storage yet".into())
    }
    /// Alertmanagers for `/api/v1/alertmanagers`: (URLs alerts are posted
    /// to, URLs of discovered ones that relabelling dropped). The default
    /// has none.
    fn alertmanagers(&self) -> (Vec<String>, Vec<String>) {
        (Vec::new(), Vec::new())
    }
    /// `global.external_labels` of the configuration in effect, which
    /// `/federate` adds to series lacking them. The default has none.
    fn external_labels(&self) -> koban_model::Labels {
        koban_model::Labels::default()
    }
    /// Every rule group with its rules' state and active alerts (annotations
    /// rendered), in the order the config's rule files list them; for
    /// `/api/v1/rules` and the Rules and Alerts pages. The default (no rules
    /// engine) is empty. Called per request: a snapshot, not a live view.
    fn rule_groups(&self) -> Vec<rules::RuleGroupStatus> {
        Vec::new()
    }
    /// Every active (pending or firing) alert of every alerting rule, for
    /// `/api/v1/alerts`. The default is empty.
    fn alerts(&self) -> Vec<rules::AlertStatus> {
        Vec::new()
    }
}

/// Shared state of every handler.
pub struct AppState {
    pub backend: Arc<dyn Backend>,
    pub engine: Arc<Engine>,
    /// Admission of PromQL evaluations: one permit per running query
    /// (`--query.max-concurrency` permits). Queries over the limit wait
    /// for a permit; the wait counts against the query's timeout.
    pub query_slots: Arc<tokio::sync::Semaphore>,
    pub opts: WebOptions,
    /// Cancelled by `/-/quit`; the binary shuts down when it fires.
    pub shutdown: CancellationToken,
    /// When the server process started (`startTime`, uptime).
    pub start_time: chrono::DateTime<chrono::Utc>,
}

/// Normalises a `--web.route-prefix` value: "" for "/", otherwise "/x" without trailing slash.
pub fn normalize_prefix(p: &str) -> String {
    let t = p.trim_matches('/');
    if t.is_empty() {
        String::new()
    } else {
        format!("/{t}")
    }
}

/// Builds the router with every route under the configured prefix.
pub fn router(state: Arc<AppState>) -> Router {
    let prefix = normalize_prefix(&state.opts.route_prefix);
    let p = |path: &str| format!("{prefix}{path}");
    let mut r = Router::new()
        .route(
            &p("/-/healthy"),
            get(api::lifecycle::healthy).head(api::lifecycle::healthy),
        )
        .route(
            &p("/-/ready"),
            get(api::lifecycle::ready).head(api::lifecycle::ready),
        )
        .route(
            &p("/-/reload"),
            post(api::lifecycle::reload).put(api::lifecycle::reload),
        )
        .route(
            &p("/-/quit"),
            post(api::lifecycle::quit).put(api::lifecycle::quit),
        )
        .route(&p("/metrics"), get(api::lifecycle::metrics))
        .route(&p("/federate"), get(api::federate::federate))
        .route(&p("/graph"), get(api::ui::index))
        .route(&p("/static/{*path}"), get(api::ui::static_file))
        .route(&p("/vendor/{*path}"), get(api::ui::vendor_file))
        .route(&p("/"), get(api::ui::index))
        .nest(&p("/api/v1"), api::v1_routes());
    // Prometheus's page paths (bookmarks, links in runbooks) open the same pages here.
    for (path, page) in [
        ("/query", "query"),
        ("/alerts", "alerts"),
        ("/rules", "rules"),
        ("/targets", "targets"),
        ("/service-discovery", "service-discovery"),
        ("/status", "status"),
        ("/tsdb-status", "status"),
        ("/flags", "status"),
        ("/config", "status"),
    ] {
        let to = format!("./#/{page}");
        r = r.route(
            &p(path),
            get(move || async move { axum::response::Redirect::to(&to) }),
        );
    }
    if !prefix.is_empty() {
        // The UI uses relative links, so its home is `<prefix>/`; `/` and `<prefix>` redirect there.
        let home = p("/");
        let to = home.clone();
        r = r.route(
            "/",
            get(move || async move { axum::response::Redirect::to(&to) }),
        );
        r = r.route(
            &prefix,
            get(move || async move { axum::response::Redirect::to(&home) }),
        );
    }
    r.fallback(api::ui::not_found).with_state(state)
}

/// Serves until `cancel` fires, then shuts down gracefully.
pub async fn serve(state: Arc<AppState>, cancel: CancellationToken) -> Result<(), WebError> {
    let addr = state.opts.listen_address.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| WebError::Listen {
            addr: addr.clone(),
            source,
        })?;
    serve_on(listener, state, cancel).await
}

/// Serves on an already bound listener (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    cancel: CancellationToken,
) -> Result<(), WebError> {
    // Request lines with raw `"` are accepted, as by Prometheus.
    let app = router(state).into_make_service();
    axum::serve(lenient::LenientListener(listener), app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
        .map_err(WebError::Serve)
}
