//! Alerts as rules produce them and Alertmanagers receive them, and the
//! contract between the two sides.
//!
//! The rule manager (crates/rules) produces [`Alert`]s and hands them to an
//! [`AlertSink`]; the sinks are the notifier (crates/notifier, which posts to
//! remote Alertmanagers) and, later, the built-in Alertmanager. Neither side
//! knows the other's type: the binary wires them.

use crate::Labels;

/// One alert, in the shape of Alertmanager's API v2 `postableAlert`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identifying labels, `alertname` included (rule labels and external
    /// labels are already applied by the producer, relabelling by the sink).
    pub labels: Labels,
    /// Rendered annotations.
    pub annotations: Labels,
    /// When the alert became active (pending), Unix milliseconds.
    pub starts_at: i64,
    /// When the alert resolves or, while firing, the time after which
    /// Alertmanager may consider it resolved without a re-send; Unix
    /// milliseconds, 0 when unset.
    pub ends_at: i64,
    /// Link back to the expression that produced the alert.
    pub generator_url: String,
}

impl Alert {
    /// True when the alert has ended at or before `now_ms`.
    pub fn resolved_at(&self, now_ms: i64) -> bool {
        self.ends_at != 0 && self.ends_at <= now_ms
    }
}

/// Receives alerts to deliver. Called from rule group tasks after each
/// evaluation that has alerts to send (firing ones, and resolved ones while
/// they are kept); must not block: a sink queues and delivers on its own
/// tasks, dropping (and counting) what its queue cannot hold.
pub trait AlertSink: Send + Sync {
    fn send(&self, alerts: Vec<Alert>);
}

/// An alert's state or, for an alerting rule, that of its most severe
/// alert, as `/api/v1/alerts` and `/api/v1/rules` spell it. Ordered by
/// severity (`Inactive < Pending < Firing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum AlertState {
    #[default]
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// The health of a rule or a rule group after its last evaluation, as
/// `/api/v1/rules` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleHealth {
    /// Not evaluated yet.
    #[default]
    Unknown,
    Ok,
    Err,
}

impl RuleHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleHealth::Unknown => "unknown",
            RuleHealth::Ok => "ok",
            RuleHealth::Err => "err",
        }
    }
}
