//! rustls configurations for the gateway's TLS endpoints (ring provider, explicitly, so that the
//! build never depends on which provider another crate in the process enabled).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file holds no usable certificate or key.
    #[error("{what}: {reason}")]
    Pem {
        /// Which file.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificates or keys.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider used for every gateway TLS endpoint.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses every certificate in a PEM text.
pub fn certificates(
    pem: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            reason: "no certificate".into(),
        });
    }
    Ok(certs)
}

/// Parses a private key PEM.
pub fn private_key(pem: &str, what: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::Pem {
        what,
        reason: e.to_string(),
    })
}

/// A root store holding the gateway CA.
pub fn roots(ca_pem: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_pem, "CA certificate")? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// The HTTPS server configuration (no client certificates: devices verify what they download).
pub fn server_config(cert_pem: &str, key_pem: &str) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            certificates(cert_pem, "server certificate")?,
            private_key(key_pem, "server key")?,
        )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration trusting the gateway CA, presenting `identity` (certificate and key
/// PEM) when given — what the gateway and devices use to reach the broker and the HTTPS server.
pub fn client_config(
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_pem)?);
    let config = match identity {
        Some((cert, key)) => builder.with_client_auth_cert(
            certificates(cert, "client certificate")?,
            private_key(key, "client key")?,
        )?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
