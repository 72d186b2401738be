//! Which release a device should be offered — a pure decision over what the registry knows.
//!
//! The gateway offers a device the newest verified release of its model and hardware that the
//! update policy accepts for what the device last reported (version, security version). An
//! unknown version is not checked: the device decides for itself when the notice arrives.

use std::sync::Arc;

use fwledger_proto::manifest::Manifest;
use fwledger_proto::notice::Notice;
use fwledger_proto::policy::{check, PartialState};
use fwledger_proto::Version;

use crate::registry::{Device, Release};

/// A verified release and its (already verified) manifest.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The release.
    pub release: Release,
    /// Its manifest.
    pub manifest: Arc<Manifest>,
}

/// The offer for `device` among `offers` at time `now`: the highest version that passes the
/// policy check (model, hardware, security version, expiry, newer, prerequisite).
pub fn choose<'a>(offers: &'a [Offer], device: &Device, now: u64) -> Option<&'a Offer> {
    choose_where(offers, device, now, |_| true)
}

/// [`choose`] among the offers `allowed` lets through (a staged rollout's gate).
pub fn choose_where<'a>(
    offers: &'a [Offer],
    device: &Device,
    now: u64,
    allowed: impl Fn(&Offer) -> bool,
) -> Option<&'a Offer> {
    let version: Option<Version> = device.version.as_deref().and_then(|v| v.parse().ok());
    let target = PartialState {
        model: Some(&device.model),
        hardware: Some(&device.hardware),
        version: version.as_ref(),
        security_version: device.security_version,
    };
    offers
        .iter()
        .filter(|o| allowed(o) && check(&o.manifest, &target, Some(now)).is_ok())
        .max_by(|a, b| {
            a.manifest
                .version
                .cmp(&b.manifest.version)
                .then(a.release.id.cmp(&b.release.id))
        })
}

/// The notice for a release: the vendor-signed manifest, unchanged, and the download URL.
pub fn notice(release: &Release, http_url: &str, now: u64) -> Notice {
    Notice {
        manifest: release.manifest.clone(),
        url: download_url(http_url, &release.sha256),
        gateway_time: Some(now),
    }
}

/// `{http_url}/fw/{sha256}`.
pub fn download_url(http_url: &str, sha256: &str) -> String {
    format!("{}/fw/{sha256}", http_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ReleaseState;

    fn manifest(version: &str, security: u64, hardware: &[&str], expires: Option<u64>) -> Manifest {
        Manifest {
            vendor: "acme".into(),
            vendor_key: [0; 32],
            model: "lamp".into(),
            hardware: hardware.iter().map(|h| h.to_string()).collect(),
            version: version.parse().expect("version"),
            security_version: security,
            size: 1,
            sha256: [0; 32],
            cid: "bafy".into(),
            issued: 0,
            expires,
            prerequisite: None,
            notes: None,
        }
    }

    fn offer(id: i64, m: Manifest) -> Offer {
        Offer {
            release: Release {
                id,
                channel: "c".into(),
                seq: 0,
                vendor: "acme".into(),
                vendor_key: String::new(),
                model: m.model.clone(),
                version: m.version.to_string(),
                security_version: m.security_version,
                hardware: m.hardware.clone(),
                cid: m.cid.clone(),
                sha256: "ab".repeat(32),
                size: 1,
                manifest: vec![],
                state: ReleaseState::Verified,
                reason: None,
                path: None,
                received: 0,
                updated: 0,
            },
            manifest: Arc::new(m),
        }
    }

    fn device(version: Option<&str>, security: u64) -> Device {
        Device {
            id: "d".into(),
            mac: String::new(),
            model: "lamp".into(),
            hardware: "rev-b".into(),
            version: version.map(String::from),
            sha256: None,
            security_version: security,
            added: 0,
            last_seen: None,
            online: false,
            notice_release: None,
            group: None,
        }
    }

    #[test]
    fn newest_acceptable_release_is_offered() {
        let offers = vec![
            offer(1, manifest("1.1.0", 1, &["rev-b"], None)),
            offer(2, manifest("1.3.0", 1, &["rev-a"], None)),
            offer(3, manifest("1.2.0", 1, &["rev-b"], None)),
            offer(4, manifest("1.4.0", 0, &["rev-b"], None)),
            offer(5, manifest("1.5.0", 1, &["rev-b"], Some(10))),
        ];
        let chosen = |d: &Device| choose(&offers, d, 100).map(|o| o.release.id);
        // 1.3.0 is for other hardware, 1.4.0 would roll back the security version, 1.5.0 expired.
        assert_eq!(chosen(&device(Some("1.0.0"), 1)), Some(3));
        assert_eq!(chosen(&device(None, 1)), Some(3));
        assert_eq!(chosen(&device(Some("1.2.0"), 1)), None);
        assert_eq!(chosen(&device(Some("1.0.0"), 0)), Some(4));
    }

    #[test]
    fn urls() {
        assert_eq!(download_url("https://h:1/", "ab"), "https://h:1/fw/ab");
    }
}
