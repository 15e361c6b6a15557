//! TLS for guests' outgoing HTTPS: one crypto provider for the whole process (aws-lc-rs, the
//! only one in the dependency tree), and the roots a server certificate must chain to: the
//! platform's store, or, as curl and OpenSSL do, the PEM files named by `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` instead (how an operator trusts a private CA).

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use wasmtime_wasi_http::Error;

/// The process's TLS provider, installed as rustls's default the first time it is asked for,
/// so no `ClientConfig::builder()` anywhere in the process has to guess between providers.
pub(crate) fn provider() -> &'static Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        // Already installed (by an embedder) is fine: ours is used explicitly below.
        let _ = provider.clone().install_default();
        Arc::new(provider)
    })
}

/// The client configuration, built on first use (reading the roots costs a few milliseconds),
/// or why HTTPS cannot work on this host.
fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (_, unusable) = roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                let source = match (
                    std::env::var_os("SSL_CERT_FILE"),
                    std::env::var_os("SSL_CERT_DIR"),
                ) {
                    (None, None) => "the platform's certificate store".to_string(),
                    (file, dir) => format!(
                        "SSL_CERT_FILE={} SSL_CERT_DIR={}",
                        file.unwrap_or_default().to_string_lossy(),
                        dir.unwrap_or_default().to_string_lossy()
                    ),
                };
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(format!(
                    "no usable root certificate in {source} ({unusable} unusable{}{})",
                    if errors.is_empty() { "" } else { "; " },
                    errors.join("; ")
                ));
            }
            rustls::ClientConfig::builder_with_provider(provider().clone())
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// A connector for HTTPS to `host`, before any connection is opened; without a usable root
/// certificate the refusal is reported with its fix and the guest gets `configuration-error`.
pub(super) fn connector(
    access: &super::NetworkAccess,
    host: &str,
) -> Result<tokio_rustls::TlsConnector, Error> {
    client_config()
        .map(tokio_rustls::TlsConnector::from)
        .map_err(|why| {
            access.sink.report(
                qyvol_common::GrantKind::Connect,
                host.to_string(),
                super::Refusal::NoRootCertificates(why),
            );
            Error::ConfigurationError
        })
}

/// The TLS handshake with `host` (a name or an address literal) over `tcp`; a certificate that
/// does not verify is the guest's `TLS-certificate-error`.
pub(super) async fn handshake(
    connector: tokio_rustls::TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, Error> {
    let name = ServerName::try_from(host.to_string()).map_err(|_| Error::HttpRequestUriInvalid)?;
    connector.connect(name, tcp).await.map_err(|e| {
        let rejected = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|inner| {
                matches!(
                    inner,
                    rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
                )
            });
        if rejected {
            Error::TlsCertificateError
        } else {
            Error::Tls(e)
        }
    })
}
