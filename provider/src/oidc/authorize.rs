//! Authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2), GET and POST.
//!
//! A validated request that needs a person (login or consent) is kept server-side in the
//! browser's SSO session, under a random id, until the login or consent page finishes it;
//! nothing about it travels in the browser but that id.

use super::error::{AuthorizeError, redirect_to_client};
use super::pkce;
use crate::app::{AppState, ClientMeta, SharedState};
use crate::store::{AuthCode, Client, Insert};
use crate::web::{PageError, Params, no_store};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use infra::secret::{hash_secret, random_handle, random_token};
use serde::{Deserialize, Serialize};
use sessions::{EndCause, Session};

/// Pending requests are kept this long, and at most this many per browser.
const PENDING_TTL_SECS: i64 = 600;
const PENDING_MAX: usize = 8;
const PENDING_KEY: &str = "pending";
/// Longest `state`, `nonce` or `login_hint` accepted.
const MAX_PARAM_LEN: usize = 2048;

/// `prompt` (OIDC Core §3.1.2.1).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

/// A validated authorization request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The user an `id_token_hint` names (OIDC Core §3.1.2.1), once its signature checked out.
    #[serde(default)]
    pub hint_sub: Option<String>,
    pub created_at: i64,
}

impl AuthRequest {
    /// An error sent back to the client.
    pub fn error(&self, st: &AppState, error: &'static str, description: &str) -> AuthorizeError {
        AuthorizeError::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            issuer: st.issuer.clone(),
            error,
            description: description.to_owned(),
        }
    }
}

pub async fn authorize_get(
    State(st): State<SharedState>,
    meta: ClientMeta,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    authorize(&st, jar, meta, query.unwrap_or_default().as_bytes())
        .await
        .into_response()
}

pub async fn authorize_post(
    State(st): State<SharedState>,
    meta: ClientMeta,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        return PageError::BadRequest(
            "The sign-in request must be sent as a form (application/x-www-form-urlencoded)."
                .into(),
        )
        .into_response();
    }
    authorize(&st, jar, meta, &body).await.into_response()
}

/// Whether the request body is `application/x-www-form-urlencoded`.
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

async fn authorize(
    st: &AppState,
    jar: CookieJar,
    meta: ClientMeta,
    raw: &[u8],
) -> Result<Response, AuthorizeError> {
    let (req, client) = validate(st, raw).await?;
    let now = st.clock.unix();
    let session = st.session(&jar).await?;
    let signed_in = session.as_ref().is_some_and(|s| s.user_id.is_some());
    let fresh_enough = |s: &Session| {
        // OIDC Core §3.1.2.1 max_age: re-authenticate if the last login is older.
        req.max_age
            .is_none_or(|max| s.auth_time.is_some_and(|t| now - t.unix_timestamp() <= max))
    };
    // OIDC Core §3.1.2.2: a hint naming someone else than the signed-in user means this
    // session will not do (login_required for prompt=none).
    let other_user = |s: &Session| {
        req.hint_sub
            .as_deref()
            .is_some_and(|sub| s.user_id.as_deref() != Some(sub))
    };
    let must_login = match &session {
        Some(s) if signed_in => {
            req.prompt.login || req.prompt.select_account || !fresh_enough(s) || other_user(s)
        }
        _ => true,
    };
    if must_login {
        if req.prompt.none {
            return Err(req.error(st, "login_required", "the user must sign in"));
        }
        return to_page(st, jar, session, &meta, &req, "/login").await;
    }
    match session {
        Some(s) => proceed_with(st, jar, s, &meta, req, client).await,
        None => to_page(st, jar, None, &meta, &req, "/login").await,
    }
}

