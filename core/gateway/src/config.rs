//! The gateway's files under `HOME/gateway/` and its configuration (`gateway.json`), and the
//! mosquitto configuration it generates.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The gateway's MQTT identity: the CN of its client certificate and its mosquitto user name.
pub const GATEWAY_IDENTITY: &str = "fwledger-gateway";

const CONFIG_FORMAT: u32 = 1;

/// Where the gateway keeps its files (all under `HOME/gateway/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPaths {
    /// `HOME/gateway`.
    pub root: PathBuf,
}

impl GatewayPaths {
    /// The paths for a fwledger home directory.
    pub fn new(home: &Path) -> Self {
        GatewayPaths {
            root: home.join("gateway"),
        }
    }

    /// `gateway.json`.
    pub fn config(&self) -> PathBuf {
        self.root.join("gateway.json")
    }
    /// The SQLite registry.
    pub fn registry(&self) -> PathBuf {
        self.root.join("registry.sqlite")
    }
    /// Certificates and keys.
    pub fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }
    /// CA certificate (PEM).
    pub fn ca_cert(&self) -> PathBuf {
        self.pki().join("ca.pem")
    }
    /// CA key (PEM, 0600).
    pub fn ca_key(&self) -> PathBuf {
        self.pki().join("ca.key")
    }
    /// Server certificate for the broker and the HTTPS server.
    pub fn server_cert(&self) -> PathBuf {
        self.pki().join("server.pem")
    }
    /// Server key (0600).
    pub fn server_key(&self) -> PathBuf {
        self.pki().join("server.key")
    }
    /// The gateway's MQTT client certificate (CN `fwledger-gateway`).
    pub fn client_cert(&self) -> PathBuf {
        self.pki().join("gateway.pem")
    }
    /// The gateway's MQTT client key (0600).
    pub fn client_key(&self) -> PathBuf {
        self.pki().join("gateway.key")
    }
    /// The generated mosquitto configuration.
    pub fn mosquitto_conf(&self) -> PathBuf {
        self.root.join("mosquitto.conf")
    }
    /// The mosquitto ACL file.
    pub fn acl(&self) -> PathBuf {
        self.root.join("acl")
    }
    /// mosquitto's persistence directory and log.
    pub fn mosquitto_dir(&self) -> PathBuf {
        self.root.join("mosquitto")
    }
    /// mosquitto's log file.
    pub fn mosquitto_log(&self) -> PathBuf {
        self.mosquitto_dir().join("mosquitto.log")
    }
    /// Subscription tokens and follower state, one set per channel.
    pub fn channels(&self) -> PathBuf {
        self.root.join("channels")
    }
    /// The stored subscription token of a channel (0600).
    pub fn token(&self, channel_hex: &str) -> PathBuf {
        self.channels().join(format!("{channel_hex}.token"))
    }
    /// The follower state the gateway has committed to its registry.
    pub fn channel_state(&self, channel_hex: &str) -> PathBuf {
        self.channels().join(format!("{channel_hex}.state.json"))
    }
    /// The follower's working state (may run one message ahead of the registry).
    pub fn channel_working_state(&self, channel_hex: &str) -> PathBuf {
        self.channels().join(format!("{channel_hex}.follow.json"))
    }
    /// Verified images, named by their SHA-256.
    pub fn repository(&self) -> PathBuf {
        self.root.join("repository")
    }
    /// The repository file of an image.
    pub fn image(&self, sha256_hex: &str) -> PathBuf {
        self.repository().join(sha256_hex)
    }
}

/// `gateway.json`: addresses and ports. Every service binds `bind`; devices reach the gateway at
/// `host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayConfig {
    /// File format.
    pub format: u32,
    /// Address every listener binds (default 127.0.0.1).
    pub bind: IpAddr,
    /// The host name or address devices use to reach the gateway (in bundles and notices).
    pub host: String,
    /// MQTT over TLS port (mosquitto).
    pub mqtt_port: u16,
    /// HTTPS port (downloads, web UI).
    pub https_port: u16,
    /// SNTP port.
    pub sntp_port: u16,
    /// The common name of the gateway CA.
    pub ca_name: String,
    /// When the gateway was initialised, Unix seconds.
    pub created: u64,
}

impl GatewayConfig {
    /// Defaults: bind and host 127.0.0.1, MQTT 8883, HTTPS 8443, SNTP 1123.
    pub fn new(ca_name: &str, created: u64) -> Self {
        GatewayConfig {
            format: CONFIG_FORMAT,
            bind: IpAddr::from([127, 0, 0, 1]),
            host: "127.0.0.1".into(),
            mqtt_port: 8883,
            https_port: 8443,
            sntp_port: 1123,
            ca_name: ca_name.to_string(),
            created,
        }
    }

    /// Whether the format is one this version reads.
    pub fn is_supported(&self) -> bool {
        self.format == CONFIG_FORMAT
    }

