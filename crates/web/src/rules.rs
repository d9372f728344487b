//! Rule groups and alerts as `/api/v1/rules` and `/api/v1/alerts` show them.
//!
//! Contract: the binary's rules component fills these from the rule
//! manager's state ([`crate::Backend::rule_groups`], [`crate::Backend::alerts`]),
//! rendered annotations included; the web layer only filters, pages and
//! serialises them. Serialisation gives Prometheus 3's JSON: durations in
//! seconds as floats, times as RFC 3339 with nanoseconds (Go's
//! `time.Time`, trailing zeros trimmed; "0001-01-01T00:00:00Z" for never),
//! alert values as Go's `strconv.FormatFloat(v, 'e', -1, 64)`.

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One rule group.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroupStatus {
    pub name: String,
    /// The rule file, as the config names it after glob expansion.
    pub file: String,
    pub rules: Vec<RuleStatus>,
    /// Evaluation interval.
    pub interval: Duration,
    /// `limit` (0: none).
    pub limit: u64,
    /// How long the last evaluation of the whole group took.
    pub evaluation_time: Duration,
    /// When the last evaluation started; `None` before the first.
    pub last_evaluation: Option<SystemTime>,
}

pub use koban_model::alert::{AlertState, RuleHealth};

/// One rule of a group.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleStatus {
    Recording(RecordingRuleStatus),
    Alerting(AlertingRuleStatus),
}

impl RuleStatus {
    /// The recorded metric or the alert name.
    pub fn name(&self) -> &str {
        match self {
            RuleStatus::Recording(r) => &r.name,
            RuleStatus::Alerting(r) => &r.name,
        }
    }

    /// The rule's labels (what `match[]` selects on).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        match self {
            RuleStatus::Recording(r) => &r.labels,
            RuleStatus::Alerting(r) => &r.labels,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordingRuleStatus {
    /// The recorded metric name.
    pub name: String,
    /// The expression, as PromQL prints it.
    pub query: String,
    pub labels: BTreeMap<String, String>,
    pub health: RuleHealth,
    /// Empty when the last evaluation succeeded.
    pub last_error: String,
    pub evaluation_time: Duration,
    pub last_evaluation: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertingRuleStatus {
    /// The most severe state among the rule's alerts.
    pub state: AlertState,
    pub name: String,
    pub query: String,
    /// `for`.
    pub duration: Duration,
    pub keep_firing_for: Duration,
    /// The rule's labels and annotations before templating.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Active (pending or firing) alerts, annotations rendered.
    pub alerts: Vec<AlertStatus>,
    pub health: RuleHealth,
    pub last_error: String,
    pub evaluation_time: Duration,
    pub last_evaluation: Option<SystemTime>,
}

/// One active alert.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertStatus {
    /// Labels after templating, with the alert name, without external
    /// labels (as Prometheus shows them).
    pub labels: BTreeMap<String, String>,
    /// Rendered annotations.
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    /// When the alert became pending.
    pub active_at: Option<SystemTime>,
    /// Since when `keep_firing_for` holds it firing after its condition cleared.
    pub keep_firing_since: Option<SystemTime>,
    /// The sample value that triggered it, at the last evaluation.
    pub value: f64,
}

/// Go's `time.Time` JSON: RFC 3339 in UTC, nanoseconds with trailing zeros
/// trimmed; the zero time for `None`.
pub fn format_time(t: Option<SystemTime>) -> String {
    let Some(t) = t else {
        return "0001-01-01T00:00:00Z".into();
    };
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    };
    let Some(dt) = chrono::DateTime::from_timestamp(secs, nanos) else {
        return "0001-01-01T00:00:00Z".into();
    };
    let mut s = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// A Unix-milliseconds time as a [`SystemTime`].
pub fn from_unix_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: "1e+00", "1.5e-07", "NaN", "+Inf".
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{v:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!(
        "{mant}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.unsigned_abs()
    )
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

struct Map<'a>(&'a BTreeMap<String, String>);

impl Serialize for Map<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for AlertStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = 4
            + usize::from(self.active_at.is_some())
            + usize::from(self.keep_firing_since.is_some());
        let mut st = s.serialize_struct("Alert", n)?;
        st.serialize_field("labels", &Map(&self.labels))?;
        st.serialize_field("annotations", &Map(&self.annotations))?;
        st.serialize_field("state", self.state.as_str())?;
        if self.active_at.is_some() {
            st.serialize_field("activeAt", &format_time(self.active_at))?;
        }
        if self.keep_firing_since.is_some() {
            st.serialize_field("keepFiringSince", &format_time(self.keep_firing_since))?;
        }
        st.serialize_field("value", &format_value(self.value))?;
        st.end()
    }
}

impl Serialize for RecordingRuleStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RecordingRule", 8)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("query", &self.query)?;
        if !self.labels.is_empty() {
            st.serialize_field("labels", &Map(&self.labels))?;
        }
        st.serialize_field("health", self.health.as_str())?;
        if !self.last_error.is_empty() {
            st.serialize_field("lastError", &self.last_error)?;
        }
        st.serialize_field("evaluationTime", &secs(self.evaluation_time))?;
        st.serialize_field("lastEvaluation", &format_time(self.last_evaluation))?;
        st.serialize_field("type", "recording")?;
        st.end()
    }
}

/// An alerting rule, optionally without its alerts (`exclude_alerts`).
pub(crate) struct AlertingRuleJson<'a> {
    pub rule: &'a AlertingRuleStatus,
    pub exclude_alerts: bool,
}

