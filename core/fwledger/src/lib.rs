//! # fwledger — firmware releases over an authenticated ledger channel and IPFS
//!
//! The std side of fwledger: publish, subscribe (follow), fetch and verify, over two small traits
//! — [`Ledger`] (append, read by position, wait) and
//! [`ContentStore`] (add → CID, get CID → verified stream, pin).
//! Every decision about validity is made by the IO-free [`fwledger_proto`] core.
//!
//! ```
//! use fwledger::{Backends, ReleaseSpec, Subscription, ChannelItem, Vendor};
//! use fwledger_proto::channel::{Event, Token};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let home = tempfile::tempdir()?;
//! let backends = Backends::open(home.path(), "embedded", "embedded")?;
//! let mut vendor = Vendor::init(home.path(), "acme", &backends)?;
//!
//! let image = home.path().join("lamp-1.1.0.bin");
//! std::fs::write(&image, b"firmware image bytes")?;
//! let release = vendor
//!     .publish(&image, &ReleaseSpec::new("lamp", &["rev-b"], "1.1.0"), None)
//!     .await?;
//!
//! // A gateway with the subscription token reads and verifies the channel.
//! let token = Token::from_text(&vendor.token(Some("home-hub"))?)?;
//! let mut subscription = Subscription::new(&token, backends.ledger.clone())?;
//! match subscription.try_next().await? {
//!     Some(ChannelItem::Message(d)) => match d.event {
//!         Event::Release { verified, .. } => assert_eq!(verified.manifest.cid, release.cid),
//!         other => panic!("unexpected {other:?}"),
//!     },
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod duration;
pub mod fetch;
mod fsutil;
pub mod report;
pub mod subscribe;
pub mod vendor;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use duration::parse_duration;
pub use fetch::{fetch, FetchError};
pub use fsutil::{unix_now, write_atomic};
pub use fwledger_ledger::{Ledger, LedgerError};
pub use fwledger_proto as proto;
pub use fwledger_store::{ContentStore, Profile, StoreError};
pub use report::ChannelEntry;
pub use subscribe::{ChannelItem, SubscribeError, Subscription};
pub use vendor::{PreparedRelease, Release, ReleaseSpec, Vendor, VendorError};
pub use verify::{verify_release, VerifyError, VerifyOptions};

/// The ledger and content store a node uses.
#[derive(Clone)]
pub struct Backends {
    /// The ledger.
    pub ledger: Arc<dyn Ledger>,
    /// The content store.
    pub store: Arc<dyn ContentStore>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Backends")
    }
}

/// Why the backends could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The ledger URL is unusable.
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// The store URL is unusable.
    #[error("content store: {0}")]
    Store(#[from] StoreError),
}

impl Backends {
    /// Opens the ledger and store named by URLs (`embedded` or empty: under `home`).
    ///
    /// Ledger URLs: `embedded`, `sqlite:PATH`, and with the `iota` feature the IOTA Rebased
    /// ledger, `iota+https://HOST/graphql?…` (see `fwledger_iota::IotaConfig::parse`).
    pub fn open(home: &Path, ledger: &str, store: &str) -> Result<Self, BackendError> {
        Ok(Backends {
            ledger: open_ledger(ledger, home)?,
            store: fwledger_store::open(store, home)?,
        })
    }
}

/// Opens a ledger URL: the IOTA backend for `iota+…` when built with feature `iota`, else
/// [`fwledger_ledger::open`].
pub fn open_ledger(url: &str, home: &Path) -> Result<Arc<dyn Ledger>, LedgerError> {
    #[cfg(feature = "iota")]
    if url.trim().starts_with("iota+") {
        return fwledger_iota::open(url, home);
    }
    fwledger_ledger::open(url, home)
}

/// The default home directory: `$FWLEDGER_HOME`, else `~/.local/share/fwledger`.
pub fn default_home() -> PathBuf {
    if let Some(home) = std::env::var_os("FWLEDGER_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("fwledger")
}
