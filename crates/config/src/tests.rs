//! Loader tests: defaults, every error kind with its exact position, examples.

use super::*;
use std::path::{Path, PathBuf};

fn load(text: &str) -> Result<Config, ConfigError> {
    load_str(text, Path::new("config.yml"))
}

fn err(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

/// `shared/examples` beside the repository (CI sets `KOBAN_SHARED_DIR`).
fn examples() -> PathBuf {
    match std::env::var_os("KOBAN_SHARED_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("examples"),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/examples"),
    }
}

#[test]
fn example_conoha_static_loads() {
    let cfg = load_file(&examples().join("conoha-static.yml")).unwrap();
    assert_eq!(cfg.global.scrape_interval, Duration::from_secs(5));
    assert_eq!(
        cfg.global.scrape_timeout,
        Duration::from_secs(5),
        "default timeout capped at the interval"
    );
    assert_eq!(cfg.global.evaluation_interval, Duration::from_secs(5));
    assert_eq!(cfg.scrape_configs.len(), 1);
    let sc = &cfg.scrape_configs[0];
    assert_eq!(sc.job_name, "conoha");
    assert_eq!(sc.scrape_interval, Duration::from_secs(5));
    assert_eq!(
        sc.static_configs[0].targets,
        vec!["localhost:3000".to_string()]
    );
}

#[test]
fn example_dns_sd_loads() {
    let cfg = load_file(&examples().join("dns-sd.yml")).unwrap();
    let sc = &cfg.scrape_configs[0];
    assert_eq!(sc.job_name, "node_exporter");
    let d = &sc.dns_sd_configs[0];
    assert_eq!(d.names, vec!["node.prom.local".to_string()]);
    assert_eq!(d.record_type, DnsRecordType::Srv);
    assert_eq!(d.port, 0);
    assert_eq!(d.refresh_interval.to_string(), "30s");
    assert!(d.nameservers.is_empty());
}

#[test]
fn dns_sd_keys_and_validation() {
    let cfg = load(
        "scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - names: [a.test, b.test]\n        type: aaaa\n        port: 9100\n        refresh_interval: 5s\n        nameservers: ['127.0.0.1:5353', '::1', '[::1]:53']\n",
    )
    .unwrap();
    let d = &cfg.scrape_configs[0].dns_sd_configs[0];
    assert_eq!(d.record_type, DnsRecordType::Aaaa);
    assert_eq!(d.port, 9100);
    assert_eq!(d.refresh_interval.to_string(), "5s");
    let addrs: Vec<String> = d
        .nameserver_addrs()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(addrs, ["127.0.0.1:5353", "[::1]:53", "[::1]:53"]);
    // The dump loads again to the same config.
    assert_eq!(load(&cfg.to_yaml()).unwrap(), cfg);

    let head = "scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n";
    assert_eq!(
        err(&format!("{head}      - type: SRV\n")),
        "config.yml:4:9: DNS-SD config must contain at least one SRV record name"
    );
    assert_eq!(
        err(&format!("{head}      - names: []\n")),
        "config.yml:4:16: DNS-SD config must contain at least one SRV record name"
    );
    assert_eq!(
        err(&format!("{head}      - names: [a.test]\n        type: A\n")),
        "config.yml:5:15: a port is required in DNS-SD configs for all record types except SRV"
    );
    for t in ["MX", "ns", "AAAA"] {
        assert!(err(&format!(
            "{head}      - names: [a.test]\n        type: {t}\n"
        ))
        .contains("a port is required"));
    }
    let e = err(&format!(
        "{head}      - names: [a.test]\n        type: TXT\n"
    ));
    assert!(
        e.starts_with("config.yml:5:") && e.contains("invalid DNS-SD records type TXT"),
        "{e}"
    );
    assert_eq!(
        err(&format!("{head}      - names: [a.test]\n        nameservers: [127.0.0.1, dns.test]\n")),
        "config.yml:5:34: invalid DNS server \"dns.test\" in nameservers (want an IP address, optionally with :port)"
    );
    let e = err(&format!(
        "{head}      - names: [a.test]\n        ports: 1\n"
    ));
    assert!(
        e.starts_with("config.yml:5:9: unknown field \"ports\""),
        "{e}"
    );

    // Alertmanagers discover by DNS too.
    let cfg = load(
        "alerting:\n  alertmanagers:\n    - dns_sd_configs:\n        - names: [am.test]\n          type: A\n          port: 9093\n",
    )
    .unwrap();
    assert_eq!(cfg.alerting.alertmanagers[0].dns_sd_configs[0].port, 9093);
}

