//! The state of the parts the gateway depends on — broker, ledger, content store, disk — and the
//! retry schedule used while one of them fails.
//!
//! Every failing part is retried by the task that needs it, with exponential backoff and jitter
//! ([`Backoff`]), without end and without operator action; [`Health`] records what the user needs
//! to see: since when a part fails, the last error, how many attempts failed in a row and when
//! the next one is due. The web UI (overview), `/api/health` and `/metrics` show it.
//!
//! ```
//! use std::time::Duration;
//! use fwledger_gateway::health::{Backoff, Component, Health};
//!
//! let health = Health::default();
//! let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
//! let wait = backoff.next_delay(0.5);
//! health.failed(Component::Store, "connection refused", Some(wait), 1_700_000_000);
//! let store = health.get(Component::Store);
//! assert!(!store.ok && store.failures == 1);
//! health.recovered(Component::Store, 1_700_000_010);
//! assert!(health.get(Component::Store).ok);
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

/// A part the gateway depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Component {
    /// The MQTT broker (notices to devices, their status reports).
    Broker,
    /// The ledger the vendor channels are read from.
    Ledger,
    /// The content store images are fetched from.
    Store,
    /// The gateway's own disk (repository, follower state).
    Disk,
}

impl Component {
    /// Every component, in display order.
    pub const ALL: [Component; 4] = [
        Component::Broker,
        Component::Ledger,
        Component::Store,
        Component::Disk,
    ];

    /// Its name (`broker`, `ledger`, `store`, `disk`).
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Broker => "broker",
            Component::Ledger => "ledger",
            Component::Store => "store",
            Component::Disk => "disk",
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentHealth {
    /// Which component.
    pub component: Component,
    /// `true` unless its latest use failed.
    pub ok: bool,
    /// `"ok"` or `"failing"` (for readers that prefer a word).
    pub state: &'static str,
    /// Unix seconds since it is in this state (the gateway's start, until something happens).
    pub since: u64,
    /// The error of the latest failure (kept after recovery, until the next one).
    pub last_error: Option<String>,
    /// Failed attempts in a row (0 when ok).
    pub failures: u32,
    /// Unix seconds of the next retry, while failing and a retry is scheduled.
    pub next_retry: Option<u64>,
}

impl ComponentHealth {
    fn new(component: Component, now: u64) -> Self {
        ComponentHealth {
            component,
            ok: true,
            state: "ok",
            since: now,
            last_error: None,
            failures: 0,
            next_retry: None,
        }
    }
}

/// The health of every component; cheap to clone and to update from any task.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Mutex<BTreeMap<Component, ComponentHealth>>>);

impl Health {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<Component, ComponentHealth>) -> T) -> T {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut map)
    }

    /// Marks every component ok as of `now` (the service's start).
    pub fn reset(&self, now: u64) {
        self.with(|map| {
            for c in Component::ALL {
                map.insert(c, ComponentHealth::new(c, now));
            }
        });
    }

    /// Records a failure of `component` (retried after `retry_in`, if known). Returns `true` when
    /// the component was ok before: the caller logs the transition once, not every attempt.
    pub fn failed(
        &self,
        component: Component,
        error: &str,
        retry_in: Option<Duration>,
        now: u64,
    ) -> bool {
        self.with(|map| {
            let entry = map
                .entry(component)
                .or_insert_with(|| ComponentHealth::new(component, now));
            let was_ok = entry.ok;
            if was_ok {
                entry.since = now;
            }
            entry.ok = false;
            entry.state = "failing";
            entry.last_error = Some(error.to_string());
            entry.failures = entry.failures.saturating_add(1);
            entry.next_retry = retry_in.map(|d| now.saturating_add(d.as_secs_f64().ceil() as u64));
            was_ok
        })
    }

    /// Records a success of `component`. Returns `true` when it was failing before.
    pub fn recovered(&self, component: Component, now: u64) -> bool {
        self.with(|map| {
            let entry = map
                .entry(component)
                .or_insert_with(|| ComponentHealth::new(component, now));
            let was_failing = !entry.ok;
            if was_failing {
                entry.since = now;
            }
            entry.ok = true;
            entry.state = "ok";
            entry.failures = 0;
            entry.next_retry = None;
            was_failing
        })
    }

    /// The state of one component (ok since `0` if nothing was ever recorded).
    pub fn get(&self, component: Component) -> ComponentHealth {
        self.with(|map| {
            map.get(&component)
                .cloned()
                .unwrap_or_else(|| ComponentHealth::new(component, 0))
        })
    }

    /// Every component, in [`Component::ALL`] order.
    pub fn snapshot(&self) -> Vec<ComponentHealth> {
        Component::ALL.into_iter().map(|c| self.get(c)).collect()
    }
}

/// Exponential backoff with jitter: the `n`-th wait is drawn from `[d/2, d]` where
/// `d = min(max, base · 2ⁿ)`, so retries of many gateways (or many tasks) spread out but never
/// wait longer than `max`. Sans-IO: the caller passes the random draw.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `base`, never waits longer than `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
            attempt: 0,
        }
    }

    /// The next wait; `random` is a uniform draw from `[0, 1)` (clamped).
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        ceiling / 2 + ceiling.mul_f64(random / 2.0)
    }

    /// The next wait, with a random draw from the thread's generator.
    pub fn next_random(&mut self) -> Duration {
        self.next_delay(rand::random::<f64>())
    }

    /// Failed attempts since the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Back to the first, shortest wait (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Whether an I/O error means the disk (or its quota) is full.
pub fn is_disk_full(error: &std::io::Error) -> bool {
    // ENOSPC, EDQUOT
    error.kind() == std::io::ErrorKind::StorageFull
        || matches!(error.raw_os_error(), Some(28 | 122))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_bounded() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let low: Vec<Duration> = (0..6).map(|_| b.next_delay(0.0)).collect();
        assert_eq!(
            low.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
            [500, 1000, 2000, 4000, 4000, 4000]
        );
        b.reset();
        let high: Vec<Duration> = (0..6).map(|_| b.next_delay(0.999_999)).collect();
        assert!(high.iter().all(|d| *d <= Duration::from_secs(8)));
        assert!(high[5] > Duration::from_millis(7_999));
        assert_eq!(b.attempts(), 6);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..100 {
            let d = b.next_random();
            assert!(d <= Duration::from_secs(60));
        }
        assert_eq!(
            Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).next_delay(f64::NAN),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn transitions_are_reported_once() {
        let h = Health::default();
        h.reset(10);
        assert!(h.failed(
            Component::Ledger,
            "locked",
            Some(Duration::from_secs(2)),
            20
        ));
        assert!(!h.failed(
            Component::Ledger,
            "locked",
            Some(Duration::from_secs(4)),
            22
        ));
        let ledger = h.get(Component::Ledger);
        assert_eq!(
            (ledger.ok, ledger.since, ledger.failures, ledger.next_retry),
            (false, 20, 2, Some(26))
        );
        assert_eq!(ledger.state, "failing");
        assert!(h.recovered(Component::Ledger, 30));
        assert!(!h.recovered(Component::Ledger, 31));
        let ledger = h.get(Component::Ledger);
        assert_eq!((ledger.ok, ledger.since, ledger.failures), (true, 30, 0));
        assert_eq!(ledger.last_error.as_deref(), Some("locked"));
        assert_eq!(h.snapshot().len(), 4);
        assert!(h.get(Component::Broker).ok);
    }

    #[test]
    fn disk_full_is_recognised() {
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(28)));
        assert!(!is_disk_full(&std::io::Error::from_raw_os_error(2)));
    }
}