/// Checks every parameter. Only an unknown client or an unregistered `redirect_uri` is an HTML
/// page; every later error goes back to that (now trusted) redirect URI.
async fn validate(st: &AppState, raw: &[u8]) -> Result<(AuthRequest, Client), AuthorizeError> {
    let bad = |m: &str| AuthorizeError::Page(PageError::BadRequest(m.to_owned()));
    let params =
        Params::parse(raw).map_err(|e| bad(&format!("The sign-in request is malformed: {e}.")))?;
    if params.is_repeated("client_id") || params.is_repeated("redirect_uri") {
        return Err(bad(
            "The sign-in request repeats client_id or redirect_uri.",
        ));
    }
    let client_id = params.get("client_id").ok_or_else(|| {
        bad("The sign-in request does not say which app is asking (client_id is missing).")
    })?;
    let client = st.store.client(client_id).await?.ok_or_else(|| {
        bad("The app that sent you here is not registered with Gatehouse (unknown client_id).")
    })?;
    // OIDC Core §3.1.2.1: redirect_uri is required and must match a registered one exactly.
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| bad("The sign-in request has no redirect_uri."))?;
    if !client.has_redirect_uri(redirect_uri) {
        return Err(bad(
            "The app asked Gatehouse to send you to an address it has not registered \
             (redirect_uri mismatch), so Gatehouse will not send you there.",
        ));
    }
    let state = params.get("state").map(str::to_owned);
    let fail = |error: &'static str, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: state.clone().filter(|s| s.len() <= MAX_PARAM_LEN),
        issuer: st.issuer.clone(),
        error,
        description: description.to_owned(),
    };
    if let Err(e) = params.check_repeated() {
        return Err(fail("invalid_request", &e.to_string()));
    }
    if ["state", "nonce", "login_hint"]
        .iter()
        .any(|p| params.get(p).is_some_and(|v| v.len() > MAX_PARAM_LEN))
    {
        return Err(fail(
            "invalid_request",
            "state, nonce or login_hint is too long",
        ));
    }
    // OIDC Core §6: we support neither request objects nor dynamic registration here.
    if params.get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    if params.get("registration").is_some() {
        return Err(fail(
            "registration_not_supported",
            "the registration parameter is not supported",
        ));
    }
    match params.get("response_type") {
        None => return Err(fail("invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    if !client.allows_grant("authorization_code") {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    let requested: Vec<&str> = params
        .get("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if !requested.contains(&"openid") {
        return Err(fail("invalid_scope", "the openid scope is required"));
    }
    // OIDC Core §11: offline_access is ignored for a client that may not hold refresh tokens.
    let offline_ok = client.allows_grant("refresh_token");
    let scopes: Vec<String> = super::SCOPES
        .iter()
        .filter(|s| requested.contains(s))
        .filter(|s| offline_ok || **s != "offline_access")
        .map(|s| (*s).to_owned())
        .collect();
    // PKCE is required for every client; a missing method means `plain` (RFC 7636 §4.3).
    match params.get("code_challenge_method") {
        Some("S256") => {}
        None => {
            return Err(fail(
                "invalid_request",
                "PKCE is required: code_challenge_method must be S256",
            ));
        }
        Some(_) => {
            return Err(fail(
                "invalid_request",
                "only the S256 code_challenge_method is supported",
            ));
        }
    }
    let code_challenge = params.get("code_challenge").ok_or_else(|| {
        fail(
            "invalid_request",
            "PKCE is required: code_challenge is missing",
        )
    })?;
    if !pkce::is_valid_s256_challenge(code_challenge) {
        return Err(fail(
            "invalid_request",
            "code_challenge is not a valid S256 challenge",
        ));
    }
    let mut prompt = Prompt::default();
    for value in params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => prompt.select_account = true,
            _ => return Err(fail("invalid_request", "unknown prompt value")),
        }
    }
    if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<u32>()
                .map(i64::from)
                .map_err(|_| fail("invalid_request", "max_age must be a non-negative integer"))?,
        ),
    };
    // An ID token we issued (it may have expired); only its subject is used.
    let hint_sub = match params.get("id_token_hint") {
        None => None,
        Some(hint) => Some(
            st.keys()
                .verify_with::<serde_json::Value>(hint, "JWT", &st.issuer, None, None)
                .ok()
                .and_then(|c| {
                    c.get("sub")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                })
                .ok_or_else(|| {
                    fail(
                        "invalid_request",
                        "id_token_hint is not an ID token issued here",
                    )
                })?,
        ),
    };
    let req = AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: state.clone(),
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge: code_challenge.to_owned(),
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_owned),
        hint_sub,
        created_at: st.clock.unix(),
    };
    Ok((req, client))
}

/// The user is signed in (after the login page): ask for consent if needed, else issue the
/// code.
pub async fn proceed(
    st: &AppState,
    jar: CookieJar,
    session: Session,
    meta: &ClientMeta,
    req: AuthRequest,
) -> Result<Response, AuthorizeError> {
    let client = st
        .store
        .client(&req.client_id)
        .await?
        .ok_or_else(|| PageError::BadRequest("This app is no longer registered.".into()))?;
    proceed_with(st, jar, session, meta, req, client).await
}

