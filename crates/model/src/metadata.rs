//! Metric family metadata: what the `# TYPE`, `# HELP` and `# UNIT` lines
//! of a page say about a family.

/// Metadata of a metric family as scraped. `metric_type` is the exposition
/// type name as Prometheus's API shows it (`counter`, `gauge`,
/// `histogram`, `gaugehistogram`, `summary`, `info`, `stateset`,
/// `unknown`); empty fields were not given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Metadata {
    pub metric_type: String,
    pub help: String,
    pub unit: String,
}

impl Metadata {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.metric_type.is_empty() && self.help.is_empty() && self.unit.is_empty()
    }
}
