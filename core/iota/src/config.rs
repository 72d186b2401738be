//! Ledger URLs (`iota+https://…`): the GraphQL endpoint, the network, the Notarization package,
//! whose channel messages to read, and how gas is paid.

use std::path::PathBuf;
use std::str::FromStr;

use iota_sdk::types::{Address, ObjectId};

use crate::IotaError;

/// IOTA Notarization package on mainnet (`Move.history.json` of `iotaledger/notarization`).
pub const MAINNET_PACKAGE: &str =
    "0x909ce9dcd9a5e97b7b8884fac8e018fad9dece348bf73837379b8694ff684cf3";
/// IOTA Notarization package on testnet.
pub const TESTNET_PACKAGE: &str =
    "0x00412bd469b7f980227c6c574090348239852e43aa07818b315854fdd8a2d25f";
/// IOTA Notarization package on devnet.
pub const DEVNET_PACKAGE: &str =
    "0x72c8433b88e6bdee0eb02a257fdebd0ec2b6c990043f35b155cb4c5cf727fdca";

/// Which IOTA network a ledger URL talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// IOTA mainnet.
    Mainnet,
    /// IOTA testnet (faucet available).
    Testnet,
    /// IOTA devnet (faucet available).
    Devnet,
    /// Any other network (a local network, the simulator): `package=` is required.
    Custom,
}

impl Network {
    /// The network's name as used in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Devnet => "devnet",
            Network::Custom => "custom",
        }
    }

    /// The Notarization package published on this network, if known.
    pub fn default_package(self) -> Option<ObjectId> {
        let id = match self {
            Network::Mainnet => MAINNET_PACKAGE,
            Network::Testnet => TESTNET_PACKAGE,
            Network::Devnet => DEVNET_PACKAGE,
            Network::Custom => return None,
        };
        ObjectId::from_str(id).ok()
    }

    /// Where to get gas for free, if this network has a faucet.
    pub fn faucet(self) -> Option<&'static str> {
        match self {
            Network::Testnet => Some("https://faucet.testnet.iota.cafe/v1/gas"),
            Network::Devnet => Some("https://faucet.devnet.iota.cafe/v1/gas"),
            _ => None,
        }
    }
}

impl FromStr for Network {
    type Err = IotaError;
    fn from_str(s: &str) -> Result<Self, IotaError> {
        match s {
            "mainnet" => Ok(Network::Mainnet),
            "testnet" => Ok(Network::Testnet),
            "devnet" => Ok(Network::Devnet),
            "custom" | "local" | "localnet" => Ok(Network::Custom),
            other => Err(IotaError::Config(format!(
                "unknown IOTA network {other:?}; expected mainnet, testnet, devnet or custom"
            ))),
        }
    }
}

/// How the gas of a publishing transaction is paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GasMode {
    /// With the vendor's own IOTA coins (the address of the key in the vendor home).
    Own,
    /// By a sponsor whose Ed25519 key file (same format as the vendor's) co-signs.
    Sponsor {
        /// The sponsor's key file.
        key: PathBuf,
    },
    /// By an IOTA gas station (`/v1/reserve_gas`, `/v1/execute_tx`). A bearer token may be
    /// given in `FWLEDGER_IOTA_GAS_STATION_TOKEN`.
    Station {
        /// The gas station's base URL.
        url: String,
    },
}

/// Everything a ledger URL says.
#[derive(Debug, Clone)]
pub struct IotaConfig {
    /// The GraphQL endpoint (`https://…` or `http://…`).
    pub endpoint: String,
    /// The network.
    pub network: Network,
    /// The Notarization package whose functions carry the messages.
    pub package: ObjectId,
    /// Whose messages to read; `None`: the address of the local key.
    pub sender: Option<Address>,
    /// How gas is paid when publishing.
    pub gas: GasMode,
    /// Largest gas budget a publish may use, in nanos (1 IOTA = 10^9 nanos).
    pub max_budget: u64,
    /// The GraphQL subscription endpoint (`ws://…`/`wss://…`) live following uses; `None`:
    /// follow by polling only (`subscribe=off`). Default: the endpoint with `ws(s)://`.
    pub subscription: Option<String>,
}

/// Default cap on the gas budget of one publish: 0.5 IOTA.
pub const DEFAULT_MAX_BUDGET: u64 = 500_000_000;

