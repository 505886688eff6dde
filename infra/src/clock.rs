//! Injected time. Production code reads the wall clock through [`Clock`]; tests share one clock
//! between the provider and the apps and move it forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use time::{Duration, OffsetDateTime};

/// The wall clock plus an offset that tests can advance. Cloning shares the offset. A test
/// whose outcome hangs on a few seconds may also [`Clock::freeze`] it: then only `advance`
/// moves it, however slowly the test runs.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
    /// The Unix second the clock stopped at, or zero if it runs.
    frozen_at: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock (offset zero).
    pub fn system() -> Self {
        Self::default()
    }

    /// The current time.
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    pub fn now(&self) -> OffsetDateTime {
        let offset = Duration::seconds(self.offset_secs.load(Ordering::Relaxed));
        let frozen = self.frozen_at.load(Ordering::Relaxed);
        if frozen != 0
            && let Ok(at) = OffsetDateTime::from_unix_timestamp(frozen)
        {
            return at + offset;
        }
        OffsetDateTime::now_utc() + offset
    }

    /// Stops this clock (and every clone of it) at the current second: from now on only
    /// [`Clock::advance`] moves it. Meant for tests.
    #[allow(clippy::disallowed_methods)] // the wall clock's current second, read once
    pub fn freeze(&self) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let _ = self
            .frozen_at
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The current time in whole seconds since the Unix epoch.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Moves this clock (and every clone of it) forward. Meant for tests.
    pub fn advance(&self, by: std::time::Duration) {
        self.offset_secs.fetch_add(secs(by), Ordering::Relaxed);
    }
}

/// A duration in whole seconds, the unit the clock and the stores count in. Saturates at a
/// quarter of `i64::MAX`, so that `now + secs(d)` cannot overflow for any configured value.
pub fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).map_or(i64::MAX / 4, |s| s.min(i64::MAX / 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let clock = Clock::system();
        let shared = clock.clone();
        clock.freeze();
        let at = shared.now();
        // Stopped on a whole second, and there it stays.
        assert_eq!(at.nanosecond(), 0);
        assert_eq!(shared.now(), at);
        clock.advance(std::time::Duration::from_secs(5));
        assert_eq!(shared.unix(), at.unix_timestamp() + 5);
        assert_eq!(shared.now().nanosecond(), 0);
    }

    #[test]
    fn seconds_saturate() {
        assert_eq!(secs(std::time::Duration::from_secs(90)), 90);
        assert_eq!(secs(std::time::Duration::MAX), i64::MAX / 4);
    }

    #[test]
    fn advance_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.unix();
        clock.advance(std::time::Duration::from_secs(3600));
        assert!(other.unix() >= before + 3600);
    }
}
