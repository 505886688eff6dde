//! Token endpoint (RFC 6749 §3.2; OIDC Core §3.1.3, §12): the `authorization_code`,
//! `refresh_token` and `client_credentials` grants. Access tokens are JWTs per RFC 9068,
//! recorded in a registry so they can be revoked; refresh tokens are opaque, hashed, rotated on
//! every use, and one family per grant.

use super::error::TokenError;
use super::{client_auth, pkce};
use crate::app::{AppState, ClientMeta, SharedState};
use crate::audit::{self, Event, Kind};
use crate::keys::{Alg, at_hash};
use crate::store::{AccessTokenRow, AuthMethod, Client, Insert, Redeemed, RefreshTokenRow, User};
use crate::web::{Params, no_store};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use infra::secret::{hash_secret, random_handle, random_token};
use serde::{Deserialize, Serialize};

/// RFC 9068 §2.2 access token claims.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub exp: i64,
    pub aud: String,
    /// The user, or the client itself for `client_credentials` (RFC 9068 §2.2).
    pub sub: String,
    pub client_id: String,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<i64>,
    /// The SSO session the token was issued under.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
}

/// OIDC Core §2 ID token claims.
#[derive(Debug, Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    at_hash: String,
    azp: &'a str,
    amr: [&'static str; 1],
}

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
}

