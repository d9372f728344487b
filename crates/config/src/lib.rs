//! YAML schemas for prometheus.yml, with Prometheus defaults and validation.
//!
//! Entry points: [`load_file`] / [`load_str`] produce a [`Config`] with every
//! default filled in, or a [`ConfigError`] that displays as
//! `path:line:col: message`. [`parse_duration`] parses Prometheus durations
//! for command-line flags.

mod bytesize;
mod duration;
mod error;
mod load;
pub mod relabel;
mod schema;
mod tree;

pub use bytesize::{parse_byte_size, ByteSize, ByteSizeParseError};
pub use duration::{parse_duration, Duration, DurationParseError};
pub use error::ConfigError;
pub use load::{load_file, load_str};
pub use relabel::RelabelConfig;
pub use schema::*;

/// The configuration used when none is given: Koban scrapes itself.
pub const DEFAULT_CONFIG: &str = "\
global:
  scrape_interval: 15s
  evaluation_interval: 15s

scrape_configs:
  - job_name: koban
    scrape_interval: 15s
    static_configs:
      - targets: ['localhost:9090']
";

impl Config {
    /// A YAML dump of the effective configuration (defaults filled in,
    /// secrets shown as `<secret>`), as served by `/api/v1/status/config`.
    pub fn to_yaml(&self) -> String {
        match serde_saphyr::to_string(self) {
            Ok(s) => s,
            // The schema only holds strings, numbers, bools, maps and lists,
            // which the serializer always handles; keep a readable fallback anyway.
            Err(e) => format!("# error serializing config: {e}\n"),
        }
    }
}

#[cfg(test)]
mod tests;
