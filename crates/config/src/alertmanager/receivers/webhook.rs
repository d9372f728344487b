//! `webhook_configs`.

use super::slack::check_url;
use super::{yes, Ctx};
use crate::alertmanager::global::{Global, HttpConfig};
use crate::error::ConfigError;
use crate::Secret;
use serde::{Deserialize, Serialize};

/// One entry of `webhook_configs`. After [`super::Receiver::finish`],
/// `http_config` holds the effective value (own, else `global`'s).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Default true.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpConfig>,
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub url: Secret,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url_file: String,
    /// The most alerts one message carries (0: all); the others are
    /// counted in `truncatedAlerts`.
    #[serde(default)]
    pub max_alerts: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            send_resolved: true,
            http_config: None,
            url: Secret::default(),
            url_file: String::new(),
            max_alerts: 0,
        }
    }
}

impl WebhookConfig {
    pub(super) fn finish(&mut self, g: &Global, ctx: &Ctx<'_>) -> Result<(), ConfigError> {
        match (self.url.is_empty(), self.url_file.is_empty()) {
            (true, true) => {
                return Err(ctx.invalid("url", "one of url or url_file must be configured"))
            }
            (false, false) => {
                return Err(ctx.invalid(
                    "url_file",
                    "at most one of url & url_file must be configured",
                ))
            }
            (false, true) => check_url(self.url.expose()).map_err(|m| ctx.invalid("url", m))?,
            (true, false) => ctx.resolve(&mut self.url_file),
        }
        let mut h = self
            .http_config
            .take()
            .unwrap_or_else(|| g.http_config.clone())
            .client_config();
        h.validate()
            .map_err(|e| ctx.invalid("http_config", e.message))?;
        h.set_directory(ctx.base);
        self.http_config = Some(h.into());
        Ok(())
    }

    /// The effective HTTP client settings (after `finish`).
    pub fn http(&self) -> crate::HttpClientConfig {
        self.http_config.clone().unwrap_or_default().client_config()
    }
}
