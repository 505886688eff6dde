//! Client authentication at the token, revocation and introspection endpoints (RFC 6749
//! §2.3): `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523, OIDC Core
//! §9), and `none` for public clients. Exactly one method per request, and it must be the one
//! the client registered.

use super::error::TokenError;
use super::params::Params;
use crate::context::Ctx;
use crate::paths;
use crate::store::Client;
use crate::types::AuthMethod;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use infra::secret::{ct_eq, hash_secret};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// RFC 7523 §2.2 `client_assertion_type`.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may live.
const MAX_ASSERTION_SECS: i64 = 3600;
/// The endpoints whose URL an assertion may name as its audience, besides the issuer (RFC
/// 7523 §3: the token endpoint; OIDC Core §9 allows the issuer too; we accept each endpoint
/// that authenticates clients).
const ASSERTION_AUDIENCES: [&str; 5] = [
    paths::TOKEN,
    paths::REVOCATION,
    paths::INTROSPECTION,
    paths::REVOCATION_FEED,
    // RFC 9126 §2: the PAR endpoint's URL is a valid audience there.
    paths::PUSHED_AUTHORIZATION,
];
/// The `typ`s of JWTs a client signs that are not client assertions: a request object (RFC
/// 9101), which travels through browsers, and a DPoP proof (RFC 9449).
const NOT_ASSERTIONS: [&str; 2] = ["oauth-authz-req+jwt", "dpop+jwt"];

/// The client credentials of a request, before they are checked (no `Debug`: it holds the
/// secret).
pub struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
    pub assertion: Option<String>,
    pub method: AuthMethod,
}

/// The credentials a request presents: the `Authorization` header's value (if any) and the
/// form. Two methods at once, or a malformed one, is refused.
pub fn presented(authorization: Option<&str>, form: &Params) -> Result<Presented, TokenError> {
    let basic = authorization.map(basic_credentials).transpose()?;
    let body_id = form.get("client_id");
    let assertion = match (
        form.get("client_assertion_type"),
        form.get("client_assertion"),
    ) {
        (None, None) => None,
        (Some(JWT_BEARER), Some(a)) => Some(a),
        _ => {
            return Err(TokenError::invalid_request(format!(
                "client_assertion needs client_assertion_type {JWT_BEARER}"
            )));
        }
    };
    let one_method = || TokenError::invalid_request("use exactly one client authentication method");
    if let Some(assertion) = assertion {
        if basic.is_some() || form.get("client_secret").is_some() {
            return Err(one_method());
        }
        let client_id = assertion_issuer(assertion).ok_or_else(TokenError::invalid_client)?;
        if body_id.is_some_and(|b| b != client_id) {
            return Err(TokenError::invalid_client());
        }
        return Ok(Presented {
            client_id,
            secret: None,
            assertion: Some(assertion.to_owned()),
            method: AuthMethod::PrivateKeyJwt,
        });
    }
    let (client_id, secret, method) = match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => return Err(one_method()),
        (Some((id, secret)), None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(TokenError::invalid_request(
                    "client_id does not match the Authorization header",
                ));
            }
            (id, Some(secret), AuthMethod::ClientSecretBasic)
        }
        (None, Some(secret)) => {
            let id = body_id.ok_or_else(|| TokenError::invalid_request("client_id is required"))?;
            (
                id.to_owned(),
                Some(secret.to_owned()),
                AuthMethod::ClientSecretPost,
            )
        }
        (None, None) => {
            let id = body_id.ok_or_else(TokenError::invalid_client)?;
            (id.to_owned(), None, AuthMethod::None)
        }
    };
    Ok(Presented {
        client_id,
        secret,
        assertion: None,
        method,
    })
}

