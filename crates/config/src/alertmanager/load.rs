//! Loading alertmanager.yml: YAML -> [`Config`], receivers finished with
//! the global defaults, route defaults inherited, templates made relative
//! to the file, and Alertmanager 0.25's checks with file positions.

use super::route::{Route, DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT, DEFAULT_REPEAT_INTERVAL};
use super::Config;
use crate::error::ConfigError;
use crate::load::{invalid, item_pos, resolve, value_pos, yaml_err};
use crate::tree::{parse_tree, Node, Pos};
use koban_model::labels::is_valid_label_name;
use koban_model::{MatchType, Matcher};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// Reads and loads an alertmanager.yml; see [`load_str`].
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: path.to_path_buf(),
        message: format!("cannot read config file: {e}"),
    })?;
    load_str(&text, path)
}

/// Parses and validates an alertmanager.yml held in `text`.
///
/// `path_for_errors` names the file in errors; its directory is the base
/// for `templates` globs and the receivers' `*_file` settings. Checks, as
/// Alertmanager 0.25: a root route with a receiver and without matchers or
/// time intervals; receivers with unique names; every receiver and time
/// interval a route names is defined; time interval names unique; `group_by`
/// with valid, unique label names (or only `...`); label names and regexes
/// of `match`/`match_re` valid; `group_interval`/`repeat_interval` not zero.
pub fn load_str(text: &str, path_for_errors: &Path) -> Result<Config, ConfigError> {
    let path = path_for_errors;
    let base = path.parent().unwrap_or(Path::new(""));
    let tree = parse_tree(text).map_err(|e| yaml_err(path, &e))?;
    let cfg: Option<Config> = serde_saphyr::from_str(text).map_err(|e| yaml_err(path, &e))?;
    let mut cfg = cfg.unwrap_or_default();

    let inode = tree.get("inhibit_rules");
    for (i, r) in cfg.inhibit_rules.iter().enumerate() {
        super::inhibit::check(r, inode.and_then(|n| n.index(i)), path)?;
    }

    let root_node = tree.get("route");
    if let Some(root) = &cfg.route {
        check_route(root, root_node, path)?;
    }

    // Receivers: unique names, then each finished with the global defaults.
    let rnode = tree.get("receivers");
    let mut names = HashSet::new();
    for (i, r) in cfg.receivers.iter_mut().enumerate() {
        let node = rnode.and_then(|n| n.index(i));
        if !names.insert(r.name.clone()) {
            return Err(invalid(
                path,
                value_pos(node, "name"),
                format!("notification config name {:?} is not unique", r.name),
            ));
        }
        r.finish(&cfg.global, node, path, base)?;
    }

    let Some(root) = cfg.route.as_mut() else {
        return Err(invalid(path, Pos::default(), "no routes provided".into()));
    };
    let root_pos = root_node.map_or(Pos::default(), |n| n.pos);
    if root.receiver.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(
            path,
            root_pos,
            "root route must specify a default receiver".into(),
        ));
    }
    for key in ["match", "match_re", "matchers"] {
        let set = match key {
            "match" => !root.match_.is_empty(),
            "match_re" => !root.match_re.is_empty(),
            _ => !root.matchers.is_empty(),
        };
        if set {
            return Err(invalid(
                path,
                key_pos(root_node, key),
                "root route must not have any matchers".into(),
            ));
        }
    }
    if !root.mute_time_intervals.is_empty() {
        return Err(invalid(
            path,
            key_pos(root_node, "mute_time_intervals"),
            "root route must not have any mute time intervals".into(),
        ));
    }
    if !root.active_time_intervals.is_empty() {
        return Err(invalid(
            path,
            key_pos(root_node, "active_time_intervals"),
            "root route must not have any active time intervals".into(),
        ));
    }
    check_receivers(root, root_node, &names, path)?;

    // Time intervals: mute_time_intervals first, as Alertmanager.
    let mut intervals = HashSet::new();
    for (key, what) in [
        ("mute_time_intervals", "mute time interval"),
        ("time_intervals", "time interval"),
    ] {
        let list = if key == "time_intervals" {
            &cfg.time_intervals
        } else {
            &cfg.mute_time_intervals
        };
        for (i, ti) in list.iter().enumerate() {
            let node = tree.get(key).and_then(|n| n.index(i));
            if ti.name.is_empty() {
                return Err(invalid(
                    path,
                    item_pos(tree.get(key), Some(i)),
                    format!("missing name in {what}"),
                ));
            }
            if !intervals.insert(ti.name.clone()) {
                return Err(invalid(
                    path,
                    value_pos(node, "name"),
                    format!("{what} {:?} is not unique", ti.name),
                ));
            }
        }
    }
    let root = cfg.route.as_mut().expect("checked above");
    check_time_intervals(root, root_node, &intervals, path)?;

    // Defaults: the root's timers, then inheritance down the tree.
    root.group_wait = root.group_wait.or(Some(DEFAULT_GROUP_WAIT));
    root.group_interval = root.group_interval.or(Some(DEFAULT_GROUP_INTERVAL));
    root.repeat_interval = root.repeat_interval.or(Some(DEFAULT_REPEAT_INTERVAL));
    root.group_by = root.group_by.take().or_else(|| Some(Vec::new()));
    let head = root.clone();
    for r in &mut root.routes {
        r.inherit(&head);
    }

    for t in &mut cfg.templates {
        resolve(base, t);
    }
    for (i, t) in cfg.templates.iter().enumerate() {
        if let Err(e) = glob::Pattern::new(t) {
            return Err(invalid(
                path,
                item_pos(tree.get("templates"), Some(i)),
                format!("invalid template path {t:?}: {e}"),
            ));
        }
    }
    Ok(cfg)
}

