//! The rules under test: loaded from the rule files and evaluated over the
//! test group's storage with [`Group`], every group at every step.

use super::report::{self, AlertView};
use super::store::TestStorage;
use crate::group::{AlertState, EvalEnv, Group};
use crate::spec::GroupSpec;
use koban_model::Labels;
use koban_promql::Engine;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The rule groups of a test group, in evaluation order, with their
/// environment.
pub struct RulesUnderTest {
    env: EvalEnv,
    groups: Vec<Group>,
}

fn pairs(l: &Labels) -> Vec<(String, String)> {
    l.iter()
        .map(|x| (x.name.clone(), x.value.clone()))
        .collect()
}

impl RulesUnderTest {
    /// Loads the rule files. `interval_ms` is the default group interval
    /// (promtool passes the test group's `interval`); external labels and
    /// URL are for templates only. Groups named in `order` come in that
    /// order; the others keep file order, placed as promtool's sort places
    /// them (with the first named group). Errors are the loader's.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        files: &[PathBuf],
        ignore_unknown_fields: bool,
        order: &HashMap<String, usize>,
        interval_ms: i64,
        external_labels: &BTreeMap<String, String>,
        external_url: &str,
        store: &TestStorage,
        engine: &Engine,
    ) -> Result<Self, Vec<String>> {
        let specs = load_specs(files, ignore_unknown_fields)?;
        let mut env = EvalEnv::new(
            Arc::new(engine.clone()),
            Arc::new(store.clone()),
            Arc::new(store.clone()),
        );
        env.external_labels = Labels::from_pairs(
            external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>(),
        );
        env.external_url = external_url.to_string();
        env.default_interval = Duration::from_millis(interval_ms.max(0) as u64);
        let mut groups = Vec::with_capacity(specs.len());
        for s in specs {
            groups.push(Group::new(s, &env).map_err(|e| vec![e.to_string()])?);
        }
        // Stable: unnamed groups rank 0, as a missing key does in promtool.
        groups.sort_by_key(|g| order.get(g.name()).copied().unwrap_or(0));
        Ok(RulesUnderTest { env, groups })
    }

    /// Evaluates every group at `ts_ms`; one error per failing rule, as
    /// promtool words it: `    rule: NAME, time: 1m0s, err: ...`.
    /// Template errors are not failures (promtool shows them only in the
    /// alert's text), though the rule's health carries them.
    pub fn eval(&mut self, ts_ms: i64) -> Vec<String> {
        let mut errs = Vec::new();
        for g in &mut self.groups {
            g.eval(&self.env, ts_ms);
            for r in g.status().rules {
                if let Some(e) = r.last_error {
                    if crate::template::is_template_error(&e) {
                        continue;
                    }
                    errs.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.spec.name(),
                        report::go_duration(ts_ms)
                    ));
                }
            }
        }
        errs
    }

    /// The firing alerts of every alerting rule named `alertname`.
    pub fn firing(&self, alertname: &str) -> Vec<AlertView> {
        let mut out = Vec::new();
        for g in &self.groups {
            for r in g.status().rules {
                if r.spec.name() != alertname
                    || !matches!(r.spec.kind, crate::spec::RuleKind::Alerting { .. })
                {
                    continue;
                }
                for a in r.alerts {
                    if a.state == AlertState::Firing {
                        out.push(AlertView {
                            labels: pairs(&a.labels),
                            annotations: pairs(&a.annotations),
                        });
                    }
                }
            }
        }
        out
    }
}

/// Reads the rule files with the server's loader ([`crate::load`]), so a
/// file `koban test rules` accepts is one the server loads. With
/// `ignore_unknown_fields` (promtool's flag), keys the rule file format
/// does not have are dropped first; errors then carry no line:col, since
/// they refer to the file without those keys.
fn load_specs(
    files: &[PathBuf],
    ignore_unknown_fields: bool,
) -> Result<Vec<GroupSpec>, Vec<String>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for path in files {
        let loaded = if ignore_unknown_fields {
            load_lenient(path)
        } else {
            crate::load::load_file(path)
        };
        match loaded {
            Ok(groups) => out.extend(groups),
            Err(e) => errs.extend(e.errors.iter().map(|e| e.to_string())),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// One rule file with the keys the format lacks removed (at the top, group
/// and rule levels), then loaded as [`crate::load::load_file`] does.
fn load_lenient(path: &std::path::Path) -> Result<Vec<GroupSpec>, crate::load::LoadError> {
    const TOP_KEYS: &[&str] = &["groups"];
    const GROUP_KEYS: &[&str] = &[
        "name",
        "interval",
        "limit",
        "query_offset",
        "labels",
        "rules",
    ];
    const RULE_KEYS: &[&str] = &[
        "record",
        "alert",
        "expr",
        "for",
        "keep_firing_for",
        "labels",
        "annotations",
    ];
    let fail = |message: String| crate::load::LoadError {
        errors: vec![crate::load::FileError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message,
            source: None,
        }],
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read rule file: {e}")))?;
    let mut v: serde_json::Value =
        serde_saphyr::from_str(&text).map_err(|e| fail(e.to_string()))?;
    fn keep(v: &mut serde_json::Value, keys: &[&str]) {
        if let Some(m) = v.as_object_mut() {
            m.retain(|k, _| keys.contains(&k.as_str()));
        }
    }
    keep(&mut v, TOP_KEYS);
    for g in v
        .get_mut("groups")
        .and_then(|g| g.as_array_mut())
        .into_iter()
        .flatten()
    {
        keep(g, GROUP_KEYS);
        for r in g
            .get_mut("rules")
            .and_then(|r| r.as_array_mut())
            .into_iter()
            .flatten()
        {
            keep(r, RULE_KEYS);
        }
    }
    // JSON is YAML: the cleaned document decodes as the original would.
    let cleaned = serde_json::to_string(&v).map_err(|e| fail(e.to_string()))?;
    // A decoding error's position would point into the cleaned text.
    let decoded =
        koban_config::rules::parse_rule_file(&cleaned, path).map_err(|e| fail(e.message()))?;
    crate::load::check_file(path, decoded).map_err(|mut e| {
        for f in &mut e.errors {
            f.line = 0;
            f.column = 0;
        }
        e
    })
}
