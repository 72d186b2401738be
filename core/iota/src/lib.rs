//! # fwledger-iota — the IOTA Rebased ledger backend of fwledger
//!
//! A [`Ledger`] whose channel messages live on IOTA Rebased as **IOTA Notarization** objects:
//! each message is one transaction of three Move calls to the Notarization package
//! (`notarization::new_state_from_bytes`, `timelock::none`, `locked_notarization::create`; see
//! [`codec`]), and is read back through the GraphQL `events` query, filtered by the event type
//! `PKG::locked_notarization::LockedNotarizationCreated` and the writer's IOTA address, in chain
//! order, with each event's transaction decoded to recover the channel, position and bytes.
//!
//! The ledger is transport only: messages stay signed and hash-chained by the vendor's own
//! Ed25519 keys and are verified by every reader. The IOTA key ([`IotaKey`], `iota/ed25519.key`
//! in the fwledger home, mode 0600) only authorises the transactions.
//!
//! - URL: `iota+https://HOST/graphql?network=testnet&sender=0x…&gas=own` — see
//!   [`IotaConfig::parse`].
//! - Ordering: a reader delivers position N only after N−1. The first transaction for a
//!   position wins; later ones for the same position are duplicates (the losing writer gets
//!   [`LedgerError::Conflict`]); a position missing while later ones exist is a gap, reported as
//!   [`LedgerError::Corrupt`] when a reader reaches it — never skipped, never reordered.
//! - Following: [`Ledger::wait`] listens to the GraphQL `events` **subscription**
//!   ([`subscribe`], WebSocket `graphql-transport-ws`, resumed with `startAfter`) and on each
//!   wake-up runs the same `events` query from the last cursor as every read, so a follow
//!   resumes exactly where it stopped after a dropped connection; without subscriptions (or
//!   while reconnecting) it polls that query.
//! - Gas: the vendor's own coins, a sponsor key that co-signs, or an IOTA gas station
//!   ([`GasMode`]); [`IotaLedger::estimate`] dry-runs a publish and returns its [`Cost`].
//! - Feature `simulator`: the `simulator` module, a **loopback GraphQL + gas-station simulator** for
//!   tests. It is not an IOTA node and proves nothing about the real network's behaviour
//!   beyond the recorded responses it is checked against.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod config;
pub mod keys;
pub mod rpc;
#[cfg(feature = "simulator")]
pub mod schema;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod subscribe;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fwledger_ledger::{ChannelId, Ledger, LedgerError, StoredMessage};
use iota_sdk::types::{Address, ObjectReference, Transaction};
use iota_sdk_transaction_builder::{GasStation, TransactionBuilder};

pub use codec::MAX_IOTA_MESSAGE;
pub use config::{GasMode, IotaConfig, Network};
pub use keys::IotaKey;
pub use rpc::{GasSummary, Rpc, RpcTimeouts};
pub use subscribe::StreamState;

/// The IOTA GraphQL schema bundled with `iota-sdk` 3.0.0-rc.1 (`iota-sdk-graphql-client-build`),
/// which the simulator validates every query against.
#[cfg(feature = "simulator")]
pub const IOTA_GRAPHQL_SCHEMA: &str = include_str!("../schema/iota-graphql.graphql");

/// What went wrong talking to IOTA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IotaError {
    /// The ledger URL or an option is unusable.
    #[error("IOTA ledger configuration: {0}")]
    Config(String),
    /// A key file is missing or malformed.
    #[error("IOTA key: {0}")]
    Key(String),
    /// The node or gas station could not be reached in time.
    #[error("{0}")]
    Unavailable(String),
    /// The node answered with an error or something malformed.
    #[error("IOTA GraphQL: {0}")]
    Rpc(String),
    /// The transaction was (or would be) rejected.
    #[error("IOTA transaction rejected: {0}")]
    Execution(String),
    /// The paying account has no gas.
    #[error("{0}")]
    NoGas(String),
}

impl From<IotaError> for LedgerError {
    fn from(e: IotaError) -> Self {
        match e {
            IotaError::Config(_) | IotaError::Key(_) => LedgerError::Unsupported(e.to_string()),
            other => LedgerError::Unavailable(other.to_string()),
        }
    }
}

