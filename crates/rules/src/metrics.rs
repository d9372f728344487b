//! The rules crate's own metrics, as Prometheus's `prometheus_rule_*`
//! under `koban_rule_*` names, registered into the binary's registry.
//! Groups are labelled `rule_group="FILE;NAME"` as in Prometheus.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabel {
    pub rule_group: String,
}

type FGauge = Gauge<f64, AtomicU64>;

fn duration_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

/// Every rule metric. Cheap to clone (handles).
#[derive(Clone)]
pub struct RuleMetrics {
    pub evaluations: Family<GroupLabel, Counter>,
    pub evaluation_failures: Family<GroupLabel, Counter>,
    pub iterations_missed: Family<GroupLabel, Counter>,
    pub iterations: Family<GroupLabel, Counter>,
    pub last_duration: Family<GroupLabel, FGauge>,
    pub interval: Family<GroupLabel, FGauge>,
    pub rules: Family<GroupLabel, Gauge>,
    pub last_evaluation: Family<GroupLabel, FGauge>,
    pub last_samples: Family<GroupLabel, Gauge>,
    /// Every rule's evaluation time.
    pub evaluation_duration: Histogram,
    /// Every group's evaluation time.
    pub group_duration: Histogram,
}

impl Default for RuleMetrics {
    fn default() -> Self {
        RuleMetrics {
            evaluations: Family::default(),
            evaluation_failures: Family::default(),
            iterations_missed: Family::default(),
            iterations: Family::default(),
            last_duration: Family::default(),
            interval: Family::default(),
            rules: Family::default(),
            last_evaluation: Family::default(),
            last_samples: Family::default(),
            evaluation_duration: duration_histogram(),
            group_duration: duration_histogram(),
        }
    }
}

/// One group's handles, looked up once.
#[derive(Clone)]
pub struct GroupMetrics {
    label: GroupLabel,
    pub evaluations: Counter,
    pub evaluation_failures: Counter,
    pub iterations_missed: Counter,
    pub iterations: Counter,
    last_duration: FGauge,
    last_evaluation: FGauge,
    last_samples: Gauge,
    group_duration: Histogram,
}

impl GroupMetrics {
    /// Records a finished cycle scheduled at `ts_ms`.
    pub fn finished(&self, ts_ms: i64, took: Duration, samples: u64) {
        self.iterations.inc();
        self.last_duration.set(took.as_secs_f64());
        self.last_evaluation.set(ts_ms as f64 / 1000.0);
        self.last_samples.set(samples as i64);
        self.group_duration.observe(took.as_secs_f64());
    }
}

impl RuleMetrics {
    /// Registers every metric under `koban_rule_*` names.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "koban_rule_evaluations",
            "The total number of rule evaluations",
            self.evaluations.clone(),
        );
        r.register(
            "koban_rule_evaluation_failures",
            "The total number of rule evaluation failures",
            self.evaluation_failures.clone(),
        );
        r.register(
            "koban_rule_group_iterations_missed",
            "The total number of rule group evaluations missed due to slow rule group evaluation",
            self.iterations_missed.clone(),
        );
        r.register(
            "koban_rule_group_iterations",
            "The total number of scheduled rule group evaluations, whether executed or missed",
            self.iterations.clone(),
        );
        r.register(
            "koban_rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation",
            self.last_duration.clone(),
        );
        r.register(
            "koban_rule_group_interval_seconds",
            "The interval of a rule group",
            self.interval.clone(),
        );
        r.register(
            "koban_rule_group_rules",
            "The number of rules",
            self.rules.clone(),
        );
        r.register(
            "koban_rule_group_last_evaluation_timestamp_seconds",
            "The timestamp of the last rule group evaluation in seconds",
            self.last_evaluation.clone(),
        );
        r.register(
            "koban_rule_group_last_evaluation_samples",
            "The number of samples returned during the last rule group evaluation",
            self.last_samples.clone(),
        );
        r.register(
            "koban_rule_evaluation_duration_seconds",
            "The duration for a rule to execute",
            self.evaluation_duration.clone(),
        );
        r.register(
            "koban_rule_group_duration_seconds",
            "The duration of rule group evaluations",
            self.group_duration.clone(),
        );
    }

    /// The handles of one group, with its interval and rule count set.
    pub fn group(&self, file: &str, name: &str, interval: Duration, rules: usize) -> GroupMetrics {
        let label = GroupLabel {
            rule_group: format!("{file};{name}"),
        };
        self.interval
            .get_or_create(&label)
            .set(interval.as_secs_f64());
        self.rules.get_or_create(&label).set(rules as i64);
        GroupMetrics {
            evaluations: self.evaluations.get_or_create(&label).clone(),
            evaluation_failures: self.evaluation_failures.get_or_create(&label).clone(),
            iterations_missed: self.iterations_missed.get_or_create(&label).clone(),
            iterations: self.iterations.get_or_create(&label).clone(),
            last_duration: self.last_duration.get_or_create(&label).clone(),
            last_evaluation: self.last_evaluation.get_or_create(&label).clone(),
            last_samples: self.last_samples.get_or_create(&label).clone(),
            group_duration: self.group_duration.clone(),
            label,
        }
    }

    /// Drops a removed group's series.
    pub fn remove_group(&self, g: &GroupMetrics) {
        let l = &g.label;
        self.evaluations.remove(l);
        self.evaluation_failures.remove(l);
        self.iterations_missed.remove(l);
        self.iterations.remove(l);
        self.last_duration.remove(l);
        self.interval.remove(l);
        self.rules.remove(l);
        self.last_evaluation.remove(l);
        self.last_samples.remove(l);
    }
}
