//! Recording and alerting rules, as Prometheus runs them.
//!
//! - [`spec`]: what a rule file says, checked and ready to run
//!   ([`spec::GroupSpec`], [`spec::RuleSpec`]); the contract between loading
//!   and evaluation.
//! - `load`: reads rule files (globs, YAML with positions) into specs, with
//!   promtool's checks and wording.
//! - `template`: Prometheus's template data and functions over
//!   koban-template.
//! - [`group`] (one group's cycle: rules in order, health, alerts to send),
//!   `recording` and `alerting` (each kind's output and state), [`manager`]
//!   (a task per group, schedule, reload keeping state), [`state`] (alert
//!   state across restarts), [`metrics`] (`koban_rule_*`).
//! - [`testing`]: an in-memory storage for rule tests.
//! - `unittest`: promtool's rule unit-test files (`koban test rules`).
//!
//! The crate takes the storage traits and an [`koban_model::AlertSink`]; it
//! names no concrete storage or notifier.

mod alerting;
pub mod group;
pub mod load;
pub mod manager;
pub mod metrics;
mod output;
mod recording;
pub mod spec;
pub mod state;
pub mod template;
pub mod testing;
pub mod unittest;

pub use alerting::{generator_url, RESOLVED_RETENTION_MS};
pub use group::{
    AlertState, AlertStatus, EvalEnv, Group, GroupStatus, Health, RuleError, RuleStatus,
};
pub use load::{load_file, load_files, FileError, LoadError};
pub use manager::Manager;
pub use metrics::RuleMetrics;
