//! Request rate limits for the machine-facing endpoints (token, revocation, introspection,
//! registration), per client and per address, in memory.
//!
//! Written here rather than taken from `governor`/`tower_governor` because the limits must
//! follow the provider's injected [`infra::Clock`] (so that tests move time instead of
//! sleeping) and be keyed by the *authenticated* client, which only the handler knows:
//! counting a client before its credentials are checked would let anyone spend another
//! client's budget by sending its `client_id`.
//!
//! The algorithm is the sliding-window counter: the count of the current minute plus the
//! previous minute's count weighted by how much of it still lies within the last 60 seconds.
//! It needs two integers per key and never admits more than the limit in any 60 seconds by
//! more than the rounding. The table is bounded ([`MAX_KEYS`]): when it is full, windows that
//! have ended are dropped, and if that is not enough the table starts over (an attacker with
//! more addresses than that gets a fresh budget, never the provider's memory).
//!
//! Limits are per instance: with several instances behind a balancer, a client's budget is the
//! limit times the number of instances it reaches.

use std::collections::HashMap;
use std::sync::Mutex;

/// The window.
const WINDOW: i64 = 60;
/// The most keys remembered at once.
pub const MAX_KEYS: usize = 100_000;

#[derive(Clone, Copy, Debug, Default)]
struct Counter {
    /// The start of the current window (a multiple of [`WINDOW`]).
    start: i64,
    current: u64,
    previous: u64,
}

/// Counters by key.
#[derive(Debug, Default)]
pub struct RateLimiter {
    counters: Mutex<HashMap<String, Counter>>,
}

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request for `key` at `now` if `limit` per minute allows it; otherwise the
    /// seconds to wait before the next one may pass. A limit of 0 means no limit.
    pub fn check(&self, key: &str, limit: u64, now: i64) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let start = now - now.rem_euclid(WINDOW);
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if counters.len() >= MAX_KEYS && !counters.contains_key(key) {
            counters.retain(|_, c| c.start >= start - WINDOW);
            if counters.len() >= MAX_KEYS {
                counters.clear();
            }
        }
        let c = counters.entry(key.to_owned()).or_default();
        if c.start != start {
            c.previous = if c.start == start - WINDOW {
                c.current
            } else {
                0
            };
            c.current = 0;
            c.start = start;
        }
        let elapsed = now - start;
        let weight = WINDOW - elapsed;
        // current + previous × (remaining share of the previous window), in integers.
        let estimate = |current: u64| current * WINDOW as u64 + c.previous * weight as u64;
        if estimate(c.current + 1) <= limit * WINDOW as u64 {
            c.current += 1;
            return Ok(());
        }
        // When will the estimate have room again? Within this window only if the previous
        // window's weight fades enough; otherwise at the latest when this window ends and
        // becomes the previous one.
        let room = limit * WINDOW as u64;
        let wait = (1..=2 * WINDOW)
            .find(|t| {
                let at = elapsed + t;
                if at < WINDOW {
                    (c.current + 1) * WINDOW as u64 + c.previous * (WINDOW - at) as u64 <= room
                } else if at < 2 * WINDOW {
                    WINDOW as u64 + c.current * (2 * WINDOW - at) as u64 <= room
                } else {
                    true
                }
            })
            .unwrap_or(2 * WINDOW);
        Err(wait as u64)
    }

    /// Forgets every count (configuration reloads, tests).
    pub fn clear(&self) {
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_the_limit_then_refuses_with_a_wait() {
        let r = RateLimiter::new();
        let t = 6000; // the start of a window
        for _ in 0..10 {
            assert_eq!(r.check("k", 10, t), Ok(()));
        }
        // At the start of a window the whole budget was spent just now: the sliding window
        // frees room as this minute's weight fades in the next one.
        let wait = r.check("k", 10, t).unwrap_err();
        assert_eq!(wait, 66);
        // Other keys have their own budget; a limit of 0 is no limit.
        assert_eq!(r.check("other", 10, t), Ok(()));
        for _ in 0..1000 {
            assert_eq!(r.check("free", 0, t), Ok(()));
        }
    }

    #[test]
    fn the_told_wait_is_enough_and_the_budget_slides() {
        let r = RateLimiter::new();
        let mut t = 6030; // mid-window
        for _ in 0..10 {
            r.check("k", 10, t).unwrap();
        }
        let wait = r.check("k", 10, t).unwrap_err();
        t += i64::try_from(wait).unwrap();
        assert_eq!(
            r.check("k", 10, t),
            Ok(()),
            "admitted after waiting {wait} s"
        );
        // Over any long stretch the rate stays near the limit.
        let mut admitted = 0;
        for s in 0..600 {
            for _ in 0..5 {
                if r.check("k", 10, t + s).is_ok() {
                    admitted += 1;
                }
            }
        }
        assert!((85..=105).contains(&admitted), "{admitted} in 10 minutes");
    }

    #[test]
    fn a_quiet_key_starts_afresh() {
        let r = RateLimiter::new();
        for _ in 0..10 {
            r.check("k", 10, 6000).unwrap();
        }
        assert!(r.check("k", 10, 6000).is_err());
        assert_eq!(r.check("k", 10, 6000 + 120), Ok(()));
    }

    #[test]
    fn the_table_is_bounded() {
        let r = RateLimiter::new();
        for i in 0..(MAX_KEYS + 10) {
            let _ = r.check(&format!("addr:{i}"), 5, 6000);
        }
        assert!(r.counters.lock().unwrap().len() <= MAX_KEYS);
    }
}
