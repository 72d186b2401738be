//! # fwledger-link — what a gateway and its devices say to each other
//!
//! Topic names, the device status report and the provisioning bundle, shared by the gateway
//! service, the Rust device agent and (by specification, `docs/PROTOCOL.md` §"Gateway ↔ device")
//! the C device agent. No IO. The notice a gateway sends is
//! [`fwledger_proto::notice::Notice`](https://docs.rs/fwledger-proto) (CBOR); status reports are
//! JSON so that a C device can write them with `snprintf`.
//!
//! ```
//! use fwledger_link::{topics, DeviceStatus, UpdateState};
//!
//! assert_eq!(topics::notice("lamp-01"), "fwledger/v1/dev/lamp-01/notice");
//! let status = DeviceStatus::idle("1.0.0", 1);
//! let json = serde_json::to_string(&status).unwrap();
//! let back: DeviceStatus = serde_json::from_str(&json).unwrap();
//! assert_eq!(back.state, UpdateState::Idle);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bundle;
mod status;
pub mod topics;

pub use bundle::{Bundle, BundleError, TrustedVendor, BUNDLE_FORMAT};
pub use status::{DeviceStatus, UpdateState, MAX_STATUS_SIZE};

/// Whether `id` is a valid device id: 1–64 characters of `[A-Za-z0-9._-]`. Ids become MQTT topic
/// levels and certificate common names, so wildcards, slashes and spaces are refused.
pub fn valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}
