//! When the store is down: every step answered at once, one probe at a time
//! (docs/operating.md, "When the database goes away").
//!
//! A call that finds the store unreachable ([`StoreError::is_unreachable`]) marks it down.
//! While it is down, store calls fail at once with the same error (the answer is a 503
//! with `Retry-After`), so no request waits out the pool's timeout a second time — not
//! even a second call of the same request. The background task ([`crate::Background`])
//! probes every [`PROBE_EVERY`] with one cheap read; without it, one request in every
//! [`HALF_OPEN_AFTER`] is let through as the probe. Any answer from the store — a
//! conflict or a contended write included — marks it up.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use crate::ports::StoreError;

/// How often the background task probes a store that is down.
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How long a store stays down without a probe before a request is let through as one
/// (when no background task probes).
pub(crate) const HALF_OPEN_AFTER: Duration = Duration::from_secs(2);

/// Whether the store is known to be unreachable.
#[derive(Debug)]
pub(crate) struct StoreHealth {
    down: AtomicBool,
    probing: AtomicBool,
    /// When the last probe started, in milliseconds since `started`.
    last_probe: AtomicU64,
    started: Instant,
    /// Wakes the background task when the store goes down.
    pub(crate) went_down: tokio::sync::Notify,
}

impl Default for StoreHealth {
    fn default() -> Self {
        Self {
            down: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            last_probe: AtomicU64::new(0),
            started: Instant::now(),
            went_down: tokio::sync::Notify::new(),
        }
    }
}

/// What a store call may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The store is up: call it.
    Call,
    /// The store is down and this call is the probe: call it, then [`StoreHealth::probed`].
    Probe,
    /// The store is down: fail at once.
    Refuse,
}

/// The error of a call refused while the store is down.
#[derive(Debug, thiserror::Error)]
#[error("the store is unreachable; answering at once until it is back")]
pub(crate) struct KnownDown;

impl StoreHealth {
    fn elapsed_millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Whether a store call may go ahead now.
    pub(crate) fn admit(&self) -> Admission {
        if !self.is_down() {
            return Admission::Call;
        }
        let since = self
            .elapsed_millis()
            .saturating_sub(self.last_probe.load(Ordering::Acquire));
        if since >= u64::try_from(HALF_OPEN_AFTER.as_millis()).unwrap_or(u64::MAX)
            && self.start_probe()
        {
            Admission::Probe
        } else {
            Admission::Refuse
        }
    }

    /// Takes the one probe slot (none may be in flight); records its start.
    pub(crate) fn start_probe(&self) -> bool {
        let taken = self
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if taken {
            self.last_probe
                .store(self.elapsed_millis(), Ordering::Release);
        }
        taken
    }

    /// Releases the probe slot.
    pub(crate) fn probed(&self) {
        self.probing.store(false, Ordering::Release);
    }

    /// What a call's result says of the store: unreachable, or answering.
    pub(crate) fn observe<T>(&self, result: &Result<T, StoreError>) {
        let unreachable = result.as_ref().is_err_and(StoreError::is_unreachable);
        if unreachable {
            if !self.down.swap(true, Ordering::AcqRel) {
                self.last_probe
                    .store(self.elapsed_millis(), Ordering::Release);
                tracing::warn!(
                    "the store is unreachable: requests are answered at once (503, \
                     Retry-After) until a probe finds it back"
                );
                self.went_down.notify_waiters();
            }
        } else if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("the store answers again");
        }
    }

    /// The error a refused call answers.
    pub(crate) fn refusal() -> StoreError {
        StoreError::unreachable(KnownDown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_refuses_until_an_answer_and_lets_one_probe_through_after_a_while() {
        let health = StoreHealth::default();
        assert_eq!(health.admit(), Admission::Call);
        health.observe::<()>(&Err(StoreError::unavailable("busy")));
        assert_eq!(health.admit(), Admission::Call, "contention is no outage");
        health.observe::<()>(&Err(StoreError::unreachable("connection refused")));
        assert!(health.is_down());
        assert_eq!(health.admit(), Admission::Refuse, "answered at once");
        // Down for a while with no probe (no background task): one request goes through.
        let health = StoreHealth {
            started: Instant::now() - HALF_OPEN_AFTER - Duration::from_millis(1),
            ..StoreHealth::default()
        };
        health.down.store(true, Ordering::Release);
        assert_eq!(health.admit(), Admission::Probe);
        assert_eq!(health.admit(), Admission::Refuse, "one probe at a time");
        health.probed();
        health.observe::<()>(&Err(StoreError::generic("a conflict")));
        assert!(!health.is_down(), "any answer means the store is back");
        assert_eq!(health.admit(), Admission::Call);
    }
}
