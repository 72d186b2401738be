//! # fwledger-gateway — the home gateway
//!
//! The gateway of the paper's phases 1, 2, 4 and 5: it follows one channel per vendor, keeps a
//! registry of local devices (SQLite), fetches and verifies each release a registered device can
//! use into a local repository, tells devices about it over MQTT (mosquitto, TLS with client
//! certificates from the gateway's own CA) and serves the image over HTTPS with Range requests.
//! Devices trust none of this: they verify the vendor-signed manifest and the image themselves.
//!
//! Set-up and running, in process (the CLI's `fwledger gateway init | subscribe | device add |
//! run` do the same):
//!
//! ```
//! use fwledger::{Backends, Vendor};
//! use fwledger_gateway::registry::NewDevice;
//! use fwledger_gateway::{Gateway, InitOptions, RunOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let home = tempfile::tempdir()?;
//! let backends = Backends::open(home.path(), "embedded", "embedded")?;
//! let mut vendor = Vendor::init(home.path(), "acme", &backends)?;
//!
//! let gateway = Gateway::init(home.path(), &InitOptions::default())?;
//! gateway.subscribe(&vendor.token(Some("home-hub"))?)?;
//! let bundle = gateway.add_device(&NewDevice {
//!     id: "lamp-01".into(),
//!     mac: "24:0a:c4:12:34:56".into(),
//!     model: "lamp".into(),
//!     hardware: "rev-b".into(),
//! })?;
//! assert_eq!(bundle.vendors[0].key, hex::encode(vendor.public_key()));
//! let pairing = gateway.write_bundle(&bundle, &home.path().join("lamp-01.json"))?;
//! println!("{}", pairing.qr_text()?);
//!
//! // With mosquitto installed: `gateway.run(RunOptions::new(backends), shutdown).await?`, or
//! // `start` for a handle (`RunOptions::broker` connects to an already-running broker instead).
//! let _options = RunOptions::new(backends);
//! # Ok(())
//! # }
//! ```
//!
//! Layout of `HOME/gateway/`: `gateway.json` (ports), `pki/` (CA, server and gateway client
//! certificates; keys mode 0600), `mosquitto.conf` + `acl` + `mosquitto/` (persistence, log),
//! `registry.sqlite`, `channels/` (tokens and follower state, 0600), `repository/{sha256}`.
//!
//! For the web UI: [`http::router`] is the one HTTPS router (add routes at its merge point), and
//! [`registry::Registry`] returns plain serializable structs for every page.
//!
//! Staged rollouts (a release goes to a percentage or a group of devices first and halts by
//! itself when too many fail, as in hawkBit and Mender): the decisions are in [`rollout`], the
//! state in the registry (`rollouts`, device groups), the gate in the notice decision
//! ([`notify::choose_where`]); `fwledger gateway rollout …`, `/api/rollouts` and the panel on
//! `/releases` operate them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod broker;
pub mod config;
mod follow;
pub mod health;
pub mod http;
pub mod metrics;
pub mod mqtt;
pub mod notify;
pub mod pki;
pub mod registry;
mod repository;
pub mod rollout;
mod service;
mod setup;
pub mod sntp;
pub mod tls;
pub mod web;

pub use config::{GatewayConfig, GatewayPaths, GATEWAY_IDENTITY};
pub use registry::{Registry, RegistryError};
pub use repository::remove_partial_files;
pub use service::{RunError, RunOptions, RunningGateway, Timing};
pub use setup::{normalize_mac, Gateway, InitOptions, PairingInfo, SetupError, Subscribed};
