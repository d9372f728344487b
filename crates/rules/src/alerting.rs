//! Alerting rules: alert state (pending, firing, keep_firing_for, resolved
//! and kept 15 minutes), the `ALERTS` and `ALERTS_FOR_STATE` series, label
//! and annotation templates, and which alerts to send when.

use crate::group::{AlertState, AlertStatus, EvalEnv, RuleError, Written};
use crate::output::{
    append_stale, for_each_merged, merged, merged_eq, merged_hash, overrides, OutSeries, Overrides,
};
use crate::recording::HashKeyed;
use crate::template::Expander;
use koban_model::{Alert, Label, Labels, METRIC_NAME};
use koban_promql::Sample;
use koban_storage::Appender;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a resolved alert is kept (and re-sent) after it resolved.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60_000;

/// One alert of a rule.
#[derive(Debug, Clone)]
pub(crate) struct AlertEntry {
    /// Identifying labels: the sample's without `__name__`, the rule's
    /// (templated) and `alertname`.
    pub labels: Labels,
    pub annotations: Labels,
    pub state: AlertState,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub valid_until: i64,
    pub keep_firing_since: Option<i64>,
    /// The evaluation that last saw it in the result.
    gen: u64,
    /// `__name__` of the sample that last rendered the annotations (they
    /// see `$labels.__name__`), for the render cache.
    rendered_for: Option<(String, u64)>,
    /// `ALERTS{alertstate=...}` as last written.
    alerts_series: Option<OutSeries>,
    /// `ALERTS_FOR_STATE` as last written.
    for_series: Option<OutSeries>,
}

impl AlertEntry {
    pub(crate) fn restored(
        labels: Labels,
        annotations: Labels,
        state: AlertState,
        value: f64,
        active_at: i64,
    ) -> Self {
        AlertEntry {
            labels,
            annotations,
            state,
            value,
            active_at,
            fired_at: None,
            resolved_at: None,
            last_sent_at: None,
            valid_until: 0,
            keep_firing_since: None,
            gen: 0,
            rendered_for: None,
            alerts_series: None,
            for_series: None,
        }
    }

    fn take_series(&mut self, out: &mut Vec<OutSeries>) {
        out.extend(self.alerts_series.take());
        out.extend(self.for_series.take());
    }

    pub(crate) fn status(&self) -> AlertStatus {
        AlertStatus {
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            state: self.state,
            active_at_ms: self.active_at,
            fired_at_ms: self.fired_at,
            resolved_at_ms: self.resolved_at,
            keep_firing_since_ms: self.keep_firing_since,
            last_sent_at_ms: self.last_sent_at,
            value: self.value,
        }
    }

    /// Prometheus's needsSending.
    fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        match (self.resolved_at, self.last_sent_at) {
            (_, None) => true,
            (Some(r), Some(s)) if r > s => true,
            (_, Some(s)) => s + resend_delay_ms < ts,
        }
    }
}

/// The state of one alerting rule.
#[derive(Debug)]
pub(crate) struct AlertingRule {
    name: String,
    for_ms: i64,
    keep_firing_for_ms: i64,
    /// The rule's labels, before templating.
    labels: Vec<(String, String)>,
    /// Overrides when no label has a template: `__name__` removed, the
    /// rule's labels, `alertname`.
    static_ov: Option<Overrides>,
    /// The labels' compiled templates, in `labels` order.
    label_exp: Vec<Expander>,
    annotations: Vec<(String, String)>,
    /// The annotations' compiled templates, in `annotations` order.
    ann_exp: Vec<Expander>,
    /// Some annotation has a template.
    ann_templated: bool,
    /// Annotations may be reused while an alert's value and `__name__`
    /// stay the same (no template calls `query`).
    ann_cacheable: bool,
    /// Alerts by the hash of their labels.
    pub(crate) alerts: HashKeyed<AlertEntry>,
    gen: u64,
    scratch: Vec<(u64, usize)>,
    /// Per-sample overrides when labels are templated.
    dyn_ov: Vec<Overrides>,
    /// Series to stale-mark at the next successful evaluation.
    pending_stale: Vec<OutSeries>,
    /// The expression's canonical text, for generator URLs.
    expr_text: String,
}

