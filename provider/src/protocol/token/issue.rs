//! What every grant hands out, signed and recorded in one place: the access token (a JWT per
//! RFC 9068, with a registry entry so it can be revoked), the ID token (OIDC Core §2) and the
//! refresh token (opaque, stored as its hash), committed with the audit event.

use super::target::Target;
use crate::audit::{self, Event, Kind};
use crate::context::{Ctx, SystemError};
use crate::keys::at_hash;
use crate::protocol::error::TokenError;
use crate::store::{AccessTokenRow, Client, GrantRow, Guard, Insert, RefreshTokenRow, User};
use crate::types::{Alg, GrantType, Level, Methods, ScopeSet, TokenType};
use infra::secret::{hash_secret, random_handle};
use serde::{Deserialize, Serialize};

/// RFC 8693 §3: the token type URI of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Why an issuance was refused at the last moment.
const REVOKED: &str = "the grant was revoked";

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
    /// Space-separated: the OpenID scopes of a token for userinfo, an API's scopes for one
    /// addressed to that API.
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<i64>,
    /// The level of the user's sign-in (RFC 9068 §2.2.1, OIDC Core §2).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub acr: Option<String>,
    /// The methods of the user's sign-in (RFC 9068 §2.2.1, RFC 8176).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amr: Option<Vec<String>>,
    /// The SSO session the token was issued under.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
    /// Who acts for `sub` (RFC 8693 §4.1): the API that exchanged the user's token for this
    /// one, and whoever acted before it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<Actor>,
    /// The DPoP key the token is bound to (RFC 9449 §6.1, RFC 7800 `cnf`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<Confirmation>,
}

/// RFC 9449 §6.1: `cnf` with the thumbprint of the key a token is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

/// RFC 8693 §4.1 `act`: the current actor, and the chain of earlier ones nested inside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting API's client.
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<Box<Actor>>,
}

/// What a token exchange adds to an issuance (RFC 8693).
pub struct Exchanged {
    /// The subject token's `jti`: revoking it revokes this one.
    pub subject_jti: String,
    pub act: Actor,
    /// The subject token's `exp`: an exchanged token does not outlive it.
    pub not_after: i64,
}

impl AccessClaims {
    /// The OpenID scopes the token carries (for userinfo; an API's scopes are not among them).
    pub fn oidc_scopes(&self) -> ScopeSet {
        ScopeSet::parse_known(&self.scope)
    }

    /// The methods of the user's sign-in the token carries (those we know); a token from
    /// before they were carried: a password.
    pub fn methods(&self) -> Methods {
        let Some(named) = &self.amr else {
            return Methods::PASSWORD;
        };
        named
            .iter()
            .filter_map(|m| crate::types::Method::parse(m))
            .fold(Methods::NONE, Methods::with)
    }
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
    /// The level the sign-in reached (OIDC Core §2), and its methods (RFC 8176).
    acr: &'static str,
    amr: Vec<&'static str>,
}

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The access token's scope (RFC 6749 §5.1).
    pub scope: String,
    /// RFC 8693 §2.2.1: what a token exchange issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// What one grant hands out.
pub struct Issue<'a> {
    pub grant: GrantType,
    pub client: &'a Client,
    /// `None` for `client_credentials`.
    pub user: Option<&'a User>,
    pub scope: ScopeSet,
    pub grant_id: Option<String>,
    pub sid: Option<String>,
    pub auth_time: Option<i64>,
    /// The methods of the user's sign-in (none for `client_credentials`).
    pub amr: Methods,
    /// The level to state, when the request asked for an essential one (OIDC Core §5.5.1.1);
    /// `None`: the level `amr` reaches.
    pub acr: Option<Level>,
    pub nonce: Option<String>,
    pub id_token: bool,
    /// A new refresh token of this grant's family.
    pub refresh: Option<NewRefresh>,
    /// The grant this issuance starts (a code's redemption), stored with its tokens.
    pub starts: Option<GrantRow>,
    /// What must still hold when the tokens are stored, checked in their transaction (the
    /// code unrevoked, the grant live, the presented refresh token unspent): if one does not,
    /// nothing is issued (and nothing is spent).
    pub guards: Vec<Guard>,
    /// A refresh's grant as its token describes it: recorded if it has no row yet (a family
    /// from a version of the provider that kept no grants), and the issuance tried again.
    pub adopt: Option<GrantRow>,
    /// The API the access token is for (RFC 8707), if not the provider's own userinfo.
    pub target: Option<Target>,
    /// A token exchange's actor and subject token.
    pub exchanged: Option<Exchanged>,
    /// The DPoP key the access token is bound to (the thumbprint of the request's proof).
    pub dpop_jkt: Option<String>,
}

