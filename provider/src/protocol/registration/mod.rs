//! Registering client apps, three ways with one set of rules: `provider clients …` on the
//! command line, the developer console, and Dynamic Client Registration (RFC 7591) with its
//! management API (RFC 7592, [`endpoint`]). All three validate with
//! [`ClientMetadata::validate`] and write through the operations here, which are the only way
//! to make a `store::NewClient`: a client made one way can be read and changed another way,
//! and nothing stored has skipped the rules (the demo's seed and the tests register the same
//! way).
//!
//! Secrets (client secrets, registration access tokens, initial access tokens) are 256-bit
//! random values shown once and stored as their SHA-256, compared in constant time: a hash this
//! fast is enough for values with this much entropy (no password hash needed).

pub mod endpoint;
pub mod metadata;

pub(crate) use metadata::check_uri;
pub use metadata::{ClientMetadata, MetadataError, ValidMetadata};

use crate::audit::{self, Event, Kind};
use crate::context::SystemError;
use crate::store::{Client, NewClient, Store};
use crate::types::{Alg, AuthMethod, GrantType, ResponseType};
use infra::secret::{hash_secret, random_token};

/// What went wrong in a registration operation.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the client id {0} is taken")]
    Taken(String),
    #[error("no client {0}")]
    NoSuchClient(String),
    #[error("the client {0} has no secret to rotate (token_endpoint_auth_method {1})")]
    NoSecret(String, AuthMethod),
    #[error("you already have {0} apps, the most one developer may register; delete one first")]
    TooMany(usize),
    #[error(transparent)]
    Invalid(#[from] MetadataError),
    #[error(transparent)]
    System(#[from] SystemError),
}

impl From<sqlx::Error> for RegisterError {
    fn from(e: sqlx::Error) -> Self {
        Self::System(e.into())
    }
}

impl From<infra::secret::RandomError> for RegisterError {
    fn from(e: infra::secret::RandomError) -> Self {
        Self::System(e.into())
    }
}

/// Who registers, and what only an operator may choose.
#[derive(Clone, Debug, Default)]
pub struct Registrant {
    /// A chosen client id (the command line, the demo); random when `None`.
    pub client_id: Option<String>,
    /// A chosen client secret (the demo's well-known ones, the tests); random when `None`.
    /// Only for a client whose method uses a secret.
    pub client_secret: Option<String>,
    /// Skips the consent screen: only an operator (the command line) may say so.
    pub first_party: bool,
    /// The console user who owns the app.
    pub owner_id: Option<String>,
    /// With `owner_id`: the most apps that owner may hold (`registration.apps_per_developer`);
    /// one more is refused.
    pub app_limit: Option<usize>,
    /// Issue an RFC 7592 registration access token (the registration endpoint does).
    pub registration_token: bool,
}

/// A registered client and the secrets that are shown this once.
#[derive(Clone, Debug)]
pub struct Registered {
    pub client: Client,
    pub client_secret: Option<String>,
    pub registration_access_token: Option<String>,
}

/// The longest client id the command line may choose.
const MAX_CLIENT_ID_LEN: usize = 64;

/// A chosen client id: letters, digits, `-`, `_` and `.` only.
fn check_client_id(id: &str) -> Result<(), MetadataError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(MetadataError::metadata(
            "client_id",
            format!("client_id must be 1 to {MAX_CLIENT_ID_LEN} letters, digits, '-', '_' or '.'"),
        ))
    }
}

/// The one constructor of a [`NewClient`]: validated metadata, and what the registrant may
/// choose besides.
fn new_client(
    client_id: String,
    m: ValidMetadata,
    secret_hash: Option<String>,
    who: &Registrant,
    registration_token_hash: Option<String>,
) -> NewClient {
    NewClient {
        client_id,
        secret_hash,
        name: m.name,
        redirect_uris: m.redirect_uris,
        post_logout_redirect_uris: m.post_logout_redirect_uris,
        backchannel_logout_uri: m.backchannel_logout_uri,
        backchannel_logout_session_required: m.backchannel_logout_session_required,
        frontchannel_logout_uri: m.frontchannel_logout_uri,
        frontchannel_logout_session_required: m.frontchannel_logout_session_required,
        require_par: m.require_par,
        dpop_bound: m.dpop_bound,
        grant_types: m.grant_types,
        auth_method: m.auth_method,
        id_token_alg: m.id_token_alg,
        first_party: who.first_party,
        jwks: m.jwks,
        owner_id: who.owner_id.clone(),
        registration_token_hash,
        default_acr_values: m.default_acr_values,
    }
}

/// The client id and the secrets a new registration gets, and the client to write.
fn prepare(
    metadata: ValidMetadata,
    who: &Registrant,
) -> Result<(NewClient, Option<String>, Option<String>), RegisterError> {
    let client_id = match &who.client_id {
        Some(id) => {
            check_client_id(id)?;
            id.clone()
        }
        None => uuid::Uuid::new_v4().simple().to_string(),
    };
    let client_secret = match (metadata.auth_method.uses_secret(), &who.client_secret) {
        (true, Some(chosen)) => Some(chosen.clone()),
        (true, None) => Some(random_token()?),
        (false, _) => None,
    };
    let registration_access_token = if who.registration_token {
        Some(random_token()?)
    } else {
        None
    };
    let new = new_client(
        client_id,
        metadata,
        client_secret.as_deref().map(hash_secret),
        who,
        registration_access_token.as_deref().map(hash_secret),
    );
    Ok((new, client_secret, registration_access_token))
}

