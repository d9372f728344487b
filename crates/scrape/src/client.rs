//! One HTTP client per scrape config, from `koban_httpclient` (auth, TLS,
//! proxy, oauth2, headers, files re-read when they change). Plain `http://`
//! targets whose requests need nothing that client does per request go
//! through the scrape loop's own fast path ([`crate::http1`]) instead.

use crate::ScrapeError;
use koban_httpclient::{ClientOptions, HttpClient, HttpClientConfig};
use std::time::Duration;

/// The User-Agent Koban scrapes with.
pub const USER_AGENT: &str = concat!("Koban/", env!("CARGO_PKG_VERSION"));

/// Builds the client of one pool. `timeout` bounds connection set-up; the
/// scrape loop bounds each whole scrape itself. Reads the TLS files: a bad
/// one refuses the config.
pub fn build(
    job: &str,
    http: &HttpClientConfig,
    timeout: Duration,
) -> Result<HttpClient, ScrapeError> {
    let opts = ClientOptions {
        user_agent: USER_AGENT.to_string(),
        connect_timeout: Some(timeout),
        gzip: true,
        pool_max_idle_per_host: 2,
    };
    HttpClient::new(http, job, opts).map_err(|e| ScrapeError::Config {
        job: job.to_string(),
        reason: koban_httpclient::error_chain(&e),
    })
}
