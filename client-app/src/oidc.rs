//! The relying party's side of the protocol, on the openidconnect crate: discovery, the
//! authorization URL (state, nonce, PKCE S256), and the callback (code exchange, ID token
//! verification, `at_hash`, userinfo), and the refreshes that renew the user's tokens: the
//! provider's own, and one addressed to the Notes API (RFC 8707 `resource`) when the app
//! calls it.

use crate::config::Config;
use crate::http::OidcHttp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use infra::Clock;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreIdToken, CoreIdTokenClaims, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Discovery metadata beyond the core set: RP-Initiated Logout 1.0 §2.1.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct LogoutMetadata {
    pub end_session_endpoint: Option<url::Url>,
}
impl AdditionalProviderMetadata for LogoutMetadata {}

type Metadata = ProviderMetadata<
    LogoutMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What the app keeps (server-side) between `/login` and `/callback`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub created_at: i64,
    /// A sign-in for the Settings page (at the level it needs): it returns there.
    #[serde(default)]
    pub for_settings: bool,
}

/// The result of a verified sign-in. Its `Debug` shows the subject only: never a token.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignedIn {
    pub sub: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The provider's SSO session (`sid` claim).
    pub provider_sid: Option<String>,
    /// The ID token's claims, for display.
    pub id_token_claims: serde_json::Value,
    pub id_token: String,
    pub access_token: String,
    pub access_token_expires_at: i64,
    /// Kept on the server, rotated at every refresh.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// When a token was last refreshed.
    #[serde(default)]
    pub refreshed_at: Option<i64>,
    /// A token addressed to the Notes API (obtained by a refresh naming it), kept on the
    /// server like the others.
    #[serde(default)]
    pub api_token: Option<String>,
    #[serde(default)]
    pub api_token_expires_at: i64,
    /// How long the API's tokens live, as the last one did (seconds).
    #[serde(default)]
    pub api_token_lifetime: i64,
    /// Why the provider will not give this grant a token for the API (it was not allowed
    /// at sign-in, or the API was registered anew since): not asked again until the next
    /// sign-in.
    #[serde(default)]
    pub api_refused: Option<String>,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("sub", &self.sub)
            .finish_non_exhaustive()
    }
}

/// Which of the user's access tokens a refresh renews.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renew {
    /// The provider's own (userinfo).
    Provider,
    /// The Notes API's: the refresh names it as `resource` (RFC 8707 §2.2).
    Api,
}

/// Why a refresh did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The provider refused the grant (`invalid_grant`): it was revoked or has ended.
    #[error("the provider ended this grant")]
    Rejected,
    /// The provider could not be reached or answered oddly: try again later.
    #[error("refresh failed: {0}")]
    Unavailable(String),
    /// The provider will not give this grant a token for the API (`invalid_target` or
    /// `invalid_scope`, RFC 8707 §2.2): asking again will not change that.
    #[error("the provider gives no token for the API to this grant: {0}")]
    NoApi(String),
    /// The provider rotated the refresh token, but its new ID token did not verify (even
    /// with the provider's keys fetched again): `rotated` is the user as before with only
    /// the new refresh token, to be kept since the old one is spent.
    #[error("the refreshed ID token is not valid: {why}")]
    Unverified { rotated: Box<SignedIn>, why: String },
}

/// Why a callback was refused. Shown to the person (in general terms) and logged.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("the provider did not return tokens: {0}")]
    Exchange(String),
    #[error("the provider returned no ID token")]
    NoIdToken,
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
    #[error("the ID token does not match the access token (at_hash)")]
    AtHash,
    #[error("the provider's userinfo could not be read: {0}")]
    UserInfo(String),
}

