//! `fwledger ipfs …`: tooling around the IPFS nodes fwledger stores releases on.
//!
//! * `swarm-key` — a fresh private-network key in Kubo's `swarm.key` format;
//! * `kubo-config` — the commands that set up a Kubo node to join that private swarm.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use crate::util::Failure;

/// `fwledger ipfs …`
#[derive(Debug, Subcommand)]
pub enum IpfsCommand {
    /// Generate a private-swarm key (Kubo's `swarm.key`, `/key/swarm/psk/1.0.0/`). Every node
    /// holding it — and only those — can talk to each other. Keep it secret.
    SwarmKey {
        /// Write the key to this file (mode 0600; an existing file is never overwritten)
        /// instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print the shell commands that initialise a Kubo node in the private swarm of a
    /// `swarm.key` and peer it with the given nodes (nothing is run).
    KuboConfig(KuboConfigArgs),
    /// Serve this node's content store (`--store`) as an IPFS trustless HTTP gateway:
    /// `GET`/`HEAD /ipfs/CID?format=raw|car`, only blocks that verify, streamed. Any trustless
    /// client reads it, e.g. `fwledger --store http://HOST:PORT fetch …`. Plain HTTP: data is
    /// verified by CID, put TLS in front for privacy. Runs until Ctrl-C.
    Serve {
        /// Address to listen on (port 0: any free port; the address is printed).
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
}

/// `fwledger ipfs kubo-config …`
#[derive(Debug, Args)]
pub struct KuboConfigArgs {
    /// The swarm key file (from `fwledger ipfs swarm-key --out FILE`).
    #[arg(long, value_name = "FILE")]
    pub swarm_key: PathBuf,
    /// A node to peer with, as `/ip4/ADDR/tcp/PORT/p2p/PEER_ID` (repeatable): kept connected
    /// (Peering) and used to bootstrap.
    #[arg(long = "peer", value_name = "MULTIADDR")]
    pub peers: Vec<String>,
    /// Swarm listen address (repeatable; TCP only: private networks cannot use QUIC,
    /// WebTransport, WebRTC or WebSocket). Use /ip4/127.0.0.1/tcp/PORT for one machine.
    #[arg(long = "listen", value_name = "MULTIADDR", default_values_t = [DEFAULT_LISTEN.to_string()])]
    pub listen: Vec<String>,
    /// RPC API address (whoever reaches it controls the node: keep it on loopback).
    #[arg(
        long,
        value_name = "MULTIADDR",
        default_value = "/ip4/127.0.0.1/tcp/5001"
    )]
    pub api: String,
    /// HTTP gateway address.
    #[arg(
        long,
        value_name = "MULTIADDR",
        default_value = "/ip4/127.0.0.1/tcp/8080"
    )]
    pub gateway: String,
    /// Content routing: `dht` (a DHT among the swarm's members) or `none` (only ask connected
    /// peers; enough when every node peers with the ones holding content).
    #[arg(long, value_enum, default_value_t = Routing::Dht)]
    pub routing: Routing,
    /// The node's repository (default: $IPFS_PATH, else ~/.ipfs when the commands run).
    #[arg(long, value_name = "DIR")]
    pub ipfs_path: Option<PathBuf>,
}

/// `Routing.Type` of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Routing {
    /// A DHT among the swarm's members.
    Dht,
    /// No content routing: ask connected peers only.
    None,
}

const DEFAULT_LISTEN: &str = "/ip4/0.0.0.0/tcp/4001";
const SWARM_KEY_HEADER: &str = "/key/swarm/psk/1.0.0/";
const SWARM_KEY_LEN: usize = 32;

/// Runs an `ipfs` command (`home` and `store`: the global `--home` and `--store`).
pub async fn run(home: &Path, store: &str, command: IpfsCommand) -> Result<(), Failure> {
    match command {
        IpfsCommand::Serve { listen } => serve(home, store, listen).await,
        IpfsCommand::SwarmKey { out } => swarm_key(out.as_deref()),
        IpfsCommand::KuboConfig(args) => {
            print!("{}", kubo_config(&args)?);
            Ok(())
        }
    }
}

/// `fwledger ipfs serve`: the store as a trustless gateway until Ctrl-C.
async fn serve(home: &Path, store_url: &str, listen: std::net::SocketAddr) -> Result<(), Failure> {
    let store = fwledger_store::open(store_url, home)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::Message(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Message(format!("listening socket: {e}")))?;
    // the first line of output names the address (port 0 picks one)
    println!("trustless gateway on http://{addr}");
    eprintln!(
        "serving store {store_url:?}: GET http://{addr}/ipfs/CID?format=car|raw; Ctrl-C stops"
    );
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    fwledger_store::serve_trustless(listener, store, stop)
        .await
        .map_err(|e| Failure::Message(format!("trustless gateway on {addr}: {e}")))
}

