//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, and `none` for public clients. Exactly one method per request, and it
//! must be the one the client registered.

use super::error::TokenError;
use crate::app::AppState;
use crate::store::{AuthMethod, Client};
use crate::web::Params;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sessions::secret::{ct_eq, hash_secret};

/// The client credentials of a request, before they are checked.
struct Presented {
    client_id: String,
    secret: Option<String>,
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
    let ok = match (presented_hash, &client.secret_hash) {
        (Some(given), Some(stored)) => ct_eq(&given, stored),
        (None, _) => p.method == AuthMethod::None,
        (Some(_), None) => false,
    };
    if !ok {
        return Err(TokenError::InvalidClient);
    }
    Ok(client)
}

fn presented(headers: &HeaderMap, form: &Params) -> Result<Presented, TokenError> {
    let basic = basic_credentials(headers)?;
    let body_id = form.get("client_id");
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
                method: AuthMethod::ClientSecretBasic,
            })
        }
        (None, Some(secret)) => Ok(Presented {
            client_id: body_id
                .ok_or_else(|| TokenError::InvalidRequest("client_id is required".into()))?
                .to_owned(),
            secret: Some(secret.to_owned()),
            method: AuthMethod::ClientSecretPost,
        }),
        (None, None) => Ok(Presented {
            client_id: body_id.ok_or(TokenError::InvalidClient)?.to_owned(),
            secret: None,
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
