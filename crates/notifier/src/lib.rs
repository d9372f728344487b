//! Delivers alerts to Alertmanagers, as Prometheus's notifier does, through
//! [`Notifier`], the [`koban_model::AlertSink`] the rule manager sends to.
//!
//! - **Configuration**: `alerting.alertmanagers` entries (each a *set*,
//!   named `config-0`, `config-1`, ... as Prometheus) with their discovery
//!   (`static_configs`, `file_sd_configs`, `dns_sd_configs`, through
//!   `koban_discovery`), `scheme`, `path_prefix`, `timeout`, `api_version`
//!   (`v2` only), HTTP client settings, `relabel_configs` (on the
//!   discovered targets, with `__address__`, `__scheme__` and
//!   `__alerts_path__`) and `alert_relabel_configs`; the global
//!   `alerting.alert_relabel_configs`; `global.external_labels`, attached
//!   to every alert that lacks them before any alert relabelling.
//! - **Queue**: one queue of `--alertmanager.notification-queue-capacity`
//!   alerts; when full, the oldest are dropped and counted. Each
//!   Alertmanager reads it at its own pace (see the `queue` module), in
//!   batches of at most 64, so a slow or dead Alertmanager never delays
//!   the others; each post has its set's timeout. Failed posts are
//!   counted, not retried (the rule manager re-sends active alerts).
//! - **Wire format**: `POST <scheme>://<address><path_prefix>/api/v2/alerts`
//!   with Alertmanager's `postableAlerts` JSON (`labels`, `annotations`,
//!   `startsAt`, `endsAt`, `generatorURL`; times in RFC 3339 with
//!   milliseconds, UTC).
//! - **Metrics**: [`NotifierMetrics`], Prometheus's
//!   `prometheus_notifications_*` as `koban_notifications_*` (the latency
//!   is a histogram rather than a summary).
//! - **No Alertmanager configured**: [`AlertSink::send`] drops alerts at
//!   once, counting them in `koban_notifications_dropped_total` as
//!   Prometheus does, without queueing them.

mod config;
mod metrics;
mod notifier;
mod queue;
mod send;
mod targets;

pub use config::Prepared;
pub use koban_model::AlertSink;
pub use metrics::{AlertmanagerLabel, NotifierMetrics};
pub use notifier::{AlertmanagerList, Notifier, Options};
pub use send::MAX_BATCH;

/// A configuration the notifier cannot run.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// Prometheus 3's wording.
    #[error("alerting.alertmanagers {set}: expected Alertmanager api version to be one of [v2] but got {version}")]
    ApiVersion { set: String, version: String },
    #[error("alerting.alertmanagers {set}: building the HTTP client")]
    HttpClient {
        set: String,
        #[source]
        source: koban_httpclient::Error,
    },
}

#[cfg(test)]
mod tests;