fn swarm_key(out: Option<&Path>) -> Result<(), Failure> {
    let mut key = [0u8; SWARM_KEY_LEN];
    rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut key)
        .map_err(|e| Failure::Message(format!("no randomness from the OS: {e}")))?;
    let text = format!("{SWARM_KEY_HEADER}\n/base16/\n{}\n", hex::encode(key));
    let Some(path) = out else {
        print!("{text}");
        return Ok(());
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::Message(format!(
                "{}: already exists; not overwriting a swarm key (nodes may depend on it)",
                path.display()
            ))
        } else {
            Failure::io(path, e)
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure::io(path, e))?;
    eprintln!(
        "swarm key written to {} (mode 0600); copy it to each node's IPFS_PATH/swarm.key",
        path.display()
    );
    Ok(())
}

/// Reads and checks a `swarm.key`: the v1 header, `/base16/`, 32 bytes in hex.
pub fn read_swarm_key(path: &Path) -> Result<[u8; SWARM_KEY_LEN], Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::io(path, e))?;
    parse_swarm_key(&text)
        .map_err(|why| Failure::Message(format!("{}: not a swarm key: {why}", path.display())))
}

fn parse_swarm_key(text: &str) -> Result<[u8; SWARM_KEY_LEN], String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(SWARM_KEY_HEADER) {
        return Err(format!("the first line must be {SWARM_KEY_HEADER}"));
    }
    match lines.next() {
        Some("/base16/") => {}
        Some(other) => return Err(format!("encoding {other:?} (expected /base16/)")),
        None => return Err("no encoding line".into()),
    }
    let key = lines.next().ok_or("no key line")?;
    if lines.next().is_some() {
        return Err("unexpected text after the key".into());
    }
    hex::decode(key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| format!("the key must be {} hex digits", SWARM_KEY_LEN * 2))
}

/// A libp2p multiaddr as given on the command line: `/proto/value/…`, plain characters only
/// (it ends up inside single-quoted shell words and JSON strings).
fn check_multiaddr(what: &str, addr: &str) -> Result<Vec<String>, Failure> {
    let bad = |why: &str| Failure::Message(format!("{what} {addr:?}: {why}"));
    if !addr
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._:-".contains(c))
    {
        return Err(bad(
            "unexpected character (expected a multiaddr like /ip4/192.168.1.10/tcp/4001)",
        ));
    }
    let parts: Vec<String> = addr.split('/').map(str::to_owned).collect();
    if parts.len() < 3 || !parts[0].is_empty() || parts[1..].iter().any(String::is_empty) {
        return Err(bad("not a multiaddr (expected /ip4/ADDR/tcp/PORT…)"));
    }
    Ok(parts[1..].to_vec())
}

/// A TCP address over IPv4/IPv6/DNS; `rest` says what may follow `tcp/PORT`.
fn check_tcp(what: &str, addr: &str, parts: &[String]) -> Result<(), Failure> {
    let bad = |why: &str| Failure::Message(format!("{what} {addr:?}: {why}"));
    match parts {
        [net, _host, tcp, port, ..]
            if matches!(net.as_str(), "ip4" | "ip6" | "dns" | "dns4" | "dns6") && tcp == "tcp" =>
        {
            port.parse::<u16>()
                .map_err(|_| bad("the TCP port is not a number"))?;
            if net == "ip4" && parts[1].parse::<std::net::Ipv4Addr>().is_err() {
                return Err(bad("not an IPv4 address"));
            }
            if net == "ip6" && parts[1].parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address"));
            }
            Ok(())
        }
        _ => Err(bad(
            "a private swarm runs over TCP only: expected /ip4|ip6|dns/HOST/tcp/PORT",
        )),
    }
}

/// A listen / API / gateway address: exactly `/ip4|ip6/ADDR/tcp/PORT`.
fn check_listen(what: &str, addr: &str) -> Result<bool, Failure> {
    let parts = check_multiaddr(what, addr)?;
    check_tcp(what, addr, &parts)?;
    if parts.len() != 4 || !matches!(parts[0].as_str(), "ip4" | "ip6") {
        return Err(Failure::Message(format!(
            "{what} {addr:?}: expected /ip4/ADDR/tcp/PORT or /ip6/ADDR/tcp/PORT \
             (TCP only in a private swarm)"
        )));
    }
    let loopback = match parts[0].as_str() {
        "ip4" => parts[1]
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback()),
        _ => parts[1]
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|a| a.is_loopback()),
    };
    Ok(loopback)
}

