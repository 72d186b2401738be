//! The firmware slots seam: two image slots plus the boot record.
//!
//! `embedded_svc::ota::Ota` erases the whole update slot in `initiate_update` and has no way to
//! read a slot back or keep metadata, so it cannot resume a download after a power loss or hold
//! the installed manifest. The agent therefore talks to this small trait, whose operations map
//! one to one onto ESP-IDF (`esp-idf-svc` `EspOta` / `esp_partition_*` / NVS):
//!
//! | `Slots` | ESP32 (esp-idf-svc) | host (`host::FileSlots`) |
//! |---|---|---|
//! | [`load`](Slots::load) / [`store`](Slots::store) | NVS blob (`EspNvs::set_raw`, committed atomically); a change of `pending` also calls `esp_ota_set_boot_partition` (what `OtaUpdateFinished::activate` does), `confirm` calls `esp_ota_mark_app_valid_cancel_rollback` (`Ota::mark_running_slot_valid`), a rollback `esp_ota_mark_app_invalid_rollback_and_reboot` (`Ota::mark_running_slot_invalid_and_reboot`) | `boot.json`, temp + fsync + rename |
//! | [`len`](Slots::len) | bytes written so far (NVS progress counter) | file length |
//! | [`read`](Slots::read) | `esp_partition_read` | `pread` of `slot_X.bin` |
//! | [`truncate`](Slots::truncate) | `len == 0`: `Ota::initiate_update` (`esp_ota_begin`, erases); `len > 0`: `esp_partition_erase_range` from the next sector | `ftruncate` |
//! | [`append`](Slots::append) | `OtaUpdate::write` (`esp_ota_write`) | `write` |
//! | [`sync`](Slots::sync) | `OtaUpdate::finish` (`esp_ota_end`) | `fsync` |
//!
//! The boot attempt counter of the record plays the role of the ESP-IDF boot loader's
//! `ESP_OTA_IMG_PENDING_VERIFY` → `ESP_OTA_IMG_ABORTED` transition.

use crate::record::{BootRecord, SlotId};

/// Two firmware slots and the persistent boot record.
pub trait Slots {
    /// Storage failure.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reads the boot record; `Ok(None)` on a device that never booted.
    fn load(&mut self) -> Result<Option<BootRecord>, Self::Error>;
    /// Replaces the boot record atomically: after a crash the old or the new one is read.
    fn store(&mut self, record: &BootRecord) -> Result<(), Self::Error>;
    /// Bytes currently held by `slot`.
    fn len(&mut self, slot: SlotId) -> Result<u64, Self::Error>;
    /// Reads from `slot` at `offset`; `Ok(0)` at the end.
    fn read(&mut self, slot: SlotId, offset: u64, buf: &mut [u8]) -> Result<usize, Self::Error>;
    /// Keeps at most the first `len` bytes of `slot` (0 erases it) and returns how many were
    /// kept: a backend that cannot resume returns 0.
    fn truncate(&mut self, slot: SlotId, len: u64) -> Result<u64, Self::Error>;
    /// Appends bytes to `slot`.
    fn append(&mut self, slot: SlotId, data: &[u8]) -> Result<(), Self::Error>;
    /// Makes everything appended to `slot` durable.
    fn sync(&mut self, slot: SlotId) -> Result<(), Self::Error>;
}
