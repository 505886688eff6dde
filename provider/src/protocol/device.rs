//! The device authorization grant (RFC 8628): a device without a browser (a command-line
//! tool, a TV) asks for a pair of codes ([`start`], §3.1–3.2), shows the person the user code
//! and where to type it, and polls the token endpoint with the device code
//! (`token::device`, §3.4–3.5) while the person, signed in on any browser, finds the request
//! by its user code ([`find`]) and answers it ([`decide`], §3.3).
//!
//! The person's approval is an authorization code stored under the device code's hash
//! (`store::DEVICE_REDIRECT`), written under the same guards as a code from the authorization
//! endpoint (the browser's SSO session live, the consent held) and the request's own (still
//! open): so the device's grant is a code's grant, online (it ends with the session it was
//! approved in) unless `offline_access` was granted, and every revocation that reaches codes
//! reaches an approval not yet redeemed.
//!
//! Against guessing (§5.1): user codes are eight letters of a 20-letter alphabet (§6.1, about
//! 34.5 bits), live ten minutes, and each look-up by a person is throttled by account and by
//! address like a sign-in (`users::throttle`). Against remote phishing (§5.4) the person always
//! confirms, even when the code came in the link: the page names the app and what it asks, and
//! shows the code to compare with the device's screen.

use super::authorize::level::{self, StepUp};
use super::error::{PageError, TokenError};
use super::params::Params;
use crate::audit::{self, Event, Kind};
use crate::context::{Ctx, SystemError};
use crate::paths;
use crate::store::{AuthCode, Client, DEVICE_REDIRECT, DeviceRow, Guard, Insert, NewDevice};
use crate::types::{GrantType, Scope, ScopeSet};
use crate::users::throttle::{self, Admission};
use infra::secret::{hash_secret, random_token};
use serde::Serialize;
use sessions::Session;

/// RFC 8628 §6.1: consonants only (no vowels, so no words), none easily taken for another.
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;
/// How often a new user code is drawn when the one drawn is taken.
const DRAWS: usize = 4;
/// Longer input than this is not a user code, whatever it contains.
const MAX_TYPED: usize = 64;

/// A user code in its canonical form: [`USER_CODE_LEN`] letters of [`ALPHABET`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    fn random() -> Result<Self, SystemError> {
        let mut code = String::with_capacity(USER_CODE_LEN);
        let mut bytes = [0u8; 16];
        while code.len() < USER_CODE_LEN {
            infra::secret::fill_random(&mut bytes)?;
            // 240 = 12 × 20: bytes above it would favour the first letters.
            for b in bytes.iter().filter(|b| **b < 240) {
                if code.len() < USER_CODE_LEN {
                    code.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
                }
            }
        }
        Ok(Self(code))
    }

    /// What a person typed: case, spaces and dashes do not matter (RFC 8628 §6.1); anything
    /// else, or the wrong length, is not a user code.
    pub fn parse(typed: &str) -> Option<Self> {
        if typed.len() > MAX_TYPED {
            return None;
        }
        let letters: String = typed
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '\t'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid =
            letters.len() == USER_CODE_LEN && letters.bytes().all(|b| ALPHABET.contains(&b));
        valid.then_some(Self(letters))
    }

    /// The canonical letters, for a URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As shown to people: `BCDF-GHJK`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(USER_CODE_LEN / 2);
        format!("{a}-{b}")
    }

    fn hash(&self) -> String {
        hash_secret(&self.0)
    }
}

/// The device page, with `?user_code=` when there is a code.
pub fn page(code: Option<&UserCode>) -> String {
    match code {
        Some(c) => format!("{}?user_code={}", paths::DEVICE, c.as_str()),
        None => paths::DEVICE.to_owned(),
    }
}

