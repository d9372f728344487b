//! The prometheus.yml schema: typed structs with Prometheus defaults.
//!
//! Every struct denies unknown fields. Fields that inherit from `global`
//! (scrape interval/timeout, limits, protocols) deserialize as zero/empty and
//! are filled in by the loader, so a loaded [`Config`] always holds the
//! effective values.

use crate::bytesize::ByteSize;
use crate::duration::Duration;
use crate::relabel::RelabelConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use koban_httpclient::{
    Authorization, BasicAuth, HttpClientConfig, HttpHeader, OAuth2, Secret, TlsConfig,
};

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_bytes(v: &ByteSize) -> bool {
    v.0 == 0
}
fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}
fn is_zero_dur(v: &Duration) -> bool {
    v.is_zero()
}
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
fn yes() -> bool {
    true
}

/// The whole prometheus.yml.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, deserialize_with = "null_as_default")]
    pub global: GlobalConfig,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub runtime: RuntimeConfig,
    /// Rule file globs, made absolute relative to the config file's directory.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rule_files: Vec<String>,
    /// Globs of extra files holding `scrape_configs:`, relative to the config
    /// file's directory. Their scrape configs are appended to `scrape_configs`
    /// by the loader.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scrape_config_files: Vec<String>,
    /// All scrape configs, including those from `scrape_config_files`, with
    /// global defaults applied.
    #[serde(default, deserialize_with = "null_as_default")]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub storage: StorageConfig,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub alerting: AlertingConfig,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub remote_write: Vec<RemoteWriteConfig>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub remote_read: Vec<RemoteReadConfig>,
}

/// Treats an explicit YAML `null` (e.g. `scrape_configs:` with nothing after) as the default.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The `global:` section.
///
/// Intervals, timeout and protocols deserialize as zero/empty when absent
/// (the loader fills in defaults, capping the timeout at the interval).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// Default 1m.
    #[serde(default)]
    pub scrape_interval: Duration,
    /// Default 10s, or the scrape interval when that is shorter.
    #[serde(default)]
    pub scrape_timeout: Duration,
    /// Default: OpenMetricsText1.0.0, OpenMetricsText0.0.1, PrometheusText1.0.0, PrometheusText0.0.4.
    #[serde(default)]
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// Default 1m.
    #[serde(default)]
    pub evaluation_interval: Duration,
    #[serde(skip_serializing_if = "is_zero_dur")]
    pub rule_query_offset: Duration,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub query_log_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scrape_failure_log_file: String,
    /// 0 means no limit (also for all limits below).
    #[serde(skip_serializing_if = "is_zero_bytes")]
    pub body_size_limit: ByteSize,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub sample_limit: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub label_limit: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub label_name_length_limit: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub label_value_length_limit: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub target_limit: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub keep_dropped_targets: u64,
    /// `legacy` or `utf8` (accepted; Koban validates legacy names).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metric_name_validation_scheme: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metric_name_escaping_scheme: String,
    #[serde(skip_serializing_if = "is_false")]
    pub always_scrape_classic_histograms: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub convert_classic_histograms_to_nhcb: bool,
}

impl Default for GlobalConfig {
    /// Prometheus's defaults.
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            scrape_protocols: ScrapeProtocol::DEFAULT.to_vec(),
            evaluation_interval: Duration::from_secs(60),
            rule_query_offset: Duration::ZERO,
            external_labels: BTreeMap::new(),
            query_log_file: String::new(),
            scrape_failure_log_file: String::new(),
            body_size_limit: ByteSize(0),
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            target_limit: 0,
            keep_dropped_targets: 0,
            metric_name_validation_scheme: String::new(),
            metric_name_escaping_scheme: String::new(),
            always_scrape_classic_histograms: false,
            convert_classic_histograms_to_nhcb: false,
        }
    }
}

impl GlobalConfig {
    /// External labels as a label set.
    pub fn external_labels(&self) -> koban_model::Labels {
        koban_model::Labels::from_pairs(
            self.external_labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
}

/// `runtime:` is accepted for compatibility; Koban has no Go runtime to tune.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gogc: Option<i64>,
}

/// A scrape exposition format to negotiate, in preference order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum ScrapeProtocol {
    PrometheusProto,
    #[serde(rename = "OpenMetricsText0.0.1")]
    OpenMetricsText0_0_1,
    #[serde(rename = "OpenMetricsText1.0.0")]
    OpenMetricsText1_0_0,
    #[serde(rename = "PrometheusText0.0.4")]
    PrometheusText0_0_4,
    #[serde(rename = "PrometheusText1.0.0")]
    PrometheusText1_0_0,
}