pub async fn issue_token(
    State(st): State<SharedState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokenError> {
    let limits = &st.config.limits;
    st.rate_by_address("addr", &meta, limits.rate_per_address)
        .map_err(TokenError::RateLimited)?;
    let form = parse_form(&headers, &body)?;
    let client = client_auth::authenticate(&st, &headers, &form).await?;
    // Counted once the client is authenticated: nobody spends another client's budget.
    st.rate(
        &format!("token:{}", client.client_id),
        limits.token_rate_per_client,
    )
    .map_err(TokenError::RateLimited)?;
    let response = match form.get("grant_type") {
        None => return Err(TokenError::InvalidRequest("grant_type is required".into())),
        Some("authorization_code") => redeem_code(&st, &client, &form).await?,
        Some("refresh_token") => refresh(&st, &client, &form).await?,
        Some("client_credentials") => client_credentials(&st, &client, &form).await?,
        Some(_) => return Err(TokenError::UnsupportedGrantType),
    };
    Ok((no_store(), Json(response)).into_response())
}

/// The form body of a token, revocation or introspection request (RFC 6749 §3.2).
pub(super) fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Params, TokenError> {
    if !super::authorize::is_form(headers) {
        return Err(TokenError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let form = Params::parse(body).map_err(|e| TokenError::InvalidRequest(e.to_string()))?;
    form.check_repeated()
        .map_err(|e| TokenError::InvalidRequest(e.to_string()))?;
    Ok(form)
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// What one grant hands out.
struct Issue<'a> {
    /// The grant type, for the metrics.
    grant: &'static str,
    client: &'a Client,
    /// `None` for `client_credentials`.
    user: Option<&'a User>,
    scope: String,
    grant_id: Option<String>,
    sid: Option<String>,
    auth_time: Option<i64>,
    nonce: Option<String>,
    id_token: bool,
    /// A new refresh token of this grant's family.
    refresh: Option<NewRefresh>,
}

/// The refresh token to issue: the SSO session of an online grant, the family's deadline, and
/// the grant's full scope (a narrowed refresh narrows the access token, not the grant).
struct NewRefresh {
    sid: Option<String>,
    family_expires_at: i64,
    scope: String,
}

/// Signs the access token, then the ID token and refresh token if asked, and stores the
/// access token's registry entry, the refresh token and the audit event in one commit.
async fn issue(st: &AppState, now: i64, i: Issue<'_>) -> Result<TokenResponse, TokenError> {
    metrics::counter!("gatehouse_tokens_issued_total", "grant" => i.grant).increment(1);
    let at_lifetime = secs(st.config.tokens.access_token_lifetime);
    let sub = i
        .user
        .map_or(i.client.client_id.as_str(), |u| u.id.as_str());
    let access = AccessClaims {
        iss: st.issuer.clone(),
        exp: now + at_lifetime,
        aud: st.issuer.clone(),
        sub: sub.to_owned(),
        client_id: i.client.client_id.clone(),
        iat: now,
        jti: random_handle().map_err(anyhow::Error::from)?,
        scope: i.scope.clone(),
        auth_time: i.auth_time,
        sid: i.sid.clone(),
    };
    // ES256 for access tokens: the provider is their only verifier, and it is far cheaper to
    // sign than RS256.
    let access_token = st
        .keys()
        .sign(Alg::ES256, "at+jwt", &access)
        .map_err(anyhow::Error::from)?;
    let mut rows = vec![Insert::access_token(&AccessTokenRow {
        jti: access.jti.clone(),
        grant_id: i.grant_id.clone(),
        client_id: i.client.client_id.clone(),
        user_id: i.user.map(|u| u.id.clone()),
        scope: i.scope.clone(),
        issued_at: now,
        expires_at: access.exp,
        revoked_at: None,
    })];
    let id_token = match (i.id_token, i.user) {
        (true, Some(user)) => {
            let claims = IdClaims {
                iss: &st.issuer,
                sub: &user.id,
                aud: &i.client.client_id,
                exp: now + secs(st.config.tokens.id_token_lifetime),
                iat: now,
                auth_time: i.auth_time.unwrap_or(now),
                nonce: i.nonce.as_deref(),
                sid: i.sid.as_deref(),
                at_hash: at_hash(&access_token),
                azp: &i.client.client_id,
                amr: ["pwd"],
            };
            let alg = Alg::parse(&i.client.id_token_alg).unwrap_or(Alg::RS256);
            Some(
                st.keys()
                    .sign(alg, "JWT", &claims)
                    .map_err(anyhow::Error::from)?,
            )
        }
        _ => None,
    };
    let refresh_token = match (i.refresh, i.user, &i.grant_id) {
        (Some(rt), Some(user), Some(grant_id)) => {
            let token = random_token().map_err(anyhow::Error::from)?;
            rows.push(Insert::refresh_token(&RefreshTokenRow {
                token_hash: hash_secret(&token),
                grant_id: grant_id.clone(),
                client_id: i.client.client_id.clone(),
                user_id: user.id.clone(),
                scope: rt.scope,
                sid: rt.sid,
                auth_time: i.auth_time.unwrap_or(now),
                issued_at: now,
                family_expires_at: rt.family_expires_at,
                used_at: None,
                revoked_at: None,
            }));
            Some(token)
        }
        _ => None,
    };
    let mut issued = vec!["access token"];
    issued.extend(id_token.as_ref().map(|_| "ID token"));
    issued.extend(refresh_token.as_ref().map(|_| "refresh token"));
    let event = audit::prepare(
        audit::now_us(&st.clock),
        Event::new(Kind::TokenIssued)
            .client(&i.client.client_id)
            .user_opt(i.user.map(|u| u.id.as_str()))
            .session_opt(i.sid.as_deref())
            .detail(format!(
                "grant {}: {} (jti {}, scope \"{}\")",
                i.grant,
                issued.join(", "),
                access.jti,
                i.scope
            )),
    );
    rows.push(Insert::audit(&event));
    let stored = st.store.insert(rows).await;
    audit::log(&event, &stored);
    stored?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: at_lifetime,
        id_token,
        refresh_token,
        scope: i.scope,
    })
}

async fn active_user(st: &AppState, id: &str) -> Result<User, TokenError> {
    st.store
        .user_by_id(id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(TokenError::InvalidGrant("the user is no longer active"))
}

/// `authorization_code` (RFC 6749 §4.1.3): the code once, every binding checked. A replayed
/// code revokes everything it issued (RFC 6749 §4.1.2, RFC 9700 §4.2.1).
async fn redeem_code(
    st: &AppState,
    client: &Client,
    form: &Params,
) -> Result<TokenResponse, TokenError> {
    if !client.allows_grant("authorization_code") {
        return Err(TokenError::UnauthorizedClient);
    }
    let missing = |p: &str| TokenError::InvalidRequest(format!("{p} is required"));
    let code = form.get("code").ok_or_else(|| missing("code"))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| missing("redirect_uri"))?;
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| missing("code_verifier (PKCE)"))?;
    let now = st.clock.unix();
    const UNUSABLE: &str = "the code is invalid, expired or already used";
    let code_hash = hash_secret(code);
    let bound = match st.store.redeem_auth_code(&code_hash, now).await? {
        Redeemed::Fresh(c) => c,
        Redeemed::Replayed(c) => {
            tracing::warn!(client_id = %c.client_id, "authorization code replayed: revoking its tokens");
            st.store.revoke_grant(&code_hash, now).await?;
            return Err(TokenError::InvalidGrant(UNUSABLE));
        }
        Redeemed::Expired | Redeemed::Unknown => return Err(TokenError::InvalidGrant(UNUSABLE)),
    };
    if bound.client_id != client.client_id {
        return Err(TokenError::InvalidGrant(
            "the code was issued to another client",
        ));
    }
    if bound.redirect_uri != redirect_uri {
        return Err(TokenError::InvalidGrant(
            "redirect_uri does not match the authorization request",
        ));
    }
    if !pkce::verify_s256(verifier, &bound.code_challenge) {
        return Err(TokenError::InvalidGrant("PKCE verification failed"));
    }
    let user = active_user(st, &bound.user_id).await?;
    // A refresh token for clients allowed the grant: offline (outlives the SSO session) when
    // offline_access was granted, else online (dies with it).
    let refresh = client.allows_grant("refresh_token").then(|| {
        let offline = bound.scope.split(' ').any(|s| s == "offline_access");
        NewRefresh {
            sid: (!offline).then(|| bound.sid.clone()),
            family_expires_at: now + secs(st.config.tokens.refresh_token_lifetime),
            scope: bound.scope.clone(),
        }
    });
    issue(
        st,
        now,
        Issue {
            grant: "authorization_code",
            client,
            user: Some(&user),
            scope: bound.scope.clone(),
            grant_id: Some(code_hash),
            sid: Some(bound.sid.clone()),
            auth_time: Some(bound.auth_time),
            nonce: bound.nonce.clone(),
            id_token: true,
            refresh,
        },
    )
    .await
}