/// Authenticates the calling client, or fails with `invalid_client` (401).
pub async fn authenticate(ctx: &Ctx, p: &Presented) -> Result<Client, TokenError> {
    let client = ctx.store.client(&p.client_id).await?;
    // Hash even for an unknown client, so its answer takes the same time.
    let presented_hash = p.secret.as_deref().map(hash_secret);
    let Some(client) = client else {
        return Err(TokenError::invalid_client());
    };
    if client.auth_method != p.method {
        return Err(TokenError::invalid_client());
    }
    let ok = match (p.method, presented_hash, &client.secret_hash) {
        (AuthMethod::PrivateKeyJwt, _, _) => match p.assertion.as_deref() {
            Some(assertion) => verify_assertion(ctx, &client, assertion).await?,
            None => false,
        },
        (_, Some(given), Some(stored)) => ct_eq(&given, stored),
        (method, None, _) => method == AuthMethod::None,
        (_, Some(_), None) => false,
    };
    if !ok {
        return Err(TokenError::invalid_client());
    }
    Ok(client)
}

/// RFC 7523 §3 / OIDC Core §9: signed with one of the client's keys; `iss` and `sub` the
/// client; `aud` this provider (its issuer or one of its endpoints); `exp` ahead, but not far;
/// `jti` never seen before.
async fn verify_assertion(ctx: &Ctx, client: &Client, assertion: &str) -> Result<bool, TokenError> {
    let now = ctx.clock.unix();
    let Some(claims) = assertion_claims(&ctx.issuer, client, assertion, now) else {
        return Ok(false);
    };
    // Replayed assertions are refused (the jti is kept until the assertion would expire).
    Ok(ctx
        .store
        .use_assertion(&client.client_id, &claims.jti, claims.exp, now)
        .await?)
}

/// An assertion's `jti` and `exp`, once everything but replay has been checked.
struct AssertionClaims {
    jti: String,
    exp: i64,
}

fn assertion_claims(
    issuer: &str,
    client: &Client,
    assertion: &str,
    now: i64,
) -> Option<AssertionClaims> {
    let (key, alg) = client_key(client, assertion)?;
    let typ = jsonwebtoken::decode_header(assertion).ok()?.typ;
    if typ.is_some_and(|t| NOT_ASSERTIONS.iter().any(|m| is_media_type(&t, m))) {
        return None;
    }
    let mut validation = Validation::new(alg);
    validation.validate_exp = false; // checked below on the injected clock
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
    validation.set_issuer(&[&client.client_id]);
    validation.sub = Some(client.client_id.clone());
    let mut audiences = vec![issuer.to_owned()];
    audiences.extend(ASSERTION_AUDIENCES.iter().map(|p| format!("{issuer}{p}")));
    validation.set_audience(&audiences);
    let data = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation).ok()?;
    let exp = data
        .claims
        .get("exp")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    if exp <= now || exp > now + MAX_ASSERTION_SECS {
        return None;
    }
    let jti = data.claims.get("jti")?.as_str()?.to_owned();
    Some(AssertionClaims { jti, exp })
}

/// The key of `client`'s registered JWK Set that `jwt` names (by `kid`, or the only one), if
/// its type fits the header's `alg` (RS256, ES256, or EdDSA on Ed25519; never `none` or a MAC):
/// for client assertions and request objects (RFC 9101 §6.1) alike.
pub(super) fn client_key(client: &Client, jwt: &str) -> Option<(DecodingKey, Algorithm)> {
    let jwks: JwkSet = serde_json::from_str(client.jwks.as_deref()?).ok()?;
    let header = jsonwebtoken::decode_header(jwt).ok()?;
    if !matches!(
        header.alg,
        Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
    ) {
        return None;
    }
    let jwk = match header.kid.as_deref() {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }?;
    let key = DecodingKey::from_jwk(jwk).ok()?;
    infra::dpop::key_fits(jwk, header.alg).then_some((key, header.alg))
}

/// Whether `typ` names `media` (RFC 7515 §4.1.9: the `application/` prefix may be left out;
/// media types are compared without regard to case).
pub(super) fn is_media_type(typ: &str, media: &str) -> bool {
    let typ = typ
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    typ.eq_ignore_ascii_case(media)
}

