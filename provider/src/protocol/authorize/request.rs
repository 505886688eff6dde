//! An authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1) and the rules it must meet.
//!
//! The client and its redirect URI are checked first ([`client_and_redirect_uri`]): until both
//! are known good, an error can only be shown to the person (RFC 6749 §4.1.2.1). Every later
//! rule ([`parse`]) answers the client at that redirect URI.

use super::super::error::{AuthorizeError, PageError, RedirectError};
use super::super::params::Params;
use super::super::pkce;
use super::level::{self, AcrRequest};
use crate::context::Ctx;
use crate::store::Client;
use crate::types::{
    ApiScopes, AuthorizeErrorCode, GrantType, PkceMethod, Prompt, ResponseMode, ResponseType,
    Scope, ScopeSet,
};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Longest `state`, `nonce` or `login_hint` accepted.
pub const MAX_PARAM_LEN: usize = 2048;

/// A validated authorization request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The user an `id_token_hint` names (OIDC Core §3.1.2.1), once its signature checked out.
    #[serde(default)]
    pub hint_sub: Option<String>,
    /// The API the client asks access tokens for (RFC 8707 §2.1), with the scopes asked there.
    #[serde(default)]
    pub resource: Option<ResourceRequest>,
    /// The level of sign-in asked for (`acr_values`, or an `acr` claim in `claims`).
    #[serde(default)]
    pub acr: Option<AcrRequest>,
    /// It came through the PAR endpoint (RFC 9126): checked again when it goes on after
    /// waiting, since an operator may require that meanwhile.
    #[serde(default)]
    pub pushed: bool,
    /// The DPoP key its code is bound to (RFC 9449 §10): the thumbprint of the key that must
    /// sign the proof of the code's redemption.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    pub created_at: i64,
}

/// A registered API named by `resource` (in its registration `generation`), and those of the
/// request's scopes it defines.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceRequest {
    pub resource_id: String,
    #[serde(default)]
    pub generation: i64,
    pub scopes: ApiScopes,
}

impl AuthRequest {
    /// An error sent back to the client (with `state` and `iss`).
    pub fn error(
        &self,
        issuer: &str,
        code: AuthorizeErrorCode,
        description: &str,
    ) -> RedirectError {
        RedirectError {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            issuer: issuer.to_owned(),
            code,
            description: description.to_owned(),
        }
    }
}