/// Registers a client with validated metadata; refused if its id is taken.
/// The provider keeps a key for `alg` (`keys.algorithms`): an app may not register an ID
/// token algorithm that nothing would sign with.
async fn signable(store: &Store, alg: Alg) -> Result<(), RegisterError> {
    if store.signing_keys().await?.iter().any(|k| k.alg == alg) {
        return Ok(());
    }
    Err(MetadataError::metadata(
        "id_token_signed_response_alg",
        format!(
            "id_token_signed_response_alg {} is not enabled on this provider (keys.algorithms)",
            alg.as_str()
        ),
    )
    .into())
}

pub async fn register(
    store: &Store,
    metadata: ValidMetadata,
    who: &Registrant,
    now: i64,
) -> Result<Registered, RegisterError> {
    signable(store, metadata.id_token_alg).await?;
    let (new, client_secret, registration_access_token) = prepare(metadata, who)?;
    let inserted = match (&who.owner_id, who.app_limit) {
        (Some(_), Some(limit)) => store
            .insert_owned_client(&new, now, limit)
            .await?
            .ok_or(RegisterError::TooMany(limit))?,
        _ => store.insert_client(&new, now).await?,
    };
    if !inserted {
        return Err(RegisterError::Taken(new.client_id));
    }
    let client = stored(store, &new.client_id).await?;
    record(store, now, Kind::ClientRegistered, &client).await;
    Ok(Registered {
        client,
        client_secret,
        registration_access_token,
    })
}

/// Registers a client, or brings the one with the same (chosen) id up to date, keeping its
/// creation time: for a seed that runs at every start (the demo).
pub async fn register_or_replace(
    store: &Store,
    metadata: ValidMetadata,
    who: &Registrant,
    now: i64,
) -> Result<Registered, RegisterError> {
    signable(store, metadata.id_token_alg).await?;
    let (new, client_secret, registration_access_token) = prepare(metadata, who)?;
    let existed = store.client(&new.client_id).await?.is_some();
    store.upsert_client(&new, now).await?;
    let client = stored(store, &new.client_id).await?;
    let kind = if existed {
        Kind::ClientUpdated
    } else {
        Kind::ClientRegistered
    };
    record(store, now, kind, &client).await;
    Ok(Registered {
        client,
        client_secret,
        registration_access_token,
    })
}

async fn stored(store: &Store, client_id: &str) -> Result<Client, RegisterError> {
    store
        .client(client_id)
        .await?
        .ok_or_else(|| RegisterError::NoSuchClient(client_id.to_owned()))
}

/// Records a change to `client` in the audit trail, with its owner and how it signs in.
async fn record(store: &Store, now: i64, kind: Kind, client: &Client) {
    let detail = format!(
        "\"{}\", {}, redirect URIs {}",
        client.name,
        client.auth_method,
        client.redirect_uris.join(" ")
    );
    let event = Event::new(kind)
        .client(&client.client_id)
        .user_opt(client.owner_id.as_deref())
        .detail(detail);
    audit::record_secs(store, now, event).await;
}

/// The client `client_id` if `owner_id` registered it (in the developer console): a console
/// user manages their own apps only, and another's app is as unknown as a missing one.
pub async fn owned_by(
    store: &Store,
    owner_id: &str,
    client_id: &str,
) -> Result<Option<Client>, sqlx::Error> {
    let client = store.client(client_id).await?;
    Ok(client.filter(|c| c.owner_id.as_deref() == Some(owner_id)))
}

/// Deletes a client with everything issued to it. False if there was no such client.
pub async fn remove(store: &Store, client: &Client, now: i64) -> Result<bool, sqlx::Error> {
    let removed = store.delete_client(&client.client_id, now).await?;
    if removed {
        record(store, now, Kind::ClientDeleted, client).await;
    }
    Ok(removed)
}

/// Replaces a client's metadata (RFC 7592 §2.2 semantics: the whole set). Its id, owner,
/// first-party flag and registration token stay. Moving to a secret-based method issues a
/// secret (returned); moving away from one drops it.
pub async fn update(
    store: &Store,
    existing: Client,
    metadata: ValidMetadata,
    first_party: Option<bool>,
    now: i64,
) -> Result<Registered, RegisterError> {
    signable(store, metadata.id_token_alg).await?;
    let had_secret = existing.auth_method.uses_secret() && existing.secret_hash.is_some();
    let (secret_hash, client_secret) = match (metadata.auth_method.uses_secret(), had_secret) {
        (true, true) => (existing.secret_hash.clone(), None),
        (true, false) => {
            let s = random_token()?;
            (Some(hash_secret(&s)), Some(s))
        }
        (false, _) => (None, None),
    };
    let who = Registrant {
        first_party: first_party.unwrap_or(existing.first_party),
        owner_id: existing.owner_id.clone(),
        ..Registrant::default()
    };
    let new = new_client(
        existing.client_id.clone(),
        metadata,
        secret_hash,
        &who,
        existing.registration_token_hash.clone(),
    );
    store.upsert_client(&new, existing.created_at).await?;
    let client = stored(store, &existing.client_id).await?;
    record(store, now, Kind::ClientUpdated, &client).await;
    Ok(Registered {
        client,
        client_secret,
        registration_access_token: None,
    })
}

