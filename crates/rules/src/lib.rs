//! Recording and alerting rules, as Prometheus runs them.
//!
//! - [`spec`]: what a rule file says, checked and ready to run
//!   ([`spec::GroupSpec`], [`spec::RuleSpec`]); the contract between loading
//!   and evaluation.
//! - `load`: reads rule files (globs, YAML with positions) into specs, with
//!   promtool's checks and wording.
//! - `template`: Prometheus's template data and functions over
//!   koban-template.
//! - `group`, `alerting`, `recording`, `manager`: evaluation, alert state,
//!   stale markers, state restored after a restart.
//! - `unittest`: promtool's rule unit-test files (`koban test rules`).
//!
//! The crate takes the storage traits and an [`koban_model::AlertSink`]; it
//! names no concrete storage or notifier.

pub mod spec;
