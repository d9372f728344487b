//! One HTTP client per scrape config: reqwest over rustls (ring provider),
//! keep-alive, gzip, redirects as configured, TLS options from `tls_config`.

use crate::target::{HttpConfig, TlsSettings};
use crate::ScrapeError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;

/// The User-Agent Koban scrapes with.
pub const USER_AGENT: &str = concat!("Koban/", env!("CARGO_PKG_VERSION"));

fn cfg_err(job: &str, reason: impl Into<String>) -> ScrapeError {
    ScrapeError::Config {
        job: job.to_string(),
        reason: reason.into(),
    }
}

/// Builds the rustls client configuration for `tls`.
pub fn tls_config(job: &str, tls: &TlsSettings) -> Result<rustls::ClientConfig, ScrapeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| cfg_err(job, format!("tls: {e}")))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(ca) = &tls.ca_file {
            for c in read_certs(job, ca)? {
                roots
                    .add(c)
                    .map_err(|e| cfg_err(job, format!("tls_config.ca_file {ca}: {e}")))?;
            }
        }
        builder.with_root_certificates(roots)
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => {
            let certs = read_certs(job, c)?;
            let pem = std::fs::read(k)
                .map_err(|e| cfg_err(job, format!("tls_config.key_file {k}: {e}")))?;
            let key = rustls_pemfile::private_key(&mut pem.as_slice())
                .map_err(|e| cfg_err(job, format!("tls_config.key_file {k}: {e}")))?
                .ok_or_else(|| {
                    cfg_err(
                        job,
                        format!("tls_config.key_file {k}: no private key found"),
                    )
                })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| cfg_err(job, format!("tls client certificate: {e}")))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(cfg_err(job, "tls_config needs both cert_file and key_file")),
    }
}

fn read_certs(job: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, ScrapeError> {
    let pem = std::fs::read(path).map_err(|e| cfg_err(job, format!("{path}: {e}")))?;
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cfg_err(job, format!("{path}: {e}")))
}

/// Builds the client for one pool. `timeout` bounds connection set-up; the
/// scrape loop bounds each whole scrape itself.
pub fn build(
    job: &str,
    http: &HttpConfig,
    timeout: Duration,
) -> Result<reqwest::Client, ScrapeError> {
    let tls = tls_config(job, &http.tls)?;
    let mut b = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .user_agent(USER_AGENT)
        .gzip(true)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(2)
        .tcp_nodelay(true)
        .redirect(if http.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
    if !http.enable_http2 {
        b = b.http1_only();
    }
    match &http.proxy_url {
        Some(p) => {
            let proxy = reqwest::Proxy::all(p)
                .map_err(|e| cfg_err(job, format!("proxy_url {p:?}: {e}")))?;
            b = b.proxy(proxy);
        }
        None => b = b.no_proxy(),
    }
    b.build()
        .map_err(|e| cfg_err(job, format!("http client: {e}")))
}

/// `insecure_skip_verify: true`: accepts any server certificate but still
/// checks handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
