//! What the agent needs from the device it runs on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use embedded_svc::http::client::Connection as HttpConnection;
use embedded_svc::mqtt::client::{Client as MqttClient, Publish};
use fwledger_link::DeviceStatus;
use fwledger_proto::sha2::{Digest, Sha256};

use crate::error::PlatformError;
use crate::fault::FaultPoint;
use crate::link::EventPump;
use crate::record::{ImageInfo, SlotId};
use crate::slots::Slots;

/// Bytes that make the host self-check fail, so tests can build an image that must roll back.
pub const SELF_CHECK_FAIL_MARKER: &[u8] = b"FWLEDGER-SELFCHECK-FAIL";

/// The device's services. On ESP32: `EspOta` + NVS behind [`Slots`], `EspMqttClient` /
/// `EspMqttConnection`, `EspHttpConnection`, `esp_restart`; on Linux: [`crate::host`].
pub trait Platform {
    /// Firmware slots and boot record.
    type Slots: Slots;
    /// The client half of an MQTT connection.
    type Mqtt: MqttClient + Publish;
    /// A fresh HTTP(S) connection.
    type Http: HttpConnection;

    /// The slots.
    fn slots(&mut self) -> &mut Self::Slots;
    /// Describes (and on the host, writes into slot A) the image the device shipped with.
    fn factory_image(&mut self) -> Result<ImageInfo, PlatformError>;
    /// Starts an MQTT session: the client and its events. The client reconnects by itself.
    fn connect_mqtt(&mut self) -> Result<(Self::Mqtt, EventPump), PlatformError>;
    /// Ends an MQTT session after sending what was published.
    fn close_mqtt(&mut self, client: Self::Mqtt, events: EventPump) {
        drop(client);
        drop(events);
    }
    /// A new HTTP connection (one per request).
    fn http_connection(&mut self) -> Result<Self::Http, PlatformError>;
    /// Unix time in seconds, if the device has a clock it trusts.
    fn now(&self) -> Option<u64>;
    /// A fault-injection point was reached (tests cut the power here). Default: nothing.
    fn fault(&mut self, _point: FaultPoint) {}
    /// A status report was published (for demos and logs). Default: nothing.
    fn observe(&mut self, _status: &DeviceStatus) {}
    /// Checks a freshly booted image before it is confirmed. Default: [`image_self_check`]
    /// with [`SELF_CHECK_FAIL_MARKER`].
    fn self_check(&mut self, slot: SlotId, image: &ImageInfo) -> Result<(), String> {
        image_self_check(self.slots(), slot, image, Some(SELF_CHECK_FAIL_MARKER))
    }
}

/// Reads `slot` back: it must hold exactly `image` (size and SHA-256) and, if `fail_marker` is
/// given, must not contain those bytes.
pub fn image_self_check<S: Slots + ?Sized>(
    slots: &mut S,
    slot: SlotId,
    image: &ImageInfo,
    fail_marker: Option<&[u8]>,
) -> Result<(), String> {
    let len = slots.len(slot).map_err(|e| e.to_string())?;
    if len != image.size {
        return Err(format!(
            "slot {} holds {len} bytes, the manifest states {}",
            slot.label(),
            image.size
        ));
    }
    let marker = fail_marker.unwrap_or_default();
    let keep = marker.len().saturating_sub(1);
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 4096];
    // The tail of the previous chunk, so that a marker across a chunk boundary is found.
    let mut window: Vec<u8> = Vec::with_capacity(buf.len() + keep);
    let mut offset = 0u64;
    while offset < len {
        let n = slots
            .read(slot, offset, &mut buf)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("slot {} ended early", slot.label()));
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
        if !marker.is_empty() {
            window.extend_from_slice(&buf[..n]);
            if window.windows(marker.len()).any(|w| w == marker) {
                return Err("the image reports a failed self-check".into());
            }
            let cut = window.len().saturating_sub(keep);
            window.drain(..cut);
        }
    }
    if hex::encode(hasher.finalize()) != image.sha256 {
        return Err(format!(
            "slot {} does not match the installed manifest's SHA-256",
            slot.label()
        ));
    }
    Ok(())
}

/// Asks a running agent to stop; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// A handle that is not triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every agent holding a clone to stop.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked.
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