/// A discovered provider and this app's registration with it.
pub struct Oidc {
    /// Rebuilt (with the provider's current keys) when an ID token's key is unknown.
    client: std::sync::RwLock<Arc<Client>>,
    registration: Registration,
    http: OidcHttp,
    scopes: Vec<String>,
    /// The Notes API's resource indicator, when the app calls it.
    api: Option<String>,
    clock: Clock,
    /// When the provider's keys were last refetched (held across a refetch).
    refetched: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    /// How many times they have been: read without waiting for a refetch under way.
    key_generation: std::sync::atomic::AtomicU64,
    /// The provider's RP-Initiated Logout endpoint, if it has one.
    pub end_session_endpoint: Option<url::Url>,
    /// The provider's JWKS, for logout-token validation.
    pub jwks_uri: String,
}

/// What the app is registered as at the provider.
struct Registration {
    issuer: IssuerUrl,
    client_id: ClientId,
    secret: Option<ClientSecret>,
    redirect_uri: RedirectUrl,
}

/// Keys are refetched at most this often (a forged `kid` cannot make us hammer the provider).
const MIN_REFETCH: Duration = Duration::from_secs(10);

impl Registration {
    /// One discovery (with the provider's current JWKS) and the client built from it.
    async fn fetch(&self, http: &OidcHttp) -> anyhow::Result<(Client, Option<url::Url>, String)> {
        let metadata = Metadata::discover_async(self.issuer.clone(), http)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "discovery at {} failed: {}",
                    self.issuer.as_str(),
                    describe(&e)
                )
            })?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let jwks_uri = metadata.jwks_uri().url().to_string();
        let client = CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            self.secret.clone(),
        )
        .set_redirect_uri(self.redirect_uri.clone());
        Ok((client, end_session, jwks_uri))
    }
}

