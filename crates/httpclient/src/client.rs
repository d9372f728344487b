//! [`HttpClient`]: a reqwest client built from an [`HttpClientConfig`],
//! plus the per-request work (auth, oauth2 token, `http_headers`, TLS
//! files re-read when they change).

use crate::files::Source;
use crate::oauth2::TokenSource;
use crate::schema::{HttpClientConfig, Secret, TlsConfig};
use crate::tls::{TlsSources, TlsVersion};
use crate::Error;
use base64::Engine as _;
use parking_lot::Mutex;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Settings of a client that are the caller's, not the config's.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Sent on every request (and to the oauth2 token endpoint).
    pub user_agent: String,
    /// Bounds TCP connect + TLS handshake; None: no bound (the caller
    /// bounds each request, e.g. with the scrape timeout).
    pub connect_timeout: Option<Duration>,
    /// Ask for and decode gzip bodies.
    pub gzip: bool,
    /// Idle connections kept per host.
    pub pool_max_idle_per_host: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            user_agent: concat!("Koban/", env!("CARGO_PKG_VERSION")).to_string(),
            connect_timeout: None,
            gzip: true,
            pool_max_idle_per_host: 2,
        }
    }
}

/// Proxy settings of one transport.
#[derive(Debug, Clone)]
struct ProxySettings {
    url: String,
    no_proxy: String,
    from_environment: bool,
    connect_header: HeaderMap,
}

impl ProxySettings {
    fn new(
        url: &str,
        no_proxy: &str,
        from_environment: bool,
        connect_header: &BTreeMap<String, Vec<Secret>>,
    ) -> Result<ProxySettings, Error> {
        let mut headers = HeaderMap::new();
        for (k, vs) in connect_header {
            let name = header_name(k)?;
            for v in vs {
                headers.append(name.clone(), header_value(k, v.expose(), true)?);
            }
        }
        Ok(ProxySettings {
            url: url.to_string(),
            no_proxy: no_proxy.to_string(),
            from_environment,
            connect_header: headers,
        })
    }

    fn is_set(&self) -> bool {
        !self.url.is_empty() || self.from_environment
    }
}

fn header_name(k: &str) -> Result<HeaderName, Error> {
    HeaderName::from_bytes(k.as_bytes()).map_err(|e| Error::Header {
        name: k.to_string(),
        reason: e.to_string(),
    })
}

fn header_value(k: &str, v: &str, sensitive: bool) -> Result<HeaderValue, Error> {
    let mut hv = HeaderValue::from_str(v).map_err(|e| Error::Header {
        name: k.to_string(),
        reason: e.to_string(),
    })?;
    hv.set_sensitive(sensitive);
    Ok(hv)
}

/// A reqwest client with TLS and proxy settings; rebuilt when a TLS file
/// changes. Cloning shares the state.
#[derive(Clone)]
pub(crate) struct Transport {
    inner: Arc<TransportInner>,
}

struct TransportInner {
    settings: Settings,
    current: Mutex<(reqwest::Client, TlsVersion)>,
}

/// What a transport's reqwest client is built from.
struct Settings {
    tls_cfg: TlsConfig,
    tls: TlsSources,
    proxy: ProxySettings,
    follow_redirects: bool,
    enable_http2: bool,
    opts: ClientOptions,
}

impl Transport {
    fn new(
        tls_cfg: &TlsConfig,
        proxy: ProxySettings,
        follow_redirects: bool,
        enable_http2: bool,
        opts: &ClientOptions,
    ) -> Result<Transport, Error> {
        let tls = TlsSources::new(tls_cfg)?;
        let settings = Settings {
            tls_cfg: tls_cfg.clone(),
            tls,
            proxy,
            follow_redirects,
            enable_http2,
            opts: opts.clone(),
        };
        let built = settings.build()?;
        Ok(Transport {
            inner: Arc::new(TransportInner {
                settings,
                current: Mutex::new(built),
            }),
        })
    }

