//! "Security" (`/account/security`): the signed-in user's second factors. An authenticator
//! app: set one up (a QR code and the seed, then a code to prove it was added), see the
//! recovery codes once, and remove it with a current code (`users::second_factor`). Passkeys:
//! the list, with the forms that add and remove them (handled by the pages' passkeys module).
//!
//! Setting one up takes a recent sign-in (`fresh_sign_in`): otherwise whoever held a stolen
//! session for a moment could add their own app and lock the owner out.

use crate::context::SystemError;
use crate::paths;
use crate::protocol::error::PageError;
use crate::users::second_factor::{self, Checked, Confirmed};
use crate::web::error::no_store;
use crate::web::extract::{Page, PostedForm, Query, SignedIn};
use crate::web::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use time::OffsetDateTime;

/// An authenticator app being set up, for the page.
struct Setup {
    /// Base32, as the app takes it typed.
    secret: String,
    /// The same in groups of four, for reading.
    secret_grouped: String,
    /// The `otpauth://` URI as an SVG QR code (shapes only: nothing of the user's input).
    qr_svg: String,
}

/// A registered passkey, for the page.
pub(super) struct PasskeyItem {
    id: String,
    name: String,
    added: String,
    last_used: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "provider/security.html")]
pub(super) struct SecurityPage {
    username: String,
    csrf_token: String,
    /// When the app was confirmed, if one is on.
    enabled_since: Option<String>,
    /// Whether the password was typed recently enough to set one up.
    fresh: bool,
    codes_left: i64,
    setup: Option<Setup>,
    /// Shown once, right after the app is confirmed.
    recovery_codes: Vec<String>,
    notice: Option<&'static str>,
    pub(super) error: Option<String>,
    passkeys: Vec<PasskeyItem>,
    /// Passkeys are offered (the issuer is on a domain name).
    passkeys_offered: bool,
    /// The longest passkey name, in characters.
    max_name: usize,
}

/// Whether `me` typed the password recently enough to confirm an app being set up: three
/// times `fresh_sign_in` (time to find the phone and scan).
fn may_confirm(st: &AppState, me: &SignedIn) -> bool {
    let window = st.ctx.config.fresh_sign_in.saturating_mul(3);
    me.signed_in_within(st.ctx.clock.unix(), window)
}

/// Fine if `me` may confirm a factor being added ([`may_confirm`]); otherwise sign in again,
/// then back here.
pub(super) fn require_confirmable(st: &AppState, me: &SignedIn) -> Result<(), PageError> {
    if may_confirm(st, me) {
        Ok(())
    } else {
        Err(PageError::SignInAgain {
            next: paths::SECURITY,
        })
    }
}

fn date(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(super::login::rfc3339)
        .unwrap_or_default()
}

/// The page as `me`'s account stands now.
pub(super) async fn page_for(st: &AppState, me: &SignedIn) -> Result<SecurityPage, PageError> {
    let store = &st.ctx.store;
    let username = store
        .user_by_id(&me.user_id)
        .await?
        .map(|u| u.username)
        .unwrap_or_default();
    let factor = store.totp_factor(&me.user_id).await?;
    let enabled_since = factor.and_then(|f| f.confirmed_at).map(date);
    let codes_left = match enabled_since {
        Some(_) => store.recovery_codes_left(&me.user_id).await?,
        None => 0,
    };
    let passkeys = store
        .passkeys(&me.user_id)
        .await?
        .into_iter()
        .map(|p| PasskeyItem {
            id: p.id,
            name: p.name,
            added: date(p.created_at),
            last_used: p.last_used_at.map(date),
        })
        .collect();
    Ok(SecurityPage {
        username,
        csrf_token: me.session.csrf_token().to_owned(),
        enabled_since,
        codes_left,
        fresh: me.signed_in_within(st.ctx.clock.unix(), st.ctx.config.fresh_sign_in),
        setup: None,
        recovery_codes: Vec::new(),
        notice: None,
        error: None,
        passkeys,
        passkeys_offered: st.ctx.config.issuer.domain().is_some(),
        max_name: crate::users::passkeys::MAX_NAME_CHARS,
    })
}

/// The setup of seed `secret` for `account`, for the page.
fn setup_of(secret: &str, account: &str) -> Result<Setup, PageError> {
    let (_, qr_svg) = second_factor::setup(secret, account).ok_or_else(|| {
        SystemError::Internal(anyhow::anyhow!("a stored TOTP seed does not decode"))
    })?;
    let secret_grouped = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Setup {
        secret: secret.to_owned(),
        secret_grouped,
        qr_svg,
    })
}

