//! Prometheus metrics (`/metrics`, text exposition format 0.0.4).
//!
//! Counters the registry does not hold (notices published, downloads served) live in
//! [`GatewayMetrics`], shared by the service and the HTTPS server; everything else is read from
//! the registry when scraped. [`render`] is sans-IO: it turns a [`Snapshot`] into the text.
//!
//! ```
//! use fwledger_gateway::metrics::{render, GatewayMetrics, Snapshot};
//!
//! let metrics = GatewayMetrics::default();
//! metrics.download_served(1024);
//! let text = render(&Snapshot {
//!     counters: metrics.counters(),
//!     ..Snapshot::default()
//! });
//! assert!(text.contains("fwledger_gateway_download_bytes_total 1024\n"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use tokio::sync::watch;

use crate::registry::{Channel, Device, DeviceUpdate, Release, ReleaseState, UpdateStage};

/// Counters kept by the running gateway. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct GatewayMetrics {
    notices: AtomicU64,
    downloads: AtomicU64,
    download_bytes: AtomicU64,
    mqtt: OnceLock<watch::Receiver<bool>>,
    health: crate::health::Health,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Notices published to devices.
    pub notices_sent: u64,
    /// Image downloads (full or ranged) answered with content.
    pub downloads: u64,
    /// Image bytes sent (as answered: a client that hangs up early counts in full).
    pub download_bytes: u64,
    /// Whether the gateway is connected to its broker (`None`: no MQTT client yet).
    pub mqtt_connected: Option<bool>,
}

impl GatewayMetrics {
    /// Counts a published notice.
    pub fn notice_sent(&self) {
        self.notices.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a download of `bytes` bytes.
    pub fn download_served(&self, bytes: u64) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
        self.download_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Follows the MQTT client's connection state (the first call wins).
    pub fn watch_mqtt(&self, connected: watch::Receiver<bool>) {
        let _ = self.mqtt.set(connected);
    }

    /// The state of the broker, ledger, content store and disk, as the service last saw them.
    pub fn health(&self) -> &crate::health::Health {
        &self.health
    }

    /// The current values.
    pub fn counters(&self) -> Counters {
        Counters {
            notices_sent: self.notices.load(Ordering::Relaxed),
            downloads: self.downloads.load(Ordering::Relaxed),
            download_bytes: self.download_bytes.load(Ordering::Relaxed),
            mqtt_connected: self.mqtt.get().map(|rx| *rx.borrow()),
        }
    }
}

/// Everything one scrape reports.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Registered devices.
    pub devices: Vec<Device>,
    /// Known releases.
    pub releases: Vec<Release>,
    /// Device updates.
    pub updates: Vec<DeviceUpdate>,
    /// Followed channels.
    pub channels: Vec<Channel>,
    /// The service's counters.
    pub counters: Counters,
    /// Resident set size of the process, bytes.
    pub rss_bytes: Option<u64>,
    /// The state of each component the gateway depends on (empty: not reported).
    pub health: Vec<crate::health::ComponentHealth>,
    /// Unix seconds, for ages.
    pub now: u64,
}

/// The resident set size of this process (Linux `/proc/self/status`), if known.
pub fn process_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Escapes a label value (backslash, double quote, line feed).
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Writer(String);

impl Writer {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"{}\"", label(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.header(name, kind, help);
        self.sample(name, &[], value);
    }
}

const UPDATE_STAGES: [UpdateStage; 7] = [
    UpdateStage::Notified,
    UpdateStage::Downloading,
    UpdateStage::Installing,
    UpdateStage::Rebooting,
    UpdateStage::Confirmed,
    UpdateStage::Failed,
    UpdateStage::RolledBack,
];

const RELEASE_STATES: [ReleaseState; 5] = [
    ReleaseState::Pending,
    ReleaseState::Fetching,
    ReleaseState::Verified,
    ReleaseState::Failed,
    ReleaseState::Revoked,
];