/// The device page with a code, from where a sign-in was told to go next: only if it is one
/// (rebuilt from its letters, so nothing else passes through).
pub fn page_with_code(next: &str) -> Option<String> {
    let code = next
        .strip_prefix(paths::DEVICE)?
        .strip_prefix("?user_code=")?;
    UserCode::parse(code).map(|c| page(Some(&c)))
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// A device authorization request (RFC 8628 §3.1) from an authenticated client allowed the
/// grant: its scopes are those we know among the asked (others are ignored, RFC 6749 §3.3),
/// without `offline_access` for a client that may not hold refresh tokens.
pub async fn start(
    ctx: &Ctx,
    client: &Client,
    form: &Params,
) -> Result<DeviceAuthorization, TokenError> {
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(TokenError::unauthorized_client());
    }
    if form.get("resource").is_some() {
        return Err(TokenError::invalid_target(
            "resource is not supported with the device flow",
        ));
    }
    // RFC 9449 §10 binds authorization codes; a device's approval is not bound to a key
    // before its poll: refused rather than ignored, so that no client believes it bound.
    if form.get("dpop_jkt").is_some() {
        return Err(TokenError::invalid_request(
            "dpop_jkt is not supported with the device flow: send the proof with the poll",
        ));
    }
    let asked = ScopeSet::parse_known(form.get("scope").unwrap_or(""));
    let scope = if client.allows_grant(GrantType::RefreshToken) {
        asked
    } else {
        asked.without(Scope::OfflineAccess)
    };
    let now = ctx.clock.unix();
    let lifetime = infra::secs(ctx.config.tokens.device_code_lifetime);
    let interval = infra::secs(ctx.config.tokens.device_poll_interval);
    let device_code = random_token()?;
    let device_code_hash = hash_secret(&device_code);
    for _ in 0..DRAWS {
        let user_code = UserCode::random()?;
        let stored = ctx
            .store
            .insert_device(&NewDevice {
                device_code_hash: &device_code_hash,
                user_code_hash: &user_code.hash(),
                client_id: &client.client_id,
                scope,
                created_at: now,
                expires_at: now + lifetime,
                poll_interval: interval,
            })
            .await?;
        if stored {
            return Ok(DeviceAuthorization {
                device_code,
                user_code: user_code.display(),
                verification_uri: ctx.url(paths::DEVICE),
                verification_uri_complete: ctx.url(&page(Some(&user_code))),
                expires_in: lifetime,
                interval,
            });
        }
    }
    let bug = anyhow::anyhow!("no free user code in {DRAWS} draws");
    Err(SystemError::Internal(bug).into())
}

/// An open request, as the person confirms it.
#[derive(Clone, Debug)]
pub struct DeviceRequest {
    pub user_code: UserCode,
    pub client: Client,
    pub scope: ScopeSet,
    row: DeviceRow,
}

/// What a typed user code came to.
#[derive(Debug)]
pub enum Found {
    Request(Box<DeviceRequest>),
    /// No open request has it (a typo, expired, already answered): said the same way for each,
    /// so a guess learns nothing more.
    Nothing,
    /// Too many wrong codes from this account or address: wait this many seconds.
    Throttled {
        wait_secs: i64,
    },
}

/// The open request with the user code `typed`, for the signed-in `user_id` at the client
/// address `addr` (its throttling key). Each look-up counts as a failure until it finds one.
pub async fn find(
    ctx: &Ctx,
    user_id: &str,
    addr: Option<&str>,
    typed: &str,
) -> Result<Found, SystemError> {
    let now = ctx.clock.unix();
    let keys = if ctx.config.limits.sign_in_throttle {
        throttle::device_keys(user_id, addr)
    } else {
        Vec::new()
    };
    let reserved = match throttle::admit(&ctx.store, &keys, now).await? {
        Admission::Go(reserved) => reserved,
        Admission::Wait(wait_secs) => {
            let event = Event::new(Kind::DeviceCodeThrottled)
                .user(user_id)
                .detail(format!("wait {wait_secs} s"));
            audit::record_secs(&ctx.store, now, event).await;
            return Ok(Found::Throttled { wait_secs });
        }
    };
    let Some(user_code) = UserCode::parse(typed) else {
        return Ok(Found::Nothing);
    };
    let row = match ctx.store.device_by_user_code(&user_code.hash()).await? {
        Some(row) if row.open(now) => row,
        _ => return Ok(Found::Nothing),
    };
    let client = match ctx.store.client(&row.client_id).await? {
        Some(c) if c.allows_grant(GrantType::DeviceCode) => c,
        _ => return Ok(Found::Nothing),
    };
    throttle::refund(&ctx.store, &reserved).await?;
    Ok(Found::Request(Box::new(DeviceRequest {
        user_code,
        scope: row.scope,
        client,
        row,
    })))
}

/// The person's answer to a request [`find`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Approve,
    Deny,
}

/// What an answer came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Decided {
    /// The device will receive its tokens at its next poll.
    Approved,
    /// The device hears `access_denied`.
    Denied,
    /// The request was answered meanwhile (another tab), expired, or this session ended.
    TooLate,
    /// The app needs a stronger sign-in than this session's, which a new sign-in gives (the
    /// account has the factor it needs).
    SignInAgain,
}

