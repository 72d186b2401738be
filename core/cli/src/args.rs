//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// fwledger: decentralized firmware updates over an authenticated ledger channel and IPFS.
#[derive(Debug, Parser)]
#[command(name = "fwledger", version, about)]
pub struct Cli {
    /// Home directory (default: $FWLEDGER_HOME, else ~/.local/share/fwledger).
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Ledger URL: `embedded` (HOME/ledger.sqlite), `sqlite:PATH`, or an IOTA Rebased ledger
    /// `iota+https://HOST/graphql?network=testnet[&sender=0x…]`.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "FWLEDGER_LEDGER",
        default_value = "embedded"
    )]
    pub ledger: String,
    /// IOTA ledger: who pays the gas of a publish — own (the vendor's IOTA key, default),
    /// sponsor (with --iota-sponsor-key) or station (with --iota-gas-station).
    #[arg(long, global = true, value_name = "MODE", env = "FWLEDGER_IOTA_GAS")]
    pub iota_gas: Option<String>,
    /// IOTA ledger: the sponsor's key file (64 hex digits) for --iota-gas sponsor.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "FWLEDGER_IOTA_SPONSOR_KEY"
    )]
    pub iota_sponsor_key: Option<PathBuf>,
    /// IOTA ledger: the gas station's URL for --iota-gas station (a bearer token may be set
    /// in FWLEDGER_IOTA_GAS_STATION_TOKEN).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "FWLEDGER_IOTA_GAS_STATION"
    )]
    pub iota_gas_station: Option<String>,
    /// Content store URL: `embedded` (HOME/store), `embedded:PATH`, `kubo+http://HOST:PORT`
    /// (a Kubo node's RPC API) or `https://GATEWAY` / `http://…` (an IPFS trustless gateway,
    /// read-only).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "FWLEDGER_STORE",
        default_value = "embedded"
    )]
    pub store: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Vendor side: keys, releases, the channel and its readers.
    #[command(subcommand)]
    Vendor(VendorCommand),
    /// Read a channel with a subscription token; move channel messages between ledgers.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Print the IPFS CID of a file, exactly as `ipfs add --only-hash -Q` does.
    Cid {
        /// The file.
        file: PathBuf,
        /// UnixFS profile: unixfs-v1-2025 (default) or unixfs-v0-2015.
        #[arg(long, default_value = "unixfs-v1-2025")]
        profile: String,
    },
    /// Verify a signed manifest and an image against a vendor root key.
    Verify(VerifyArgs),
    /// Fetch the image a signed manifest names from the content store, verified while it streams.
    Fetch {
        /// The signed manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// Vendor root public key, hex.
        #[arg(long)]
        vendor_key: String,
        /// Where to write the verified image.
        #[arg(long)]
        out: PathBuf,
    },
    /// Export or import content as CAR files (offline transfer between stores).
    #[command(subcommand)]
    Car(CarCommand),
    /// Home gateway: set up, follow vendor channels, register devices, run the service.
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Device side: run a simulated device (file-backed A/B slots) against a gateway.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// IPFS node tooling: private-swarm keys, Kubo configuration, a trustless gateway server.
    #[command(subcommand)]
    Ipfs(crate::ipfs::IpfsCommand),
    /// Run the whole flow on the embedded defaults and show each step.
    Demo {
        /// Number of simulated devices.
        #[arg(long, default_value_t = 3)]
        devices: usize,
        /// Keep the demo's files in this directory instead of a temporary one.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the gateway (and its web UI) running until Ctrl-C.
        #[arg(long)]
        keep_running: bool,
    },
}

