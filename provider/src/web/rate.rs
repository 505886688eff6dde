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
//! more than the rounding. A table is bounded ([`MAX_KEYS`]) and never forgets everyone at
//! once (README "Hostile clients" 6): when it is full, windows that have ended are dropped,
//! and if that is not enough the tenth of the keys seen least recently (an attacker with more
//! addresses than the table holds gives its own oldest ones a fresh budget, never the
//! provider's memory, and never resets anyone it has not outlasted). Authenticated clients
//! are counted in a table of their own, so no flood of addresses evicts a client's budget.
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
    /// When the key was last counted, as the table's own request count (for eviction,
    /// least recently seen first; unique, unlike seconds).
    seen: u64,
}

/// Counters by key.
#[derive(Debug)]
pub struct RateLimiter {
    counters: Mutex<Table>,
    max_keys: usize,
}

/// The counters and the number of requests counted so far.
#[derive(Debug, Default)]
struct Table {
    counters: HashMap<String, Counter>,
    ticks: u64,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

/// Makes room in a full table: the windows that ended, or else the tenth of the keys seen
/// least recently (one pass, then room for that many new keys before the next).
fn evict(counters: &mut HashMap<String, Counter>, start: i64, max_keys: usize) {
    counters.retain(|_, c| c.start >= start - WINDOW);
    if counters.len() < max_keys {
        return;
    }
    let mut seen: Vec<u64> = counters.values().map(|c| c.seen).collect();
    let Some(last) = seen.len().checked_sub(1) else {
        return;
    };
    let nth = (max_keys / 10).min(last);
    let (_, cutoff, _) = seen.select_nth_unstable(nth);
    let cutoff = *cutoff;
    counters.retain(|_, c| c.seen > cutoff);
}

impl RateLimiter {
    pub fn new() -> Self {
        Self::with_capacity(MAX_KEYS)
    }

    /// A table of at most `max_keys` keys.
    pub fn with_capacity(max_keys: usize) -> Self {
        Self {
            counters: Mutex::default(),
            max_keys: max_keys.max(2),
        }
    }

    /// Counts one request for `key` at `now` if `limit` per minute allows it; otherwise the
    /// seconds to wait before the next one may pass. A limit of 0 means no limit.
    pub fn check(&self, key: &str, limit: u64, now: i64) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let start = now - now.rem_euclid(WINDOW);
        let mut table = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.ticks += 1;
        let tick = table.ticks;
        let counters = &mut table.counters;
        if counters.len() >= self.max_keys && !counters.contains_key(key) {
            evict(counters, start, self.max_keys);
        }
        let c = counters.entry(key.to_owned()).or_default();
        c.seen = tick;
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
        assert!(r.counters.lock().unwrap().counters.len() <= MAX_KEYS);
    }

    /// A flood of new keys evicts the keys seen least recently, never a busy one: an address
    /// that spent its budget stays refused while thousands of others come and go.
    #[test]
    fn a_flood_of_new_keys_does_not_reset_a_recent_one() {
        let r = RateLimiter::with_capacity(1000);
        let t = 6000;
        for _ in 0..5 {
            r.check("spent", 5, t).unwrap();
        }
        assert!(r.check("spent", 5, t).is_err());
        for i in 0..20_000 {
            // The flood's keys are new each time; "spent" keeps trying meanwhile.
            let _ = r.check(&format!("flood:{i}"), 5, t + 1 + i / 2000);
            if i % 100 == 0 {
                assert!(
                    r.check("spent", 5, t + 1 + i / 2000).is_err(),
                    "reset at {i}"
                );
            }
            assert!(r.counters.lock().unwrap().counters.len() <= 1000);
        }
    }
}
