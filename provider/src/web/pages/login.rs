//! The sign-in page (`GET`/`POST /login`), its second step for an account with a second
//! factor (`POST /login/code`: an authenticator app's code, a recovery code or a passkey),
//! step-up for a browser signed in with a password whose app asks for two factors
//! (`POST /login/step-up`), and the account home (`GET /`). The rules are `users::sign_in`,
//! `users::second_factor` and `users::passkeys` (whose browser side is the pages' passkeys
//! module); a sign-in that finishes an authorization request goes on to
//! `protocol::authorize::proceed`.

use crate::context::SystemError;
use crate::paths;
use crate::protocol::authorize::request::AuthRequest;
use crate::protocol::authorize::{self, OnSignInPage, pending};
use crate::protocol::error::PageError;
use crate::types::{Method, Methods};
use crate::users::passkeys::{self, PasskeyError, Purpose};
use crate::users::second_factor::{self, Checked, Factors};
use crate::users::{self, Attempt, MAX_USERNAME_BYTES, SignIn};
use crate::web::error::no_store;
use crate::web::extract::{Browser, ClientMeta, Page, PostedForm, Query, SignedIn};
use crate::web::oauth::authorize::follow;
use crate::web::session::{or_new, remember};
use crate::web::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use sessions::Session;
use std::borrow::Cow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where a sign-in without an authorization request returns: one of our own pages from a
/// fixed list, or the device page with a well-formed user code (rebuilt from its letters), so
/// `next` can never become an open redirect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Next(Cow<'static, str>);

