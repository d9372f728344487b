//! From discovered target groups to Alertmanagers, as Prometheus: each
//! target gets `__scheme__` and `__alerts_path__` from its
//! `alerting.alertmanagers` entry (group labels under the target's own),
//! then goes through the entry's `relabel_configs`; what survives is posted
//! to `<__scheme__>://<__address__><__alerts_path__>`.

use crate::config::SetConfig;
use koban_discovery::{TargetGroup, ADDRESS_LABEL};
use koban_model::{relabel, Labels, LabelsBuilder};

pub(crate) const SCHEME_LABEL: &str = "__scheme__";
pub(crate) const PATH_LABEL: &str = "__alerts_path__";

/// Prometheus's `path.Join("/", prefix, "/api/v2/alerts")`: one slash
/// between the parts, `.` and `..` resolved, no trailing slash.
pub(crate) fn post_path(prefix: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in prefix.split('/').chain(["api", "v2", "alerts"]) {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The URL alerts are posted to, from an Alertmanager's labels.
pub(crate) fn url_of(labels: &LabelsBuilder) -> String {
    format!(
        "{}://{}{}",
        labels.get(SCHEME_LABEL),
        labels.get(ADDRESS_LABEL),
        labels.get(PATH_LABEL)
    )
}

/// The Alertmanagers of one set: (URLs to send to, deduplicated in
/// discovery order; URLs of the targets relabelling dropped, built from
/// their labels before relabelling).
pub(crate) fn alertmanagers(groups: &[TargetGroup], set: &SetConfig) -> (Vec<String>, Vec<String>) {
    let mut active: Vec<String> = Vec::new();
    let mut dropped = Vec::new();
    let path = post_path(&set.source.path_prefix);
    for g in groups {
        for t in &g.targets {
            let mut lb = LabelsBuilder::new();
            for l in t.iter() {
                lb.set(&l.name, &l.value);
            }
            lb.set(SCHEME_LABEL, &set.source.scheme);
            lb.set(PATH_LABEL, &path);
            for l in g.labels.iter() {
                if !t.has(&l.name) {
                    lb.set(&l.name, &l.value);
                }
            }
            let before = url_of(&lb);
            if !relabel::process_builder(&mut lb, set.relabel_configs()) {
                dropped.push(before);
                continue;
            }
            let addr = lb.get(ADDRESS_LABEL);
            if addr.is_empty() || addr.contains('/') {
                tracing::warn!(
                    set = %set.name,
                    address = addr,
                    labels = %Labels::from_vec(lb.iter().cloned().collect()),
                    "ignoring alertmanager: not a valid host:port after relabelling"
                );
                continue;
            }
            let url = url_of(&lb);
            if !active.contains(&url) {
                active.push(url);
            }
        }
    }
    (active, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use koban_config::load_str;
    use koban_httpclient::{ClientOptions, HttpClient};
    use std::path::Path;

    fn set(yaml: &str) -> SetConfig {
        let cfg = load_str(yaml, Path::new("p.yml")).unwrap();
        let am = cfg.alerting.alertmanagers[0].clone();
        SetConfig {
            name: "config-0".into(),
            client: HttpClient::new(&am.http_client_config(), "t", ClientOptions::default())
                .unwrap(),
            timeout: std::time::Duration::from_secs(1),
            source: am,
        }
    }

    fn group(addrs: &[&str], labels: &[(&str, &str)]) -> TargetGroup {
        TargetGroup {
            source: "0".into(),
            targets: addrs
                .iter()
                .map(|a| Labels::from_pairs([(ADDRESS_LABEL, *a)]))
                .collect(),
            labels: Labels::from_pairs(labels.iter().copied()),
        }
    }

    #[test]
    fn post_paths_join_like_go() {
        assert_eq!(post_path("/"), "/api/v2/alerts");
        assert_eq!(post_path(""), "/api/v2/alerts");
        assert_eq!(post_path("am"), "/am/api/v2/alerts");
        assert_eq!(post_path("/a/b/"), "/a/b/api/v2/alerts");
        assert_eq!(post_path("/a/../b"), "/b/api/v2/alerts");
    }

    #[test]
    fn relabelling_sees_scheme_path_and_group_labels() {
        let s = set("\
alerting:
  alertmanagers:
    - scheme: https
      path_prefix: /am
      static_configs: [{targets: ['a:9093', 'b:9093', 'a:9093']}]
      relabel_configs:
        - source_labels: [__address__]
          regex: 'b:.*'
          action: drop
        - source_labels: [dc]
          target_label: __alerts_path__
          regex: 'eu'
          replacement: /eu/api/v2/alerts
");
        let (active, dropped) = alertmanagers(
            &[group(&["a:9093", "b:9093", "a:9093"], &[("dc", "eu")])],
            &s,
        );
        assert_eq!(active, ["https://a:9093/eu/api/v2/alerts"]);
        assert_eq!(dropped, ["https://b:9093/am/api/v2/alerts"]);
    }

    #[test]
    fn relabelling_can_set_the_scheme_and_address() {
        let s = set("\
alerting:
  alertmanagers:
    - static_configs: [{targets: ['x']}]
      relabel_configs:
        - target_label: __scheme__
          replacement: https
        - source_labels: [__address__]
          target_label: __address__
          replacement: $1:9443
");
        let (active, dropped) = alertmanagers(&[group(&["x"], &[])], &s);
        assert_eq!(active, ["https://x:9443/api/v2/alerts"]);
        assert!(dropped.is_empty());
    }
}