fn templated(s: &str) -> bool {
    s.contains("{{")
}

impl AlertingRule {
    pub fn new(
        name: &str,
        for_: Duration,
        keep_firing_for: Duration,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        expr_text: String,
    ) -> Self {
        let labels: Vec<(String, String)> =
            labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let static_ov = if labels.iter().any(|(_, v)| templated(v)) {
            None
        } else {
            Some(Self::ov_for(name, labels.iter().cloned()))
        };
        let annotations: Vec<(String, String)> = annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let label_exp = labels.iter().map(|(_, v)| Expander::new(name, v)).collect();
        let ann_exp = annotations
            .iter()
            .map(|(_, v)| Expander::new(name, v))
            .collect();
        AlertingRule {
            name: name.to_string(),
            label_exp,
            ann_exp,
            for_ms: for_.as_millis() as i64,
            keep_firing_for_ms: keep_firing_for.as_millis() as i64,
            static_ov,
            ann_templated: annotations.iter().any(|(_, v)| templated(v)),
            ann_cacheable: !annotations.iter().any(|(_, v)| v.contains("query")),
            annotations,
            labels,
            alerts: HashKeyed::default(),
            gen: 0,
            scratch: Vec::new(),
            dyn_ov: Vec::new(),
            pending_stale: Vec::new(),
            expr_text,
        }
    }

