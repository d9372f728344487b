//! From prometheus.yml's `scrape_configs` to the scrape crate's pool settings.
//! Settings Koban cannot honour yet are refused here, naming the key.

use anyhow::{bail, Context, Result};
use koban_config::{Config, ScrapeConfig};
use koban_scrape::{HttpConfig, PoolConfig, TlsSettings};
use std::time::Duration;

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn read_secret_file(job: &str, key: &str, path: &str) -> Result<String> {
    let s = std::fs::read_to_string(path).with_context(|| format!("job {job:?}: {key} {path}"))?;
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

/// Pool settings of one scrape config.
pub fn pool_config(sc: &ScrapeConfig) -> Result<PoolConfig> {
    let job = &sc.job_name;
    let http = sc.http_client_config();
    let tls = &http.tls_config;
    for (key, set) in [
        ("tls_config.ca", !tls.ca.is_empty()),
        ("tls_config.cert", !tls.cert.is_empty()),
        ("tls_config.key", !tls.key.is_empty()),
        ("tls_config.server_name", !tls.server_name.is_empty()),
        ("tls_config.min_version", !tls.min_version.is_empty()),
        ("tls_config.max_version", !tls.max_version.is_empty()),
        ("no_proxy", !http.no_proxy.is_empty()),
        ("enable_compression: false", !sc.enable_compression),
        (
            "metric_name_validation_scheme: utf8 (Koban validates legacy names)",
            sc.metric_name_validation_scheme == "utf8",
        ),
        (
            "scrape_protocols other than the default list",
            sc.scrape_protocols.as_slice() != koban_config::ScrapeProtocol::DEFAULT,
        ),
        ("proxy_from_environment", http.proxy_from_environment),
        (
            "proxy_connect_header",
            !http.proxy_connect_header.is_empty(),
        ),
    ] {
        if set {
            bail!("job {job:?}: {key} is not supported by Koban yet");
        }
    }
    let basic_auth = match &http.basic_auth {
        Some(b) => {
            let user = if b.username_file.is_empty() {
                b.username.clone()
            } else {
                read_secret_file(job, "basic_auth.username_file", &b.username_file)?
            };
            let pass = if b.password_file.is_empty() {
                b.password.expose().to_string()
            } else {
                read_secret_file(job, "basic_auth.password_file", &b.password_file)?
            };
            Some((user, pass))
        }
        None => None,
    };
    let authorization = match &http.authorization {
        Some(a) => {
            let creds = if a.credentials_file.is_empty() {
                a.credentials.expose().to_string()
            } else {
                read_secret_file(job, "authorization.credentials_file", &a.credentials_file)?
            };
            let kind = if a.kind.is_empty() {
                "Bearer".to_string()
            } else {
                a.kind.clone()
            };
            Some((kind, creds))
        }
        None => None,
    };
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
        http: HttpConfig {
            basic_auth,
            authorization,
            tls: TlsSettings {
                ca_file: non_empty(&tls.ca_file),
                cert_file: non_empty(&tls.cert_file),
                key_file: non_empty(&tls.key_file),
                server_name: None,
                insecure_skip_verify: tls.insecure_skip_verify,
            },
            proxy_url: non_empty(&http.proxy_url),
            follow_redirects: http.follow_redirects,
            enable_http2: sc.enable_http2,
        },
    })
}

/// Pool settings of every scrape config.
pub fn pool_configs(cfg: &Config) -> Result<Vec<PoolConfig>> {
    if cfg.global.metric_name_validation_scheme == "utf8" {
        bail!("global.metric_name_validation_scheme: utf8 is not supported by Koban yet (Koban validates legacy names)");
    }
    cfg.scrape_configs.iter().map(pool_config).collect()
}
