//! `client_credentials` (RFC 6749 §4.4): a confidential client allowed the grant gets an
//! access token about itself; no ID token, no refresh token, no user scopes.

use super::issue::{Issue, TokenResponse, issue};
use crate::context::Ctx;
use crate::protocol::error::TokenError;
use crate::protocol::params::Params;
use crate::store::Client;
use crate::types::{AuthMethod, GrantType, ScopeSet};

pub(super) async fn grant(
    ctx: &Ctx,
    client: &Client,
    form: &Params,
    dpop: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    // Registration refuses the grant to public clients; a client stored otherwise is refused
    // here too (RFC 6749 §4.4: confidential clients only).
    if client.auth_method == AuthMethod::None {
        return Err(TokenError::unauthorized_client());
    }
    // No client is given an API's scopes without a user yet: a token for an API needs a
    // grant that names it (RFC 8707 §2: `invalid_target`).
    if super::target::named(form).is_some() {
        return Err(TokenError::invalid_target(
            "this client may not obtain tokens for an API on its own behalf",
        ));
    }
    if form.get("scope").is_some() {
        return Err(TokenError::invalid_scope(
            "this client may not request scopes",
        ));
    }
    let now = ctx.clock.unix();
    let issued = issue(
        ctx,
        now,
        Issue {
            grant: GrantType::ClientCredentials,
            client,
            user: None,
            scope: ScopeSet::EMPTY,
            grant_id: None,
            sid: None,
            auth_time: None,
            amr: crate::types::Methods::NONE,
            acr: None,
            nonce: None,
            id_token: false,
            refresh: None,
            starts: None,
            guards: Vec::new(),
            adopt: None,
            target: None,
            exchanged: None,
            dpop_jkt: dpop.map(str::to_owned),
        },
    )
    .await?;
    Ok(issued)
}