#[test]
fn example_ec2_refused_at_key() {
    let e = load_file(&examples().join("ec2-relabel.yml")).unwrap_err();
    assert!(
        matches!(&e, ConfigError::Unsupported { key, .. } if key == "ec2_sd_configs"),
        "{e}"
    );
    assert_eq!(e.position(), Some((7, 5)));
}

#[test]
fn all_prometheus_examples_load_or_are_refused_cleanly() {
    let Ok(dir) = std::fs::read_dir(examples()) else {
        panic!("examples dir missing: {}", examples().display())
    };
    for entry in dir.flatten() {
        let p = entry.path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".yml") || name.starts_with("alertmanager") {
            continue;
        }
        match load_file(&p) {
            Ok(cfg) => {
                // The dump must load again to the same config.
                let again = load_str(&cfg.to_yaml(), &p).unwrap();
                assert_eq!(again, cfg, "{name}");
            }
            Err(e) => assert!(matches!(e, ConfigError::Unsupported { .. }), "{name}: {e}"),
        }
    }
}

#[test]
fn defaults_are_prometheus_defaults() {
    let cfg = load("scrape_configs:\n  - job_name: a\n").unwrap();
    let g = &cfg.global;
    assert_eq!(g.scrape_interval.to_string(), "1m");
    assert_eq!(g.scrape_timeout.to_string(), "10s");
    assert_eq!(g.evaluation_interval.to_string(), "1m");
    let sc = &cfg.scrape_configs[0];
    assert_eq!(sc.scrape_interval.to_string(), "1m");
    assert_eq!(sc.scrape_timeout.to_string(), "10s");
    assert_eq!(sc.metrics_path, "/metrics");
    assert_eq!(sc.scheme, "http");
    assert!(sc.honor_timestamps && sc.follow_redirects && sc.enable_http2 && sc.enable_compression);
    assert!(!sc.honor_labels);
    assert_eq!(sc.scrape_protocols, ScrapeProtocol::DEFAULT.to_vec());
}

#[test]
fn empty_document_is_default_config() {
    let cfg = load("").unwrap();
    assert_eq!(cfg.global, GlobalConfig::default());
    assert!(cfg.scrape_configs.is_empty());
    let cfg = load("global:\nscrape_configs:\n").unwrap();
    assert!(cfg.scrape_configs.is_empty());
}

#[test]
fn job_inherits_global_and_caps_timeout() {
    let cfg = load(
        "global:\n  scrape_interval: 30s\n  scrape_timeout: 20s\n  sample_limit: 100\n  body_size_limit: 10MB\nscrape_configs:\n  - job_name: a\n    scrape_interval: 15s\n  - job_name: b\n    sample_limit: 5\n",
    )
    .unwrap();
    let a = &cfg.scrape_configs[0];
    assert_eq!(a.scrape_interval, Duration::from_secs(15));
    assert_eq!(a.scrape_timeout, Duration::from_secs(15));
    assert_eq!(a.sample_limit, 100);
    assert_eq!(a.body_size_limit, ByteSize(10 << 20));
    let b = &cfg.scrape_configs[1];
    assert_eq!(b.scrape_interval, Duration::from_secs(30));
    assert_eq!(b.scrape_timeout, Duration::from_secs(20));
    assert_eq!(b.sample_limit, 5);
}