/// `refresh_token` (RFC 6749 §6, RFC 9700 §4.14): rotation on every use; a concurrent retry
/// inside the grace window gets its own answer; a reuse after it revokes the whole family and
/// ends an online grant's SSO session. A narrower scope is allowed, a wider one is not.
async fn refresh(
    st: &AppState,
    client: &Client,
    form: &Params,
) -> Result<TokenResponse, TokenError> {
    if !client.allows_grant("refresh_token") {
        return Err(TokenError::UnauthorizedClient);
    }
    let token = form
        .get("refresh_token")
        .ok_or_else(|| TokenError::InvalidRequest("refresh_token is required".into()))?;
    let now = st.clock.unix();
    let hash = hash_secret(token);
    const INVALID: &str = "the refresh token is invalid, expired or revoked";
    // The usual case in one statement: this client's live, unused token, marked used.
    let row = match st
        .store
        .use_refresh_token(&hash, &client.client_id, now)
        .await?
    {
        Some(row) => row,
        None => {
            let known = st
                .store
                .refresh_token(&hash)
                .await?
                .ok_or(TokenError::InvalidGrant(INVALID))?;
            // A token of another client is refused and left alone (RFC 6749 §6).
            if known.client_id != client.client_id
                || known.revoked_at.is_some()
                || known.family_expires_at <= now
            {
                return Err(TokenError::InvalidGrant(INVALID));
            }
            // Used before: a concurrent retry inside the grace window, or a replay.
            let grace = secs(st.config.tokens.refresh_grace);
            match known.used_at {
                Some(used) if now - used <= grace => known,
                _ => {
                    reuse_detected(st, &known, now).await?;
                    return Err(TokenError::InvalidGrant(INVALID));
                }
            }
        }
    };
    let granted: Vec<&str> = row.scope.split(' ').filter(|s| !s.is_empty()).collect();
    let scope = match form.get("scope") {
        None => row.scope.clone(),
        Some(asked) => {
            let asked: Vec<&str> = asked.split(' ').filter(|s| !s.is_empty()).collect();
            if asked.iter().any(|s| !granted.contains(s)) {
                return Err(TokenError::InvalidScope(
                    "a refresh cannot widen the granted scope",
                ));
            }
            asked.join(" ")
        }
    };
    let user = active_user(st, &row.user_id).await?;
    issue(
        st,
        now,
        Issue {
            grant: "refresh_token",
            client,
            user: Some(&user),
            id_token: scope.split(' ').any(|s| s == "openid"),
            scope,
            grant_id: Some(row.grant_id.clone()),
            sid: row.sid.clone(),
            auth_time: Some(row.auth_time),
            nonce: None,
            refresh: Some(NewRefresh {
                sid: row.sid.clone(),
                family_expires_at: row.family_expires_at,
                scope: row.scope.clone(),
            }),
        },
    )
    .await
}

/// A rotated refresh token came back after the grace window: someone holds a copy. The whole
/// family (refresh and access tokens) is revoked, and an online grant's SSO session ends.
async fn reuse_detected(st: &AppState, row: &RefreshTokenRow, now: i64) -> Result<(), TokenError> {
    tracing::warn!(client_id = %row.client_id, "refresh token reused: revoking its family");
    audit::record(
        &st.store,
        &st.clock,
        Event::new(Kind::RefreshReuseDetected)
            .client(&row.client_id)
            .user(&row.user_id)
            .session_opt(row.sid.as_deref())
            .detail(format!("grant {} revoked", row.grant_id)),
    )
    .await;
    st.store.revoke_grant(&row.grant_id, now).await?;
    if let Some(sid) = &row.sid
        && let Some(end) = st
            .sessions
            .revoke_handle(sid, None)
            .await
            .map_err(anyhow::Error::from)?
    {
        crate::logout::session_ended(st, &[end]).await;
    }
    Ok(())
}

/// `client_credentials` (RFC 6749 §4.4): confidential clients allowed the grant get an access
/// token about themselves; no ID token, no refresh token, no user scopes.
async fn client_credentials(
    st: &AppState,
    client: &Client,
    form: &Params,
) -> Result<TokenResponse, TokenError> {
    if !client.allows_grant("client_credentials") || client.auth_method == AuthMethod::None {
        return Err(TokenError::UnauthorizedClient);
    }
    if form.get("scope").is_some() {
        return Err(TokenError::InvalidScope(
            "this client may not request scopes",
        ));
    }
    let now = st.clock.unix();
    issue(
        st,
        now,
        Issue {
            grant: "client_credentials",
            client,
            user: None,
            scope: String::new(),
            grant_id: None,
            sid: None,
            auth_time: None,
            nonce: None,
            id_token: false,
            refresh: None,
        },
    )
    .await
}
