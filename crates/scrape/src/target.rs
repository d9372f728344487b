//! Scrape settings of one pool and the targets built from discovered labels.

use koban_httpclient::HttpClientConfig;
use koban_model::relabel::{self, RelabelConfig};
use koban_model::{Labels, LabelsBuilder};
use std::collections::BTreeMap;
use std::time::Duration;

/// Everything a pool needs from one `scrape_configs` entry, with defaults
/// already resolved from `global`. Built by the binary from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pub job_name: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// 0 means no limit, for every limit below.
    pub sample_limit: usize,
    pub target_limit: usize,
    pub label_limit: usize,
    pub label_name_length_limit: usize,
    pub label_value_length_limit: usize,
    pub body_size_limit: u64,
    /// How many dropped targets the API keeps per pool (0: all).
    pub keep_dropped_targets: usize,
    /// The HTTP client settings (validated, paths absolute).
    pub http: HttpClientConfig,
}

impl PoolConfig {
    /// A config with Prometheus's defaults for `job_name` (used by tests and the embedded default).
    pub fn with_defaults(job_name: &str) -> Self {
        PoolConfig {
            job_name: job_name.to_string(),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            params: BTreeMap::new(),
            honor_labels: false,
            honor_timestamps: true,
            track_timestamps_staleness: false,
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            body_size_limit: 0,
            keep_dropped_targets: 0,
            http: HttpClientConfig::default(),
        }
    }
}

/// One target to scrape: its final labels and where to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Labels after relabelling, without `__`-prefixed ones: attached to every sample.
    pub labels: Labels,
    /// Labels as discovered, before relabelling (for the API).
    pub discovered_labels: Labels,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Target {
    /// A stable identity: final labels plus URL.
    pub fn hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&self.labels.hash().to_le_bytes());
        h.update(self.url.as_bytes());
        h.digest()
    }
}

/// A target that relabelling dropped, kept with its discovered labels.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedTarget {
    pub discovered_labels: Labels,
}

/// Outcome of [`populate`].
#[derive(Debug, Clone, PartialEq)]
pub enum Populated {
    Active(Target),
    Dropped(DroppedTarget),
    /// Not scrapeable: the reason (e.g. no address), logged by the caller.
    Invalid(String),
}

/// Formats a duration as Prometheus does (`1m30s`, `15s`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    koban_config::Duration::from(d).to_string()
}

fn parse_duration(s: &str) -> Option<Duration> {
    koban_config::parse_duration(s)
        .ok()
        .map(koban_config::Duration::as_std)
}

