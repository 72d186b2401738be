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
//! * [`TrustlessStore`] (feature `trustless`, on by default): any IPFS trustless HTTP gateway
//!   (`https://…`), read-only; [`trustless_router`] / [`serve_trustless`] (feature `server`):
//!   serve any store as one;
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
//! `kubo+http://HOST:PORT?timeout=5s` sets the one-block timeout ([`KuboTimeouts::request`]).
//!
//! For a private swarm (vendor and gateway nodes sharing only a `swarm.key`), run each Kubo with
//! the key in its `IPFS_PATH`, `LIBP2P_FORCE_PNET=1`, an empty `Bootstrap` list, TCP transports
//! only, and peer them: `fwledger ipfs swarm-key` makes a key and `fwledger ipfs kubo-config`
//! prints the commands; `tests/common/kubo.rs` is a complete setup for tests.
//!
//! # IPFS Cluster
//!
//! `kubo+http://KUBO:5001?cluster=http://CLUSTER:9094&replication=N` (or `replication=MIN-MAX`,
//! or `-1` for every peer) opens a [`ClusterStore`]: adds and reads are the Kubo node's, exactly
//! as above (so the CID is the one [`cid_of_file`] gives, and every block read is verified);
//! **pin** goes through the cluster's REST API — `POST /pins/{cid}?replication-min=N&
//! replication-max=M&name=fwledger` — and then polls `GET /pins/{cid}` until at least `MIN`
//! cluster peers report `pinned` (bounded by [`KuboTimeouts::transfer`]). The other peers' Kubo
//! nodes fetch the blocks from the adding node over their swarm, so `Vendor::publish` (add, then
//! pin) announces a release only once it is stored on `MIN` nodes. A replication the cluster
//! cannot satisfy, or a cluster that cannot be reached, is [`StoreError::Unavailable`] with the
//! cluster's message. Without `replication`, the cluster's configured factor applies.
//!
//! # Trustless gateways
//!
//! `https://HOST[:PORT][/PATH]` (or `http://…`) opens a [`TrustlessStore`] on an IPFS HTTP
//! gateway speaking the [trustless gateway protocol][spec] — Kubo's gateway, a public one, or
//! a vendor node running [`serve_trustless`] (`fwledger ipfs serve`). It is read-only (`add`
//! and `pin` fail with [`StoreError::ReadOnly`]) and trusted with nothing:
//!
//! * **get** asks for one CAR stream, `GET /ipfs/{cid}?format=car&dag-scope=entity` with
//!   `Accept: application/vnd.ipld.car; version=1; order=dfs; dups=y`. Each section must carry
//!   exactly the block the verified walk needs next (so links are followed only from verified
//!   blocks); it is hashed against its CID before use. Wrong bytes are
//!   [`StoreError::BlockMismatch`]; a foreign, misordered or extra block, trailing data or a
//!   section longer than one block is [`StoreError::Malformed`]; a file larger than the
//!   caller's limit is [`StoreError::TooLarge`]; a stream that ends early or stalls longer than
//!   [`GatewayTimeouts::idle`] is [`StoreError::Unavailable`]. With `dups=n` a repeated block is fetched again as a raw block;
//!   a gateway that does not answer with an `order=dfs` CAR v1 is read block by block
//!   (`?format=raw`, `Accept: application/vnd.ipld.raw`), as is every file with
//!   [`TrustlessStore::blocks_only`].
//! * **has** is `HEAD /ipfs/{cid}?format=raw` with `Cache-Control: only-if-cached` (the
//!   gateway's own blocks; `412`/`404` mean absent).
//!
//! The server ([`trustless_router`]) answers `GET`/`HEAD /ipfs/{cid}` with `format=raw|car` or
//! the matching `Accept`, streams CARs depth-first one block at a time (`dups=n` unless `dups=y`
//! is asked for), serves only blocks that verify, and sends `X-Content-Type-Options: nosniff`
//! and immutable caching; status codes are listed on [`trustless_router`].
//!
//! [spec]: https://specs.ipfs.tech/http-gateways/trustless-gateway/
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
#[cfg(feature = "kubo")]
mod cluster;
#[cfg(feature = "embedded")]
mod embedded;
#[cfg(feature = "kubo")]
mod kubo;
#[cfg(feature = "kubo")]
mod kubo_url;
#[cfg(feature = "trustless")]
mod trustless;
#[cfg(feature = "server")]
mod trustless_server;

#[cfg(feature = "embedded")]
pub use crate::car::{export_car, import_car};
pub use crate::cid::{cid_of_file, cid_of_reader};
#[cfg(feature = "kubo")]
pub use crate::cluster::{ClusterStore, Replication};
#[cfg(feature = "embedded")]
pub use crate::embedded::EmbeddedStore;
pub use crate::error::StoreError;
#[cfg(feature = "kubo")]
pub use crate::kubo::{KuboStore, KuboTimeouts};
pub use crate::open::{embedded_dir, open};
pub use crate::profile::Profile;
pub use crate::store::{Added, ContentStore, ContentStream};
#[cfg(feature = "trustless")]
pub use crate::trustless::{GatewayTimeouts, TrustlessStore};
#[cfg(feature = "server")]
pub use crate::trustless_server::{serve_trustless, trustless_router};
