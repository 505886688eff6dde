//! Extractors for what every handler would otherwise repeat:
//!
//! - [`ClientMeta`]: the browser's `User-Agent` and address;
//! - [`Form`] and [`Query`]: strict parameter parsing (a form must be declared
//!   `application/x-www-form-urlencoded`; bad encoding and, where the surface says so, a
//!   repeated parameter are refused), each refusal in its surface's format ([`Surface`]);
//! - [`Browser`]: the SSO session the cookie names, if it is alive; [`SignedIn`]: one with a
//!   user (the one contract of "signed in");
//! - [`PostedForm`]: a form from one of our pages, its CSRF token checked against the
//!   session;
//! - [`ClientForm`]: an authenticated client and its form (token, revocation, introspection);
//! - [`Bearer`]: the token of an `Authorization: Bearer` header (RFC 6750 §2.1).

use super::state::AppState;
use crate::protocol::client_auth;
use crate::protocol::error::{BearerError, PageError, TokenError};
use crate::protocol::params::{Params, ParamsError};
use crate::protocol::userinfo::token_in_header;
use crate::store::Client;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use infra::client_addr::{ClientAddr, rate_key};
use sessions::Session;
use std::marker::PhantomData;
use std::net::SocketAddr;

/// Facts about the browser recorded with a new session.
#[derive(Clone, Debug, Default)]
pub struct ClientMeta {
    pub user_agent: Option<String>,
    /// The client's address ([`ClientAddr`]), as shown to people.
    pub addr: Option<String>,
    /// The key it is throttled and rate-limited under (IPv6 by its /64).
    pub key: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<ClientAddr>()
            .map(|a| a.0)
            .or_else(|| {
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip())
            });
        Ok(Self {
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            addr: addr.map(|a| a.to_string()),
            key: addr.map(rate_key),
        })
    }
}

/// Why parameters were refused.
#[derive(Debug)]
pub enum Refusal {
    /// A body not declared `application/x-www-form-urlencoded`.
    NotAForm,
    /// Bad encoding, too many parameters, or a repeated one: in a form body, or in the query.
    MalformedForm(ParamsError),
    MalformedQuery(ParamsError),
}

impl Refusal {
    fn params_error(&self) -> Option<&ParamsError> {
        match self {
            Self::NotAForm => None,
            Self::MalformedForm(e) | Self::MalformedQuery(e) => Some(e),
        }
    }
}

/// Where parameters arrive, and how their refusal is told there.
pub trait Surface: Send + Sync + 'static {
    type Rejection: axum::response::IntoResponse;
    /// Repeated parameters are left for the rules to judge (the authorization endpoint
    /// reports them once the client is known, RFC 6749 §4.1.2.1).
    const REPEATS_ALLOWED: bool = false;
    /// Parameters that may repeat as far as the surface is concerned: the rules judge them.
    const REPEATABLE: &'static [&'static str] = &[];
    fn refuse(why: Refusal) -> Self::Rejection;
}

/// The token, revocation and introspection endpoints (RFC 6749 §3.2: a form body).
pub struct OAuth;
/// A form or address of one of our pages.
pub struct Page;
/// The authorization request (a query or a form).
pub struct SignInRequest;
/// The end-session request (a query or a form).
pub struct SignOutRequest;

impl Surface for OAuth {
    type Rejection = TokenError;
    /// RFC 8707 §2 allows `resource` more than once; the token endpoint answers that with
    /// that specification's own error (`protocol::token`).
    const REPEATABLE: &'static [&'static str] = &["resource"];
    fn refuse(why: Refusal) -> TokenError {
        match why.params_error() {
            None => {
                TokenError::invalid_request("the body must be application/x-www-form-urlencoded")
            }
            Some(e) => TokenError::invalid_request(e.to_string()),
        }
    }
}

impl Surface for Page {
    type Rejection = PageError;
    fn refuse(why: Refusal) -> PageError {
        PageError::bad_request(match why {
            Refusal::NotAForm => {
                "The form must be sent as application/x-www-form-urlencoded.".to_owned()
            }
            Refusal::MalformedForm(e) => format!("The form is malformed: {e}."),
            Refusal::MalformedQuery(e) => format!("The address is malformed: {e}."),
        })
    }
}

