//! The token endpoint's rules (RFC 6749 §3.2; OIDC Core §3.1.3, §12): one file per grant, and
//! [`issue`] for what every grant hands out. A new grant type is a variant of
//! `types::GrantType`, a file here, and an arm in [`exchange`].

mod client_credentials;
mod code;
mod device;
mod exchange;
pub mod issue;
mod refresh;
pub mod target;

pub use issue::{AccessClaims, Actor, TokenResponse};

use super::dpop::Proof;
use super::error::TokenError;
use super::params::Params;
use crate::context::Ctx;
use crate::store::Client;
use crate::types::{GrantType, TokenErrorCode};

/// A token request from an authenticated client: the grant it names, if the client may use
/// it, with that grant's parameters.
pub async fn exchange(
    ctx: &Ctx,
    client: &Client,
    form: &Params,
) -> Result<TokenResponse, TokenError> {
    exchange_with(ctx, client, form, None).await
}

/// [`exchange`] with the request's DPoP proof, if it sent one (RFC 9449 §5): its access token
/// is then bound to the proof's key.
pub async fn exchange_with(
    ctx: &Ctx,
    client: &Client,
    form: &Params,
    dpop: Option<&Proof>,
) -> Result<TokenResponse, TokenError> {
    let dpop = dpop.map(|p| p.jkt.as_str());
    // RFC 9449 §5.2: a client registered with `dpop_bound_access_tokens` sends a proof with
    // every token request.
    if client.dpop_bound && dpop.is_none() {
        return Err(TokenError::new(
            TokenErrorCode::InvalidDpopProof,
            "this client's token requests must carry a DPoP proof",
        ));
    }
    let grant = match form.get("grant_type") {
        None => return Err(TokenError::invalid_request("grant_type is required")),
        Some(g) => GrantType::parse(g).ok_or_else(|| {
            TokenError::new(
                TokenErrorCode::UnsupportedGrantType,
                "grant_type is not supported",
            )
        })?,
    };
    if !client.allows_grant(grant) {
        return Err(TokenError::unauthorized_client());
    }
    // RFC 8707 §2 lets a request name several resources; a token here is for one API.
    if form.is_repeated("resource") {
        return Err(TokenError::invalid_target("one resource per token request"));
    }
    match grant {
        GrantType::AuthorizationCode => {
            let req = code::CodeRequest {
                dpop,
                ..code::CodeRequest::parse(form)?
            };
            code::redeem(ctx, client, &req).await
        }
        GrantType::RefreshToken => {
            let req = refresh::RefreshRequest {
                dpop,
                ..refresh::RefreshRequest::parse(form)?
            };
            refresh::refresh(ctx, client, &req).await
        }
        GrantType::ClientCredentials => client_credentials::grant(ctx, client, form, dpop).await,
        GrantType::TokenExchange => exchange::grant(ctx, client, form, dpop).await,
        GrantType::DeviceCode => device::grant(ctx, client, form, dpop).await,
    }
}
