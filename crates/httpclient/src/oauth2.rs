//! `oauth2:`: tokens from the client credentials grant, cached until
//! shortly before they expire.
//!
//! As Go's `x/oauth2/clientcredentials` (which Prometheus uses): a form
//! POST to `token_url` with `grant_type=client_credentials`, `scope` (the
//! scopes joined by spaces) and `endpoint_params`; the client id and
//! secret go in an HTTP basic `Authorization` header (each URL-encoded).
//! When the endpoint answers 400 or 401 to that, the request is repeated
//! once with them as `client_id` / `client_secret` form fields, and that
//! style is kept. A token is reused until 10 s before its `expires_in`
//! (forever without one); a changed `client_secret_file` drops it.

use crate::client::Transport;
use crate::files::Source;
use crate::schema::OAuth2;
use crate::{error_chain, Error};
use reqwest::header::HeaderValue;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Tokens are refreshed this long before they expire (x/oauth2's margin).
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

struct Cached {
    header: HeaderValue,
    expires: Option<Instant>,
    secret_version: u64,
}

/// The token source of one client. Shared by all its requests; one token
/// request at a time.
pub(crate) struct TokenSource {
    cfg: OAuth2,
    secret: Source,
    transport: Transport,
    user_agent: String,
    /// Send id and secret as form fields instead of basic auth.
    in_params: AtomicBool,
    token: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.cfg.token_url)
            .finish_non_exhaustive()
    }
}

fn oauth_err(m: impl Into<String>) -> Error {
    Error::OAuth2(m.into())
}

impl TokenSource {
    pub(crate) fn new(cfg: &OAuth2, transport: Transport, user_agent: &str) -> TokenSource {
        TokenSource {
            secret: Source::new(
                "oauth2 client_secret_file",
                cfg.client_secret.expose(),
                &cfg.client_secret_file,
            ),
            cfg: cfg.clone(),
            transport,
            user_agent: user_agent.to_string(),
            in_params: AtomicBool::new(false),
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// The `Authorization` header value for the next request: the cached
    /// token, or a new one from the token endpoint.
    pub(crate) async fn header(&self) -> Result<HeaderValue, Error> {
        let mut cached = self.token.lock().await;
        let (_, secret_version) = self.secret.get()?;
        if let Some(c) = &*cached {
            let fresh = c.expires.is_none_or(|e| Instant::now() + EXPIRY_MARGIN < e);
            if fresh && c.secret_version == secret_version {
                return Ok(c.header.clone());
            }
        }
        let secret = self.secret.text()?;
        let new = self.fetch(&secret).await?;
        let header = new.header.clone();
        *cached = Some(Cached {
            secret_version,
            ..new
        });
        Ok(header)
    }

    async fn fetch(&self, secret: &str) -> Result<Cached, Error> {
        let in_params = self.in_params.load(Ordering::Relaxed);
        match self.request(secret, in_params).await {
            Err(f) if f.retry && !in_params => {
                tracing::debug!(error = %f.error, "oauth2: token request with basic auth refused, retrying with form fields");
                let r = self.request(secret, true).await;
                if r.is_ok() {
                    self.in_params.store(true, Ordering::Relaxed);
                }
                r.map_err(|f| f.error)
            }
            r => r.map_err(|f| f.error),
        }
    }

    async fn request(&self, secret: &str, in_params: bool) -> Result<Cached, Failed> {
        let body = self.form(secret, in_params);
        let client = self.transport.client().map_err(fail)?;
        let mut req = client
            .post(&self.cfg.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::USER_AGENT, &self.user_agent)
            .body(body);
        if !in_params {
            req = req.basic_auth(
                query_escape(&self.cfg.client_id),
                Some(query_escape(secret)),
            );
        }
        self.send(req).await
    }

    /// The token request's form body.
    fn form(&self, secret: &str, in_params: bool) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if !self.cfg.scopes.is_empty() {
            form.append_pair("scope", &self.cfg.scopes.join(" "));
        }
        for (k, v) in &self.cfg.endpoint_params {
            form.append_pair(k, v);
        }
        if in_params {
            form.append_pair("client_id", &self.cfg.client_id);
            form.append_pair("client_secret", secret);
        }
        form.finish()
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Cached, Failed> {
        let resp = req.send().await.map_err(|e| {
            fail(oauth_err(format!(
                "oauth2: cannot fetch token: {}",
                error_chain(&e)
            )))
        })?;
        let status = resp.status();
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp.bytes().await.map_err(|e| {
            fail(oauth_err(format!(
                "oauth2: cannot fetch token: {}",
                error_chain(&e)
            )))
        })?;
        let fields = parse_fields(&ct, &body);
        if !status.is_success() {
            let code = fields.get("error").cloned().unwrap_or_default();
            let msg = if code.is_empty() {
                format!(
                    "oauth2: cannot fetch token: {status}\nResponse: {}",
                    String::from_utf8_lossy(&body).trim()
                )
            } else {
                let desc = fields.get("error_description").cloned().unwrap_or_default();
                format!("oauth2: {code:?} {desc:?}")
            };
            let retry = status.as_u16() == 400 || status.as_u16() == 401;
            return Err(Failed {
                error: oauth_err(msg),
                retry,
            });
        }
        let token = fields.get("access_token").cloned().unwrap_or_default();
        if token.is_empty() {
            return Err(fail(oauth_err(
                "oauth2: server response missing access_token",
            )));
        }
        let kind = match fields.get("token_type").map(String::as_str) {
            None | Some("") => "Bearer".to_string(),
            Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_string(),
            Some(t) if t.eq_ignore_ascii_case("mac") => "MAC".to_string(),
            Some(t) if t.eq_ignore_ascii_case("basic") => "Basic".to_string(),
            Some(t) => t.to_string(),
        };
        let expires = fields
            .get("expires_in")
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map(|s| Instant::now() + Duration::from_secs(s));
        let mut header = HeaderValue::from_str(&format!("{kind} {token}")).map_err(|_| {
            fail(oauth_err(
                "oauth2: the token endpoint returned a token that is not a valid header value",
            ))
        })?;
        header.set_sensitive(true);
        Ok(Cached {
            header,
            expires,
            secret_version: 0,
        })
    }
}

/// A failed token request, and whether to retry it with the other way of
/// sending the client credentials.
struct Failed {
    error: Error,
    retry: bool,
}

fn fail(error: Error) -> Failed {
    Failed {
        error,
        retry: false,
    }
}

/// The response fields: JSON, or form-encoded (as some endpoints answer).
fn parse_fields(content_type: &str, body: &[u8]) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let form = content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.starts_with("text/plain");
    if !form {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice(body) {
            for (k, v) in m {
                let s = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Null => continue,
                    other => other.to_string(),
                };
                out.insert(k, s);
            }
            return out;
        }
    }
    for (k, v) in form_urlencoded::parse(body) {
        out.insert(k.into_owned(), v.into_owned());
    }
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
