//! Second factors: an authenticator app (TOTP, RFC 6238, on the `totp-rs` crate: SHA-1, six
//! digits, 30-second steps, the values every authenticator app supports) with ten one-time
//! recovery codes. Setting one up (a seed shown as a QR code, rendered as SVG by the `qrcode`
//! crate, or typed), proving it with a code, removing it, and checking a code at sign-in.
//!
//! A code is accepted within one step either side of now (RFC 6238 §5.2: the skew a phone's
//! clock and the typing take) and at most once: the step it matched is spent in the same
//! statement that checks it was not spent before, on every instance ([`Store`]). Codes typed
//! wrong are throttled per account, more tightly than passwords (`throttle::code_keys`).
//! Recovery codes are stored as SHA-256 hashes, each spent once.

use super::throttle;
use crate::audit::{self, Event, Kind};
use crate::context::{Ctx, SystemError};
use crate::store::{Store, TotpFactor};
use infra::secret::{RandomError, fill_random, hash_secret};
use totp_rs::{Builder, Secret, Totp};

/// The issuer shown in authenticator apps.
const ISSUER: &str = "Gatehouse";
/// Recovery codes issued with a confirmed app.
pub const RECOVERY_CODES: usize = 10;
/// The longest code input looked at.
const MAX_CODE_CHARS: usize = 32;

/// The authenticator for seed `secret` (base32) and account `account`.
fn authenticator(secret: &str, account: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret).ok()?;
    Builder::new()
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(account.replace(':', "_"))
        .build()
        .ok()
}

/// The time step a six-digit `code` matches for seed `secret` at `now` (one step either
/// side), if any. The step is not spent here.
pub fn matching_step(secret: &str, code: &str, now: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = u64::try_from(now).ok()?;
    let step = authenticator(secret, "-")?.check(&code, now)?;
    i64::try_from(step).ok()
}

/// A new seed, base32.
pub fn new_secret() -> String {
    Secret::generate().to_base32()
}

/// What the setup page shows for seed `secret`: the `otpauth://` URI, and it as an SVG QR code.
pub fn setup(secret: &str, account: &str) -> Option<(String, String)> {
    let url = authenticator(secret, account)?.to_url().ok()?;
    let svg = qrcode::QrCode::new(url.as_bytes())
        .ok()?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // The element alone, for inlining in a page (without the XML declaration).
    let svg = svg.find("<svg").map(|at| svg[at..].to_owned())?;
    Some((url, svg))
}

/// Ten new recovery codes, `xxxxx-xxxxx` from an alphabet without look-alikes (50 bits each).
pub fn new_recovery_codes() -> Result<Vec<String>, RandomError> {
    const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut bytes = [0u8; 10];
        fill_random(&mut bytes)?;
        let chars: String = bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
            .collect();
        codes.push(format!("{}-{}", &chars[..5], &chars[5..]));
    }
    Ok(codes)
}

/// The stored form of recovery code `code` as typed (case, spaces and dashes ignored).
pub fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hash_secret(&format!("recovery:{normal}"))
}

/// Which factor a code was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// A code of the authenticator app.
    Totp,
    /// A recovery code, now spent.
    RecoveryCode,
}

/// What checking a typed code came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    Proved(Proof),
    /// Wrong, already used, or the account has no app: one answer for all.
    Refused,
    /// Too many wrong codes: wait this many seconds (nothing was checked).
    Throttled {
        wait_secs: i64,
    },
}

/// Checks `code` (an app's code or a recovery code) for `user_id`'s confirmed app, spending
/// what it proves, throttled by account (`throttle::admit_code`).
pub async fn check_code(ctx: &Ctx, user_id: &str, code: &str) -> Result<Checked, SystemError> {
    let now = ctx.clock.unix();
    let keys = throttle::code_keys(user_id);
    let reserved = match throttle::admit_code(&ctx.store, &keys, now).await? {
        throttle::Admission::Go(r) => r,
        throttle::Admission::Wait(wait_secs) => {
            let event = Event::new(Kind::SecondFactorFailed)
                .user(user_id)
                .detail(format!("throttled: wait {wait_secs} s"));
            audit::record(&ctx.store, &ctx.clock, event).await;
            return Ok(Checked::Throttled { wait_secs });
        }
    };
    let proved = match confirmed(&ctx.store, user_id).await? {
        Some(factor) => spend(&ctx.store, user_id, &factor, code, now).await?,
        None => None,
    };
    let Some(proof) = proved else {
        let event = Event::new(Kind::SecondFactorFailed).user(user_id);
        audit::record(&ctx.store, &ctx.clock, event).await;
        return Ok(Checked::Refused);
    };
    throttle::succeeded(&ctx.store, &reserved).await?;
    if proof == Proof::RecoveryCode {
        let left = ctx.store.recovery_codes_left(user_id).await?;
        let event = Event::new(Kind::RecoveryCodeUsed)
            .user(user_id)
            .detail(format!("{left} left"));
        audit::record(&ctx.store, &ctx.clock, event).await;
    }
    Ok(Checked::Proved(proof))
}

