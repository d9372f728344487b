//! Koban's data model: labels, matchers, samples, metadata, the exposition
//! format parser and relabelling. This crate does no I/O; every other crate
//! builds on it.

pub mod exposition;
pub mod labels;
pub mod matcher;
pub mod relabel;
pub mod sample;

pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchType, Matcher};
pub use sample::{is_stale_nan, Sample, STALE_NAN, STALE_NAN_BITS};

/// Errors produced by the model crate.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ModelError {
    /// A regular expression in a matcher or relabel rule did not compile.
    #[error("invalid regular expression {regex:?}: {reason}")]
    InvalidRegex { regex: String, reason: String },
}