/// A rule's refusal: the error code and its description.
type Refusal = (AuthorizeErrorCode, Cow<'static, str>);

fn refuse(code: AuthorizeErrorCode, description: &'static str) -> Refusal {
    (code, Cow::Borrowed(description))
}

fn invalid(description: &'static str) -> Refusal {
    refuse(AuthorizeErrorCode::InvalidRequest, description)
}

/// Checks every parameter of a request sent as it is (neither pushed nor signed): see
/// [`validate_resolved`]. The endpoint resolves first (`super::authorize`); the tests use this.
#[cfg(test)]
pub(crate) async fn validate(
    ctx: &Ctx,
    params: &Params,
) -> Result<(AuthRequest, Client), AuthorizeError> {
    validate_resolved(ctx, params, false).await
}

/// Checks every parameter of a request's own parameters (a pushed request or a request object
/// resolved first, by the sibling module `pushed`): the client and redirect URI (errors shown as a
/// page), then the rest (errors sent to the client). `pushed`: they came through the PAR
/// endpoint, which a client registered with `require_pushed_authorization_requests` must use.
pub async fn validate_resolved(
    ctx: &Ctx,
    params: &Params,
    pushed: bool,
) -> Result<(AuthRequest, Client), AuthorizeError> {
    let (client, redirect_uri) = client_and_redirect_uri(ctx, params).await?;
    // An ID token we issued (it may have expired); only its subject is used.
    let hint_subject = |hint: &str| super::super::hint::verify(ctx, hint).map(|h| h.sub);
    let at = Trusted {
        client: &client,
        redirect_uri,
        issuer: &ctx.issuer,
        now: ctx.clock.unix(),
    };
    let mut req = parse(params, &at, hint_subject)?;
    req.pushed = pushed;
    if req.dpop_jkt.is_some() && !ctx.config.tokens.dpop_code_binding {
        let code = AuthorizeErrorCode::InvalidRequest;
        let why = "dpop_jkt is not supported: send the DPoP proof with the token request";
        return Err(req.error(&ctx.issuer, code, why).into());
    }
    if client.require_par && !pushed {
        let code = AuthorizeErrorCode::InvalidRequest;
        let why = "this client must push its authorization requests first (PAR, RFC 9126)";
        return Err(req.error(&ctx.issuer, code, why).into());
    }
    if let Some(resource) = params.get("resource") {
        let asked = params.get("scope").unwrap_or("");
        let found = ctx.store.resource(resource).await?;
        let Some(found) = found else {
            let code = AuthorizeErrorCode::InvalidTarget;
            return Err(req
                .error(&ctx.issuer, code, "the resource is not registered here")
                .into());
        };
        let scopes = found.scopes.pick(asked);
        // A token's scope is one or more scopes (RFC 6749 §3.3): an API with none is refused.
        if scopes.is_empty() {
            let code = AuthorizeErrorCode::InvalidScope;
            let why = "ask for at least one of the resource's scopes";
            return Err(req.error(&ctx.issuer, code, why).into());
        }
        req.resource = Some(ResourceRequest {
            scopes,
            generation: found.created_at,
            resource_id: found.resource_id,
        });
    }
    Ok((req, client))
}

/// The registered client and the redirect URI, checked exactly (OIDC Core §3.1.2.1, RFC 9700
/// §4.1.3). Errors here are pages: nobody is sent anywhere.
pub async fn client_and_redirect_uri(
    ctx: &Ctx,
    params: &Params,
) -> Result<(Client, String), PageError> {
    if params.is_repeated("client_id") || params.is_repeated("redirect_uri") {
        return Err(PageError::bad_request(
            "The sign-in request repeats client_id or redirect_uri.",
        ));
    }
    let client_id = params.get("client_id").ok_or_else(|| {
        PageError::bad_request(
            "The sign-in request does not say which app is asking (client_id is missing).",
        )
    })?;
    let client = ctx.store.client(client_id).await?.ok_or_else(|| {
        PageError::bad_request(
            "The app that sent you here is not registered with Gatehouse (unknown client_id).",
        )
    })?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| PageError::bad_request("The sign-in request has no redirect_uri."))?;
    if !client.has_redirect_uri(redirect_uri) {
        return Err(PageError::bad_request(
            "The app asked Gatehouse to send you to an address it has not registered \
             (redirect_uri mismatch), so Gatehouse will not send you there.",
        ));
    }
    Ok((client, redirect_uri.to_owned()))
}

/// What the later rules may rely on: the client and the redirect URI were checked.
pub struct Trusted<'a> {
    pub client: &'a Client,
    pub redirect_uri: String,
    pub issuer: &'a str,
    pub now: i64,
}

/// Every rule after the client and redirect URI, in the order errors are reported;
/// `hint_subject` verifies an `id_token_hint` and returns its subject.
pub fn parse(
    params: &Params,
    at: &Trusted<'_>,
    hint_subject: impl Fn(&str) -> Option<String>,
) -> Result<AuthRequest, RedirectError> {
    let state = params.get("state").map(str::to_owned);
    let fail = |(code, description): Refusal| RedirectError {
        redirect_uri: at.redirect_uri.clone(),
        state: state.clone().filter(|s| s.len() <= MAX_PARAM_LEN),
        issuer: at.issuer.to_owned(),
        code,
        description: description.into_owned(),
    };
    check_shape(params).map_err(fail)?;
    check_response(params, at.client).map_err(fail)?;
    let scopes = scopes(params, at.client).map_err(fail)?;
    let code_challenge = code_challenge(params, at.client.pkce_required()).map_err(fail)?;
    let prompt =
        Prompt::parse(params.get("prompt").unwrap_or("")).map_err(|why| fail(invalid(why)))?;
    let max_age = max_age(params).map_err(fail)?;
    let acr = level::requested(params).map_err(fail)?;
    let dpop_jkt = dpop_jkt(params).map_err(fail)?;
    let hint_sub = match params.get("id_token_hint") {
        None => None,
        Some(hint) => Some(
            hint_subject(hint)
                .ok_or_else(|| fail(invalid("id_token_hint is not an ID token issued here")))?,
        ),
    };
    Ok(AuthRequest {
        client_id: at.client.client_id.clone(),
        redirect_uri: at.redirect_uri.clone(),
        scopes,
        state,
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_owned),
        hint_sub,
        resource: None,
        acr,
        pushed: false,
        dpop_jkt,
        created_at: at.now,
    })
}

