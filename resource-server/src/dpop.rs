//! DPoP at the API (RFC 9449 §7.1): a token bound to a key (`cnf.jkt`) is accepted only under
//! the `DPoP` scheme with a proof for this request, naming the token, by that key. The proof's
//! stateless checks are `infra::dpop`'s; the `jti`s seen are kept here, in memory, until the
//! proof would be too old anyway (§11.1: per API instance; a replay to another instance within
//! those five minutes would need the proof itself, which travels only to this API).

use infra::dpop::{Expected, REMEMBER_SECS};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// At most this many proofs are remembered at once; beyond, new ones are refused until old
/// ones expire (each needs a valid bound token and its key, so only token holders fill it).
const MAX_REMEMBERED: usize = 100_000;

/// The proofs seen (their key's thumbprint and `jti`), with when each may be forgotten.
#[derive(Default)]
pub(crate) struct Replays(Mutex<HashMap<String, i64>>);

impl Replays {
    /// Records a proof; false if it was seen before, or no more can be remembered now.
    fn fresh(&self, seen: String, until: i64, now: i64) -> bool {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if all.len() >= MAX_REMEMBERED {
            all.retain(|_, t| *t >= now);
            if all.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        match all.get(&seen) {
            Some(t) if *t >= now => false,
            _ => {
                all.insert(seen, until);
                true
            }
        }
    }
}

/// The request's proof (its `DPoP` headers' values: exactly one) checked for bound `token`
/// (key thumbprint `jkt`), sent with `method` to `url`, at `now`. The error says why not.
pub(crate) fn check(
    replays: &Replays,
    proofs: &[&str],
    (method, url): (&str, &str),
    (token, jkt): (&str, &str),
    now: i64,
) -> Result<(), &'static str> {
    let [proof] = proofs else {
        return Err("send one DPoP proof with the token");
    };
    let checked = infra::dpop::check(
        proof,
        &Expected {
            method,
            url,
            access_token: Some(token),
            now,
        },
    )?;
    if checked.jkt != jkt {
        return Err("the proof is made by another key than the token's");
    }
    let seen = format!("{}\0{}", checked.jkt, checked.jti);
    if !replays.fresh(seen, checked.iat + REMEMBER_SECS, now) {
        return Err("the proof was used before (jti)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_remembered_until_it_would_be_too_old() {
        let r = Replays::default();
        assert!(r.fresh("k\0a".into(), 100, 0));
        assert!(!r.fresh("k\0a".into(), 100, 50));
        assert!(r.fresh("k\0b".into(), 100, 50));
        assert!(
            r.fresh("k\0a".into(), 400, 101),
            "forgotten once too old anyway"
        );
    }
}
