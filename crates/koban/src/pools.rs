//! From prometheus.yml's `scrape_configs` to the scrape crate's pool settings.
//! Settings Koban cannot honour yet are refused here, naming the key.

use anyhow::{bail, Result};
use koban_config::{Config, ScrapeConfig};
use koban_scrape::PoolConfig;
use std::time::Duration;

/// Pool settings of one scrape config.
pub fn pool_config(sc: &ScrapeConfig) -> Result<PoolConfig> {
    let job = &sc.job_name;
    for (key, set) in [
        ("enable_compression: false", !sc.enable_compression),
        (
            "metric_name_validation_scheme: utf8 (Koban validates legacy names)",
            sc.metric_name_validation_scheme == "utf8",
        ),
        (
            "scrape_protocols other than the default list",
            sc.scrape_protocols.as_slice() != koban_config::ScrapeProtocol::DEFAULT,
        ),
    ] {
        if set {
            bail!("job {job:?}: {key} is not supported by Koban yet");
        }
    }
    Ok(PoolConfig {
        job_name: job.clone(),
        interval: Duration::from_millis(sc.scrape_interval.as_millis()),
        timeout: Duration::from_millis(sc.scrape_timeout.as_millis()),
        metrics_path: sc.metrics_path.clone(),
        scheme: sc.scheme.clone(),
        params: sc.params.clone(),
        honor_labels: sc.honor_labels,
        honor_timestamps: sc.honor_timestamps,
        track_timestamps_staleness: sc.track_timestamps_staleness,
        relabel_configs: sc.relabel_configs.clone(),
        metric_relabel_configs: sc.metric_relabel_configs.clone(),
        sample_limit: sc.sample_limit as usize,
        target_limit: sc.target_limit as usize,
        label_limit: sc.label_limit as usize,
        label_name_length_limit: sc.label_name_length_limit as usize,
        label_value_length_limit: sc.label_value_length_limit as usize,
        body_size_limit: sc.body_size_limit.0,
        keep_dropped_targets: sc.keep_dropped_targets as usize,
        http: sc.http_client_config(),
    })
}

/// Pool settings of every scrape config.
pub fn pool_configs(cfg: &Config) -> Result<Vec<PoolConfig>> {
    if cfg.global.metric_name_validation_scheme == "utf8" {
        bail!("global.metric_name_validation_scheme: utf8 is not supported by Koban yet (Koban validates legacy names)");
    }
    cfg.scrape_configs.iter().map(pool_config).collect()
}
