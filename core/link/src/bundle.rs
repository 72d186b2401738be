//! Provisioning bundles: everything a device needs to join a gateway (the paper's phase 2).

use serde::{Deserialize, Serialize};

/// The bundle format this crate writes and reads.
pub const BUNDLE_FORMAT: u32 = 1;

/// A vendor whose releases the device accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedVendor {
    /// Vendor name (informational).
    pub name: String,
    /// Vendor root public key, hex (64 characters).
    pub key: String,
}

/// A provisioning bundle (JSON file). It holds the device's private key: treat it as a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// Format version ([`BUNDLE_FORMAT`]).
    pub format: u32,
    /// Device id (the certificate CN and MQTT username).
    pub device_id: String,
    /// Device MAC address.
    pub mac: String,
    /// Device model.
    pub model: String,
    /// Hardware revision.
    pub hardware: String,
    /// MQTT broker URL, `mqtts://HOST:PORT` (or `mqtt://` on loopback demos).
    pub mqtt_url: String,
    /// Gateway HTTPS base URL for downloads.
    pub http_url: String,
    /// SNTP server `HOST:PORT`, if the gateway serves time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sntp: Option<String>,
    /// The gateway CA certificate (PEM): the device trusts the broker and HTTPS server through it.
    pub ca_cert_pem: String,
    /// The device certificate (PEM), CN = device id.
    pub device_cert_pem: String,
    /// The device private key (PEM, PKCS#8).
    pub device_key_pem: String,
    /// Vendors whose releases the device accepts.
    pub vendors: Vec<TrustedVendor>,
    /// Wi-Fi network name, for ESP32 devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_ssid: Option<String>,
    /// Wi-Fi password, for ESP32 devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_password: Option<String>,
}

/// Why a bundle is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleError(pub String);

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "provisioning bundle: {}", self.0)
    }
}

impl std::error::Error for BundleError {}

impl Bundle {
    /// Parses and checks a bundle.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        let bundle: Bundle =
            serde_json::from_slice(bytes).map_err(|e| BundleError(e.to_string()))?;
        bundle.check()?;
        Ok(bundle)
    }

    /// The bundle as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks the fields a device relies on.
    pub fn check(&self) -> Result<(), BundleError> {
        let bad = |m: &str| Err(BundleError(m.to_string()));
        if self.format != BUNDLE_FORMAT {
            return bad("unknown format");
        }
        if !crate::valid_device_id(&self.device_id) {
            return bad("invalid device id");
        }
        if self.vendors.is_empty() {
            return bad("no trusted vendor key");
        }
        if self
            .vendors
            .iter()
            .any(|v| self.vendor_key(&v.key).is_none())
        {
            return bad("vendor key is not 64 hex characters");
        }
        if !(self.mqtt_url.starts_with("mqtts://") || self.mqtt_url.starts_with("mqtt://")) {
            return bad("mqtt_url must be mqtts://HOST:PORT or mqtt://HOST:PORT");
        }
        Ok(())
    }

    /// Decodes a hex vendor key.
    pub fn vendor_key(&self, hex_key: &str) -> Option<[u8; 32]> {
        hex::decode(hex_key).ok()?.try_into().ok()
    }

    /// Every trusted vendor key.
    pub fn vendor_keys(&self) -> Vec<[u8; 32]> {
        self.vendors
            .iter()
            .filter_map(|v| self.vendor_key(&v.key))
            .collect()
    }
}
