//! One rule group: its rules evaluated in order, once per call of
//! [`Group::eval`]; health and timings per rule; the alerts to send.
//!
//! The group is plain state driven from outside: the [`crate::manager`]
//! calls [`Group::eval`] on the group's schedule (from a blocking thread),
//! `koban test rules` calls it at the test's timestamps. Each rule's output
//! is committed before the next rule runs, so a rule sees the results of
//! the rules before it in the same cycle.

use crate::alerting::AlertingRule;
use crate::metrics::{GroupMetrics, RuleMetrics};
use crate::output::OutSeries;
use crate::recording::RecordingRule;
use crate::spec::{GroupSpec, RuleKind, RuleSpec};
use koban_model::{AlertSink, Labels};
use koban_promql::{Engine, Expr, QueryError, Sample, Value};
use koban_storage::{Appendable, Queryable, StorageError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What evaluating rules needs: the engine and storage, the global
/// defaults, the alerting settings and where alerts go. Built by the
/// binary (from flags and config) or by `koban test rules`; shared by
/// every group.
pub struct EvalEnv {
    pub engine: Arc<Engine>,
    /// Where rule queries read (normally the same storage as `appendable`).
    pub queryable: Arc<dyn Queryable>,
    /// Where recorded series and `ALERTS` go.
    pub appendable: Arc<dyn Appendable>,
    /// `global.external_labels`: `$externalLabels` in templates, and added
    /// to every alert sent (alert labels win).
    pub external_labels: Labels,
    /// `--web.external-url`: `$externalURL`, and generator URLs.
    pub external_url: String,
    /// `global.evaluation_interval`, for groups without `interval`.
    pub default_interval: Duration,
    /// `global.rule_query_offset`, for groups without `query_offset`.
    pub default_query_offset: Duration,
    /// `--rules.alert.for-outage-tolerance`.
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period`.
    pub grace_period: Duration,
    /// `--rules.alert.resend-delay`.
    pub resend_delay: Duration,
    /// Where alerts are sent; `None` keeps them local (API and series only).
    pub sink: Option<Arc<dyn AlertSink>>,
    /// Rule metrics (`koban_rule_*`); unregistered ones by default.
    pub metrics: RuleMetrics,
    /// Directory for the alert state kept across restarts (see
    /// [`crate::state`]); `None` keeps none.
    pub state_dir: Option<std::path::PathBuf>,
}

impl EvalEnv {
    /// An environment with Prometheus's defaults: 1m interval, no query
    /// offset, 1h outage tolerance, 10m grace period, 1m resend delay, no
    /// sink, no state directory.
    pub fn new(
        engine: Arc<Engine>,
        queryable: Arc<dyn Queryable>,
        appendable: Arc<dyn Appendable>,
    ) -> Self {
        EvalEnv {
            engine,
            queryable,
            appendable,
            external_labels: Labels::empty(),
            external_url: String::new(),
            default_interval: Duration::from_secs(60),
            default_query_offset: Duration::ZERO,
            outage_tolerance: Duration::from_secs(3600),
            grace_period: Duration::from_secs(600),
            resend_delay: Duration::from_secs(60),
            sink: None,
            metrics: RuleMetrics::default(),
            state_dir: None,
        }
    }
}

/// Errors building or evaluating rules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// An expression that does not parse (the loader checks them first).
    #[error("{file}: group {group:?}, rule {rule:?}: {msg}")]
    Parse {
        file: String,
        group: String,
        rule: String,
        msg: String,
    },
    /// An evaluation error, as the rule's `lastError` shows it.
    #[error("{0}")]
    Eval(String),
}

/// State of an alert, or (the highest of its alerts) of an alerting rule.
pub use koban_model::alert::AlertState;
/// Health of a rule or group (koban-model's, shared with the web API's
/// view).
pub use koban_model::alert::RuleHealth as Health;

/// One alert as the API shows it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertStatus {
    pub labels: Labels,
    pub annotations: Labels,
    pub state: AlertState,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub keep_firing_since_ms: Option<i64>,
    pub last_sent_at_ms: Option<i64>,
    pub value: f64,
}

/// One rule's status.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStatus {
    pub spec: RuleSpec,
    /// The expression in canonical form (Prometheus's `query`).
    pub query: String,
    pub health: Health,
    pub last_error: Option<String>,
    /// Wall-clock start of the last evaluation, Unix ms.
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_time: Duration,
    /// Alerting rules: the highest state of the alerts.
    pub state: AlertState,
    /// Alerting rules: pending and firing alerts (resolved ones left out,
    /// as Prometheus's API), in label order.
    pub alerts: Vec<AlertStatus>,
}

/// One group's status.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStatus {
    pub name: String,
    pub file: String,
    pub interval: Duration,
    pub limit: u64,
    pub query_offset: Duration,
    /// The group's `labels` (added to each rule's own; a rule's win).
    pub labels: std::collections::BTreeMap<String, String>,
    /// Wall-clock start of the last evaluation, Unix ms.
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_time: Duration,
    pub rules: Vec<RuleStatus>,
}

/// Appends of one rule's evaluation: refusals counted, the first error
/// kept for the rule's health.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub samples: u64,
    pub first_error: Option<StorageError>,
    pub refused: u64,
}

impl Written {
    pub fn record(&mut self, r: Result<(), StorageError>) {
        match r {
            Ok(()) => self.samples += 1,
            Err(e) => {
                self.refused += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e);
                }
            }
        }
    }
}

pub(crate) enum RuleKindState {
    Recording(RecordingRule),
    Alerting(Box<AlertingRule>),
}

/// One rule with its parsed expression and state.
pub(crate) struct Rule {
    pub spec: RuleSpec,
    pub expr: Expr,
    pub query: String,
    pub kind: RuleKindState,
    /// [`crate::state::rule_fingerprint`]: equal means unchanged by a reload.
    pub fingerprint: u64,
    pub health: Health,
    pub last_error: Option<String>,
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_time: Duration,
}

/// A group's rules and their state. See the module docs.
pub struct Group {
    pub(crate) spec: GroupSpec,
    interval: Duration,
    query_offset: Duration,
    pub(crate) rules: Vec<Rule>,
    /// Series of rules a reload removed, stale-marked at the next evaluation.
    stale_series: Vec<OutSeries>,
    last_evaluation_ms: Option<i64>,
    evaluation_time: Duration,
    metrics: GroupMetrics,
    /// Alert states changed since the state file was written.
    pub(crate) state_dirty: bool,
}

/// Merges group labels under a rule's own.
fn rule_labels(g: &GroupSpec, r: &RuleSpec) -> std::collections::BTreeMap<String, String> {
    let mut m = g.labels.clone();
    for (k, v) in &r.labels {
        m.insert(k.clone(), v.clone());
    }
    m
}

impl Group {
    /// Parses every rule's expression. Fails only on an expression that
    /// does not parse (which the loader has refused already).
    pub fn new(spec: GroupSpec, env: &EvalEnv) -> Result<Group, RuleError> {
        let mut rules = Vec::with_capacity(spec.rules.len());
        for r in &spec.rules {
            let expr = koban_promql::parse(&r.expr).map_err(|e| RuleError::Parse {
                file: spec.file.clone(),
                group: spec.name.clone(),
                rule: r.name().to_string(),
                msg: e.to_string(),
            })?;
            let query = expr.to_string();
            let labels = rule_labels(&spec, r);
            let kind = match &r.kind {
                RuleKind::Recording { record } => {
                    RuleKindState::Recording(RecordingRule::new(record, &labels))
                }
                RuleKind::Alerting {
                    alert,
                    for_,
                    keep_firing_for,
                    annotations,
                } => RuleKindState::Alerting(Box::new(AlertingRule::new(
                    alert,
                    *for_,
                    *keep_firing_for,
                    &labels,
                    annotations,
                    query.clone(),
                ))),
            };
            rules.push(Rule {
                fingerprint: crate::state::rule_fingerprint(&spec.labels, r),
                spec: r.clone(),
                expr,
                query,
                kind,
                health: Health::Unknown,
                last_error: None,
                last_evaluation_ms: None,
                evaluation_time: Duration::ZERO,
            });
        }
        let interval = spec.interval.unwrap_or(env.default_interval);
        let query_offset = spec.query_offset.unwrap_or(env.default_query_offset);
        let metrics = env
            .metrics
            .group(&spec.file, &spec.name, interval, rules.len());
        Ok(Group {
            spec,
            interval,
            query_offset,
            rules,
            stale_series: Vec::new(),
            last_evaluation_ms: None,
            evaluation_time: Duration::ZERO,
            metrics,
            state_dirty: false,
        })
    }

    pub fn spec(&self) -> &GroupSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn file(&self) -> &str {
        &self.spec.file
    }

    /// The evaluation interval (the group's or the default).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The query offset (the group's or the default).
    pub fn query_offset(&self) -> Duration {
        self.query_offset
    }

    /// Runs one cycle at `ts_ms` (the scheduled evaluation time): every
    /// rule in order, each queried at `ts_ms - query_offset` and its output
    /// committed (written at that time too) before the next; alerts due
    /// handed to `env.sink`. A failing rule sets its own health and the
    /// others still run.
    pub fn eval(&mut self, env: &EvalEnv, ts_ms: i64) {
        self.eval_cancellable(env, ts_ms, None)
    }

    /// As [`Group::eval`], stopping soon after `cancel` becomes true: the
    /// rule query in flight is aborted and its rule and the rules after it
    /// are left as they were (no output, no health change) for this cycle;
    /// what the rules before it wrote and sent stays.
    pub fn eval_cancellable(&mut self, env: &EvalEnv, ts_ms: i64, cancel: Option<&AtomicBool>) {
        let canceled = || cancel.is_some_and(|c| c.load(Ordering::Relaxed));
        let start = Instant::now();
        let wall = now_ms();
        let t = ts_ms - self.query_offset.as_millis() as i64;
        let resolves = env.appendable.resolves_refs();
        let mut total_samples = 0u64;
        if !self.stale_series.is_empty() {
            let mut app = env.appendable.appender();
            for mut s in self.stale_series.drain(..) {
                crate::output::append_stale(app.as_mut(), resolves, &mut s, t);
            }
            if let Err(e) = app.commit() {
                tracing::warn!(group = %self.spec.name, error = %e, "writing stale markers of removed rules");
            }
        }
        let mut to_send = Vec::new();
        for rule in &mut self.rules {
            if canceled() {
                break;
            }
            let rstart = Instant::now();
            let res = run_query(env, &rule.expr, &rule.query, t, cancel);
            if canceled() {
                break;
            }
            rule.last_evaluation_ms = Some(now_ms());
            self.metrics.evaluations.inc();
            let mut app = env.appendable.appender();
            let mut w = Written::default();
            let out: Result<Option<String>, RuleError> =
                res.and_then(|samples| match &mut rule.kind {
                    RuleKindState::Recording(r) => r
                        .write(&samples, self.spec.limit, app.as_mut(), resolves, t, &mut w)
                        .map(|()| None),
                    RuleKindState::Alerting(a) => {
                        let before = alert_fingerprint(a);
                        let r = a.write(
                            env,
                            &samples,
                            self.spec.limit,
                            app.as_mut(),
                            resolves,
                            ts_ms,
                            t,
                            &mut w,
                        );
                        if alert_fingerprint(a) != before {
                            self.state_dirty = true;
                        }
                        r
                    }
                });
            let commit = app.commit();
            match out {
                Ok(tmpl_err) => {
                    rule.health = Health::Ok;
                    rule.last_error = None;
                    if let Some(e) = tmpl_err {
                        rule.health = Health::Err;
                        rule.last_error = Some(e);
                    }
                    if let Some(e) = &w.first_error {
                        rule.health = Health::Err;
                        rule.last_error = Some(e.to_string());
                    }
                    if let Err(e) = commit {
                        rule.health = Health::Err;
                        rule.last_error = Some(e.to_string());
                    }
                }
                Err(e) => {
                    self.metrics.evaluation_failures.inc();
                    tracing::warn!(group = %self.spec.name, rule = %rule.spec.name(), error = %e, "evaluating rule failed");
                    rule.health = Health::Err;
                    rule.last_error = Some(e.to_string());
                }
            }
            if w.refused > 0 {
                tracing::warn!(group = %self.spec.name, rule = %rule.spec.name(), refused = w.refused, "rule evaluation results refused by storage");
            }
            total_samples += w.samples;
            if let (Some(_), RuleKindState::Alerting(a)) = (&env.sink, &mut rule.kind) {
                to_send.extend(a.due_alerts(env, ts_ms, self.interval));
            }
            rule.evaluation_time = rstart.elapsed();
            env.metrics
                .evaluation_duration
                .observe(rule.evaluation_time.as_secs_f64());
        }
        if let (Some(sink), false) = (&env.sink, to_send.is_empty()) {
            sink.send(to_send);
        }
        self.evaluation_time = start.elapsed();
        self.last_evaluation_ms = Some(wall);
        self.metrics
            .finished(ts_ms, self.evaluation_time, total_samples);
        if self.state_dirty {
            if let Some(dir) = &env.state_dir {
                match crate::state::write(dir, self, ts_ms) {
                    Ok(()) => self.state_dirty = false,
                    Err(e) => {
                        tracing::warn!(group = %self.spec.name, error = %e, "writing rule state")
                    }
                }
            }
        }
    }

    /// Stale markers for every series of every rule, at `ts_ms - offset`
    /// (the group is going: removed by a reload).
    pub fn mark_all_stale(&mut self, env: &EvalEnv, ts_ms: i64) {
        let t = ts_ms - self.query_offset.as_millis() as i64;
        let resolves = env.appendable.resolves_refs();
        let mut app = env.appendable.appender();
        for mut s in self.stale_series.drain(..) {
            crate::output::append_stale(app.as_mut(), resolves, &mut s, t);
        }
        for r in &mut self.rules {
            match &mut r.kind {
                RuleKindState::Recording(x) => x.mark_all_stale(app.as_mut(), resolves, t),
                RuleKindState::Alerting(x) => x.mark_all_stale(app.as_mut(), resolves, t),
            }
        }
        if let Err(e) = app.commit() {
            tracing::warn!(group = %self.spec.name, error = %e, "writing stale markers of a removed group");
        }
    }

    /// Takes over the state of `old`'s rules that this group has unchanged
    /// (same name and spec, matched in order); the series of the others are
    /// stale-marked at this group's next evaluation.
    pub fn copy_state(&mut self, old: &mut Group) {
        let mut taken = vec![false; old.rules.len()];
        for r in &mut self.rules {
            let Some(j) = old
                .rules
                .iter()
                .enumerate()
                .position(|(j, o)| !taken[j] && o.fingerprint == r.fingerprint)
            else {
                continue;
            };
            taken[j] = true;
            let o = &mut old.rules[j];
            match (&mut r.kind, &mut o.kind) {
                (RuleKindState::Recording(n), RuleKindState::Recording(p)) => n.take_state(p),
                (RuleKindState::Alerting(n), RuleKindState::Alerting(p)) => n.take_state(p),
                _ => continue,
            }
            r.health = o.health;
            r.last_error = o.last_error.clone();
            r.last_evaluation_ms = o.last_evaluation_ms;
            r.evaluation_time = o.evaluation_time;
        }
        for (j, o) in old.rules.iter_mut().enumerate() {
            if taken[j] {
                continue;
            }
            match &mut o.kind {
                RuleKindState::Recording(p) => self.stale_series.extend(p.drain_series()),
                RuleKindState::Alerting(p) => self.stale_series.extend(p.drain_series()),
            }
        }
        self.stale_series.append(&mut old.stale_series);
        self.last_evaluation_ms = old.last_evaluation_ms;
        self.evaluation_time = old.evaluation_time;
        self.state_dirty = true;
    }

    /// Health, timings and active alerts of every rule.
    pub fn status(&self) -> GroupStatus {
        GroupStatus {
            name: self.spec.name.clone(),
            file: self.spec.file.clone(),
            interval: self.interval,
            limit: self.spec.limit,
            query_offset: self.query_offset,
            labels: self.spec.labels.clone(),
            last_evaluation_ms: self.last_evaluation_ms,
            evaluation_time: self.evaluation_time,
            rules: self.rules.iter().map(rule_status).collect(),
        }
    }

    /// Number of series written by recording rules' last evaluations.
    pub fn recorded_series(&self) -> usize {
        self.rules
            .iter()
            .map(|r| match &r.kind {
                RuleKindState::Recording(x) => x.series_count(),
                RuleKindState::Alerting(_) => 0,
            })
            .sum()
    }

    pub(crate) fn metrics(&self) -> &GroupMetrics {
        &self.metrics
    }
}

fn rule_status(r: &Rule) -> RuleStatus {
    let mut alerts = Vec::new();
    let mut state = AlertState::Inactive;
    if let RuleKindState::Alerting(a) = &r.kind {
        for e in a.entries() {
            state = state.max(e.state);
            if e.resolved_at.is_none() && e.state != AlertState::Inactive {
                alerts.push(e.status());
            }
        }
        alerts.sort_by(|x, y| x.labels.cmp(&y.labels));
    }
    RuleStatus {
        spec: r.spec.clone(),
        query: r.query.clone(),
        health: r.health,
        last_error: r.last_error.clone(),
        last_evaluation_ms: r.last_evaluation_ms,
        evaluation_time: r.evaluation_time,
        state,
        alerts,
    }
}

/// A cheap digest of an alerting rule's alert states (not values), to
/// tell whether the state file needs writing.
fn alert_fingerprint(a: &AlertingRule) -> u64 {
    let mut x = 0u64;
    for (h, e) in a.alerts.iter() {
        let s = (e.state as u64) << 1 | e.keep_firing_since.is_some() as u64;
        x = x.wrapping_add(
            h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ s ^ (e.active_at as u64).rotate_left(17),
        );
    }
    x ^ a.alerts.len() as u64
}

/// Runs a rule's query at `t`; a scalar becomes a one-sample vector.
fn run_query(
    env: &EvalEnv,
    expr: &Expr,
    text: &str,
    t: i64,
    cancel: Option<&AtomicBool>,
) -> Result<Vec<Sample>, RuleError> {
    match env
        .engine
        .exec(&*env.queryable, expr, text, t, t, 0, cancel)
    {
        Ok(r) => match r.value {
            Value::Vector(v) => Ok(v),
            Value::Scalar { t, v } => Ok(vec![Sample {
                labels: Labels::empty(),
                t,
                v,
            }]),
            _ => Err(RuleError::Eval(
                "rule result is not a vector or scalar".into(),
            )),
        },
        Err(e) => Err(RuleError::Eval(query_error_text(&e))),
    }
}

fn query_error_text(e: &QueryError) -> String {
    e.to_string()
}

/// Expands one compiled label or annotation template for an alert. A template
/// error gives Prometheus's `<error expanding template: ...>` text and is
/// kept in `err` (the first one) for the rule's health.
pub(crate) fn expand_template(
    env: &EvalEnv,
    exp: &crate::template::Expander,
    labels: &Labels,
    value: f64,
    ts_ms: i64,
    err: &mut Option<String>,
) -> String {
    match exp.expand(env, labels, value, ts_ms) {
        Ok(s) => s,
        Err(e) => {
            let out = format!("<error expanding template: {e}>");
            if err.is_none() {
                *err = Some(e);
            }
            out
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
