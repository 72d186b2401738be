//! fwledger content stores.
//!
//! Firmware images are stored and fetched by CID. This crate provides:
//!
//! * [`cid_of_reader`] / [`cid_of_file`]: the CID Kubo's `ipfs add --only-hash` gives a file,
//!   under an import [`Profile`] (`unixfs-v1-2025` by default, or `unixfs-v0-2015`);
//! * the [`ContentStore`] trait: add a file, get its bytes back as a verified stream, pin;
//! * [`EmbeddedStore`] (feature `embedded`, on by default): a local block directory;
//! * [`KuboStore`] (feature `kubo`, on by default): a Kubo node's RPC API (`kubo+http://…`);
//! * [`export_car`] / [`import_car`]: CAR v1 files for moving content without a network;
//! * [`open`]: pick a store from a configuration string.
//!
//! Every block read from anywhere is hashed against its CID before any of its bytes are used;
//! bad data ([`StoreError::is_bad_data`]) is reported apart from missing data.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::TryStreamExt;
//! use fwledger_store::{cid_of_file, ContentStore, EmbeddedStore, Profile};
//!
//! let dir = tempfile::tempdir()?;
//! let image = dir.path().join("firmware.bin");
//! std::fs::write(&image, b"hello world")?;
//!
//! let store = EmbeddedStore::open(&dir.path().join("store"))?;
//! let added = store.add_file(&image, Profile::UnixfsV0_2015, None).await?;
//! assert_eq!(added.cid, "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD");
//! assert_eq!(added.cid, cid_of_file(&image, Profile::UnixfsV0_2015)?);
//!
//! let bytes: Vec<Vec<u8>> = store.get(&added.cid, 1 << 20).await?.try_collect().await?;
//! assert_eq!(bytes.concat(), b"hello world");
//! # Ok(())
//! # }
//! ```
//!
//! # Kubo
//!
//! `kubo+http://HOST:PORT` (or `kubo+https://…`) opens a [`KuboStore`] on a Kubo node's RPC
//! API (its `Addresses.API`). The node stores and transports; it is not trusted with the data:
//!
//! * **add** streams the file to `POST /api/v0/add` with every setting of the chosen
//!   [`Profile`] passed explicitly (Kubo 0.42 otherwise takes them from repo config):
//!
//!   | parameter        | `unixfs-v1-2025` | `unixfs-v0-2015` |
//!   |------------------|------------------|------------------|
//!   | `cid-version`    | `1`              | `0`              |
//!   | `raw-leaves`     | `true`           | `false`          |
//!   | `chunker`        | `size-1048576`   | `size-262144`    |
//!   | `hash`           | `sha2-256`       | `sha2-256`       |
//!   | `max-file-links` | `1024`           | `174`            |
//!   | `max-directory-links`, `max-hamt-fanout`, `trickle`, `inline` | `0`, `256`, `false`, `false` | same |
//!
//!   and the CID Kubo answers must equal [`cid_of_file`] under that profile, else
//!   [`StoreError::Malformed`] ("kubo computed another CID"). The file is also pinned.
//! * **get** never uses `cat`: it fetches one block at a time with `block/get` (Kubo asks its
//!   swarm over bitswap when it lacks one) and hashes each against its CID in the same verified,
//!   size-bounded walk as the embedded store.
//! * **has** is `block/stat` with `offline=true` (this node only); **pin** is `pin/add`.
//! * Every request is bounded ([`KuboTimeouts`]: connect, one block, add/pin). A node that cannot
//!   be reached, or a block nobody serves within the timeout, is [`StoreError::Unavailable`];
//!   Kubo's own error `Message` is carried in the error text.
//!
//! For a private swarm (vendor and gateway nodes sharing only a `swarm.key`), run each Kubo with
//! the key in its `IPFS_PATH`, `LIBP2P_FORCE_PNET=1`, an empty `Bootstrap` list, and connect
//! them with `ipfs swarm connect`; see `tests/common/kubo.rs` for a complete setup.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// the block, walk and CAR layers serve the backends; a build without the embedded store leaves
// some of them (CAR, block keys) idle
#![cfg_attr(not(feature = "embedded"), allow(dead_code, unused_imports))]

mod block;
mod car;
mod cid;
mod dagcbor;
mod error;
mod open;
mod pb_guard;
mod profile;
mod store;
mod varint;
mod walk;

#[cfg(feature = "embedded")]
mod atomic_file;
#[cfg(feature = "embedded")]
mod blockdir;
#[cfg(feature = "embedded")]
mod embedded;
#[cfg(feature = "kubo")]
mod kubo;

#[cfg(feature = "embedded")]
pub use crate::car::{export_car, import_car};
pub use crate::cid::{cid_of_file, cid_of_reader};
#[cfg(feature = "embedded")]
pub use crate::embedded::EmbeddedStore;
pub use crate::error::StoreError;
#[cfg(feature = "kubo")]
pub use crate::kubo::{KuboStore, KuboTimeouts};
pub use crate::open::{embedded_dir, open};
pub use crate::profile::Profile;
pub use crate::store::{Added, ContentStore, ContentStream};