/// `fwledger vendor …`
#[derive(Debug, Subcommand)]
pub enum VendorCommand {
    /// Create the vendor's keys and channel.
    Init {
        /// Vendor name.
        #[arg(long)]
        name: String,
    },
    /// Print the vendor root public key (hex), for devices and `verify`.
    Key,
    /// IOTA ledger: print the IOTA address that signs this home's ledger transactions (fund it
    /// for --iota-gas own) and the ledger URL gateways read the channel with.
    IotaAccount,
    /// Issue a subscription token for a gateway.
    Token {
        /// Name of the gateway (default: gateway-N). It keeps access across rotations until revoked.
        #[arg(long, conflicts_with = "simple")]
        gateway: Option<String>,
        /// Simple mode: a shared key only, lost at the next rotation (the paper's side key).
        #[arg(long)]
        simple: bool,
    },
    /// Publish a firmware image.
    Publish(PublishArgs),
    /// Withdraw a published release.
    Revoke {
        /// Version to withdraw.
        #[arg(long)]
        version: String,
        /// Model (needed when several models have that version).
        #[arg(long)]
        model: Option<String>,
        /// Why.
        #[arg(long, default_value = "withdrawn by the vendor")]
        reason: String,
    },
    /// Start a new channel epoch, optionally revoking a gateway.
    RotateKey {
        /// Gateway to revoke: it cannot read anything published from now on.
        #[arg(long, value_name = "GATEWAY")]
        revoke: Option<String>,
        /// Also certify a new release-signing key with the next generation.
        #[arg(long)]
        release_key: bool,
    },
    /// Append a heartbeat so followers can tell a live channel from a frozen one.
    Heartbeat {
        /// How long it stays valid (e.g. 1h, 30m, 1d).
        #[arg(long, default_value = "1h")]
        valid: String,
    },
    /// Show every message of the vendor's channel.
    History {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Export the channel's messages to a file (air-gapped transfer).
    Export {
        /// Output file.
        file: PathBuf,
        /// First position to export.
        #[arg(long, default_value_t = 0)]
        from: u64,
    },
    /// List the gateways admitted to the channel.
    Gateways {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Serve the vendor portal (web UI). Plain HTTP on loopback by default: put a TLS proxy in
    /// front, or pass --tls-cert and --tls-key to serve HTTPS. The first start prints the
    /// administrator password.
    Serve {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8444")]
        http: std::net::SocketAddr,
        /// Largest firmware image accepted (e.g. 1GiB, 500MiB).
        #[arg(long, value_name = "SIZE", default_value = "1GiB")]
        max_upload: String,
        /// Certificate chain (PEM) to serve HTTPS.
        #[arg(long, value_name = "PEM", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// Private key (PEM) to serve HTTPS.
        #[arg(long, value_name = "PEM", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Set a new random password for the vendor portal (printed once; every session ends).
    PortalPassword,
}

/// `fwledger vendor publish …`
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The firmware image.
    pub file: PathBuf,
    /// Device model.
    #[arg(long)]
    pub model: String,
    /// Compatible hardware revision (repeat or comma-separate for several).
    #[arg(long = "hw", required = true, value_delimiter = ',')]
    pub hardware: Vec<String>,
    /// Semantic version.
    #[arg(long)]
    pub version: String,
    /// Anti-rollback counter; devices never install a lower one.
    #[arg(long, default_value_t = 0)]
    pub security_version: u64,
    /// Expire the release after this long (e.g. 90d, 12h).
    #[arg(long, value_name = "DUR")]
    pub expires: Option<String>,
    /// Minimum installed version required.
    #[arg(long)]
    pub prerequisite: Option<String>,
    /// Release notes.
    #[arg(long)]
    pub notes: Option<String>,
    /// UnixFS profile for the CID.
    #[arg(long, default_value = "unixfs-v1-2025")]
    pub profile: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Stage the release (store, manifest) and print what announcing it would cost on the
    /// ledger, without announcing it.
    #[arg(long)]
    pub dry_run: bool,
}

/// `fwledger channel …`
#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Read and verify a channel.
    Read {
        /// Subscription token (fwl1…), or @FILE to read it from a file.
        token: String,
        /// JSON output (an array; with --follow one object per line).
        #[arg(long)]
        json: bool,
        /// Keep waiting for new messages.
        #[arg(long)]
        follow: bool,
        /// Resume from and save the position in this file.
        #[arg(long)]
        state: Option<PathBuf>,
        /// With --follow, stop after this long without a message (e.g. 30s).
        #[arg(long, value_name = "DUR")]
        idle_timeout: Option<String>,
    },
    /// Import channel messages exported with `vendor export`.
    Import {
        /// The export file.
        file: PathBuf,
    },
}

/// `fwledger car …`
#[derive(Debug, Subcommand)]
pub enum CarCommand {
    /// Write a CID's blocks to a CAR file.
    Export {
        /// Root CID.
        cid: String,
        /// Output file.
        file: PathBuf,
    },
    /// Add every block of a CAR file to the store (each is verified).
    Import {
        /// The CAR file.
        file: PathBuf,
    },
}

/// `fwledger verify …`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The signed manifest (COSE_Sign1).
    #[arg(long)]
    pub manifest: PathBuf,
    /// The image.
    #[arg(long)]
    pub image: PathBuf,
    /// Vendor root public key, hex.
    #[arg(long)]
    pub vendor_key: String,
    /// Device model to check.
    #[arg(long)]
    pub model: Option<String>,
    /// Hardware revision to check.
    #[arg(long = "hw")]
    pub hardware: Option<String>,
    /// Installed version: the release must be newer.
    #[arg(long)]
    pub current: Option<String>,
    /// The device's security version: the release must not be lower.
    #[arg(long, default_value_t = 0)]
    pub security_version: u64,
    /// Lowest trusted release-key generation.
    #[arg(long, default_value_t = 0)]
    pub min_key_generation: u64,
    /// Skip expiry checks (as a device without a clock).
    #[arg(long)]
    pub no_clock: bool,
}