    fn ov_for(name: &str, labels: impl Iterator<Item = (String, String)>) -> Overrides {
        overrides(
            [(METRIC_NAME.to_string(), String::new())]
                .into_iter()
                .chain(labels)
                .chain([("alertname".to_string(), name.to_string())]),
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders the annotations for `s`; the first template error is
    /// returned beside them (the text holds it too).
    fn render_annotations(
        &self,
        env: &EvalEnv,
        s: &Sample,
        ts: i64,
        err: &mut Option<String>,
    ) -> Labels {
        let mut v: Vec<Label> = Vec::with_capacity(self.annotations.len());
        for ((k, _), exp) in self.annotations.iter().zip(&self.ann_exp) {
            let out = crate::group::expand_template(env, exp, &s.labels, s.v, ts, err);
            v.push(Label::new(k.clone(), out));
        }
        // Annotation names are unique (a map) and sorted (BTreeMap order).
        // One that renders to "" is kept, as Prometheus keeps it.
        Labels::from_sorted_unchecked(v)
    }

    /// Evaluates one result at `ts` (the evaluation time; samples are
    /// written at `t_write`): alert states, `ALERTS` and `ALERTS_FOR_STATE`,
    /// stale markers for series that ended. Returns the first template
    /// error, if any (the alerts carry it in their text).
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        env: &EvalEnv,
        result: &[Sample],
        limit: u64,
        app: &mut dyn Appender,
        resolves_refs: bool,
        ts: i64,
        t_write: i64,
        w: &mut Written,
    ) -> Result<Option<String>, RuleError> {
        let mut tmpl_err = None;
        // 1. The alerts' label sets.
        self.scratch.clear();
        self.dyn_ov.clear();
        for (i, s) in result.iter().enumerate() {
            let h = match &self.static_ov {
                Some(ov) => merged_hash(&s.labels, ov),
                None => {
                    let expanded: Vec<(String, String)> = self
                        .labels
                        .iter()
                        .zip(&self.label_exp)
                        .map(|((k, _), exp)| {
                            let out = crate::group::expand_template(
                                env,
                                exp,
                                &s.labels,
                                s.v,
                                ts,
                                &mut tmpl_err,
                            );
                            (k.clone(), out)
                        })
                        .collect();
                    let ov = Self::ov_for(&self.name, expanded.into_iter());
                    let h = merged_hash(&s.labels, &ov);
                    self.dyn_ov.push(ov);
                    h
                }
            };
            self.scratch.push((h, i));
        }
        {
            let mut sorted: Vec<u64> = self.scratch.iter().map(|p| p.0).collect();
            sorted.sort_unstable();
            if sorted.windows(2).any(|p| p[0] == p[1]) {
                return Err(RuleError::Eval(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                ));
            }
        }
        self.gen += 1;
        let gen = self.gen;
        // 2. Update the alerts in the result, add new ones.
        let scratch = std::mem::take(&mut self.scratch);
        for &(h, i) in &scratch {
            let s = &result[i];
            let ov: &Overrides = match &self.static_ov {
                Some(ov) => ov,
                None => &self.dyn_ov[i],
            };
            let existing = match self.alerts.get(&h) {
                Some(a) if merged_eq(&s.labels, ov, &a.labels) => Some(a.state),
                Some(_) => {
                    tracing::warn!(alert = %self.name, "alert label hash collision; alert skipped");
                    continue;
                }
                None => None,
            };
            let name_key = (s.labels.metric_name().to_string(), s.v.to_bits());
            match existing {
                Some(state) if state != AlertState::Inactive => {
                    let reuse = self.ann_cacheable
                        && self.alerts[&h].rendered_for.as_ref() == Some(&name_key);
                    let ann = if reuse || !self.ann_templated {
                        None
                    } else {
                        Some(self.render_annotations(env, s, ts, &mut tmpl_err))
                    };
                    let a = self.alerts.get_mut(&h).expect("BUG: alert vanished");
                    a.value = s.v;
                    if let Some(ann) = ann {
                        a.annotations = ann;
                        a.rendered_for = Some(name_key);
                    }
                    a.gen = gen;
                }
                _ => {
                    let annotations = self.render_annotations(env, s, ts, &mut tmpl_err);
                    let mut a = AlertEntry::restored(
                        merged(&s.labels, ov),
                        annotations,
                        AlertState::Pending,
                        s.v,
                        ts,
                    );
                    a.gen = gen;
                    a.rendered_for = Some(name_key);
                    if let Some(mut old) = self.alerts.insert(h, a) {
                        old.take_series(&mut self.pending_stale);
                    }
                }
            }
        }
        self.scratch = scratch;
        // 3. States of the alerts not in the result; pending ones fire.
        let mut active = 0u64;
        let keep_for = self.keep_firing_for_ms;
        let for_ms = self.for_ms;
        let stale = &mut self.pending_stale;
        self.alerts.retain(|_, a| {
            if a.gen != gen {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_for > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_for;
                }
                if a.state == AlertState::Pending {
                    a.take_series(stale);
                    return false;
                }
                if let Some(r) = a.resolved_at {
                    if ts - r > RESOLVED_RETENTION_MS {
                        return false;
                    }
                }
                if !keep_firing {
                    if a.state != AlertState::Inactive {
                        a.state = AlertState::Inactive;
                        a.resolved_at = Some(ts);
                        a.take_series(stale);
                    }
                    return true;
                }
            } else {
                a.keep_firing_since = None;
            }
            active += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= for_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
                stale.extend(a.alerts_series.take());
            }
            true
        });
        if limit > 0 && active > limit {
            for (_, mut a) in self.alerts.drain() {
                a.take_series(&mut self.pending_stale);
            }
            return Err(RuleError::Eval(format!(
                "exceeded limit of {limit} with {active} alerts"
            )));
        }
        // 4. Write.
        for mut s in self.pending_stale.drain(..) {
            append_stale(app, resolves_refs, &mut s, t_write);
        }
        for a in self.alerts.values_mut() {
            if a.state == AlertState::Inactive {
                continue;
            }
            let state = a.state;
            let labels = &a.labels;
            let al = a.alerts_series.get_or_insert_with(|| {
                let mut v = Vec::with_capacity(labels.len() + 2);
                let ov = [
                    (METRIC_NAME.to_string(), "ALERTS".to_string()),
                    ("alertstate".to_string(), state.as_str().to_string()),
                ];
                for_each_merged(labels, &ov, |n, val| v.push(Label::new(n, val)));
                OutSeries::new(Labels::from_sorted_unchecked(v))
            });
            w.record(al.append(app, resolves_refs, t_write, 1.0));
            let fl = a.for_series.get_or_insert_with(|| {
                let ov = [(METRIC_NAME.to_string(), "ALERTS_FOR_STATE".to_string())];
                OutSeries::new(merged(labels, &ov))
            });
            let secs = a.active_at.div_euclid(1000) as f64;
            w.record(fl.append(app, resolves_refs, t_write, secs));
        }
        Ok(tmpl_err)
    }

    /// The alerts to send after an evaluation at `ts`, marking them sent.
    pub fn due_alerts(&mut self, env: &EvalEnv, ts: i64, interval: Duration) -> Vec<Alert> {
        let resend = env.resend_delay.as_millis() as i64;
        let delta = resend.max(interval.as_millis() as i64);
        let mut out = Vec::new();
        let url = generator_url(&env.external_url, &self.expr_text);
        for a in self.alerts.values_mut() {
            if !a.needs_sending(ts, resend) {
                continue;
            }
            a.last_sent_at = Some(ts);
            a.valid_until = ts + 4 * delta;
            let labels = if env.external_labels.is_empty() {
                a.labels.clone()
            } else {
                let mut b = env.external_labels.builder();
                for l in a.labels.iter() {
                    b.set(&l.name, &l.value);
                }
                b.labels()
            };
            out.push(Alert {
                labels,
                annotations: a.annotations.clone(),
                starts_at: a.fired_at.unwrap_or(a.active_at),
                ends_at: a.resolved_at.unwrap_or(a.valid_until),
                generator_url: url.clone(),
            });
        }
        out
    }

    /// Stale markers for every series of the rule (it is going).
    pub fn mark_all_stale(&mut self, app: &mut dyn Appender, resolves_refs: bool, t: i64) {
        let mut v = std::mem::take(&mut self.pending_stale);
        for (_, mut a) in self.alerts.drain() {
            a.take_series(&mut v);
        }
        for mut s in v {
            append_stale(app, resolves_refs, &mut s, t);
        }
    }

    /// The series the rule wrote last, for stale markers after a reload
    /// removed it.
    pub fn drain_series(&mut self) -> Vec<OutSeries> {
        let mut v = std::mem::take(&mut self.pending_stale);
        for (_, mut a) in self.alerts.drain() {
            a.take_series(&mut v);
        }
        v
    }

    /// Takes over `old`'s alerts (a reload kept this rule).
    pub fn take_state(&mut self, old: &mut AlertingRule) {
        std::mem::swap(&mut self.alerts, &mut old.alerts);
        std::mem::swap(&mut self.pending_stale, &mut old.pending_stale);
        self.gen = old.gen;
    }

    /// Adds an alert restored after a restart (see [`crate::state`]).
    pub fn restore(&mut self, a: AlertEntry) {
        self.alerts.insert(a.labels.hash(), a);
    }

    pub fn for_ms(&self) -> i64 {
        self.for_ms
    }

    /// The alerts, resolved ones included.
    pub fn entries(&self) -> impl Iterator<Item = &AlertEntry> {
        self.alerts.values()
    }
}

/// Prometheus's generator URL: the external URL and a graph link to the
/// expression's table view.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let q: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    format!(
        "{}/graph?g0.expr={q}&g0.tab=1",
        external_url.trim_end_matches('/')
    )
}