impl Serialize for AlertingRuleJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.rule;
        let mut st = s.serialize_struct("AlertingRule", 13)?;
        st.serialize_field("state", r.state.as_str())?;
        st.serialize_field("name", &r.name)?;
        st.serialize_field("query", &r.query)?;
        st.serialize_field("duration", &secs(r.duration))?;
        st.serialize_field("keepFiringFor", &secs(r.keep_firing_for))?;
        st.serialize_field("labels", &Map(&r.labels))?;
        st.serialize_field("annotations", &Map(&r.annotations))?;
        if self.exclude_alerts {
            // Prometheus leaves the slice nil: `null`.
            st.serialize_field("alerts", &())?;
        } else {
            st.serialize_field("alerts", &r.alerts)?;
        }
        st.serialize_field("health", r.health.as_str())?;
        if !r.last_error.is_empty() {
            st.serialize_field("lastError", &r.last_error)?;
        }
        st.serialize_field("evaluationTime", &secs(r.evaluation_time))?;
        st.serialize_field("lastEvaluation", &format_time(r.last_evaluation))?;
        st.serialize_field("type", "alerting")?;
        st.end()
    }
}

impl Serialize for AlertingRuleStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        AlertingRuleJson {
            rule: self,
            exclude_alerts: false,
        }
        .serialize(s)
    }
}

impl Serialize for RuleStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RuleStatus::Recording(r) => r.serialize(s),
            RuleStatus::Alerting(r) => r.serialize(s),
        }
    }
}

/// A group with a chosen subset of its rules, for `/api/v1/rules`.
pub(crate) struct GroupJson<'a> {
    pub group: &'a RuleGroupStatus,
    pub rules: Vec<&'a RuleStatus>,
    pub exclude_alerts: bool,
}

struct RulesJson<'b>(&'b [&'b RuleStatus], bool);

impl Serialize for RulesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for r in self.0 {
            match r {
                RuleStatus::Recording(r) => seq.serialize_element(r)?,
                RuleStatus::Alerting(r) => seq.serialize_element(&AlertingRuleJson {
                    rule: r,
                    exclude_alerts: self.1,
                })?,
            }
        }
        seq.end()
    }
}

impl Serialize for GroupJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let g = self.group;
        let mut st = s.serialize_struct("RuleGroup", 7)?;
        st.serialize_field("name", &g.name)?;
        st.serialize_field("file", &g.file)?;
        st.serialize_field("rules", &RulesJson(&self.rules, self.exclude_alerts))?;
        st.serialize_field("interval", &secs(g.interval))?;
        st.serialize_field("limit", &g.limit)?;
        st.serialize_field("evaluationTime", &secs(g.evaluation_time))?;
        st.serialize_field("lastEvaluation", &format_time(g.last_evaluation))?;
        st.end()
    }
}

impl Serialize for RuleGroupStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        GroupJson {
            group: self,
            rules: self.rules.iter().collect(),
            exclude_alerts: false,
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_go_formats_them() {
        assert_eq!(format_value(1.0), "1e+00");
        assert_eq!(format_value(1.5), "1.5e+00");
        assert_eq!(format_value(0.0), "0e+00");
        assert_eq!(format_value(-2.5e-7), "-2.5e-07");
        assert_eq!(format_value(1e100), "1e+100");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn times_as_go_formats_them() {
        assert_eq!(format_time(None), "0001-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(format_time(Some(t)), "2023-11-14T22:13:20.12Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 0);
        assert_eq!(format_time(Some(t)), "2023-11-14T22:13:20Z");
        let t = UNIX_EPOCH + Duration::new(1, 1);
        assert_eq!(format_time(Some(t)), "1970-01-01T00:00:01.000000001Z");
        assert_eq!(
            format_time(Some(from_unix_ms(1500))),
            "1970-01-01T00:00:01.5Z"
        );
    }

    #[test]
    fn json_shape() {
        let g = RuleGroupStatus {
            name: "g".into(),
            file: "r.yml".into(),
            interval: Duration::from_secs(15),
            limit: 0,
            evaluation_time: Duration::from_millis(2),
            last_evaluation: None,
            rules: vec![
                RuleStatus::Recording(RecordingRuleStatus {
                    name: "job:up:sum".into(),
                    query: "sum by (job) (up)".into(),
                    health: RuleHealth::Ok,
                    ..Default::default()
                }),
                RuleStatus::Alerting(AlertingRuleStatus {
                    state: AlertState::Firing,
                    name: "Down".into(),
                    query: "up == 0".into(),
                    duration: Duration::from_secs(60),
                    health: RuleHealth::Err,
                    last_error: "boom".into(),
                    alerts: vec![AlertStatus {
                        labels: [("alertname".to_string(), "Down".to_string())].into(),
                        state: AlertState::Firing,
                        active_at: Some(UNIX_EPOCH + Duration::from_secs(1)),
                        value: 0.0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            ],
        };
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "name": "g", "file": "r.yml", "interval": 15.0, "limit": 0,
                "evaluationTime": 0.002, "lastEvaluation": "0001-01-01T00:00:00Z",
                "rules": [
                    {"name": "job:up:sum", "query": "sum by (job) (up)", "health": "ok",
                     "evaluationTime": 0.0, "lastEvaluation": "0001-01-01T00:00:00Z", "type": "recording"},
                    {"state": "firing", "name": "Down", "query": "up == 0", "duration": 60.0,
                     "keepFiringFor": 0.0, "labels": {}, "annotations": {},
                     "alerts": [{"labels": {"alertname": "Down"}, "annotations": {}, "state": "firing",
                                 "activeAt": "1970-01-01T00:00:01Z", "value": "0e+00"}],
                     "health": "err", "lastError": "boom", "evaluationTime": 0.0,
                     "lastEvaluation": "0001-01-01T00:00:00Z", "type": "alerting"}
                ]
            })
        );
    }
}
