//! The web layer's view of the running server ([`koban_web::Backend`]).

use crate::server::Reloader;
use futures::future::BoxFuture;
use koban_model::Labels;
use koban_scrape::target::format_duration;
use koban_scrape::ScrapeManager;
use koban_storage::Queryable;
use koban_tsdb::Db;
use koban_web::{ActiveTarget, Backend, DroppedTarget, TargetMetadata, TsdbStatus};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct ServerBackend {
    pub db: Arc<Db>,
    pub blocks: Arc<koban_tsdb::BlockStore>,
    pub scrape: Arc<ScrapeManager>,
    pub registry: Arc<Registry>,
    pub reloader: Arc<Reloader>,
    pub ready: AtomicBool,
    pub hostname: String,
    pub storage_path: String,
}

fn label_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl ServerBackend {
    /// The scrape URL with a loopback host replaced by this machine's name, as Prometheus's globalUrl.
    fn global_url(&self, url: &str) -> String {
        for lo in ["//localhost:", "//127.0.0.1:", "//[::1]:"] {
            if let Some(i) = url.find(lo) {
                return format!("{}//{}:{}", &url[..i], self.hostname, &url[i + lo.len()..]);
            }
        }
        url.to_string()
    }
}

impl Backend for ServerBackend {
    fn storage(&self) -> Arc<dyn Queryable> {
        self.db.clone()
    }

    fn targets(&self) -> (Vec<ActiveTarget>, Vec<DroppedTarget>) {
        let active = self
            .scrape
            .active_targets()
            .into_iter()
            .map(|s| ActiveTarget {
                discovered_labels: label_map(&s.target.discovered_labels),
                labels: label_map(&s.target.labels),
                scrape_pool: s.pool,
                scrape_url: s.target.url.clone(),
                global_url: self.global_url(&s.target.url),
                last_error: s.status.last_error,
                last_scrape: s
                    .status
                    .last_scrape
                    .map(|t| {
                        chrono::DateTime::<chrono::Utc>::from(t)
                            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                    })
                    .unwrap_or_else(|| ZERO_TIME.to_string()),
                last_scrape_duration: s.status.last_duration.as_secs_f64(),
                health: s.status.health.as_str().to_string(),
                scrape_interval: format_duration(s.target.interval),
                scrape_timeout: format_duration(s.target.timeout),
            })
            .collect();
        let dropped = self
            .scrape
            .dropped_targets()
            .into_iter()
            .map(|(pool, d)| DroppedTarget {
                discovered_labels: label_map(&d.discovered_labels),
                scrape_pool: pool,
            })
            .collect();
        (active, dropped)
    }

    fn target_metadata(&self) -> Vec<TargetMetadata> {
        let mut out = Vec::new();
        for s in self.scrape.active_targets() {
            let target = label_map(&s.target.labels);
            for (metric, meta) in s.status.metadata.iter() {
                out.push(TargetMetadata {
                    target: target.clone(),
                    metric: metric.to_string(),
                    meta: (**meta).clone(),
                });
            }
        }
        out
    }

    fn config_yaml(&self) -> String {
        self.reloader.current().to_yaml()
    }

    fn tsdb_status(&self) -> TsdbStatus {
        let s = self.db.stats();
        let mut by_name = s.series_per_metric;
        by_name.truncate(10);
        TsdbStatus {
            num_series: s.num_series,
            num_label_pairs: 0,
            chunk_count: 0,
            min_time: if s.num_series == 0 { 0 } else { s.min_time },
            max_time: if s.num_series == 0 { 0 } else { s.max_time },
            series_count_by_metric_name: by_name,
            ..Default::default()
        }
    }

    fn metrics_text(&self) -> String {
        crate::selfmetrics::encode(&self.registry)
    }

    fn reload(&self) -> BoxFuture<'static, Result<(), String>> {
        let r = self.reloader.clone();
        Box::pin(async move { r.reload().await })
    }

    fn wal_replay(&self) -> (u32, u32, u32) {
        // The server answers only once the WAL is replayed: current = max.
        // After a head snapshot, replay started at its segment.
        match self.db.open_report().replay.segment_range {
            Some((min, max)) => (min, max, max),
            None => (0, 0, 0),
        }
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn delete_series(
        &self,
        matchers: Vec<Vec<koban_model::Matcher>>,
        start: i64,
        end: i64,
    ) -> Result<(), String> {
        self.blocks
            .delete_series(&matchers, start, end)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn build_info(&self) -> koban_web::BuildInfo {
        crate::build_info::get()
    }

    fn runtime_info(&self) -> serde_json::Value {
        let p = crate::process::ProcessStats::read();
        serde_json::json!({
            "CWD": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
            "reloadConfigSuccess": self.reloader.last_ok(),
            "lastConfigTime": self.reloader.last_time(),
            "corruptionCount": 0,
            "goroutineCount": 0,
            "GOMAXPROCS": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "GOMEMLIMIT": 0,
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": self.reloader.retention_text(),
            "storagePath": self.storage_path,
            "threads": p.threads,
            "openFiles": p.open_fds,
            "maxOpenFiles": p.max_fds,
            "rssBytes": p.rss_bytes,
        })
    }
}