/// The cost of one publish, in nanos (1 IOTA = 10^9 nanos), from a dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// The dry run's gas costs.
    pub gas: GasSummary,
    /// The reference gas price used.
    pub gas_price: u64,
    /// The budget a publish would set.
    pub budget: u64,
    /// Bytes of the message.
    pub message_size: usize,
}

impl Cost {
    /// What the payer is charged: computation + storage − rebate.
    pub fn net(&self) -> i128 {
        i128::from(self.gas.computation) + i128::from(self.gas.storage)
            - i128::from(self.gas.rebate)
    }
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let iota = |n: i128| {
            format!(
                "{}.{:09} IOTA",
                n / 1_000_000_000,
                (n % 1_000_000_000).abs()
            )
        };
        write!(
            f,
            "{} (computation {} + storage {} - rebate {} nanos; gas price {}; budget {}; \
             message {} bytes)",
            iota(self.net()),
            self.gas.computation,
            self.gas.storage,
            self.gas.rebate,
            self.gas_price,
            iota(i128::from(self.budget)),
            self.message_size
        )
    }
}

/// Something odd on the ledger that readers step around or stop at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anomaly {
    /// A second transaction for a position already taken: ignored (the first one wins).
    Duplicate {
        /// The channel.
        channel: ChannelId,
        /// The position.
        seq: u64,
        /// The ignored transaction.
        digest: String,
    },
    /// A transaction of the Notarization event that does not carry an fwledger message.
    Foreign {
        /// The transaction.
        digest: String,
        /// Why it was not taken.
        reason: String,
    },
}

#[derive(Default)]
struct ChannelLog {
    /// Contiguous messages `0..len` with their transaction digests.
    messages: Vec<(Vec<u8>, String)>,
    /// Messages above a missing position, held back (never delivered out of order).
    pending: BTreeMap<u64, (Vec<u8>, String)>,
}

#[derive(Default)]
struct SyncState {
    cursor: Option<String>,
    /// Digest of the last transaction seen in the events (the subscription's `startAfter`).
    last_digest: Option<String>,
    channels: HashMap<ChannelId, ChannelLog>,
    anomalies: Vec<Anomaly>,
}

impl SyncState {
    fn ingest(&mut self, channel: ChannelId, seq: u64, message: Vec<u8>, digest: String) {
        let log = self.channels.entry(channel).or_default();
        let len = log.messages.len() as u64;
        if seq < len || log.pending.contains_key(&seq) {
            self.anomalies.push(Anomaly::Duplicate {
                channel,
                seq,
                digest,
            });
        } else if seq == len {
            log.messages.push((message, digest));
            while let Some(next) = log.pending.remove(&(log.messages.len() as u64)) {
                log.messages.push(next);
            }
        } else {
            log.pending.insert(seq, (message, digest));
        }
    }

    fn gap_error(&self, channel: &ChannelId) -> Option<LedgerError> {
        let log = self.channels.get(channel)?;
        let (first, (_, digest)) = log.pending.iter().next()?;
        Some(LedgerError::Corrupt(format!(
            "IOTA channel {}: message {} is missing but message {first} (transaction {digest}) \
             is on the ledger — a gap; nothing after it is delivered",
            hex::encode(channel),
            log.messages.len()
        )))
    }
}

/// Timing of a ledger (tests shorten it).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// GraphQL timeouts.
    pub rpc: RpcTimeouts,
    /// First poll interval of [`Ledger::wait`]; doubles up to `max_poll`.
    pub poll: Duration,
    /// Longest poll interval.
    pub max_poll: Duration,
    /// How long an append waits for its own transaction to show in the events.
    pub confirm: Duration,
    /// First delay before reconnecting a dropped subscription; doubles up to 16×.
    pub reconnect: Duration,
    /// Idle time on the subscription after which a ping is sent (twice: dropped).
    pub keepalive: Duration,
    /// While subscribed, the longest a wait goes without a catch-up read anyway.
    pub resync: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            rpc: RpcTimeouts::default(),
            poll: Duration::from_millis(250),
            max_poll: Duration::from_secs(2),
            confirm: Duration::from_secs(60),
            reconnect: Duration::from_millis(500),
            keepalive: Duration::from_secs(30),
            resync: Duration::from_secs(60),
        }
    }
}

