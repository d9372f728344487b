//! `email_configs`.

use super::Ctx;
use crate::alertmanager::global::Global;
use crate::error::ConfigError;
use crate::{Secret, TlsConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn default_html() -> String {
    r#"{{ template "email.default.html" . }}"#.into()
}

/// One entry of `email_configs`. After [`super::Receiver::finish`] the
/// SMTP settings hold the effective values (own, else `global`'s), and
/// `headers` holds `Subject`, `To` and `From` (defaults: the
/// `email.default.subject` template, `to`, `from`), keys in canonical
/// MIME form (`subject` becomes `Subject`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Default false.
    #[serde(default)]
    pub send_resolved: bool,
    /// Comma-separated addresses (a template).
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub hello: String,
    /// `host:port`.
    #[serde(default)]
    pub smarthost: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth_username: String,
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub auth_password: Secret,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth_password_file: String,
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub auth_secret: Secret,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth_identity: String,
    /// Header name to value template.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Default `{{ template "email.default.html" . }}`.
    #[serde(default = "default_html")]
    pub html: String,
    /// Default empty (no text part).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Default `global.smtp_require_tls`.
    #[serde(default)]
    pub require_tls: Option<bool>,
    /// TLS from the first byte (the default is implicit TLS on port 465,
    /// STARTTLS otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_implicit_tls: Option<bool>,
    #[serde(default)]
    pub tls_config: TlsConfig,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            send_resolved: false,
            to: String::new(),
            from: String::new(),
            hello: String::new(),
            smarthost: String::new(),
            auth_username: String::new(),
            auth_password: Secret::default(),
            auth_password_file: String::new(),
            auth_secret: Secret::default(),
            auth_identity: String::new(),
            headers: BTreeMap::new(),
            html: default_html(),
            text: String::new(),
            require_tls: None,
            force_implicit_tls: None,
            tls_config: TlsConfig::default(),
        }
    }
}

/// `subject` → `Subject`, `x-my-header` → `X-My-Header` (Go's
/// textproto canonical form).
pub(crate) fn canonical_mime_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        upper = c == '-';
    }
    out
}

impl EmailConfig {
    pub(super) fn finish(&mut self, g: &Global, ctx: &Ctx<'_>) -> Result<(), ConfigError> {
        if self.to.is_empty() {
            return Err(ctx.invalid("to", "missing to address in email config"));
        }
        let mut headers = BTreeMap::new();
        for (k, v) in std::mem::take(&mut self.headers) {
            let name = canonical_mime_header(&k);
            if headers.insert(name.clone(), v).is_some() {
                return Err(ctx.invalid(
                    "headers",
                    format!("duplicate header {name:?} in email config"),
                ));
            }
        }
        self.headers = headers;
        if self.smarthost.is_empty() {
            if g.smtp_smarthost.is_empty() {
                return Err(ctx.invalid("smarthost", "no global SMTP smarthost set"));
            }
            self.smarthost = g.smtp_smarthost.clone();
        }
        if self.from.is_empty() {
            if g.smtp_from.is_empty() {
                return Err(ctx.invalid("from", "no global SMTP from set"));
            }
            self.from = g.smtp_from.clone();
        }
        if self.hello.is_empty() {
            self.hello = g.smtp_hello.clone();
        }
        if self.auth_username.is_empty() {
            self.auth_username = g.smtp_auth_username.clone();
        }
        if self.auth_password.is_empty() && self.auth_password_file.is_empty() {
            self.auth_password = g.smtp_auth_password.clone();
            self.auth_password_file = g.smtp_auth_password_file.clone();
        }
        if !self.auth_password.is_empty() && !self.auth_password_file.is_empty() {
            return Err(ctx.invalid(
                "auth_password_file",
                "at most one of auth_password & auth_password_file must be configured",
            ));
        }
        if self.auth_secret.is_empty() {
            self.auth_secret = g.smtp_auth_secret.clone();
        }
        if self.auth_identity.is_empty() {
            self.auth_identity = g.smtp_auth_identity.clone();
        }
        if self.require_tls.is_none() {
            self.require_tls = Some(g.smtp_require_tls);
        }
        ctx.resolve(&mut self.auth_password_file);
        ctx.resolve(&mut self.tls_config.ca_file);
        ctx.resolve(&mut self.tls_config.cert_file);
        ctx.resolve(&mut self.tls_config.key_file);
        self.headers
            .entry("Subject".into())
            .or_insert_with(|| r#"{{ template "email.default.subject" . }}"#.into());
        self.headers
            .entry("To".into())
            .or_insert_with(|| self.to.clone());
        self.headers
            .entry("From".into())
            .or_insert_with(|| self.from.clone());
        Ok(())
    }

    /// The SMTP port of `smarthost` (after the last `:`), if any.
    pub fn port(&self) -> Option<u16> {
        self.smarthost
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
    }
}
