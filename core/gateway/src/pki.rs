//! The gateway's own certificate authority: it issues the broker/HTTPS server certificate, the
//! gateway's MQTT client certificate and one client certificate per device (CN = device id).
//!
//! Keys are ECDSA P-256 (what mosquitto's OpenSSL, rustls and ESP-IDF's mbedTLS all accept),
//! written as PKCS#8 PEM.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// Why a certificate could not be issued or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// Key generation or certificate encoding failed.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A stored key is unreadable.
    #[error("stored key: {0}")]
    BadKey(String),
    /// A subject alternative name is not a valid DNS name or IP address.
    #[error("invalid host name {0:?}")]
    BadName(String),
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertifiedPem {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PKCS#8 PEM). A secret.
    pub key_pem: String,
}

impl std::fmt::Debug for CertifiedPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedPem").finish_non_exhaustive()
    }
}

/// How long the CA is valid.
const CA_DAYS: i64 = 20 * 365;
/// How long issued certificates are valid (devices often have no clock to renew by).
const LEAF_DAYS: i64 = 10 * 365;
/// Backdating, for devices and brokers whose clocks run behind.
const BACKDATE_DAYS: i64 = 1;

/// The gateway CA: its name and key, enough to issue certificates.
pub struct GatewayCa {
    name: String,
    key: KeyPair,
}

impl std::fmt::Debug for GatewayCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayCa")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "fwledger");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(BACKDATE_DAYS);
    params.not_after = now + Duration::days(days);
}

fn random_serial(params: &mut CertificateParams) {
    let mut serial = [0u8; 16];
    rand::Rng::fill(&mut rand::thread_rng(), &mut serial[..]);
    serial[0] &= 0x7f; // positive
    params.serial_number = Some(SerialNumber::from_slice(&serial));
}

impl GatewayCa {
    /// Creates a CA named `name`; returns it and its self-signed certificate (PEM).
    pub fn generate(name: &str) -> Result<(GatewayCa, CertifiedPem), PkiError> {
        let key = KeyPair::generate()?;
        let mut params = ca_params(name);
        validity(&mut params, CA_DAYS);
        random_serial(&mut params);
        let cert = params.self_signed(&key)?;
        let pem = CertifiedPem {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok((
            GatewayCa {
                name: name.to_string(),
                key,
            },
            pem,
        ))
    }

    /// Loads the CA from its name (as created) and key PEM.
    pub fn load(name: &str, key_pem: &str) -> Result<GatewayCa, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::BadKey(e.to_string()))?;
        Ok(GatewayCa {
            name: name.to_string(),
            key,
        })
    }

    /// The CA's common name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn issue(&self, mut params: CertificateParams) -> Result<CertifiedPem, PkiError> {
        validity(&mut params, LEAF_DAYS);
        random_serial(&mut params);
        let key = KeyPair::generate()?;
        let issuer = Issuer::new(ca_params(&self.name), &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(CertifiedPem {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A TLS server certificate for the broker and the HTTPS server, valid for `names` (IP
    /// addresses or DNS names).
    pub fn issue_server(&self, names: &[String]) -> Result<CertifiedPem, PkiError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "fwledger");
        dn.push(DnType::CommonName, "fwledger gateway server");
        params.distinguished_name = dn;
        for name in names {
            let san = match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    name.clone()
                        .try_into()
                        .map_err(|_| PkiError::BadName(name.clone()))?,
                ),
            };
            if !params.subject_alt_names.contains(&san) {
                params.subject_alt_names.push(san);
            }
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        self.issue(params)
    }

    /// A TLS client certificate whose common name is `common_name` (a device id, or the gateway's
    /// own MQTT identity); mosquitto takes the CN as the MQTT user name.
    pub fn issue_client(&self, common_name: &str) -> Result<CertifiedPem, PkiError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "fwledger");
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        self.issue(params)
    }
}
