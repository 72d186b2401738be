//! The agent: boot (switch, self-check, confirm or roll back), then serve notices.
//!
//! No IO of its own: everything goes through [`Platform`]; the protocol decisions come from
//! `fwledger-proto` (`verify_manifest`, `policy::decide`, `ImageVerifier`).

use std::time::{Duration, Instant};

use embedded_svc::http::client::Client as HttpClient;
use embedded_svc::http::Method;
use embedded_svc::io::{Error as _, ErrorKind};
use embedded_svc::mqtt::client::{Client as _, Publish as _, QoS};
use fwledger_link::{topics, DeviceStatus, UpdateState};
use fwledger_proto::ed25519_dalek::VerifyingKey;
use fwledger_proto::sha2::{Digest, Sha256};
use fwledger_proto::{
    policy, verify_manifest, ImageError, ImageVerifier, Manifest, ManifestError, Notice,
    TrustAnchor, VerifiedManifest, Version,
};

use crate::error::{AgentError, FailureKind, PlatformError, UpdateFailure};
use crate::fault::FaultPoint;
use crate::link::{EventPump, MqttEvent, PumpStatus};
use crate::platform::{image_self_check, Platform, Shutdown};
use crate::record::{BootRecord, DownloadRecord, ImageInfo, Report, SlotId, RECORD_FORMAT};
use crate::slots::Slots;

/// Who the device is and whom it trusts (from its provisioning bundle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Device id (certificate CN, MQTT client id, topic level).
    pub device_id: String,
    /// Device model.
    pub model: String,
    /// Hardware revision.
    pub hardware: String,
    /// Vendor root public keys whose releases the device accepts.
    pub vendor_keys: Vec<[u8; 32]>,
}

/// Tunables of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How often the device asks the gateway for the current notice (self validation), besides
    /// once per connect.
    pub check_interval: Duration,
    /// Boots an unconfirmed image gets before the device rolls back.
    pub max_boot_attempts: u32,
    /// A download must reach this average rate (bytes/s) beyond `download_grace`, or it is
    /// abandoned as stalled (slow-retrieval attack).
    pub min_download_rate: u64,
    /// Time every download gets regardless of its size.
    pub download_grace: Duration,
    /// Requests per download attempt (each resumes with a Range request).
    pub download_requests: u32,
    /// After a network failure, the release is retried (resuming) no sooner than this.
    pub retry_after: Duration,
    /// Whether `http://` download URLs are accepted (loopback demos only).
    pub allow_plain_http: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            check_interval: Duration::from_secs(60),
            max_boot_attempts: 3,
            min_download_rate: 1024,
            download_grace: Duration::from_secs(60),
            download_requests: 4,
            retry_after: Duration::from_secs(30),
            allow_plain_http: false,
        }
    }
}

/// Why [`Agent::serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// [`Shutdown::trigger`] was called.
    Shutdown,
    /// A new image is pending: restart the device (the host re-initializes from its state).
    Reboot,
}

const POLL: Duration = Duration::from_millis(100);

/// A booted device agent.
pub struct Agent<P: Platform> {
    platform: P,
    identity: Identity,
    settings: Settings,
    record: BootRecord,
    notice_topic: String,
    status_topic: String,
    check_topic: String,
    /// A release that failed on the network, and when to try it again.
    retry: Option<(String, Instant)>,
}

/// Boots and serves until `shutdown`, rebooting (with a fresh platform from `platform`) whenever
/// an update is pending. On ESP32 `platform` runs once: the reboot is `esp_restart`.
pub fn run<P, F>(
    mut platform: F,
    identity: &Identity,
    settings: &Settings,
    shutdown: &Shutdown,
) -> Result<(), AgentError>
where
    P: Platform,
    F: FnMut() -> Result<P, PlatformError>,
{
    loop {
        let mut agent = Agent::boot(platform()?, identity.clone(), settings.clone())?;
        match agent.serve(shutdown)? {
            Exit::Shutdown => return Ok(()),
            Exit::Reboot => continue,
        }
    }
}

fn storage<E: std::fmt::Display>(e: E) -> AgentError {
    AgentError::Storage(e.to_string())
}