/// The second factors an account has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Factors {
    /// A confirmed authenticator app (and its recovery codes).
    pub app: bool,
    /// At least one passkey.
    pub passkey: bool,
}

impl Factors {
    /// Whether the account has any: then a password alone does not sign it in.
    pub fn any(self) -> bool {
        self.app || self.passkey
    }
}

/// The second factors `user_id` has.
pub async fn factors(store: &Store, user_id: &str) -> Result<Factors, sqlx::Error> {
    Ok(Factors {
        app: confirmed(store, user_id).await?.is_some(),
        passkey: store.has_passkey(user_id).await?,
    })
}

/// `user_id`'s app, if confirmed.
pub async fn confirmed(store: &Store, user_id: &str) -> Result<Option<TotpFactor>, sqlx::Error> {
    Ok(store
        .totp_factor(user_id)
        .await?
        .filter(|f| f.confirmed_at.is_some()))
}

/// Spends what `code` proves: the step of an app's code, or a recovery code.
async fn spend(
    store: &Store,
    user_id: &str,
    factor: &TotpFactor,
    code: &str,
    now: i64,
) -> Result<Option<Proof>, sqlx::Error> {
    if code.chars().count() > MAX_CODE_CHARS {
        return Ok(None);
    }
    if let Some(step) = matching_step(&factor.secret, code, now) {
        return Ok(store
            .spend_totp_step(user_id, step)
            .await?
            .then_some(Proof::Totp));
    }
    let spent = store
        .spend_recovery_code(user_id, &recovery_hash(code), now)
        .await?;
    Ok(spent.then_some(Proof::RecoveryCode))
}

/// What confirming an app being set up came to.
#[derive(Debug)]
pub enum Confirmed {
    /// The app is on; these recovery codes are shown once.
    Yes(Vec<String>),
    /// The code does not match the seed being set up.
    WrongCode,
    /// Nothing is being set up with that seed (set up anew or removed in another tab).
    Gone,
}

/// Confirms `user_id`'s app being set up with seed `secret` with `code`, and issues its
/// recovery codes.
pub async fn confirm(
    ctx: &Ctx,
    user_id: &str,
    secret: &str,
    code: &str,
) -> Result<Confirmed, SystemError> {
    let now = ctx.clock.unix();
    let Some(step) = matching_step(secret, code, now) else {
        return Ok(Confirmed::WrongCode);
    };
    let codes = new_recovery_codes()?;
    let hashes: Vec<String> = codes.iter().map(|c| recovery_hash(c)).collect();
    if !ctx
        .store
        .confirm_totp(user_id, secret, step, &hashes, now)
        .await?
    {
        return Ok(Confirmed::Gone);
    }
    let event = Event::new(Kind::SecondFactorEnrolled)
        .user(user_id)
        .detail("authenticator app");
    audit::record(&ctx.store, &ctx.clock, event).await;
    Ok(Confirmed::Yes(codes))
}