impl Surface for SignInRequest {
    type Rejection = PageError;
    const REPEATS_ALLOWED: bool = true;
    fn refuse(why: Refusal) -> PageError {
        PageError::bad_request(match why.params_error() {
            None => "The sign-in request must be sent as a form \
                     (application/x-www-form-urlencoded)."
                .to_owned(),
            Some(e) => format!("The sign-in request is malformed: {e}."),
        })
    }
}

impl Surface for SignOutRequest {
    type Rejection = PageError;
    fn refuse(why: Refusal) -> PageError {
        PageError::bad_request(match why.params_error() {
            None => "The sign-out request must be sent as a form.".to_owned(),
            Some(e) => format!("The sign-out request is malformed: {e}."),
        })
    }
}

/// `raw` parsed for surface `S` (`malformed` tells where it came from).
fn parse<S: Surface>(
    raw: &[u8],
    malformed: fn(ParamsError) -> Refusal,
) -> Result<Params, S::Rejection> {
    let params = Params::parse(raw).map_err(|e| S::refuse(malformed(e)))?;
    if !S::REPEATS_ALLOWED {
        params
            .check_repeated_except(S::REPEATABLE)
            .map_err(|e| S::refuse(malformed(e)))?;
    }
    Ok(params)
}

/// Whether the request body is declared of media type `mime` (parameters aside, any case).
pub fn content_type_is(headers: &HeaderMap, mime: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(mime))
}

/// Whether the request body is declared `application/x-www-form-urlencoded`.
pub fn is_form(headers: &HeaderMap) -> bool {
    content_type_is(headers, "application/x-www-form-urlencoded")
}

/// A form body, parsed strictly for surface `S`.
pub struct Form<S>(pub Params, pub PhantomData<S>);

impl<S> std::ops::Deref for Form<S> {
    type Target = Params;
    fn deref(&self) -> &Params {
        &self.0
    }
}

impl<St: Send + Sync, S: Surface> FromRequest<St> for Form<S> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &St) -> Result<Self, Response> {
        if !is_form(req.headers()) {
            return Err(S::refuse(Refusal::NotAForm).into_response());
        }
        // A body beyond `limits.max_body_bytes` is refused here, with 413.
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let params =
            parse::<S>(&body, Refusal::MalformedForm).map_err(IntoResponse::into_response)?;
        Ok(Self(params, PhantomData))
    }
}

/// A query string, parsed strictly for surface `S`.
pub struct Query<S>(pub Params, pub PhantomData<S>);

impl<S> std::ops::Deref for Query<S> {
    type Target = Params;
    fn deref(&self) -> &Params {
        &self.0
    }
}

impl<St: Send + Sync, S: Surface> FromRequestParts<St> for Query<S> {
    type Rejection = S::Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        Ok(Self(
            parse::<S>(raw.as_bytes(), Refusal::MalformedQuery)?,
            PhantomData,
        ))
    }
}

/// The browser's cookies and its live SSO session, if the cookie names one (signed in or not:
/// a pre-login session carries the CSRF token and the requests waiting for sign-in).
pub struct Browser {
    pub jar: CookieJar,
    pub session: Option<Session>,
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, PageError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let session = match st.web.cookies.read(&jar) {
            Some(id) => st.ctx.sessions.load(&id).await?,
            None => None,
        };
        Ok(Self { jar, session })
    }
}

impl Browser {
    /// The session, if someone is signed in on it.
    pub fn signed_in(self) -> Option<SignedIn> {
        SignedIn::from_session(self.session?)
    }
}

/// A live SSO session with a signed-in user: what "signed in" means everywhere.
pub struct SignedIn {
    pub session: Session,
    pub user_id: String,
}

impl SignedIn {
    pub fn from_session(session: Session) -> Option<Self> {
        let user_id = session.user_id.clone()?;
        Some(Self { session, user_id })
    }

    /// Whether the password was typed within the last `window`.
    pub fn signed_in_within(&self, now: i64, window: std::time::Duration) -> bool {
        signed_in_within(&self.session, now, window)
    }

    /// See [`require_fresh`].
    pub fn require_fresh(&self, st: &AppState, next: &'static str) -> Result<(), PageError> {
        require_fresh(st, &self.session, next)
    }
}

/// Whether `session`'s password was typed within the last `window` (a step-up with a code
/// alone does not count).
fn signed_in_within(session: &Session, now: i64, window: std::time::Duration) -> bool {
    let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    crate::users::password_at(session).is_some_and(|t| now.saturating_sub(t) <= window)
}

