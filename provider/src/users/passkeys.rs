//! Passkeys (WebAuthn Level 3): registering several per account, naming and removing them,
//! and signing in with one, as the second factor after a password, as a step-up, or alone
//! (a discoverable credential, no username typed).
//!
//! The ceremonies are the `webauthn-rs` crate's (kanidm's, maintained, audited, used by
//! several identity providers): parsing CBOR attestation objects and COSE keys and checking
//! every step of WebAuthn §7.1 and §7.2 is exactly what not to write by hand. Its 0.6 line
//! verifies signatures with the RustCrypto crates (through `crypto-glue`), not OpenSSL, so
//! the provider gains no C library and no second TLS stack beside the aws-lc-rs it signs
//! tokens with; its licence (MPL-2.0) binds changes to its own files only.
//!
//! - **Ceremony state is kept on the server** (`passkey_ceremonies`), for one browser session
//!   and one purpose at a time, for five minutes, and taken by the statement that reads it:
//!   an answer is checked once, on whichever instance (WebAuthn §13.4.3: a challenge is used
//!   once).
//! - **Registration** asks for user verification (a PIN or a biometric), a discoverable
//!   credential where the authenticator can keep one (`residentKey: preferred`, so the
//!   passkey can sign in alone), and no attestation (nothing about the device is sent or
//!   kept). A credential belongs to one account (WebAuthn §7.1 step 22).
//! - **Signing in** always requires user verification, so a passkey is two factors by itself
//!   (something held, and a PIN or biometric): `amr` is `hwk` (a device-bound key) or `swk`
//!   (a backup-eligible, synchronised one), with `user`, and the level is
//!   `urn:gatehouse:acr:mfa`. `hwk` and `swk` rest on the authenticator's own backup
//!   eligibility flag, as no attestation is asked: an app that must know a key is in
//!   hardware needs attestation, which Gatehouse does not offer. A discoverable answer's user
//!   handle must name the account the credential is registered to, and so must a known
//!   account's, when it has one. A signature counter above zero must move forward, checked
//!   in the statement that stores it (§7.2 step 22: a cloned authenticator is refused).
//!
//! The relying party id is the issuer's host, and the only origin accepted is the issuer's:
//! a provider on an IP address (which WebAuthn does not allow) offers no passkeys.

use crate::audit::{self, Event, Kind};
use crate::context::{Ctx, SystemError};
use crate::store::{Added, PasskeyRow, User};
use crate::types::{Method, Methods};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use webauthn_rs::prelude::{
    AuthenticationResult, Credential, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder, WebauthnError,
};
use webauthn_rs_proto::ResidentKeyRequirement;

/// How long a ceremony may take (the browser's prompt included).
pub const CEREMONY_SECS: i64 = 300;
/// Passkeys one account may register.
pub const MAX_PASSKEYS: usize = 20;
/// The longest name a passkey may be given, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// What a ceremony is for. One of each may be under way in a browser session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Registering a passkey for the signed-in account.
    Register,
    /// Signing in with a passkey alone: no account named, the authenticator offers its own.
    SignIn,
    /// The second step of a sign-in whose password was right.
    SecondFactor,
    /// A signed-in session stepping up for an app that asks for two factors.
    StepUp,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SignIn => "sign-in",
            Self::SecondFactor => "second-factor",
            Self::StepUp => "step-up",
        }
    }
}

/// Why a passkey was not registered or did not sign in: a message for the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Passkeys need the provider on a domain name.")]
    Unavailable,
    #[error("That took too long, or was answered already. Try again.")]
    Expired,
    #[error("The passkey's answer did not check out. Try again.")]
    Invalid,
    #[error("That passkey is not registered for this account here.")]
    Unknown,
    #[error("That passkey is registered already.")]
    Taken,
    #[error("This account has no passkey.")]
    NoPasskey,
    #[error("This account has as many passkeys as it may have. Remove one first.")]
    TooMany,
    #[error("Give the passkey a name of at most 64 characters.")]
    BadName,
    #[error("The passkey's counter went back: it may have been copied. It was not accepted.")]
    Cloned,
}

