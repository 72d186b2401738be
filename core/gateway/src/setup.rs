//! Setting a gateway up: `init` (CA, certificates, mosquitto configuration, registry),
//! `subscribe` (a vendor channel) and `device add` (a device certificate and provisioning
//! bundle, with a pairing QR code).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use fwledger::write_atomic;
use fwledger_link::{Bundle, TrustedVendor, BUNDLE_FORMAT};
use fwledger_proto::channel::{Token, TokenError};
use qrcode::render::unicode;
use qrcode::QrCode;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{mosquitto_conf, GatewayConfig, GatewayPaths, GATEWAY_IDENTITY};
use crate::pki::{GatewayCa, PkiError};
use crate::registry::{EventLevel, NewChannel, NewDevice, Registry, RegistryError};

/// Why setting up the gateway failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// `gateway init` was not run in this home.
    #[error("no gateway in {0}: run `fwledger gateway init` first")]
    NotInitialized(PathBuf),
    /// A gateway exists already.
    #[error("a gateway already exists in {0}")]
    AlreadyInitialized(PathBuf),
    /// An argument is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The subscription token is unusable.
    #[error("subscription token: {0}")]
    Token(#[from] TokenError),
    /// This vendor is followed on another channel already.
    #[error("vendor {vendor:?} is already subscribed on channel {channel}")]
    VendorAlreadySubscribed {
        /// Vendor name.
        vendor: String,
        /// The channel already followed.
        channel: String,
    },
    /// Devices need at least one vendor key to trust.
    #[error("no vendor channel yet: run `fwledger gateway subscribe TOKEN` before adding devices")]
    NoChannel,
    /// Certificates could not be issued.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Gateway files are damaged.
    #[error("gateway files are damaged: {0}")]
    Corrupt(String),
    /// Filesystem error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |source| SetupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), SetupError> {
    write_atomic(path, bytes, secret).map_err(io(path))
}

fn read_file(path: &Path) -> Result<String, SetupError> {
    std::fs::read_to_string(path).map_err(io(path))
}

fn private_dir(path: &Path) -> Result<(), SetupError> {
    std::fs::create_dir_all(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io(path))?;
    }
    Ok(())
}

/// Options of `gateway init`; `None` keeps the default.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Address every listener binds (default 127.0.0.1).
    pub bind: Option<IpAddr>,
    /// Host name or address devices use (default: the bind address, or 127.0.0.1).
    pub host: Option<String>,
    /// MQTT port (default 8883).
    pub mqtt_port: Option<u16>,
    /// HTTPS port (default 8443).
    pub https_port: Option<u16>,
    /// SNTP port (default 1123).
    pub sntp_port: Option<u16>,
}

/// A subscribed channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscribed {
    /// Channel id, hex.
    pub channel: String,
    /// Vendor name.
    pub vendor: String,
    /// Vendor root key, hex.
    pub vendor_key: String,
    /// Whether the channel is new (false: its token was replaced).
    pub new: bool,
}

/// What a device's pairing QR code says: enough for a phone app to match the device with its
/// bundle (the bundle itself holds a private key and is not put in the code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairingInfo {
    /// Device id.
    pub device_id: String,
    /// Gateway HTTPS base URL.
    pub http_url: String,
    /// SHA-256 of the bundle file, hex.
    pub bundle_sha256: String,
}

impl PairingInfo {
    /// The pairing JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The pairing JSON as a QR code drawn with Unicode half blocks, for a terminal.
    pub fn qr_text(&self) -> Result<String, SetupError> {
        let code = QrCode::new(self.to_json().as_bytes())
            .map_err(|e| SetupError::Invalid(format!("QR code: {e}")))?;
        Ok(code
            .render::<unicode::Dense1x2>()
            .dark_color(unicode::Dense1x2::Light)
            .light_color(unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build())
    }
}

/// A gateway opened from its home directory.
#[derive(Debug)]
pub struct Gateway {
    pub(crate) home: PathBuf,
    pub(crate) paths: GatewayPaths,
    pub(crate) config: GatewayConfig,
    pub(crate) registry: Registry,
}

fn check_text(what: &str, value: &str) -> Result<(), SetupError> {
    if value.is_empty() || value.len() > 64 || value.chars().any(|c| c.is_control()) {
        return Err(SetupError::Invalid(format!(
            "{what} must be 1-64 printable characters"
        )));
    }
    Ok(())
}

/// Normalises a MAC address to `aa:bb:cc:dd:ee:ff` (accepts `:` or `-` separators).
pub fn normalize_mac(mac: &str) -> Result<String, SetupError> {
    let parts: Vec<&str> = mac.trim().split([':', '-']).collect();
    let valid = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return Err(SetupError::Invalid(format!(
            "MAC address {mac:?} must be six hex pairs, e.g. 24:0a:c4:12:34:56"
        )));
    }
    Ok(parts.join(":").to_ascii_lowercase())
}