/// Removes `user_id`'s app and recovery codes (the user's page checked a code first; the
/// command line is the operator's); `by` says who, for the audit trail.
pub async fn remove(
    store: &Store,
    clock: &infra::Clock,
    user_id: &str,
    by: &str,
) -> Result<bool, sqlx::Error> {
    let removed = store.remove_totp(user_id).await?;
    if removed {
        let event = Event::new(Kind::SecondFactorRemoved)
            .user(user_id)
            .detail(format!("authenticator app, by {by}"));
        audit::record(store, clock, event).await;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_at(secret: &str, t: i64) -> String {
        authenticator(secret, "alice")
            .unwrap()
            .generate(u64::try_from(t).unwrap())
            .to_string()
    }

    #[test]
    fn a_code_matches_within_one_step_either_side() {
        let secret = new_secret();
        let now = 1_800_000_015;
        let step = now / 30;
        assert_eq!(
            matching_step(&secret, &code_at(&secret, now), now),
            Some(step)
        );
        assert_eq!(
            matching_step(&secret, &code_at(&secret, now - 30), now),
            Some(step - 1)
        );
        assert_eq!(
            matching_step(&secret, &code_at(&secret, now + 30), now),
            Some(step + 1)
        );
        assert_eq!(
            matching_step(&secret, &code_at(&secret, now - 60), now),
            None
        );
        assert_eq!(
            matching_step(&secret, &code_at(&secret, now + 60), now),
            None
        );
        let spaced = code_at(&secret, now);
        let spaced = format!("{} {}", &spaced[..3], &spaced[3..]);
        assert_eq!(matching_step(&secret, &spaced, now), Some(step));
        for bad in ["", "12345", "1234567", "abcdef", "１２３４５６"] {
            assert_eq!(matching_step(&secret, bad, now), None, "{bad}");
        }
        assert_eq!(matching_step("not base32!", "123456", now), None);
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_typed_loosely() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.len(), 11);
        assert_eq!(
            recovery_hash(code),
            recovery_hash(&format!(" {} ", code.to_uppercase().replace('-', " ")))
        );
        assert_ne!(recovery_hash(code), recovery_hash(&codes[1]));
    }

    #[test]
    fn the_setup_shows_a_uri_and_an_svg_qr_code() {
        let (url, svg) = setup(&new_secret(), "al:ice").unwrap();
        assert!(url.starts_with("otpauth://totp/Gatehouse:al_ice?"), "{url}");
        assert!(url.contains("issuer=Gatehouse"), "{url}");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(!svg.contains("al_ice"), "the SVG holds shapes only");
    }

    /// Each code once, whatever the number of requests racing: the step is spent in the
    /// statement that checks it; and a recovery code likewise.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_code_is_accepted_once_under_concurrency_on_sqlite() {
        a_code_is_accepted_once(crate::context::testing::ctx().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_code_is_accepted_once_under_concurrency_on_postgres() {
        if let Some(ctx) = crate::context::testing::postgres_ctx("second factors").await {
            a_code_is_accepted_once(ctx).await;
        }
    }

    async fn a_code_is_accepted_once(ctx: crate::context::testing::TestCtx) {
        let alice = super::super::create_user(&ctx.store, "alice", "pw", ctx.clock.unix())
            .await
            .unwrap();
        let secret = new_secret();
        let now = ctx.clock.unix();
        assert!(ctx.store.begin_totp(&alice.id, &secret, now).await.unwrap());
        let Confirmed::Yes(recovery) = confirm(&ctx, &alice.id, &secret, &code_at(&secret, now))
            .await
            .unwrap()
        else {
            panic!("confirmed");
        };
        // The confirming code's step is spent: the same code again is refused.
        let again = check_code(&ctx, &alice.id, &code_at(&secret, now)).await;
        assert_eq!(again.unwrap(), Checked::Refused);
        // Sixteen spends of one step, and of one recovery code, at once: one wins each.
        let step = now / 30 + 1;
        let hash = recovery_hash(&recovery[0]);
        for recovery_code in [false, true] {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..16 {
                let (store, id, hash) = (ctx.store.clone(), alice.id.clone(), hash.clone());
                tasks.spawn(async move {
                    if recovery_code {
                        store.spend_recovery_code(&id, &hash, now).await.unwrap()
                    } else {
                        store.spend_totp_step(&id, step).await.unwrap()
                    }
                });
            }
            let won = tasks.join_all().await.into_iter().filter(|w| *w).count();
            assert_eq!(won, 1, "recovery code: {recovery_code}");
        }
        // An earlier step than the last one spent is refused too.
        assert!(
            !ctx.store
                .spend_totp_step(&alice.id, step - 1)
                .await
                .unwrap()
        );
        assert_eq!(
            ctx.store.recovery_codes_left(&alice.id).await.unwrap(),
            i64::try_from(RECOVERY_CODES).unwrap() - 1
        );
        assert!(
            remove(&ctx.store, &ctx.clock, &alice.id, "alice")
                .await
                .unwrap()
        );
        let after = check_code(&ctx, &alice.id, &recovery[1]).await;
        assert_eq!(after.unwrap(), Checked::Refused, "no app, no code");
    }
}