/// No repeated parameter (RFC 6749 §3.1), no oversized value, and none of the request forms
/// we do not support (OIDC Core §6, §7.2.1).
fn check_shape(params: &Params) -> Result<(), Refusal> {
    // RFC 8707 §2 lets a request name several resources; one grant here serves one API, and
    // tokens for another come from a grant of their own.
    if params.is_repeated("resource") {
        return Err(refuse(
            AuthorizeErrorCode::InvalidTarget,
            "one resource per request",
        ));
    }
    params.check_repeated().map_err(|e| {
        (
            AuthorizeErrorCode::InvalidRequest,
            Cow::Owned(e.to_string()),
        )
    })?;
    if ["state", "nonce", "login_hint", "acr_values", "claims"]
        .iter()
        .any(|p| params.get(p).is_some_and(|v| v.len() > MAX_PARAM_LEN))
    {
        return Err(invalid(
            "state, nonce, login_hint, acr_values or claims is too long",
        ));
    }
    // A request's own parameters (resolved before they get here) never name another request.
    if params.get("request").is_some() || params.get("request_uri").is_some() {
        return Err(invalid("request and request_uri cannot be nested"));
    }
    if params.get("registration").is_some() {
        return Err(refuse(
            AuthorizeErrorCode::RegistrationNotSupported,
            "the registration parameter is not supported",
        ));
    }
    Ok(())
}

/// `dpop_jkt` (RFC 9449 §10): the RFC 7638 thumbprint of a key, SHA-256 in base64url (43
/// characters), to which the code is bound.
fn dpop_jkt(params: &Params) -> Result<Option<String>, Refusal> {
    let Some(jkt) = params.get("dpop_jkt") else {
        return Ok(None);
    };
    let well_formed = jkt.len() == 43
        && jkt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(invalid(
            "dpop_jkt must be a key's SHA-256 JWK thumbprint (RFC 7638), base64url-encoded",
        ));
    }
    Ok(Some(jkt.to_owned()))
}

