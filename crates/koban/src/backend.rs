//! The web layer's view of the running server ([`koban_web::Backend`]).

use crate::server::Reloader;
use futures::future::BoxFuture;
use koban_model::Labels;
use koban_scrape::target::format_duration;
use koban_scrape::ScrapeManager;
use koban_storage::Queryable;
use koban_tsdb::Db;
use koban_web::rules as web_rules;
use koban_web::{ActiveTarget, Backend, DroppedTarget, TargetMetadata, TsdbStatus};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct ServerBackend {
    pub db: Arc<Db>,
    pub scrape: Arc<ScrapeManager>,
    pub registry: Arc<Registry>,
    pub reloader: Arc<Reloader>,
    pub ready: AtomicBool,
    pub hostname: String,
    pub storage_path: String,
    /// The rule manager, for the rules and alerts APIs.
    pub rules: Arc<koban_rules::Manager>,
    /// The notifier, for `/api/v1/alertmanagers`.
    pub notifier: Arc<koban_notifier::Notifier>,
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

fn alert_status(a: &koban_rules::AlertStatus) -> web_rules::AlertStatus {
    web_rules::AlertStatus {
        labels: label_map(&a.labels),
        annotations: label_map(&a.annotations),
        state: a.state,
        active_at: Some(web_rules::from_unix_ms(a.active_at_ms)),
        keep_firing_since: a.keep_firing_since_ms.map(web_rules::from_unix_ms),
        value: a.value,
    }
}

/// A rule's status for the API: its labels are the group's under its own.
fn rule_status(
    group_labels: &BTreeMap<String, String>,
    r: &koban_rules::RuleStatus,
) -> web_rules::RuleStatus {
    use koban_rules::spec::RuleKind;
    let mut labels = group_labels.clone();
    labels.extend(r.spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let last_evaluation = r.last_evaluation_ms.map(web_rules::from_unix_ms);
    let last_error = r.last_error.clone().unwrap_or_default();
    match &r.spec.kind {
        RuleKind::Recording { record } => {
            web_rules::RuleStatus::Recording(web_rules::RecordingRuleStatus {
                name: record.clone(),
                query: r.query.clone(),
                labels,
                health: r.health,
                last_error,
                evaluation_time: r.evaluation_time,
                last_evaluation,
            })
        }
        RuleKind::Alerting {
            alert,
            for_,
            keep_firing_for,
            annotations,
        } => web_rules::RuleStatus::Alerting(web_rules::AlertingRuleStatus {
            state: r.state,
            name: alert.clone(),
            query: r.query.clone(),
            duration: *for_,
            keep_firing_for: *keep_firing_for,
            labels,
            annotations: annotations.clone(),
            alerts: r.alerts.iter().map(alert_status).collect(),
            health: r.health,
            last_error,
            evaluation_time: r.evaluation_time,
            last_evaluation,
        }),
    }
}

impl Backend for ServerBackend {
    fn rule_groups(&self) -> Vec<web_rules::RuleGroupStatus> {
        self.rules
            .groups()
            .into_iter()
            .map(|g| web_rules::RuleGroupStatus {
                rules: g.rules.iter().map(|r| rule_status(&g.labels, r)).collect(),
                name: g.name,
                file: g.file,
                interval: g.interval,
                limit: g.limit,
                evaluation_time: g.evaluation_time,
                last_evaluation: g.last_evaluation_ms.map(web_rules::from_unix_ms),
            })
            .collect()
    }

    fn alerts(&self) -> Vec<web_rules::AlertStatus> {
        self.rules
            .groups()
            .iter()
            .flat_map(|g| g.rules.iter())
            .flat_map(|r| r.alerts.iter())
            .map(alert_status)
            .collect()
    }

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
        let s = self.db.head_cardinality(10);
        let empty = s.num_series == 0 || s.max_time == i64::MIN;
        TsdbStatus {
            num_series: s.num_series,
            num_label_pairs: s.num_label_pairs,
            chunk_count: s.chunk_count,
            min_time: if empty { 0 } else { s.min_time },
            max_time: if empty { 0 } else { s.max_time },
            series_count_by_metric_name: s.series_count_by_metric_name,
            label_value_count_by_label_name: s.label_value_count_by_label_name,
            memory_in_bytes_by_label_name: s.memory_in_bytes_by_label_name,
            series_count_by_label_value_pair: s.series_count_by_label_value_pair,
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
        self.db
            .delete_series(&matchers, start, end)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn build_info(&self) -> koban_web::BuildInfo {
        crate::build_info::get()
    }

    fn clean_tombstones(&self) -> Result<(), String> {
        self.db
            .clean_tombstones()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn snapshot(&self, skip_head: bool) -> Result<String, String> {
        let name = snapshot_name(chrono::Utc::now());
        let dir = self
            .db
            .dir()
            .join(koban_tsdb::db::SNAPSHOTS_DIR)
            .join(&name);
        self.db
            .snapshot(&dir, !skip_head)
            .map_err(|e| format!("create snapshot: {e}"))?;
        Ok(name)
    }

    fn alertmanagers(&self) -> (Vec<String>, Vec<String>) {
        let l = self.notifier.alertmanagers();
        (l.active, l.dropped)
    }

    fn external_labels(&self) -> Labels {
        self.reloader.current().global.external_labels()
    }

    fn runtime_info(&self) -> serde_json::Value {
        let p = crate::process::ProcessStats::read();
        serde_json::json!({
            "CWD": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
            "reloadConfigSuccess": self.reloader.last_ok(),
            "lastConfigTime": self.reloader.last_time(),
            // Corruption found at open: a WAL cut at a bad record, and
            // blocks moved aside.
            "corruptionCount": u64::from(self.db.open_report().replay.corrupt.is_some())
                + self.db.stats().blocks.corrupted_blocks,
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

/// A snapshot directory name as Prometheus makes them: the UTC time as
/// `20060102T150405Z`, a dash and 16 random hex digits.
fn snapshot_name(now: chrono::DateTime<chrono::Utc>) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now.timestamp_nanos_opt().unwrap_or_default());
    // Prometheus uses a non-negative 63-bit random number.
    let r = h.finish() >> 1;
    format!("{}-{r:016x}", now.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn snapshot_names_look_like_prometheus_ones() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-07T11:30:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let n = super::snapshot_name(t);
        let (time, rand) = n.split_once('-').unwrap();
        assert_eq!(time, "20261207T113000Z");
        assert_eq!(rand.len(), 16);
        assert!(rand
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(n, super::snapshot_name(t));
    }
}
