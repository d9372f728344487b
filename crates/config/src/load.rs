//! Loading: YAML -> typed config, defaults from `global`, path resolution,
//! `scrape_config_files` merging and validation with file positions.

use crate::error::ConfigError;
use crate::relabel::RelabelConfig;
use crate::schema::*;
use crate::tree::{parse_tree, Node, Pos};
use koban_model::labels::is_valid_label_name;
use serde_saphyr::MessageFormatter;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Access to the HTTP client fields of scrape, alertmanager and remote configs.
pub(crate) trait HasHttp {
    fn http(&self) -> HttpClientConfig;
    fn set_http(&mut self, h: HttpClientConfig);
}

/// Reads and loads a prometheus.yml; see [`load_str`].
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: path.to_path_buf(),
        message: format!("cannot read config file: {e}"),
    })?;
    load_str(&text, path)
}

/// Parses and validates a prometheus.yml held in `text`.
///
/// `path_for_errors` names the file in errors; its directory is the base for
/// relative paths (rule files, file SD globs, `*_file` settings and
/// `scrape_config_files`, which are read from disk). The returned config has
/// every default filled in and relative paths made relative to that directory.
pub fn load_str(text: &str, path_for_errors: &Path) -> Result<Config, ConfigError> {
    let path = path_for_errors;
    let base = path.parent().unwrap_or(Path::new(""));
    let tree = parse_tree(text).map_err(|e| yaml_err(path, &e))?;
    check_unsupported(&tree, path)?;
    let cfg: Option<Config> = serde_saphyr::from_str(text).map_err(|e| yaml_err(path, &e))?;
    let mut cfg = cfg.unwrap_or_default();

    finish_global(&mut cfg.global, tree.get("global"), path, base)?;

    let mut jobs: HashMap<String, ()> = HashMap::new();
    let sc_node = tree.get("scrape_configs");
    for (i, sc) in cfg.scrape_configs.iter_mut().enumerate() {
        let node = sc_node.and_then(|n| n.index(i));
        finish_scrape(sc, &cfg.global, node, path, base)?;
        if jobs.insert(sc.job_name.clone(), ()).is_some() {
            return Err(dup_job(path, node, &sc.job_name));
        }
    }

    for (i, f) in cfg.rule_files.iter_mut().enumerate() {
        if let Err(e) = glob::Pattern::new(f) {
            let pos = item_pos(tree.get("rule_files"), Some(i));
            return Err(invalid(
                path,
                pos,
                format!("invalid rule file path {f:?}: {e}"),
            ));
        }
        resolve(base, f);
    }

    // scrape_config_files: loaded in glob order, job names unique across all files.
    let mut extra = Vec::new();
    for (i, pattern) in cfg.scrape_config_files.iter_mut().enumerate() {
        resolve(base, pattern);
        let pos = item_pos(tree.get("scrape_config_files"), Some(i));
        let paths = glob::glob(pattern).map_err(|e| {
            invalid(
                path,
                pos,
                format!("invalid scrape config file path {pattern:?}: {e}"),
            )
        })?;
        let mut files: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        files.sort();
        for file in files {
            for sc in load_scrape_config_file(&file, &cfg.global)? {
                if jobs.insert(sc.0.job_name.clone(), ()).is_some() {
                    return Err(invalid(
                        &file,
                        sc.1,
                        format!(
                            "found multiple scrape configs with job name {:?}",
                            sc.0.job_name
                        ),
                    ));
                }
                extra.push(sc.0);
            }
        }
    }
    cfg.scrape_configs.extend(extra);

    finish_alerting(&mut cfg.alerting, tree.get("alerting"), path, base)?;
    finish_remote(&mut cfg, &tree, path, base)?;
    Ok(cfg)
}