/// A peer: `/…/tcp/PORT/p2p/PEER_ID`, split into the peer id and its address.
fn check_peer(addr: &str) -> Result<(String, String), Failure> {
    let parts = check_multiaddr("--peer", addr)?;
    check_tcp("--peer", addr, &parts)?;
    let bad = |why: &str| Failure::Message(format!("--peer {addr:?}: {why}"));
    match &parts[..] {
        [.., p2p, id] if p2p == "p2p" || p2p == "ipfs" => {
            // base58btc (Qm…, 12D3…) or a base32 CIDv1 (b…): just the alphabet is checked here
            if id.len() < 40 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad("the peer id after /p2p/ is malformed"));
            }
            let host_part = parts[..parts.len() - 2].join("/");
            Ok((id.clone(), format!("/{host_part}")))
        }
        _ => Err(bad(
            "must end with /p2p/PEER_ID (the node's `ipfs id -f '<id>'`)",
        )),
    }
}

/// A word for `sh`, single-quoted.
fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The commands `kubo-config` prints.
pub fn kubo_config(args: &KuboConfigArgs) -> Result<String, Failure> {
    read_swarm_key(&args.swarm_key)?;
    let key_path =
        std::path::absolute(&args.swarm_key).map_err(|e| Failure::io(&args.swarm_key, e))?;
    let mut all_loopback = true;
    for addr in &args.listen {
        all_loopback &= check_listen("--listen", addr)?;
    }
    let api_loopback = check_listen("--api", &args.api)?;
    check_listen("--gateway", &args.gateway)?;
    let mut peers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut bootstrap = Vec::new();
    for addr in &args.peers {
        let (id, host) = check_peer(addr)?;
        bootstrap.push(format!("{host}/p2p/{id}"));
        let addrs = peers.entry(id).or_default();
        if !addrs.contains(&host) {
            addrs.push(host);
        }
    }
    let json = |v: serde_json::Value| shell_word(&v.to_string());
    let peering: Vec<serde_json::Value> = peers
        .iter()
        .map(|(id, addrs)| serde_json::json!({ "ID": id, "Addrs": addrs }))
        .collect();
    let routing = match args.routing {
        Routing::Dht => "dht",
        Routing::None => "none",
    };

    let mut s = String::new();
    let mut line = |text: &str| {
        s.push_str(text);
        s.push('\n');
    };
    line("#!/bin/sh");
    line("# Kubo in a private IPFS swarm (generated by `fwledger ipfs kubo-config`).");
    line("# Nodes talk only to nodes holding the same swarm.key; nothing reaches the public network.");
    line("set -eu");
    match &args.ipfs_path {
        Some(dir) => {
            let dir = std::path::absolute(dir).map_err(|e| Failure::io(dir, e))?;
            line(&format!(
                "export IPFS_PATH={}",
                shell_word(&dir.to_string_lossy())
            ));
        }
        None => line("export IPFS_PATH=\"${IPFS_PATH:-$HOME/.ipfs}\""),
    }
    line("export IPFS_TELEMETRY=off");
    line("");
    line("# a new repository (skipped if one exists), then the key: the node refuses any peer without it");
    line("[ -f \"$IPFS_PATH/config\" ] || ipfs init -e");
    line(&format!(
        "install -m 0600 {} \"$IPFS_PATH/swarm.key\"",
        shell_word(&key_path.to_string_lossy())
    ));
    line("");
    line("# no public bootstrap nodes, autoconf, AutoTLS, delegated routing or NAT port mapping");
    line("ipfs config --json AutoConf.Enabled false");
    line("ipfs config --json AutoTLS.Enabled false");
    line(&format!(
        "ipfs config --json Bootstrap {}",
        json(serde_json::json!(bootstrap))
    ));
    line("ipfs config --json Routing.DelegatedRouters '[]'");
    line("ipfs config --json Ipns.DelegatedPublishers '[]'");
    line("ipfs config --json DNS.Resolvers '{}'");
    line("ipfs config --json Swarm.DisableNatPortMap true");
    line(&format!("ipfs config Routing.Type {routing}"));
    line("");
    line("# TCP only: QUIC, WebTransport, WebRTC and shared-port WebSocket cannot use a swarm key");
    line(&format!(
        "ipfs config --json Addresses.Swarm {}",
        json(serde_json::json!(args.listen))
    ));
    for transport in ["QUIC", "WebTransport", "WebRTCDirect", "Websocket"] {
        line(&format!(
            "ipfs config --json Swarm.Transports.Network.{transport} false"
        ));
    }
    if !all_loopback {
        line("# mDNS finds the other swarm members on the LAN (nodes without the key cannot connect)");
    }
    line(&format!(
        "ipfs config --json Discovery.MDNS.Enabled {}",
        !all_loopback
    ));
    if !api_loopback {
        line(
            "# WARNING: the RPC API below is not on loopback; whoever reaches it controls the node",
        );
    }
    line(&format!(
        "ipfs config Addresses.API {}",
        shell_word(&args.api)
    ));
    line(&format!(
        "ipfs config Addresses.Gateway {}",
        shell_word(&args.gateway)
    ));
    line("");
    if peering.is_empty() {
        line("# no peers given: other nodes peer with this one (its address is printed below)");
        line("ipfs config --json Peering.Peers '[]'");
    } else {
        line("# stay connected to these nodes (reconnects when they come back)");
        line(&format!(
            "ipfs config --json Peering.Peers {}",
            json(serde_json::Value::Array(peering))
        ));
    }
    line("");
    line("# start it; LIBP2P_FORCE_PNET=1 makes it refuse to run without the swarm key");
    line("# (systemd: Environment=LIBP2P_FORCE_PNET=1)");
    line("echo \"peer address for the other nodes: /ip4/THIS_HOST_ADDRESS/tcp/PORT/p2p/$(ipfs config Identity.PeerID)\"");
    line(&format!(
        "echo \"fwledger store URL: --store kubo+http://{}\"",
        api_host_port(&args.api)
    ));
    line("# then start it:  LIBP2P_FORCE_PNET=1 ipfs daemon");
    Ok(s)
}