fn key_pos(node: Option<&Node>, key: &str) -> Pos {
    node.and_then(|n| n.key_pos(key))
        .or(node.map(|n| n.pos))
        .unwrap_or_default()
}

/// Per-route checks (`Route.UnmarshalYAML` in Alertmanager), recursively.
fn check_route(r: &Route, node: Option<&Node>, path: &Path) -> Result<(), ConfigError> {
    check_label_map(&r.match_, node, "match", path, false)?;
    check_label_map(&r.match_re, node, "match_re", path, true)?;
    if let Some(group_by) = &r.group_by {
        let gnode = node.and_then(|n| n.get("group_by"));
        let mut seen = HashSet::new();
        let mut all = false;
        for (i, l) in group_by.iter().enumerate() {
            let pos = item_pos(gnode, Some(i));
            if l == "..." {
                all = true;
                continue;
            }
            if !is_valid_label_name(l) {
                return Err(invalid(
                    path,
                    pos,
                    format!("invalid label name {l:?} in group_by list"),
                ));
            }
            if !seen.insert(l.as_str()) {
                return Err(invalid(
                    path,
                    pos,
                    format!("duplicated label {l:?} in group_by"),
                ));
            }
        }
        if all && !seen.is_empty() {
            return Err(invalid(
                path,
                gnode.map_or(Pos::default(), |n| n.pos),
                "cannot have wildcard group_by (`...`) and other other labels at the same time"
                    .into(),
            ));
        }
    }
    for (key, v) in [
        ("group_interval", r.group_interval),
        ("repeat_interval", r.repeat_interval),
    ] {
        if v.is_some_and(|d| d.is_zero()) {
            return Err(invalid(
                path,
                value_pos(node, key),
                format!("{key} cannot be zero"),
            ));
        }
    }
    let children = node.and_then(|n| n.get("routes"));
    for (i, c) in r.routes.iter().enumerate() {
        check_route(c, children.and_then(|n| n.index(i)), path)?;
    }
    Ok(())
}

/// `match` / `match_re` keys must be label names; `match_re` values regexes.
pub(crate) fn check_label_map(
    m: &BTreeMap<String, String>,
    node: Option<&Node>,
    key: &str,
    path: &Path,
    regex: bool,
) -> Result<(), ConfigError> {
    let mnode = node.and_then(|n| n.get(key));
    for (k, v) in m {
        if !is_valid_label_name(k) {
            return Err(invalid(
                path,
                key_pos(mnode, k),
                format!("invalid label name {k:?}"),
            ));
        }
        if regex {
            if let Err(e) = Matcher::new(MatchType::Regex, k.clone(), v.clone()) {
                let message = match e {
                    koban_model::ModelError::InvalidRegex { regex, reason } => {
                        koban_model::matcher::regex_error_message(&regex, &reason)
                    }
                    e => e.to_string(),
                };
                return Err(invalid(path, value_pos(mnode, k), message));
            }
        }
    }
    Ok(())
}

fn check_receivers(
    r: &Route,
    node: Option<&Node>,
    names: &HashSet<String>,
    path: &Path,
) -> Result<(), ConfigError> {
    if let Some(name) = r.receiver.as_deref().filter(|n| !n.is_empty()) {
        if !names.contains(name) {
            return Err(invalid(
                path,
                value_pos(node, "receiver"),
                format!("undefined receiver {name:?} used in route"),
            ));
        }
    }
    let children = node.and_then(|n| n.get("routes"));
    for (i, c) in r.routes.iter().enumerate() {
        check_receivers(c, children.and_then(|n| n.index(i)), names, path)?;
    }
    Ok(())
}

fn check_time_intervals(
    r: &Route,
    node: Option<&Node>,
    names: &HashSet<String>,
    path: &Path,
) -> Result<(), ConfigError> {
    for key in ["mute_time_intervals", "active_time_intervals"] {
        let list = if key == "mute_time_intervals" {
            &r.mute_time_intervals
        } else {
            &r.active_time_intervals
        };
        for (i, name) in list.iter().enumerate() {
            if !names.contains(name) {
                return Err(invalid(
                    path,
                    item_pos(node.and_then(|n| n.get(key)), Some(i)),
                    format!("undefined time interval {name:?} used in route"),
                ));
            }
        }
    }
    let children = node.and_then(|n| n.get("routes"));
    for (i, c) in r.routes.iter().enumerate() {
        check_time_intervals(c, children.and_then(|n| n.index(i)), names, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