/// The text exposition of a snapshot. Every state is listed, with 0 where nothing is in it, so
/// that rates and alerts see the series from the start.
pub fn render(s: &Snapshot) -> String {
    let mut w = Writer(String::with_capacity(4096));
    let online = s.devices.iter().filter(|d| d.online).count();
    w.single(
        "fwledger_gateway_devices",
        "gauge",
        "Registered devices.",
        s.devices.len(),
    );
    w.single(
        "fwledger_gateway_devices_online",
        "gauge",
        "Devices connected to the broker, as far as the gateway knows.",
        online,
    );

    let mut updates: BTreeMap<&str, u64> = UPDATE_STAGES.iter().map(|s| (s.as_str(), 0)).collect();
    for update in &s.updates {
        *updates.entry(update.state.as_str()).or_default() += 1;
    }
    w.header(
        "fwledger_gateway_updates",
        "gauge",
        "Device updates (one per device and release) by state.",
    );
    for (state, count) in &updates {
        w.sample("fwledger_gateway_updates", &[("state", state)], count);
    }

    let mut releases: BTreeMap<&str, u64> =
        RELEASE_STATES.iter().map(|s| (s.as_str(), 0)).collect();
    for release in &s.releases {
        *releases.entry(release.state.as_str()).or_default() += 1;
    }
    w.header(
        "fwledger_gateway_releases",
        "gauge",
        "Releases known to the gateway by state.",
    );
    for (state, count) in &releases {
        w.sample("fwledger_gateway_releases", &[("state", state)], count);
    }

    w.header(
        "fwledger_gateway_channel_position",
        "gauge",
        "Next ledger position the gateway reads on each channel.",
    );
    for c in &s.channels {
        w.sample(
            "fwledger_gateway_channel_position",
            &[("channel", &c.id), ("vendor", &c.vendor)],
            c.cursor,
        );
    }
    w.header(
        "fwledger_gateway_channel_next_seq",
        "gauge",
        "Next channel sequence number expected on each channel.",
    );
    for c in &s.channels {
        w.sample(
            "fwledger_gateway_channel_next_seq",
            &[("channel", &c.id), ("vendor", &c.vendor)],
            c.next_seq,
        );
    }
    w.header(
        "fwledger_gateway_channel_heartbeat_age_seconds",
        "gauge",
        "Age of the latest vendor heartbeat on each channel (absent before the first).",
    );
    for c in &s.channels {
        if let Some(time) = c.heartbeat_time {
            w.sample(
                "fwledger_gateway_channel_heartbeat_age_seconds",
                &[("channel", &c.id), ("vendor", &c.vendor)],
                s.now.saturating_sub(time),
            );
        }
    }
    w.header(
        "fwledger_gateway_channel_fresh",
        "gauge",
        "1 if the channel's latest heartbeat is valid, 0 if stale or none seen yet.",
    );
    for c in &s.channels {
        let fresh = u8::from(c.freshness == crate::registry::ChannelHealth::Fresh);
        w.sample(
            "fwledger_gateway_channel_fresh",
            &[("channel", &c.id), ("vendor", &c.vendor)],
            fresh,
        );
    }
    w.header(
        "fwledger_gateway_channel_error",
        "gauge",
        "1 if following the channel currently fails.",
    );
    for c in &s.channels {
        w.sample(
            "fwledger_gateway_channel_error",
            &[("channel", &c.id), ("vendor", &c.vendor)],
            u8::from(c.error.is_some()),
        );
    }

    w.single(
        "fwledger_gateway_notices_sent_total",
        "counter",
        "Notices published to devices since the gateway started.",
        s.counters.notices_sent,
    );
    w.single(
        "fwledger_gateway_downloads_total",
        "counter",
        "Image downloads served since the gateway started.",
        s.counters.downloads,
    );
    w.single(
        "fwledger_gateway_download_bytes_total",
        "counter",
        "Image bytes served since the gateway started.",
        s.counters.download_bytes,
    );
    if let Some(connected) = s.counters.mqtt_connected {
        w.single(
            "fwledger_gateway_mqtt_connected",
            "gauge",
            "1 if the gateway is connected to its MQTT broker.",
            u8::from(connected),
        );
    }
    if !s.health.is_empty() {
        w.header(
            "fwledger_gateway_component_up",
            "gauge",
            "1 if the component (broker, ledger, store, disk) works, 0 while it fails and is retried.",
        );
        for h in &s.health {
            w.sample(
                "fwledger_gateway_component_up",
                &[("component", h.component.as_str())],
                u8::from(h.ok),
            );
        }
        w.header(
            "fwledger_gateway_component_failures",
            "gauge",
            "Failed attempts in a row of each component (0 when it works).",
        );
        for h in &s.health {
            w.sample(
                "fwledger_gateway_component_failures",
                &[("component", h.component.as_str())],
                h.failures,
            );
        }
        w.header(
            "fwledger_gateway_component_state_since_seconds",
            "gauge",
            "Unix time since which each component is in its current state.",
        );
        for h in &s.health {
            w.sample(
                "fwledger_gateway_component_state_since_seconds",
                &[("component", h.component.as_str())],
                h.since,
            );
        }
    }
    if let Some(rss) = s.rss_bytes {
        w.single(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            rss,
        );
    }
    w.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ChannelHealth;

    fn channel(id: &str, vendor: &str) -> Channel {
        Channel {
            id: id.into(),
            vendor: vendor.into(),
            vendor_key: "00".repeat(32),
            cursor: 7,
            next_seq: 3,
            freshness: ChannelHealth::Fresh,
            heartbeat_time: Some(100),
            heartbeat_valid_until: Some(200),
            last_message: None,
            error: None,
            added: 0,
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_state_and_channel_is_reported() {
        let metrics = GatewayMetrics::default();
        metrics.notice_sent();
        metrics.download_served(10);
        metrics.download_served(5);
        let (_tx, rx) = watch::channel(true);
        metrics.watch_mqtt(rx);
        let text = render(&Snapshot {
            channels: vec![channel("c1", "ac\"me")],
            counters: metrics.counters(),
            rss_bytes: Some(4096),
            now: 130,
            ..Snapshot::default()
        });
        for line in [
            "fwledger_gateway_devices 0",
            "fwledger_gateway_updates{state=\"rolled_back\"} 0",
            "fwledger_gateway_releases{state=\"verified\"} 0",
            "fwledger_gateway_channel_position{channel=\"c1\",vendor=\"ac\\\"me\"} 7",
            "fwledger_gateway_channel_heartbeat_age_seconds{channel=\"c1\",vendor=\"ac\\\"me\"} 30",
            "fwledger_gateway_channel_fresh{channel=\"c1\",vendor=\"ac\\\"me\"} 1",
            "fwledger_gateway_notices_sent_total 1",
            "fwledger_gateway_downloads_total 2",
            "fwledger_gateway_download_bytes_total 15",
            "fwledger_gateway_mqtt_connected 1",
            "process_resident_memory_bytes 4096",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line belongs to a declared metric.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap_or_default();
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }

    #[test]
    fn rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_rss_bytes().is_some_and(|b| b > 0));
        }
    }
}
