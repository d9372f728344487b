//! Recording and alerting rules as a component: the rule manager, one task
//! per group. Each configuration's `rule_files` are loaded (and refused as
//! a whole on any error) in prepare; commit swaps the groups, keeping the
//! state of unchanged rules.

use super::{Commit, Component};
use anyhow::{anyhow, Result};
use futures::future::BoxFuture;
use koban_config::Config;
use koban_model::AlertSink;
use koban_promql::Engine;
use koban_rules::{EvalEnv, Manager, RuleMetrics};
use koban_storage::DynStorage;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Settings from the command line.
#[derive(Clone)]
pub struct RulesFlags {
    pub outage_tolerance: Duration,
    pub grace_period: Duration,
    pub resend_delay: Duration,
    /// `--web.external-url` (or the default one).
    pub external_url: String,
    /// Where alert state is kept across restarts (under the data dir).
    pub state_dir: PathBuf,
}

/// The rule manager and what every configuration's evaluation needs.
pub struct Rules {
    manager: Arc<Manager>,
    engine: Arc<Engine>,
    storage: DynStorage,
    flags: RulesFlags,
    metrics: RuleMetrics,
    sink: Option<Arc<dyn AlertSink>>,
}

impl Rules {
    /// A manager with no groups until the first configuration commits.
    /// `sink` receives the alerts to send (none: alerts stay local).
    pub fn new(
        engine: Arc<Engine>,
        storage: DynStorage,
        flags: RulesFlags,
        metrics: RuleMetrics,
        sink: Option<Arc<dyn AlertSink>>,
        cancel: CancellationToken,
    ) -> Self {
        Rules {
            manager: Arc::new(Manager::new(cancel)),
            engine,
            storage,
            flags,
            metrics,
            sink,
        }
    }

    pub fn manager(&self) -> &Arc<Manager> {
        &self.manager
    }

    fn env(&self, cfg: &Config) -> EvalEnv {
        let mut env = EvalEnv::new(
            self.engine.clone(),
            self.storage.clone(),
            self.storage.clone(),
        );
        env.external_labels = cfg.global.external_labels();
        env.external_url = self.flags.external_url.clone();
        env.default_interval = cfg.global.evaluation_interval.into();
        env.default_query_offset = cfg.global.rule_query_offset.into();
        env.outage_tolerance = self.flags.outage_tolerance;
        env.grace_period = self.flags.grace_period;
        env.resend_delay = self.flags.resend_delay;
        env.sink = self.sink.clone();
        env.metrics = self.metrics.clone();
        env.state_dir = Some(self.flags.state_dir.clone());
        env
    }
}

impl Component for Rules {
    fn name(&self) -> &'static str {
        "rules"
    }

    /// Loads every rule file (globs resolved by the config loader) and
    /// parses every group; any error refuses the configuration.
    fn prepare<'a>(&'a self, cfg: &Arc<Config>) -> Result<Commit<'a>> {
        let specs = interim_load(&cfg.rule_files)?;
        let prepared = self
            .manager
            .prepare(specs, Arc::new(self.env(cfg)))
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Box::new(move || self.manager.commit(prepared)))
    }

    /// Stops every group, waiting for evaluations in progress; alert state
    /// stays on disk for the next start.
    fn stop(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.manager.stop().await;
            Ok(())
        })
    }
}

/// Interim rule file reading until `koban_rules::load` lands: globs, the
/// YAML keys of a rule file, durations. No positions, no promtool checks.
fn interim_load(patterns: &[String]) -> Result<Vec<koban_rules::spec::GroupSpec>> {
    use koban_rules::spec::{GroupSpec, RuleKind, RuleSpec};
    use std::collections::BTreeMap;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        groups: Vec<G>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct G {
        name: String,
        interval: Option<String>,
        #[serde(default)]
        limit: u64,
        query_offset: Option<String>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        rules: Vec<R>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct R {
        record: Option<String>,
        alert: Option<String>,
        expr: String,
        #[serde(rename = "for")]
        for_: Option<String>,
        keep_firing_for: Option<String>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    let dur = |f: &str, s: &Option<String>| -> Result<Option<Duration>> {
        match s {
            None => Ok(None),
            Some(s) => koban_config::parse_duration(s)
                .map(|d| Some(d.into()))
                .map_err(|e| anyhow!("{f}: {e}")),
        }
    };
    let mut out = Vec::new();
    for p in patterns {
        let mut paths: Vec<PathBuf> = glob::glob(p)
            .map_err(|e| anyhow!("{p}: {e}"))?
            .filter_map(|r| r.ok())
            .collect();
        paths.sort();
        for path in paths {
            let f = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| anyhow!("{f}: {e}"))?;
            let file: File = serde_saphyr::from_str(&text).map_err(|e| anyhow!("{f}: {e}"))?;
            for g in file.groups {
                let mut rules = Vec::new();
                for r in g.rules {
                    let kind = match (r.record, r.alert) {
                        (Some(record), None) => RuleKind::Recording { record },
                        (None, Some(alert)) => RuleKind::Alerting {
                            alert,
                            for_: dur(&f, &r.for_)?.unwrap_or_default(),
                            keep_firing_for: dur(&f, &r.keep_firing_for)?.unwrap_or_default(),
                            annotations: r.annotations,
                        },
                        _ => return Err(anyhow!("{f}: one of 'record' or 'alert' must be set")),
                    };
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
                    interval: dur(&f, &g.interval)?,
                    limit: g.limit,
                    query_offset: dur(&f, &g.query_offset)?,
                    labels: g.labels,
                    rules,
                });
            }
        }
    }
    Ok(out)
}