impl<P: Platform> Agent<P> {
    /// Boots: loads the record (a fresh device starts from its factory image), lets the boot
    /// loader switch to a pending slot, self-checks an unconfirmed image and confirms it or rolls
    /// back, then verifies the image it runs.
    pub fn boot(
        mut platform: P,
        identity: Identity,
        settings: Settings,
    ) -> Result<Self, AgentError> {
        let record = match platform.slots().load().map_err(storage)? {
            Some(record) => record,
            None => {
                let mut record = BootRecord::factory(platform.factory_image()?);
                record.normalize();
                platform.slots().store(&record).map_err(storage)?;
                record
            }
        };
        if record.format != RECORD_FORMAT {
            return Err(AgentError::Storage(format!(
                "boot record format {} is not {RECORD_FORMAT}",
                record.format
            )));
        }
        let id = &identity.device_id;
        let mut agent = Agent {
            notice_topic: topics::notice(id),
            status_topic: topics::status(id),
            check_topic: topics::check(id),
            platform,
            identity,
            settings,
            record,
            retry: None,
        };
        if agent.record.switch_to_pending() {
            agent.platform.fault(FaultPoint::SwitchWrite);
            agent.store()?;
            agent.platform.fault(FaultPoint::AfterSwitch);
        }
        if !agent.record.confirmed {
            agent.record.boot_attempts += 1;
            agent.platform.fault(FaultPoint::AttemptWrite);
            agent.store()?;
            agent.platform.fault(FaultPoint::DuringSelfCheck);
            let verdict = agent.self_check();
            match verdict {
                Ok(()) => {
                    agent.record.confirm();
                    agent.platform.fault(FaultPoint::ConfirmWrite);
                    agent.store()?;
                    agent.platform.fault(FaultPoint::AfterConfirm);
                }
                Err(reason) => {
                    if !agent.record.roll_back(reason.clone()) {
                        return Err(AgentError::NoBootableImage(reason));
                    }
                    agent.platform.fault(FaultPoint::RollbackWrite);
                    agent.store()?;
                    agent.platform.fault(FaultPoint::AfterRollback);
                }
            }
        }
        agent.verify_running()?;
        Ok(agent)
    }

    fn self_check(&mut self) -> Result<(), String> {
        if self.record.boot_attempts > self.settings.max_boot_attempts {
            return Err(format!(
                "boot-attempts: not confirmed after {} boots",
                self.settings.max_boot_attempts
            ));
        }
        let slot = self.record.active;
        let image = self
            .record
            .running_image()
            .cloned()
            .ok_or_else(|| "self-check: no record of the installed image".to_string())?;
        self.platform
            .self_check(slot, &image)
            .map_err(|m| format!("self-check: {m}"))
    }