impl ScrapeProtocol {
    /// Prometheus's default preference order (without native histograms).
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
        }
    }
}

/// Defines a struct with the given fields followed by the HTTP client fields
/// of [`HttpClientConfig`] (serde's `flatten` cannot be combined with
/// `deny_unknown_fields`). The conversions destructure the config fully, so
/// a key added to the HTTP client config fails to compile until it is
/// added here.
macro_rules! with_http_client {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub basic_auth: Option<BasicAuth>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub authorization: Option<Authorization>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub oauth2: Option<OAuth2>,
            /// Legacy spelling of `authorization: {credentials: ...}`; the
            /// loader moves it into `authorization`, so it is always empty
            /// in a loaded config.
            #[serde(default, skip_serializing)]
            pub bearer_token: Secret,
            /// Legacy spelling of `authorization: {credentials_file: ...}`;
            /// moved into `authorization` by the loader.
            #[serde(default, skip_serializing)]
            pub bearer_token_file: String,
            #[serde(default)]
            pub tls_config: TlsConfig,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub proxy_url: String,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub no_proxy: String,
            #[serde(default, skip_serializing_if = "is_false")]
            pub proxy_from_environment: bool,
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
            /// Default true.
            #[serde(default = "yes")]
            pub follow_redirects: bool,
            /// Default true.
            #[serde(default = "yes")]
            pub enable_http2: bool,
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            pub http_headers: BTreeMap<String, HttpHeader>,
        }

        impl $name {
            /// The HTTP client settings of this config, for
            /// [`koban_httpclient::HttpClient::new`].
            pub fn http_client_config(&self) -> HttpClientConfig {
                HttpClientConfig {
                    basic_auth: self.basic_auth.clone(),
                    authorization: self.authorization.clone(),
                    oauth2: self.oauth2.clone(),
                    bearer_token: self.bearer_token.clone(),
                    bearer_token_file: self.bearer_token_file.clone(),
                    tls_config: self.tls_config.clone(),
                    proxy_url: self.proxy_url.clone(),
                    no_proxy: self.no_proxy.clone(),
                    proxy_from_environment: self.proxy_from_environment,
                    proxy_connect_header: self.proxy_connect_header.clone(),
                    follow_redirects: self.follow_redirects,
                    enable_http2: self.enable_http2,
                    http_headers: self.http_headers.clone(),
                }
            }

            /// Replaces the HTTP client settings (the loader stores the
            /// validated ones back).
            pub fn set_http_client_config(&mut self, h: HttpClientConfig) {
                let HttpClientConfig {
                    basic_auth,
                    authorization,
                    oauth2,
                    bearer_token,
                    bearer_token_file,
                    tls_config,
                    proxy_url,
                    no_proxy,
                    proxy_from_environment,
                    proxy_connect_header,
                    follow_redirects,
                    enable_http2,
                    http_headers,
                } = h;
                self.basic_auth = basic_auth;
                self.authorization = authorization;
                self.oauth2 = oauth2;
                self.bearer_token = bearer_token;
                self.bearer_token_file = bearer_token_file;
                self.tls_config = tls_config;
                self.proxy_url = proxy_url;
                self.no_proxy = no_proxy;
                self.proxy_from_environment = proxy_from_environment;
                self.proxy_connect_header = proxy_connect_header;
                self.follow_redirects = follow_redirects;
                self.enable_http2 = enable_http2;
                self.http_headers = http_headers;
            }
        }

        impl crate::load::HasHttp for $name {
            fn http(&self) -> HttpClientConfig {
                self.http_client_config()
            }
            fn set_http(&mut self, h: HttpClientConfig) {
                self.set_http_client_config(h)
            }
        }
    };
}