impl Issue<'_> {
    /// The level the tokens state.
    fn level(&self) -> Level {
        self.acr.unwrap_or_else(|| self.amr.level())
    }
}

/// The refresh token to issue: the token itself (random for a new grant, the successor of
/// the presented one on a refresh), the SSO session of an online grant, the family's deadline,
/// and the grant's full scope (a narrowed refresh narrows the access token, not the grant).
pub struct NewRefresh {
    pub token: String,
    pub sid: Option<String>,
    pub family_expires_at: i64,
    pub scope: ScopeSet,
    /// The DPoP key it is bound to: a public client's, from the grant's first proof on.
    pub dpop_jkt: Option<String>,
}

/// Signs the access token, then the ID token and refresh token if asked, and stores the
/// grant it starts, the access token's registry entry, the refresh token and the audit event
/// in one commit, under the issuance's guard (`invalid_grant` if the grant was revoked
/// meanwhile: nothing is issued).
pub async fn issue(ctx: &Ctx, now: i64, i: Issue<'_>) -> Result<TokenResponse, TokenError> {
    let (access_token, access) = access_token(ctx, now, &i)?;
    let mut rows: Vec<Insert> = i.starts.iter().map(Insert::grant).collect();
    rows.push(Insert::access_token(&AccessTokenRow {
        jti: access.jti.clone(),
        grant_id: i.grant_id.clone(),
        client_id: i.client.client_id.clone(),
        user_id: i.user.map(|u| u.id.clone()),
        scope: access.scope.clone(),
        issued_at: now,
        expires_at: access.exp,
        revoked_at: None,
        resource_id: i.target.as_ref().map(|t| t.resource_id.clone()),
        parent_jti: i.exchanged.as_ref().map(|e| e.subject_jti.clone()),
    }));
    let id_token = match (i.id_token, i.user) {
        (true, Some(user)) => Some(id_token(ctx, now, &i, user, &access_token)?),
        _ => None,
    };
    let refresh_token = match (&i.refresh, i.user, &i.grant_id) {
        (Some(rt), Some(user), Some(grant_id)) => {
            let token = rt.token.clone();
            rows.push(Insert::refresh_token(&RefreshTokenRow {
                token_hash: hash_secret(&token),
                grant_id: grant_id.clone(),
                client_id: i.client.client_id.clone(),
                user_id: user.id.clone(),
                scope: rt.scope,
                sid: rt.sid.clone(),
                auth_time: i.auth_time.unwrap_or(now),
                amr: i.amr,
                acr: i.acr.map(|l| l.as_str().to_owned()),
                issued_at: now,
                family_expires_at: rt.family_expires_at,
                used_at: None,
                revoked_at: None,
                dpop_jkt: rt.dpop_jkt.clone(),
            }));
            Some(token)
        }
        _ => None,
    };
    let mut issued = vec!["access token"];
    issued.extend(id_token.as_ref().map(|_| "ID token"));
    issued.extend(refresh_token.as_ref().map(|_| "refresh token"));
    let detail = format!(
        "grant {}: {} (jti {}, aud {}, scope \"{}\")",
        i.grant,
        issued.join(", "),
        access.jti,
        access.aud,
        access.scope
    );
    let (kind, detail) = match &i.exchanged {
        Some(e) => (
            Kind::TokenExchanged,
            format!(
                "{detail}, for subject token {} acting as {}",
                e.subject_jti, e.act.sub
            ),
        ),
        None => (Kind::TokenIssued, detail),
    };
    let event = Event::new(kind)
        .client(&i.client.client_id)
        .user_opt(i.user.map(|u| u.id.as_str()))
        .session_opt(i.sid.as_deref())
        .detail(detail);
    let event = audit::prepare(audit::now_us(&ctx.clock), event);
    rows.push(Insert::audit(&event));
    let stored = store(ctx, &i, rows).await;
    if let Ok(false) = stored {
        tracing::info!(client_id = %i.client.client_id, "grant revoked while issuing: nothing issued");
        return Err(TokenError::invalid_grant(REVOKED));
    }
    let stored = stored.map(drop);
    audit::log(&event, &stored);
    stored.map_err(SystemError::from)?;
    metrics::counter!("gatehouse_tokens_issued_total", "grant" => i.grant.as_str()).increment(1);
    Ok(TokenResponse {
        access_token,
        token_type: match i.dpop_jkt {
            Some(_) => TokenType::DPoP,
            None => TokenType::Bearer,
        },
        expires_in: access.exp - now,
        id_token,
        refresh_token,
        scope: access.scope,
        issued_token_type: i.exchanged.as_ref().map(|_| ACCESS_TOKEN_TYPE),
    })
}