    /// The client to use now: the current one, or a new one when a TLS
    /// file changed since it was built.
    pub(crate) fn client(&self) -> Result<reqwest::Client, Error> {
        let i = &self.inner;
        if !i.settings.tls.watches_files() {
            return Ok(i.current.lock().0.clone());
        }
        let version = i.settings.tls.version()?;
        {
            let cur = i.current.lock();
            if cur.1 == version {
                return Ok(cur.0.clone());
            }
        }
        let built = i.settings.build()?;
        tracing::info!("TLS files changed, new connections use them");
        let client = built.0.clone();
        *i.current.lock() = built;
        Ok(client)
    }
}

impl Settings {
    fn build(&self) -> Result<(reqwest::Client, TlsVersion), Error> {
        let alpn: &[&str] = if self.enable_http2 {
            &["h2", "http/1.1"]
        } else {
            &["http/1.1"]
        };
        let (tls, version) = self.tls.build(&self.tls_cfg, alpn)?;
        let mut b = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .user_agent(self.opts.user_agent.clone())
            .gzip(self.opts.gzip)
            .pool_max_idle_per_host(self.opts.pool_max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(300))
            .tcp_nodelay(true)
            .redirect(if self.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            });
        if let Some(t) = self.opts.connect_timeout {
            b = b.connect_timeout(t);
        }
        if !self.enable_http2 {
            b = b.http1_only();
        }
        let p = &self.proxy;
        if !p.url.is_empty() {
            let mut proxy = reqwest::Proxy::all(&p.url).map_err(|e| Error::Proxy {
                url: p.url.clone(),
                source: e,
            })?;
            if !p.no_proxy.is_empty() {
                proxy = proxy.no_proxy(reqwest::NoProxy::from_string(&p.no_proxy));
            }
            if !p.connect_header.is_empty() {
                proxy = proxy.headers(p.connect_header.clone());
            }
            b = b.proxy(proxy);
        } else if !p.from_environment {
            b = b.no_proxy();
        }
        // proxy_from_environment: reqwest reads HTTP_PROXY, HTTPS_PROXY and
        // NO_PROXY itself, as Go's ProxyFromEnvironment does.
        Ok((b.build().map_err(Error::Build)?, version))
    }
}

/// How requests are authenticated.
enum Auth {
    None,
    Basic { username: Source, password: Source },
    Authorization { kind: String, credentials: Source },
    OAuth2(Box<TokenSource>),
}

/// One `http_headers` entry, its static values prebuilt.
struct Header {
    name: HeaderName,
    fixed: Vec<HeaderValue>,
    files: Vec<Source>,
}

