//! Following a channel: a stream of verified messages that resumes from a stored position.
//!
//! The ledger is untrusted: a message it returns that fails verification (forged, replayed,
//! foreign, out of chain) is reported as [`ChannelItem::Rejected`] and skipped, and the follower
//! keeps waiting for the genuine next message. A ledger can therefore only withhold messages,
//! which the heartbeat freshness check ([`Subscription::freshness`]) detects.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fwledger_ledger::{Ledger, LedgerError};
use fwledger_proto::channel::{
    ChainPosition, Delivery, EpochKeys, FollowError, Follower, FollowerState, Freshness, Heartbeat,
    Token, TokenError,
};
use serde::{Deserialize, Serialize};

use crate::fsutil::{unix_now, write_atomic};

/// How many ledger messages one read fetches.
const READ_BATCH: usize = 64;

/// Why following a channel failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The token is unusable.
    #[error("subscription token: {0}")]
    Token(#[from] TokenError),
    /// The ledger failed (unreachable, busy, corrupt).
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// The stored follower state cannot be read.
    #[error("follower state {path}: {reason}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Filesystem error while saving state.
    #[error("follower state: {0}")]
    Io(#[from] std::io::Error),
}

/// One message read from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelItem {
    /// A verified message.
    Message(Delivery),
    /// A message that was refused (or, for [`FollowError::advanced`] errors, authentic but
    /// unreadable), at a ledger position.
    Rejected {
        /// Ledger position.
        position: u64,
        /// Why.
        error: FollowError,
    },
}

/// A verified view of one channel.
pub struct Subscription {
    ledger: Arc<dyn Ledger>,
    follower: Follower,
    cursor: u64,
    buffered: std::collections::VecDeque<(u64, Vec<u8>)>,
    state_path: Option<PathBuf>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &hex::encode(self.follower.channel()))
            .field("cursor", &self.cursor)
            .field("next_seq", &self.follower.next_seq())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct SavedState {
    channel: String,
    cursor: u64,
    next_seq: u64,
    prev: String,
    latest_epoch: u64,
    keys: String,
    heartbeat: Option<(u64, u64)>,
}

impl Subscription {
    /// Follows the channel a token opens, from its first message.
    pub fn new(token: &Token, ledger: Arc<dyn Ledger>) -> Result<Self, SubscribeError> {
        Ok(Self::with_follower(token.follower(None)?, ledger))
    }

    /// Follows with an already-built follower (e.g. the vendor reading its own channel).
    pub fn with_follower(follower: Follower, ledger: Arc<dyn Ledger>) -> Self {
        Subscription {
            ledger,
            follower,
            cursor: 0,
            buffered: Default::default(),
            state_path: None,
        }
    }

    /// Persists the position to `path` after every message, resuming from it if it exists.
    pub fn persist_to(mut self, path: &Path) -> Result<Self, SubscribeError> {
        if path.exists() {
            let bad = |reason: String| SubscribeError::State {
                path: path.to_path_buf(),
                reason,
            };
            let text = std::fs::read_to_string(path)?;
            let saved: SavedState = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            if saved.channel != hex::encode(self.follower.channel()) {
                return Err(bad("state belongs to another channel".into()));
            }
            let prev = hex::decode(&saved.prev)
                .ok()
                .and_then(|p| <[u8; 32]>::try_from(p).ok())
                .ok_or_else(|| bad("bad prev digest".into()))?;
            let keys = hex::decode(&saved.keys)
                .ok()
                .and_then(|k| EpochKeys::from_cbor(&k).ok())
                .ok_or_else(|| bad("bad epoch keys".into()))?;
            self.follower.restore(&FollowerState {
                position: ChainPosition {
                    seq: saved.next_seq,
                    prev,
                },
                latest_epoch: saved.latest_epoch,
                keys,
                heartbeat: saved
                    .heartbeat
                    .map(|(time, valid_until)| Heartbeat { time, valid_until }),
            });
            self.cursor = saved.cursor;
        }
        self.state_path = Some(path.to_path_buf());
        Ok(self)
    }

    /// The underlying follower.
    pub fn follower(&self) -> &Follower {
        &self.follower
    }

    /// The next ledger position to read.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Freshness from the latest heartbeat, at the system time.
    pub fn freshness(&self) -> Freshness {
        self.follower.freshness(unix_now())
    }

    /// The next item if one is on the ledger already, without waiting.
    pub async fn try_next(&mut self) -> Result<Option<ChannelItem>, SubscribeError> {
        if self.buffered.is_empty() {
            let batch = self
                .ledger
                .read(self.follower.channel(), self.cursor, READ_BATCH)
                .await?;
            self.buffered
                .extend(batch.into_iter().map(|m| (m.seq, m.bytes)));
        }
        let Some((position, bytes)) = self.buffered.pop_front() else {
            return Ok(None);
        };
        let item = match self.follower.ingest(&bytes, Some(unix_now())) {
            Ok(delivery) => ChannelItem::Message(delivery),
            Err(error) => ChannelItem::Rejected { position, error },
        };
        self.cursor = position.saturating_add(1);
        self.save()?;
        Ok(Some(item))
    }

    /// The next item, waiting up to `timeout` for it to be appended (forever with `None`).
    pub async fn next(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<ChannelItem>, SubscribeError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(item) = self.try_next().await? {
                return Ok(Some(item));
            }
            let wait = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Ok(None),
                },
                None => Duration::from_secs(3600),
            };
            self.ledger
                .wait(self.follower.channel(), self.cursor, wait)
                .await?;
        }
    }

    /// Every item currently on the ledger.
    pub async fn drain(&mut self) -> Result<Vec<ChannelItem>, SubscribeError> {
        let mut items = Vec::new();
        while let Some(item) = self.try_next().await? {
            items.push(item);
        }
        Ok(items)
    }

    fn save(&self) -> Result<(), SubscribeError> {
        let Some(path) = &self.state_path else {
            return Ok(());
        };
        let state = self.follower.state();
        let saved = SavedState {
            channel: hex::encode(self.follower.channel()),
            cursor: self.cursor,
            next_seq: state.position.seq,
            prev: hex::encode(state.position.prev),
            latest_epoch: state.latest_epoch,
            keys: hex::encode(state.keys.to_cbor()),
            heartbeat: state.heartbeat.map(|h| (h.time, h.valid_until)),
        };
        let json = serde_json::to_vec_pretty(&saved).map_err(std::io::Error::other)?;
        write_atomic(path, &json, true)?;
        Ok(())
    }
}