#[test]
fn full_scrape_config_parses() {
    let text = r#"
global:
  external_labels: {region: eu, replica: "1"}
  scrape_protocols: [PrometheusText0.0.4]
scrape_configs:
  - job_name: full
    honor_labels: true
    honor_timestamps: false
    track_timestamps_staleness: true
    params: {module: [http_2xx]}
    scrape_interval: 1m
    scrape_timeout: 30s
    metrics_path: /probe
    scheme: https
    basic_auth: {username: u, password: p}
    tls_config: {ca_file: ca.pem, server_name: x, insecure_skip_verify: true, min_version: TLS12}
    proxy_url: http://proxy:3128
    no_proxy: localhost
    follow_redirects: false
    enable_http2: false
    sample_limit: 1000
    body_size_limit: 1GiB
    static_configs:
      - targets: [a:1, b:2]
        labels: {env: prod}
    file_sd_configs:
      - files: [targets/*.json]
    relabel_configs:
      - source_labels: [__address__]
        target_label: instance
    metric_relabel_configs:
      - action: labeldrop
        regex: tmp_.*
"#;
    let cfg = load_str(text, Path::new("/etc/koban/prometheus.yml")).unwrap();
    let sc = &cfg.scrape_configs[0];
    assert_eq!(
        cfg.global.external_labels().to_string(),
        r#"{region="eu", replica="1"}"#
    );
    assert_eq!(
        sc.scrape_protocols,
        vec![ScrapeProtocol::PrometheusText0_0_4]
    );
    assert_eq!(sc.params["module"], vec!["http_2xx".to_string()]);
    assert_eq!(sc.basic_auth.as_ref().unwrap().password.expose(), "p");
    assert_eq!(sc.tls_config.ca_file, "/etc/koban/ca.pem");
    assert_eq!(
        sc.file_sd_configs[0].files,
        vec!["/etc/koban/targets/*.json".to_string()]
    );
    assert_eq!(sc.file_sd_configs[0].refresh_interval.to_string(), "5m");
    assert_eq!(sc.body_size_limit, ByteSize(1 << 30));
    assert!(!sc.follow_redirects && !sc.enable_http2 && !sc.honor_timestamps);
    assert_eq!(sc.relabel_configs.len(), 1);
    let h = sc.http_client_config();
    assert_eq!(h.proxy_url, "http://proxy:3128");
    let dump = cfg.to_yaml();
    assert!(
        dump.contains("<secret>") && !dump.contains("password: p\n"),
        "{dump}"
    );
    assert_eq!(
        load_str(&dump, Path::new("/etc/koban/prometheus.yml"))
            .unwrap()
            .scrape_configs[0]
            .job_name,
        "full"
    );
}

#[test]
fn rule_files_resolved_relative_to_config_dir() {
    let cfg = load_str(
        "rule_files:\n  - rules/*.yml\n  - /abs/x.yml\n",
        Path::new("/etc/koban/prometheus.yml"),
    )
    .unwrap();
    assert_eq!(
        cfg.rule_files,
        vec![
            "/etc/koban/rules/*.yml".to_string(),
            "/abs/x.yml".to_string()
        ]
    );
}

#[test]
fn alerting_and_remote_sections_parse() {
    let text = r#"
alerting:
  alert_relabel_configs:
    - action: labeldrop
      regex: replica
  alertmanagers:
    - static_configs:
        - targets: [am:9093]
      timeout: 5s
remote_write:
  - url: http://rw:9201/write
    name: one
    headers: {X-Scope-OrgID: t1}
    queue_config: {max_shards: 10}
    write_relabel_configs:
      - source_labels: [__name__]
        regex: expensive_.*
        action: drop
remote_read:
  - url: http://rr:9201/read
    read_recent: true
"#;
    let cfg = load(text).unwrap();
    let am = &cfg.alerting.alertmanagers[0];
    assert_eq!(am.api_version, "v2");
    assert_eq!(am.path_prefix, "/");
    assert_eq!(am.timeout, Duration::from_secs(5));
    let rw = &cfg.remote_write[0];
    assert_eq!(rw.remote_timeout.to_string(), "30s");
    assert_eq!(rw.queue_config.max_shards, 10);
    assert_eq!(rw.queue_config.capacity, 10_000);
    assert!(rw.metadata_config.send);
    assert_eq!(cfg.remote_read[0].remote_timeout.to_string(), "1m");
    assert!(cfg.remote_read[0].filter_external_labels);
}

#[test]
fn default_config_loads() {
    let cfg = load(DEFAULT_CONFIG).unwrap();
    assert_eq!(cfg.scrape_configs[0].job_name, "koban");
    assert_eq!(cfg.scrape_configs[0].scrape_interval.to_string(), "15s");
    assert_eq!(
        cfg.scrape_configs[0].static_configs[0].targets,
        vec!["localhost:9090".to_string()]
    );
}

#[test]
fn config_equality_ignores_positions() {
    let a = load("scrape_configs:\n  - job_name: a\n").unwrap();
    let b = load("# comment\n\nscrape_configs:\n\n  - job_name: 'a'\n").unwrap();
    assert_eq!(a, b);
}

// ---- errors, each with its exact position ----

#[test]
fn unknown_field_top_level_and_nested() {
    assert!(
        err("foo: 1\n")
            .starts_with("config.yml:1:1: unknown field \"foo\", expected one of: global"),
        "{}",
        err("foo: 1\n")
    );
    let e = load("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [x:1]\n        lables: {a: b}\n").unwrap_err();
    assert!(
        matches!(&e, ConfigError::UnknownField { field, expected, .. } if field == "lables" && expected.contains(&"labels".to_string()))
    );
    assert_eq!(e.position(), Some((5, 9)));
}

#[test]
fn wrong_type_has_position() {
    let e = load("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: x\n")
        .unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::Yaml {
                line: 4,
                column: 18,
                ..
            }
        ),
        "{e}"
    );
    let e = load("global:\n  scrape_interval: 5x\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "config.yml:2:20: not a valid duration string: \"5x\""
    );
    let e = load("scrape_configs:\n  - job_name: a\n    honor_labels: maybe\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "config.yml:3:19: wrong type: expected true or false"
    );
    let e = load("scrape_configs:\n  job_name: a\n").unwrap_err();
    assert_eq!(e.to_string(), "config.yml:2:3: wrong type: expected a list");
    let e = load("scrape_configs:\n  - job_name: a\n    sample_limit: lots\n").unwrap_err();
    assert_eq!(e.position(), Some((3, 19)), "{e}");
}

#[test]
fn syntax_error_has_position() {
    let e = load("global:\n  scrape_interval: [15s\n").unwrap_err();
    assert!(matches!(e, ConfigError::Yaml { .. }), "{e}");
    assert!(e.position().is_some(), "{e}");
}

#[test]
fn unsupported_sd_in_alertmanagers_and_oauth2() {
    let e = load("alerting:\n  alertmanagers:\n    - consul_sd_configs: []\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "config.yml:3:7: consul_sd_configs is not supported by Koban yet"
    );
    let e =
        load("scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: pod\n")
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        "config.yml:3:5: kubernetes_sd_configs is not supported by Koban yet"
    );
    let e = load("remote_write:\n  - url: http://x/\n    sigv4: {region: x}\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "config.yml:3:5: sigv4 is not supported by Koban yet"
    );
}

#[test]
fn duplicate_job_name() {
    let e = err("scrape_configs:\n  - job_name: a\n  - job_name: b\n  - job_name: a\n");
    assert_eq!(
        e,
        "config.yml:4:15: found multiple scrape configs with job name \"a\""
    );
}

#[test]
fn empty_job_name() {
    assert_eq!(
        err("scrape_configs:\n  - job_name: ''\n"),
        "config.yml:2:15: job_name is empty"
    );
    assert!(err("scrape_configs:\n  - scrape_interval: 1m\n").contains("missing field `job_name`"));
}

#[test]
fn timeout_greater_than_interval() {
    let e = err(
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 10s\n    scrape_timeout: 20s\n",
    );
    assert_eq!(e, "config.yml:4:21: scrape timeout (20s) greater than scrape interval (10s) for scrape config with job name \"a\"");
    let e = err("global:\n  scrape_interval: 10s\n  scrape_timeout: 1m\n");
    assert_eq!(
        e,
        "config.yml:3:19: global scrape timeout greater than scrape interval"
    );
}

#[test]
fn bad_scheme() {
    let e = err("scrape_configs:\n  - job_name: a\n    scheme: ftp\n");
    assert_eq!(
        e,
        "config.yml:3:13: scheme must be \"http\" or \"https\", got \"ftp\" (job \"a\")"
    );
}

#[test]
fn bad_relabel_config() {
    let e = err("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: keep\n        regex: '('\n");
    assert!(
        e.starts_with("config.yml:5:16: invalid regular expression \"(\""),
        "{e}"
    );
    let e = err("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: keep\n      - action: frobnicate\n");
    assert_eq!(e, "config.yml:5:17: unknown relabel action \"frobnicate\"");
    let e = err("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: keep\n      - action: replace\n        target_label: 'bad-name'\n");
    assert_eq!(e, "config.yml:5:9: relabel_configs[1]: \"bad-name\" is invalid 'target_label' for replace action");
    let e =
        err("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - sourcelabels: [a]\n");
    assert!(
        e.starts_with("config.yml:4:9: unknown field \"sourcelabels\""),
        "{e}"
    );
}

#[test]
fn invalid_external_label_name() {
    let e = err("global:\n  external_labels:\n    ok: x\n    bad-name: y\n");
    assert_eq!(e, "config.yml:4:5: \"bad-name\" is not a valid label name");
}

#[test]
fn invalid_static_target_and_label() {
    let e = err("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['a:1', 'http://b:2/x']\n");
    assert_eq!(
        e,
        "config.yml:4:26: \"http://b:2/x\" is not a valid hostname"
    );
    let e = err("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['a:1']\n        labels: {'0x': y}\n");
    assert_eq!(e, "config.yml:5:18: \"0x\" is not a valid label name");
}

#[test]
fn invalid_file_sd_pattern() {
    let e = err(
        "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [targets.txt]\n",
    );
    assert!(
        e.starts_with("config.yml:4:17: path name \"targets.txt\" is not valid for file discovery"),
        "{e}"
    );
}

#[test]
fn http_client_validation() {
    let e = err("scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    authorization: {credentials: t}\n");
    assert_eq!(
        e,
        "config.yml:4:20: at most one of basic_auth, oauth2 & authorization must be configured"
    );
    let e =
        err("scrape_configs:\n  - job_name: a\n    authorization: {type: Basic, credentials: t}\n");
    assert!(
        e.starts_with("config.yml:3:20: authorization type cannot be set to \"basic\""),
        "{e}"
    );
    let e = err("scrape_configs:\n  - job_name: a\n    tls_config: {min_version: TLS9}\n");
    assert!(e.starts_with("config.yml:3:17: unknown TLS version"), "{e}");
}

#[test]
fn remote_write_validation() {
    let e = err("remote_write:\n  - url: ftp://x\n");
    assert!(e.starts_with("config.yml:2:10: invalid url"), "{e}");
    let e = err("remote_write:\n  - url: http://x/\n    headers: {Authorization: x}\n");
    assert_eq!(
        e,
        "config.yml:3:15: Authorization is a reserved header. It must not be changed"
    );
    let e =
        err("remote_write:\n  - url: http://x/\n    name: a\n  - url: http://y/\n    name: a\n");
    assert_eq!(
        e,
        "config.yml:5:11: found multiple remote write configs with name \"a\""
    );
}

#[test]
fn bad_scrape_protocol() {
    let e = load("global:\n  scrape_protocols: [PrometheusText0.0.4, Nope]\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("config.yml:2:43: unknown variant `Nope`"),
        "{e}"
    );
}

#[test]
fn scrape_config_files_are_merged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("jobs")).unwrap();
    std::fs::write(
        dir.path().join("jobs/a.yml"),
        "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [t.json]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("jobs/b.yml"),
        "scrape_configs:\n  - job_name: b\n",
    )
    .unwrap();
    let main = dir.path().join("prometheus.yml");
    std::fs::write(&main, "global:\n  scrape_interval: 7s\nscrape_config_files: [jobs/*.yml]\nscrape_configs:\n  - job_name: main\n").unwrap();
    let cfg = load_file(&main).unwrap();
    let jobs: Vec<&str> = cfg
        .scrape_configs
        .iter()
        .map(|s| s.job_name.as_str())
        .collect();
    assert_eq!(jobs, ["main", "a", "b"]);
    assert_eq!(
        cfg.scrape_configs[1].scrape_interval,
        Duration::from_secs(7)
    );
    let want = dir.path().join("jobs/t.json");
    assert_eq!(
        cfg.scrape_configs[1].file_sd_configs[0].files,
        vec![want.to_string_lossy().into_owned()]
    );

    // A job name repeated across files is reported in the later file.
    std::fs::write(
        dir.path().join("jobs/c.yml"),
        "scrape_configs:\n  - job_name: main\n",
    )
    .unwrap();
    let e = load_file(&main).unwrap_err();
    assert_eq!(e.path(), dir.path().join("jobs/c.yml"));
    assert_eq!(e.position(), Some((2, 15)));

    // Errors inside a scrape config file name that file.
    std::fs::write(
        dir.path().join("jobs/c.yml"),
        "scrape_configs:\n  - job_name: c\n    consul_sd_configs: []\n",
    )
    .unwrap();
    let e = load_file(&main).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3:5: consul_sd_configs is not supported by Koban yet",
            dir.path().join("jobs/c.yml").display()
        )
    );
}

#[test]
fn missing_file_is_io_error() {
    let e = load_file(Path::new("/nonexistent/prometheus.yml")).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/prometheus.yml: cannot read config file"),
        "{e}"
    );
}

#[test]
fn to_yaml_prints_defaults_and_durations() {
    let cfg = load("scrape_configs:\n  - job_name: a\n    scrape_interval: 90m\n").unwrap();
    let y = cfg.to_yaml();
    assert!(y.contains("scrape_interval: 1h30m"), "{y}");
    assert!(y.contains("metrics_path: /metrics"), "{y}");
    assert!(y.contains("evaluation_interval: 1m"), "{y}");
    assert_eq!(load(&y).unwrap(), cfg);
}

#[test]
fn legacy_bearer_token_becomes_authorization() {
    let cfg = load_str(
        "scrape_configs:\n  - job_name: a\n    bearer_token_file: tok\n",
        Path::new("/etc/k/p.yml"),
    )
    .unwrap();
    let a = cfg.scrape_configs[0].authorization.clone().unwrap();
    assert_eq!(
        (a.kind.as_str(), a.credentials_file.as_str()),
        ("Bearer", "/etc/k/tok")
    );
    assert!(cfg.scrape_configs[0].bearer_token_file.is_empty());
    let e = err(
        "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    bearer_token: t\n",
    );
    assert_eq!(e, "config.yml:4:19: at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured");
}

#[test]
fn histogram_and_naming_options_are_accepted() {
    let cfg = load("global:\n  metric_name_validation_scheme: legacy\nscrape_configs:\n  - job_name: a\n    scrape_classic_histograms: true\n    native_histogram_bucket_limit: 160\n").unwrap();
    assert!(cfg.scrape_configs[0].always_scrape_classic_histograms);
    assert_eq!(cfg.scrape_configs[0].native_histogram_bucket_limit, 160);
}

#[test]
fn metrics_path_without_slash_is_normalised() {
    let cfg = load("scrape_configs:\n  - job_name: a\n    metrics_path: probe\n").unwrap();
    assert_eq!(cfg.scrape_configs[0].metrics_path, "/probe");
}

#[test]
fn anchors_aliases_and_merge_keys_work() {
    let text = "\
x-common: &common
  scrape_interval: 30s
  metrics_path: /m
scrape_configs:
  - job_name: a
    <<: *common
    static_configs: &targets
      - targets: ['h:1']
  - job_name: b
    <<: *common
    static_configs: *targets
";
    // `x-common` is not a Prometheus key: refused like any unknown field.
    let e = load(text).unwrap_err();
    assert!(
        matches!(&e, ConfigError::UnknownField { field, .. } if field == "x-common"),
        "{e}"
    );
    let text = text.replacen("x-common: &common\n  scrape_interval: 30s\n  metrics_path: /m\n", "", 1).replace(
        "  - job_name: a\n    <<: *common\n",
        "  - job_name: a\n    <<: &common\n      scrape_interval: 30s\n      metrics_path: /m\n",
    );
    let cfg = load(&text).unwrap();
    let b = &cfg.scrape_configs[1];
    assert_eq!(
        (
            b.scrape_interval.to_string().as_str(),
            b.metrics_path.as_str()
        ),
        ("30s", "/m")
    );
    assert_eq!(b.static_configs[0].targets, vec!["h:1".to_string()]);
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    let deep = format!("a: {}{}\n", "[".repeat(5000), "]".repeat(5000));
    let many_aliases = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
    for text in [
        deep.as_str(),
        many_aliases,
        "\u{0}",
        "---\n---\n",
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 99999999999999999999y\n",
        ": :",
    ] {
        assert!(load(text).is_err(), "{text:.40}");
    }
}

#[test]
fn oauth2_and_http_headers_parse_with_paths_resolved() {
    let cfg = load_str(
        r#"
scrape_configs:
  - job_name: a
    oauth2:
      client_id: id
      client_secret_file: secret
      scopes: [read]
      token_url: https://auth.example.net/token
      endpoint_params: {audience: x}
      tls_config: {ca_file: auth-ca.pem}
      proxy_url: http://proxy:3128
    tls_config: {cert_file: c.pem, key_file: c.key, server_name: mail.example.net, max_version: TLS13}
    http_headers:
      X-Tenant: {values: [a], secrets: [s3cret], files: [tenant.txt]}
    proxy_url: http://proxy:3128
    no_proxy: 10.0.0.0/8
    proxy_connect_header: {Proxy-Token: [pt]}
"#,
        Path::new("/etc/k/p.yml"),
    )
    .unwrap();
    let h = cfg.scrape_configs[0].http_client_config();
    let o = h.oauth2.as_ref().unwrap();
    assert_eq!(o.client_secret_file, "/etc/k/secret");
    assert_eq!(o.tls_config.ca_file, "/etc/k/auth-ca.pem");
    assert_eq!(h.tls_config.key_file, "/etc/k/c.key");
    assert_eq!(h.http_headers["X-Tenant"].files, vec!["/etc/k/tenant.txt"]);
    let dump = cfg.to_yaml();
    assert!(!dump.contains("s3cret") && !dump.contains("[pt]"), "{dump}");
    assert!(
        dump.contains("token_url: https://auth.example.net/token"),
        "{dump}"
    );
}

#[test]
fn http_client_combinations_are_refused_at_their_key() {
    let e = err("scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    oauth2: {client_id: i, token_url: 'http://t/'}\n");
    assert_eq!(
        e,
        "config.yml:4:13: at most one of basic_auth, oauth2 & authorization must be configured"
    );
    let e = err("scrape_configs:\n  - job_name: a\n    oauth2: {client_id: i}\n");
    assert_eq!(e, "config.yml:3:13: oauth2 token_url must be configured");
    let e =
        err("scrape_configs:\n  - job_name: a\n    http_headers: {authorization: {values: [x]}}\n");
    assert_eq!(
        e,
        "config.yml:3:19: setting header \"Authorization\" is not allowed"
    );
    let e = err("scrape_configs:\n  - job_name: a\n    no_proxy: localhost\n");
    assert_eq!(
        e,
        "config.yml:3:15: if no_proxy is configured, proxy_url must also be configured"
    );
    let e = err("scrape_configs:\n  - job_name: a\n    tls_config: {cert_file: c.pem}\n");
    assert_eq!(e, "config.yml:3:17: exactly one of key or key_file must be configured when a client certificate is configured");
    let e = err("alerting:\n  alertmanagers:\n    - oauth2: {client_id: i, token_url: 'http://t/', client_secret: a, client_secret_file: b}\n");
    assert_eq!(e, "config.yml:3:15: at most one of oauth2 client_secret & client_secret_file must be configured");
    let e = err("scrape_configs:\n  - job_name: a\n    oauth2: {client_id: i, token_url: 'http://t/', scope: [x]}\n");
    assert!(
        e.starts_with("config.yml:3:52: unknown field \"scope\""),
        "{e}"
    );
}
