//! Koban's data model: labels, matchers, samples, native histograms,
//! exemplars, metadata, the exposition format parser and relabelling.
//! This crate does no I/O; every other crate builds on it.

pub mod alert;
pub mod exemplar;
pub mod exposition;
pub mod histogram;
pub mod labels;
pub mod matcher;
pub mod metadata;
pub mod relabel;
pub mod sample;

pub use alert::{Alert, AlertSink, AlertState, RuleHealth};
pub use exemplar::Exemplar;
pub use histogram::{CounterResetHint, FloatHistogram, Histogram, Span};
pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{parse_matcher, parse_matchers, MatchType, Matcher};
pub use metadata::Metadata;
pub use sample::{is_stale_nan, Sample, STALE_NAN, STALE_NAN_BITS};

/// Errors produced by the model crate.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ModelError {
    /// A regular expression in a matcher or relabel rule did not compile.
    #[error("invalid regular expression {regex:?}: {reason}")]
    InvalidRegex { regex: String, reason: String },
    /// An Alertmanager matcher string that does not parse; the message is
    /// worded as Alertmanager 0.25 words it (`bad matcher format: x`).
    #[error("{0}")]
    BadMatcher(String),
}