/// Loads one `scrape_config_files` entry, returning each config with the
/// position of its `job_name` (for duplicate errors).
fn load_scrape_config_file(
    file: &Path,
    global: &GlobalConfig,
) -> Result<Vec<(ScrapeConfig, Pos)>, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Io {
        path: file.to_path_buf(),
        message: format!("cannot read scrape config file: {e}"),
    })?;
    let tree = parse_tree(&text).map_err(|e| yaml_err(file, &e))?;
    for item in tree.get("scrape_configs").map(Node::items).unwrap_or(&[]) {
        check_keys(item, file, SCRAPE_UNSUPPORTED)?;
    }
    let parsed: Option<ScrapeConfigsFile> =
        serde_saphyr::from_str(&text).map_err(|e| yaml_err(file, &e))?;
    let base = file.parent().unwrap_or(Path::new(""));
    let mut out = Vec::new();
    let sc_node = tree.get("scrape_configs");
    for (i, mut sc) in parsed
        .unwrap_or_default()
        .scrape_configs
        .into_iter()
        .enumerate()
    {
        let node = sc_node.and_then(|n| n.index(i));
        finish_scrape(&mut sc, global, node, file, base)?;
        out.push((sc, value_pos(node, "job_name")));
    }
    Ok(out)
}

/// Keys refused inside scrape configs and alertmanager configs, besides every
/// `*_sd_configs` other than `file_sd_configs` and `dns_sd_configs`.
const SCRAPE_UNSUPPORTED: &[&str] = &[];
/// The service discovery sections Koban implements.
const SUPPORTED_SD: &[&str] = &["file_sd_configs", "dns_sd_configs"];
/// Keys refused inside alertmanager configs.
const AM_UNSUPPORTED: &[&str] = &["sigv4"];
/// Keys refused inside remote write/read configs.
const REMOTE_UNSUPPORTED: &[&str] = &["sigv4", "azuread", "google_iam"];
/// Top-level sections refused.
const ROOT_UNSUPPORTED: &[&str] = &["tracing", "otlp"];

fn check_unsupported(tree: &Node, path: &Path) -> Result<(), ConfigError> {
    for (k, pos, _) in tree.entries() {
        if ROOT_UNSUPPORTED.contains(&k.as_str()) {
            return Err(unsupported(path, *pos, k));
        }
    }
    for item in tree.get("scrape_configs").map(Node::items).unwrap_or(&[]) {
        check_keys(item, path, SCRAPE_UNSUPPORTED)?;
    }
    let ams = tree.get("alerting").and_then(|a| a.get("alertmanagers"));
    for item in ams.map(Node::items).unwrap_or(&[]) {
        check_keys(item, path, AM_UNSUPPORTED)?;
    }
    for section in ["remote_write", "remote_read"] {
        for item in tree.get(section).map(Node::items).unwrap_or(&[]) {
            check_keys(item, path, REMOTE_UNSUPPORTED)?;
        }
    }
    Ok(())
}

fn check_keys(item: &Node, path: &Path, extra: &[&str]) -> Result<(), ConfigError> {
    for (k, pos, _) in item.entries() {
        let sd = k.ends_with("_sd_configs") && !SUPPORTED_SD.contains(&k.as_str());
        if sd || extra.contains(&k.as_str()) {
            return Err(unsupported(path, *pos, k));
        }
    }
    Ok(())
}

fn finish_global(
    g: &mut GlobalConfig,
    node: Option<&Node>,
    path: &Path,
    base: &Path,
) -> Result<(), ConfigError> {
    let defaults = GlobalConfig::default();
    if g.scrape_interval.is_zero() {
        g.scrape_interval = defaults.scrape_interval;
    }
    if g.scrape_timeout.is_zero() {
        g.scrape_timeout = defaults.scrape_timeout.min(g.scrape_interval);
    }
    if g.scrape_timeout > g.scrape_interval {
        return Err(invalid(
            path,
            value_pos(node, "scrape_timeout"),
            "global scrape timeout greater than scrape interval".into(),
        ));
    }
    if g.evaluation_interval.is_zero() {
        g.evaluation_interval = defaults.evaluation_interval;
    }
    if g.scrape_protocols.is_empty() {
        g.scrape_protocols = defaults.scrape_protocols;
    } else {
        check_protocols(&g.scrape_protocols, node, path)?;
    }
    let labels_node = node.and_then(|n| n.get("external_labels"));
    // Empty values are accepted and mean "no such label", as in Prometheus.
    for name in g.external_labels.keys() {
        let pos = labels_node
            .and_then(|n| n.key_pos(name))
            .unwrap_or_else(|| value_pos(node, "external_labels"));
        if !is_valid_label_name(name) {
            return Err(invalid(
                path,
                pos,
                format!("{name:?} is not a valid label name"),
            ));
        }
    }
    resolve(base, &mut g.query_log_file);
    resolve(base, &mut g.scrape_failure_log_file);
    Ok(())
}

