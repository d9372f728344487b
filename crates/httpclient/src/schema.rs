//! The YAML schema of Prometheus's HTTP client configuration, with its key
//! names and defaults. Every struct denies unknown keys.
//!
//! [`HttpClientConfig`] is not deserialized on its own inside prometheus.yml
//! (serde's `flatten` cannot be combined with `deny_unknown_fields`): the
//! config crate repeats its top-level keys in each container (scrape,
//! alertmanager, remote write/read configs) and converts with
//! `http_client_config()` / `set_http_client_config()`. The nested structs
//! here are used as they are.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

fn is_false(b: &bool) -> bool {
    !*b
}
fn yes() -> bool {
    true
}

/// A secret string: printed as `<secret>` by `Debug` and when serialized
/// (the `/api/v1/status/config` dump), as Prometheus does.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The secret's value.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<secret>"
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

/// `basic_auth:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username_file: String,
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub password: Secret,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password_file: String,
}

/// `authorization:` (an `Authorization: <type> <credentials>` header).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Default `Bearer`.
    #[serde(default = "bearer", rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub credentials: Secret,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub credentials_file: String,
}

fn bearer() -> String {
    "Bearer".into()
}

/// `tls_config:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM text of the CA certificates that verify the server.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    /// PEM text of the client certificate.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    /// PEM text of the client key.
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub key: Secret,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    /// The name the server certificate must carry (default: the URL's host).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    pub insecure_skip_verify: bool,
    /// `TLS10`..`TLS13`, or empty for the library default (TLS12).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub min_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub max_version: String,
}

impl TlsConfig {
    fn set_directory(&mut self, dir: &Path) {
        join_dir(dir, &mut self.ca_file);
        join_dir(dir, &mut self.cert_file);
        join_dir(dir, &mut self.key_file);
    }
}

/// `oauth2:`: the client credentials grant against `token_url`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2 {
    #[serde(default)]
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub client_secret: Secret,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_secret_file: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub token_url: String,
    /// Extra form parameters of the token request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_params: BTreeMap<String, String>,
    /// TLS towards the token endpoint.
    #[serde(default, skip_serializing_if = "is_default_tls")]
    pub tls_config: TlsConfig,
    /// Proxy towards the token endpoint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub proxy_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub no_proxy: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub proxy_from_environment: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
}

fn is_default_tls(t: &TlsConfig) -> bool {
    *t == TlsConfig::default()
}

/// One entry of `http_headers:` (the header name is the map key). Values
/// are added in order: `values`, then `secrets`, then the content of each
/// of `files` (read at each request, surrounding whitespace trimmed).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpHeader {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// Prometheus's `HTTPClientConfig`: every setting of one HTTP client.
///
/// A loaded config (see [`HttpClientConfig::validate`]) never has
/// `bearer_token` / `bearer_token_file` set: they are moved into
/// `authorization`, as Prometheus does.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub oauth2: Option<OAuth2>,
    /// Legacy spelling of `authorization: {credentials: ...}`.
    pub bearer_token: Secret,
    /// Legacy spelling of `authorization: {credentials_file: ...}`.
    pub bearer_token_file: String,
    pub tls_config: TlsConfig,
    pub proxy_url: String,
    pub no_proxy: String,
    pub proxy_from_environment: bool,
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
    /// Default true.
    pub follow_redirects: bool,
    /// Default true.
    pub enable_http2: bool,
    pub http_headers: BTreeMap<String, HttpHeader>,
}

impl Default for HttpClientConfig {
    /// Prometheus's defaults: redirects followed, HTTP/2 enabled.
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            bearer_token: Secret::default(),
            bearer_token_file: String::new(),
            tls_config: TlsConfig::default(),
            proxy_url: String::new(),
            no_proxy: String::new(),
            proxy_from_environment: false,
            proxy_connect_header: BTreeMap::new(),
            follow_redirects: yes(),
            enable_http2: yes(),
            http_headers: BTreeMap::new(),
        }
    }
}

impl HttpClientConfig {
    /// Makes every relative file path (`*_file`, `tls_config` files, the
    /// oauth2 ones, `http_headers` files) relative to `dir`, the directory
    /// of the config file, as Prometheus does. Called by the config loader.
    pub fn set_directory(&mut self, dir: &Path) {
        if let Some(b) = &mut self.basic_auth {
            join_dir(dir, &mut b.username_file);
            join_dir(dir, &mut b.password_file);
        }
        if let Some(a) = &mut self.authorization {
            join_dir(dir, &mut a.credentials_file);
        }
        if let Some(o) = &mut self.oauth2 {
            join_dir(dir, &mut o.client_secret_file);
            o.tls_config.set_directory(dir);
        }
        join_dir(dir, &mut self.bearer_token_file);
        self.tls_config.set_directory(dir);
        for h in self.http_headers.values_mut() {
            for f in &mut h.files {
                join_dir(dir, f);
            }
        }
    }
}

/// Makes `p` relative to `dir` when it is relative and non-empty.
fn join_dir(dir: &Path, p: &mut String) {
    if p.is_empty() || Path::new(p.as_str()).is_absolute() || dir.as_os_str().is_empty() {
        return;
    }
    *p = dir.join(p.as_str()).to_string_lossy().into_owned();
}

/// The serde defaults of the top-level keys, for containers that repeat them.
pub mod defaults {
    /// `follow_redirects` and `enable_http2` default to true.
    pub fn yes() -> bool {
        true
    }
}
