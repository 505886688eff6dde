//! Calling the next API on the user's behalf: token exchange (RFC 8693 §2) at the provider's
//! token endpoint, as the API's own client, for a token addressed to the downstream API;
//! bound to the API's own DPoP key when it sends a proof (RFC 9449 §5).

use crate::proof::ProofKey;
use crate::verify::Verifier;
use serde::Deserialize;

/// RFC 8693 §3: the token type of an access token.
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// A token for the downstream API.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct Exchanged {
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the key the exchange was sent with.
    #[serde(default = "bearer")]
    pub token_type: String,
    pub expires_in: i64,
    #[serde(default)]
    pub scope: String,
}

/// Why no token was obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    #[error("the provider's discovery document names no token endpoint")]
    NoEndpoint,
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// No DPoP proof could be made (the key could not sign).
    #[error("no DPoP proof could be made: {0}")]
    Proof(String),
    /// The provider's answer (RFC 6749 §5.2 `error`, and its description).
    #[error("the exchange was refused: {error} ({description})")]
    Refused { error: String, description: String },
}

fn bearer() -> String {
    "Bearer".into()
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
        credentials: (&str, &str),
        subject_token: &str,
        resource: &str,
        scope: Option<&str>,
    ) -> Result<Exchanged, ExchangeError> {
        self.exchange_with(credentials, subject_token, resource, scope, None)
            .await
    }

    /// [`Verifier::exchange`], with a DPoP proof by `key` if given (RFC 9449 §5): the token is
    /// then bound to that key (`token_type` `DPoP`), and the next API wants a proof by it
    /// ([`ProofKey::authorization`]). The provider's nonce (§8) is answered: a refusal asking
    /// for one is tried again, once, with the nonce it carried.
    pub async fn exchange_with(
        &self,
        (client_id, client_secret): (&str, &str),
        subject_token: &str,
        resource: &str,
        scope: Option<&str>,
        key: Option<&ProofKey>,
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
        let mut retried = false;
        loop {
            let mut request = self
                .http()
                .post(endpoint)
                .basic_auth(encode(client_id), Some(encode(client_secret)))
                .form(&form);
            if let Some(key) = key {
                let proof = key
                    .proof("POST", endpoint, None)
                    .map_err(|e| ExchangeError::Proof(e.to_string()))?;
                request = request.header("DPoP", proof);
            }
            let response = request.send().await.map_err(unreachable)?;
            if let (Some(key), Some(nonce)) = (key, response.headers().get("dpop-nonce"))
                && let Ok(nonce) = nonce.to_str()
            {
                key.heard_nonce(endpoint, nonce);
            }
            if response.status().is_success() {
                return response.json().await.map_err(unreachable);
            }
            let status = response.status();
            let refusal = match response.json::<ErrorBody>().await {
                Ok(b) => ExchangeError::Refused {
                    error: b.error,
                    description: b.error_description,
                },
                Err(_) => ExchangeError::Refused {
                    error: status.to_string(),
                    description: String::new(),
                },
            };
            let wants_nonce = matches!(&refusal, ExchangeError::Refused { error, .. } if error == "use_dpop_nonce");
            if wants_nonce && key.is_some() && !retried {
                // The nonce it sent was kept above: once more, with it.
                retried = true;
                continue;
            }
            return Err(refusal);
        }
    }
}