/// [`proceed`] with the client as the request found it.
async fn proceed_with(
    st: &AppState,
    jar: CookieJar,
    session: Session,
    meta: &ClientMeta,
    req: AuthRequest,
    client: Client,
) -> Result<Response, AuthorizeError> {
    let user = match &session.user_id {
        Some(id) => st.store.user_by_id(id).await?.filter(|u| !u.disabled),
        None => None,
    };
    let Some(user) = user else {
        // The account was removed or disabled: this session is over, everywhere.
        if let Some(end) = st.sessions.end(session.id(), EndCause::Revoked).await? {
            crate::logout::session_ended(st, &[end]).await;
        }
        if req.prompt.none {
            return Err(req.error(st, "login_required", "the user must sign in"));
        }
        return to_page(
            st,
            jar.remove(st.cookies.removal()),
            None,
            meta,
            &req,
            "/login",
        )
        .await;
    };
    let granted = st.store.consent(&user.id, &client.client_id).await?;
    let covered = granted.is_some_and(|g| req.scopes.iter().all(|s| g.contains(s)));
    if req.prompt.consent || (!client.first_party && !covered) {
        if req.prompt.none {
            return Err(req.error(st, "consent_required", "the user must approve this app"));
        }
        return to_page(st, jar, Some(session), meta, &req, "/consent").await;
    }
    issue_code(st, jar, session, &req).await
}

/// Issues a code bound to the client, redirect URI, PKCE challenge, nonce and SSO session,
/// and sends the browser back to the client (RFC 6749 §4.1.2, RFC 9207 `iss`).
pub async fn issue_code(
    st: &AppState,
    jar: CookieJar,
    session: Session,
    req: &AuthRequest,
) -> Result<Response, AuthorizeError> {
    let Some(user_id) = session.user_id.clone() else {
        return Err(
            PageError::Internal(anyhow::anyhow!("issue_code without a signed-in session")).into(),
        );
    };
    let now = st.clock.unix();
    let code = random_token().map_err(anyhow::Error::from)?;
    let lifetime = i64::try_from(st.config.tokens.code_lifetime.as_secs()).unwrap_or(60);
    let bound = AuthCode {
        client_id: req.client_id.clone(),
        user_id,
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scopes.join(" "),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        sid: session.handle.clone(),
        auth_time: session.auth_time.map_or(now, |t| t.unix_timestamp()),
        expires_at: now + lifetime,
    };
    // The code and the client's membership of the SSO session (for back-channel logout),
    // committed together.
    st.store
        .insert(vec![
            Insert::auth_code(&hash_secret(&code), &bound, now),
            Insert::session_member(&session.handle, &req.client_id, &bound.user_id, now),
        ])
        .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = req.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", st.issuer.as_str()));
    Ok((jar, redirect_to_client(&req.redirect_uri, &params)).into_response())
}

/// Keeps `req` in the session and sends the browser to `page` (login or consent).
async fn to_page(
    st: &AppState,
    jar: CookieJar,
    session: Option<Session>,
    meta: &ClientMeta,
    req: &AuthRequest,
    page: &str,
) -> Result<Response, AuthorizeError> {
    let (mut session, jar) = match session {
        Some(s) => (s, jar),
        None => st.session_or_new(jar, meta).await?,
    };
    let id = stash(&mut session, req, st.clock.unix()).map_err(anyhow::Error::from)?;
    st.sessions.save(&session).await?;
    Ok((
        jar,
        no_store(),
        Redirect::to(&format!("{page}?request={id}")),
    )
        .into_response())
}

/// Adds `req` to the session's pending requests (dropping expired and the oldest beyond the
/// cap) and returns its id.
fn stash(
    session: &mut Session,
    req: &AuthRequest,
    now: i64,
) -> Result<String, infra::secret::RandomError> {
    let id = random_handle()?;
    let mut pending: Vec<(String, AuthRequest)> = pending_list(session)
        .into_iter()
        .filter(|(_, r)| now - r.created_at < PENDING_TTL_SECS)
        .collect();
    pending.sort_by_key(|(_, r)| r.created_at);
    while pending.len() >= PENDING_MAX {
        pending.remove(0);
    }
    pending.push((id.clone(), req.clone()));
    set_pending(session, pending);
    Ok(id)
}

/// The pending request `id`, if it exists and is in date.
pub fn pending(session: &Session, id: &str, now: i64) -> Option<AuthRequest> {
    pending_list(session)
        .into_iter()
        .find(|(k, r)| k == id && now - r.created_at < PENDING_TTL_SECS)
        .map(|(_, r)| r)
}

/// Removes and returns the pending request `id` (the caller saves the session).
pub fn take_pending(session: &mut Session, id: &str, now: i64) -> Option<AuthRequest> {
    let found = pending(session, id, now);
    let rest: Vec<(String, AuthRequest)> = pending_list(session)
        .into_iter()
        .filter(|(k, _)| k != id)
        .collect();
    set_pending(session, rest);
    found
}

fn pending_list(session: &Session) -> Vec<(String, AuthRequest)> {
    session
        .data
        .get(PENDING_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn set_pending(session: &mut Session, list: Vec<(String, AuthRequest)>) {
    if let (Some(obj), Ok(v)) = (session.data.as_object_mut(), serde_json::to_value(list)) {
        obj.insert(PENDING_KEY.into(), v);
    }
}