/// Turns one discovered target (group labels merged under target labels) into
/// a scrape target, as Prometheus: defaults for `job`, `__scheme__`,
/// `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__` and
/// `__param_*`; relabelling; `instance` from `__address__`; every
/// `__`-prefixed label removed afterwards.
pub fn populate(discovered: &Labels, cfg: &PoolConfig) -> Populated {
    let mut b = discovered.builder();
    let defaults = [
        ("job", cfg.job_name.clone()),
        ("__scheme__", cfg.scheme.clone()),
        ("__metrics_path__", cfg.metrics_path.clone()),
        ("__scrape_interval__", format_duration(cfg.interval)),
        ("__scrape_timeout__", format_duration(cfg.timeout)),
    ];
    for (k, v) in defaults {
        if b.get(k).is_empty() {
            b.set(k, &v);
        }
    }
    for (k, vs) in &cfg.params {
        let name = format!("__param_{k}");
        if b.get(&name).is_empty() {
            if let Some(v) = vs.first() {
                b.set(&name, v);
            }
        }
    }
    let preserved = b.labels();
    let mut b: LabelsBuilder = preserved.builder();
    if !relabel::process_builder(&mut b, &cfg.relabel_configs) {
        return Populated::Dropped(DroppedTarget {
            discovered_labels: preserved,
        });
    }
    let address = b.get("__address__").to_string();
    if address.is_empty() {
        return Populated::Invalid("no address".into());
    }
    let interval = match parse_duration(b.get("__scrape_interval__")) {
        Some(d) if !d.is_zero() => d,
        _ => {
            return Populated::Invalid(format!(
                "error parsing scrape interval {:?}",
                b.get("__scrape_interval__")
            ))
        }
    };
    let timeout = match parse_duration(b.get("__scrape_timeout__")) {
        Some(d) if !d.is_zero() => d,
        _ => {
            return Populated::Invalid(format!(
                "error parsing scrape timeout {:?}",
                b.get("__scrape_timeout__")
            ))
        }
    };
    if timeout > interval {
        return Populated::Invalid(format!(
            "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
            b.get("__scrape_timeout__"),
            b.get("__scrape_interval__")
        ));
    }
    let scheme = b.get("__scheme__").to_string();
    let path = b.get("__metrics_path__").to_string();
    let mut query = form_query(&b, cfg);
    if !query.is_empty() {
        query.insert(0, '?');
    }
    let url = format!("{scheme}://{address}{path}{query}");
    if b.get("instance").is_empty() {
        b.set("instance", &address);
    }
    b.retain(|l| !l.name.starts_with("__"));
    Populated::Active(Target {
        labels: b.labels(),
        discovered_labels: preserved,
        url,
        interval,
        timeout,
    })
}

/// The URL query: config params, with the first value of each replaced by `__param_<name>`.
fn form_query(b: &LabelsBuilder, cfg: &PoolConfig) -> String {
    let mut params: BTreeMap<String, Vec<String>> = cfg.params.clone();
    for l in b.iter() {
        if let Some(name) = l.name.strip_prefix("__param_") {
            let e = params.entry(name.to_string()).or_default();
            if e.is_empty() {
                e.push(l.value.clone());
            } else {
                e[0] = l.value.clone();
            }
        }
    }
    let mut ser = String::new();
    for (k, vs) in &params {
        for v in vs {
            if !ser.is_empty() {
                ser.push('&');
            }
            ser.push_str(&url_escape(k));
            ser.push('=');
            ser.push_str(&url_escape(v));
        }
    }
    ser
}

fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PoolConfig {
        let mut c = PoolConfig::with_defaults("node");
        c.interval = Duration::from_secs(15);
        c.timeout = Duration::from_secs(10);
        c
    }

    #[test]
    fn defaults_and_instance() {
        let d = Labels::from_pairs([
            ("__address__", "10.0.0.1:9100"),
            ("__meta_x", "y"),
            ("env", "prod"),
        ]);
        let Populated::Active(t) = populate(&d, &cfg()) else {
            panic!("not active")
        };
        assert_eq!(t.url, "http://10.0.0.1:9100/metrics");
        assert_eq!(
            t.labels.to_string(),
            r#"{env="prod", instance="10.0.0.1:9100", job="node"}"#
        );
        assert_eq!(t.discovered_labels.get("__scrape_interval__"), "15s");
        assert_eq!(t.discovered_labels.get("__meta_x"), "y");
        assert_eq!(t.interval, Duration::from_secs(15));
    }

    #[test]
    fn params_become_query_and_can_be_relabelled() {
        let mut c = cfg();
        c.params.insert("module".into(), vec!["http_2xx".into()]);
        let d = Labels::from_pairs([("__address__", "h:1"), ("__param_module", "icmp")]);
        let Populated::Active(t) = populate(&d, &c) else {
            panic!()
        };
        assert_eq!(t.url, "http://h:1/metrics?module=icmp");
    }

    #[test]
    fn missing_address_is_invalid() {
        let d = Labels::from_pairs([("foo", "bar")]);
        assert!(matches!(populate(&d, &cfg()), Populated::Invalid(_)));
    }

    #[test]
    fn durations_format_like_prometheus() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
    }
}