/// Answers `req` for the signed-in `session`. Approving stores the approval only while the
/// session is live and the request open, in one guarded commit; then, for a third-party app,
/// the consent the page just asked for.
pub async fn decide(
    ctx: &Ctx,
    session: &Session,
    req: &DeviceRequest,
    answer: Answer,
) -> Result<Decided, PageError> {
    let Some(user_id) = session.user_id.clone() else {
        return Ok(Decided::TooLate);
    };
    let now = ctx.clock.unix();
    let hash = &req.row.device_code_hash;
    if answer == Answer::Deny {
        if !ctx.store.deny_device(hash, now).await? {
            return Ok(Decided::TooLate);
        }
        let event = Event::new(Kind::DeviceDenied)
            .user(&user_id)
            .client(&req.client.client_id)
            .session(&session.handle);
        audit::record_secs(&ctx.store, now, event).await;
        return Ok(Decided::Denied);
    }
    match level::step_up(ctx, None, &req.client, session).await? {
        StepUp::Reached => {}
        StepUp::Ask { .. } => return Ok(Decided::SignInAgain),
        StepUp::Unmet => {
            return Err(PageError::Forbidden(format!(
                "{} needs a sign-in with two factors. Set up a second factor on your \
                 Security page first.",
                req.client.name
            )));
        }
    }
    let approved = approve(ctx, session, req, &user_id, now).await?;
    // The approval is the person's consent to a third-party app, remembered once it stands
    // (not for an answer that came too late). An approval needs no consent row to be stored:
    // the person allowed the app right here, and a disconnect meanwhile revokes it as a code.
    if approved == Decided::Approved && !req.client.first_party {
        ctx.store
            .grant_consent(&user_id, &req.client.client_id, req.scope, None, now)
            .await?;
    }
    Ok(approved)
}

/// Writes the approval: an authorization code under the device code's hash, the app as a
/// member of the session (for its logouts), and the audit event, under the guards (the
/// session live, the request open).
async fn approve(
    ctx: &Ctx,
    session: &Session,
    req: &DeviceRequest,
    user_id: &str,
    now: i64,
) -> Result<Decided, PageError> {
    let methods = crate::users::methods_of(session);
    let code_lifetime = infra::secs(ctx.config.tokens.code_lifetime);
    let bound = AuthCode {
        client_id: req.client.client_id.clone(),
        user_id: user_id.to_owned(),
        redirect_uri: DEVICE_REDIRECT.to_owned(),
        scope: req.scope,
        nonce: None,
        code_challenge: String::new(),
        sid: session.handle.clone(),
        auth_time: session.auth_time.map_or(now, |t| t.unix_timestamp()),
        amr: methods,
        acr: None,
        // A device polls at its interval (a minute at most): an approval in the request's
        // last second still leaves it a poll.
        expires_at: req.row.expires_at.max(now + code_lifetime),
        dpop_jkt: None,
    };
    let hash = &req.row.device_code_hash;
    let guards = vec![
        Guard::session_live(
            &session.handle,
            &bound.user_id,
            session.absolute_expires_at.unix_timestamp(),
        ),
        Guard::device_approved(hash, now),
    ];
    let event = Event::new(Kind::DeviceApproved)
        .user(&bound.user_id)
        .client(&req.client.client_id)
        .session(&session.handle)
        .detail(format!("scope \"{}\"", req.scope));
    let event = audit::prepare(audit::now_us(&ctx.clock), event);
    let rows = vec![
        Insert::auth_code(hash, &bound, now),
        Insert::session_member(&session.handle, &bound.client_id, &bound.user_id, now),
        Insert::audit(&event),
    ];
    let stored = ctx.store.insert_guarded(guards, rows).await;
    if let Ok(false) = stored {
        return Ok(Decided::TooLate);
    }
    let stored = stored.map(drop);
    audit::log(&event, &stored);
    stored.map_err(SystemError::from)?;
    Ok(Decided::Approved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_letters_of_the_alphabet_and_parse_leniently() {
        let code = UserCode::random().unwrap();
        assert_eq!(code.as_str().len(), 8);
        assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
        let shown = code.display();
        assert_eq!(shown.len(), 9);
        assert_eq!(UserCode::parse(&shown), Some(code.clone()));
        assert_eq!(UserCode::parse(&shown.to_lowercase()), Some(code));
        assert_eq!(
            UserCode::parse("bcdf ghjk").map(|c| c.display()),
            Some("BCDF-GHJK".into())
        );
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "BCDA-GHJK",
            "BCDF_GHJK",
            "ВCDF-GHJK",
        ] {
            assert_eq!(UserCode::parse(bad), None, "{bad:?}");
        }
        assert_eq!(UserCode::parse(&"-".repeat(100)), None);
    }

    #[test]
    fn user_code_letters_are_evenly_drawn() {
        let mut counts = [0usize; 20];
        for _ in 0..2000 {
            for b in UserCode::random().unwrap().as_str().bytes() {
                let i = ALPHABET.iter().position(|a| *a == b).unwrap();
                counts[i] += 1;
            }
        }
        // 16,000 letters, 800 expected each: far outside these bounds only if biased.
        assert!(counts.iter().all(|c| (600..1000).contains(c)), "{counts:?}");
    }
}