impl Oidc {
    /// Fetches the provider's discovery document, retrying (with backoff) until
    /// `discovery_timeout` while the provider is not up yet.
    pub async fn discover(config: &Config, http: OidcHttp, clock: Clock) -> anyhow::Result<Self> {
        let registration = Registration {
            issuer: IssuerUrl::new(config.issuer.as_str().trim_end_matches('/').to_owned())?,
            client_id: ClientId::new(config.client_id.clone()),
            secret: Some(ClientSecret::new(config.client_secret.0.clone()))
                .filter(|s| !s.secret().is_empty()),
            redirect_uri: RedirectUrl::new(config.redirect_uri())?,
        };
        let deadline = tokio::time::Instant::now() + config.discovery_timeout;
        let mut wait = Duration::from_millis(100);
        let (client, end_session_endpoint, jwks_uri) = loop {
            match registration.fetch(&http).await {
                Ok(found) => break found,
                Err(e) if tokio::time::Instant::now() + wait < deadline => {
                    tracing::info!(error = %e, "provider not reachable yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Self {
            client: std::sync::RwLock::new(Arc::new(client)),
            registration,
            http,
            scopes: config
                .scopes
                .iter()
                .cloned()
                .chain(config.notes.iter().flat_map(|n| n.scopes()))
                .collect(),
            api: config.notes.as_ref().map(|n| n.resource.clone()),
            clock,
            refetched: tokio::sync::Mutex::new(None),
            key_generation: std::sync::atomic::AtomicU64::new(0),
            end_session_endpoint,
            jwks_uri,
        })
    }

    fn client(&self) -> Arc<Client> {
        self.client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many times the keys have been refetched (read before a verification, so that a
    /// caller can tell whether a refetch happened since).
    fn key_generation(&self) -> u64 {
        self.key_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Makes sure the provider's metadata and keys were fetched after generation `seen`:
    /// true if they were (by this call, or by a concurrent caller's while this one waited
    /// for it: one fetch serves them all); false if a fetch is not allowed yet (at most one
    /// per [`MIN_REFETCH`]) or failed.
    async fn refetch_keys(&self, seen: u64) -> bool {
        let mut last = self.refetched.lock().await;
        if self.key_generation() > seen {
            return true;
        }
        if last.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
            return false;
        }
        *last = Some(tokio::time::Instant::now());
        match self.registration.fetch(&self.http).await {
            Ok((client, _, _)) => {
                *self
                    .client
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(client);
                self.key_generation
                    .fetch_add(1, std::sync::atomic::Ordering::Release);
                tracing::info!("refetched the provider's keys");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not refetch the provider's keys");
                false
            }
        }
    }

    /// Verifies an ID token with the provider's keys (its time checks on the injected clock).
    /// When its signature does not verify with the keys we hold, the provider may have
    /// rotated: its keys are refetched (rate limited) and the token checked once more, so a
    /// rotation never signs anybody out.
    async fn verified_claims<'t, N: openidconnect::NonceVerifier + Copy>(
        &self,
        id_token: &'t CoreIdToken,
        nonce: N,
    ) -> Result<(&'t CoreIdTokenClaims, Arc<Client>), openidconnect::ClaimsVerificationError> {
        let seen = self.key_generation();
        let client = self.client();
        let first = id_token.claims(&self.verifier(&client), nonce);
        match first {
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_))
                if self.refetch_keys(seen).await =>
            {
                let client = self.client();
                let claims = id_token.claims(&self.verifier(&client), nonce)?;
                Ok((claims, client))
            }
            Ok(claims) => Ok((claims, client)),
            Err(e) => Err(e),
        }
    }

    fn verifier<'c>(
        &self,
        client: &'c Client,
    ) -> openidconnect::IdTokenVerifier<'c, CoreJsonWebKey> {
        let clock = self.clock.clone();
        // Whichever of the provider's asymmetric algorithms the app was registered with
        // (`id_token_signed_response_alg`): the key is the provider's, found by `kid` in its
        // JWKS and of the algorithm's own type; never a symmetric one, never `none`.
        let algs = vec![
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EdDsa,
        ];
        client
            .id_token_verifier()
            .set_allowed_algs(algs)
            .set_time_fn(move || {
                chrono::DateTime::from_timestamp(clock.unix(), 0).unwrap_or_default()
            })
    }

    /// The authorization URL with fresh state, nonce and PKCE S256, and what to keep of them;
    /// `acr`: the level of sign-in to ask for (OIDC Core §3.1.2.1 `acr_values`), for the
    /// Settings page.
    pub fn start_login(&self, acr: Option<&str>) -> (url::Url, PendingLogin) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        // RFC 8707 §2.1: the API the grant is for, so that a refresh can name it later.
        if let Some(api) = &self.api {
            request = request.add_extra_param("resource", api.clone());
        }
        if let Some(acr) = acr {
            request = request.add_extra_param("acr_values", acr.to_owned());
        }
        let (url, state, nonce) = request.url();
        let pending = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            created_at: self.clock.unix(),
            for_settings: acr.is_some(),
        };
        (url, pending)
    }

    /// Exchanges the code and verifies everything: the ID token's signature (against the
    /// provider's JWKS), issuer, audience, expiry (on the injected clock), nonce and `at_hash`;
    /// then reads userinfo for the same subject.
    pub async fn finish_login(
        &self,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<SignedIn, CallbackError> {
        let token = self
            .client()
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| CallbackError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| CallbackError::Exchange(describe(&e)))?;
        let id_token = token.id_token().ok_or(CallbackError::NoIdToken)?;
        let nonce = Nonce::new(pending.nonce.clone());
        let (claims, client) = self
            .verified_claims(id_token, &nonce)
            .await
            .map_err(|e| CallbackError::IdToken(e.to_string()))?;
        let verifier = self.verifier(&client);
        // OIDC Core §3.1.3.8: if at_hash is present it must match the access token.
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| CallbackError::IdToken(e.to_string()))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| CallbackError::IdToken(e.to_string()))?;
            let actual = AccessTokenHash::from_token(token.access_token(), alg, key)
                .map_err(|_| CallbackError::AtHash)?;
            if actual != *expected {
                return Err(CallbackError::AtHash);
            }
        }
        let jwt = id_token.to_string();
        // openidconnect has verified this token above; its payload is now trusted. The crate's
        // claim types have no `sid`, so it is read from the payload directly.
        let payload = verified_payload(&jwt);
        let userinfo: CoreUserInfoClaims = client
            .user_info(token.access_token().clone(), Some(claims.subject().clone()))
            .map_err(|e| CallbackError::UserInfo(e.to_string()))?
            .request_async(&self.http)
            .await
            .map_err(|e| CallbackError::UserInfo(describe(&e)))?;
        let expires_in = token.expires_in().map_or(0, infra::secs);
        Ok(SignedIn {
            sub: claims.subject().as_str().to_owned(),
            name: userinfo
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            email: userinfo.email().map(|e| e.as_str().to_owned()),
            provider_sid: payload
                .get("sid")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            id_token_claims: payload,
            id_token: jwt,
            access_token: token.access_token().secret().clone(),
            access_token_expires_at: self.clock.unix() + expires_in,
            refresh_token: token.refresh_token().map(|t| t.secret().clone()),
            refreshed_at: None,
            api_token: None,
            api_token_expires_at: 0,
            api_token_lifetime: 0,
            api_refused: None,
        })
    }

    /// Refreshes `user`'s access token of kind `renew` (RFC 6749 §6), keeping the rotated
    /// refresh token. A returned ID token is verified like the first one and must name the
    /// same user (OIDC Core §12.2).
    pub async fn refresh(&self, user: &SignedIn, renew: Renew) -> Result<SignedIn, RefreshError> {
        let rt = openidconnect::RefreshToken::new(
            user.refresh_token.clone().ok_or(RefreshError::Rejected)?,
        );
        let client = self.client();
        let mut request = client
            .exchange_refresh_token(&rt)
            .map_err(|e| RefreshError::Unavailable(e.to_string()))?;
        if renew == Renew::Api {
            let api = self.api.clone().ok_or_else(|| {
                RefreshError::NoApi("this app is not configured to call an API".into())
            })?;
            request = request.add_extra_param("resource", api);
        }
        let token = request
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r)
                    if *r.error() == openidconnect::core::CoreErrorResponseType::InvalidGrant =>
                {
                    RefreshError::Rejected
                }
                openidconnect::RequestTokenError::ServerResponse(r)
                    if renew == Renew::Api
                        && matches!(r.error().as_ref(), "invalid_target" | "invalid_scope") =>
                {
                    RefreshError::NoApi(r.error().as_ref().to_owned())
                }
                other => RefreshError::Unavailable(describe(&other)),
            })?;
        let mut next = user.clone();
        // Whatever happens to the ID token, the old refresh token is spent now.
        let mut rotated = user.clone();
        if let Some(r) = token.refresh_token() {
            rotated.refresh_token = Some(r.secret().clone());
        }
        let unverified = |why: String| RefreshError::Unverified {
            rotated: Box::new(rotated.clone()),
            why,
        };
        if let Some(id_token) = token.id_token() {
            let no_nonce = |_: Option<&Nonce>| Ok(());
            let (claims, _) = self
                .verified_claims(id_token, no_nonce)
                .await
                .map_err(|e| unverified(e.to_string()))?;
            if claims.subject().as_str() != user.sub {
                // OIDC Core §12.2: the same `sub`, or the session is not this user's any more.
                return Err(RefreshError::Rejected);
            }
            next.id_token = id_token.to_string();
        }
        let now = self.clock.unix();
        let expires_in = token.expires_in().map_or(0, infra::secs);
        let access_token = token.access_token().secret().clone();
        match renew {
            Renew::Provider => {
                next.access_token = access_token;
                next.access_token_expires_at = now + expires_in;
            }
            Renew::Api => {
                next.api_token = Some(access_token);
                next.api_token_expires_at = now + expires_in;
                next.api_token_lifetime = expires_in;
            }
        }
        if let Some(rotated) = token.refresh_token() {
            next.refresh_token = Some(rotated.secret().clone());
        }
        next.refreshed_at = Some(now);
        Ok(next)
    }
}

/// The JSON payload of a compact JWS (already verified by the caller).
fn verified_payload(jwt: &str) -> serde_json::Value {
    jwt.split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// An error and its sources, on one line.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
