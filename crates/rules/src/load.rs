//! Rule files -> checked [`GroupSpec`]s, with promtool's checks and wording.
//!
//! Callers: the rules component at startup and on every config reload
//! ([`load_files`] with the config's `rule_files`, already resolved against
//! the config file's directory), `koban check rules` / `koban check config`
//! ([`load_file`] per file) and `koban test rules`. Loading is synchronous
//! file I/O: async callers run it in `spawn_blocking`.
//!
//! Every problem in a file is collected (as promtool does) into one
//! [`LoadError`], each line `file:line:col: message`. Decoding errors (bad
//! YAML, unknown keys, bad durations) stop at the first one, as in promtool.
//! The checks, with promtool 2.42's wording:
//! - group: `Groupname must not be empty`, `groupname: "x" is repeated in
//!   the same file`; Prometheus 3's group labels: valid names, no `__name__`;
//! - rule (prefixed `group "g", rule N, "name": `): `only one of 'record' and
//!   'alert' must be set`, `one of 'record' or 'alert' must be set`,
//!   `field 'expr' must be set in rule`, `could not parse expression: ...`
//!   (the PromQL error with its line:col inside the expression),
//!   `invalid field 'annotations' | 'for' | 'keep_firing_for' in recording
//!   rule`, `invalid recording rule name: x`, `invalid label name: x`,
//!   `invalid annotation name: x`, and for alerting rules `label "k": ...` /
//!   `annotation "k": ...` when a template does not parse.
//!
//! Differences from promtool 2.42, on purpose:
//! - Every error has a position; promtool gives none (or `0:0`) for label,
//!   annotation and template errors and for a rule with neither `record`
//!   nor `alert`.
//! - Prometheus 3's group keys `query_offset` and `labels` are accepted;
//!   promtool 2.42 refuses them (`field query_offset not found in type
//!   rulefmt.RuleGroup`).
//! - Template errors name line and column inside the template (koban-template's
//!   form) where Go names only the line.
//!
//! Globs ([`load_files`]): each pattern is expanded as Go's `filepath.Glob`
//! does for Prometheus: matches sorted, a pattern matching nothing is no
//! error, and a literal path that does not exist matches nothing (the server
//! loads no rules from it; `koban check config` refuses it, as promtool does).

use crate::spec::{GroupSpec, RuleKind, RuleSpec};
use koban_config::rules::{Rule, RuleFile, RuleGroup};
use koban_config::{ConfigError, Pos};
use koban_model::labels::{is_valid_label_name, is_valid_metric_name};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One problem in a rule file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", koban_config::FilePos(file, *line, *column))]
pub struct FileError {
    pub file: PathBuf,
    /// 1-based; 0 when the position is unknown (I/O errors).
    pub line: u32,
    pub column: u32,
    pub message: String,
    /// The decoding error, when the file did not decode.
    #[source]
    pub source: Option<ConfigError>,
}

/// Every problem found in the rule files loaded; displays one per line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", Lines(errors))]
pub struct LoadError {
    pub errors: Vec<FileError>,
}

/// Loads every file the `patterns` match (globs, as the config resolved
/// them), in pattern order and sorted within a pattern; a file named twice
/// is loaded once. Errors of all files are collected.
pub fn load_files(patterns: &[String]) -> Result<Vec<GroupSpec>, LoadError> {
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    for file in expand(patterns, &mut errors) {
        match load_file(&file) {
            Ok(g) => groups.extend(g),
            Err(e) => errors.extend(e.errors),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(LoadError { errors })
    }
}

/// The files `patterns` match, deduplicated, in load order. A bad pattern
/// is an error (recorded in `errors`; the config loader refuses those
/// already, so this only happens to callers passing their own).
pub fn expand(patterns: &[String], errors: &mut Vec<FileError>) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for pat in patterns {
        match glob_sorted(pat) {
            Ok(files) => {
                for f in files {
                    if seen.insert(f.clone()) {
                        out.push(f);
                    }
                }
            }
            Err(message) => errors.push(FileError {
                file: PathBuf::from(pat),
                line: 0,
                column: 0,
                message,
                source: None,
            }),
        }
    }
    out
}

/// Go's `filepath.Glob`: sorted matches; nothing for a missing literal path.
fn glob_sorted(pat: &str) -> Result<Vec<PathBuf>, String> {
    let paths = glob::glob(pat).map_err(|e| format!("invalid rule file pattern: {e}"))?;
    let mut files: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
    files.sort();
    Ok(files)
}

/// Reads, decodes and checks one rule file. The specs name the file as
/// `path` is written.
pub fn load_file(path: &Path) -> Result<Vec<GroupSpec>, LoadError> {
    let decoded = match std::fs::read_to_string(path) {
        Ok(text) => koban_config::rules::parse_rule_file(&text, path),
        Err(e) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            message: format!("cannot read rule file: {e}"),
        }),
    };
    match decoded {
        Ok(f) => check_file(path, f),
        Err(e) => Err(LoadError {
            errors: vec![decode_error(path, e)],
        }),
    }
}