/// An HTTP client for one scrape pool, service discovery provider,
/// notifier or remote endpoint. Cheap to clone (the clones share
/// connections, cached tokens and file state).
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    transport: Transport,
    auth: Auth,
    headers: Vec<Header>,
    proxied: bool,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds the client of a validated config (see
    /// [`HttpClientConfig::validate`]; file paths already made absolute by
    /// [`HttpClientConfig::set_directory`]). `name` names the user in logs
    /// (the job name, `alertmanager`, the remote write name...).
    ///
    /// Reads the TLS files now (blocking file I/O: call it where config
    /// loading happens, not per request) and fails on an unreadable or
    /// invalid CA, certificate or key, an unusable `max_version`, a bad
    /// proxy URL or header. Secret files are first read at the first
    /// request, so a missing password file fails requests, not the config
    /// (as in Prometheus).
    pub fn new(cfg: &HttpClientConfig, name: &str, opts: ClientOptions) -> Result<Self, Error> {
        let proxy = ProxySettings::new(
            &cfg.proxy_url,
            &cfg.no_proxy,
            cfg.proxy_from_environment,
            &cfg.proxy_connect_header,
        )?;
        let proxied = proxy.is_set();
        let transport = Transport::new(
            &cfg.tls_config,
            proxy,
            cfg.follow_redirects,
            cfg.enable_http2,
            &opts,
        )?;
        let auth = if let Some(b) = &cfg.basic_auth {
            Auth::Basic {
                username: Source::new("basic_auth username_file", &b.username, &b.username_file),
                password: Source::new(
                    "basic_auth password_file",
                    b.password.expose(),
                    &b.password_file,
                ),
            }
        } else if let Some(a) = &cfg.authorization {
            Auth::Authorization {
                kind: if a.kind.is_empty() {
                    "Bearer".into()
                } else {
                    a.kind.clone()
                },
                credentials: Source::new(
                    "authorization credentials_file",
                    a.credentials.expose(),
                    &a.credentials_file,
                ),
            }
        } else if !cfg.bearer_token.is_empty() || !cfg.bearer_token_file.is_empty() {
            // An unvalidated config: Prometheus honours the legacy keys too.
            Auth::Authorization {
                kind: "Bearer".into(),
                credentials: Source::new(
                    "bearer_token_file",
                    cfg.bearer_token.expose(),
                    &cfg.bearer_token_file,
                ),
            }
        } else if let Some(o) = &cfg.oauth2 {
            let proxy = ProxySettings::new(
                &o.proxy_url,
                &o.no_proxy,
                o.proxy_from_environment,
                &o.proxy_connect_header,
            )?;
            let t = Transport::new(&o.tls_config, proxy, true, cfg.enable_http2, &opts)?;
            Auth::OAuth2(Box::new(TokenSource::new(o, t, &opts.user_agent)))
        } else {
            Auth::None
        };
        let mut headers = Vec::new();
        for (k, h) in &cfg.http_headers {
            let name = header_name(k)?;
            let mut fixed = Vec::new();
            for v in &h.values {
                fixed.push(header_value(k, v, false)?);
            }
            for v in &h.secrets {
                fixed.push(header_value(k, v.expose(), true)?);
            }
            let files = h
                .files
                .iter()
                .map(|f| Source::new("http_headers file", "", f))
                .collect();
            headers.push(Header { name, fixed, files });
        }
        Ok(HttpClient {
            inner: Arc::new(Inner {
                name: name.to_string(),
                transport,
                auth,
                headers,
                proxied,
            }),
        })
    }

    /// The name given to [`HttpClient::new`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// A request with the configured authentication and `http_headers`
    /// applied; the caller adds its own headers and body and sends it.
    ///
    /// Fails when a secret file cannot be read, a changed TLS file is
    /// invalid, or the oauth2 token endpoint does not give a token (the
    /// error says which). May wait for a token request.
    pub async fn request<U: reqwest::IntoUrl>(
        &self,
        method: reqwest::Method,
        url: U,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let i = &self.inner;
        let client = i.transport.client()?;
        let mut req = client.request(method, url);
        for h in &i.headers {
            for v in &h.fixed {
                req = req.header(h.name.clone(), v.clone());
            }
            for f in &h.files {
                let v = f.text()?;
                req = req.header(h.name.clone(), header_value(h.name.as_str(), &v, true)?);
            }
        }
        match &i.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                req = req.basic_auth(username.text()?, Some(password.text()?));
            }
            Auth::Authorization { kind, credentials } => {
                let v = format!("{kind} {}", credentials.text()?);
                req = req.header(
                    reqwest::header::AUTHORIZATION,
                    header_value("Authorization", &v, true)?,
                );
            }
            Auth::OAuth2(t) => {
                req = req.header(reqwest::header::AUTHORIZATION, t.header().await?);
            }
        }
        Ok(req)
    }

    /// For a caller with its own plain-HTTP client (the scrape fast path):
    /// the headers every request carries, when they are all fixed (inline
    /// credentials and header values only) and no proxy applies. None: use
    /// [`HttpClient::request`], which re-reads files and fetches tokens.
    pub fn fixed_headers(&self) -> Option<Vec<(String, String)>> {
        let i = &self.inner;
        if i.proxied {
            return None;
        }
        let mut out = Vec::new();
        for h in &i.headers {
            if !h.files.is_empty() {
                return None;
            }
            for v in &h.fixed {
                out.push((h.name.to_string(), v.to_str().ok()?.to_string()));
            }
        }
        let fixed = |s: &Source| -> Option<String> {
            match s {
                Source::File(_) => None,
                _ => s.text().ok(),
            }
        };
        match &i.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let creds = format!("{}:{}", fixed(username)?, fixed(password)?);
                let enc = base64::engine::general_purpose::STANDARD.encode(creds);
                out.push(("Authorization".into(), format!("Basic {enc}")));
            }
            Auth::Authorization { kind, credentials } => {
                out.push((
                    "Authorization".into(),
                    format!("{kind} {}", fixed(credentials)?),
                ));
            }
            Auth::OAuth2(_) => return None,
        }
        Some(out)
    }
}
