//! `receivers`: one receiver and its integrations' configs (email, Slack,
//! webhook), with Alertmanager 0.25's defaults and checks. The other
//! integrations of 0.25 are refused by name.

mod email;
mod slack;
mod webhook;

pub use email::EmailConfig;
pub use slack::{SlackAction, SlackConfig, SlackConfirmationField, SlackField};
pub use webhook::WebhookConfig;

use super::global::Global;
use crate::error::ConfigError;
use crate::tree::Node;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::Path;

/// The integrations of Alertmanager 0.25 that Koban does not implement:
/// a receiver naming one is refused with [`ConfigError::Unsupported`].
pub const UNSUPPORTED_INTEGRATIONS: &[&str] = &[
    "pagerduty_configs",
    "opsgenie_configs",
    "victorops_configs",
    "pushover_configs",
    "telegram_configs",
    "discord_configs",
    "msteams_configs",
    "webex_configs",
    "wechat_configs",
    "sns_configs",
];

/// A key that is accepted by the decoder only so that
/// [`Receiver::finish`] can refuse it by name, at its position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused(pub bool);

impl<'de> Deserialize<'de> for Refused {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Refused(true))
    }
}

/// One entry of `receivers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_configs: Vec<EmailConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(default, skip_serializing)]
    pub pagerduty_configs: Refused,
    #[serde(default, skip_serializing)]
    pub opsgenie_configs: Refused,
    #[serde(default, skip_serializing)]
    pub victorops_configs: Refused,
    #[serde(default, skip_serializing)]
    pub pushover_configs: Refused,
    #[serde(default, skip_serializing)]
    pub telegram_configs: Refused,
    #[serde(default, skip_serializing)]
    pub discord_configs: Refused,
    #[serde(default, skip_serializing)]
    pub msteams_configs: Refused,
    #[serde(default, skip_serializing)]
    pub webex_configs: Refused,
    #[serde(default, skip_serializing)]
    pub wechat_configs: Refused,
    #[serde(default, skip_serializing)]
    pub sns_configs: Refused,
}

impl Receiver {
    fn refused(&self) -> Option<&'static str> {
        let flags = [
            self.pagerduty_configs,
            self.opsgenie_configs,
            self.victorops_configs,
            self.pushover_configs,
            self.telegram_configs,
            self.discord_configs,
            self.msteams_configs,
            self.webex_configs,
            self.wechat_configs,
            self.sns_configs,
        ];
        flags
            .iter()
            .zip(UNSUPPORTED_INTEGRATIONS)
            .find(|(f, _)| f.0)
            .map(|(_, k)| *k)
    }

    /// Whether the receiver has no integration (a "blackhole" receiver).
    pub fn is_empty(&self) -> bool {
        self.email_configs.is_empty()
            && self.slack_configs.is_empty()
            && self.webhook_configs.is_empty()
    }

    /// Called by the loader once per receiver, after the whole file is
    /// decoded: fills each integration's defaults from `global`, makes its
    /// `*_file` paths relative to `base` (the config file's directory) and
    /// validates it. `node` is the receiver's YAML node (for positions) and
    /// `path` names the file in errors.
    ///
    /// Errors: an unsupported integration key ([`ConfigError::Unsupported`]
    /// at the key), or 0.25's messages (`missing to address in email
    /// config`, `no global SMTP smarthost set`, `no global SMTP from set`,
    /// `no global Slack API URL set`, ...) at the integration entry.
    pub(crate) fn finish(
        &mut self,
        global: &Global,
        node: Option<&Node>,
        path: &Path,
        base: &Path,
    ) -> Result<(), ConfigError> {
        if let Some(key) = self.refused() {
            let pos = node.and_then(|n| n.key_pos(key)).unwrap_or_default();
            return Err(ConfigError::Unsupported {
                path: path.to_path_buf(),
                line: pos.line,
                column: pos.column,
                key: key.to_string(),
            });
        }
        let ctx = |key: &'static str, i: usize| Ctx {
            path,
            base,
            node: node.and_then(|n| n.get(key)).and_then(|n| n.index(i)),
        };
        for (i, c) in self.email_configs.iter_mut().enumerate() {
            c.finish(global, &ctx("email_configs", i))?;
        }
        for (i, c) in self.slack_configs.iter_mut().enumerate() {
            c.finish(global, &ctx("slack_configs", i))?;
        }
        for (i, c) in self.webhook_configs.iter_mut().enumerate() {
            c.finish(global, &ctx("webhook_configs", i))?;
        }
        Ok(())
    }
}

/// Where an integration entry is, for its errors.
pub(crate) struct Ctx<'a> {
    path: &'a Path,
    base: &'a Path,
    node: Option<&'a Node>,
}

impl Ctx<'_> {
    /// An invalid-value error at `key`'s value, else at the entry.
    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let pos = self
            .node
            .map(|n| n.get(key).map(|v| v.pos).unwrap_or(n.pos))
            .unwrap_or_default();
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    /// Makes `p` relative to the config file's directory.
    fn resolve(&self, p: &mut String) {
        if p.is_empty() || Path::new(p.as_str()).is_absolute() || self.base.as_os_str().is_empty() {
            return;
        }
        *p = self.base.join(p.as_str()).to_string_lossy().into_owned();
    }
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests;
