//! Koban's own metrics registry: build info, config reload state, process
//! figures, and the collectors each crate provides.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Reload state gauges, set by the reloader.
#[derive(Clone, Default)]
pub struct ReloadMetrics {
    pub last_reload_successful: Gauge,
    pub last_reload_success_timestamp_seconds: Gauge<f64, AtomicU64>,
}

/// Creates the registry with build info, reload state and process metrics
/// registered; `start_time` is when the process started
/// (`process_start_time_seconds`).
pub fn registry(reload: &ReloadMetrics, start_time: chrono::DateTime<chrono::Utc>) -> Registry {
    let mut r = Registry::default();
    let b = crate::build_info::get();
    r.register(
        "koban_build",
        "A metric with a constant '1' value labeled by version, revision, branch, goversion (the Rust compiler's), goos and goarch from which Koban was built",
        Info::new(vec![
            ("version".to_string(), b.version),
            ("revision".to_string(), b.revision),
            ("branch".to_string(), b.branch),
            ("goversion".to_string(), b.go_version),
            ("goos".to_string(), std::env::consts::OS.to_string()),
            ("goarch".to_string(), go_arch().to_string()),
        ]),
    );
    r.register(
        "koban_config_last_reload_successful",
        "Whether the last configuration reload attempt was successful",
        reload.last_reload_successful.clone(),
    );
    r.register(
        "koban_config_last_reload_success_timestamp_seconds",
        "Timestamp of the last successful configuration reload",
        reload.last_reload_success_timestamp_seconds.clone(),
    );
    r.register_collector(Box::new(ProcessCollector {
        start_time_seconds: start_time.timestamp_millis() as f64 / 1000.0,
    }));
    r
}

/// The architecture as Go names it (the `goarch` label dashboards group by).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// `process_cpu_seconds_total`, `process_resident_memory_bytes` and friends from /proc.
#[derive(Debug)]
struct ProcessCollector {
    start_time_seconds: f64,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return Ok(());
        };
        // Fields after the command name (which may hold spaces) start at ") ".
        let Some(rest) = stat.rfind(") ").map(|i| &stat[i + 2..]) else {
            return Ok(());
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        // Linux reports CPU time in USER_HZ ticks (100 on every supported architecture) and RSS in 4 KiB pages.
        let ticks = 100.0;
        let cpu = (num(11) + num(12)) / ticks;
        let rss = num(21) * 4096.0;
        let vsize = num(20);
        let c = ConstCounter::new(cpu);
        c.encode(enc.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            c.metric_type(),
        )?)?;
        let g = ConstGauge::new(rss);
        g.encode(enc.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            None,
            g.metric_type(),
        )?)?;
        let g = ConstGauge::new(vsize);
        g.encode(enc.encode_descriptor(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            None,
            g.metric_type(),
        )?)?;
        let g = ConstGauge::new(self.start_time_seconds);
        g.encode(enc.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            None,
            g.metric_type(),
        )?)?;
        let p = crate::process::ProcessStats::read();
        if let Some(n) = p.open_fds {
            let g = ConstGauge::new(n as i64);
            g.encode(enc.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Some(n) = p.max_fds {
            let g = ConstGauge::new(n as i64);
            g.encode(enc.encode_descriptor(
                "process_max_fds",
                "Maximum number of open file descriptors",
                None,
                g.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Encodes the registry in the text format.
pub fn encode(r: &Registry) -> String {
    let mut s = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut s, r) {
        tracing::error!(error = %e, "encoding own metrics");
    }
    s
}

/// The TSDB's head figures, read at each scrape of `/metrics`.
#[derive(Debug)]
pub struct TsdbCollector(pub std::sync::Arc<koban_tsdb::Db>);

impl Collector for TsdbCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all = self.0.stats();
        let s = all.head;
        let c = ConstCounter::new(s.samples_appended);
        c.encode(enc.encode_descriptor(
            "koban_tsdb_head_samples_appended",
            "Total number of appended samples",
            None,
            c.metric_type(),
        )?)?;
        let c = ConstCounter::new(s.series_created);
        c.encode(enc.encode_descriptor(
            "koban_tsdb_head_series_created",
            "Total number of series created in the head",
            None,
            c.metric_type(),
        )?)?;
        for (name, help, v) in [
            (
                "koban_tsdb_out_of_order_samples",
                "Total number of out of order samples refused (no out-of-order window)",
                s.out_of_order,
            ),
            (
                "koban_tsdb_out_of_bound_samples",
                "Total number of samples refused as older than the head's append bound",
                s.out_of_bounds,
            ),
            (
                "koban_tsdb_too_old_samples",
                "Total number of samples refused as older than the out-of-order window",
                s.too_old,
            ),
            (
                "koban_tsdb_duplicate_samples",
                "Total number of samples refused because another value exists at that timestamp",
                s.duplicates,
            ),
            (
                "koban_tsdb_head_out_of_order_samples_appended",
                "Total number of out of order samples appended",
                s.ooo_appended,
            ),
        ] {
            let c = ConstCounter::new(v);
            c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let g = ConstGauge::new(s.num_series as i64);
        g.encode(enc.encode_descriptor(
            "koban_tsdb_head_series",
            "Total number of series in the head block",
            None,
            g.metric_type(),
        )?)?;
        let g = ConstGauge::new(self.0.open_report().duration.as_secs_f64());
        g.encode(enc.encode_descriptor(
            "koban_tsdb_data_replay_duration_seconds",
            "Time taken to rebuild the head on start (head snapshot load and WAL replay)",
            None,
            g.metric_type(),
        )?)?;
        let b = all.blocks;
        let g = ConstGauge::new(b.blocks as i64);
        g.encode(enc.encode_descriptor(
            "koban_tsdb_blocks_loaded",
            "Number of currently loaded data blocks",
            None,
            g.metric_type(),
        )?)?;
        let g = ConstGauge::new(b.bytes as i64);
        g.encode(enc.encode_descriptor(
            "koban_tsdb_storage_blocks_bytes",
            "The number of bytes that are currently used for local storage by all blocks",
            None,
            g.metric_type(),
        )?)?;
        for (name, help, v) in [
            (
                "koban_tsdb_head_cuts",
                "Blocks written from the head",
                b.head_cuts,
            ),
            (
                "koban_tsdb_head_cut_failures",
                "Head cuts that failed",
                b.head_cut_failures,
            ),
            ("koban_tsdb_compactions", "Compactions run", b.compactions),
            (
                "koban_tsdb_compactions_failed",
                "Compactions that failed",
                b.compaction_failures,
            ),
            (
                "koban_tsdb_time_retentions",
                "Blocks deleted by time retention",
                b.retention_deletions_time,
            ),
            (
                "koban_tsdb_size_retentions",
                "Blocks deleted by size retention",
                b.retention_deletions_size,
            ),
            (
                "koban_tsdb_corrupted_blocks",
                "Blocks set aside as corrupt when opening",
                b.corrupted_blocks,
            ),
        ] {
            let c = ConstCounter::new(v);
            c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        if s.num_series > 0 {
            let g = ConstGauge::new(s.min_time);
            g.encode(enc.encode_descriptor(
                "koban_tsdb_head_min_time",
                "Minimum time bound of the head block",
                None,
                g.metric_type(),
            )?)?;
            let g = ConstGauge::new(s.max_time);
            g.encode(enc.encode_descriptor(
                "koban_tsdb_head_max_time",
                "Maximum timestamp of the head block",
                None,
                g.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
