//! The notifier's own metrics, as Prometheus's `prometheus_notifications_*`
//! under `koban_notifications_*` names. Per-Alertmanager series are
//! labelled `alertmanager` with the URL alerts are posted to, created when
//! the Alertmanager is discovered and removed when it goes away.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `alertmanager` label of per-Alertmanager series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertmanagerLabel {
    pub alertmanager: String,
}

/// Builds latency histograms with buckets from 5 ms to 20 s.
#[derive(Clone, Copy, Debug, Default)]
pub struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
        ])
    }
}

/// Counters and gauges of alert delivery. Cloning shares them.
#[derive(Clone)]
pub struct NotifierMetrics {
    /// Alerts posted, per Alertmanager (successful or not, as Prometheus).
    pub sent: Family<AlertmanagerLabel, Counter>,
    /// Alerts in posts that failed, per Alertmanager.
    pub errors: Family<AlertmanagerLabel, Counter>,
    /// Alerts dropped: queue overflow, or no Alertmanager configured.
    pub dropped: Counter,
    pub queue_length: Gauge,
    pub queue_capacity: Gauge,
    /// Alertmanagers alerts are being sent to.
    pub alertmanagers_discovered: Gauge,
    /// Time per post, per Alertmanager.
    pub latency: Family<AlertmanagerLabel, Histogram, LatencyBuckets>,
}

impl Default for NotifierMetrics {
    fn default() -> Self {
        NotifierMetrics {
            sent: Family::default(),
            errors: Family::default(),
            dropped: Counter::default(),
            queue_length: Gauge::default(),
            queue_capacity: Gauge::default(),
            alertmanagers_discovered: Gauge::default(),
            latency: Family::new_with_constructor(LatencyBuckets),
        }
    }
}

impl NotifierMetrics {
    /// Registers every metric under `koban_notifications_` names.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "koban_notifications_sent",
            "Total number of alerts sent",
            self.sent.clone(),
        );
        r.register(
            "koban_notifications_errors",
            "Total number of sent alerts affected by errors",
            self.errors.clone(),
        );
        r.register(
            "koban_notifications_dropped",
            "Total number of alerts dropped due to errors when sending to Alertmanager",
            self.dropped.clone(),
        );
        r.register(
            "koban_notifications_queue_length",
            "The number of alert notifications in the queue",
            self.queue_length.clone(),
        );
        r.register(
            "koban_notifications_queue_capacity",
            "The capacity of the alert notifications queue",
            self.queue_capacity.clone(),
        );
        r.register(
            "koban_notifications_alertmanagers_discovered",
            "The number of alertmanagers discovered and active",
            self.alertmanagers_discovered.clone(),
        );
        r.register(
            "koban_notifications_latency_seconds",
            "Latency of alert notification posts",
            self.latency.clone(),
        );
    }

    pub(crate) fn label(url: &str) -> AlertmanagerLabel {
        AlertmanagerLabel {
            alertmanager: url.to_string(),
        }
    }

    /// Creates the series of an Alertmanager at zero.
    pub(crate) fn add_alertmanager(&self, url: &str) {
        let l = Self::label(url);
        let _ = self.sent.get_or_create(&l);
        let _ = self.errors.get_or_create(&l);
    }

    /// Removes the series of an Alertmanager that went away.
    pub(crate) fn remove_alertmanager(&self, url: &str) {
        let l = Self::label(url);
        self.sent.remove(&l);
        self.errors.remove(&l);
        self.latency.remove(&l);
    }
}
