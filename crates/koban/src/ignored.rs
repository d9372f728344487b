//! Configuration keys Koban accepts, so that a Prometheus configuration
//! loads, but does not act on yet. Each one set is reported as a warning
//! naming it: by the server at every load (start and reload) and by
//! `koban check config`. When a key gets implemented, its line here goes.

use koban_config::Config;

fn not_yet(key: &str) -> String {
    format!("{key} is not supported by Koban yet; ignored until it is")
}

/// One warning per ignored key set in `cfg`, in file order.
pub fn warnings(cfg: &Config) -> Vec<String> {
    let mut w = Vec::new();
    let g = &cfg.global;
    if !g.query_log_file.is_empty() {
        w.push(not_yet("global.query_log_file"));
    }
    if !g.scrape_failure_log_file.is_empty() {
        w.push(not_yet("global.scrape_failure_log_file"));
    }
    if !g.metric_name_escaping_scheme.is_empty() {
        w.push(not_yet("global.metric_name_escaping_scheme"));
    }
    if g.convert_classic_histograms_to_nhcb {
        w.push(not_yet("global.convert_classic_histograms_to_nhcb"));
    }
    if cfg.runtime.gogc.is_some() {
        w.push(
            "runtime.gogc has no effect on Koban (it has no Go garbage collector); ignored".into(),
        );
    }
    for sc in &cfg.scrape_configs {
        let job = &sc.job_name;
        let mut keys = Vec::new();
        // Inherited from `global` unless set in the job: warn once, above.
        if sc.scrape_failure_log_file != g.scrape_failure_log_file {
            keys.push("scrape_failure_log_file");
        }
        if sc.metric_name_escaping_scheme != g.metric_name_escaping_scheme {
            keys.push("metric_name_escaping_scheme");
        }
        if sc.convert_classic_histograms_to_nhcb != g.convert_classic_histograms_to_nhcb {
            keys.push("convert_classic_histograms_to_nhcb");
        }
        if sc.native_histogram_bucket_limit != 0 {
            keys.push("native_histogram_bucket_limit");
        }
        if sc.native_histogram_min_bucket_factor != 0.0 {
            keys.push("native_histogram_min_bucket_factor");
        }
        for k in keys {
            w.push(format!("job {job:?}: {}", not_yet(k)));
        }
    }
    if cfg.storage.exemplars.is_some() {
        w.push(not_yet("storage.exemplars"));
    }
    if !cfg.remote_write.is_empty() {
        w.push(not_yet("remote_write"));
    }
    if !cfg.remote_read.is_empty() {
        w.push(not_yet("remote_read"));
    }
    w
}

/// Logs each of [`warnings`] at warn level, naming the configuration's source.
pub fn log_warnings(cfg: &Config, source: &str) {
    for w in warnings(cfg) {
        tracing::warn!(source, "{w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Config {
        koban_config::load_str(text, Path::new("p.yml")).unwrap()
    }

    #[test]
    fn a_plain_config_has_no_warnings() {
        assert!(warnings(&load(koban_config::DEFAULT_CONFIG)).is_empty());
        assert!(warnings(&load(
            "global:\n  evaluation_interval: 30s\nstorage:\n  tsdb:\n    out_of_order_time_window: 5m\n"
        ))
        .is_empty());
    }

    #[test]
    fn each_ignored_key_is_named() {
        let cfg = load(
            "\
global:
  external_labels: {dc: eu}
  scrape_failure_log_file: /tmp/f.log
runtime:
  gogc: 50
rule_files: [rules.yml]
scrape_configs:
  - job_name: a
  - job_name: b
    native_histogram_bucket_limit: 10
storage:
  exemplars:
    max_exemplars: 100
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:9093']
remote_write:
  - url: http://127.0.0.1:1/write
remote_read:
  - url: http://127.0.0.1:1/read
",
        );
        assert_eq!(
            warnings(&cfg),
            [
                "global.scrape_failure_log_file is not supported by Koban yet; ignored until it is",
                "runtime.gogc has no effect on Koban (it has no Go garbage collector); ignored",
                "job \"b\": native_histogram_bucket_limit is not supported by Koban yet; ignored until it is",
                "storage.exemplars is not supported by Koban yet; ignored until it is",
                "remote_write is not supported by Koban yet; ignored until it is",
                "remote_read is not supported by Koban yet; ignored until it is",
            ]
        );
    }
}