/// `response_type=code` (OIDC Core §3.1.2.1), answered in the query, by a client allowed the
/// code flow.
fn check_response(params: &Params, client: &Client) -> Result<(), Refusal> {
    match params.get("response_type").map(ResponseType::parse) {
        None => return Err(invalid("response_type is required")),
        Some(Some(ResponseType::Code)) => {}
        Some(None) => {
            return Err(refuse(
                AuthorizeErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if params
        .get("response_mode")
        .is_some_and(|m| ResponseMode::parse(m) != Some(ResponseMode::Query))
    {
        return Err(invalid("only response_mode=query is supported"));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(refuse(
            AuthorizeErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    Ok(())
}

/// The scopes we know among those asked (others are ignored, RFC 6749 §3.3); `openid` is
/// required (OIDC Core §3.1.2.1); `offline_access` is ignored for a client that may not hold
/// refresh tokens (OIDC Core §11).
fn scopes(params: &Params, client: &Client) -> Result<ScopeSet, Refusal> {
    let asked = ScopeSet::parse_known(params.get("scope").unwrap_or(""));
    if !asked.contains(Scope::OpenId) {
        return Err(refuse(
            AuthorizeErrorCode::InvalidScope,
            "the openid scope is required",
        ));
    }
    Ok(if client.allows_grant(GrantType::RefreshToken) {
        asked
    } else {
        asked.without(Scope::OfflineAccess)
    })
}

/// PKCE is required, with S256 only (RFC 9700 §2.1.1); a missing method would mean `plain`
/// (RFC 7636 §4.3). Only for a confidential client whose operator turned it off
/// (`Client::pkce_required`) may a request carry no challenge at all, given as `""`; a
/// challenge it does send is held to the same rules.
fn code_challenge(params: &Params, required: bool) -> Result<String, Refusal> {
    let absent =
        params.get("code_challenge").is_none() && params.get("code_challenge_method").is_none();
    if absent && !required {
        return Ok(String::new());
    }
    match params.get("code_challenge_method").map(PkceMethod::parse) {
        Some(Some(PkceMethod::S256)) => {}
        None => {
            return Err(invalid(
                "PKCE is required: code_challenge_method must be S256",
            ));
        }
        Some(None) => return Err(invalid("only the S256 code_challenge_method is supported")),
    }
    let challenge = params
        .get("code_challenge")
        .ok_or_else(|| invalid("PKCE is required: code_challenge is missing"))?;
    if !pkce::is_valid_s256_challenge(challenge) {
        return Err(invalid("code_challenge is not a valid S256 challenge"));
    }
    Ok(challenge.to_owned())
}

/// `max_age` in seconds (OIDC Core §3.1.2.1).
fn max_age(params: &Params) -> Result<Option<i64>, Refusal> {
    params
        .get("max_age")
        .map(|v| {
            v.parse::<u32>()
                .map(i64::from)
                .map_err(|_| invalid("max_age must be a non-negative integer"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Alg, AuthMethod};

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(grants: &[GrantType]) -> Client {
        Client {
            client_id: "app".into(),
            secret_hash: None,
            name: "App".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            frontchannel_logout_uri: None,
            frontchannel_logout_session_required: false,
            require_par: false,
            dpop_bound: false,
            grant_types: grants.to_vec(),
            auth_method: AuthMethod::ClientSecretBasic,
            id_token_alg: Alg::RS256,
            first_party: false,
            jwks: None,
            owner_id: None,
            registration_token_hash: None,
            default_acr_values: vec![],
            require_mfa: false,
            require_pkce: true,
            created_at: 0,
        }
    }

    /// Parses `query` (with the usual parameters unless overridden) for a code-flow client.
    fn parse_with(query: &str, grants: &[GrantType]) -> Result<AuthRequest, RedirectError> {
        let base = format!(
            "response_type=code&scope=openid+profile&state=xyz&nonce=n&\
             code_challenge={CHALLENGE}&code_challenge_method=S256"
        );
        let mut pairs: Vec<String> = base.split('&').map(str::to_owned).collect();
        for extra in query.split('&').filter(|p| !p.is_empty()) {
            let name = extra.split('=').next().unwrap_or("");
            pairs.retain(|p| p.split('=').next() != Some(name) || extra.starts_with('+'));
            if !extra.ends_with('=') {
                pairs.push(extra.trim_start_matches('+').to_owned());
            }
        }
        let params = Params::parse(pairs.join("&").as_bytes()).unwrap();
        let client = client(grants);
        let at = Trusted {
            client: &client,
            redirect_uri: "https://app.example/cb".into(),
            issuer: "https://idp.example",
            now: 1000,
        };
        parse(&params, &at, |hint| {
            (hint == "good-hint").then(|| "alice".to_owned())
        })
    }

    fn code_of(query: &str) -> (AuthorizeErrorCode, String) {
        let e = parse_with(query, &[GrantType::AuthorizationCode]).unwrap_err();
        (e.code, e.description)
    }

    #[test]
    fn a_good_request_is_parsed() {
        let req = parse_with(
            "max_age=60&login_hint=al&prompt=login",
            &[GrantType::AuthorizationCode],
        )
        .unwrap();
        assert_eq!(req.scopes.to_string(), "openid profile");
        assert_eq!(req.state.as_deref(), Some("xyz"));
        assert_eq!(req.nonce.as_deref(), Some("n"));
        assert_eq!(req.code_challenge, CHALLENGE);
        assert_eq!(req.max_age, Some(60));
        assert!(req.prompt.login);
        assert_eq!(req.login_hint.as_deref(), Some("al"));
        assert_eq!(req.created_at, 1000);
    }

    #[test]
    fn errors_go_back_with_state_and_iss() {
        let e = parse_with("response_type=token", &[GrantType::AuthorizationCode]).unwrap_err();
        assert_eq!(e.code, AuthorizeErrorCode::UnsupportedResponseType);
        assert_eq!(e.state.as_deref(), Some("xyz"));
        assert_eq!(e.issuer, "https://idp.example");
        assert_eq!(e.redirect_uri, "https://app.example/cb");
        // An oversized state is not echoed back.
        let long = format!("state={}", "s".repeat(MAX_PARAM_LEN + 1));
        let e = parse_with(&long, &[GrantType::AuthorizationCode]).unwrap_err();
        assert_eq!(e.state, None);
    }

    #[test]
    fn each_rule_refuses_its_input_with_its_code() {
        use AuthorizeErrorCode as C;
        for (query, code, words) in [
            ("+state=again", C::InvalidRequest, "repeated"),
            (
                "response_type=",
                C::InvalidRequest,
                "response_type is required",
            ),
            (
                "response_type=id_token",
                C::UnsupportedResponseType,
                "only response_type=code",
            ),
            (
                "response_mode=fragment",
                C::InvalidRequest,
                "response_mode=query",
            ),
            // Resolved already (by the sibling module `pushed`): a request's own parameters name no other.
            ("request=eyJ", C::InvalidRequest, "cannot be nested"),
            ("request_uri=urn:x", C::InvalidRequest, "cannot be nested"),
            ("dpop_jkt=abc", C::InvalidRequest, "dpop_jkt must be"),
            (
                // 43 characters, one outside base64url.
                "dpop_jkt=0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4%2B",
                C::InvalidRequest,
                "dpop_jkt must be",
            ),
            (
                "registration=%7B%7D",
                C::RegistrationNotSupported,
                "registration",
            ),
            ("scope=profile", C::InvalidScope, "openid scope is required"),
            (
                "code_challenge_method=",
                C::InvalidRequest,
                "PKCE is required",
            ),
            (
                "code_challenge_method=plain",
                C::InvalidRequest,
                "only the S256",
            ),
            (
                "code_challenge=",
                C::InvalidRequest,
                "code_challenge is missing",
            ),
            (
                "code_challenge=short",
                C::InvalidRequest,
                "not a valid S256",
            ),
            ("prompt=sometimes", C::InvalidRequest, "unknown prompt"),
            ("prompt=none+login", C::InvalidRequest, "cannot be combined"),
            ("max_age=-1", C::InvalidRequest, "max_age"),
            ("max_age=soon", C::InvalidRequest, "max_age"),
            ("id_token_hint=forged", C::InvalidRequest, "id_token_hint"),
        ] {
            let (got, description) = code_of(query);
            assert_eq!(got, code, "{query}");
            assert!(description.contains(words), "{query}: {description}");
        }
        let long = format!("nonce={}", "n".repeat(MAX_PARAM_LEN + 1));
        assert!(code_of(&long).1.contains("too long"));
    }

    #[test]
    fn a_client_without_the_code_grant_is_unauthorized() {
        let e = parse_with("", &[GrantType::ClientCredentials]).unwrap_err();
        assert_eq!(e.code, AuthorizeErrorCode::UnauthorizedClient);
    }

    #[test]
    fn unknown_scopes_are_ignored_and_offline_access_needs_refresh_tokens() {
        let both = [GrantType::AuthorizationCode, GrantType::RefreshToken];
        let req = parse_with("scope=openid+offline_access+payments", &both).unwrap();
        assert_eq!(req.scopes.to_string(), "openid offline_access");
        let req = parse_with(
            "scope=openid+offline_access",
            &[GrantType::AuthorizationCode],
        )
        .unwrap();
        assert_eq!(req.scopes.to_string(), "openid");
    }

    #[test]
    fn a_good_id_token_hint_names_its_subject() {
        let req = parse_with("id_token_hint=good-hint", &[GrantType::AuthorizationCode]).unwrap();
        assert_eq!(req.hint_sub.as_deref(), Some("alice"));
    }
}
