//! Scraping: turn discovered targets into scrape loops that fetch each
//! target's metrics page on schedule, parse it, relabel it and append it to
//! storage through the [`koban_storage::Appendable`] contract.
//!
//! The manager ([`ScrapeManager`]) owns one pool per job; a pool owns one
//! loop per target. The binary feeds the manager pool settings
//! ([`PoolConfig`], built from prometheus.yml) and discovered target groups.

pub mod cache;
pub mod client;
mod http1;
pub mod manager;
pub mod metrics;
pub mod scrape_loop;
pub mod target;

pub use koban_httpclient::HttpClientConfig;
pub use manager::{PreparedPools, ScrapeManager, TargetSnapshot};
pub use metrics::ScrapeMetrics;
pub use scrape_loop::DEFAULT_SCRAPE_SLOTS;
pub use target::{DroppedTarget, PoolConfig, Target};

/// Errors of the scrape crate. A scrape failure never stops the server: it
/// is recorded on the target (`up` 0 and the reason).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ScrapeError {
    #[error("Get {url:?}: {reason}")]
    Http { url: String, reason: String },
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("context deadline exceeded")]
    Timeout,
    #[error("body size limit exceeded: the response is larger than {0} bytes")]
    BodySizeLimit(u64),
    #[error("{0}")]
    Parse(String),
    #[error("sample limit exceeded: {got} samples, limit is {limit}")]
    SampleLimit { got: usize, limit: usize },
    #[error("label limit exceeded for series {series}: {reason}")]
    LabelLimit { series: String, reason: String },
    #[error("duplicate sample for timestamp: {series}")]
    Duplicate { series: String },
    #[error("storage: {0}")]
    Storage(String),
    #[error("invalid scrape config for job {job:?}: {reason}")]
    Config { job: String, reason: String },
}
