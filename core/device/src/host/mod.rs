//! The Linux implementation (feature `host`): file-backed A/B slots, MQTT over rumqttc and
//! HTTPS over ureq, both with rustls (ring) trusting only the bundle's CA.
//!
//! One device is one blocking thread ([`run`] or [`spawn`]); a process can run many.

mod http;
mod mqtt;
mod slots;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fwledger_link::{Bundle, DeviceStatus};
use fwledger_proto::sha2::{Digest, Sha256};
use fwledger_proto::Version;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use self::http::{HostHttpConnection, HttpError, ResponseBody, ResponseHead};
pub use self::mqtt::{HostEvent, HostMqttClient, HostMqttConnection, MqttError};
pub use self::slots::{write_atomic, FileSlots, SlotError, BOOT_RECORD};

use crate::agent::{self, Identity, Settings};
use crate::error::{AgentError, PlatformError};
use crate::fault::FaultPoint;
use crate::link::EventPump;
use crate::platform::{Platform, Shutdown};
use crate::record::{ImageInfo, SlotId};

/// Exit code of a process cut short at a fault point.
pub const CRASH_EXIT_CODE: i32 = 86;
/// Environment variable naming the fault point at which the process exits abruptly.
pub const CRASH_ENV: &str = "FWLEDGER_DEVICE_CRASH_AT";

/// Called with the device id and every status report the device publishes.
pub type Observer = Arc<dyn Fn(&str, &DeviceStatus) + Send + Sync>;

/// Why a host device cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The provisioning bundle is unusable.
    #[error("bundle: {0}")]
    Bundle(String),
    /// The bundle's certificates or key do not load.
    #[error("tls: {0}")]
    Tls(String),
    /// The agent stopped.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// A thread could not be started.
    #[error("thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Everything a host device needs.
#[derive(Clone)]
pub struct DeviceConfig {
    /// The provisioning bundle.
    pub bundle: Bundle,
    /// Where the slots and `boot.json` live.
    pub state_dir: PathBuf,
    /// Version of the factory image written on first boot (semantic version).
    pub factory_version: String,
    /// Agent tunables.
    pub settings: Settings,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// TCP/TLS connect timeout (HTTP and MQTT).
    pub connect_timeout: Duration,
    /// An HTTP read that makes no progress for this long fails as `download-stalled`.
    pub read_timeout: Duration,
    /// Exit the process abruptly at this point (crash tests).
    pub crash_at: Option<FaultPoint>,
    /// Sees every status report.
    pub observer: Option<Observer>,
}