fn check_protocols(
    p: &[ScrapeProtocol],
    node: Option<&Node>,
    path: &Path,
) -> Result<(), ConfigError> {
    for (i, a) in p.iter().enumerate() {
        if p[..i].contains(a) {
            let pos = item_pos(node.and_then(|n| n.get("scrape_protocols")), Some(i));
            return Err(invalid(
                path,
                pos,
                format!(
                    "duplicated protocol in scrape_protocols, got {}",
                    a.as_str()
                ),
            ));
        }
    }
    Ok(())
}

fn finish_scrape(
    sc: &mut ScrapeConfig,
    g: &GlobalConfig,
    node: Option<&Node>,
    path: &Path,
    base: &Path,
) -> Result<(), ConfigError> {
    if sc.job_name.is_empty() {
        return Err(invalid(
            path,
            value_pos(node, "job_name"),
            "job_name is empty".into(),
        ));
    }
    let job = sc.job_name.clone();
    if sc.scrape_interval.is_zero() {
        sc.scrape_interval = g.scrape_interval;
    }
    if sc.scrape_timeout.is_zero() {
        sc.scrape_timeout = g.scrape_timeout.min(sc.scrape_interval);
    }
    if sc.scrape_timeout > sc.scrape_interval {
        let pos = if node.and_then(|n| n.get("scrape_timeout")).is_some() {
            value_pos(node, "scrape_timeout")
        } else {
            value_pos(node, "scrape_interval")
        };
        return Err(invalid(
            path,
            pos,
            format!(
                "scrape timeout ({}) greater than scrape interval ({}) for scrape config with job name {job:?}",
                sc.scrape_timeout, sc.scrape_interval
            ),
        ));
    }
    if sc.scrape_protocols.is_empty() {
        sc.scrape_protocols = g.scrape_protocols.clone();
    } else {
        check_protocols(&sc.scrape_protocols, node, path)?;
    }
    if sc.scheme != "http" && sc.scheme != "https" {
        return Err(invalid(
            path,
            value_pos(node, "scheme"),
            format!(
                "scheme must be \"http\" or \"https\", got {:?} (job {job:?})",
                sc.scheme
            ),
        ));
    }
    // Prometheus accepts `metrics` and requests `/metrics` (URLs always
    // join host and path with a slash); store the form the scrape uses.
    if !sc.metrics_path.starts_with('/') {
        sc.metrics_path.insert(0, '/');
    }
    if sc.body_size_limit.0 == 0 {
        sc.body_size_limit = g.body_size_limit;
    }
    for (mine, global) in [
        (&mut sc.sample_limit, g.sample_limit),
        (&mut sc.target_limit, g.target_limit),
        (&mut sc.label_limit, g.label_limit),
        (&mut sc.label_name_length_limit, g.label_name_length_limit),
        (&mut sc.label_value_length_limit, g.label_value_length_limit),
        (&mut sc.keep_dropped_targets, g.keep_dropped_targets),
    ] {
        if *mine == 0 {
            *mine = global;
        }
    }
    if sc.metric_name_validation_scheme.is_empty() {
        sc.metric_name_validation_scheme = g.metric_name_validation_scheme.clone();
    }
    if sc.metric_name_escaping_scheme.is_empty() {
        sc.metric_name_escaping_scheme = g.metric_name_escaping_scheme.clone();
    }
    if !["", "legacy", "utf8"].contains(&sc.metric_name_validation_scheme.as_str()) {
        return Err(invalid(
            path,
            value_pos(node, "metric_name_validation_scheme"),
            format!(
                "unknown metric_name_validation_scheme {:?} (want legacy or utf8)",
                sc.metric_name_validation_scheme
            ),
        ));
    }
    sc.always_scrape_classic_histograms |= g.always_scrape_classic_histograms;
    sc.convert_classic_histograms_to_nhcb |= g.convert_classic_histograms_to_nhcb;
    if sc.scrape_failure_log_file.is_empty() {
        sc.scrape_failure_log_file = g.scrape_failure_log_file.clone();
    } else {
        resolve(base, &mut sc.scrape_failure_log_file);
    }
    finish_http(sc, node, path, base)?;
    finish_sd(
        &mut sc.static_configs,
        &mut sc.file_sd_configs,
        node,
        path,
        base,
    )?;
    check_dns_sd(&sc.dns_sd_configs, node, path)?;
    check_relabel(&sc.relabel_configs, node, "relabel_configs", path)?;
    check_relabel(
        &sc.metric_relabel_configs,
        node,
        "metric_relabel_configs",
        path,
    )?;
    Ok(())
}