/// The `iss` of an assertion, read without verifying it: only to find the client whose keys
/// will then verify it.
fn assertion_issuer(assertion: &str) -> Option<String> {
    let payload = URL_SAFE_NO_PAD.decode(assertion.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// `Authorization: Basic …` with form-urlencoded id and secret (RFC 6749 §2.3.1).
fn basic_credentials(value: &str) -> Result<(String, String), TokenError> {
    let (scheme, encoded) = value
        .split_once(' ')
        .ok_or_else(TokenError::invalid_client)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(TokenError::invalid_client());
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| TokenError::invalid_client())?;
    let text = String::from_utf8(decoded).map_err(|_| TokenError::invalid_client())?;
    let (id, secret) = text
        .split_once(':')
        .ok_or_else(TokenError::invalid_client)?;
    let parsed = Params::parse(format!("id={id}&secret={secret}").as_bytes())
        .map_err(|_| TokenError::invalid_client())?;
    match (parsed.get("id"), parsed.get("secret")) {
        (Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
        _ => Err(TokenError::invalid_client()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TokenErrorCode;

    fn basic(raw: &str) -> String {
        format!("Basic {}", STANDARD.encode(raw))
    }

    fn form(raw: &str) -> Params {
        Params::parse(raw.as_bytes()).unwrap()
    }

    fn code(r: Result<Presented, TokenError>) -> Option<TokenErrorCode> {
        r.err().and_then(|e| e.code())
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let got = basic_credentials(&basic("my%20app:s%3Acret")).unwrap();
        assert_eq!(got, ("my app".to_owned(), "s:cret".to_owned()));
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for value in [
            basic("no-colon"),
            "Basic !!!".into(),
            "Bearer x".into(),
            "Basic".into(),
        ] {
            let got = basic_credentials(&value).map_err(|e| e.code());
            assert_eq!(got, Err(Some(TokenErrorCode::InvalidClient)), "{value}");
        }
    }

    #[test]
    fn each_method_is_recognised() {
        let p = presented(Some(&basic("app:pw")), &form("")).unwrap();
        assert_eq!(
            (p.client_id.as_str(), p.method),
            ("app", AuthMethod::ClientSecretBasic)
        );
        let p = presented(None, &form("client_id=app&client_secret=pw")).unwrap();
        assert_eq!(p.method, AuthMethod::ClientSecretPost);
        assert_eq!(p.secret.as_deref(), Some("pw"));
        let p = presented(None, &form("client_id=cli")).unwrap();
        assert_eq!((p.method, p.secret), (AuthMethod::None, None));
        let claims = URL_SAFE_NO_PAD.encode(r#"{"iss":"signer"}"#);
        let raw = format!("client_assertion_type={JWT_BEARER}&client_assertion=h.{claims}.s");
        let p = presented(None, &form(&raw)).unwrap();
        assert_eq!(
            (p.client_id.as_str(), p.method),
            ("signer", AuthMethod::PrivateKeyJwt)
        );
    }

    #[test]
    fn two_methods_at_once_or_a_half_one_are_refused() {
        use TokenErrorCode::{InvalidClient, InvalidRequest};
        let both = presented(Some(&basic("a:b")), &form("client_secret=x"));
        assert_eq!(code(both), Some(InvalidRequest));
        let mismatch = presented(Some(&basic("a:b")), &form("client_id=other"));
        assert_eq!(code(mismatch), Some(InvalidRequest));
        let no_type = presented(None, &form("client_assertion=x.y.z"));
        assert_eq!(code(no_type), Some(InvalidRequest));
        let secret_without_id = presented(None, &form("client_secret=x"));
        assert_eq!(code(secret_without_id), Some(InvalidRequest));
        assert_eq!(code(presented(None, &form(""))), Some(InvalidClient));
        let unreadable = format!("client_assertion_type={JWT_BEARER}&client_assertion=junk");
        assert_eq!(
            code(presented(None, &form(&unreadable))),
            Some(InvalidClient)
        );
    }
}
