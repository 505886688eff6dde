//! The API a token request names (RFC 8707 §2.2): the access token is then addressed to it
//! (`aud`, RFC 9068 §3) and carries the scopes the grant holds there, for as long as the API's
//! tokens live. Without `resource` the access token is the provider's own (userinfo).

use crate::context::Ctx;
use crate::protocol::error::TokenError;
use crate::protocol::params::Params;
use crate::types::{Alg, ApiScopes, Scope, ScopeSet};

/// An access token's API: its resource indicator, the token's scopes there and lifetime.
#[derive(Clone, Debug)]
pub struct Target {
    pub resource_id: String,
    pub scopes: ApiScopes,
    /// Seconds.
    pub lifetime: i64,
    /// RS256 or ES256, as the API is registered.
    pub alg: Alg,
}

/// The `resource` a token request names, if any.
pub(super) fn named(form: &Params) -> Option<&str> {
    form.get("resource")
}

/// The target `resource` names, as grant `grant_id` holds it: `invalid_target` if the grant
/// was not given that API at the authorization request (or the API was removed or registered
/// anew since). `asked` (a refresh's `scope`) may narrow the API's scopes; naming one the grant
/// holds neither there nor among its OpenID scopes (`oidc`) is `invalid_scope` (RFC 6749 §6:
/// never wider), and so is a token that would carry none of the API's scopes.
pub(super) async fn of_grant(
    ctx: &Ctx,
    grant_id: &str,
    resource: &str,
    asked: Option<&str>,
    oidc: ScopeSet,
) -> Result<Target, TokenError> {
    let held = ctx
        .store
        .grant_resource(grant_id, resource)
        .await?
        .ok_or_else(|| TokenError::invalid_target("the grant does not cover this resource"))?;
    // What the API still defines of what was granted (a scope it dropped is gone).
    let granted = held.scopes.intersection(&held.defined);
    let scopes = match asked {
        None => granted,
        Some(asked) => {
            let wider = asked.split(' ').filter(|s| !s.is_empty()).any(|s| {
                !granted.contains(s) && !Scope::parse(s).is_some_and(|o| oidc.contains(o))
            });
            if wider {
                return Err(TokenError::invalid_scope(
                    "a refresh cannot widen the granted scope",
                ));
            }
            granted.pick(asked)
        }
    };
    if scopes.is_empty() {
        return Err(TokenError::invalid_scope(
            "no scope of the resource is granted or asked",
        ));
    }
    Ok(Target {
        resource_id: held.resource_id,
        scopes,
        lifetime: held.access_token_lifetime,
        alg: held.access_token_alg,
    })
}