/// Checks a decoded rule file and turns it into specs.
pub fn check_file(path: &Path, file: RuleFile) -> Result<Vec<GroupSpec>, LoadError> {
    let mut c = Checker {
        path,
        errors: Vec::new(),
    };
    let mut names = HashSet::new();
    let mut specs = Vec::new();
    for g in file.groups {
        if g.name.is_empty() {
            c.err(g.at.group, "Groupname must not be empty".into());
        }
        if !names.insert(g.name.clone()) {
            c.err(
                g.at.group,
                format!("groupname: {:?} is repeated in the same file", g.name),
            );
        }
        for (k, pos) in &g.at.labels {
            if !is_valid_label_name(k) || k == "__name__" {
                c.err(*pos, format!("group {:?}: invalid label name: {k}", g.name));
            }
        }
        specs.push(c.group(g));
    }
    if c.errors.is_empty() {
        Ok(specs)
    } else {
        Err(LoadError { errors: c.errors })
    }
}

struct Checker<'a> {
    path: &'a Path,
    errors: Vec<FileError>,
}

impl Checker<'_> {
    fn err(&mut self, pos: Pos, message: String) {
        self.errors.push(FileError {
            file: self.path.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message,
            source: None,
        });
    }

    fn group(&mut self, g: RuleGroup) -> GroupSpec {
        let rules = g
            .rules
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| self.rule(&g.name, i + 1, r))
            .collect();
        GroupSpec {
            file: self.path.to_string_lossy().into_owned(),
            name: g.name,
            interval: g.interval.map(Duration::from).filter(|d| !d.is_zero()),
            limit: g.limit.max(0) as u64,
            query_offset: g.query_offset.map(Duration::from),
            labels: g.labels,
            rules,
        }
    }

    /// Checks rule number `n` (1-based) of `group`; `None` when it has errors.
    fn rule(&mut self, group: &str, n: usize, r: Rule) -> Option<RuleSpec> {
        let before = self.errors.len();
        let record = r.record.clone().unwrap_or_default();
        let alert = r.alert.clone().unwrap_or_default();
        let name = if alert.is_empty() { &record } else { &alert };
        let at = &r.at;
        let prefix = format!("group {group:?}, rule {n}, {name:?}: ");
        let mut err = |pos: Pos, msg: String| {
            let pos = if pos.line == 0 { at.rule } else { pos };
            self.err(pos, format!("{prefix}{msg}"));
        };
        if !record.is_empty() && !alert.is_empty() {
            err(
                at.record,
                "only one of 'record' and 'alert' must be set".into(),
            );
        }
        if record.is_empty() && alert.is_empty() {
            err(at.rule, "one of 'record' or 'alert' must be set".into());
        }
        let expr = r.expr.clone().unwrap_or_default();
        if expr.is_empty() {
            err(at.expr, "field 'expr' must be set in rule".into());
        } else if let Err(e) = koban_promql::parse(&expr) {
            err(at.expr, format!("could not parse expression: {e}"));
        }
        if !record.is_empty() {
            if !r.annotations.is_empty() {
                err(
                    at.record,
                    "invalid field 'annotations' in recording rule".into(),
                );
            }
            if r.for_.is_some_and(|d| !d.is_zero()) {
                err(at.record, "invalid field 'for' in recording rule".into());
            }
            if r.keep_firing_for.is_some_and(|d| !d.is_zero()) {
                err(
                    at.record,
                    "invalid field 'keep_firing_for' in recording rule".into(),
                );
            }
            if !is_valid_metric_name(&record) {
                err(at.record, format!("invalid recording rule name: {record}"));
            }
        }
        let key_pos = |m: &std::collections::BTreeMap<String, Pos>, k: &str| {
            m.get(k).copied().unwrap_or(at.rule)
        };
        for k in r.labels.keys() {
            if !is_valid_label_name(k) || k == "__name__" {
                err(key_pos(&at.labels, k), format!("invalid label name: {k}"));
            }
        }
        for k in r.annotations.keys() {
            if !is_valid_label_name(k) {
                err(
                    key_pos(&at.annotations, k),
                    format!("invalid annotation name: {k}"),
                );
            }
        }
        if !alert.is_empty() {
            let tmpl_name = format!("__alert_{alert}");
            for (what, map, pos) in [
                ("label", &r.labels, &at.labels),
                ("annotation", &r.annotations, &at.annotations),
            ] {
                for (k, v) in map {
                    if let Err(e) = crate::template::check(&tmpl_name, v) {
                        err(key_pos(pos, k), format!("{what} {k:?}: {e}"));
                    }
                }
            }
        }
        if self.errors.len() > before {
            return None;
        }
        let kind = if record.is_empty() {
            RuleKind::Alerting {
                alert,
                for_: r.for_.map(Duration::from).unwrap_or_default(),
                keep_firing_for: r.keep_firing_for.map(Duration::from).unwrap_or_default(),
                annotations: r.annotations,
            }
        } else {
            RuleKind::Recording { record }
        };
        Some(RuleSpec {
            expr,
            labels: r.labels,
            kind,
            line: r.at.rule.line,
        })
    }
}

/// A decoding error as a [`FileError`], keeping it as the source.
fn decode_error(path: &Path, e: ConfigError) -> FileError {
    let (line, column) = e.position().unwrap_or((0, 0));
    let message = e.message();
    FileError {
        file: path.to_path_buf(),
        line,
        column,
        message,
        source: Some(e),
    }
}

struct Lines<'a>(&'a [FileError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