with_http_client! {
    /// One entry of `scrape_configs:`.
    #[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    pub struct ScrapeConfig {
        pub job_name: String,
        #[serde(default)]
        pub honor_labels: bool,
        /// Default true.
        #[serde(default = "yes")]
        pub honor_timestamps: bool,
        #[serde(default)]
        pub track_timestamps_staleness: bool,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub params: BTreeMap<String, Vec<String>>,
        /// Inherits `global.scrape_interval` when unset or 0.
        #[serde(default)]
        pub scrape_interval: Duration,
        /// Inherits `global.scrape_timeout` (capped at the interval) when unset or 0.
        #[serde(default)]
        pub scrape_timeout: Duration,
        /// Inherits `global.scrape_protocols` when unset.
        #[serde(default)]
        pub scrape_protocols: Vec<ScrapeProtocol>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub scrape_failure_log_file: String,
        /// Default `/metrics`.
        #[serde(default = "default_metrics_path")]
        pub metrics_path: String,
        /// `http` (default) or `https`.
        #[serde(default = "default_scheme")]
        pub scheme: String,
        /// Default true.
        #[serde(default = "yes")]
        pub enable_compression: bool,
        /// Limits inherit the global value when unset or 0; 0 means no limit.
        #[serde(default, skip_serializing_if = "is_zero_bytes")]
        pub body_size_limit: ByteSize,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub sample_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub target_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub label_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub label_name_length_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub label_value_length_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub keep_dropped_targets: u64,
        /// `legacy` or `utf8` (accepted; empty inherits global).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub metric_name_validation_scheme: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub metric_name_escaping_scheme: String,
        /// Keep scraping classic histogram series alongside native ones.
        #[serde(default, alias = "scrape_classic_histograms", skip_serializing_if = "is_false")]
        pub always_scrape_classic_histograms: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        pub convert_classic_histograms_to_nhcb: bool,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        pub native_histogram_bucket_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero_f64")]
        pub native_histogram_min_bucket_factor: f64,
        #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub static_configs: Vec<StaticConfig>,
        #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub file_sd_configs: Vec<FileSdConfig>,
        #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub dns_sd_configs: Vec<DnsSdConfig>,
        #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub relabel_configs: Vec<RelabelConfig>,
        #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub metric_relabel_configs: Vec<RelabelConfig>,
    }
}

fn default_metrics_path() -> String {
    "/metrics".into()
}
fn default_scheme() -> String {
    "http".into()
}

/// One entry of `static_configs:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    pub targets: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

/// One entry of `file_sd_configs:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Globs of `.json`, `.yml` or `.yaml` files, made absolute relative to
    /// the config file's directory.
    pub files: Vec<String>,
    /// Default 5m.
    #[serde(default = "default_refresh")]
    pub refresh_interval: Duration,
}

fn default_refresh() -> Duration {
    Duration::from_secs(300)
}

/// One entry of `dns_sd_configs:`: names queried periodically, each answer
/// becoming one target group.
///
/// `names`, `type`, `port` and `refresh_interval` are Prometheus's keys.
/// `nameservers` is Koban's own (Prometheus has no such key): when set,
/// queries go to those servers instead of the system resolver
/// (`/etc/resolv.conf`), which avoids the lag of a caching resolver in
/// between.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSdConfig {
    /// Names to query; the loader requires at least one.
    #[serde(default, deserialize_with = "null_as_default")]
    pub names: Vec<String>,
    /// The record type queried (`SRV` by default).
    #[serde(default, rename = "type")]
    pub record_type: DnsRecordType,
    /// Port of the targets of A, AAAA, MX and NS answers (required for
    /// those types by the loader); SRV answers carry their own port.
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub port: u16,
    /// How often the names are queried again; Koban also queries again
    /// when the shortest TTL of an answer runs out, if that is sooner.
    /// Default 30s.
    #[serde(default = "default_dns_refresh")]
    pub refresh_interval: Duration,
    /// Koban's own key: DNS servers (`ip` or `ip:port`, port 53 by default,
    /// IPv6 as `[ip]:port`) queried instead of the system resolver, tried in
    /// order. Empty (the default) means the servers and search domains of
    /// `/etc/resolv.conf`. The loader checks every entry parses.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nameservers: Vec<String>,
}

impl DnsSdConfig {
    /// The socket addresses of [`nameservers`](Self::nameservers), in
    /// order; the error names the first entry that is not `ip` or `ip:port`.
    pub fn nameserver_addrs(&self) -> Result<Vec<std::net::SocketAddr>, String> {
        self.nameservers
            .iter()
            .map(|s| parse_nameserver(s))
            .collect()
    }
}

/// Parses a `nameservers` entry: `ip` (port 53), `ip:port` or `[ipv6]:port`.
pub fn parse_nameserver(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{IpAddr, SocketAddr};
    let t = s.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "invalid DNS server {s:?} in nameservers (want an IP address, optionally with :port)"
    ))
}

fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}
fn default_dns_refresh() -> Duration {
    Duration::from_secs(30)
}

/// The record type of a [`DnsSdConfig`]. Parsed case-insensitively, as
/// Prometheus does; written in upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum DnsRecordType {
    #[default]
    Srv,
    A,
    Aaaa,
    Mx,
    Ns,
}

