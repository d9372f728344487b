//! `slack_configs`.

use super::Ctx;
use crate::alertmanager::global::{Global, HttpConfig};
use crate::error::ConfigError;
use crate::Secret;
use serde::{Deserialize, Serialize};

fn tmpl(name: &str) -> String {
    format!("{{{{ template \"{name}\" . }}}}")
}

macro_rules! default_fns {
    ($($f:ident => $name:literal,)*) => {
        $(fn $f() -> String { tmpl($name) })*
    };
}

default_fns! {
    d_username => "slack.default.username",
    d_title => "slack.default.title",
    d_title_link => "slack.default.titlelink",
    d_pretext => "slack.default.pretext",
    d_text => "slack.default.text",
    d_footer => "slack.default.footer",
    d_fallback => "slack.default.fallback",
    d_callback_id => "slack.default.callbackid",
    d_icon_emoji => "slack.default.iconemoji",
    d_icon_url => "slack.default.iconurl",
}

fn d_color() -> String {
    r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#.into()
}

fn d_mrkdwn_in() -> Vec<String> {
    vec!["fallback".into(), "pretext".into(), "text".into()]
}

/// One entry of `slack_configs`. Text fields are templates; their defaults
/// are Alertmanager 0.25's (`{{ template "slack.default.title" . }}`, ...).
/// After [`super::Receiver::finish`], `api_url` / `api_url_file` and
/// `http_config` hold the effective values (own, else `global`'s).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Default false.
    #[serde(default)]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpConfig>,
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub api_url: Secret,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_url_file: String,
    #[serde(default)]
    pub channel: String,
    #[serde(default = "d_username")]
    pub username: String,
    #[serde(default = "d_color")]
    pub color: String,
    #[serde(default = "d_title")]
    pub title: String,
    #[serde(default = "d_title_link")]
    pub title_link: String,
    #[serde(default = "d_pretext")]
    pub pretext: String,
    #[serde(default = "d_text")]
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<SlackField>,
    #[serde(default)]
    pub short_fields: bool,
    #[serde(default = "d_footer")]
    pub footer: String,
    #[serde(default = "d_fallback")]
    pub fallback: String,
    #[serde(default = "d_callback_id")]
    pub callback_id: String,
    #[serde(default = "d_icon_emoji")]
    pub icon_emoji: String,
    #[serde(default = "d_icon_url")]
    pub icon_url: String,
    #[serde(default)]
    pub image_url: String,
    #[serde(default)]
    pub thumb_url: String,
    #[serde(default)]
    pub link_names: bool,
    /// Default `[fallback, pretext, text]`.
    #[serde(default = "d_mrkdwn_in")]
    pub mrkdwn_in: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<SlackAction>,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            send_resolved: false,
            http_config: None,
            api_url: Secret::default(),
            api_url_file: String::new(),
            channel: String::new(),
            username: d_username(),
            color: d_color(),
            title: d_title(),
            title_link: d_title_link(),
            pretext: d_pretext(),
            text: d_text(),
            fields: Vec::new(),
            short_fields: false,
            footer: d_footer(),
            fallback: d_fallback(),
            callback_id: d_callback_id(),
            icon_emoji: d_icon_emoji(),
            icon_url: d_icon_url(),
            image_url: String::new(),
            thumb_url: String::new(),
            link_names: false,
            mrkdwn_in: d_mrkdwn_in(),
            actions: Vec::new(),
        }
    }
}

/// One entry of a Slack config's `fields`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub value: String,
    /// Default: the config's `short_fields`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

/// One entry of a Slack config's `actions`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackAction {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub style: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<SlackConfirmationField>,
}

/// A Slack action's `confirm`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfirmationField {
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ok_text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dismiss_text: String,
}

impl SlackConfig {
    pub(super) fn finish(&mut self, g: &Global, ctx: &Ctx<'_>) -> Result<(), ConfigError> {
        if !self.api_url.is_empty() && !self.api_url_file.is_empty() {
            return Err(ctx.invalid(
                "api_url_file",
                "at most one of api_url & api_url_file must be configured",
            ));
        }
        for (i, f) in self.fields.iter().enumerate() {
            if f.title.is_empty() {
                return Err(ctx.invalid(
                    "fields",
                    format!("missing title in Slack field configuration (field {i})"),
                ));
            }
            if f.value.is_empty() {
                return Err(ctx.invalid(
                    "fields",
                    format!("missing value in Slack field configuration (field {i})"),
                ));
            }
        }
        for a in &self.actions {
            if a.kind.is_empty() {
                return Err(ctx.invalid("actions", "missing type in Slack action configuration"));
            }
            if a.text.is_empty() {
                return Err(ctx.invalid("actions", "missing text in Slack action configuration"));
            }
            if a.url.is_empty() && a.name.is_empty() {
                return Err(ctx.invalid(
                    "actions",
                    "missing name or url in Slack action configuration",
                ));
            }
            if let Some(c) = &a.confirm {
                if c.text.is_empty() {
                    return Err(ctx.invalid(
                        "actions",
                        "missing text in Slack confirmation configuration",
                    ));
                }
            }
        }
        if self.api_url.is_empty() && self.api_url_file.is_empty() {
            if g.slack_api_url.is_empty() && g.slack_api_url_file.is_empty() {
                return Err(ctx.invalid("api_url", "no global Slack API URL set"));
            }
            self.api_url = g.slack_api_url.clone();
            self.api_url_file = g.slack_api_url_file.clone();
        } else if !self.api_url.is_empty() {
            check_url(self.api_url.expose()).map_err(|m| ctx.invalid("api_url", m))?;
        }
        ctx.resolve(&mut self.api_url_file);
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

/// An `http`/`https` URL with a host, or 0.25's message.
pub(super) fn check_url(u: &str) -> Result<(), String> {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    match rest {
        None if !u.contains("://") => Err(format!("unsupported scheme \"\" for URL {u:?}")),
        None => Err(format!(
            "unsupported scheme {:?} for URL",
            u.split("://").next().unwrap_or_default()
        )),
        Some(r) if r.is_empty() || r.starts_with('/') => Err("host required for URL".into()),
        Some(_) => Ok(()),
    }
}
