//! Validation of an [`HttpClientConfig`], with Prometheus's messages.

use crate::schema::*;

/// A validation failure: `key` is the top-level key of the HTTP client
/// config the message is about (the config loader points its
/// `file:line:col` at that key's value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub key: &'static str,
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        key,
        message: message.into(),
    }
}

/// Headers `http_headers` may not set: Koban sets them itself, or they
/// change the connection (Prometheus's list).
pub const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-prometheus-scrape-timeout-seconds",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// `content-type` -> `Content-Type`, as Go prints header names.
pub fn canonical_header_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

const TLS_VERSIONS: [&str; 4] = ["TLS10", "TLS11", "TLS12", "TLS13"];

impl HttpClientConfig {
    /// Checks the combination of settings as Prometheus does, and moves the
    /// legacy `bearer_token` / `bearer_token_file` into `authorization`
    /// (type `Bearer`); an empty authorization type becomes `Bearer`.
    pub fn validate(&mut self) -> Result<(), Invalid> {
        let has_token = !self.bearer_token.is_empty() || !self.bearer_token_file.is_empty();
        let token_key = if self.bearer_token.is_empty() {
            "bearer_token_file"
        } else {
            "bearer_token"
        };
        if !self.bearer_token.is_empty() && !self.bearer_token_file.is_empty() {
            return Err(bad(
                token_key,
                "at most one of bearer_token & bearer_token_file must be configured",
            ));
        }
        if has_token && (self.basic_auth.is_some() || self.oauth2.is_some()) {
            return Err(bad(token_key, "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"));
        }
        if let Some(b) = &self.basic_auth {
            if !b.username.is_empty() && !b.username_file.is_empty() {
                return Err(bad(
                    "basic_auth",
                    "at most one of basic_auth username & username_file must be configured",
                ));
            }
            if !b.password.is_empty() && !b.password_file.is_empty() {
                return Err(bad(
                    "basic_auth",
                    "at most one of basic_auth password & password_file must be configured",
                ));
            }
        }
        if let Some(a) = &mut self.authorization {
            if has_token {
                return Err(bad(
                    "authorization",
                    "authorization is not compatible with bearer_token & bearer_token_file",
                ));
            }
            if !a.credentials.is_empty() && !a.credentials_file.is_empty() {
                return Err(bad(
                    "authorization",
                    "at most one of authorization credentials & credentials_file must be configured",
                ));
            }
            a.kind = a.kind.trim().to_string();
            if a.kind.is_empty() {
                a.kind = "Bearer".into();
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                return Err(bad(
                    "authorization",
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                ));
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err(bad(
                    "authorization",
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                ));
            }
        } else if has_token {
            self.authorization = Some(Authorization {
                kind: "Bearer".into(),
                credentials: std::mem::take(&mut self.bearer_token),
                credentials_file: std::mem::take(&mut self.bearer_token_file),
            });
        }
        if let Some(o) = &self.oauth2 {
            if self.basic_auth.is_some() {
                return Err(bad(
                    "oauth2",
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                ));
            }
            if o.client_id.is_empty() {
                return Err(bad("oauth2", "oauth2 client_id must be configured"));
            }
            if o.token_url.is_empty() {
                return Err(bad("oauth2", "oauth2 token_url must be configured"));
            }
            if !o.client_secret.is_empty() && !o.client_secret_file.is_empty() {
                return Err(bad(
                    "oauth2",
                    "at most one of oauth2 client_secret & client_secret_file must be configured",
                ));
            }
            check_url("oauth2", "oauth2 token_url", &o.token_url)?;
            validate_tls(&o.tls_config).map_err(|m| bad("oauth2", format!("tls_config: {m}")))?;
            validate_proxy(
                &o.proxy_url,
                &o.no_proxy,
                o.proxy_from_environment,
                !o.proxy_connect_header.is_empty(),
            )
            .map_err(|(_, m)| bad("oauth2", m))?;
        }
        validate_tls(&self.tls_config).map_err(|m| bad("tls_config", m))?;
        validate_proxy(
            &self.proxy_url,
            &self.no_proxy,
            self.proxy_from_environment,
            !self.proxy_connect_header.is_empty(),
        )
        .map_err(|(k, m)| bad(k, m))?;
        for name in self.http_headers.keys() {
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(bad(
                    "http_headers",
                    format!(
                        "setting header {:?} is not allowed",
                        canonical_header_name(name)
                    ),
                ));
            }
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(bad("http_headers", format!("invalid header name {name:?}")));
            }
        }
        Ok(())
    }
}

