//! fwledger content stores.
//!
//! Firmware images are stored and fetched by CID. This crate provides:
//!
//! * [`cid_of_reader`] / [`cid_of_file`]: the CID Kubo's `ipfs add --only-hash` gives a file,
//!   under an import [`Profile`] (`unixfs-v1-2025` by default, or `unixfs-v0-2015`);
//! * the [`ContentStore`] trait: add a file, get its bytes back as a verified stream, pin;
//! * [`EmbeddedStore`] (feature `embedded`, on by default): a local block directory;
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
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// the block, walk and CAR layers serve the backends; a build without any backend leaves them idle
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

#[cfg(feature = "embedded")]
pub use crate::car::{export_car, import_car};
pub use crate::cid::{cid_of_file, cid_of_reader};
#[cfg(feature = "embedded")]
pub use crate::embedded::EmbeddedStore;
pub use crate::error::StoreError;
pub use crate::open::{embedded_dir, open};
pub use crate::profile::Profile;
pub use crate::store::{Added, ContentStore, ContentStream};
