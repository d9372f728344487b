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
        let specs = koban_rules::load_files(&cfg.rule_files).map_err(|e| anyhow!("{e}"))?;
        let prepared = self
            .manager
            .prepare(specs, Arc::new(self.env(cfg)))
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Box::new(move || self.manager.commit(prepared)))
    }

    /// Stops every group, aborting rule queries in flight (shutdown never
    /// waits for a long rule query); alert state stays on disk for the next
    /// start.
    fn stop(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.manager.stop().await;
            Ok(())
        })
    }
}
