//! `tls_config` -> a rustls client configuration (ring provider).
//!
//! As in Prometheus: a configured CA (`ca` / `ca_file`) replaces the
//! built-in roots; `server_name` is the name the server certificate must
//! carry (the connection still goes to the URL's host, whose name is also
//! sent as SNI); `insecure_skip_verify` accepts any certificate but still
//! checks handshake signatures. rustls speaks TLS 1.2 and 1.3 only:
//! `min_version: TLS10`/`TLS11` allow both, `max_version: TLS10`/`TLS11`
//! is refused when the client is built.

use crate::files::Source;
use crate::schema::TlsConfig;
use crate::Error;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion};
use std::sync::Arc;

/// The TLS settings of one client, with the CA, certificate and key
/// sources that are re-read when their files change.
#[derive(Debug, Clone)]
pub(crate) struct TlsSources {
    ca: Source,
    cert: Source,
    key: Source,
    server_name: Option<ServerName<'static>>,
    insecure_skip_verify: bool,
    versions: Vec<&'static SupportedProtocolVersion>,
}

/// Versions of the CA, cert and key contents a built config used.
pub(crate) type TlsVersion = [u64; 3];

fn tls_err(m: impl Into<String>) -> Error {
    Error::Tls(m.into())
}

fn describe(s: &Source, file: &str) -> String {
    if s.is_file() {
        format!("file {file}")
    } else {
        "inline".into()
    }
}

impl TlsSources {
    /// Checks the static settings (versions, server name); files are read
    /// by [`TlsSources::build`].
    pub(crate) fn new(t: &TlsConfig) -> Result<TlsSources, Error> {
        let server_name =
            if t.server_name.is_empty() {
                None
            } else {
                Some(ServerName::try_from(t.server_name.clone()).map_err(|e| {
                    tls_err(format!("invalid server_name {:?}: {e}", t.server_name))
                })?)
            };
        let rank = |v: &str, default: u8| match v {
            "TLS10" => 0,
            "TLS11" => 1,
            "TLS12" => 2,
            "TLS13" => 3,
            _ => default,
        };
        let (min, max) = (rank(&t.min_version, 2), rank(&t.max_version, 3));
        let mut versions = Vec::new();
        if min <= 2 && max >= 2 {
            versions.push(&rustls::version::TLS12);
        }
        if max >= 3 {
            versions.push(&rustls::version::TLS13);
        }
        if versions.is_empty() {
            return Err(tls_err(format!(
                "max_version {} is not supported by Koban (TLS12 and TLS13 are)",
                t.max_version
            )));
        }
        Ok(TlsSources {
            ca: Source::new("tls_config ca_file", &t.ca, &t.ca_file),
            cert: Source::new("tls_config cert_file", &t.cert, &t.cert_file),
            key: Source::new("tls_config key_file", t.key.expose(), &t.key_file),
            server_name,
            insecure_skip_verify: t.insecure_skip_verify,
            versions,
        })
    }

    /// Whether any setting comes from a file (so [`TlsSources::version`]
    /// can change).
    pub(crate) fn watches_files(&self) -> bool {
        self.ca.is_file() || self.cert.is_file() || self.key.is_file()
    }

    /// The current content versions, to compare with what a built config used.
    pub(crate) fn version(&self) -> Result<TlsVersion, Error> {
        Ok([self.ca.get()?.1, self.cert.get()?.1, self.key.get()?.1])
    }

    /// Reads the CA, certificate and key and builds the rustls config.
    /// `alpn`: the protocols to offer (`h2`, `http/1.1`).
    pub(crate) fn build(
        &self,
        t: &TlsConfig,
        alpn: &[&str],
    ) -> Result<(rustls::ClientConfig, TlsVersion), Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.versions)
            .map_err(|e| tls_err(e.to_string()))?;
        let (ca, ca_v) = self.ca.get()?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.insecure_skip_verify {
            Arc::new(NoVerify(provider.clone()))
        } else {
            let mut roots = rustls::RootCertStore::empty();
            match ca {
                Some(pem) => {
                    let certs = rustls_pemfile::certs(&mut &pem[..])
                        .collect::<Result<Vec<_>, _>>()
                        .unwrap_or_default();
                    let (added, _) = roots.add_parsable_certificates(certs);
                    if added == 0 {
                        return Err(tls_err(format!(
                            "unable to use specified CA cert {}",
                            describe(&self.ca, &t.ca_file)
                        )));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let inner =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| tls_err(e.to_string()))?;
            match &self.server_name {
                Some(name) => Arc::new(NamedVerifier {
                    inner,
                    name: name.clone(),
                }),
                None => inner,
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let (cert, cert_v) = self.cert.get()?;
        let (key, key_v) = self.key.get()?;
        let mut cfg = match (cert, key) {
            (Some(cert), Some(key)) => {
                let pair_err = |m: String| {
                    tls_err(format!(
                        "unable to use specified client cert ({}) & key ({}): {m}",
                        describe(&self.cert, &t.cert_file),
                        describe(&self.key, &t.key_file)
                    ))
                };
                let certs = rustls_pemfile::certs(&mut &cert[..])
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| pair_err(e.to_string()))?;
                if certs.is_empty() {
                    return Err(pair_err("no certificate found".into()));
                }
                let key = rustls_pemfile::private_key(&mut &key[..])
                    .map_err(|e| pair_err(e.to_string()))?
                    .ok_or_else(|| pair_err("no private key found".into()))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| pair_err(e.to_string()))?
            }
            _ => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Ok((cfg, [ca_v, cert_v, key_v]))
    }
}

/// Verifies the server certificate against `server_name` instead of the
/// URL's host.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
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