    /// The secure-boot step: the image about to run must match its record; if it does not,
    /// boot the other slot's verified image.
    fn verify_running(&mut self) -> Result<(), AgentError> {
        let active = self.record.active;
        let error = match self.record.running_image().cloned() {
            Some(image) => match image_self_check(self.platform.slots(), active, &image, None) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            },
            None => format!("slot {} has no image record", active.label()),
        };
        let other = active.other();
        if let Some(image) = self.record.slot(other).cloned() {
            if self.record.pending.is_none()
                && image.security_version >= self.record.highest_security_version
                && image_self_check(self.platform.slots(), other, &image, None).is_ok()
            {
                self.record.set_slot(active, None);
                self.record.active = other;
                self.record.download = None;
                self.store()?;
                return Ok(());
            }
        }
        Err(AgentError::NoBootableImage(error))
    }

    /// The boot record as it stands.
    pub fn record(&self) -> &BootRecord {
        &self.record
    }

    /// The platform.
    pub fn platform(&mut self) -> &mut P {
        &mut self.platform
    }

    fn store(&mut self) -> Result<(), AgentError> {
        self.record.normalize();
        self.platform.slots().store(&self.record).map_err(storage)
    }

    fn running_version(&self) -> Result<Version, AgentError> {
        let image = self
            .record
            .running_image()
            .ok_or_else(|| AgentError::NoBootableImage("no running image".into()))?;
        image.version.parse().map_err(|_| {
            AgentError::Storage(format!("running version {:?} is invalid", image.version))
        })
    }

    /// The status report for the current state.
    pub fn status(&self) -> DeviceStatus {
        let running = self.record.running_image();
        DeviceStatus {
            state: self.record.report.state,
            version: running.map(|r| r.version.clone()).unwrap_or_default(),
            security_version: self.record.highest_security_version,
            release: self.record.report.release.clone(),
            reason: self.record.report.reason.clone(),
            sha256: running.map(|r| r.sha256.clone()),
            progress: None,
        }
    }

    fn publish_status(&mut self, mqtt: &mut P::Mqtt, progress: Option<u64>) {
        let mut status = self.status();
        status.progress = progress;
        if let Ok(json) = serde_json::to_vec(&status) {
            // A lost report is sent again on the next connect (the record keeps it).
            let _ = mqtt.publish(&self.status_topic, QoS::AtLeastOnce, false, &json);
        }
        self.platform.observe(&status);
    }

    /// Serves until shutdown or until an update is pending (then the caller reboots).
    pub fn serve(&mut self, shutdown: &Shutdown) -> Result<Exit, AgentError> {
        let mut backoff = Duration::from_millis(500);
        loop {
            if shutdown.is_triggered() {
                return Ok(Exit::Shutdown);
            }
            let (mut mqtt, events) = match self.platform.connect_mqtt() {
                Ok(session) => session,
                Err(_) => {
                    sleep_unless(shutdown, backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            let exit = self.session(&mut mqtt, &events, shutdown);
            self.platform.close_mqtt(mqtt, events);
            if let Some(exit) = exit? {
                return Ok(exit);
            }
            sleep_unless(shutdown, backoff);
        }
    }

    fn session(
        &mut self,
        mqtt: &mut P::Mqtt,
        events: &EventPump,
        shutdown: &Shutdown,
    ) -> Result<Option<Exit>, AgentError> {
        let mut connected = false;
        let mut last_check = Instant::now();
        // A download interrupted by a crash resumes on the first connect after boot.
        let mut resume_at = self.record.download.as_ref().map(|_| Instant::now());
        loop {
            if shutdown.is_triggered() {
                return Ok(Some(Exit::Shutdown));
            }
            match events.recv(POLL) {
                Ok(MqttEvent::Connected) => {
                    connected = true;
                    // rumqttc and ESP-IDF do not restore subscriptions: subscribe on every CONNACK.
                    let _ = mqtt.subscribe(&self.notice_topic, QoS::AtLeastOnce);
                    self.publish_status(mqtt, None);
                    let _ = mqtt.publish(&self.check_topic, QoS::AtLeastOnce, false, &[]);
                    last_check = Instant::now();
                }
                Ok(MqttEvent::Disconnected) => connected = false,
                Ok(MqttEvent::Message { topic, data }) if topic == self.notice_topic => {
                    if let Some(exit) = self.on_notice(mqtt, &data, shutdown)? {
                        return Ok(Some(exit));
                    }
                    resume_at = self.resume_time();
                }
                Ok(_) | Err(PumpStatus::Timeout) => {}
                Err(PumpStatus::Ended) => return Ok(None),
            }
            if connected && resume_at.is_some_and(|t| Instant::now() >= t) {
                resume_at = None;
                if let Some(download) = self.record.download.clone() {
                    if let Ok(raw) = hex::decode(&download.notice) {
                        self.retry = None;
                        if let Some(exit) = self.on_notice(mqtt, &raw, shutdown)? {
                            return Ok(Some(exit));
                        }
                        resume_at = self.resume_time();
                    }
                }
            }
            if connected && last_check.elapsed() >= self.settings.check_interval {
                // The status goes with every check: a report lost while the gateway was away (it
                // subscribes without a persistent session) reaches it within one interval.
                self.publish_status(mqtt, None);
                let _ = mqtt.publish(&self.check_topic, QoS::AtLeastOnce, false, &[]);
                last_check = Instant::now();
            }
        }
    }

    /// When an interrupted download should be retried, if one is waiting.
    fn resume_time(&self) -> Option<Instant> {
        let download = self.record.download.as_ref()?;
        match &self.retry {
            Some((release, at)) if *release == download.release => Some(*at),
            _ => None,
        }
    }

    /// Handles one notice payload. Returns `Some(Exit::Reboot)` when an image is pending.
    pub fn on_notice(
        &mut self,
        mqtt: &mut P::Mqtt,
        payload: &[u8],
        shutdown: &Shutdown,
    ) -> Result<Option<Exit>, AgentError> {
        if payload.is_empty() {
            return Ok(None);
        }
        let notice = Notice::from_cbor(payload);
        let release = hex::encode(Sha256::digest(match &notice {
            Ok(n) => n.manifest.as_slice(),
            Err(_) => payload,
        }));
        if self.record.is_processed(&release) {
            return Ok(None);
        }
        if let Some((waiting, at)) = &self.retry {
            if *waiting == release && Instant::now() < *at {
                return Ok(None);
            }
        }
        let outcome = match notice {
            Ok(notice) => self.install(mqtt, &notice, payload, &release, shutdown),
            Err(e) => Err(UpdateFailure::refused("notice-format", e)),
        };
        match outcome {
            Ok(()) => Ok(Some(Exit::Reboot)),
            Err(_) if shutdown.is_triggered() => Ok(Some(Exit::Shutdown)),
            Err(failure) => {
                match failure.kind {
                    FailureKind::Network => {
                        self.retry = Some((release, Instant::now() + self.settings.retry_after));
                    }
                    FailureKind::Refused | FailureKind::Storage => {
                        self.retry = None;
                        self.record.mark_processed(&release);
                        if self
                            .record
                            .download
                            .as_ref()
                            .is_some_and(|d| d.release == release)
                        {
                            self.record.download = None;
                        }
                    }
                }
                self.record.report = Report {
                    state: UpdateState::Failed,
                    release: failure.release.clone(),
                    reason: Some(failure.reason()),
                };
                self.store()?;
                self.publish_status(mqtt, None);
                Ok(None)
            }
        }
    }

    fn verify(
        &self,
        signed: &[u8],
        now: Option<u64>,
    ) -> Result<(VerifiedManifest, [u8; 32]), UpdateFailure> {
        let mut best: Option<ManifestError> = None;
        for key in &self.identity.vendor_keys {
            let Ok(root) = VerifyingKey::from_bytes(key) else {
                continue;
            };
            let anchor = TrustAnchor {
                root,
                min_key_generation: self.record.min_key_generation(&hex::encode(key)),
            };
            match verify_manifest(signed, &anchor, now) {
                Ok(verified) => return Ok((verified, *key)),
                // "Not certified by this key" says least; any other error is about the vendor
                // whose key did certify the release key.
                Err(e) => {
                    if best.is_none() || matches!(best, Some(ManifestError::KeyNotCertified)) {
                        best = Some(e);
                    }
                }
            }
        }
        Err(match best {
            Some(e) => UpdateFailure::refused(e.check(), e),
            None => UpdateFailure::refused("vendor-key", "no trusted vendor key"),
        })
    }

    fn install(
        &mut self,
        mqtt: &mut P::Mqtt,
        notice: &Notice,
        raw: &[u8],
        release: &str,
        shutdown: &Shutdown,
    ) -> Result<(), UpdateFailure> {
        let now = self.platform.now();
        let (verified, vendor_key) = self.verify(&notice.manifest, now)?;
        let manifest = &verified.manifest;
        let with_release = |mut f: UpdateFailure| {
            f.release = Some(manifest.version.to_string());
            f
        };
        let installed = self
            .running_version()
            .map_err(|e| with_release(UpdateFailure::storage(e)))?;
        let device = policy::DeviceState {
            model: &self.identity.model,
            hardware: &self.identity.hardware,
            version: &installed,
            security_version: self.record.highest_security_version,
        };
        policy::decide(manifest, &device, now)
            .map_err(|r| with_release(UpdateFailure::refused(r.check(), r)))?;
        let plain_ok = self.settings.allow_plain_http && notice.url.starts_with("http://");
        if !(notice.url.starts_with("https://") || plain_ok) {
            return Err(with_release(UpdateFailure::refused(
                "notice-url",
                "the download URL is not https://",
            )));
        }

        let slot = self.record.active.other();
        let resume = self
            .record
            .download
            .as_ref()
            .is_some_and(|d| d.release == release && d.slot == slot);
        if !resume {
            self.record.download = Some(DownloadRecord {
                release: release.to_string(),
                slot,
                notice: hex::encode(raw),
            });
            self.record.set_slot(slot, None);
            self.record.pending = None;
        }
        self.record.report = Report {
            state: UpdateState::Downloading,
            release: Some(manifest.version.to_string()),
            reason: None,
        };
        self.platform.fault(FaultPoint::AcceptWrite);
        self.store()
            .map_err(|e| with_release(UpdateFailure::storage(e)))?;
        if !resume {
            self.platform
                .slots()
                .truncate(slot, 0)
                .map_err(|e| with_release(UpdateFailure::storage(e)))?;
        }
        let held = if resume {
            self.platform.slots().len(slot).unwrap_or(0)
        } else {
            0
        };
        self.publish_status(mqtt, Some(held));
        self.platform.fault(FaultPoint::AfterAccept);

        self.download(manifest, &notice.url, slot, resume, shutdown)
            .map_err(with_release)?;
        self.platform.fault(FaultPoint::AfterDownload);

        self.record.download = None;
        self.record.set_slot(
            slot,
            Some(ImageInfo {
                version: manifest.version.to_string(),
                security_version: manifest.security_version,
                size: manifest.size,
                sha256: hex::encode(manifest.sha256),
                release: Some(release.to_string()),
                signed_by: Some((hex::encode(vendor_key), verified.certificate.generation)),
            }),
        );
        self.record.pending = Some(slot);
        self.record.report = Report {
            state: UpdateState::Installing,
            release: Some(manifest.version.to_string()),
            reason: None,
        };
        self.platform.fault(FaultPoint::PendingWrite);
        self.store()
            .map_err(|e| with_release(UpdateFailure::storage(e)))?;
        self.platform.fault(FaultPoint::AfterPending);
        self.publish_status(mqtt, None);
        Ok(())
    }

    /// Streams the image into `slot` through the verifier; resumes from what the slot holds.
    fn download(
        &mut self,
        manifest: &Manifest,
        url: &str,
        slot: SlotId,
        resume: bool,
        shutdown: &Shutdown,
    ) -> Result<(), UpdateFailure> {
        let mut resume = resume;
        loop {
            let mut verifier = ImageVerifier::new(manifest.size, manifest.sha256);
            let held = if resume {
                self.rehash(slot, manifest.size, &mut verifier)?
            } else {
                0
            };
            self.fetch(url, slot, manifest.size, &mut verifier, shutdown)?;
            self.platform
                .slots()
                .sync(slot)
                .map_err(UpdateFailure::storage)?;
            match verifier.finish() {
                Ok(()) => return Ok(()),
                // The bytes kept from before may be what went wrong: start over once.
                Err(ImageError::DigestMismatch) if held > 0 => {
                    self.platform
                        .slots()
                        .truncate(slot, 0)
                        .map_err(UpdateFailure::storage)?;
                    resume = false;
                }
                Err(e) => return Err(UpdateFailure::refused(e.check(), e)),
            }
        }
    }

    /// Feeds the bytes already in `slot` to the verifier; returns how many were kept.
    fn rehash(
        &mut self,
        slot: SlotId,
        size: u64,
        verifier: &mut ImageVerifier,
    ) -> Result<u64, UpdateFailure> {
        let slots = self.platform.slots();
        let held = slots.len(slot).map_err(UpdateFailure::storage)?;
        let keep = if held > size { 0 } else { held };
        let keep = slots.truncate(slot, keep).map_err(UpdateFailure::storage)?;
        let mut buf = [0u8; 4096];
        let mut offset = 0;
        while offset < keep {
            let want = usize::try_from(keep - offset)
                .unwrap_or(buf.len())
                .min(buf.len());
            let n = slots
                .read(slot, offset, &mut buf[..want])
                .map_err(UpdateFailure::storage)?;
            if n == 0 {
                return Err(UpdateFailure::storage("slot ended while re-hashing"));
            }
            verifier
                .update(&buf[..n])
                .map_err(|e| UpdateFailure::refused(e.check(), e))?;
            offset += n as u64;
        }
        Ok(keep)
    }

    /// Requests until the verifier holds `size` bytes, the deadline passes or a request fails
    /// for good.
    fn fetch(
        &mut self,
        url: &str,
        slot: SlotId,
        size: u64,
        verifier: &mut ImageVerifier,
        shutdown: &Shutdown,
    ) -> Result<(), UpdateFailure> {
        let rate = self.settings.min_download_rate.max(1);
        let deadline =
            Instant::now() + self.settings.download_grace + Duration::from_secs(size / rate);
        let mut failures = 0;
        loop {
            let before = verifier.received();
            let result = self.fetch_once(url, slot, size, verifier, deadline, shutdown);
            let received = verifier.received();
            let failure = match result {
                Ok(()) if received == size => return Ok(()),
                Ok(()) => UpdateFailure::network(
                    "image-size",
                    ImageError::Truncated {
                        expected: size,
                        received,
                    },
                ),
                Err(f) if f.kind == FailureKind::Network && f.check != "download-stalled" => f,
                Err(f) => return Err(f),
            };
            if received == before {
                failures += 1;
            }
            if failures >= self.settings.download_requests
                || Instant::now() >= deadline
                || shutdown.is_triggered()
            {
                return Err(failure);
            }
            sleep_unless(shutdown, Duration::from_millis(200));
        }
    }

    fn fetch_once(
        &mut self,
        url: &str,
        slot: SlotId,
        size: u64,
        verifier: &mut ImageVerifier,
        deadline: Instant,
        shutdown: &Shutdown,
    ) -> Result<(), UpdateFailure> {
        let start = verifier.received();
        if start == size {
            return Ok(());
        }
        let connection = self
            .platform
            .http_connection()
            .map_err(|e| UpdateFailure::network("download", e))?;
        let mut client = HttpClient::wrap(connection);
        let range = format!("bytes={start}-");
        let mut headers = vec![("Accept-Encoding", "identity")];
        if start > 0 {
            headers.push(("Range", range.as_str()));
        }
        let request = client
            .request(Method::Get, url, &headers)
            .map_err(|e| net_error(e.kind(), &e))?;
        let mut response = request.submit().map_err(|e| net_error(e.kind(), &e))?;
        // A server that ignores Range sends everything: skip what the slot already holds.
        let mut skip = match response.status() {
            200 => start,
            206 => {
                let expected = format!("bytes {start}-");
                if !response
                    .header("Content-Range")
                    .is_some_and(|r| r.starts_with(&expected))
                {
                    return Err(UpdateFailure::network(
                        "download",
                        "the server answered another range",
                    ));
                }
                0
            }
            status => {
                return Err(UpdateFailure::network(
                    "download",
                    format!("HTTP status {status}"),
                ))
            }
        };
        if let Some(length) = response
            .header("Content-Length")
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            if length.saturating_sub(skip) > size - start {
                return Err(UpdateFailure::refused(
                    "image-size",
                    ImageError::TooLong { expected: size },
                ));
            }
        }
        let mut buf = [0u8; 4096];
        let mut mid_download = start < size / 2;
        loop {
            if shutdown.is_triggered() {
                return Err(UpdateFailure::network("download", "shutting down"));
            }
            if Instant::now() >= deadline {
                return Err(stalled());
            }
            let n = match response.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) => return Err(net_error(e.kind(), &e)),
            };
            let mut chunk = &buf[..n];
            if skip > 0 {
                let drop = usize::try_from(skip).unwrap_or(usize::MAX).min(chunk.len());
                skip -= drop as u64;
                chunk = &chunk[drop..];
            }
            if chunk.is_empty() {
                continue;
            }
            // Verify before writing: the slot only ever holds bytes the verifier accepted.
            verifier
                .update(chunk)
                .map_err(|e| UpdateFailure::refused(e.check(), e))?;
            let slots = self.platform.slots();
            slots.append(slot, chunk).map_err(UpdateFailure::storage)?;
            if mid_download && verifier.received() >= size / 2 {
                mid_download = false;
                slots.sync(slot).map_err(UpdateFailure::storage)?;
                self.platform.fault(FaultPoint::MidDownload);
            }
        }
    }
}

fn stalled() -> UpdateFailure {
    UpdateFailure::network("download-stalled", "no progress within the time limit")
}

fn net_error(kind: ErrorKind, e: &dyn std::fmt::Debug) -> UpdateFailure {
    if kind == ErrorKind::TimedOut {
        stalled()
    } else {
        UpdateFailure::network("download", format!("{e:?}"))
    }
}

fn sleep_unless(shutdown: &Shutdown, total: Duration) {
    let end = Instant::now() + total;
    while !shutdown.is_triggered() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(POLL));
    }
}