/// The signed-in session a form came from (CSRF-checked), and the form.
pub(super) fn signed_in(
    posted: PostedForm,
) -> Result<(SignedIn, crate::protocol::params::Params), PageError> {
    posted
        .signed_in()?
        .ok_or_else(|| PageError::Forbidden("You are not signed in any more.".into()))
}

pub async fn show_security(
    State(st): State<AppState>,
    me: Option<SignedIn>,
    Query(query, _): Query<Page>,
) -> Result<Response, PageError> {
    let me = me.ok_or(PageError::SignInFirst {
        next: paths::SECURITY,
    })?;
    let mut page = page_for(&st, &me).await?;
    page.notice = match query.get("done") {
        Some("removed") => Some("Your authenticator app was removed."),
        Some("on") => Some("Your authenticator app is on already."),
        Some("passkey-added") => Some("Your passkey was added."),
        Some("passkey-removed") => Some("The passkey was removed."),
        Some("gone") => Some("That passkey was removed already."),
        _ => None,
    };
    Ok((no_store(), page).into_response())
}

/// Starts setting up an authenticator app: a new seed, shown as a QR code and as text.
pub async fn start_totp(
    State(st): State<AppState>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, _) = signed_in(posted)?;
    me.require_fresh(&st, paths::SECURITY)?;
    let secret = second_factor::new_secret();
    let now = st.ctx.clock.unix();
    if !st.ctx.store.begin_totp(&me.user_id, &secret, now).await? {
        let to = format!("{}?done=on", paths::SECURITY);
        return Ok((no_store(), Redirect::to(&to)).into_response());
    }
    let mut page = page_for(&st, &me).await?;
    page.setup = Some(setup_of(&secret, &page.username)?);
    Ok((no_store(), page).into_response())
}

/// Confirms the app being set up with a code from it; shows the recovery codes, once.
pub async fn confirm_totp(
    State(st): State<AppState>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, form) = signed_in(posted)?;
    require_confirmable(&st, &me)?;
    let secret = form.get("secret").unwrap_or("");
    let code = form.get("code").unwrap_or("");
    let confirmed = second_factor::confirm(&st.ctx, &me.user_id, secret, code).await?;
    let mut page = page_for(&st, &me).await?;
    match confirmed {
        Confirmed::Yes(codes) => {
            page.recovery_codes = codes;
            Ok((no_store(), page).into_response())
        }
        Confirmed::WrongCode => {
            // Only the seed being set up is shown again (never one typed into the form).
            let pending = st.ctx.store.totp_factor(&me.user_id).await?;
            match pending.filter(|f| f.confirmed_at.is_none() && f.secret == secret) {
                Some(f) => page.setup = Some(setup_of(&f.secret, &page.username)?),
                None => return Ok(gone()),
            }
            page.error = Some("That code is not right. Type the code the app shows now.".into());
            Ok((StatusCode::UNPROCESSABLE_ENTITY, no_store(), page).into_response())
        }
        Confirmed::Gone => Ok(gone()),
    }
}

/// Back to the page: the setup was replaced or finished elsewhere.
fn gone() -> Response {
    (no_store(), Redirect::to(paths::SECURITY)).into_response()
}

/// Removes the app (and its recovery codes) once a current code (or a recovery code) proves
/// the person at the keyboard holds it.
pub async fn remove_totp(
    State(st): State<AppState>,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (me, form) = signed_in(posted)?;
    let code = form.get("code").unwrap_or("");
    let checked = second_factor::check_code(&st.ctx, &me.user_id, code).await?;
    let (status, error, retry) = match checked {
        Checked::Proved(_) => {
            second_factor::remove(&st.ctx.store, &st.ctx.clock, &me.user_id, "the user").await?;
            let to = format!("{}?done=removed", paths::SECURITY);
            return Ok((no_store(), Redirect::to(&to)).into_response());
        }
        Checked::Refused => (
            StatusCode::UNAUTHORIZED,
            "That code is not right, or was used already.".to_owned(),
            None,
        ),
        Checked::Throttled { wait_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            super::login::wait_message("Too many wrong codes.", wait_secs),
            Some(HeaderValue::from(wait_secs)),
        ),
    };
    let mut page = page_for(&st, &me).await?;
    page.error = Some(error);
    let mut response = (status, no_store(), page).into_response();
    if let Some(retry) = retry {
        response.headers_mut().insert(header::RETRY_AFTER, retry);
    }
    Ok(response)
}
