//! # fwledger-c — the fwledger C API
//!
//! What C firmware links to check a release on the device itself: verify a vendor-signed
//! manifest (or the gateway notice that carries it) against the vendor root key, stream the image
//! through a verifier that needs no heap, and ask the update policy whether to install. The
//! header `include/fwledger.h` is generated from this crate by cbindgen (`tests/header.rs` keeps
//! the checked-in copy equal to the generated one); `bindings/c/README.md` covers building,
//! installing, `pkg-config`/CMake use and cross-compiling.
//!
//! The crate wraps `fwledger-proto` (built without its `std` feature: no IO, no tokio, no
//! networking) and adds only the boundary: status codes, opaque handles, copying into caller
//! buffers, and a guard on every entry point so that no panic crosses into C. With the default
//! `std` feature the guard is `catch_unwind` and a thread-local keeps the last error message;
//! without it the crate is `no_std` + `alloc` (see the `c-runtime` feature).
//!
//! Conventions, for every function: pointers are checked for NULL (`FWL_ERR_NULL`); handles
//! are freed with their `*_free` function, which accepts NULL; outputs go to caller buffers with
//! explicit lengths; a failed call leaves a message for `fwl_last_error` on the calling thread.
//!
//! The same calls a C device makes, from Rust:
//!
//! ```
//! use fwledger_c::*;
//! use fwledger_proto::ed25519_dalek::SigningKey;
//! use fwledger_proto::keys::{KeyCertificate, Role};
//! use fwledger_proto::manifest::Manifest;
//! use fwledger_proto::sha2::{Digest, Sha256};
//!
//! // The vendor's side (normally `fwledger vendor publish`).
//! let root = SigningKey::from_bytes(&[1; 32]);
//! let release = SigningKey::from_bytes(&[2; 32]);
//! let cert = KeyCertificate {
//!     role: Role::Release,
//!     public_key: release.verifying_key().to_bytes(),
//!     generation: 1,
//!     not_before: 0,
//!     not_after: u64::MAX,
//!     vendor: "acme".into(),
//! }
//! .issue(&root);
//! let image = vec![0x5a; 10_000];
//! let signed = Manifest {
//!     vendor: "acme".into(),
//!     vendor_key: root.verifying_key().to_bytes(),
//!     model: "lamp".into(),
//!     hardware: vec!["rev-b".into()],
//!     version: "1.1.0".parse().unwrap(),
//!     security_version: 1,
//!     size: image.len() as u64,
//!     sha256: Sha256::digest(&image).into(),
//!     cid: "bafkreiexample".into(),
//!     issued: 1_700_000_000,
//!     expires: None,
//!     prerequisite: None,
//!     notes: None,
//! }
//! .sign(&release, &cert);
//! let vendor_key = root.verifying_key().to_bytes();
//!
//! // The device's side.
//! // SAFETY: every pointer is valid for the call; the handle is freed once.
//! unsafe {
//!     let mut manifest = std::ptr::null_mut();
//!     let status = fwl_manifest_verify(
//!         signed.as_ptr(), signed.len(), vendor_key.as_ptr(), vendor_key.len(),
//!         0, 1_700_000_100, &mut manifest,
//!     );
//!     assert_eq!(status, fwl_status::FWL_OK);
//!     let status = fwl_policy_decide(
//!         manifest, c"lamp".as_ptr(), c"rev-b".as_ptr(), c"1.0.0".as_ptr(), 1, 1_700_000_100,
//!     );
//!     assert_eq!(status, fwl_status::FWL_OK);
//!
//!     let mut verifier = fwl_image_verifier::default();
//!     assert_eq!(fwl_image_verifier_init(&mut verifier, manifest), fwl_status::FWL_OK);
//!     for chunk in image.chunks(4096) {
//!         assert_eq!(
//!             fwl_image_verifier_update(&mut verifier, chunk.as_ptr(), chunk.len()),
//!             fwl_status::FWL_OK
//!         );
//!     }
//!     assert_eq!(fwl_image_verifier_finish(&mut verifier), fwl_status::FWL_OK);
//!     fwl_manifest_free(manifest);
//! }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]
// The exported types carry their C names (`fwl_manifest`, `fwl_status`, …), so that the header,
// the Rust source and a debugger all say the same thing.
#![allow(non_camel_case_types)]

extern crate alloc;

// The exported modules, one per group so that rustfmt keeps them in the order the header
// presents them (cbindgen follows declaration order).
pub mod status;

mod last_error;

pub mod manifest;

pub mod notice;

pub mod policy;

pub mod image;

mod args;
mod guard;
#[cfg(all(feature = "c-runtime", not(feature = "std"), not(test)))]
mod runtime;

use core::ffi::{c_char, CStr};

pub use image::*;
pub use last_error::fwl_last_error;
pub use manifest::*;
pub use notice::*;
pub use policy::*;
pub use status::*;

const LIBRARY_VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("the package version contains a NUL"),
    };

/// The library's version, e.g. `"0.1.0"` (static; do not free).
///
/// Thread-safety: safe from any thread.
#[no_mangle]
pub extern "C" fn fwl_library_version() -> *const c_char {
    guard::guard_value(LIBRARY_VERSION.as_ptr(), || LIBRARY_VERSION.as_ptr())
}