impl DnsRecordType {
    /// The type's name in upper case (`SRV`, `A`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DnsRecordType::Srv => "SRV",
            DnsRecordType::A => "A",
            DnsRecordType::Aaaa => "AAAA",
            DnsRecordType::Mx => "MX",
            DnsRecordType::Ns => "NS",
        }
    }
}

impl std::fmt::Display for DnsRecordType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for DnsRecordType {
    type Error = String;

    /// Prometheus's message for an unknown type: `invalid DNS-SD records type X`.
    fn try_from(s: String) -> Result<Self, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "SRV" => DnsRecordType::Srv,
            "A" => DnsRecordType::A,
            "AAAA" => DnsRecordType::Aaaa,
            "MX" => DnsRecordType::Mx,
            "NS" => DnsRecordType::Ns,
            _ => return Err(format!("invalid DNS-SD records type {s}")),
        })
    }
}

impl From<DnsRecordType> for String {
    fn from(t: DnsRecordType) -> String {
        t.as_str().to_string()
    }
}

/// `storage:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsdb: Option<TsdbConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exemplars: Option<ExemplarsConfig>,
}

/// `storage.tsdb:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsdbConfig {
    pub out_of_order_time_window: Duration,
}

/// `storage.exemplars:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    pub max_exemplars: i64,
}

/// `alerting:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

with_http_client! {
    /// One entry of `alerting.alertmanagers:`.
    #[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    pub struct AlertmanagerConfig {
        /// `http` (default) or `https`.
        #[serde(default = "default_scheme")]
        pub scheme: String,
        /// Default `/`.
        #[serde(default = "default_path_prefix")]
        pub path_prefix: String,
        /// Default 10s.
        #[serde(default = "default_am_timeout")]
        pub timeout: Duration,
        /// Only `v2` (the default) is supported, as in Prometheus 3.
        #[serde(default = "default_api_version")]
        pub api_version: String,
        #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub static_configs: Vec<StaticConfig>,
        #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub file_sd_configs: Vec<FileSdConfig>,
        #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub dns_sd_configs: Vec<DnsSdConfig>,
        #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub relabel_configs: Vec<RelabelConfig>,
        #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub alert_relabel_configs: Vec<RelabelConfig>,
    }
}

fn default_path_prefix() -> String {
    "/".into()
}
fn default_am_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_api_version() -> String {
    "v2".into()
}

with_http_client! {
    /// One entry of `remote_write:`.
    #[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    pub struct RemoteWriteConfig {
        pub url: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
        /// Default 30s.
        #[serde(default = "default_rw_timeout")]
        pub remote_timeout: Duration,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub headers: BTreeMap<String, String>,
        #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub write_relabel_configs: Vec<RelabelConfig>,
        #[serde(default)]
        pub send_exemplars: bool,
        #[serde(default)]
        pub send_native_histograms: bool,
        /// `prometheus.WriteRequest` (default) or `io.prometheus.write.v2.Request`.
        #[serde(default = "default_protobuf_message")]
        pub protobuf_message: String,
        #[serde(default)]
        pub round_robin_dns: bool,
        #[serde(default)]
        pub queue_config: QueueConfig,
        #[serde(default)]
        pub metadata_config: MetadataConfig,
    }
}

fn default_rw_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_protobuf_message() -> String {
    "prometheus.WriteRequest".into()
}

/// `remote_write[].queue_config:` with Prometheus defaults.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub capacity: u64,
    pub max_shards: u64,
    pub min_shards: u64,
    pub max_samples_per_send: u64,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub retry_on_http_429: bool,
    #[serde(skip_serializing_if = "is_zero_dur")]
    pub sample_age_limit: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2_000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: true,
            sample_age_limit: Duration::ZERO,
        }
    }
}

/// `remote_write[].metadata_config:` with Prometheus defaults.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    pub send: bool,
    pub send_interval: Duration,
    pub max_samples_per_send: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 2_000,
        }
    }
}

with_http_client! {
    /// One entry of `remote_read:`.
    #[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    pub struct RemoteReadConfig {
        pub url: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
        /// Default 1m.
        #[serde(default = "default_rr_timeout")]
        pub remote_timeout: Duration,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub headers: BTreeMap<String, String>,
        #[serde(default)]
        pub read_recent: bool,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub required_matchers: BTreeMap<String, String>,
        /// Default true.
        #[serde(default = "yes")]
        pub filter_external_labels: bool,
    }
}

fn default_rr_timeout() -> Duration {
    Duration::from_secs(60)
}

/// The content of a file listed in `scrape_config_files`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScrapeConfigsFile {
    #[serde(default, deserialize_with = "null_as_default")]
    pub scrape_configs: Vec<ScrapeConfig>,
}