/// A passkey refused, or the provider failing.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    System(#[from] SystemError),
}

impl From<sqlx::Error> for PasskeyError {
    fn from(e: sqlx::Error) -> Self {
        Self::System(e.into())
    }
}

/// A passkey's successful answer.
#[derive(Debug)]
pub struct Proved {
    /// The account it is registered to.
    pub user_id: String,
    /// `hwk` or `swk`, and `user`.
    pub methods: Methods,
}

/// The WebAuthn relying party: the issuer's host as its id, the issuer's origin as the only
/// one accepted.
fn relying_party(ctx: &Ctx) -> Result<Webauthn, PasskeyError> {
    let issuer = &ctx.config.issuer;
    let host = issuer.domain().ok_or(Refusal::Unavailable)?;
    let origin =
        Url::parse(&issuer.origin().ascii_serialization()).map_err(|_| Refusal::Unavailable)?;
    WebauthnBuilder::new(host, &origin)
        .and_then(|b| {
            b.rp_name("Gatehouse")
                .timeout(std::time::Duration::from_secs(240))
                .build()
        })
        .map_err(|_| Refusal::Unavailable.into())
}

/// The WebAuthn user handle of `user_id` (the account's id is a random UUID, nothing
/// personal: WebAuthn §14.6.1).
fn user_handle(user_id: &str) -> Result<Uuid, Refusal> {
    Uuid::parse_str(user_id).map_err(|_| Refusal::Unavailable)
}

