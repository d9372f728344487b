//! Prometheus's HTTP client configuration, all of it, and the client built
//! from it: the one HTTP client setup of scrape, service discovery
//! providers, the alert notifier, notification receivers and remote
//! write/read.
//!
//! # The pieces
//!
//! - [`HttpClientConfig`] and its parts ([`BasicAuth`], [`Authorization`],
//!   [`OAuth2`], [`TlsConfig`], [`HttpHeader`], [`Secret`]): the YAML
//!   schema with Prometheus's key names and defaults. Secrets serialize as
//!   `<secret>`.
//! - [`HttpClientConfig::validate`]: Prometheus's checks and messages (for
//!   example "at most one of basic_auth, oauth2, bearer_token &
//!   bearer_token_file must be configured"), naming the key at fault so
//!   the config loader can add `file:line:col`; it also moves the legacy
//!   `bearer_token(_file)` into `authorization`.
//!   [`HttpClientConfig::set_directory`] makes relative file paths relative
//!   to the config file's directory.
//! - [`HttpClient`]: built once per config (re)load, cloned freely.
//!
//! # Using it (discovery providers, notifier, receivers, remote write)
//!
//! ```no_run
//! # async fn f(cfg: &koban_httpclient::HttpClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use koban_httpclient::{ClientOptions, HttpClient};
//! // At config load (reads the TLS files; an error refuses the config):
//! let client = HttpClient::new(cfg, "alertmanager", ClientOptions::default())?;
//! // Per request (applies basic auth / authorization / oauth2 token /
//! // http_headers; re-reads changed files):
//! let resp = client
//!     .request(reqwest::Method::POST, "https://am.example.net/api/v2/alerts")
//!     .await?
//!     .header(reqwest::header::CONTENT_TYPE, "application/json")
//!     .body("[]")
//!     .send()
//!     .await?;
//! # let _ = resp; Ok(()) }
//! ```
//!
//! Print errors with [`error_chain`] (reqwest keeps the useful part, such
//! as a certificate's names, in the source chain).
//!
//! # Behaviour
//!
//! - TLS via rustls with the ring provider (see the `tls` module for
//!   `server_name`, versions and CA handling).
//! - `password_file`, `username_file`, `credentials_file`,
//!   `bearer_token_file`, `client_secret_file`, `http_headers` files,
//!   `ca_file`, `cert_file` and `key_file` are re-read when they change (a
//!   stat per request; see the `files` module): a rotated secret or
//!   certificate applies to the next request without a reload. A changed
//!   TLS file rebuilds the connection pool.
//! - oauth2: client credentials grant, token cached until 10 s before
//!   expiry, its own `tls_config` and proxy settings (the `oauth2` module).
//! - `proxy_url` (http:// forward proxy and CONNECT for https), `no_proxy`,
//!   `proxy_from_environment` (HTTP_PROXY, HTTPS_PROXY, NO_PROXY),
//!   `proxy_connect_header`; `follow_redirects` (at most 10, as Go);
//!   `enable_http2` (offered through ALPN on https).
//!
//! # Why the schema lives here
//!
//! The config crate depends on this crate and repeats the top-level keys in
//! each container (serde cannot flatten into a struct that denies unknown
//! fields), converting with `http_client_config()`. The schema, its
//! validation and the behaviour it configures are then defined once, beside
//! each other, and every user of an HTTP client depends on one crate
//! without pulling in the whole prometheus.yml schema; the opposite
//! direction would have made this crate depend on all of prometheus.yml to
//! reach one struct.

mod client;
mod files;
mod oauth2;
mod schema;
mod tls;
mod validate;

pub use client::{ClientOptions, HttpClient};
pub use schema::{
    defaults, Authorization, BasicAuth, HttpClientConfig, HttpHeader, OAuth2, Secret, TlsConfig,
};
pub use validate::{canonical_header_name, Invalid, RESERVED_HEADERS};

use std::path::PathBuf;

/// Errors building a client or preparing a request. Display gives the
/// context; the cause is the `source` (see [`error_chain`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A secret, certificate or key file could not be read.
    #[error("unable to read {what} {}", path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TLS settings or files are unusable.
    #[error("tls_config: {0}")]
    Tls(String),
    #[error("invalid proxy_url {url:?}")]
    Proxy {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// A header name or value (http_headers, proxy_connect_header, a
    /// credential) is not valid in HTTP.
    #[error("invalid header {name:?}: {reason}")]
    Header { name: String, reason: String },
    /// The oauth2 token endpoint gave no token.
    #[error("{0}")]
    OAuth2(String),
    /// reqwest refused the client settings.
    #[error("building the HTTP client")]
    Build(#[source] reqwest::Error),
}

/// `e` and its sources joined by `: `, each cause once.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = c.source();
    }
    s
}