fn check_url(key: &'static str, what: &str, url: &str) -> Result<(), Invalid> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.has_host() => Ok(()),
        Ok(_) => Err(bad(key, format!("invalid {what} {url:?}: no host"))),
        Err(e) => Err(bad(key, format!("invalid {what} {url:?}: {e}"))),
    }
}

fn validate_tls(t: &TlsConfig) -> Result<(), String> {
    if !t.ca.is_empty() && !t.ca_file.is_empty() {
        return Err("at most one of ca & ca_file must be configured".into());
    }
    if !t.cert.is_empty() && !t.cert_file.is_empty() {
        return Err("at most one of cert & cert_file must be configured".into());
    }
    if !t.key.is_empty() && !t.key_file.is_empty() {
        return Err("at most one of key & key_file must be configured".into());
    }
    let has_cert = !t.cert.is_empty() || !t.cert_file.is_empty();
    let has_key = !t.key.is_empty() || !t.key_file.is_empty();
    if has_cert && !has_key {
        return Err(
            "exactly one of key or key_file must be configured when a client certificate is configured"
                .into(),
        );
    }
    if has_key && !has_cert {
        return Err(
            "exactly one of cert or cert_file must be configured when a client key is configured"
                .into(),
        );
    }
    let rank = |v: &str| TLS_VERSIONS.iter().position(|x| *x == v);
    for v in [&t.min_version, &t.max_version] {
        if !v.is_empty() && rank(v).is_none() {
            return Err(format!(
                "unknown TLS version: {v} (want TLS10, TLS11, TLS12 or TLS13)"
            ));
        }
    }
    if let (Some(min), Some(max)) = (rank(&t.min_version), rank(&t.max_version)) {
        if max < min {
            return Err("tls_config.max_version must be greater than or equal to tls_config.min_version if both are specified".into());
        }
    }
    Ok(())
}

fn validate_proxy(
    proxy_url: &str,
    no_proxy: &str,
    from_env: bool,
    has_connect_header: bool,
) -> Result<(), (&'static str, String)> {
    if has_connect_header && !from_env && proxy_url.is_empty() {
        return Err(("proxy_connect_header", "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured".into()));
    }
    if from_env && !proxy_url.is_empty() {
        return Err((
            "proxy_url",
            "if proxy_from_environment is configured, proxy_url must not be configured".into(),
        ));
    }
    if from_env && !no_proxy.is_empty() {
        return Err((
            "no_proxy",
            "if proxy_from_environment is configured, no_proxy must not be configured".into(),
        ));
    }
    if proxy_url.is_empty() && !no_proxy.is_empty() {
        return Err((
            "no_proxy",
            "if no_proxy is configured, proxy_url must also be configured".into(),
        ));
    }
    if !proxy_url.is_empty() {
        check_url("proxy_url", "proxy_url", proxy_url).map_err(|e| ("proxy_url", e.message))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_moves_into_authorization() {
        let mut c = HttpClientConfig {
            bearer_token_file: "/t".into(),
            ..Default::default()
        };
        c.validate().unwrap();
        let a = c.authorization.unwrap();
        assert_eq!(
            (a.kind.as_str(), a.credentials_file.as_str()),
            ("Bearer", "/t")
        );
        assert!(c.bearer_token_file.is_empty());
    }

    #[test]
    fn refusals_name_their_key() {
        let mut c = HttpClientConfig {
            oauth2: Some(OAuth2 {
                client_id: "a".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            c.validate().unwrap_err(),
            bad("oauth2", "oauth2 token_url must be configured")
        );
        let mut c = HttpClientConfig::default();
        c.http_headers
            .insert("user-agent".into(), HttpHeader::default());
        assert_eq!(
            c.validate().unwrap_err().message,
            "setting header \"User-Agent\" is not allowed"
        );
        let mut c = HttpClientConfig {
            tls_config: TlsConfig {
                min_version: "TLS13".into(),
                max_version: "TLS12".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "tls_config");
    }
}