#[cfg(unix)]
fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(not(unix))]
fn running_as_root() -> bool {
    false
}

impl Gateway {
    /// Creates a gateway in `home`: CA, server and gateway client certificates (keys mode 0600),
    /// `mosquitto.conf` and its ACL, `gateway.json` and the registry.
    pub fn init(home: &Path, options: &InitOptions) -> Result<Gateway, SetupError> {
        std::fs::create_dir_all(home).map_err(io(home))?;
        let home = home.canonicalize().map_err(io(home))?;
        let paths = GatewayPaths::new(&home);
        if paths.config().exists() {
            return Err(SetupError::AlreadyInitialized(paths.root));
        }
        private_dir(&paths.root)?;
        private_dir(&paths.pki())?;
        private_dir(&paths.channels())?;
        private_dir(&paths.mosquitto_dir())?;
        std::fs::create_dir_all(paths.repository()).map_err(io(&paths.repository()))?;

        let mut tag = [0u8; 4];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut tag);
        let ca_name = format!("fwledger gateway CA {}", hex::encode(tag));
        let mut config = GatewayConfig::new(&ca_name, fwledger::unix_now());
        if let Some(bind) = options.bind {
            config.bind = bind;
            if !bind.is_unspecified() {
                config.host = bind.to_string();
            }
        }
        if let Some(host) = &options.host {
            check_text("host", host)?;
            config.host = host.clone();
        }
        for (port, slot) in [
            (options.mqtt_port, &mut config.mqtt_port),
            (options.https_port, &mut config.https_port),
            (options.sntp_port, &mut config.sntp_port),
        ] {
            if let Some(port) = port {
                if port == 0 {
                    return Err(SetupError::Invalid("ports must not be 0".into()));
                }
                *slot = port;
            }
        }

