//! DPoP at the API (RFC 9449 §7.1): a token bound to a key (`cnf.jkt`) is accepted only under
//! the `DPoP` scheme with a proof for this request, naming the token, by that key. The proof's
//! stateless checks are `infra::dpop`'s; the `jti`s seen are kept here, in memory, until the
//! proof would be too old anyway (§11.1: per API instance; a replay to another instance within
//! those five minutes would need the proof itself, which travels only to this API).

use infra::dpop::{Expected, REMEMBER_SECS};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// At most this many proofs by one key are remembered at once: beyond, that key's are refused
/// until its old ones expire (so a key can lock out only itself).
const MAX_PER_KEY: usize = 1_000;
/// At most this many keys are remembered at once: beyond (and once the expired are gone),
/// proofs by new keys get a 503 until old ones expire.
const MAX_KEYS: usize = 100_000;

/// Why a proof was not remembered.
#[derive(Debug, PartialEq, Eq)]
pub enum NotFresh {
    /// Seen before, or its key made too many proofs at once: `invalid_dpop_proof`.
    Refused(&'static str),
    /// Too many keys at once: try again (503).
    Busy,
}

/// The proofs seen, by key thumbprint then `jti`, with when each may be forgotten.
#[derive(Default)]
pub(crate) struct Replays(Mutex<HashMap<String, HashMap<String, i64>>>);

impl Replays {
    /// Records proof `jti` of key `jkt` until `until`.
    fn fresh(&self, jkt: &str, jti: &str, until: i64, now: i64) -> Result<(), NotFresh> {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !all.contains_key(jkt) && all.len() >= MAX_KEYS {
            all.retain(|_, seen| {
                seen.retain(|_, t| *t >= now);
                !seen.is_empty()
            });
            if all.len() >= MAX_KEYS {
                return Err(NotFresh::Busy);
            }
        }
        let seen = all.entry(jkt.to_owned()).or_default();
        if seen.get(jti).is_some_and(|t| *t >= now) {
            return Err(NotFresh::Refused("the proof was used before (jti)"));
        }
        if seen.len() >= MAX_PER_KEY {
            seen.retain(|_, t| *t >= now);
            if seen.len() >= MAX_PER_KEY {
                return Err(NotFresh::Refused(
                    "this key made too many proofs within five minutes",
                ));
            }
        }
        seen.insert(jti.to_owned(), until);
        Ok(())
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
) -> Result<(), NotFresh> {
    let [proof] = proofs else {
        return Err(NotFresh::Refused("send one DPoP proof with the token"));
    };
    let checked = infra::dpop::check(
        proof,
        &Expected {
            method,
            url,
            access_token: Some(token),
        },
        now,
    )
    .map_err(NotFresh::Refused)?;
    if checked.jkt != jkt {
        return Err(NotFresh::Refused(
            "the proof is made by another key than the token's",
        ));
    }
    replays.fresh(&checked.jkt, &checked.jti, checked.iat + REMEMBER_SECS, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_remembered_until_it_would_be_too_old() {
        let r = Replays::default();
        assert_eq!(r.fresh("k", "a", 100, 0), Ok(()));
        assert!(matches!(
            r.fresh("k", "a", 100, 50),
            Err(NotFresh::Refused(_))
        ));
        assert_eq!(r.fresh("k", "b", 100, 50), Ok(()));
        assert_eq!(r.fresh("other", "a", 100, 50), Ok(()), "another key's jti");
        assert_eq!(
            r.fresh("k", "a", 400, 101),
            Ok(()),
            "forgotten once too old anyway"
        );
    }

    /// One key filling its share locks out only itself, until its proofs expire.
    #[test]
    fn a_key_that_makes_too_many_proofs_locks_out_only_itself() {
        let r = Replays::default();
        for i in 0..MAX_PER_KEY {
            assert_eq!(r.fresh("greedy", &i.to_string(), 100, 0), Ok(()));
        }
        assert!(matches!(
            r.fresh("greedy", "more", 100, 0),
            Err(NotFresh::Refused(_))
        ));
        assert_eq!(r.fresh("polite", "one", 100, 0), Ok(()));
        assert_eq!(
            r.fresh("greedy", "later", 200, 101),
            Ok(()),
            "its old ones expired"
        );
    }
}
