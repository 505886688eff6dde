//! Sign-in throttling, by account and by client address, kept in the store so that every
//! instance sees the same counts.
//!
//! Each key gets some free failures per hour; after them every failure makes the next attempt
//! wait twice as long (1 s, 2 s, 4 s, … at most [`MAX_DELAY`]), and while it waits the
//! provider answers 429 with `Retry-After` without checking the password at all. Nothing is
//! permanent: the wait is short, and the counts start again an hour after the first failure.
//! With these numbers an account sees at most 100 failed attempts an hour (the growing delay
//! admits about 65; [`HARD_CAP`] holds even if it were changed). The answer for a throttled
//! account is the same whether the account exists or not, since the key is the name typed.
//! A successful sign-in clears its account's count.
//!
//! An attempt is counted as a failure *before* its password is checked ([`admit`]), in one
//! transaction with the check of the wait, and handed back if it succeeds: a burst of
//! parallel attempts is therefore throttled like a sequence of them.

use crate::store::{Reserved, Store};
use infra::secret::hash_secret;

/// The counting window.
const WINDOW: i64 = 3600;
/// The longest wait between attempts.
pub const MAX_DELAY: i64 = 60;
/// At most this many failures per key and window: beyond, the key waits for the window's end.
const HARD_CAP: i64 = 100;

/// One throttled dimension: its key in the store and its free failures per window.
#[derive(Clone, Debug)]
pub struct Key {
    key: String,
    free: i64,
}

/// The keys of one attempt: the account (by name, as typed) and the client address.
pub fn keys(username: &str, addr: Option<&str>) -> Vec<Key> {
    let mut keys = vec![Key {
        key: format!("user:{}", hash_secret(&username.trim().to_lowercase())),
        free: 5,
    }];
    keys.extend(addr.map(address_key));
    keys
}

/// The client address's key: an address may try more names (a shared office, a NAT), but
/// not endlessly.
fn address_key(addr: &str) -> Key {
    Key {
        key: format!("addr:{addr}"),
        free: 20,
    }
}

/// The key of the second-factor codes typed for the account `user_id` (known by then: its
/// password was right), from anywhere. Codes are far fewer than passwords (10⁶, three of them
/// valid at a time), so they get a day's window and a hard cap of [`CODE_CAP`] failures in it
/// ([`admit_code`]): someone who has the password can try about 7,000 codes a year, a 2 %
/// chance, where an hourly window would give them 600,000 and an 84 % one.
pub fn code_keys(user_id: &str) -> Vec<Key> {
    vec![Key {
        key: format!("code:{user_id}"),
        free: 5,
    }]
}

/// The keys of a user code typed on the device page (RFC 8628 §5.1): by the signed-in
/// account and by address, apart from sign-ins' (a person typing a device's code wrong does
/// not slow their next sign-in).
pub fn device_keys(user_id: &str, addr: Option<&str>) -> Vec<Key> {
    let mut keys = vec![Key {
        key: format!("device:{user_id}"),
        free: 5,
    }];
    keys.extend(addr.map(|a| Key {
        key: format!("device-addr:{a}"),
        free: 20,
    }));
    keys
}

/// A look-up that found what it looked for, where finding proves nothing (a device's user code:
/// anyone can start a request of their own and look its code up): each key gets back the one
/// attempt [`admit`] counted, and nothing more, so right answers cannot wipe out wrong ones.
pub async fn refund(store: &Store, reserved: &[Reserved]) -> Result<(), sqlx::Error> {
    for key in reserved {
        store.refund_login_attempt(key).await?;
    }
    Ok(())
}

/// The window of second-factor codes.
const CODE_WINDOW: i64 = 24 * 3600;
/// At most this many wrong codes per account and day.
pub const CODE_CAP: i64 = 20;

/// [`admit`] for second-factor codes: [`CODE_WINDOW`] and [`CODE_CAP`].
pub async fn admit_code(store: &Store, keys: &[Key], now: i64) -> Result<Admission, sqlx::Error> {
    reserve(store, keys, now, CODE_WINDOW, CODE_CAP).await
}

