//! Token revocation (RFC 7009) and introspection (RFC 7662). Both require client
//! authentication (the token endpoint's methods), and a client only ever reaches its own
//! tokens: another client's token is "not revoked" (RFC 7009 §2.1 answers 200 anyway) and
//! "not active" (RFC 7662 §2.2).

use super::client_auth;
use super::error::TokenError;
use super::token::{AccessClaims, parse_form};
use crate::app::{AppState, ClientMeta, SharedState};
use crate::audit::{self, Event, Kind};
use crate::store::{AccessTokenRow, Client, RefreshTokenRow};
use crate::web::no_store;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use infra::secret::hash_secret;
use serde_json::{Value, json};

/// A presented token, found and belonging to the calling client.
enum Found {
    Refresh(RefreshTokenRow),
    Access(AccessClaims, AccessTokenRow),
}

/// Looks `token` up as the hint suggests (RFC 7009 §2.1: the hint only orders the search).
async fn find(
    st: &AppState,
    client: &Client,
    token: &str,
    hint: Option<&str>,
) -> Result<Option<Found>, TokenError> {
    let refresh_first = hint != Some("access_token");
    for kind in if refresh_first {
        ["refresh", "access"]
    } else {
        ["access", "refresh"]
    } {
        let found = if kind == "refresh" {
            st.store
                .refresh_token(&hash_secret(token))
                .await?
                .map(Found::Refresh)
        } else {
            // Signature, type and issuer; expiry is judged by the caller.
            match st.keys().verify_with::<AccessClaims>(
                token,
                "at+jwt",
                &st.issuer,
                Some(&st.issuer),
                None,
            ) {
                Ok(claims) => st
                    .store
                    .access_token(&claims.jti)
                    .await?
                    .map(|row| Found::Access(claims, row)),
                Err(_) => None,
            }
        };
        if let Some(f) = found {
            let owner = match &f {
                Found::Refresh(r) => &r.client_id,
                Found::Access(_, a) => &a.client_id,
            };
            return Ok((owner == &client.client_id).then_some(f));
        }
    }
    Ok(None)
}

/// RFC 7009 §2: revokes the token if it is the caller's; always 200 for a well-formed request.
pub(super) async fn revoke_token(
    State(st): State<SharedState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokenError> {
    st.rate_by_address("addr", &meta, st.config.limits.rate_per_address)
        .map_err(TokenError::RateLimited)?;
    let form = parse_form(&headers, &body)?;
    let client = client_auth::authenticate(&st, &headers, &form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| TokenError::InvalidRequest("token is required".into()))?;
    let now = st.clock.unix();
    let event = Event::new(Kind::TokenRevoked).client(&client.client_id);
    match find(&st, &client, token, form.get("token_type_hint")).await? {
        // Revoking a refresh token revokes its grant: the family and its access tokens (§2.1).
        Some(Found::Refresh(r)) => {
            st.store.revoke_grant(&r.grant_id, now).await?;
            let detail = format!("refresh token: grant {} revoked", r.grant_id);
            let event = event.user(&r.user_id).detail(detail);
            audit::record(&st.store, &st.clock, event).await;
        }
        Some(Found::Access(claims, _)) => {
            st.store.revoke_access_token(&claims.jti, now).await?;
            let detail = format!("access token {}", claims.jti);
            let event = event.user(&claims.sub).detail(detail);
            audit::record(&st.store, &st.clock, event).await;
        }
        None => {}
    }
    Ok((StatusCode::OK, no_store()).into_response())
}

/// RFC 7662 §2: whether the caller's token is active, and what it says.
pub(super) async fn introspect_token(
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
    st.rate(
        &format!("introspect:{}", client.client_id),
        limits.introspection_rate_per_client,
    )
    .map_err(TokenError::RateLimited)?;
    // Introspection tells what a token grants: confidential clients only (RFC 7662 §2.1).
    if client.auth_method == crate::store::AuthMethod::None {
        return Err(TokenError::InvalidClient);
    }
    let token = form
        .get("token")
        .ok_or_else(|| TokenError::InvalidRequest("token is required".into()))?;
    let now = st.clock.unix();
    let inactive = json!({ "active": false });
    let body: Value = match find(&st, &client, token, form.get("token_type_hint")).await? {
        Some(Found::Refresh(r))
            if r.revoked_at.is_none() && r.used_at.is_none() && r.family_expires_at > now =>
        {
            let username = st
                .store
                .user_by_id(&r.user_id)
                .await?
                .filter(|u| !u.disabled)
                .map(|u| u.username);
            match username {
                Some(username) => json!({
                    "active": true, "token_type": "refresh_token", "scope": r.scope,
                    "client_id": r.client_id, "sub": r.user_id, "username": username,
                    "iss": st.issuer, "iat": r.issued_at, "exp": r.family_expires_at,
                }),
                None => inactive,
            }
        }
        Some(Found::Access(c, row)) if row.revoked_at.is_none() && c.exp > now => json!({
            "active": true, "token_type": "Bearer", "scope": c.scope, "client_id": c.client_id,
            "sub": c.sub, "iss": c.iss, "aud": c.aud, "iat": c.iat, "exp": c.exp, "jti": c.jti,
        }),
        _ => inactive,
    };
    Ok((no_store(), Json(body)).into_response())
}
