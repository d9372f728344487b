//! Exemplars: a sample of a trace (or other context) attached to a series'
//! sample, as OpenMetrics exposes them after `#` on a sample line.

use crate::Labels;

/// The most UTF-8 characters an exemplar's label names and values may
/// take together (OpenMetrics' limit, enforced as Prometheus does).
pub const EXEMPLAR_MAX_LABEL_SET_LENGTH: usize = 128;

/// One exemplar. `labels` are the exemplar's own (e.g. `trace_id`), not
/// the series'. When the page gave no timestamp, `has_ts` is false and
/// `ts` is the scrape's timestamp (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    pub ts: i64,
    pub has_ts: bool,
}

/// Why an exemplar is refused before it reaches storage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExemplarError {
    #[error("label length for exemplar exceeds maximum of {max} UTF-8 characters")]
    LabelLength { max: usize },
}

impl Exemplar {
    /// Checks the label set fits [`EXEMPLAR_MAX_LABEL_SET_LENGTH`]
    /// characters. Allocates nothing.
    pub fn validate(&self) -> Result<(), ExemplarError> {
        let n: usize = self
            .labels
            .iter()
            .map(|l| l.name.chars().count() + l.value.chars().count())
            .sum();
        if n > EXEMPLAR_MAX_LABEL_SET_LENGTH {
            return Err(ExemplarError::LabelLength {
                max: EXEMPLAR_MAX_LABEL_SET_LENGTH,
            });
        }
        Ok(())
    }

    /// Same exemplar: same labels, value and timestamp (NaN values equal
    /// bit for bit). Storage uses it to drop re-scraped exemplars.
    pub fn same_as(&self, o: &Exemplar) -> bool {
        self.ts == o.ts && self.value.to_bits() == o.value.to_bits() && self.labels == o.labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_label_sets_are_refused() {
        let ok = Exemplar {
            labels: Labels::from_pairs([("trace_id", "a".repeat(120))]),
            value: 1.0,
            ts: 5,
            has_ts: true,
        };
        assert_eq!(ok.validate(), Ok(()));
        let long = Exemplar {
            labels: Labels::from_pairs([("trace_id", "é".repeat(121))]),
            ..ok.clone()
        };
        assert_eq!(
            long.validate().unwrap_err().to_string(),
            "label length for exemplar exceeds maximum of 128 UTF-8 characters"
        );
        assert!(ok.same_as(&ok.clone()));
        assert!(!ok.same_as(&Exemplar {
            ts: 6,
            ..ok.clone()
        }));
    }
}
