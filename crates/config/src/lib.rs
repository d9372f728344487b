//! YAML schemas for prometheus.yml, with Prometheus defaults and validation.
//!
//! Entry points: [`load_file`] / [`load_str`] produce a [`Config`] with every
//! default filled in, or a [`ConfigError`] that displays as
//! `path:line:col: message`. [`rules::parse_rule_file`] decodes a rule file
//! (the checks are koban-rules' loader). [`parse_duration`] parses Prometheus durations
//! for command-line flags.
//!
//! Behaviour worth knowing:
//! - Every struct denies unknown keys (`path:line:col: unknown field "x",
//!   expected one of: ...`). Service discovery providers other than
//!   `static_configs` / `file_sd_configs` / `dns_sd_configs`, and `sigv4`,
//!   `azuread`, `google_iam`, `tracing`, `otlp` are refused by name at the
//!   key's position (`... ec2_sd_configs is not supported by Koban yet`).
//! - `dns_sd_configs` takes one key Prometheus does not have,
//!   `nameservers` (see [`DnsSdConfig`]).
//! - The HTTP client settings of scrape, alertmanager and remote configs
//!   are `koban_httpclient`'s schema ([`HttpClientConfig`], re-exported
//!   here), validated by it; errors point at the key at fault.
//! - Scrape configs inherit interval, timeout (capped at the interval),
//!   limits and protocols from `global`; relative paths (rule files, file SD
//!   globs, `*_file` settings, `scrape_config_files`) are made relative to the
//!   config file's directory; `scrape_config_files` are merged into
//!   `scrape_configs` with job names unique across all files.
//! - Validation errors carry the position of the offending value.

pub mod alertmanager;
mod bytesize;
mod duration;
mod error;
mod load;
pub mod relabel;
pub mod rules;
mod schema;
mod tree;

pub use bytesize::{parse_byte_size, ByteSize, ByteSizeParseError};
pub use duration::{parse_duration, Duration, DurationParseError};
pub use error::{ConfigError, FilePos};
pub use load::{load_file, load_str};
pub use relabel::RelabelConfig;
pub use schema::*;
pub use tree::Pos;

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
    /// The scrape config of `job`, if any.
    pub fn scrape_config(&self, job: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == job)
    }

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