/// The IOTA Rebased ledger.
pub struct IotaLedger {
    config: IotaConfig,
    rpc: Rpc,
    home: PathBuf,
    sender: Address,
    timing: Timing,
    state: tokio::sync::Mutex<SyncState>,
    /// One publish at a time per process (coins are spent by version).
    publish: tokio::sync::Mutex<()>,
    /// The last transaction digest seen, shared with the subscription task.
    seen: Arc<Mutex<Option<String>>>,
    /// The events subscription, started by the first wait.
    follower: Mutex<Option<subscribe::Follower>>,
}

impl std::fmt::Debug for IotaLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IotaLedger({} {} sender {})",
            self.config.endpoint,
            self.config.network.name(),
            self.sender
        )
    }
}

/// Opens an `iota+https://…` / `iota+http://…` ledger URL as a [`Ledger`].
pub fn open(url: &str, home: &Path) -> Result<Arc<dyn Ledger>, LedgerError> {
    Ok(Arc::new(IotaLedger::open(url, home)?))
}

impl IotaLedger {
    /// Opens a ledger URL. Without `sender=` in the URL, the ledger reads (and writes) the
    /// messages of the home's IOTA key, created on first use.
    pub fn open(url: &str, home: &Path) -> Result<Self, IotaError> {
        Self::open_with(url, home, Timing::default())
    }

    /// Like [`open`](Self::open), with the given timing.
    pub fn open_with(url: &str, home: &Path, timing: Timing) -> Result<Self, IotaError> {
        let config = IotaConfig::parse(url)?;
        let sender = match config.sender {
            Some(sender) => sender,
            None => IotaKey::load_or_create(home)?.address(),
        };
        Ok(IotaLedger {
            rpc: Rpc::new(&config.endpoint, timing.rpc)?,
            config,
            home: home.to_path_buf(),
            sender,
            timing,
            state: tokio::sync::Mutex::new(SyncState::default()),
            publish: tokio::sync::Mutex::new(()),
            seen: Arc::new(Mutex::new(None)),
            follower: Mutex::new(None),
        })
    }

    /// The parsed configuration.
    pub fn config(&self) -> &IotaConfig {
        &self.config
    }

    /// The IOTA address whose messages are read.
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// The GraphQL client.
    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// What readers stepped around so far (duplicates, foreign transactions).
    pub async fn anomalies(&self) -> Vec<Anomaly> {
        self.state.lock().await.anomalies.clone()
    }

    /// Where the events subscription stands; `None` before the first wait or with
    /// `subscribe=off`.
    pub fn stream_state(&self) -> Option<StreamState> {
        let follower = self.follower.lock().unwrap_or_else(|p| p.into_inner());
        follower.as_ref().map(|f| f.receiver().borrow().state)
    }

    /// The subscription signal, starting (or restarting, if its runtime went away) the task.
    fn follow_signal(&self) -> Option<tokio::sync::watch::Receiver<subscribe::Signal>> {
        let url = self.config.subscription.as_ref()?;
        let mut follower = self.follower.lock().unwrap_or_else(|p| p.into_inner());
        let stale = follower.as_ref().is_some_and(|f| {
            !f.running() && f.receiver().borrow().state != StreamState::Unavailable
        });
        if follower.is_none() || stale {
            *follower = Some(subscribe::Follower::start(
                subscribe::StreamConfig {
                    url: url.clone(),
                    module: format!("{}::locked_notarization", self.config.package),
                    sender: self.sender.to_string(),
                    connect: self.timing.rpc.connect,
                    reconnect: self.timing.reconnect,
                    keepalive: self.timing.keepalive,
                },
                Arc::clone(&self.seen),
            ));
        }
        follower.as_ref().map(|f| f.receiver())
    }

    /// Reads every new event page after the stored cursor. On an error the cursor stays at the
    /// last fully processed page, so the next call resumes there.
    async fn sync(&self, state: &mut SyncState) -> Result<(), LedgerError> {
        let event_type = codec::event_type(&self.config.package);
        loop {
            let page = self
                .rpc
                .events(&self.sender, &event_type, state.cursor.as_deref(), 50)
                .await?;
            let empty = page.transactions.is_empty();
            for (digest, tx) in page.transactions {
                state.last_digest = Some(digest.clone());
                let carried = tx.and_then(|tx| codec::parse_transaction(&tx, &self.config.package));
                match carried {
                    Ok(c) => state.ingest(c.channel, c.seq, c.message, digest),
                    Err(reason) => state.anomalies.push(Anomaly::Foreign { digest, reason }),
                }
            }
            if let Some(cursor) = page.end_cursor {
                state.cursor = Some(cursor);
            }
            if !empty {
                *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = state.last_digest.clone();
            }
            if !page.has_next_page || empty {
                return Ok(());
            }
        }
    }