impl Next {
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// [`Next`] from a form or a query.
pub(super) fn local_next(next: Option<&str>) -> Next {
    Next(match next {
        Some(paths::SESSIONS) => paths::SESSIONS.into(),
        Some(paths::SECURITY) => paths::SECURITY.into(),
        Some(paths::APPS) => paths::APPS.into(),
        Some(paths::DEVELOPER) => paths::DEVELOPER.into(),
        Some(paths::DEVICE) => paths::DEVICE.into(),
        Some(other) => match crate::protocol::device::page_with_code(other) {
            Some(device) => device.into(),
            None => paths::HOME.into(),
        },
        None => paths::HOME.into(),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "provider/login.html")]
pub(super) struct LoginPage {
    csrf_token: String,
    pub(super) request: String,
    next: Next,
    username: String,
    client_name: Option<String>,
    pub(super) error: Option<String>,
    /// Asked again before a sensitive action (`fresh_sign_in`).
    again: bool,
    /// "Keep me signed in" is offered: for this many days at most.
    remember_days: Option<u64>,
    /// ... and was ticked (re-shown after a refusal).
    remember: bool,
    /// "Sign in with a passkey" is offered (the issuer is on a domain name).
    passkeys: bool,
}

/// The second step: the code of the account's authenticator app, or a recovery code.
#[derive(Template, WebTemplate)]
#[template(path = "provider/second_factor.html")]
struct CodePage {
    csrf_token: String,
    request: String,
    next: Next,
    error: Option<String>,
    /// Where the form posts: the second step of a sign-in, or a step-up.
    action: &'static str,
    /// Stepping up: the name of the app that asks for two factors.
    step_up: Option<String>,
    /// The account's second factors: which ways the page offers.
    factors: Factors,
}

impl CodePage {
    /// The second step of a sign-in, for an account with `factors`.
    fn sign_in(session: &Session, request: String, next: Next, factors: Factors) -> Self {
        Self {
            csrf_token: session.csrf_token().to_owned(),
            request,
            next,
            error: None,
            action: paths::LOGIN_CODE,
            step_up: None,
            factors,
        }
    }

    /// The purpose of a passkey answering on this page.
    fn purpose(&self) -> Purpose {
        if self.step_up.is_some() {
            Purpose::StepUp
        } else {
            Purpose::SecondFactor
        }
    }

    /// Step-up for `req` (the pending request `request`), asked by its app.
    async fn step_up(
        st: &AppState,
        session: &Session,
        req: &AuthRequest,
        request: String,
    ) -> Result<Self, PageError> {
        let app = st.ctx.store.client(&req.client_id).await?;
        let factors = match &session.user_id {
            Some(user_id) => second_factor::factors(&st.ctx.store, user_id).await?,
            None => Factors::default(),
        };
        Ok(Self {
            action: paths::LOGIN_STEP_UP,
            step_up: Some(app.map_or_else(|| "The app".to_owned(), |c| c.name)),
            ..Self::sign_in(session, request, local_next(None), factors)
        })
    }
}

fn nothing_to_step_up() -> PageError {
    PageError::Forbidden(
        "Nothing here waits for a code alone. Go back to the app and start again.".into(),
    )
}

pub(super) fn sign_in_expired() -> PageError {
    PageError::Forbidden("Your sign-in page expired. Go back to the app and start again.".into())
}

/// Where a sign-in waiting for its second step keeps the first step's result, in the
/// (pre-login) session: the account, the credential its password was checked against, and
/// when.
const SECOND_FACTOR_KEY: &str = "second_factor";
/// How long the second step may take.
const SECOND_FACTOR_SECS: i64 = 300;

/// The first step's result kept in `session`, if it is recent enough: the account, the
/// credential, and whether "keep me signed in" was ticked.
pub(super) fn waiting_second_factor(session: &Session, now: i64) -> Option<(String, String, bool)> {
    let kept = session.data.get(SECOND_FACTOR_KEY)?;
    let at = kept.get("at")?.as_i64()?;
    if now - at > SECOND_FACTOR_SECS {
        return None;
    }
    Some((
        kept.get("user_id")?.as_str()?.to_owned(),
        kept.get("credential")?.as_str()?.to_owned(),
        kept.get("remember").and_then(serde_json::Value::as_bool) == Some(true),
    ))
}

/// The days "keep me signed in" lasts at most, if the configuration offers it.
pub(super) fn remember_days(st: &AppState) -> Option<u64> {
    let kept = &st.ctx.config.session.remember;
    kept.enabled
        .then(|| kept.absolute_lifetime.as_secs().div_ceil(24 * 3600))
}

/// Sets (or, with `None`, drops) the first step's result in `session`'s data.
pub(super) fn keep_second_factor(session: &mut Session, kept: Option<serde_json::Value>) {
    if let Some(data) = session.data.as_object_mut() {
        match kept {
            Some(v) => data.insert(SECOND_FACTOR_KEY.into(), v),
            None => data.remove(SECOND_FACTOR_KEY),
        };
    }
}

#[derive(Template, WebTemplate, Default)]
#[template(path = "provider/home.html")]
struct HomePage {
    user: Option<String>,
    started: String,
    auth_time: String,
    idle_expires: String,
    absolute_expires: String,
    /// Shows the way to the developer console.
    developer: bool,
}

pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub async fn show_home(
    State(st): State<AppState>,
    me: Option<SignedIn>,
) -> Result<Response, PageError> {
    let Some(SignedIn {
        session: s,
        user_id,
    }) = me
    else {
        return Ok((no_store(), HomePage::default()).into_response());
    };
    let account = st.ctx.store.user_by_id(&user_id).await?;
    let page = HomePage {
        developer: account.as_ref().is_some_and(|u| u.developer),
        user: account.map(|u| u.username),
        started: rfc3339(s.created_at),
        auth_time: s.auth_time.map(rfc3339).unwrap_or_default(),
        idle_expires: rfc3339(s.idle_expires_at),
        absolute_expires: rfc3339(s.absolute_expires_at),
    };
    Ok((no_store(), page).into_response())
}

/// The page for `session`, about the pending request `request_id` (if it is one).
pub(super) async fn login_page(
    st: &AppState,
    session: &Session,
    request_id: &str,
    next: Option<&str>,
) -> Result<LoginPage, PageError> {
    let pending = pending::pending(&st.ctx, session, request_id).await?;
    let client_name = match &pending {
        Some(p) => st.ctx.store.client(&p.client_id).await?.map(|c| c.name),
        None => None,
    };
    Ok(LoginPage {
        csrf_token: session.csrf_token().to_owned(),
        request: match pending {
            Some(_) => request_id.to_owned(),
            None => String::new(),
        },
        next: local_next(next),
        username: pending.and_then(|p| p.login_hint).unwrap_or_default(),
        client_name,
        error: None,
        again: false,
        remember_days: remember_days(st),
        // Signing in again on a kept session keeps it, unless the box is unticked.
        remember: session.remembered(),
        passkeys: st.ctx.config.issuer.domain().is_some(),
    })
}

pub async fn show_login(
    State(st): State<AppState>,
    meta: ClientMeta,
    browser: Browser,
    Query(query, _): Query<Page>,
) -> Result<Response, PageError> {
    let (session, jar) = or_new(&st, browser.jar, browser.session, &meta).await?;
    let request = query.get("request").unwrap_or("");
    // Signed in (meanwhile, in another tab, or before an app asked for two factors): the
    // request goes on when that sign-in will do for it, or only its second factor is asked.
    match authorize::on_sign_in_page(&st.ctx, &session, request).await {
        Ok(OnSignInPage::Password) => {}
        Ok(OnSignInPage::Go(n)) => return Ok(follow(&st, jar, Some(session), &meta, Ok(n)).await),
        Ok(OnSignInPage::StepUp(req)) => {
            let page = CodePage::step_up(&st, &session, &req, request.to_owned()).await?;
            return Ok((jar, no_store(), page).into_response());
        }
        Err(e) => return Ok((jar, e).into_response()),
    }
    let mut page = login_page(&st, &session, request, query.get("next")).await?;
    page.again = query.get("again") == Some("1");
    Ok((jar, no_store(), page).into_response())
}

pub async fn submit_login(
    State(st): State<AppState>,
    meta: ClientMeta,
    jar: CookieJar,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (mut session, form) = posted.with_session()?.ok_or_else(sign_in_expired)?;
    let request = form.get("request").unwrap_or("").to_owned();
    let username = form.get("username").unwrap_or("");
    let mut page = login_page(&st, &session, &request, form.get("next")).await?;
    page.request = request.clone();
    page.username = username.chars().take(MAX_USERNAME_BYTES).collect();
    page.remember = page.remember_days.is_some() && form.get("remember") == Some("yes");
    let attempt = Attempt {
        username,
        password: form.get("password").unwrap_or(""),
        addr: meta.key.as_deref(),
        remember: page.remember,
    };
    // A new first step replaces any earlier one waiting for its code.
    keep_second_factor(&mut session, None);
    match users::sign_in(&st.ctx, &mut session, attempt).await? {
        SignIn::SignedIn { .. } => {
            let jar = remember(&st, jar, &session);
            Ok(after_sign_in(&st, jar, session, &meta, &request, page.next).await)
        }
        SignIn::SecondFactor {
            user_id,
            credential,
        } => {
            let first = (user_id, credential, page.remember);
            let code = ask_for_code(&st, &mut session, first, request, page.next).await?;
            Ok((jar, no_store(), code).into_response())
        }
        refused => Ok(not_signed_in(refused, page)),
    }
}

/// Keeps the password step's result (the account and the credential checked) in `session`,
/// and the page asking for the code.
async fn ask_for_code(
    st: &AppState,
    session: &mut Session,
    (user_id, credential, remember): (String, String, bool),
    request: String,
    next: Next,
) -> Result<CodePage, PageError> {
    let factors = second_factor::factors(&st.ctx.store, &user_id).await?;
    let kept = serde_json::json!({
        "user_id": user_id,
        "credential": credential,
        "remember": remember,
        "at": st.ctx.clock.unix(),
    });
    keep_second_factor(session, Some(kept));
    if !st
        .ctx
        .sessions
        .save(session)
        .await
        .map_err(SystemError::from)?
    {
        return Err(PageError::bad_request(
            "This browser's sign-in changed meanwhile. Go back to the app and start again.",
        ));
    }
    Ok(CodePage::sign_in(session, request, next, factors))
}

/// The code page again, saying why the code did not sign in (`None`: it did).
fn code_refused(checked: Checked, mut page: CodePage) -> Option<Response> {
    match checked {
        Checked::Proved(_) => None,
        Checked::Refused => {
            page.error = Some("That code is not right, or was used already.".into());
            Some((StatusCode::UNAUTHORIZED, no_store(), page).into_response())
        }
        Checked::Throttled { wait_secs } => {
            page.error = Some(wait_message("Too many wrong codes.", wait_secs));
            let retry = [(header::RETRY_AFTER, HeaderValue::from(wait_secs))];
            Some((StatusCode::TOO_MANY_REQUESTS, retry, no_store(), page).into_response())
        }
    }
}

/// What the code page's form proves for `user_id`: the methods of a passkey's answer (its
/// `credential` field), or else of a code (an app's or a recovery code); or the page again,
/// saying why not.
async fn check_second(
    st: &AppState,
    session: &Session,
    user_id: &str,
    form: &crate::protocol::params::Params,
    mut page: CodePage,
) -> Result<Result<Methods, Response>, PageError> {
    if let Some(answer) = form.get("credential").filter(|c| !c.is_empty()) {
        let purpose = page.purpose();
        let proved =
            passkeys::finish_sign_in(&st.ctx, &session.handle, purpose, Some(user_id), answer);
        return match proved.await {
            Ok(proved) => Ok(Ok(proved.methods)),
            Err(PasskeyError::Refused(why)) => {
                page.error = Some(why.to_string());
                Ok(Err(
                    (StatusCode::UNAUTHORIZED, no_store(), page).into_response()
                ))
            }
            Err(PasskeyError::System(e)) => Err(e.into()),
        };
    }
    let code = form.get("code").unwrap_or("");
    let checked = second_factor::check_code(&st.ctx, user_id, code).await?;
    Ok(match code_refused(checked, page) {
        Some(refused) => Err(refused),
        None => Ok(Methods::NONE.with(Method::Otp)),
    })
}

/// The second step: a code of the account's authenticator app (a recovery code, or a passkey)
/// for the sign-in whose password step this session keeps; then signed in as after a password. If
/// the account changed since the password (a new one, disabled, signed out everywhere), back
/// to the password, and the code is neither checked nor spent.
pub async fn submit_code(
    State(st): State<AppState>,
    meta: ClientMeta,
    jar: CookieJar,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (mut session, form) = posted.with_session()?.ok_or_else(sign_in_expired)?;
    let request = form.get("request").unwrap_or("").to_owned();
    let next = local_next(form.get("next"));
    let (user_id, credential, keep) =
        waiting_second_factor(&session, st.ctx.clock.unix()).ok_or_else(sign_in_expired)?;
    let Some(user) = users::second_step_account(&st.ctx, &user_id, &credential).await? else {
        return back_to_password(&st, &session, request, next, SignIn::Refused).await;
    };
    let factors = second_factor::factors(&st.ctx.store, &user_id).await?;
    let page = CodePage::sign_in(&session, request.clone(), next.clone(), factors);
    let second = match check_second(&st, &session, &user_id, &form, page).await? {
        Ok(second) => second,
        Err(refused) => return Ok(refused),
    };
    keep_second_factor(&mut session, None);
    match users::finish_second_factor(&st.ctx, &mut session, user, second, keep).await? {
        SignIn::SignedIn { .. } => {
            let jar = remember(&st, jar, &session);
            Ok(after_sign_in(&st, jar, session, &meta, &request, next).await)
        }
        refused => back_to_password(&st, &session, request, next, refused).await,
    }
}

/// Step-up: the code of the signed-in person's authenticator app (or a recovery code), for
/// the pending request `request` whose app asks for two factors. The session is kept, with a
/// new id, the methods it now has, and `auth_time` now; then the request goes on.
pub async fn submit_step_up(
    State(st): State<AppState>,
    meta: ClientMeta,
    jar: CookieJar,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let (mut session, form) = posted.with_session()?.ok_or_else(sign_in_expired)?;
    let user_id = session.user_id.clone().ok_or_else(sign_in_expired)?;
    let request = form.get("request").unwrap_or("").to_owned();
    // Only a request that waits for a second factor alone: never one that wants the password
    // again (`prompt=login`, `max_age`), which a code must not finish.
    let req = match authorize::waiting_for_step_up(&st.ctx, &session, &request).await {
        Ok(Some(req)) => req,
        Ok(None) => return Err(nothing_to_step_up()),
        Err(e) => return Ok((jar, e).into_response()),
    };
    let page = CodePage::step_up(&st, &session, &req, request.clone()).await?;
    let added = match check_second(&st, &session, &user_id, &form, page).await? {
        Ok(added) => added,
        Err(refused) => return Ok(refused),
    };
    if !users::step_up(&st.ctx, &mut session, added).await? {
        return Err(sign_in_expired());
    }
    let jar = remember(&st, jar, &session);
    Ok(after_sign_in(&st, jar, session, &meta, &request, local_next(None)).await)
}

/// The password page again, saying why the sign-in did not complete.
pub(super) async fn back_to_password(
    st: &AppState,
    session: &Session,
    request: String,
    next: Next,
    outcome: SignIn,
) -> Result<Response, PageError> {
    let mut login = login_page(st, session, &request, Some(next.as_str())).await?;
    login.request = request;
    Ok(not_signed_in(outcome, login))
}

/// `why`, and how long to wait before trying again.
pub(super) fn wait_message(why: &str, wait_secs: i64) -> String {
    let plural = if wait_secs == 1 { "" } else { "s" };
    format!("{why} Wait {wait_secs} second{plural} and try again.")
}

/// The sign-in page again, saying why the attempt did not sign anyone in.
fn not_signed_in(outcome: SignIn, mut page: LoginPage) -> Response {
    let (status, error) = match outcome {
        SignIn::Throttled { wait_secs } => {
            page.error = Some(wait_message("Too many failed attempts.", wait_secs));
            let retry = [(header::RETRY_AFTER, HeaderValue::from(wait_secs))];
            return (StatusCode::TOO_MANY_REQUESTS, retry, no_store(), page).into_response();
        }
        SignIn::Superseded => (
            StatusCode::CONFLICT,
            "This browser signed in twice at once, and the other sign-in went first. Reload \
             the app to go on.",
        ),
        SignIn::Refused | SignIn::SignedIn { .. } | SignIn::SecondFactor { .. } => {
            (StatusCode::UNAUTHORIZED, "Incorrect username or password.")
        }
    };
    page.error = Some(error.to_owned());
    (status, no_store(), page).into_response()
}

/// Signed in: on with the pending authorization request, or back to the page asked for.
pub(super) async fn after_sign_in(
    st: &AppState,
    jar: CookieJar,
    session: Session,
    meta: &ClientMeta,
    request: &str,
    next: Next,
) -> Response {
    match authorize::resume(&st.ctx, &session, request).await {
        Ok(None) => (jar, no_store(), Redirect::to(next.as_str())).into_response(),
        Ok(Some(n)) => follow(st, jar, Some(session), meta, Ok(n)).await,
        Err(e) => (jar, e).into_response(),
    }
}