fn encode_id(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn corrupt(what: &str, e: &serde_json::Error) -> SystemError {
    SystemError::Internal(anyhow::anyhow!("a stored {what} does not decode: {e}"))
}

/// A ceremony's state as [`begin`] kept it.
fn ceremony_state<T: serde::de::DeserializeOwned>(state: &str) -> Result<T, SystemError> {
    serde_json::from_str(state).map_err(|e| corrupt("ceremony", &e))
}

fn stored(row: &PasskeyRow) -> Result<Passkey, SystemError> {
    serde_json::from_str(&row.passkey).map_err(|e| corrupt("passkey", &e))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, SystemError> {
    serde_json::to_string(value).map_err(|e| SystemError::Internal(e.into()))
}

/// Keeps `state` for `purpose` in `session_handle` and answers with `options` (the JSON the
/// browser's `navigator.credentials` call takes).
async fn begin<S: serde::Serialize, O: serde::Serialize>(
    ctx: &Ctx,
    (session_handle, purpose, user_id): (&str, Purpose, Option<&str>),
    options: &O,
    state: &S,
) -> Result<serde_json::Value, PasskeyError> {
    let expires_at = ctx.clock.unix() + CEREMONY_SECS;
    let state = to_json(state)?;
    ctx.store
        .put_ceremony(
            session_handle,
            purpose.as_str(),
            user_id,
            &state,
            expires_at,
        )
        .await?;
    serde_json::to_value(options).map_err(|e| SystemError::Internal(e.into()).into())
}

/// Takes the ceremony for `purpose` of `session_handle`, which must have been started for
/// `user_id`.
async fn take(
    ctx: &Ctx,
    session_handle: &str,
    purpose: Purpose,
    user_id: Option<&str>,
) -> Result<String, PasskeyError> {
    let now = ctx.clock.unix();
    let ceremony = ctx
        .store
        .take_ceremony(session_handle, purpose.as_str(), now)
        .await?
        .ok_or(Refusal::Expired)?;
    if ceremony.user_id.as_deref() != user_id {
        return Err(Refusal::Expired.into());
    }
    Ok(ceremony.state)
}

/// Starts registering a passkey for `user` in browser session `session_handle`: the options
/// for `navigator.credentials.create`.
pub async fn start_registration(
    ctx: &Ctx,
    session_handle: &str,
    user: &User,
) -> Result<serde_json::Value, PasskeyError> {
    let rp = relying_party(ctx)?;
    let registered = ctx.store.passkeys(&user.id).await?;
    if registered.len() >= MAX_PASSKEYS {
        return Err(Refusal::TooMany.into());
    }
    let exclude = registered
        .iter()
        .map(|r| stored(r).map(|p| p.cred_id().clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let display = user.name.as_deref().unwrap_or(&user.username);
    let (mut options, state) = rp
        .start_passkey_registration(
            user_handle(&user.id)?,
            &user.username,
            display,
            Some(exclude),
        )
        .map_err(|_| Refusal::Unavailable)?;
    // Discoverable where the authenticator can keep it (WebAuthn §5.4.6), so that the
    // passkey can sign in alone; the answer is accepted either way.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Preferred);
    }
    let ceremony = (session_handle, Purpose::Register, Some(user.id.as_str()));
    begin(ctx, ceremony, &options, &state).await
}

/// A passkey name as typed: trimmed, one to [`MAX_NAME_CHARS`] characters, no control
/// characters.
pub fn clean_name(name: &str) -> Result<String, Refusal> {
    let name = name.trim();
    let fine = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.chars().any(char::is_control);
    if fine {
        Ok(name.to_owned())
    } else {
        Err(Refusal::BadName)
    }
}

/// Finishes registering the passkey that answered (`credential`, the browser's JSON) under
/// `name`, for `user_id` in `session_handle`.
pub async fn finish_registration(
    ctx: &Ctx,
    session_handle: &str,
    user_id: &str,
    name: &str,
    credential: &str,
) -> Result<PasskeyRow, PasskeyError> {
    let name = clean_name(name)?;
    let rp = relying_party(ctx)?;
    let state = take(ctx, session_handle, Purpose::Register, Some(user_id)).await?;
    let state: PasskeyRegistration = ceremony_state(&state)?;
    let answer: RegisterPublicKeyCredential =
        serde_json::from_str(credential).map_err(|_| Refusal::Invalid)?;
    let passkey = match rp.finish_passkey_registration(&answer, &state) {
        Ok(passkey) => passkey,
        Err(e) => {
            // One of the account's own, which the browser should have refused
            // (`excludeCredentials`): webauthn-rs reports it as an altered algorithm.
            let excluded = matches!(e, WebauthnError::CredentialAlteredAlgFromRequest);
            let claimed = encode_id(&answer.raw_id);
            if excluded && ctx.store.passkey_by_credential(&claimed).await?.is_some() {
                return Err(Refusal::Taken.into());
            }
            tracing::info!(error = %e, "passkey registration refused");
            return Err(Refusal::Invalid.into());
        }
    };
    let now = ctx.clock.unix();
    let row = PasskeyRow {
        id: infra::secret::random_handle().map_err(SystemError::from)?,
        user_id: user_id.to_owned(),
        credential_id: encode_id(passkey.cred_id()),
        name,
        passkey: to_json(&passkey)?,
        sign_count: i64::from(Credential::from(passkey.clone()).counter),
        created_at: now,
        last_used_at: None,
    };
    let max = i64::try_from(MAX_PASSKEYS).unwrap_or(i64::MAX);
    match ctx.store.add_passkey(&row, max).await? {
        Added::Yes => {}
        Added::Taken => return Err(Refusal::Taken.into()),
        Added::TooMany => return Err(Refusal::TooMany.into()),
        Added::Gone => return Err(Refusal::Expired.into()),
    }
    let event = Event::new(Kind::SecondFactorEnrolled)
        .user(user_id)
        .detail(format!("passkey {:?}", row.name));
    audit::record(&ctx.store, &ctx.clock, event).await;
    Ok(row)
}

/// Starts a sign-in with a passkey for `purpose` in `session_handle`: for a known account
/// (`user_id`: a second factor, a step-up) with its passkeys allowed, or with any
/// discoverable one (`None`). The options for `navigator.credentials.get`.
pub async fn start_sign_in(
    ctx: &Ctx,
    session_handle: &str,
    purpose: Purpose,
    user_id: Option<&str>,
) -> Result<serde_json::Value, PasskeyError> {
    let rp = relying_party(ctx)?;
    let ceremony = (session_handle, purpose, user_id);
    let Some(user_id) = user_id else {
        let (mut options, state) = rp
            .start_discoverable_authentication()
            .map_err(|_| Refusal::Unavailable)?;
        // A button asked for it: the browser's own prompt, not autofill (WebAuthn §5.1.4).
        options.mediation = None;
        return begin(ctx, ceremony, &options, &state).await;
    };
    let keys = ctx
        .store
        .passkeys(user_id)
        .await?
        .iter()
        .map(stored)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(Refusal::NoPasskey.into());
    }
    let (options, state) = rp
        .start_passkey_authentication(&keys)
        .map_err(|_| Refusal::Unavailable)?;
    begin(ctx, ceremony, &options, &state).await
}

/// Checks a passkey's answer (`credential`, the browser's JSON) to the ceremony for
/// `purpose` in `session_handle`, started for `user_id` (`None`: a discoverable sign-in),
/// and records its use; a refusal is recorded in the audit trail.
pub async fn finish_sign_in(
    ctx: &Ctx,
    session_handle: &str,
    purpose: Purpose,
    user_id: Option<&str>,
    credential: &str,
) -> Result<Proved, PasskeyError> {
    let checked = check_answer(ctx, session_handle, purpose, user_id, credential).await;
    if let Err(PasskeyError::Refused(why)) = &checked {
        let event = Event::new(Kind::SignInFailed)
            .user_opt(user_id)
            .detail(format!("passkey ({}): {why}", purpose.as_str()));
        audit::record(&ctx.store, &ctx.clock, event).await;
    }
    checked
}

async fn check_answer(
    ctx: &Ctx,
    session_handle: &str,
    purpose: Purpose,
    user_id: Option<&str>,
    credential: &str,
) -> Result<Proved, PasskeyError> {
    let rp = relying_party(ctx)?;
    let state = take(ctx, session_handle, purpose, user_id).await?;
    let answer: PublicKeyCredential =
        serde_json::from_str(credential).map_err(|_| Refusal::Invalid)?;
    let credential_id = encode_id(answer.get_credential_id());
    let row = ctx
        .store
        .passkey_by_credential(&credential_id)
        .await?
        .ok_or(Refusal::Unknown)?;
    let mut passkey = stored(&row)?;
    let checked = match user_id {
        Some(expected) => {
            // The credential is this account's, and so is the user handle, if the
            // authenticator gave one (WebAuthn §7.2 step 6).
            let owner = user_handle(expected)?;
            let other = answer
                .get_user_unique_id()
                .is_some_and(|h| h != owner.as_bytes().as_slice());
            if row.user_id != expected || other {
                return Err(Refusal::Unknown.into());
            }
            let state: PasskeyAuthentication = ceremony_state(&state)?;
            rp.finish_passkey_authentication(&answer, &state)
        }
        None => {
            // The authenticator names the account (its user handle): it must be the one the
            // credential is registered to.
            let (handle, _) = rp
                .identify_discoverable_authentication(&answer)
                .map_err(|_| Refusal::Invalid)?;
            if handle != user_handle(&row.user_id)? {
                return Err(Refusal::Unknown.into());
            }
            let state: DiscoverableAuthentication = ceremony_state(&state)?;
            let key = Credential::from(passkey.clone());
            rp.finish_discoverable_authentication_v2(&answer, state, key)
        }
    };
    let result = match checked {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => return Err(cloned(ctx, &row).await),
        Err(e) => {
            tracing::info!(error = %e, "passkey sign-in refused");
            return Err(Refusal::Invalid.into());
        }
    };
    record_use(ctx, &row, &mut passkey, &result).await?;
    Ok(Proved {
        user_id: row.user_id,
        methods: methods_of(&result)?,
    })
}

/// What a checked answer proves: `swk` for a key that may be synchronised (backup
/// eligible), `hwk` for one bound to its device, and `user` (verified, always asked).
fn methods_of(result: &AuthenticationResult) -> Result<Methods, Refusal> {
    if !result.user_verified() {
        return Err(Refusal::Invalid);
    }
    let key = if result.backup_eligible() {
        Method::Swk
    } else {
        Method::Hwk
    };
    Ok(Methods::NONE.with(key).with(Method::User))
}

/// Stores the credential as `result` leaves it (counter, backup state) and when it was used;
/// a counter that did not move past the stored one in that statement refuses the answer.
async fn record_use(
    ctx: &Ctx,
    row: &PasskeyRow,
    passkey: &mut Passkey,
    result: &AuthenticationResult,
) -> Result<(), PasskeyError> {
    passkey.update_credential(result);
    let count = i64::from(result.counter());
    let json = to_json(passkey)?;
    let now = ctx.clock.unix();
    if ctx.store.use_passkey(&row.id, &json, count, now).await? {
        return Ok(());
    }
    // Removed meanwhile, or its counter did not move on.
    if ctx
        .store
        .passkey_by_credential(&row.credential_id)
        .await?
        .is_none()
    {
        return Err(Refusal::Unknown.into());
    }
    Err(cloned(ctx, row).await)
}

/// A use of passkey `row` whose signature counter did not move past the stored one (WebAuthn
/// §7.2 step 22: the authenticator may have been cloned): refused, and recorded.
async fn cloned(ctx: &Ctx, row: &PasskeyRow) -> PasskeyError {
    tracing::warn!(passkey = %row.id, "passkey counter did not move forward");
    let event = Event::new(Kind::SecondFactorFailed)
        .user(&row.user_id)
        .detail(format!(
            "passkey {:?}: counter did not move forward",
            row.name
        ));
    audit::record(&ctx.store, &ctx.clock, event).await;
    Refusal::Cloned.into()
}

/// Removes passkey `id` of `user_id`; `by` says who, for the audit trail. False if there was
/// none.
pub async fn remove(ctx: &Ctx, user_id: &str, id: &str, by: &str) -> Result<bool, SystemError> {
    let Some(name) = ctx.store.remove_passkey(user_id, id).await? else {
        return Ok(false);
    };
    let event = Event::new(Kind::SecondFactorRemoved)
        .user(user_id)
        .detail(format!("passkey {name:?}, by {by}"));
    audit::record(&ctx.store, &ctx.clock, event).await;
    Ok(true)
}

/// Removes every passkey of `user_id`, for an operator (`provider users mfa reset`); how
/// many there were.
pub async fn remove_all(
    store: &crate::store::Store,
    clock: &infra::Clock,
    user_id: &str,
) -> Result<u64, sqlx::Error> {
    let removed = store.remove_passkeys(user_id).await?;
    if removed > 0 {
        let event = Event::new(Kind::SecondFactorRemoved)
            .user(user_id)
            .detail(format!("{removed} passkey(s), by an operator"));
        audit::record(store, clock, event).await;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("  Laptop  "), Ok("Laptop".to_owned()));
        assert_eq!(clean_name("clé 🔑"), Ok("clé 🔑".to_owned()));
        assert_eq!(
            clean_name(&"é".repeat(MAX_NAME_CHARS)).map(|n| n.len()),
            Ok(128)
        );
        for bad in ["", "   ", "a\u{0}b", "line\nbreak"] {
            assert_eq!(clean_name(bad), Err(Refusal::BadName), "{bad:?}");
        }
        assert_eq!(
            clean_name(&"x".repeat(MAX_NAME_CHARS + 1)),
            Err(Refusal::BadName)
        );
    }
}
