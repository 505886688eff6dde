//! Token endpoint (RFC 6749 §3.2, §4.1.3; OIDC Core §3.1.3): the `authorization_code` grant.
//! Access tokens are JWTs per RFC 9068; ID tokens per OIDC Core §2.

use super::error::TokenError;
use super::{client_auth, pkce};
use crate::app::{AppState, SharedState};
use crate::keys::{Alg, at_hash};
use crate::store::{AuthCode, Client, Redeemed, User};
use crate::web::{Params, no_store};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sessions::secret::{hash_secret, random_handle};

/// RFC 9068 §2.2 access token claims.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub exp: i64,
    pub aud: String,
    pub sub: String,
    pub client_id: String,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
    pub auth_time: i64,
    /// The SSO session the token was issued under.
    pub sid: String,
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
    sid: &'a str,
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
    id_token: String,
    scope: String,
}

pub async fn issue_token(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokenError> {
    if !super::authorize::is_form(&headers) {
        return Err(TokenError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let form = Params::parse(&body).map_err(|e| TokenError::InvalidRequest(e.to_string()))?;
    form.check_repeated()
        .map_err(|e| TokenError::InvalidRequest(e.to_string()))?;
    let client = client_auth::authenticate(&st, &headers, &form).await?;
    let response = match form.get("grant_type") {
        None => return Err(TokenError::InvalidRequest("grant_type is required".into())),
        Some("authorization_code") => redeem_code(&st, &client, &form).await?,
        Some(_) => return Err(TokenError::UnsupportedGrantType),
    };
    Ok((no_store(), Json(response)).into_response())
}

/// Redeems a code once, checking every binding it carries.
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
    let bound = match st.store.redeem_auth_code(&hash_secret(code), now).await? {
        Redeemed::Fresh(c) => c,
        Redeemed::Spent(c) => {
            tracing::warn!(client_id = %c.client_id, "spent or expired authorization code presented");
            return Err(TokenError::InvalidGrant(UNUSABLE));
        }
        Redeemed::Unknown => return Err(TokenError::InvalidGrant(UNUSABLE)),
    };
    // RFC 6749 §4.1.3: the code is bound to the client and redirect URI; RFC 7636 §4.6: PKCE.
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
    let user = st
        .store
        .user_by_id(&bound.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(TokenError::InvalidGrant("the user is no longer active"))?;
    mint(st, client, &user, &bound, now)
}

fn mint(
    st: &AppState,
    client: &Client,
    user: &User,
    code: &AuthCode,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(600);
    let at_lifetime = secs(st.config.tokens.access_token_lifetime);
    let access = AccessClaims {
        iss: st.issuer.clone(),
        exp: now + at_lifetime,
        aud: st.issuer.clone(),
        sub: user.id.clone(),
        client_id: client.client_id.clone(),
        iat: now,
        jti: random_handle().map_err(anyhow::Error::from)?,
        scope: code.scope.clone(),
        auth_time: code.auth_time,
        sid: code.sid.clone(),
    };
    // ES256 for access tokens: the provider is their only verifier, and it is ~30x cheaper
    // to sign than RS256.
    let access_token = st
        .keys
        .sign(Alg::ES256, "at+jwt", &access)
        .map_err(anyhow::Error::from)?;
    let id_alg = Alg::parse(&client.id_token_alg).unwrap_or(Alg::RS256);
    let id = IdClaims {
        iss: &st.issuer,
        sub: &user.id,
        aud: &client.client_id,
        exp: now + secs(st.config.tokens.id_token_lifetime),
        iat: now,
        auth_time: code.auth_time,
        nonce: code.nonce.as_deref(),
        sid: &code.sid,
        at_hash: at_hash(&access_token),
        azp: &client.client_id,
        amr: ["pwd"],
    };
    let id_token = st
        .keys
        .sign(id_alg, "JWT", &id)
        .map_err(anyhow::Error::from)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: at_lifetime,
        id_token,
        scope: code.scope.clone(),
    })
}
