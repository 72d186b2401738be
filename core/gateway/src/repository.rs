//! The local repository: verified images under `repository/{sha256}`.
//!
//! [`fwledger::fetch`] streams an image from the content store into a hidden temporary file while
//! checking its size and SHA-256 against the vendor-signed manifest, then fsyncs and renames it:
//! a file under its final name is always complete and verified. Temporary files left by a crash
//! are removed at start-up, and releases left in `fetching` are fetched again.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fwledger::FetchError;
use sha2::{Digest, Sha256};

use crate::health::{is_disk_full, Component};
use crate::registry::{EventLevel, Release, ReleaseState};
use crate::service::Core;

/// Removes temporary files a crashed fetch left behind (names starting with a dot).
pub fn remove_partial_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Size and SHA-256 of a file.
fn digest_file(path: &Path) -> std::io::Result<(u64, [u8; 32])> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize().into()))
}

/// Whether an existing repository file matches the release (re-hashed, not trusted by name).
async fn already_present(path: PathBuf, size: u64, sha256: [u8; 32]) -> bool {
    matches!(
        tokio::task::spawn_blocking(move || digest_file(&path)).await,
        Ok(Ok((s, d))) if s == size && d == sha256
    )
}

/// Which component a failed fetch is blamed on, and how it is shown.
fn blame(error: &FetchError) -> (Component, String) {
    match error {
        FetchError::Io(e) if is_disk_full(e) => (Component::Disk, format!("disk full: {e}")),
        FetchError::Io(e) => (Component::Disk, format!("repository: {e}")),
        other => (Component::Store, other.to_string()),
    }
}

/// Fetches a release into the repository, retrying store and disk failures with backoff and
/// jitter; marks it verified (and offers it) or failed (content that does not match its
/// manifest).
pub(crate) async fn fetch_release(core: &Arc<Core>, release: Release) {
    let what = format!("{} {}", release.model, release.version);
    let manifest = match core.manifest(&release) {
        Ok(manifest) => manifest,
        Err(reason) => {
            let _ = core.registry.set_release_state(
                release.id,
                ReleaseState::Failed,
                Some(&reason),
                None,
            );
            core.log(EventLevel::Error, &format!("{what}: {reason}"));
            return;
        }
    };
    if release.state != ReleaseState::Fetching {
        let _ = core
            .registry
            .set_release_state(release.id, ReleaseState::Fetching, None, None);
        core.log(
            EventLevel::Info,
            &format!("{what}: fetching {}", release.cid),
        );
    }
    let dest = core.paths.image(&release.sha256);
    let started = std::time::Instant::now();
    if dest.is_file() && !already_present(dest.clone(), manifest.size, manifest.sha256).await {
        // Not ours to trust: a file under the final name that does not match is replaced.
        let _ = std::fs::remove_file(&dest);
    }
    let mut backoff = core.backoff();
    let mut attempt = 0u32;
    while !dest.is_file() {
        attempt += 1;
        let result = fwledger::fetch(
            core.backends.store.as_ref(),
            &manifest,
            &dest,
            core.timing.stall,
        )
        .await;
        let error = match result {
            Ok(()) => {
                core.component_ok(Component::Store);
                core.component_ok(Component::Disk);
                break;
            }
            Err(e) => e,
        };
        let bad_data = match &error {
            FetchError::Image(_) => true,
            FetchError::Store(e) => e.is_bad_data(),
            _ => false,
        };
        if bad_data {
            let reason = format!("content does not match the manifest: {error}");
            let _ = core.registry.set_release_state(
                release.id,
                ReleaseState::Failed,
                Some(&reason),
                None,
            );
            core.log(EventLevel::Error, &format!("{what}: {reason}"));
            return;
        }
        let (component, shown) = blame(&error);
        let wait = backoff.next_random();
        core.component_failed(component, &shown, Some(wait));
        if component == Component::Disk {
            // The store answered; only the gateway's disk is in the way.
            core.component_ok(Component::Store);
        }
        let _ = core.registry.set_release_state(
            release.id,
            ReleaseState::Fetching,
            Some(&format!("attempt {attempt} failed: {shown}")),
            None,
        );
        if attempt.is_power_of_two() {
            core.log(
                EventLevel::Warning,
                &format!(
                    "{what}: fetch attempt {attempt} failed: {shown}; retrying in {:.1} s",
                    wait.as_secs_f64()
                ),
            );
        }
        if !core.pause(wait).await {
            return;
        }
    }
    let changed =
        core.registry
            .set_release_state(release.id, ReleaseState::Verified, None, Some(&dest));
    if matches!(changed, Ok(true)) {
        core.log(
            EventLevel::Info,
            &format!(
                "{what}: verified ({} bytes, sha256 {}) and stored in {:.1} s",
                manifest.size,
                release.sha256.get(..16).unwrap_or(&release.sha256),
                started.elapsed().as_secs_f64()
            ),
        );
    }
    core.refresh_devices(Some(&release.model)).await;
}