    fn key(&self) -> Result<IotaKey, IotaError> {
        let key = IotaKey::load_or_create(&self.home)?;
        if key.address() != self.sender {
            return Err(IotaError::Config(format!(
                "the ledger URL reads the messages of {} but this home's IOTA key is {}; \
                 drop sender= from the URL to publish",
                self.sender,
                key.address()
            )));
        }
        Ok(key)
    }

    fn no_gas(&self, address: &Address, who: &str) -> IotaError {
        let hint = match self.config.network.faucet() {
            Some(faucet) => format!(
                "; request test coins from the {} faucet ({faucet}, POST {{\"FixedAmountRequest\":\
                 {{\"recipient\":\"{address}\"}}}})",
                self.config.network.name()
            ),
            None => "; send IOTA to it, or publish with a sponsor or a gas station".into(),
        };
        IotaError::NoGas(format!(
            "{who} IOTA address {address} has no gas coins on {}{hint}",
            self.config.network.name()
        ))
    }

    /// Gas coins of `owner` worth at least `need` nanos (richest first, at most 16), the
    /// reference gas price and the coins' total; with `strict`, less than `need` is an error.
    async fn coins(
        &self,
        owner: &Address,
        who: &str,
        need: u64,
        strict: bool,
    ) -> Result<(u64, Vec<ObjectReference>, u64), IotaError> {
        let (price, mut coins) = self.rpc.gas(owner).await?;
        if coins.iter().all(|(_, balance)| *balance == 0) {
            return Err(self.no_gas(owner, who));
        }
        coins.sort_by_key(|c| std::cmp::Reverse(c.1));
        let mut total = 0u64;
        let mut chosen = Vec::new();
        for (reference, balance) in coins.into_iter().take(16) {
            if total >= need {
                break;
            }
            total = total.saturating_add(balance);
            chosen.push(reference);
        }
        if strict && total < need {
            return Err(IotaError::NoGas(format!(
                "{who} IOTA address {owner} has {total} nanos, a publish needs up to {need}{}",
                self.config
                    .network
                    .faucet()
                    .map(|f| format!("; request more from the faucet {f}"))
                    .unwrap_or_default()
            )));
        }
        Ok((price, chosen, total))
    }

    fn build(
        &self,
        channel: &ChannelId,
        seq: u64,
        message: &[u8],
        gas: (&Address, Vec<ObjectReference>),
        price: u64,
        budget: u64,
    ) -> Result<Transaction, IotaError> {
        let mut builder = TransactionBuilder::new(self.sender);
        codec::add_message_calls(&mut builder, self.config.package, channel, seq, message);
        if *gas.0 != self.sender {
            builder.sponsor(*gas.0);
        }
        builder.gas(gas.1).gas_price(price).gas_budget(budget);
        builder
            .finish()
            .map_err(|e| IotaError::Execution(format!("cannot build the transaction: {e}")))
    }

    /// The payer for the configured gas mode: its address, who it is, and its key if local.
    fn payer(&self) -> Result<(Address, &'static str, Option<IotaKey>), IotaError> {
        match &self.config.gas {
            GasMode::Own => Ok((self.sender, "the vendor's", None)),
            GasMode::Sponsor { key } => {
                let sponsor = IotaKey::load(key)?;
                Ok((sponsor.address(), "the sponsor's", Some(sponsor)))
            }
            GasMode::Station { .. } => Ok((self.sender, "the gas station's", None)),
        }
    }