/// Gives a client a new secret; the old one stops working at once. Returns the new secret.
pub async fn rotate_secret(
    store: &Store,
    client: &Client,
    now: i64,
) -> Result<String, RegisterError> {
    if !client.auth_method.uses_secret() {
        return Err(RegisterError::NoSecret(
            client.client_id.clone(),
            client.auth_method,
        ));
    }
    let secret = random_token()?;
    if !store
        .set_client_secret_hash(&client.client_id, Some(&hash_secret(&secret)))
        .await?
    {
        return Err(RegisterError::NoSuchClient(client.client_id.clone()));
    }
    record(store, now, Kind::ClientSecretRotated, client).await;
    Ok(secret)
}

/// Creates an initial access token for the registration endpoint, valid for `ttl_secs` and
/// for one registration.
pub async fn issue_initial_access_token(
    store: &Store,
    now: i64,
    ttl_secs: i64,
) -> Result<(String, i64), RegisterError> {
    let token = random_token()?;
    let expires_at = now + ttl_secs;
    store
        .insert_initial_access_token(&hash_secret(&token), now, expires_at)
        .await?;
    Ok((token, expires_at))
}

/// The metadata of a registered client, as RFC 7591 §3.2.1 and RFC 7592 §3 show it (without
/// any secret: those are shown once, by the caller that has them).
pub fn describe(client: &Client) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        m.insert(k.to_owned(), v);
    };
    put("client_id", client.client_id.clone().into());
    put("client_id_issued_at", client.created_at.into());
    put("client_name", client.name.clone().into());
    put("redirect_uris", client.redirect_uris.clone().into());
    put(
        "post_logout_redirect_uris",
        client.post_logout_redirect_uris.clone().into(),
    );
    if let Some(uri) = &client.backchannel_logout_uri {
        put("backchannel_logout_uri", uri.clone().into());
        put(
            "backchannel_logout_session_required",
            client.backchannel_logout_session_required.into(),
        );
    }
    if let Some(uri) = &client.frontchannel_logout_uri {
        put("frontchannel_logout_uri", uri.clone().into());
        put(
            "frontchannel_logout_session_required",
            client.frontchannel_logout_session_required.into(),
        );
    }
    put(
        "require_pushed_authorization_requests",
        client.require_par.into(),
    );
    put("dpop_bound_access_tokens", client.dpop_bound.into());
    let grants: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
    put("grant_types", grants.into());
    // RFC 7591 §2.1: the code response type goes with the authorization_code grant.
    let response_types: Vec<&str> = if client.allows_grant(GrantType::AuthorizationCode) {
        vec![ResponseType::Code.as_str()]
    } else {
        vec![]
    };
    put("response_types", response_types.into());
    put(
        "token_endpoint_auth_method",
        client.auth_method.as_str().into(),
    );
    put(
        "id_token_signed_response_alg",
        client.id_token_alg.as_str().into(),
    );
    if let Some(jwks) = client
        .jwks
        .as_deref()
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
    {
        put("jwks", jwks);
    }
    if !client.default_acr_values.is_empty() {
        let levels: Vec<&str> = client
            .default_acr_values
            .iter()
            .map(|l| l.as_str())
            .collect();
        put("default_acr_values", levels.into());
    }
    if client.auth_method.uses_secret() {
        // RFC 7591 §3.2.1: 0 means the secret does not expire.
        put("client_secret_expires_at", 0.into());
    }
    m
}

/// The metadata a client has now, in the shape a registration request takes (the console's
/// edit form and `clients update` start from it).
pub fn metadata_of(client: &Client) -> ClientMetadata {
    ClientMetadata {
        redirect_uris: client.redirect_uris.clone(),
        client_name: Some(client.name.clone()),
        token_endpoint_auth_method: Some(client.auth_method.as_str().to_owned()),
        grant_types: Some(
            client
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
        ),
        response_types: None,
        post_logout_redirect_uris: Some(client.post_logout_redirect_uris.clone()),
        backchannel_logout_uri: client.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: Some(client.backchannel_logout_session_required),
        frontchannel_logout_uri: client.frontchannel_logout_uri.clone(),
        frontchannel_logout_session_required: Some(client.frontchannel_logout_session_required),
        require_pushed_authorization_requests: Some(client.require_par),
        dpop_bound_access_tokens: Some(client.dpop_bound),
        id_token_signed_response_alg: Some(client.id_token_alg.as_str().to_owned()),
        jwks: client
            .jwks
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok()),
        jwks_uri: None,
        default_acr_values: (!client.default_acr_values.is_empty()).then(|| {
            client
                .default_acr_values
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect()
        }),
    }
}