/// `fwledger gateway …`
#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Create the gateway: CA, certificates, mosquitto configuration, registry.
    Init(GatewayInitArgs),
    /// Follow a vendor's channel (a token from `fwledger vendor token`).
    Subscribe {
        /// Subscription token (fwl1…), or @FILE to read it from a file.
        token: String,
    },
    /// Register devices.
    #[command(subcommand)]
    Device(GatewayDeviceCommand),
    /// Run the gateway service until interrupted (SIGINT / SIGTERM).
    Run {
        /// HTTPS listen address (default: from gateway.json); notices then use this address.
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
        /// Use a running broker (mqtts://HOST:PORT, or mqtt:// on loopback) instead of
        /// starting mosquitto.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// The mosquitto binary (default: $FWLEDGER_MOSQUITTO, PATH, /usr/sbin).
        #[arg(long, value_name = "PATH")]
        mosquitto: Option<PathBuf>,
        /// Longest wait between retries of a failing ledger, content store or disk (retries
        /// start at 1 s and double, with jitter, up to this).
        #[arg(long, value_name = "DUR", default_value = "60s")]
        max_backoff: String,
        /// How often the service re-derives its work from the registry.
        #[arg(long, value_name = "DUR", default_value = "5s")]
        reconcile: String,
    },
    /// Staged rollouts: which devices get a release first, and when it halts.
    #[command(subcommand)]
    Rollout(crate::rollout::RolloutCommand),
    /// Set a new, generated password for the web UI's `admin` account (printed once).
    Password,
    /// Show channels, releases, devices and recent events.
    Status {
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `fwledger gateway init …`
#[derive(Debug, Args)]
pub struct GatewayInitArgs {
    /// Address every listener binds.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Host name or address devices use to reach the gateway (default: the bind address).
    #[arg(long)]
    pub host: Option<String>,
    /// MQTT over TLS port (mosquitto).
    #[arg(long, default_value_t = 8883)]
    pub mqtt_port: u16,
    /// HTTPS port (downloads, web UI).
    #[arg(long, default_value_t = 8443)]
    pub https_port: u16,
    /// SNTP port.
    #[arg(long, default_value_t = 1123)]
    pub sntp_port: u16,
}

/// `fwledger gateway device …`
#[derive(Debug, Subcommand)]
pub enum GatewayDeviceCommand {
    /// Register a device: issue its certificate and write its provisioning bundle.
    Add {
        /// Device id (certificate CN): 1-64 of A-Z a-z 0-9 . _ -
        #[arg(long)]
        id: String,
        /// MAC address.
        #[arg(long)]
        mac: String,
        /// Device model.
        #[arg(long)]
        model: String,
        /// Hardware revision.
        #[arg(long = "hw")]
        hardware: String,
        /// Where to write the bundle (mode 0600: it holds the device key).
        #[arg(long, value_name = "BUNDLE")]
        out: PathBuf,
        /// Put the device in this group (staged rollouts; a device is in at most one group).
        #[arg(long)]
        group: Option<String>,
    },
    /// Put a device in a group, or (without --group) in none.
    Group {
        /// Device id.
        #[arg(long)]
        id: String,
        /// Group name: 1-64 of A-Z a-z 0-9 . _ -
        #[arg(long)]
        group: Option<String>,
    },
    /// List registered devices.
    List {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
}

/// `fwledger device …`
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Run a device from a provisioning bundle until interrupted (Ctrl-C). It keeps its slots
    /// and boot record in the state directory; a fresh directory starts from a factory image.
    Run {
        /// The provisioning bundle (from `gateway device add`).
        #[arg(long, value_name = "BUNDLE")]
        bundle: PathBuf,
        /// State directory: slot_a.bin, slot_b.bin, boot.json.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// Version of the factory image on first run.
        #[arg(long, default_value = "1.0.0")]
        factory_version: String,
        /// How often to ask the gateway for the current notice, besides on every connect.
        #[arg(long, value_name = "DUR", default_value = "60s")]
        check_interval: String,
        /// Print status reports as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Run many devices in one process, one per bundle in a directory (load tests, benchmarks).
    Swarm {
        /// Directory of provisioning bundles (every regular file in it).
        #[arg(long, value_name = "DIR")]
        bundles: PathBuf,
        /// State directory of `--engine agent`; each device gets a subdirectory named after its
        /// id (the async engine keeps its state in memory and ignores it).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// `async`: one lightweight tokio task per device speaking the real MQTT/TLS and HTTPS
        /// protocols and verifying manifest and image like the agent, with the flash simulated
        /// (no slot files; 10 000 devices fit in one process). `agent`: the full device agent
        /// (`fwledger-device`, file-backed A/B slots, two threads per device).
        #[arg(long, value_enum, default_value = "async")]
        engine: SwarmEngine,
        /// Async engine: at most this many image downloads at once per swarm process.
        #[arg(long, value_name = "N", default_value_t = 64)]
        download_concurrency: usize,
        /// Version of the factory image on first run.
        #[arg(long, default_value = "1.0.0")]
        factory_version: String,
        /// Exit once every device has confirmed this version.
        #[arg(long, value_name = "VERSION")]
        until_version: Option<String>,
        /// Give up after this long.
        #[arg(long, value_name = "DUR", default_value = "10m")]
        timeout: String,
        /// How often each device asks the gateway for the current notice (status traffic).
        #[arg(long, value_name = "DUR", default_value = "60s")]
        check_interval: String,
        /// Print `progress MS reported N downloading N confirmed N failed N` once a second.
        #[arg(long)]
        progress: bool,
        /// At most this many devices may be starting (connecting, before their first status
        /// report) at once: the connect storm's pace.
        #[arg(long, value_name = "N", default_value_t = 200)]
        connect_concurrency: usize,
    },
}

/// How `device swarm` simulates its devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SwarmEngine {
    /// One tokio task per device; flash simulated.
    Async,
    /// The full device agent, two OS threads per device.
    Agent,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn arguments_are_consistent() {
        super::Cli::command().debug_assert();
    }
}