fn finish_sd(
    statics: &mut [StaticConfig],
    files: &mut [FileSdConfig],
    node: Option<&Node>,
    path: &Path,
    base: &Path,
) -> Result<(), ConfigError> {
    let st_node = node.and_then(|n| n.get("static_configs"));
    for (i, st) in statics.iter().enumerate() {
        let item = st_node.and_then(|n| n.index(i));
        for (j, t) in st.targets.iter().enumerate() {
            if t.is_empty() || t.contains('/') {
                let pos = item_pos(item.and_then(|n| n.get("targets")), Some(j));
                return Err(invalid(path, pos, format!("{t:?} is not a valid hostname")));
            }
        }
        let lnode = item.and_then(|n| n.get("labels"));
        for name in st.labels.keys() {
            if !is_valid_label_name(name) {
                let pos = lnode
                    .and_then(|n| n.key_pos(name))
                    .unwrap_or_else(|| value_pos(item, "labels"));
                return Err(invalid(
                    path,
                    pos,
                    format!("{name:?} is not a valid label name"),
                ));
            }
        }
    }
    let f_node = node.and_then(|n| n.get("file_sd_configs"));
    for (i, fsd) in files.iter_mut().enumerate() {
        let item = f_node.and_then(|n| n.index(i));
        for (j, f) in fsd.files.iter_mut().enumerate() {
            if !valid_sd_file_pattern(f) {
                let pos = item_pos(item.and_then(|n| n.get("files")), Some(j));
                return Err(invalid(path, pos, format!("path name {f:?} is not valid for file discovery (want *.json, *.yml or *.yaml, '*' only in the file name)")));
            }
            resolve(base, f);
        }
    }
    Ok(())
}

/// Prometheus's rules for `dns_sd_configs` (at least one name, a port for
/// every type but SRV; the type itself is checked when parsed), and Koban's
/// `nameservers` must parse. Errors point at the entry, key or item at fault.
fn check_dns_sd(dns: &[DnsSdConfig], node: Option<&Node>, path: &Path) -> Result<(), ConfigError> {
    let d_node = node.and_then(|n| n.get("dns_sd_configs"));
    for (i, d) in dns.iter().enumerate() {
        let item = d_node.and_then(|n| n.index(i));
        if d.names.is_empty() {
            let pos = match item.and_then(|n| n.get("names")) {
                Some(n) => n.pos,
                None => item_pos(d_node, Some(i)),
            };
            return Err(invalid(
                path,
                pos,
                "DNS-SD config must contain at least one SRV record name".into(),
            ));
        }
        for (j, name) in d.names.iter().enumerate() {
            if name.trim().is_empty() {
                let pos = item_pos(item.and_then(|n| n.get("names")), Some(j));
                return Err(invalid(path, pos, "empty name in DNS-SD config".into()));
            }
        }
        if d.record_type != DnsRecordType::Srv && d.port == 0 {
            let pos = match item.and_then(|n| n.get("port")) {
                Some(n) => n.pos,
                None => value_pos(item, "type"),
            };
            return Err(invalid(
                path,
                pos,
                "a port is required in DNS-SD configs for all record types except SRV".into(),
            ));
        }
        for (j, ns) in d.nameservers.iter().enumerate() {
            if let Err(e) = crate::schema::parse_nameserver(ns) {
                let pos = item_pos(item.and_then(|n| n.get("nameservers")), Some(j));
                return Err(invalid(path, pos, e));
            }
        }
    }
    Ok(())
}

