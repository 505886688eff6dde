//! Calling the next API on the user's behalf: token exchange (RFC 8693 §2) at the provider's
//! token endpoint, as the API's own client, for a token addressed to the downstream API.

use crate::verify::Verifier;
use serde::Deserialize;

/// RFC 8693 §3: the token type of an access token.
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// A token for the downstream API.
#[derive(Clone, Debug, Deserialize)]
pub struct Exchanged {
    pub access_token: String,
    pub expires_in: i64,
    #[serde(default)]
    pub scope: String,
}

/// Why no token was obtained.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("the provider's discovery document names no token endpoint")]
    NoEndpoint,
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider's answer (RFC 6749 §5.2 `error`, and its description).
    #[error("the exchange was refused: {error} ({description})")]
    Refused { error: String, description: String },
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl Verifier {
    /// Exchanges `subject_token` (a token this API was called with) for one addressed to
    /// `resource`, with `scope` if given (at most what the provider's rule allows this
    /// client there), authenticating as `client_id` with HTTP Basic.
    pub async fn exchange(
        &self,
        (client_id, client_secret): (&str, &str),
        subject_token: &str,
        resource: &str,
        scope: Option<&str>,
    ) -> Result<Exchanged, ExchangeError> {
        let endpoint = self.token_endpoint().ok_or(ExchangeError::NoEndpoint)?;
        let mut form = vec![
            ("grant_type", GRANT),
            ("subject_token", subject_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", resource),
        ];
        form.extend(scope.map(|s| ("scope", s)));
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let unreachable = |e: reqwest::Error| ExchangeError::Unreachable(e.to_string());
        let response = self
            .http()
            .post(endpoint)
            .basic_auth(encode(client_id), Some(encode(client_secret)))
            .form(&form)
            .send()
            .await
            .map_err(unreachable)?;
        if response.status().is_success() {
            return response.json().await.map_err(unreachable);
        }
        let status = response.status();
        let body: Option<ErrorBody> = response.json().await.ok();
        Err(match body {
            Some(b) => ExchangeError::Refused {
                error: b.error,
                description: b.error_description,
            },
            None => ExchangeError::Refused {
                error: status.to_string(),
                description: String::new(),
            },
        })
    }
}
