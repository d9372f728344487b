//! The scrape crate's own metrics, registered into the binary's registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabel {
    pub scrape_job: String,
}

/// Counters and gauges of scraping, per pool.
#[derive(Clone, Default)]
pub struct ScrapeMetrics {
    /// Active targets per pool.
    pub targets: Family<PoolLabel, Gauge>,
    /// Failed scrapes per pool.
    pub scrape_failures: Family<PoolLabel, Counter>,
    /// Scrapes per pool.
    pub scrapes: Family<PoolLabel, Counter>,
    /// Samples refused by storage (out of order, duplicates) per pool.
    pub samples_refused: Family<PoolLabel, Counter>,
    /// Samples refused as out of order (all pools).
    pub sample_out_of_order: Counter,
    /// Samples refused for a different value at a stored timestamp (all pools).
    pub sample_duplicate_timestamp: Counter,
    /// Samples refused as out of bounds or too old (all pools).
    pub sample_out_of_bounds: Counter,
}

impl ScrapeMetrics {
    /// Registers every metric under `koban_target_` / `koban_scrape_` names.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "koban_target_scrape_pool_targets",
            "Current number of targets in each scrape pool",
            self.targets.clone(),
        );
        r.register(
            "koban_target_scrape_failures",
            "Failed scrapes per scrape pool",
            self.scrape_failures.clone(),
        );
        r.register(
            "koban_target_scrapes",
            "Scrapes per scrape pool",
            self.scrapes.clone(),
        );
        r.register(
            "koban_target_scrapes_samples_refused",
            "Samples refused by storage (out of order or duplicate) per scrape pool",
            self.samples_refused.clone(),
        );
        r.register(
            "koban_target_scrapes_sample_out_of_order",
            "Samples refused by storage as out of order",
            self.sample_out_of_order.clone(),
        );
        r.register(
            "koban_target_scrapes_sample_duplicate_timestamp",
            "Samples refused by storage for a different value at a timestamp it has",
            self.sample_duplicate_timestamp.clone(),
        );
        r.register(
            "koban_target_scrapes_sample_out_of_bounds",
            "Samples refused by storage as out of bounds (too old or too far in the future)",
            self.sample_out_of_bounds.clone(),
        );
    }

    pub fn pool(job: &str) -> PoolLabel {
        PoolLabel {
            scrape_job: job.to_string(),
        }
    }
}