        let (ca, ca_pem) = GatewayCa::generate(&ca_name)?;
        let server = ca.issue_server(&config.server_names())?;
        let client = ca.issue_client(GATEWAY_IDENTITY)?;
        write_file(&paths.ca_key(), ca_pem.key_pem.as_bytes(), true)?;
        write_file(&paths.ca_cert(), ca_pem.cert_pem.as_bytes(), false)?;
        write_file(&paths.server_key(), server.key_pem.as_bytes(), true)?;
        write_file(&paths.server_cert(), server.cert_pem.as_bytes(), false)?;
        write_file(&paths.client_key(), client.key_pem.as_bytes(), true)?;
        write_file(&paths.client_cert(), client.cert_pem.as_bytes(), false)?;
        write_file(
            &paths.acl(),
            fwledger_link::topics::mosquitto_acl(GATEWAY_IDENTITY).as_bytes(),
            false,
        )?;
        write_file(
            &paths.mosquitto_conf(),
            mosquitto_conf(&paths, &config, running_as_root()).as_bytes(),
            false,
        )?;
        let registry = Registry::open(&paths.registry())?;
        registry.log(
            EventLevel::Info,
            &format!("gateway initialised ({})", config.mqtt_url()),
        )?;
        let json =
            serde_json::to_vec_pretty(&config).map_err(|e| SetupError::Corrupt(e.to_string()))?;
        // Written last: its presence means the gateway is complete.
        write_file(&paths.config(), &json, false)?;
        Ok(Gateway {
            home,
            paths,
            config,
            registry,
        })
    }

    /// Opens the gateway in `home`.
    pub fn open(home: &Path) -> Result<Gateway, SetupError> {
        let paths = GatewayPaths::new(home);
        let config_path = paths.config();
        if !config_path.exists() {
            return Err(SetupError::NotInitialized(home.to_path_buf()));
        }
        let config: GatewayConfig = serde_json::from_str(&read_file(&config_path)?)
            .map_err(|e| SetupError::Corrupt(format!("gateway.json: {e}")))?;
        if !config.is_supported() {
            return Err(SetupError::Corrupt(format!(
                "gateway.json has unknown format {}",
                config.format
            )));
        }
        let registry = Registry::open(&paths.registry())?;
        Ok(Gateway {
            home: home.to_path_buf(),
            paths,
            config,
            registry,
        })
    }

    /// The fwledger home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The gateway's files.
    pub fn paths(&self) -> &GatewayPaths {
        &self.paths
    }

    /// `gateway.json`.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The gateway CA certificate (PEM).
    pub fn ca_pem(&self) -> Result<String, SetupError> {
        read_file(&self.paths.ca_cert())
    }

    /// Subscribes to the channel a token opens (after checking the token and its author
    /// certificate). Subscribing again to the same channel replaces its token and keeps the
    /// position; one channel per vendor.
    pub fn subscribe(&self, token_text: &str) -> Result<Subscribed, SetupError> {
        let token = Token::from_text(token_text)?;
        let follower = token.follower(None)?;
        let channel = hex::encode(follower.channel());
        let vendor_key = hex::encode(token.vendor_key);
        let channels = self.registry.channels()?;
        if let Some(other) = channels
            .iter()
            .find(|c| c.vendor_key == vendor_key && c.id != channel)
        {
            return Err(SetupError::VendorAlreadySubscribed {
                vendor: other.vendor.clone(),
                channel: other.id.clone(),
            });
        }
        let new = !channels.iter().any(|c| c.id == channel);
        write_file(
            &self.paths.token(&channel),
            token.to_text().as_bytes(),
            true,
        )?;
        self.registry.add_channel(&NewChannel {
            id: channel.clone(),
            vendor: token.vendor.clone(),
            vendor_key: vendor_key.clone(),
        })?;
        self.registry.log(
            EventLevel::Info,
            &format!(
                "{} channel {} of vendor {:?}",
                if new {
                    "subscribed to"
                } else {
                    "replaced the token of"
                },
                channel.get(..16).unwrap_or(&channel),
                token.vendor
            ),
        )?;
        Ok(Subscribed {
            channel,
            vendor: token.vendor,
            vendor_key,
            new,
        })
    }

    /// The stored token of a channel.
    pub fn token(&self, channel_hex: &str) -> Result<Token, SetupError> {
        Ok(Token::from_text(&read_file(
            &self.paths.token(channel_hex),
        )?)?)
    }

    /// Registers a device and issues its certificate (CN = device id); returns its provisioning
    /// bundle, which trusts the root key of every subscribed vendor.
    pub fn add_device(&self, device: &NewDevice) -> Result<Bundle, SetupError> {
        if !fwledger_link::valid_device_id(&device.id) {
            return Err(SetupError::Invalid(format!(
                "device id {:?} must be 1-64 characters of A-Z a-z 0-9 . _ -",
                device.id
            )));
        }
        if device.id == GATEWAY_IDENTITY {
            return Err(SetupError::Invalid(format!(
                "device id {GATEWAY_IDENTITY:?} is reserved for the gateway"
            )));
        }
        check_text("model", &device.model)?;
        check_text("hardware revision", &device.hardware)?;
        let mac = normalize_mac(&device.mac)?;
        let vendors: Vec<TrustedVendor> = self
            .registry
            .channels()?
            .into_iter()
            .map(|c| TrustedVendor {
                name: c.vendor,
                key: c.vendor_key,
            })
            .collect();
        if vendors.is_empty() {
            return Err(SetupError::NoChannel);
        }
        if self.registry.device(&device.id)?.is_some() {
            return Err(RegistryError::DuplicateDevice(device.id.clone()).into());
        }
        let ca = GatewayCa::load(&self.config.ca_name, &read_file(&self.paths.ca_key())?)?;
        let issued = ca.issue_client(&device.id)?;
        let bundle = Bundle {
            format: BUNDLE_FORMAT,
            device_id: device.id.clone(),
            mac: mac.clone(),
            model: device.model.clone(),
            hardware: device.hardware.clone(),
            mqtt_url: self.config.mqtt_url(),
            http_url: self.config.http_url(),
            sntp: Some(self.config.sntp()),
            ca_cert_pem: self.ca_pem()?,
            device_cert_pem: issued.cert_pem,
            device_key_pem: issued.key_pem,
            vendors,
            wifi_ssid: None,
            wifi_password: None,
        };
        bundle
            .check()
            .map_err(|e| SetupError::Invalid(e.to_string()))?;
        self.registry.add_device(&NewDevice {
            mac,
            ..device.clone()
        })?;
        self.registry.log(
            EventLevel::Info,
            &format!(
                "device {} added ({} {})",
                device.id, device.model, device.hardware
            ),
        )?;
        Ok(bundle)
    }

    /// Writes a bundle (mode 0600: it holds the device key); returns the pairing information.
    pub fn write_bundle(&self, bundle: &Bundle, path: &Path) -> Result<PairingInfo, SetupError> {
        let json = bundle.to_json();
        write_file(path, json.as_bytes(), true)?;
        Ok(PairingInfo {
            device_id: bundle.device_id.clone(),
            http_url: bundle.http_url.clone(),
            bundle_sha256: hex::encode(Sha256::digest(json.as_bytes())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_are_normalised() {
        assert_eq!(
            normalize_mac("24-0A-C4-12-34-56").ok().as_deref(),
            Some("24:0a:c4:12:34:56")
        );
        assert!(normalize_mac("24:0a:c4:12:34").is_err());
        assert!(normalize_mac("24:0a:c4:12:34:zz").is_err());
    }

    #[test]
    fn pairing_qr_renders() {
        let info = PairingInfo {
            device_id: "lamp-01".into(),
            http_url: "https://127.0.0.1:8443".into(),
            bundle_sha256: "00".repeat(32),
        };
        let qr = info.qr_text().expect("qr");
        assert!(qr.lines().count() > 10);
        assert!(info.to_json().contains("\"device_id\":\"lamp-01\""));
    }
}