/// Prometheus accepts `dir/name.ext` with at most one `*`, in the last path
/// element, and extension json/yml/yaml (either case).
fn valid_sd_file_pattern(f: &str) -> bool {
    let (dir, name) = match f.rfind('/') {
        Some(i) => (&f[..i], &f[i + 1..]),
        None => ("", f),
    };
    if dir.contains('*') || name.matches('*').count() > 1 {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    (lower.ends_with(".json") || lower.ends_with(".yml") || lower.ends_with(".yaml"))
        && [".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML"]
            .iter()
            .any(|e| name.ends_with(e))
}

fn check_relabel(
    rules: &[RelabelConfig],
    node: Option<&Node>,
    key: &str,
    path: &Path,
) -> Result<(), ConfigError> {
    for (i, r) in rules.iter().enumerate() {
        if let Err(e) = r.validate() {
            let pos = item_pos(node.and_then(|n| n.get(key)), Some(i));
            return Err(invalid(path, pos, format!("{key}[{i}]: {e}")));
        }
    }
    Ok(())
}

/// Validates the HTTP client settings of `c` (Prometheus's rules, see
/// [`HttpClientConfig::validate`]), pointing errors at the key at fault,
/// and makes their file paths relative to `base`.
fn finish_http<T: HasHttp>(
    c: &mut T,
    node: Option<&Node>,
    path: &Path,
    base: &Path,
) -> Result<(), ConfigError> {
    let mut h = c.http();
    h.validate()
        .map_err(|e| invalid(path, value_pos(node, e.key), e.message))?;
    h.set_directory(base);
    c.set_http(h);
    Ok(())
}

fn finish_alerting(
    a: &mut AlertingConfig,
    node: Option<&Node>,
    path: &Path,
    base: &Path,
) -> Result<(), ConfigError> {
    check_relabel(
        &a.alert_relabel_configs,
        node,
        "alert_relabel_configs",
        path,
    )?;
    let am_node = node.and_then(|n| n.get("alertmanagers"));
    for (i, am) in a.alertmanagers.iter_mut().enumerate() {
        let n = am_node.and_then(|x| x.index(i));
        if am.scheme != "http" && am.scheme != "https" {
            return Err(invalid(
                path,
                value_pos(n, "scheme"),
                format!("scheme must be \"http\" or \"https\", got {:?}", am.scheme),
            ));
        }
        if am.api_version != "v2" {
            return Err(invalid(
                path,
                value_pos(n, "api_version"),
                // Prometheus 3's wording.
                format!(
                    "expected Alertmanager api version to be one of [v2] but got {}",
                    am.api_version
                ),
            ));
        }
        finish_http(am, n, path, base)?;
        finish_sd(
            &mut am.static_configs,
            &mut am.file_sd_configs,
            n,
            path,
            base,
        )?;
        check_dns_sd(&am.dns_sd_configs, n, path)?;
        check_relabel(&am.relabel_configs, n, "relabel_configs", path)?;
        check_relabel(&am.alert_relabel_configs, n, "alert_relabel_configs", path)?;
    }
    Ok(())
}

/// Headers remote write/read may not override (as Prometheus).
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "retry-after",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
];

fn check_url(url: &str, pos: Pos, path: &Path) -> Result<(), ConfigError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split("://")
            .nth(1)
            .is_some_and(|h| !h.is_empty() && !h.starts_with('/'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            pos,
            format!("invalid url {url:?}: want http(s)://host[:port]/path"),
        ))
    }
}

fn check_headers(
    h: &std::collections::BTreeMap<String, String>,
    node: Option<&Node>,
    path: &Path,
) -> Result<(), ConfigError> {
    for k in h.keys() {
        if RESERVED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
            let pos = node
                .and_then(|n| n.get("headers"))
                .and_then(|n| n.key_pos(k))
                .unwrap_or_else(|| value_pos(node, "headers"));
            return Err(invalid(
                path,
                pos,
                format!("{k} is a reserved header. It must not be changed"),
            ));
        }
    }
    Ok(())
}