impl IotaConfig {
    /// Parses `iota+https://HOST[:PORT]/PATH[?key=value&…]`.
    ///
    /// Keys: `network` (mainnet, testnet, devnet, custom; default: guessed from the host, else
    /// custom), `package` (the Notarization package id; default: the network's), `sender` (the
    /// IOTA address whose channel messages are read; default: the local key's), `gas` (own,
    /// sponsor, station), `sponsor_key` (file, for `gas=sponsor`), `gas_station` (URL, for
    /// `gas=station`), `max_budget` (nanos), `subscribe` (`ws://…`/`wss://…` URL of the
    /// GraphQL events subscription, or `off`; default: the endpoint with `ws(s)://`).
    pub fn parse(url: &str) -> Result<Self, IotaError> {
        let url = url.trim();
        let rest = url.strip_prefix("iota+").ok_or_else(|| {
            IotaError::Config(format!(
                "{url:?} is not an IOTA ledger URL (iota+https://…)"
            ))
        })?;
        if !(rest.starts_with("https://") || rest.starts_with("http://")) {
            return Err(IotaError::Config(format!(
                "{url:?}: expected iota+https://HOST/… or iota+http://HOST/…"
            )));
        }
        let (endpoint, query) = match rest.split_once('?') {
            Some((e, q)) => (e, q),
            None => (rest, ""),
        };
        let host = endpoint
            .split_once("://")
            .map(|(_, h)| h.split('/').next().unwrap_or(""))
            .unwrap_or("");
        if host.is_empty() {
            return Err(IotaError::Config(format!("{url:?} names no host")));
        }
        let mut network = None;
        let mut package = None;
        let mut sender = None;
        let mut gas = None;
        let mut sponsor_key = None;
        let mut station = None;
        let mut max_budget = DEFAULT_MAX_BUDGET;
        let mut subscription = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)?;
            match key {
                "network" => network = Some(value.parse::<Network>()?),
                "package" => {
                    package = Some(ObjectId::from_str(&value).map_err(|e| {
                        IotaError::Config(format!("package {value:?} is not an object id: {e}"))
                    })?)
                }
                "sender" => {
                    sender = Some(Address::from_str(&value).map_err(|e| {
                        IotaError::Config(format!("sender {value:?} is not an IOTA address: {e}"))
                    })?)
                }
                "gas" => gas = Some(value),
                "sponsor_key" => sponsor_key = Some(PathBuf::from(value)),
                "gas_station" => station = Some(value),
                "max_budget" => {
                    max_budget = value.parse().map_err(|_| {
                        IotaError::Config(format!("max_budget {value:?} is not a number of nanos"))
                    })?
                }
                "subscribe" => {
                    if value != "off" && !value.starts_with("ws://") && !value.starts_with("wss://")
                    {
                        return Err(IotaError::Config(format!(
                            "subscribe={value:?}: expected a ws:// or wss:// URL, or off"
                        )));
                    }
                    subscription = Some(value)
                }
                other => {
                    return Err(IotaError::Config(format!(
                        "unknown key {other:?} in IOTA ledger URL; expected network, package, \
                         sender, gas, sponsor_key, gas_station, max_budget or subscribe"
                    )))
                }
            }
        }
        let network = network.unwrap_or_else(|| guess_network(host));
        let package = match package.or_else(|| network.default_package()) {
            Some(p) => p,
            None => {
                return Err(IotaError::Config(format!(
                    "{url:?}: network {} has no known Notarization package; add package=0x…",
                    network.name()
                )))
            }
        };
        let gas = match gas.as_deref().unwrap_or("own") {
            "own" => GasMode::Own,
            "sponsor" => GasMode::Sponsor {
                key: sponsor_key.ok_or_else(|| {
                    IotaError::Config("gas=sponsor needs sponsor_key=FILE".into())
                })?,
            },
            "station" => GasMode::Station {
                url: station
                    .ok_or_else(|| IotaError::Config("gas=station needs gas_station=URL".into()))?,
            },
            other => {
                return Err(IotaError::Config(format!(
                    "gas={other:?}: expected own, sponsor or station"
                )))
            }
        };
        Ok(IotaConfig {
            endpoint: endpoint.to_string(),
            network,
            package,
            sender,
            gas,
            max_budget,
            subscription: match subscription.as_deref() {
                Some("off") => None,
                Some(url) => Some(url.to_string()),
                None => Some(crate::subscribe::default_url(endpoint)),
            },
        })
    }
}

fn guess_network(host: &str) -> Network {
    let host = host.to_ascii_lowercase();
    if host.contains("mainnet") {
        Network::Mainnet
    } else if host.contains("testnet") {
        Network::Testnet
    } else if host.contains("devnet") {
        Network::Devnet
    } else {
        Network::Custom
    }
}

fn percent_decode(value: &str) -> Result<String, IotaError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| IotaError::Config(format!("bad %-escape in {value:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| IotaError::Config(format!("{value:?} is not UTF-8")))
}

/// Percent-encodes a URL query value (for [`with_params`]).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Adds `key=value` pairs to a ledger URL (used by the CLI for its gas options).
pub fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    let mut url = url.trim().to_string();
    for (key, value) in params {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(key);
        url.push('=');
        url.push_str(&percent_encode(value));
    }
    url
}
