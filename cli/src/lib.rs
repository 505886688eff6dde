//! `gatehouse-cli login`: a command-line client signing a person in through the device
//! authorization grant (RFC 8628), built on the `oauth2` crate's device-flow client. It reads
//! the provider's discovery document (OIDC Discovery 1.0 §4), asks for a device code, shows
//! the person where to go and which code to type, polls until they answer (the crate follows
//! `authorization_pending` and `slow_down`, RFC 8628 §3.5), then asks userinfo (OIDC Core
//! §5.3) who signed in. The tokens stay in memory: nothing is printed or stored but the claims.

use anyhow::{Context, anyhow, bail};
use infra::http::OAuthHttp;
use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, DeviceAuthorizationUrl, RequestTokenError, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};
use serde::Deserialize;
use std::time::Duration;
use url::Url;

/// What to sign in to, and as which app.
#[derive(Clone, Debug)]
pub struct Login {
    pub issuer: Url,
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// What the person is asked to do (RFC 8628 §3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub verification_uri: String,
    /// The same page with the code filled in, for a link or a QR code (§3.3.1).
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
    pub expires_in: Duration,
}

/// The provider's metadata this client reads.
#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    token_endpoint: String,
    device_authorization_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
}

/// Signs a person in: `show` is called once with what to tell them; then this waits for their
/// answer, and returns the userinfo claims (or the provider's refusal, as an error).
pub async fn login(
    http: &reqwest::Client,
    login: &Login,
    show: impl FnOnce(&Prompt),
) -> anyhow::Result<serde_json::Value> {
    let meta = discover(http, &login.issuer).await?;
    let device_url = meta
        .device_authorization_endpoint
        .context("the provider offers no device authorization endpoint")?;
    let client = BasicClient::new(ClientId::new(login.client_id.clone()))
        .set_token_uri(TokenUrl::new(meta.token_endpoint)?)
        .set_device_authorization_url(DeviceAuthorizationUrl::new(device_url)?);
    let oauth_http = OAuthHttp(http.clone());
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(login.scopes.iter().cloned().map(Scope::new))
        .request_async(&oauth_http)
        .await
        .map_err(|e| refused("the device authorization request", e))?;
    show(&Prompt {
        verification_uri: details.verification_uri().to_string(),
        verification_uri_complete: details
            .verification_uri_complete()
            .map(|u| u.secret().clone()),
        user_code: details.user_code().secret().clone(),
        expires_in: details.expires_in(),
    });
    let token = client
        .exchange_device_access_token(&details)
        .request_async(&oauth_http, tokio::time::sleep, None)
        .await
        .map_err(|e| refused("the sign-in", e))?;
    let userinfo = meta
        .userinfo_endpoint
        .context("the provider has no userinfo endpoint")?;
    let response = http
        .get(userinfo)
        .bearer_auth(token.access_token().secret())
        .send()
        .await
        .context("userinfo could not be reached")?;
    if !response.status().is_success() {
        bail!("userinfo answered {}", response.status());
    }
    response
        .json()
        .await
        .context("userinfo's answer is not JSON")
}

/// The provider's metadata, whose `issuer` must be the one asked (OIDC Discovery 1.0 §4.3).
async fn discover(http: &reqwest::Client, issuer: &Url) -> anyhow::Result<Metadata> {
    let base = issuer.as_str().trim_end_matches('/');
    let url = format!("{base}/.well-known/openid-configuration");
    let response = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("{url} could not be reached"))?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    let meta: Metadata = response
        .json()
        .await
        .context("the discovery document is not valid")?;
    if meta.issuer.trim_end_matches('/') != base {
        bail!(
            "the discovery document names another issuer: {}",
            meta.issuer
        );
    }
    Ok(meta)
}

/// The provider's refusal in words (its `error` and `error_description`), or what failed.
fn refused<RE: std::error::Error + 'static, T: oauth2::ErrorResponse + 'static>(
    what: &str,
    e: RequestTokenError<RE, T>,
) -> anyhow::Error {
    match e {
        RequestTokenError::ServerResponse(answer) => anyhow!("{what} was refused: {answer}"),
        other => anyhow!("{what} failed: {other}"),
    }
}
