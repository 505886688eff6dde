//! UserInfo endpoint (OIDC Core §5.3), GET and POST, with Bearer tokens (RFC 6750): the
//! standard claims of the scopes the access token carries.

use super::error::BearerError;
use super::token::AccessClaims;
use crate::app::{AppState, SharedState};
use crate::web::{Params, no_store};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub(super) async fn show_userinfo(
    State(st): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, BearerError> {
    let token = header_token(&headers)?.ok_or(BearerError::Missing)?;
    respond(&st, &token).await
}

/// POST may carry the token in the form body instead (RFC 6750 §2.2), never in both places.
pub(super) async fn show_userinfo_post(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, BearerError> {
    let in_header = header_token(&headers)?;
    let in_body = if super::authorize::is_form(&headers) {
        let form =
            Params::parse(&body).map_err(|_| BearerError::InvalidRequest("malformed form body"))?;
        form.get("access_token").map(str::to_owned)
    } else {
        None
    };
    let token = match (in_header, in_body) {
        (Some(_), Some(_)) => {
            return Err(BearerError::InvalidRequest(
                "send the token in one place only",
            ));
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return Err(BearerError::Missing),
    };
    respond(&st, &token).await
}

pub(crate) fn header_token(headers: &HeaderMap) -> Result<Option<String>, BearerError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| BearerError::InvalidRequest("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(BearerError::InvalidRequest(
            "the Authorization header must use the Bearer scheme",
        )),
    }
}

async fn respond(st: &AppState, token: &str) -> Result<Response, BearerError> {
    let now = st.clock.unix();
    let claims: AccessClaims = st
        .keys()
        .verify(token, "at+jwt", &st.issuer, &st.issuer, now)
        .map_err(|_| BearerError::InvalidToken("the access token is invalid or expired"))?;
    let revoked = BearerError::InvalidToken("the access token was revoked");
    let scopes: Vec<&str> = claims.scope.split(' ').collect();
    if !scopes.contains(&"openid") {
        // Not a token for userinfo (RFC 6750 §3.1), once it is known to be live.
        return match st.store.access_token(&claims.jti).await? {
            Some(t) if t.revoked_at.is_none() => Err(BearerError::InsufficientScope),
            _ => Err(revoked),
        };
    }
    // Revocation takes effect at once: the registry is checked on every use (with the user,
    // in the same query).
    let (_, user) = st
        .store
        .access_token_user(&claims.jti)
        .await?
        .filter(|(revoked_at, user)| revoked_at.is_none() && user.id == claims.sub)
        .ok_or(revoked)?;
    if user.disabled {
        return Err(BearerError::InvalidToken("the user is no longer active"));
    }
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    if scopes.contains(&"profile") {
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                out.insert(k.into(), json!(v));
            }
        };
        put("name", &user.name);
        put("given_name", &user.given_name);
        put("family_name", &user.family_name);
        out.insert("preferred_username".into(), json!(user.username));
        out.insert("updated_at".into(), json!(user.updated_at));
    }
    if scopes.contains(&"email")
        && let Some(email) = &user.email
    {
        out.insert("email".into(), json!(email));
        out.insert("email_verified".into(), json!(user.email_verified));
    }
    Ok((no_store(), Json(Value::Object(out))).into_response())
}