/// `HOST:PORT` of a checked `/ip4|ip6/HOST/tcp/PORT`.
fn api_host_port(api: &str) -> String {
    let parts: Vec<&str> = api.split('/').collect();
    match parts.as_slice() {
        ["", "ip6", host, "tcp", port] => format!("[{host}]:{port}"),
        ["", _, host, "tcp", port] => format!("{host}:{port}"),
        _ => api.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_keys_parse_strictly() {
        let good = format!("{SWARM_KEY_HEADER}\n/base16/\n{}\n", "ab".repeat(32));
        assert_eq!(parse_swarm_key(&good).unwrap(), [0xab; 32]);
        assert!(parse_swarm_key(&good.replace("1.0.0", "2.0.0")).is_err());
        assert!(parse_swarm_key(&good.replace("/base16/", "/base64/")).is_err());
        assert!(parse_swarm_key(&good.replace(&"ab".repeat(32), &"ab".repeat(31))).is_err());
        assert!(parse_swarm_key(&format!("{good}extra\n")).is_err());
        assert!(parse_swarm_key("").is_err());
    }

    #[test]
    fn peers_must_name_a_tcp_address_and_a_peer_id() {
        let id = "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf";
        let (peer, addr) = check_peer(&format!("/ip4/192.168.1.10/tcp/4001/p2p/{id}")).unwrap();
        assert_eq!(
            (peer.as_str(), addr.as_str()),
            (id, "/ip4/192.168.1.10/tcp/4001")
        );
        for bad in [
            "/ip4/192.168.1.10/tcp/4001".to_string(),
            format!("/ip4/192.168.1.10/udp/4001/quic-v1/p2p/{id}"),
            format!("/ip4/192.168.1.300/tcp/4001/p2p/{id}"),
            format!("/ip4/192.168.1.10/tcp/port/p2p/{id}"),
            format!("/ip4/1.2.3.4/tcp/1/p2p/{id}'; rm -rf /"),
            "ip4/1.2.3.4/tcp/1".to_string(),
        ] {
            assert!(check_peer(&bad).is_err(), "{bad}");
        }
        assert!(check_listen("--listen", "/ip4/127.0.0.1/tcp/0").unwrap());
        assert!(!check_listen("--listen", "/ip4/0.0.0.0/tcp/4001").unwrap());
        assert!(check_listen("--listen", "/ip4/0.0.0.0/udp/4001/quic-v1").is_err());
        assert!(check_listen("--listen", "/ip4/0.0.0.0/tcp/4001/ws").is_err());
    }

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
