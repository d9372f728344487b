//! `global`: resolve_timeout and the integrations' defaults (smtp_*,
//! slack_api_url, http_config, ...), with Alertmanager 0.25's defaults.

use crate::{
    Authorization, BasicAuth, Duration, HttpClientConfig, HttpHeader, OAuth2, Secret, TlsConfig,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn yes() -> bool {
    true
}
fn is_false(b: &bool) -> bool {
    !*b
}

/// The `global` section. Every key of Alertmanager 0.25 is accepted; the
/// ones of integrations Koban does not implement are kept but unused.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Global {
    /// How long an alert without endsAt stays active after its last update
    /// (default 5m).
    pub resolve_timeout: Duration,
    /// The default HTTP client settings of HTTP integrations.
    pub http_config: HttpConfig,
    pub smtp_from: String,
    /// Default `localhost`.
    pub smtp_hello: String,
    /// `host:port`.
    pub smtp_smarthost: String,
    pub smtp_auth_username: String,
    pub smtp_auth_password: Secret,
    pub smtp_auth_password_file: String,
    pub smtp_auth_secret: Secret,
    pub smtp_auth_identity: String,
    /// Default true.
    pub smtp_require_tls: bool,
    pub slack_api_url: Secret,
    pub slack_api_url_file: String,
    /// Default `https://events.pagerduty.com/v2/enqueue`.
    pub pagerduty_url: String,
    pub opsgenie_api_key: Secret,
    pub opsgenie_api_key_file: String,
    /// Default `https://api.opsgenie.com/`.
    pub opsgenie_api_url: String,
    /// Default `https://qyapi.weixin.qq.com/cgi-bin/`.
    pub wechat_api_url: String,
    pub wechat_api_secret: Secret,
    pub wechat_api_corp_id: String,
    /// Default `https://alert.victorops.com/integrations/generic/20131114/alert/`.
    pub victorops_api_url: String,
    pub victorops_api_key: Secret,
    pub victorops_api_key_file: String,
    /// Default `https://api.telegram.org`.
    pub telegram_api_url: String,
    /// Default `https://webexapis.com/v1/messages`.
    pub webex_api_url: String,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            resolve_timeout: Duration::from_secs(300),
            http_config: HttpConfig::default(),
            smtp_from: String::new(),
            smtp_hello: "localhost".into(),
            smtp_smarthost: String::new(),
            smtp_auth_username: String::new(),
            smtp_auth_password: Secret::default(),
            smtp_auth_password_file: String::new(),
            smtp_auth_secret: Secret::default(),
            smtp_auth_identity: String::new(),
            smtp_require_tls: true,
            slack_api_url: Secret::default(),
            slack_api_url_file: String::new(),
            pagerduty_url: "https://events.pagerduty.com/v2/enqueue".into(),
            opsgenie_api_key: Secret::default(),
            opsgenie_api_key_file: String::new(),
            opsgenie_api_url: "https://api.opsgenie.com/".into(),
            wechat_api_url: "https://qyapi.weixin.qq.com/cgi-bin/".into(),
            wechat_api_secret: Secret::default(),
            wechat_api_corp_id: String::new(),
            victorops_api_url: "https://alert.victorops.com/integrations/generic/20131114/alert/"
                .into(),
            victorops_api_key: Secret::default(),
            victorops_api_key_file: String::new(),
            telegram_api_url: "https://api.telegram.org".into(),
            webex_api_url: "https://webexapis.com/v1/messages".into(),
        }
    }
}

/// `http_config:` of alertmanager.yml: the keys of
/// [`HttpClientConfig`] (the prometheus.yml HTTP client schema), converted
/// with [`HttpConfig::client_config`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    /// Legacy spelling of `authorization: {credentials: ...}`.
    #[serde(default, skip_serializing)]
    pub bearer_token: Secret,
    /// Legacy spelling of `authorization: {credentials_file: ...}`.
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

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig::from(HttpClientConfig::default())
    }
}

impl HttpConfig {
    /// The same settings as the shared HTTP client schema.
    pub fn client_config(&self) -> HttpClientConfig {
        let HttpConfig {
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
        } = self.clone();
        HttpClientConfig {
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
        }
    }
}

impl From<HttpClientConfig> for HttpConfig {
    fn from(h: HttpClientConfig) -> Self {
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
        HttpConfig {
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
        }
    }
}
