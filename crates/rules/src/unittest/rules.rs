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
        let specs = interim_load(files, ignore_unknown_fields)?;
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

/// Interim rule file reading until `crate::load` lands: the YAML keys of a
/// rule file and durations, refusing unknown keys unless
/// `ignore_unknown_fields`. No positions, no promtool checks.
fn interim_load(
    files: &[PathBuf],
    ignore_unknown_fields: bool,
) -> Result<Vec<GroupSpec>, Vec<String>> {
    use crate::spec::{RuleKind, RuleSpec};
    use serde::Deserialize;
    #[derive(Deserialize)]
    struct File {
        groups: Vec<G>,
    }
    #[derive(Deserialize)]
    struct G {
        name: String,
        interval: Option<koban_config::Duration>,
        #[serde(default)]
        limit: u64,
        query_offset: Option<koban_config::Duration>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        rules: Vec<R>,
    }
    #[derive(Deserialize)]
    struct R {
        record: Option<String>,
        alert: Option<String>,
        expr: String,
        #[serde(rename = "for")]
        for_: Option<koban_config::Duration>,
        keep_firing_for: Option<koban_config::Duration>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
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
    let mut out = Vec::new();
    for path in files {
        let f = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{f}: {e}")])?;
        if !ignore_unknown_fields {
            // Unknown keys, checked on a generic view of the document.
            let v: serde_json::Value =
                serde_saphyr::from_str(&text).map_err(|e| vec![format!("{f}: {e}")])?;
            let mut errs = Vec::new();
            if let Some(m) = v.as_object() {
                for k in m.keys().filter(|k| *k != "groups") {
                    errs.push(format!(
                        "{f}: field {k} not found in type rulefmt.RuleGroups"
                    ));
                }
            }
            for g in v
                .get("groups")
                .and_then(|g| g.as_array())
                .into_iter()
                .flatten()
            {
                for k in g.as_object().into_iter().flat_map(|m| m.keys()) {
                    if !GROUP_KEYS.contains(&k.as_str()) {
                        errs.push(format!(
                            "{f}: field {k} not found in type rulefmt.RuleGroup"
                        ));
                    }
                }
                for r in g
                    .get("rules")
                    .and_then(|r| r.as_array())
                    .into_iter()
                    .flatten()
                {
                    for k in r.as_object().into_iter().flat_map(|m| m.keys()) {
                        if !RULE_KEYS.contains(&k.as_str()) {
                            errs.push(format!("{f}: field {k} not found in type rulefmt.Rule"));
                        }
                    }
                }
            }
            if !errs.is_empty() {
                return Err(errs);
            }
        }
        let file: File = serde_saphyr::from_str(&text).map_err(|e| vec![format!("{f}: {e}")])?;
        for g in file.groups {
            let mut rules = Vec::new();
            for r in g.rules {
                let kind = match (r.record, r.alert) {
                    (Some(record), None) => RuleKind::Recording { record },
                    (None, Some(alert)) => RuleKind::Alerting {
                        alert,
                        for_: r.for_.map(Into::into).unwrap_or_default(),
                        keep_firing_for: r.keep_firing_for.map(Into::into).unwrap_or_default(),
                        annotations: r.annotations,
                    },
                    _ => {
                        return Err(vec![format!(
                            "{f}: group {:?}: one of 'record' or 'alert' must be set",
                            g.name
                        )])
                    }
                };
                if let Err(e) = koban_promql::parse(&r.expr) {
                    return Err(vec![format!("{f}: group {:?}: {e}", g.name)]);
                }
                rules.push(RuleSpec {
                    expr: r.expr,
                    labels: r.labels,
                    kind,
                    line: 0,
                });
            }
            out.push(GroupSpec {
                file: f.clone(),
                name: g.name,
                interval: g.interval.map(Into::into),
                limit: g.limit,
                query_offset: g.query_offset.map(Into::into),
                labels: g.labels,
                rules,
            });
        }
    }
    Ok(out)
}
