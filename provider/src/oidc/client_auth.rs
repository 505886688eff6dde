//! Client authentication at the token, revocation and introspection endpoints (RFC 6749
//! §2.3): `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523, OIDC Core
//! §9), and `none` for public clients. Exactly one method per request, and it must be the one
//! the client registered.

use super::error::TokenError;
use crate::app::AppState;
use crate::store::{AuthMethod, Client};
use crate::web::Params;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use infra::secret::{ct_eq, hash_secret};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// RFC 7523 §2.2 `client_assertion_type`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may live.
const MAX_ASSERTION_SECS: i64 = 3600;

/// The client credentials of a request, before they are checked.
struct Presented {
    client_id: String,
    secret: Option<String>,
    assertion: Option<String>,
    method: AuthMethod,
}

/// Authenticates the calling client, or fails with `invalid_client` (401).
pub(super) async fn authenticate(
    st: &AppState,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Client, TokenError> {
    let p = presented(headers, form)?;
    let client = st.store.client(&p.client_id).await?;
    // Hash even for an unknown client, so its answer takes the same time.
    let presented_hash = p.secret.as_deref().map(hash_secret);
    let Some(client) = client else {
        return Err(TokenError::InvalidClient);
    };
    if client.auth_method != p.method {
        return Err(TokenError::InvalidClient);
    }
    let ok = match (p.method, presented_hash, &client.secret_hash) {
        (AuthMethod::PrivateKeyJwt, _, _) => match p.assertion.as_deref() {
            Some(assertion) => verify_assertion(st, &client, assertion).await?,
            None => false,
        },
        (_, Some(given), Some(stored)) => ct_eq(&given, stored),
        (method, None, _) => method == AuthMethod::None,
        (_, Some(_), None) => false,
    };
    if !ok {
        return Err(TokenError::InvalidClient);
    }
    Ok(client)
}

/// RFC 7523 §3 / OIDC Core §9: signed with one of the client's keys; `iss` and `sub` the
/// client; `aud` this provider (its issuer or one of its endpoints); `exp` ahead, but not far;
/// `jti` never seen before.
async fn verify_assertion(
    st: &AppState,
    client: &Client,
    assertion: &str,
) -> Result<bool, TokenError> {
    let Some(jwks) = client
        .jwks
        .as_deref()
        .and_then(|j| serde_json::from_str::<JwkSet>(j).ok())
    else {
        return Ok(false);
    };
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return Ok(false);
    };
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Ok(false);
    }
    let jwk = match header.kid.as_deref() {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    };
    let Some(jwk) = jwk else { return Ok(false) };
    let fits = matches!(
        (&jwk.algorithm, header.alg),
        (AlgorithmParameters::RSA(_), Algorithm::RS256)
            | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
    );
    let Ok(key) = DecodingKey::from_jwk(jwk) else {
        return Ok(false);
    };
    if !fits {
        return Ok(false);
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false; // checked below on the injected clock
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
    validation.set_issuer(&[&client.client_id]);
    validation.sub = Some(client.client_id.clone());
    let audiences: Vec<String> = ["", "/token", "/revoke", "/introspect"]
        .iter()
        .map(|p| format!("{}{p}", st.issuer))
        .collect();
    validation.set_audience(&audiences);
    let Ok(data) = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation) else {
        return Ok(false);
    };
    let now = st.clock.unix();
    let exp = data
        .claims
        .get("exp")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    if exp <= now || exp > now + MAX_ASSERTION_SECS {
        return Ok(false);
    }
    let Some(jti) = data.claims.get("jti").and_then(serde_json::Value::as_str) else {
        return Ok(false);
    };
    // Replayed assertions are refused (the jti is kept until the assertion would expire).
    Ok(st
        .store
        .use_assertion(&client.client_id, jti, exp, now)
        .await?)
}

/// The `iss` of an assertion, read without verifying it: only to find the client whose keys
/// will then verify it.
fn assertion_issuer(assertion: &str) -> Option<String> {
    let payload = URL_SAFE_NO_PAD.decode(assertion.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

fn presented(headers: &HeaderMap, form: &Params) -> Result<Presented, TokenError> {
    let basic = basic_credentials(headers)?;
    let body_id = form.get("client_id");
    let assertion = match (
        form.get("client_assertion_type"),
        form.get("client_assertion"),
    ) {
        (None, None) => None,
        (Some(JWT_BEARER), Some(a)) => Some(a),
        _ => {
            return Err(TokenError::InvalidRequest(format!(
                "client_assertion needs client_assertion_type {JWT_BEARER}"
            )));
        }
    };
    if let Some(assertion) = assertion {
        if basic.is_some() || form.get("client_secret").is_some() {
            return Err(TokenError::InvalidRequest(
                "use exactly one client authentication method".into(),
            ));
        }
        let client_id = assertion_issuer(assertion).ok_or(TokenError::InvalidClient)?;
        if body_id.is_some_and(|b| b != client_id) {
            return Err(TokenError::InvalidClient);
        }
        return Ok(Presented {
            client_id,
            secret: None,
            assertion: Some(assertion.to_owned()),
            method: AuthMethod::PrivateKeyJwt,
        });
    }
    match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => Err(TokenError::InvalidRequest(
            "use exactly one client authentication method".into(),
        )),
        (Some((id, secret)), None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(TokenError::InvalidRequest(
                    "client_id does not match the Authorization header".into(),
                ));
            }
            Ok(Presented {
                client_id: id,
                secret: Some(secret),
                assertion: None,
                method: AuthMethod::ClientSecretBasic,
            })
        }
        (None, Some(secret)) => Ok(Presented {
            client_id: body_id
                .ok_or_else(|| TokenError::InvalidRequest("client_id is required".into()))?
                .to_owned(),
            secret: Some(secret.to_owned()),
            assertion: None,
            method: AuthMethod::ClientSecretPost,
        }),
        (None, None) => Ok(Presented {
            client_id: body_id.ok_or(TokenError::InvalidClient)?.to_owned(),
            secret: None,
            assertion: None,
            method: AuthMethod::None,
        }),
    }
}

/// `Authorization: Basic …` with form-urlencoded id and secret (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, TokenError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| TokenError::InvalidClient)?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(TokenError::InvalidClient);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(TokenError::InvalidClient);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| TokenError::InvalidClient)?;
    let text = String::from_utf8(decoded).map_err(|_| TokenError::InvalidClient)?;
    let (id, secret) = text.split_once(':').ok_or(TokenError::InvalidClient)?;
    let parsed = Params::parse(format!("id={id}&secret={secret}").as_bytes())
        .map_err(|_| TokenError::InvalidClient)?;
    match (parsed.get("id"), parsed.get("secret")) {
        (Some(id), Some(secret)) => Ok(Some((id.to_owned(), secret.to_owned()))),
        _ => Err(TokenError::InvalidClient),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn basic(raw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(raw));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let got = basic_credentials(&basic("my%20app:s%3Acret"))
            .unwrap()
            .unwrap();
        assert_eq!(got, ("my app".to_owned(), "s:cret".to_owned()));
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        assert!(matches!(
            basic_credentials(&basic("no-colon")),
            Err(TokenError::InvalidClient)
        ));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(matches!(
            basic_credentials(&h),
            Err(TokenError::InvalidClient)
        ));
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let form = Params::parse(b"client_secret=x").unwrap();
        assert!(matches!(
            presented(&basic("a:b"), &form),
            Err(TokenError::InvalidRequest(_))
        ));
    }
}