/// Stores the issuance's rows under its guard; false if the guard did not hold (after
/// adopting a grant with no row, and trying once more).
async fn store(ctx: &Ctx, i: &Issue<'_>, rows: Vec<Insert>) -> Result<bool, sqlx::Error> {
    if i.guards.is_empty() {
        return ctx.store.insert(rows).await.map(|()| true);
    }
    let again = i.adopt.as_ref().map(|_| rows.clone());
    if ctx.store.insert_guarded(i.guards.clone(), rows).await? {
        return Ok(true);
    }
    match (&i.adopt, again) {
        (Some(grant), Some(rows)) if ctx.store.adopt_grant(grant).await? => {
            tracing::info!(grant_id = %grant.grant_id, "a grant from before the grants table recorded");
            ctx.store.insert_guarded(i.guards.clone(), rows).await
        }
        _ => Ok(false),
    }
}

/// The access token (RFC 9068): for the provider's userinfo, signed with ES256 (the provider
/// is its only verifier, and ES256 is far cheaper to sign than RS256); or for the API the
/// request named, with its `aud`, its scopes there and its lifetime, signed as the API is
/// registered (RS256 unless it chose ES256: RFC 9068 §2.1 asks every resource server to
/// support RS256, not ES256).
fn access_token(ctx: &Ctx, now: i64, i: &Issue<'_>) -> Result<(String, AccessClaims), SystemError> {
    let sub = i
        .user
        .map_or(i.client.client_id.as_str(), |u| u.id.as_str());
    let (aud, scope, lifetime, alg) = match &i.target {
        Some(t) => (
            t.resource_id.clone(),
            t.scopes.to_string(),
            t.lifetime,
            t.alg,
        ),
        None => (
            ctx.issuer.clone(),
            i.scope.to_string(),
            infra::secs(ctx.config.tokens.access_token_lifetime),
            Alg::ES256,
        ),
    };
    let exp = i
        .exchanged
        .as_ref()
        .map_or(now + lifetime, |e| e.not_after.min(now + lifetime));
    let claims = AccessClaims {
        iss: ctx.issuer.clone(),
        exp,
        aud,
        sub: sub.to_owned(),
        client_id: i.client.client_id.clone(),
        iat: now,
        jti: random_handle()?,
        scope,
        auth_time: i.auth_time,
        acr: i.user.map(|_| i.level().as_str().to_owned()),
        amr: i
            .user
            .map(|_| i.amr.amr().into_iter().map(str::to_owned).collect()),
        sid: i.sid.clone(),
        act: i.exchanged.as_ref().map(|e| e.act.clone()),
        cnf: i.dpop_jkt.clone().map(|jkt| Confirmation { jkt }),
    };
    let token = ctx.keys.current().sign(alg, "at+jwt", &claims)?;
    Ok((token, claims))
}

/// The ID token (OIDC Core §2), signed with the client's algorithm, bound to the access token
/// by `at_hash` (§3.1.3.6).
fn id_token(
    ctx: &Ctx,
    now: i64,
    i: &Issue<'_>,
    user: &User,
    access_token: &str,
) -> Result<String, SystemError> {
    let claims = IdClaims {
        iss: &ctx.issuer,
        sub: &user.id,
        aud: &i.client.client_id,
        exp: now + infra::secs(ctx.config.tokens.id_token_lifetime),
        iat: now,
        auth_time: i.auth_time.unwrap_or(now),
        nonce: i.nonce.as_deref(),
        sid: i.sid.as_deref(),
        at_hash: at_hash(i.client.id_token_alg, access_token),
        azp: &i.client.client_id,
        acr: i.level().as_str(),
        amr: i.amr.amr(),
    };
    Ok(ctx
        .keys
        .current()
        .sign(i.client.id_token_alg, "JWT", &claims)?)
}

/// A grant from a sign-in with `amr` may still get tokens for `client`: not if an operator
/// has since required two factors for it and the sign-in had fewer (the app signs the
/// person in again).
pub(super) fn level_still_met(client: &Client, amr: Methods) -> Result<(), TokenError> {
    if client.require_mfa && amr.level() < Level::Mfa {
        return Err(TokenError::invalid_grant(
            "the app now requires a sign-in with two factors",
        ));
    }
    Ok(())
}

/// The user a grant was issued to, if the account is still active.
pub(super) async fn active_user(ctx: &Ctx, id: &str) -> Result<User, TokenError> {
    ctx.store
        .user_by_id(id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| TokenError::invalid_grant("the user is no longer active"))
}
