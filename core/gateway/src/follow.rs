//! Following one vendor channel: verified messages into the registry, freshness into the
//! channel's state.
//!
//! The follower's position is saved twice: `Subscription::persist_to` writes a working state
//! after every message it ingests, and the gateway copies it to the committed state only once
//! the message is in the registry. A restart resumes from the committed state, so a crash
//! between the two reads the message again (recorded once: releases are unique by channel and
//! sequence number) instead of losing it.

use std::sync::Arc;
use std::time::Duration;

use fwledger::{write_atomic, ChannelItem, Subscription};
use fwledger_proto::channel::{Event, Freshness, Token};

use crate::health::Component;
use crate::registry::{ChannelHealth, EventLevel, NewRelease};
use crate::service::Core;

/// A failure of the follower and the component it is blamed on (the ledger, or the gateway's
/// own disk for its follower state).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    component: Component,
    message: String,
}

impl Failure {
    fn ledger(message: String) -> Self {
        // A full disk can surface through the subscription's own state writes.
        let component = if message.contains("os error 28") || message.contains("No space left") {
            Component::Disk
        } else {
            Component::Ledger
        };
        Failure { component, message }
    }

    fn disk(what: &str, e: &std::io::Error) -> Self {
        let full = if crate::health::is_disk_full(e) {
            "disk full: "
        } else {
            ""
        };
        Failure {
            component: Component::Disk,
            message: format!("{full}{what}: {e}"),
        }
    }
}

fn health(freshness: Freshness) -> ChannelHealth {
    match freshness {
        Freshness::Unknown => ChannelHealth::Unknown,
        Freshness::Fresh { .. } => ChannelHealth::Fresh,
        Freshness::Stale { .. } => ChannelHealth::Stale,
    }
}

fn open(core: &Core, channel: &str) -> Result<Subscription, Failure> {
    let paths = &core.paths;
    let token_path = paths.token(channel);
    let text = std::fs::read_to_string(&token_path)
        .map_err(|e| Failure::disk(&format!("token {}", token_path.display()), &e))?;
    let token = Token::from_text(&text).map_err(|e| Failure::ledger(format!("token: {e}")))?;
    let committed = paths.channel_state(channel);
    let working = paths.channel_working_state(channel);
    match std::fs::read(&committed) {
        Ok(bytes) => {
            write_atomic(&working, &bytes, true).map_err(|e| Failure::disk("follower state", &e))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Err(e) = std::fs::remove_file(&working) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(Failure::disk("follower state", &e));
                }
            }
        }
        Err(e) => {
            return Err(Failure::disk(
                &format!("follower state {}", committed.display()),
                &e,
            ))
        }
    }
    Subscription::new(&token, core.backends.ledger.clone())
        .and_then(|s| s.persist_to(&working))
        .map_err(|e| Failure::ledger(format!("ledger: {e}")))
}

fn commit(core: &Core, channel: &str, subscription: &Subscription) -> Result<(), Failure> {
    let working = core.paths.channel_working_state(channel);
    let bytes = std::fs::read(&working).map_err(|e| Failure::disk("follower state", &e))?;
    write_atomic(&core.paths.channel_state(channel), &bytes, true)
        .map_err(|e| Failure::disk("follower state", &e))?;
    core.registry
        .set_channel_position(
            channel,
            subscription.cursor(),
            subscription.follower().next_seq(),
        )
        .map_err(|e| Failure {
            component: Component::Disk,
            message: format!("registry: {e}"),
        })
}