/// How long before failure `n` (counted from 1) allows the next attempt.
fn delay_after(failures: i64, free: i64) -> i64 {
    if failures < free {
        return 0;
    }
    let exp = u32::try_from(failures - free).unwrap_or(u32::MAX).min(16);
    (1_i64 << exp).min(MAX_DELAY)
}

/// An attempt: to wait, or counted in advance against each key.
#[derive(Debug)]
pub enum Admission {
    /// Seconds until the next attempt may be checked; nothing was counted.
    Wait(i64),
    /// Go ahead; what was counted, for [`succeeded`] to hand back.
    Go(Vec<Reserved>),
}

/// Takes an attempt for `keys`: [`Admission::Wait`] if any key is waiting (nothing is
/// counted, and the password must not be checked); otherwise the attempt is counted as a
/// failure against every key in advance, with its wait, before the password is checked, so
/// that parallel attempts cannot all be checked before the first failure is counted.
/// [`succeeded`] takes it back.
pub async fn admit(store: &Store, keys: &[Key], now: i64) -> Result<Admission, sqlx::Error> {
    reserve(store, keys, now, WINDOW, HARD_CAP).await
}

async fn reserve(
    store: &Store,
    keys: &[Key],
    now: i64,
    window: i64,
    cap: i64,
) -> Result<Admission, sqlx::Error> {
    if keys.is_empty() {
        return Ok(Admission::Go(Vec::new()));
    }
    let keys: Vec<(&str, i64)> = keys.iter().map(|k| (k.key.as_str(), k.free)).collect();
    Ok(
        match store
            .reserve_login_attempt(&keys, now, window, cap, delay_after)
            .await?
        {
            Ok(reserved) => Admission::Go(reserved),
            Err(wait) => Admission::Wait(wait),
        },
    )
}

/// A successful sign-in: the account's count starts again, and every other key (the
/// address) gets back the attempt [`admit`] counted against it, and its wait before it.
pub async fn succeeded(store: &Store, reserved: &[Reserved]) -> Result<(), sqlx::Error> {
    let mut keys = reserved.iter();
    if let Some(account) = keys.next() {
        store.clear_login_failures(&account.key).await?;
    }
    for other in keys {
        store.refund_login_attempt(other).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_stop_growing() {
        let delays: Vec<i64> = (1..=14).map(|n| delay_after(n, 5)).collect();
        assert_eq!(delays, [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        assert_eq!(delay_after(1000, 5), 60);
    }

    /// A success hands back the failure it was counted as in advance, and the wait that
    /// set: a user's successful sign-ins never make the next attempt wait.
    #[tokio::test]
    async fn a_successful_attempt_leaves_no_wait() {
        let ctx = crate::context::testing::ctx().await;
        let now = ctx.clock.unix();
        let keys = vec![
            Key {
                key: "user:alice".into(),
                free: 1,
            },
            Key {
                key: "addr:192.0.2.1".into(),
                free: 1,
            },
        ];
        for _ in 0..3 {
            let Admission::Go(reserved) = admit(&ctx.store, &keys, now).await.unwrap() else {
                panic!("a success never makes the next attempt wait");
            };
            succeeded(&ctx.store, &reserved).await.unwrap();
        }
        // Failures still count: after the free one, the next attempt waits.
        assert!(matches!(
            admit(&ctx.store, &keys, now).await.unwrap(),
            Admission::Go(_)
        ));
        assert!(matches!(
            admit(&ctx.store, &keys, now).await.unwrap(),
            Admission::Wait(_)
        ));
    }

    #[test]
    fn a_day_admits_at_most_twenty_wrong_codes() {
        // An attacker with the password, trying a code the moment each wait ends, for a year:
        // the chance that one of them is one of the three valid ones.
        let per_year = CODE_CAP * 365;
        let chance = 1.0 - (1.0 - 3e-6_f64).powi(i32::try_from(per_year).unwrap());
        assert!(chance < 0.025, "{chance}");
    }

    #[test]
    fn an_hour_admits_at_most_a_hundred_failures() {
        // An attacker who tries the moment each wait ends.
        let (mut t, mut n) = (0, 0);
        while t < WINDOW {
            n += 1;
            t += delay_after(n, 5).max(1);
        }
        assert!(n <= HARD_CAP, "{n}");
    }
}