    /// Dry-runs the transaction that would carry `message` at `channel`/`seq` and returns its
    /// cost; publishes nothing.
    pub async fn estimate(
        &self,
        channel: &ChannelId,
        seq: u64,
        message: &[u8],
    ) -> Result<Cost, IotaError> {
        if message.len() > MAX_IOTA_MESSAGE {
            return Err(IotaError::Execution(format!(
                "the message is {} bytes, IOTA carries at most {MAX_IOTA_MESSAGE}",
                message.len()
            )));
        }
        let (payer, who, _) = self.payer()?;
        let (price, coins, budget) = match self.config.gas {
            // the station picks the coins; a dry run without gas objects uses a mock coin
            GasMode::Station { .. } => (
                self.rpc.gas(&self.sender).await?.0,
                Vec::new(),
                self.config.max_budget,
            ),
            // as many coins as cover the largest budget, or all there are (up to 16)
            _ => {
                let (price, coins, total) = self
                    .coins(&payer, who, self.config.max_budget, false)
                    .await?;
                (price, coins, total.min(self.config.max_budget))
            }
        };
        let tx = self.build(channel, seq, message, (&payer, coins), price, budget)?;
        let gas = self.rpc.dry_run(&tx).await?;
        let needed = gas.computation.saturating_add(gas.storage);
        let budget = needed
            .saturating_add(needed / 5)
            .max(price.saturating_mul(1000))
            .min(self.config.max_budget);
        Ok(Cost {
            gas,
            gas_price: price,
            budget,
            message_size: message.len(),
        })
    }

    /// Sends the transaction carrying `message` at `channel`/`seq` without checking the
    /// channel's tail first — what a writer that lost a race does. Returns the transaction
    /// digest. [`Ledger::append`] is the checked way.
    pub async fn submit_unchecked(
        &self,
        channel: &ChannelId,
        seq: u64,
        message: &[u8],
    ) -> Result<String, IotaError> {
        let _one = self.publish.lock().await;
        let key = self.key()?;
        let cost = self.estimate(channel, seq, message).await?;
        let (payer, who, sponsor) = self.payer()?;
        match &self.config.gas {
            GasMode::Station { url } => {
                let mut builder = TransactionBuilder::new(self.sender);
                codec::add_message_calls(&mut builder, self.config.package, channel, seq, message);
                builder.gas_price(cost.gas_price).gas_budget(cost.budget);
                let url = iota_sdk_transaction_builder::Url::parse(url)
                    .map_err(|e| IotaError::Config(format!("gas station URL {url:?}: {e}")))?;
                let mut station = GasStation::builder(url.clone())
                    .http_client(rpc::http_client(self.timing.rpc)?);
                if let Ok(token) = std::env::var("FWLEDGER_IOTA_GAS_STATION_TOKEN") {
                    let value = iota_sdk_transaction_builder::HeaderValue::from_str(&format!(
                        "Bearer {token}"
                    ))
                    .map_err(|_| {
                        IotaError::Config(
                            "FWLEDGER_IOTA_GAS_STATION_TOKEN is not a header value".into(),
                        )
                    })?;
                    station =
                        station.header(iota_sdk_transaction_builder::header::AUTHORIZATION, value);
                }
                let station = station.build();
                let signer = key.private().clone();
                let digest = builder
                    .execute_with_gas_sponsor(&station, &signer)
                    .await
                    .map_err(|e| {
                        IotaError::Unavailable(format!("gas station {url} failed: {e}"))
                    })?;
                Ok(digest.to_string())
            }
            _ => {
                let (_, coins, _) = self.coins(&payer, who, cost.budget, true).await?;
                let tx = self.build(
                    channel,
                    seq,
                    message,
                    (&payer, coins),
                    cost.gas_price,
                    cost.budget,
                )?;
                let mut signatures = vec![key.sign(&tx)?];
                if let Some(sponsor) = sponsor {
                    signatures.push(sponsor.sign(&tx)?);
                }
                self.rpc.execute(&tx, &signatures).await
            }
        }
    }
}

