//! Checked rule groups, ready to evaluate: produced by the loader from rule
//! files (or by tests directly), consumed by the group runner. Plain data;
//! two specs compare equal when they would evaluate the same way, which is
//! how a reload tells unchanged rules (whose state it keeps) from changed
//! ones.

use std::collections::BTreeMap;
use std::time::Duration;

/// One `groups:` entry of a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// The rule file the group came from, as the config names it after glob
    /// expansion (Prometheus's `file` in `/api/v1/rules`).
    pub file: String,
    pub name: String,
    /// `interval`; `None` means the global `evaluation_interval`.
    pub interval: Option<Duration>,
    /// `limit`: most series a rule may produce (0: no limit).
    pub limit: u64,
    /// `query_offset`; `None` means the global `rule_query_offset`.
    pub query_offset: Option<Duration>,
    /// `labels`: added to every rule of the group (a rule's own win).
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<RuleSpec>,
}

/// One rule of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// `expr` as written (parsed again by the runner; the loader has checked
    /// that it parses).
    pub expr: String,
    /// `labels`, before templating (alerting rules) .
    pub labels: BTreeMap<String, String>,
    pub kind: RuleKind,
    /// 1-based line of the rule in its file (0 when not from a file).
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    Recording {
        record: String,
    },
    Alerting {
        alert: String,
        /// `for` (zero: fires at once).
        for_: Duration,
        keep_firing_for: Duration,
        /// Before templating.
        annotations: BTreeMap<String, String>,
    },
}

impl RuleSpec {
    /// The rule's name: the recorded metric or the alert name.
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording { record } => record,
            RuleKind::Alerting { alert, .. } => alert,
        }
    }
}