impl std::fmt::Debug for DeviceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceConfig")
            .field("device_id", &self.bundle.device_id)
            .field("state_dir", &self.state_dir)
            .field("factory_version", &self.factory_version)
            .field("settings", &self.settings)
            .field("crash_at", &self.crash_at)
            .finish_non_exhaustive()
    }
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn host_port(url: &str, default_port: u16) -> Result<(String, u16), DeviceError> {
    let bad = || DeviceError::Bundle(format!("cannot parse the broker address in {url:?}"));
    let rest = url.split_once("://").map(|(_, r)| r).ok_or_else(bad)?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6.split_once(']').ok_or_else(bad)?;
            (h, p.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => default_port,
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

impl DeviceConfig {
    /// A device with default settings, factory version 1.0.0. Plain `mqtt://` and `http://`
    /// are accepted only when the bundle's addresses are loopback.
    pub fn new(bundle: Bundle, state_dir: impl Into<PathBuf>) -> Self {
        let plain_http = bundle.http_url.starts_with("http://") && is_loopback(&bundle.http_url);
        DeviceConfig {
            bundle,
            state_dir: state_dir.into(),
            factory_version: "1.0.0".to_string(),
            settings: Settings {
                allow_plain_http: plain_http,
                ..Settings::default()
            },
            keep_alive: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(15),
            crash_at: None,
            observer: None,
        }
    }

    /// Takes the fault point from `FWLEDGER_DEVICE_CRASH_AT`, if set.
    pub fn with_env_faults(mut self) -> Result<Self, DeviceError> {
        if let Ok(name) = std::env::var(CRASH_ENV) {
            if !name.is_empty() {
                self.crash_at = Some(
                    name.parse()
                        .map_err(|e| DeviceError::Bundle(format!("{CRASH_ENV}: {e}")))?,
                );
            }
        }
        Ok(self)
    }

    /// Who the device is, from the bundle.
    pub fn identity(&self) -> Identity {
        Identity {
            device_id: self.bundle.device_id.clone(),
            model: self.bundle.model.clone(),
            hardware: self.bundle.hardware.clone(),
            vendor_keys: self.bundle.vendor_keys(),
        }
    }
}

/// Parsed TLS material, shared by every boot of a device.
#[derive(Clone)]
struct Tls {
    mqtt: Option<Arc<rustls::ClientConfig>>,
    http: ureq::Agent,
}

fn load_tls(config: &DeviceConfig) -> Result<Tls, DeviceError> {
    let bundle = &config.bundle;
    let tls = |e: &dyn std::fmt::Display| DeviceError::Tls(e.to_string());
    let ca = CertificateDer::from_pem_slice(bundle.ca_cert_pem.as_bytes())
        .map_err(|e| tls(&format!("CA certificate: {e}")))?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(bundle.device_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| tls(&format!("device certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(bundle.device_key_pem.as_bytes())
        .map_err(|e| tls(&format!("device key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let mqtt = if bundle.mqtt_url.starts_with("mqtts://") {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).map_err(|e| tls(&e))?;
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(&e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|e| tls(&e))?;
        Some(Arc::new(client))
    } else if bundle.mqtt_url.starts_with("mqtt://") && is_loopback(&bundle.mqtt_url) {
        None
    } else {
        return Err(DeviceError::Bundle(format!(
            "{}: plain mqtt:// is only allowed on loopback",
            bundle.mqtt_url
        )));
    };

    let certs: Vec<ureq::tls::Certificate<'static>> = chain
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let key = ureq::tls::PrivateKey::from_pem(bundle.device_key_pem.as_bytes())
        .map_err(|e| tls(&format!("device key: {e}")))?;
    let tls_config = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(provider)
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[
            ureq::tls::Certificate::from_der(ca.as_ref()).to_owned(),
        ]))
        .client_cert(Some(ureq::tls::ClientCert::new_with_certs(&certs, key)))
        .build();
    let http = ureq::Agent::config_builder()
        .tls_config(tls_config)
        .http_status_as_error(false)
        .max_redirects(0)
        // Like a microcontroller, close the connection after each download instead of keeping
        // it idle: a gateway serving thousands of devices holds no idle TLS sessions.
        .max_idle_connections(0)
        .https_only(!config.settings.allow_plain_http)
        .timeout_connect(Some(config.connect_timeout))
        .timeout_recv_response(Some(config.read_timeout))
        .timeout_per_read(Some(config.read_timeout))
        .timeout_send_request(Some(config.read_timeout))
        .build()
        .new_agent();
    Ok(Tls { mqtt, http })
}

/// The host platform: one boot of one device.
pub struct HostPlatform {
    config: DeviceConfig,
    tls: Tls,
    slots: FileSlots,
}

impl HostPlatform {
    fn open(config: &DeviceConfig, tls: &Tls) -> Result<Self, PlatformError> {
        Ok(HostPlatform {
            config: config.clone(),
            tls: tls.clone(),
            slots: FileSlots::open(&config.state_dir)
                .map_err(|e| PlatformError::new("slots", e))?,
        })
    }
}

/// The factory image of a host device: recognizable, deterministic bytes.
pub fn factory_image_bytes(model: &str, version: &str) -> Vec<u8> {
    let line = format!("fwledger factory image: model {model}, version {version}\n");
    line.repeat(64).into_bytes()
}

impl Platform for HostPlatform {
    type Slots = FileSlots;
    type Mqtt = HostMqttClient;
    type Http = HostHttpConnection;

    fn slots(&mut self) -> &mut FileSlots {
        &mut self.slots
    }

    fn factory_image(&mut self) -> Result<ImageInfo, PlatformError> {
        let version = self.config.factory_version.clone();
        let bytes = factory_image_bytes(&self.config.bundle.model, &version);
        write_atomic(self.slots.dir(), "slot_a.bin", &bytes)
            .map_err(|e| PlatformError::new("factory image", e))?;
        let _ = std::fs::remove_file(self.slots.slot_path(SlotId::B));
        Ok(ImageInfo {
            version,
            security_version: 0,
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            release: None,
            signed_by: None,
        })
    }

    fn connect_mqtt(&mut self) -> Result<(HostMqttClient, EventPump), PlatformError> {
        let bundle = &self.config.bundle;
        let default_port = if self.tls.mqtt.is_some() { 8883 } else { 1883 };
        let (host, port) =
            host_port(&bundle.mqtt_url, default_port).map_err(|e| PlatformError::new("mqtt", e))?;
        let mut options = rumqttc::MqttOptions::new(bundle.device_id.clone(), host, port);
        options
            .set_keep_alive(self.config.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(64 * 1024, 16 * 1024)
            // An empty status is the gateway's "this device went offline" (PROTOCOL.md §12).
            .set_last_will(rumqttc::LastWill::new(
                fwledger_link::topics::status(&bundle.device_id),
                Vec::new(),
                rumqttc::QoS::AtLeastOnce,
                false,
            ));
        // The sync client keeps rumqttc's 5 s connection timeout.
        if let Some(tls) = &self.tls.mqtt {
            options.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(tls.clone()),
            ));
        }
        let (client, connection) = mqtt::session(options);
        let pump = EventPump::spawn(&bundle.device_id, connection)
            .map_err(|e| PlatformError::new("mqtt", e))?;
        Ok((client, pump))
    }

    fn close_mqtt(&mut self, client: HostMqttClient, events: EventPump) {
        client.close();
        events.join(Duration::from_secs(3));
    }

    fn http_connection(&mut self) -> Result<HostHttpConnection, PlatformError> {
        Ok(HostHttpConnection::new(self.tls.http.clone()))
    }

    fn now(&self) -> Option<u64> {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }

    fn fault(&mut self, point: FaultPoint) {
        if self.config.crash_at != Some(point) {
            return;
        }
        if point.is_torn_write() {
            // Power lost while the new record was being written: a torn temp file, no rename.
            let current = std::fs::read(self.slots.dir().join(BOOT_RECORD)).unwrap_or_default();
            let torn = &current[..current.len() / 2];
            let _ = std::fs::write(self.slots.dir().join(format!("{BOOT_RECORD}.tmp")), torn);
        }
        eprintln!(
            "{}: simulated power loss at {point}",
            self.config.bundle.device_id
        );
        std::process::exit(CRASH_EXIT_CODE);
    }

    fn observe(&mut self, status: &DeviceStatus) {
        if let Some(observer) = &self.config.observer {
            observer(&self.config.bundle.device_id, status);
        }
    }
}

/// Runs a device until `shutdown`: boots from `config.state_dir` (a fresh directory gets the
/// factory image), serves notices, and "reboots" by re-initializing everything from the state
/// directory whenever an update is pending.
pub fn run(config: &DeviceConfig, shutdown: &Shutdown) -> Result<(), DeviceError> {
    config
        .bundle
        .check()
        .map_err(|e| DeviceError::Bundle(e.to_string()))?;
    if config.factory_version.parse::<Version>().is_err() {
        return Err(DeviceError::Bundle(format!(
            "factory version {:?} is not a semantic version",
            config.factory_version
        )));
    }
    let tls = load_tls(config)?;
    let identity = config.identity();
    agent::run(
        || HostPlatform::open(config, &tls),
        &identity,
        &config.settings,
        shutdown,
    )?;
    Ok(())
}

/// Runs a device on a thread of its own (see [`run`]).
pub fn spawn(
    config: DeviceConfig,
    shutdown: Shutdown,
) -> Result<JoinHandle<Result<(), DeviceError>>, DeviceError> {
    let handle = std::thread::Builder::new()
        .name(format!("device-{}", config.bundle.device_id))
        .stack_size(512 * 1024)
        .spawn(move || run(&config, &shutdown))?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_loopback("mqtt://127.0.0.1:1883"));
        assert!(is_loopback("http://localhost:80/x"));
        assert!(is_loopback("mqtt://[::1]:1883"));
        assert!(!is_loopback("mqtt://10.0.0.1:1883"));
        assert_eq!(
            host_port("mqtts://127.0.0.1:8883", 1).unwrap(),
            ("127.0.0.1".to_string(), 8883)
        );
        assert_eq!(
            host_port("mqtts://gw", 8883).unwrap(),
            ("gw".to_string(), 8883)
        );
        assert!(host_port("nonsense", 1).is_err());
    }
}