fn finish_remote(
    cfg: &mut Config,
    tree: &Node,
    path: &Path,
    base: &Path,
) -> Result<(), ConfigError> {
    let mut names: HashMap<String, ()> = HashMap::new();
    let rw_node = tree.get("remote_write");
    for (i, rw) in cfg.remote_write.iter_mut().enumerate() {
        let n = rw_node.and_then(|x| x.index(i));
        check_url(&rw.url, value_pos(n, "url"), path)?;
        check_headers(&rw.headers, n, path)?;
        if !rw.name.is_empty() && names.insert(rw.name.clone(), ()).is_some() {
            return Err(invalid(
                path,
                value_pos(n, "name"),
                format!(
                    "found multiple remote write configs with name {:?}",
                    rw.name
                ),
            ));
        }
        if !["prometheus.WriteRequest", "io.prometheus.write.v2.Request"]
            .contains(&rw.protobuf_message.as_str())
        {
            return Err(invalid(
                path,
                value_pos(n, "protobuf_message"),
                format!(
                    "unknown remote write protobuf_message {:?}",
                    rw.protobuf_message
                ),
            ));
        }
        let q = &rw.queue_config;
        if q.max_shards == 0
            || q.min_shards == 0
            || q.min_shards > q.max_shards
            || q.max_samples_per_send == 0
        {
            return Err(invalid(path, value_pos(n, "queue_config"), "queue_config: shard counts and max_samples_per_send must be positive, min_shards <= max_shards".into()));
        }
        check_relabel(&rw.write_relabel_configs, n, "write_relabel_configs", path)?;
        finish_http(rw, n, path, base)?;
    }
    names.clear();
    let rr_node = tree.get("remote_read");
    for (i, rr) in cfg.remote_read.iter_mut().enumerate() {
        let n = rr_node.and_then(|x| x.index(i));
        check_url(&rr.url, value_pos(n, "url"), path)?;
        check_headers(&rr.headers, n, path)?;
        if !rr.name.is_empty() && names.insert(rr.name.clone(), ()).is_some() {
            return Err(invalid(
                path,
                value_pos(n, "name"),
                format!("found multiple remote read configs with name {:?}", rr.name),
            ));
        }
        finish_http(rr, n, path, base)?;
    }
    Ok(())
}

/// Makes `p` relative to `base` when it is relative and non-empty.
pub(crate) fn resolve(base: &Path, p: &mut String) {
    if p.is_empty() || Path::new(p.as_str()).is_absolute() || base.as_os_str().is_empty() {
        return;
    }
    *p = base.join(p.as_str()).to_string_lossy().into_owned();
}

/// Position of `key`'s value in `node`, else of `node`, else unknown.
pub(crate) fn value_pos(node: Option<&Node>, key: &str) -> Pos {
    match node {
        Some(n) => n.get(key).map(|v| v.pos).unwrap_or(n.pos),
        None => Pos::default(),
    }
}

/// Position of item `i` of a sequence node, else of the node.
pub(crate) fn item_pos(node: Option<&Node>, i: Option<usize>) -> Pos {
    match (node, i) {
        (Some(n), Some(i)) => n.index(i).map(|v| v.pos).unwrap_or(n.pos),
        (Some(n), None) => n.pos,
        _ => Pos::default(),
    }
}

fn dup_job(path: &Path, node: Option<&Node>, job: &str) -> ConfigError {
    invalid(
        path,
        value_pos(node, "job_name"),
        format!("found multiple scrape configs with job name {job:?}"),
    )
}

pub(crate) fn invalid(path: &Path, pos: Pos, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line: pos.line,
        column: pos.column,
        message,
    }
}

pub(crate) fn unsupported(path: &Path, pos: Pos, key: &str) -> ConfigError {
    ConfigError::Unsupported {
        path: path.to_path_buf(),
        line: pos.line,
        column: pos.column,
        key: key.to_string(),
    }
}

/// Maps a serde-saphyr error to a [`ConfigError`] with its position.
pub(crate) fn yaml_err(path: &Path, e: &serde_saphyr::Error) -> ConfigError {
    let pos = e
        .location()
        .map(|l| Pos::from_location(&l))
        .unwrap_or_default();
    let path = path.to_path_buf();
    match e.without_snippet() {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => ConfigError::UnknownField {
            path,
            line: pos.line,
            column: pos.column,
            field: field.clone(),
            expected: expected.iter().map(|s| s.to_string()).collect(),
        },
        other => ConfigError::Yaml {
            path,
            line: pos.line,
            column: pos.column,
            message: yaml_message(other),
        },
    }
}

/// A user-facing message for a serde-saphyr error, without its position.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    match e {
        E::Unexpected { expected, .. } => {
            let what = match *expected {
                "sequence start" => "a list",
                "mapping start" => "a mapping",
                "string scalar" => "a single value, not a list or mapping",
                other => other,
            };
            format!("wrong type: expected {what}")
        }
        E::InvalidScalar { ty, .. } => {
            let what = match *ty {
                "u64" | "u32" | "usize" => "a non-negative integer",
                "i64" | "i32" => "an integer",
                "f64" | "f32" => "a number",
                "bool" | "boolean" => "true or false",
                other => other,
            };
            format!("wrong type: expected {what}")
        }
        other => serde_saphyr::UserMessageFormatter
            .format_message(other)
            .into_owned(),
    }
}
