//! `POST /token` (RFC 6749 §3.2), `POST /revoke` (RFC 7009), `POST /introspect` (RFC
//! 7662), `POST /device_authorization` (RFC 8628 §3.1) and `POST /par` (RFC 9126 §2): the
//! client authenticates through [`ClientForm`], the rules are `protocol::token`,
//! `protocol::revocation`, `protocol::device` and `protocol::authorize::pushed`.

use crate::paths;
use crate::protocol::authorize::pushed;
use crate::protocol::error::TokenError;
use crate::protocol::{device, dpop, revocation, token};
use crate::store::Client;
use crate::types::{AuthMethod, GrantType, TokenErrorCode};
use crate::web::error::no_store;
use crate::web::extract::{ClientForm, dpop_headers};
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The DPoP proof a client's POST to `path` carries, if any, checked for that endpoint.
async fn proof_at(
    st: &AppState,
    path: &str,
    headers: &HeaderMap,
) -> Result<Option<dpop::Proof>, TokenError> {
    let proofs = dpop_headers(headers)
        .map_err(|why| TokenError::new(TokenErrorCode::InvalidDpopProof, why))?;
    dpop::at_endpoint(&st.ctx, path, &proofs).await
}

/// A success answered to a request with a DPoP proof carries the provider's current nonce
/// (RFC 9449 §8.2), so that the client's next proof has it without a `use_dpop_nonce` round
/// trip once the one it holds has aged.
fn with_nonce(st: &AppState, mut response: Response, proof: Option<&dpop::Proof>) -> Response {
    if proof.is_some()
        && st.ctx.config.tokens.dpop_nonce
        && let Ok(nonce) = HeaderValue::from_str(&st.ctx.dpop_nonces.current(st.ctx.clock.unix()))
    {
        response.headers_mut().insert("dpop-nonce", nonce);
    }
    response
}

/// Counted once the client is authenticated: nobody spends another client's budget.
fn per_client(st: &AppState, what: &str, client: &Client, limit: u64) -> Result<(), TokenError> {
    st.client_rate(&format!("{what}:{}", client.client_id), limit)
        .map_err(TokenError::RateLimited)
}

/// With a DPoP proof (RFC 9449), the access token is bound to its key. A device's polls are
/// not counted against its client's budget (waiting devices would exhaust it): the interval
/// each request keeps, `slow_down`, paces them (RFC 8628 §3.5).
pub async fn issue_token(
    State(st): State<AppState>,
    headers: HeaderMap,
    ClientForm { client, form }: ClientForm,
) -> Result<Response, TokenError> {
    if form.get("grant_type") != Some(GrantType::DeviceCode.as_str()) {
        let limit = st.ctx.config.limits.token_rate_per_client;
        per_client(&st, "token", &client, limit)?;
    }
    let proof = proof_at(&st, paths::TOKEN, &headers).await?;
    let response = token::exchange_with(&st.ctx, &client, &form, proof.as_ref()).await?;
    let response = (no_store(), Json(response)).into_response();
    Ok(with_nonce(&st, response, proof.as_ref()))
}

/// RFC 7009 §2.2: 200 for every well-formed request, whether or not a token was revoked.
pub async fn revoke_token(
    State(st): State<AppState>,
    ClientForm { client, form }: ClientForm,
) -> Result<Response, TokenError> {
    revocation::revoke(&st.ctx, &client, &form).await?;
    Ok((StatusCode::OK, no_store()).into_response())
}

pub async fn introspect_token(
    State(st): State<AppState>,
    ClientForm { client, form }: ClientForm,
) -> Result<Response, TokenError> {
    let limit = st.ctx.config.limits.introspection_rate_per_client;
    per_client(&st, "introspect", &client, limit)?;
    let answer = revocation::introspect(&st.ctx, &client, &form).await?;
    Ok((no_store(), Json(answer)).into_response())
}

/// RFC 8628 §3.2: the device's codes, answered as JSON, or an error as the token endpoint's
/// (RFC 6749 §5.2). Each request stores a row: a confidential client's are counted against
/// its budget; a public client's, which anyone can send, only against their address's (the
/// router's layer), so that nobody can spend the budget of every device of an app.
pub async fn authorize_device(
    State(st): State<AppState>,
    ClientForm { client, form }: ClientForm,
) -> Result<Response, TokenError> {
    if client.auth_method != AuthMethod::None {
        let limit = st.ctx.config.limits.token_rate_per_client;
        per_client(&st, "device", &client, limit)?;
    }
    let answer = device::start(&st.ctx, &client, &form).await?;
    Ok((no_store(), Json(answer)).into_response())
}

/// RFC 9126 §2.2: `201 Created` with the `request_uri` for the browser; an authorization
/// request refused as JSON (§2.3). Counted against the client's token budget. A DPoP proof
/// sent with the push binds the code to its key (RFC 9449 §10.1).
pub async fn push_request(
    State(st): State<AppState>,
    headers: HeaderMap,
    ClientForm { client, form }: ClientForm,
) -> Result<Response, TokenError> {
    let limit = st.ctx.config.limits.token_rate_per_client;
    per_client(&st, "par", &client, limit)?;
    let proof = proof_at(&st, paths::PUSHED_AUTHORIZATION, &headers).await?;
    let answer = pushed::push(&st.ctx, &client, &form, proof.as_ref()).await?;
    let response = (StatusCode::CREATED, no_store(), Json(answer)).into_response();
    Ok(with_nonce(&st, response, proof.as_ref()))
}