    fn host_for_url(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.host.clone(),
        }
    }

    /// The broker URL devices use, `mqtts://HOST:PORT`.
    pub fn mqtt_url(&self) -> String {
        format!("mqtts://{}:{}", self.host_for_url(), self.mqtt_port)
    }

    /// The broker URL the gateway itself uses (its bind address, or loopback for a wildcard).
    pub fn local_mqtt_url(&self) -> String {
        let host = match self.bind {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("mqtts://{host}:{}", self.mqtt_port)
    }

    /// The HTTPS base URL devices download from.
    pub fn http_url(&self) -> String {
        format!("https://{}:{}", self.host_for_url(), self.https_port)
    }

    /// The SNTP server devices use, `HOST:PORT`.
    pub fn sntp(&self) -> String {
        format!("{}:{}", self.host_for_url(), self.sntp_port)
    }

    /// The names the server certificate must carry: 127.0.0.1, localhost, the host and the bind
    /// address.
    pub fn server_names(&self) -> Vec<String> {
        let mut names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        for name in [self.host.clone(), self.bind.to_string()] {
            let unspecified = name.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
            if !unspecified && !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

/// The mosquitto 2.0 configuration for the gateway: one TLS listener that requires a client
/// certificate from the gateway CA, the certificate CN as user name (and client id, so one device
/// cannot take over another's session), and the per-device ACL.
pub fn mosquitto_conf(paths: &GatewayPaths, config: &GatewayConfig, run_as_root: bool) -> String {
    let p = |path: PathBuf| path.display().to_string();
    let user = if run_as_root {
        "# The gateway runs as root: keep mosquitto as root too, or it would drop to the user\n\
         # `mosquitto`, which cannot read the gateway's 0600 keys.\nuser root\n"
    } else {
        ""
    };
    format!(
        "# Generated by `fwledger gateway init`. Started by `fwledger gateway run`.\n\
         # Only certificates issued by this gateway's CA can connect; a device may publish only\n\
         # its own status and read only its own notices (see the ACL file).\n\
         {user}\
         per_listener_settings false\n\
         allow_anonymous false\n\
         persistence true\n\
         persistence_location {mosq}/\n\
         autosave_interval 30\n\
         log_dest file {log}\n\
         log_type error\n\
         log_type warning\n\
         log_type notice\n\
         log_type information\n\
         connection_messages true\n\
         acl_file {acl}\n\
         max_packet_size 1048576\n\
         # A rollout to thousands of devices sends the gateway bursts of status reports: queue\n\
         # them for it instead of dropping them past the default 1000 (bench/load.sh).\n\
         max_queued_messages 200000\n\
         \n\
         listener {port} {bind}\n\
         protocol mqtt\n\
         cafile {ca}\n\
         certfile {cert}\n\
         keyfile {key}\n\
         tls_version tlsv1.2\n\
         # TLS 1.2: forward-secret AEAD suites only (no RSA key exchange, no CBC); TLS 1.3 keeps\n\
         # its own (all AEAD).\n\
         ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305\n\
         require_certificate true\n\
         use_identity_as_username true\n\
         use_username_as_clientid true\n",
        mosq = p(paths.mosquitto_dir()),
        log = p(paths.mosquitto_log()),
        acl = p(paths.acl()),
        port = config.mqtt_port,
        bind = config.bind,
        ca = p(paths.ca_cert()),
        cert = p(paths.server_cert()),
        key = p(paths.server_key()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names() {
        let mut config = GatewayConfig::new("ca", 0);
        assert_eq!(config.mqtt_url(), "mqtts://127.0.0.1:8883");
        assert_eq!(config.http_url(), "https://127.0.0.1:8443");
        assert_eq!(config.server_names(), vec!["127.0.0.1", "localhost"]);
        config.host = "hub.local".into();
        config.bind = "0.0.0.0".parse().unwrap_or(config.bind);
        assert_eq!(
            config.server_names(),
            vec!["127.0.0.1", "localhost", "hub.local"]
        );
        assert_eq!(config.local_mqtt_url(), "mqtts://127.0.0.1:8883");
        config.host = "::1".into();
        assert_eq!(config.http_url(), "https://[::1]:8443");
    }

    #[test]
    fn mosquitto_conf_has_the_security_settings() {
        let paths = GatewayPaths::new(Path::new("/h"));
        let conf = mosquitto_conf(&paths, &GatewayConfig::new("ca", 0), false);
        for line in [
            "allow_anonymous false",
            "require_certificate true",
            "use_identity_as_username true",
            "listener 8883 127.0.0.1",
            "acl_file /h/gateway/acl",
            "persistence_location /h/gateway/mosquitto/",
        ] {
            assert!(conf.lines().any(|l| l == line), "missing {line:?}");
        }
        assert!(!conf.contains("user root"));
    }
}