#[async_trait::async_trait]
impl Ledger for IotaLedger {
    async fn append(
        &self,
        channel: &ChannelId,
        seq: u64,
        message: &[u8],
    ) -> Result<(), LedgerError> {
        if message.len() > MAX_IOTA_MESSAGE {
            return Err(LedgerError::TooLarge {
                size: message.len(),
                limit: MAX_IOTA_MESSAGE,
            });
        }
        {
            let mut state = self.state.lock().await;
            self.sync(&mut state).await?;
            let len = state
                .channels
                .get(channel)
                .map_or(0, |l| l.messages.len() as u64);
            if seq != len {
                return Err(LedgerError::Conflict {
                    expected: len,
                    got: seq,
                });
            }
        }
        let digest = self.submit_unchecked(channel, seq, message).await?;
        // Wait until the events show our transaction, then check it won the position.
        let deadline = tokio::time::Instant::now() + self.timing.confirm;
        let mut poll = self.timing.poll;
        loop {
            {
                let mut state = self.state.lock().await;
                self.sync(&mut state).await?;
                let log = state.channels.get(channel);
                let len = log.map_or(0, |l| l.messages.len() as u64);
                if let Some(log) = log {
                    if let Some((_, winner)) = log.messages.get(seq as usize) {
                        if *winner == digest {
                            return Ok(());
                        }
                        return Err(LedgerError::Conflict {
                            expected: len,
                            got: seq,
                        });
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LedgerError::Unavailable(format!(
                    "IOTA transaction {digest} was executed but its event did not show within \
                     {:?}; the message may still appear",
                    self.timing.confirm
                )));
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(self.timing.max_poll);
        }
    }

    async fn read(
        &self,
        channel: &ChannelId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, LedgerError> {
        let mut state = self.state.lock().await;
        self.sync(&mut state).await?;
        let Some(log) = state.channels.get(channel) else {
            return Ok(Vec::new());
        };
        if from >= log.messages.len() as u64 {
            if let Some(gap) = state.gap_error(channel) {
                return Err(gap);
            }
            return Ok(Vec::new());
        }
        Ok(log
            .messages
            .iter()
            .enumerate()
            .skip(from as usize)
            .take(limit)
            .map(|(seq, (bytes, _))| StoredMessage {
                seq: seq as u64,
                bytes: bytes.clone(),
            })
            .collect())
    }

    async fn next_seq(&self, channel: &ChannelId) -> Result<u64, LedgerError> {
        let mut state = self.state.lock().await;
        self.sync(&mut state).await?;
        Ok(state
            .channels
            .get(channel)
            .map_or(0, |l| l.messages.len() as u64))
    }

    async fn wait(
        &self,
        channel: &ChannelId,
        from: u64,
        timeout: Duration,
    ) -> Result<bool, LedgerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut poll = self.timing.poll;
        let mut signal = self.follow_signal();
        loop {
            // Seen before the read: a wake-up during the read makes the next wait return.
            let stream = signal.as_mut().map(|s| s.borrow_and_update().state);
            {
                let mut state = self.state.lock().await;
                // An unreachable node while waiting is retried until the timeout.
                match tokio::time::timeout_at(deadline, self.sync(&mut state)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(LedgerError::Unavailable(_))) | Err(_) => {}
                    Ok(Err(e)) => return Err(e),
                }
                let len = state
                    .channels
                    .get(channel)
                    .map_or(0, |l| l.messages.len() as u64);
                if len > from {
                    return Ok(true);
                }
                if let Some(gap) = state.gap_error(channel) {
                    return Err(gap);
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            match (stream, signal.as_mut()) {
                // Subscribed: the next read runs on a wake-up (or a state change), at the
                // latest after `resync`.
                (Some(StreamState::Live), Some(rx)) => {
                    let until = deadline.min(now + self.timing.resync);
                    if let Ok(Err(_)) = tokio::time::timeout_at(until, rx.changed()).await {
                        signal = None; // the task ended: poll
                    }
                }
                // (Re)connecting: poll, but read at once when the subscription is up.
                (Some(StreamState::Connecting), Some(rx)) => {
                    let until = deadline.min(now + poll);
                    if let Ok(Err(_)) = tokio::time::timeout_at(until, rx.changed()).await {
                        signal = None;
                    }
                    poll = (poll * 2).min(self.timing.max_poll);
                }
                _ => {
                    tokio::time::sleep(poll.min(deadline - now)).await;
                    poll = (poll * 2).min(self.timing.max_poll);
                }
            }
        }
    }

    async fn channels(&self) -> Result<Vec<(ChannelId, u64)>, LedgerError> {
        let mut state = self.state.lock().await;
        self.sync(&mut state).await?;
        let mut out: Vec<(ChannelId, u64)> = state
            .channels
            .iter()
            .filter(|(_, l)| !l.messages.is_empty())
            .map(|(c, l)| (*c, l.messages.len() as u64))
            .collect();
        out.sort();
        Ok(out)
    }
}