/// For a sensitive action: fine if `session`'s password was typed within `fresh_sign_in`;
/// otherwise [`PageError::SignInAgain`], which comes back to `next` afterwards.
pub fn require_fresh(
    st: &AppState,
    session: &Session,
    next: &'static str,
) -> Result<(), PageError> {
    if signed_in_within(session, st.ctx.clock.unix(), st.ctx.config.fresh_sign_in) {
        Ok(())
    } else {
        Err(PageError::SignInAgain { next })
    }
}

impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &AppState,
    ) -> Result<Option<Self>, PageError> {
        let browser =
            <Browser as FromRequestParts<AppState>>::from_request_parts(parts, st).await?;
        Ok(browser.signed_in())
    }
}

/// A form posted from one of our pages, parsed strictly. Its fields are only handed out with
/// the session the browser has, once the form's CSRF token is that session's (403 otherwise,
/// nothing done): no handler can read a form whose token was not checked. Without a session
/// there is nothing to check against, and nothing to read: each page says what that means.
pub struct PostedForm {
    form: Params,
    session: Option<Session>,
}

impl PostedForm {
    /// The signed-in session the form came from, and the form; `Ok(None)` when nobody is
    /// signed in here.
    pub fn signed_in(self) -> Result<Option<(SignedIn, Params)>, PageError> {
        let Some(me) = self.session.and_then(SignedIn::from_session) else {
            return Ok(None);
        };
        checked(&me.session, &self.form)?;
        Ok(Some((me, self.form)))
    }

    /// The session the form came from, signed in or not (the sign-in form's is not), and the
    /// form; `Ok(None)` when the browser has no session.
    pub fn with_session(self) -> Result<Option<(Session, Params)>, PageError> {
        let Some(session) = self.session else {
            return Ok(None);
        };
        checked(&session, &self.form)?;
        Ok(Some((session, self.form)))
    }
}

/// Whether the form's CSRF token is the session's (constant time).
fn checked(session: &Session, form: &Params) -> Result<(), PageError> {
    if session.verify_csrf(form.get("csrf_token")) {
        Ok(())
    } else {
        Err(PageError::csrf())
    }
}

impl FromRequest<AppState> for PostedForm {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let browser = <Browser as FromRequestParts<AppState>>::from_request_parts(&mut parts, st)
            .await
            .map_err(IntoResponse::into_response)?;
        let request = Request::from_parts(parts, body);
        let Form(form, _) = Form::<Page>::from_request(request, st).await?;
        Ok(Self {
            form,
            session: browser.session,
        })
    }
}

/// A request at the token, revocation or introspection endpoint: its form, and the client it
/// authenticated as (RFC 6749 §2.3; one implementation for all three endpoints). Rates by
/// address are counted before (a layer, see `web::router`).
pub struct ClientForm {
    pub client: Client,
    pub form: Params,
}

impl FromRequest<AppState> for ClientForm {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let authorization = req.headers().get(header::AUTHORIZATION).cloned();
        let Form(form, _) = Form::<OAuth>::from_request(req, st).await?;
        let client = async {
            let authorization = match &authorization {
                Some(v) => Some(v.to_str().map_err(|_| TokenError::invalid_client())?),
                None => None,
            };
            let presented = client_auth::presented(authorization, &form)?;
            client_auth::authenticate(&st.ctx, &presented).await
        };
        let client = client.await.map_err(IntoResponse::into_response)?;
        Ok(Self { client, form })
    }
}

/// The token of an `Authorization: Bearer` header, if there is such a header (RFC 6750
/// §2.1); a header of another scheme, or unreadable, is refused.
pub struct Bearer(pub Option<String>);

impl Bearer {
    /// The token of `headers`' `Authorization` header, if there is one.
    pub fn of(headers: &HeaderMap) -> Result<Self, BearerError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Self(None));
        };
        let value = value
            .to_str()
            .map_err(|_| BearerError::invalid_request("malformed Authorization header"))?;
        Ok(Self(Some(token_in_header(value)?)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, BearerError> {
        Self::of(&parts.headers)
    }
}

/// The values of a request's `DPoP` headers (RFC 9449 §4.1), each readable text.
pub fn dpop_headers(headers: &HeaderMap) -> Result<Vec<&str>, &'static str> {
    infra::dpop::headers(headers)
}
