//! # fwledger-device — the device agent
//!
//! Receives release notices from a gateway, verifies the vendor-signed manifest against the
//! vendor keys of its provisioning bundle (never trusting the gateway), streams the image into
//! the inactive slot through `fwledger_proto::ImageVerifier` (resuming with `Range` after an
//! interruption), reboots into it, self-checks and confirms — or rolls back and says why. Every
//! step reports a `fwledger_link::DeviceStatus`; every refusal names the failed check.
//!
//! The agent ([`Agent`], [`agent::run`]) does no IO of its own and uses no async runtime: it
//! talks to a [`Platform`] made of `embedded-svc` traits plus one small seam of its own,
//! [`Slots`], because `embedded_svc::ota::Ota` cannot resume a download or keep metadata.
//!
//! ## On ESP32 (esp-idf-svc)
//!
//! | agent needs | ESP32 | host (feature `host`, default) |
//! |---|---|---|
//! | `Platform::Mqtt` (`embedded_svc::mqtt::client::{Client, Publish}`) | `EspMqttClient` | [`host::HostMqttClient`] (rumqttc, rustls) |
//! | events (`embedded_svc::mqtt::client::Connection`, pumped by [`EventPump`]) | `EspMqttConnection` | [`host::HostMqttConnection`] |
//! | `Platform::Http` (`embedded_svc::http::client::Connection`) | `EspHttpConnection` (with the bundle CA as `server_certificate`) | [`host::HostHttpConnection`] (ureq, rustls) |
//! | [`Slots`] | `EspOta` + `esp_partition_*` + `EspNvs` (see the table in [`slots`]) | [`host::FileSlots`]: `slot_a.bin`, `slot_b.bin`, `boot.json` |
//! | reboot ([`Exit::Reboot`]) | `esp_restart()` | re-initialize from the state directory |
//! | highest `security_version` | eFuse `secure_version`, raised by `esp_ota_mark_app_valid_cancel_rollback` | `boot.json` |
//! | boot attempts | boot loader rollback (`CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`) | counter in `boot.json` |
//!
//! ## Running devices on a host
//!
//! ```no_run
//! use fwledger_device::host::{self, DeviceConfig};
//! use fwledger_device::Shutdown;
//! use fwledger_link::Bundle;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bundle = Bundle::from_json(&std::fs::read("lamp-01.bundle.json")?)?;
//! let shutdown = Shutdown::new();
//! // One thread per device; `mqtt://127.0.0.1:PORT` bundles work without TLS on loopback.
//! let device = host::spawn(DeviceConfig::new(bundle, "/tmp/lamp-01"), shutdown.clone())?;
//! // ... later:
//! shutdown.trigger();
//! device.join().map_err(|_| "device thread panicked")??;
//! # Ok(())
//! # }
//! ```
//!
//! ## Power loss
//!
//! Each step of an install is one atomic write of the [`BootRecord`]; [`FaultPoint`] names the
//! points between them. The host exits abruptly at the point named by
//! `FWLEDGER_DEVICE_CRASH_AT` (see [`host::DeviceConfig::with_env_faults`]); at every point the
//! next boot runs a verified image, the old or the new one.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
mod error;
mod fault;
mod link;
mod platform;
pub mod record;
pub mod slots;

#[cfg(feature = "host")]
pub mod host;

pub use agent::{Agent, Exit, Identity, Settings};
pub use error::{AgentError, FailureKind, PlatformError, UpdateFailure};
pub use fault::{FaultPoint, UnknownFaultPoint};
pub use link::{EventPump, MqttEvent, PumpStatus, MAX_MESSAGE};
pub use platform::{image_self_check, Platform, Shutdown, SELF_CHECK_FAIL_MARKER};
pub use record::{BootRecord, ImageInfo, SlotId};
pub use slots::Slots;