/// Follows `channel` until the service stops; ledger and disk failures are retried with backoff
/// and jitter, and shown in the component health.
pub(crate) async fn follow(core: Arc<Core>, channel: String) {
    let short = channel.get(..16).unwrap_or(&channel).to_string();
    let vendor = core
        .registry
        .channel(&channel)
        .ok()
        .flatten()
        .map(|c| c.vendor)
        .unwrap_or_default();
    let name = format!("channel {vendor:?} ({short})");
    let mut backoff = core.backoff();
    let mut last_error: Option<String> = None;
    // Ok: the ledger answered (and, with `true`, the follower state was saved too).
    let mut report = |core: &Core, result: Result<bool, &Failure>, retry: Option<Duration>| {
        match result {
            Ok(saved) => {
                core.component_ok(Component::Ledger);
                if saved {
                    core.component_ok(Component::Disk);
                }
            }
            Err(f) => core.component_failed(f.component, &f.message, retry),
        }
        let error = result.err().map(|f| f.message.clone());
        if error == last_error {
            return;
        }
        let _ = core.registry.set_channel_error(&channel, error.as_deref());
        match &error {
            Some(e) => core.log(EventLevel::Warning, &format!("{name}: {e}; retrying")),
            None if last_error.is_some() => {
                core.log(EventLevel::Info, &format!("{name}: reachable again"))
            }
            None => {}
        }
        last_error = error;
    };
    let mut last_health = core
        .registry
        .channel(&channel)
        .ok()
        .flatten()
        .map(|c| c.freshness);
    loop {
        let mut subscription = match open(&core, &channel) {
            Ok(s) => s,
            Err(e) => {
                let wait = backoff.next_random();
                report(&core, Err(&e), Some(wait));
                if !core.pause(wait).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let poll = core.timing.channel_poll;
            let next = tokio::select! {
                _ = core.cancel.cancelled() => return,
                next = tokio::time::timeout(poll + Duration::from_secs(30), subscription.next(Some(poll))) => next,
            };
            match next {
                Ok(Ok(Some(item))) => {
                    handle(&core, &channel, &name, item).await;
                    match commit(&core, &channel, &subscription) {
                        Err(e) => {
                            // Nothing is lost: the message is read again from the committed
                            // position once the state can be saved.
                            let wait = backoff.next_random();
                            report(&core, Err(&e), Some(wait));
                            if !core.pause(wait).await {
                                return;
                            }
                            break;
                        }
                        Ok(()) => {
                            report(&core, Ok(true), None);
                            backoff.reset();
                        }
                    }
                }
                Ok(Ok(None)) => {
                    report(&core, Ok(false), None);
                    backoff.reset();
                }
                Ok(Err(e)) => {
                    let wait = backoff.next_random();
                    report(
                        &core,
                        Err(&Failure::ledger(format!("ledger: {e}"))),
                        Some(wait),
                    );
                    if !core.pause(wait).await {
                        return;
                    }
                }
                Err(_) => {
                    let wait = backoff.next_random();
                    let failure = Failure::ledger("ledger did not answer in time".into());
                    report(&core, Err(&failure), Some(wait));
                    if !core.pause(wait).await {
                        return;
                    }
                }
            }
            let now_health = health(subscription.freshness());
            if last_health != Some(now_health) {
                let _ = core.registry.set_channel_health(&channel, now_health);
                match now_health {
                    ChannelHealth::Stale => core.log(
                        EventLevel::Warning,
                        &format!(
                            "{name} is stale: its latest heartbeat expired (frozen or withheld channel)"
                        ),
                    ),
                    ChannelHealth::Fresh if last_health == Some(ChannelHealth::Stale) => {
                        core.log(EventLevel::Info, &format!("{name} is fresh again"))
                    }
                    _ => {}
                }
                last_health = Some(now_health);
            }
        }
    }
}

async fn handle(core: &Arc<Core>, channel: &str, name: &str, item: ChannelItem) {
    let delivery = match item {
        ChannelItem::Message(delivery) => delivery,
        ChannelItem::Rejected { position, error } => {
            // Authentic-but-unreadable messages are a key problem; the others are attacks or
            // corruption at the ledger.
            let level = if error.advanced() {
                EventLevel::Warning
            } else {
                EventLevel::Error
            };
            core.log(
                level,
                &format!(
                    "{name}: message at ledger position {position} refused ({}): {error}",
                    error.check()
                ),
            );
            return;
        }
    };
    match delivery.event {
        Event::Release { verified, signed } => {
            let m = &verified.manifest;
            let release = NewRelease {
                channel: channel.to_string(),
                seq: delivery.seq,
                vendor: m.vendor.clone(),
                vendor_key: hex::encode(m.vendor_key),
                model: m.model.clone(),
                version: m.version.to_string(),
                security_version: m.security_version,
                hardware: m.hardware.clone(),
                cid: m.cid.clone(),
                sha256: hex::encode(m.sha256),
                size: m.size,
                manifest: signed,
            };
            match core.registry.add_release(&release) {
                Ok((id, new)) => {
                    if new {
                        core.log(
                            EventLevel::Info,
                            &format!(
                                "{name}: release {} {} (security {}, {} bytes) at seq {}",
                                release.model,
                                release.version,
                                release.security_version,
                                release.size,
                                delivery.seq
                            ),
                        );
                    }
                    core.remember_manifest(id, verified.manifest);
                    core.consider_release(id).await;
                }
                Err(e) => core.log(EventLevel::Error, &format!("registry: {e}")),
            }
        }
        Event::Revoke(revocation) => {
            match core.registry.revoke_release(
                channel,
                &revocation.model,
                &revocation.version,
                &revocation.reason,
            ) {
                Ok(ids) => {
                    core.log(
                        EventLevel::Warning,
                        &format!(
                            "{name}: the vendor revoked {} {}: {}{}",
                            revocation.model,
                            revocation.version,
                            revocation.reason,
                            if ids.is_empty() {
                                " (not a release this gateway knows)"
                            } else {
                                ""
                            }
                        ),
                    );
                    core.refresh_devices(Some(&revocation.model)).await;
                }
                Err(e) => core.log(EventLevel::Error, &format!("registry: {e}")),
            }
        }
        Event::Heartbeat(heartbeat) => {
            let _ =
                core.registry
                    .set_channel_heartbeat(channel, heartbeat.time, heartbeat.valid_until);
        }
        Event::Keyload { epoch, admitted } => {
            if admitted {
                core.log(EventLevel::Info, &format!("{name}: new key epoch {epoch}"));
            } else {
                core.log(
                    EventLevel::Error,
                    &format!(
                        "{name}: epoch {epoch} began without a key for this gateway: the vendor \
                         revoked its access"
                    ),
                );
            }
        }
    }
}
