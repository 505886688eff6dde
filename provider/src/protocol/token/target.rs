//! The API a token request names (RFC 8707 §2.2): the access token is then addressed to it
//! (`aud`, RFC 9068 §3) and carries the scopes the grant holds there, for as long as the API's
//! tokens live. Without `resource` the access token is the provider's own (userinfo).

use crate::context::Ctx;
use crate::protocol::error::TokenError;
use crate::protocol::params::Params;
use crate::types::{ApiScopes, Scope, ScopeSet};

/// An access token's API: its resource indicator, the token's scopes there and lifetime.
#[derive(Clone, Debug)]
pub struct Target {
    pub resource_id: String,
    pub scopes: ApiScopes,
    /// Seconds.
    pub lifetime: i64,
}

/// The `resource` a token request names, if any.
pub(super) fn named(form: &Params) -> Option<&str> {
    form.get("resource")
}

/// The target `resource` names, as grant `grant_id` holds it: `invalid_target` if the grant
/// was not given that API at the authorization request. `asked` (a refresh's `scope`) may
/// narrow the API's scopes; naming one the grant holds neither there nor among its OpenID
/// scopes (`oidc`) is `invalid_scope` (RFC 6749 §6: never wider).
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
    let scopes = match asked {
        None => held.scopes,
        Some(asked) => {
            let wider = asked.split(' ').filter(|s| !s.is_empty()).any(|s| {
                !held.scopes.contains(s) && !Scope::parse(s).is_some_and(|o| oidc.contains(o))
            });
            if wider {
                return Err(TokenError::invalid_scope(
                    "a refresh cannot widen the granted scope",
                ));
            }
            held.scopes.pick(asked)
        }
    };
    Ok(Target {
        resource_id: held.resource_id,
        scopes,
        lifetime: held.access_token_lifetime,
    })
}
