//! The registration endpoint (RFC 7591 §3) and the client configuration endpoint (RFC 7592
//! §2): `POST /register` with an initial access token (unless registration is open), then
//! `GET`/`PUT`/`DELETE /register/{client_id}` with the registration access token it returned.

use super::{ClientMetadata, MetadataError, RegisterError, Registered, Registrant, paths};
use crate::app::{ClientMeta, SharedState};
use crate::oidc::BearerError;
use crate::oidc::userinfo::header_token;
use crate::store::Client;
use crate::web::no_store;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use infra::secret::{ct_eq, hash_secret};
use serde_json::{Map, Value};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route(paths::REGISTRATION, post(register_client))
        .route(
            &format!("{}/{{client_id}}", paths::REGISTRATION),
            axum::routing::get(read_client)
                .put(update_client)
                .delete(delete_client),
        )
}

/// An answer of the registration endpoints that is not a success.
#[derive(Debug)]
enum Refusal {
    /// RFC 7591 §3.2.2: `invalid_redirect_uri` or `invalid_client_metadata`.
    Metadata(MetadataError),
    /// A body that is not client metadata at all, or a PUT that breaks RFC 7592 §2.2.
    InvalidRequest(String),
    /// The bearer token (initial or registration access token) is missing or no good.
    Token(BearerError),
    /// Too many registration requests from this address: 429 after so many seconds.
    RateLimited(u64),
}

/// Every registration request counts against its address's budget, before anything else.
fn rate(st: &SharedState, meta: &ClientMeta) -> Result<(), Refusal> {
    let limits = &st.config.limits;
    st.rate_by_address("addr", meta, limits.rate_per_address)
        .and_then(|()| st.rate_by_address("register", meta, limits.registration_rate_per_address))
        .map_err(Refusal::RateLimited)
}

impl From<BearerError> for Refusal {
    fn from(e: BearerError) -> Self {
        Self::Token(e)
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        Self::Token(e.into())
    }
}

impl From<RegisterError> for Refusal {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Invalid(m) => Self::Metadata(m),
            RegisterError::Store(e) => e.into(),
            // A random client id never collides in practice; a vanished client is gone.
            RegisterError::Taken(_) | RegisterError::NoSuchClient(_) => {
                Self::Token(BearerError::InvalidToken("the client does not exist"))
            }
            RegisterError::NoSecret(..) => Self::InvalidRequest(e.to_string()),
            RegisterError::Other(e) => Self::Token(BearerError::Internal(e)),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (error, description) = match self {
            Self::Token(e) => return e.into_response(),
            Self::RateLimited(wait) => return crate::web::rate_limited_json(wait),
            Self::Metadata(m) => (m.code.as_str(), m.description),
            Self::InvalidRequest(d) => ("invalid_request", d),
        };
        (
            StatusCode::BAD_REQUEST,
            no_store(),
            Json(serde_json::json!({"error": error, "error_description": description})),
        )
            .into_response()
    }
}

/// The body as a JSON object (RFC 7591 §3.1: `application/json`).
fn json_object(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(Refusal::InvalidRequest(
            "the request body must be client metadata as application/json".into(),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        // A NUL character fits in JSON but in no database text column (PostgreSQL refuses
        // it): refused here, as in forms (`web::Params`).
        Ok(Value::Object(map)) if map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) => Err(
            Refusal::InvalidRequest("the request body contains a NUL character".into()),
        ),
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Refusal::InvalidRequest(
            "the request body must be a JSON object".into(),
        )),
        Err(e) => Err(Refusal::InvalidRequest(format!(
            "the request body is not valid JSON ({e})"
        ))),
    }
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Client metadata from a JSON object; a field of the wrong type is `invalid_client_metadata`.
fn metadata(map: Map<String, Value>) -> Result<ClientMetadata, Refusal> {
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        Refusal::Metadata(MetadataError {
            code: super::ErrorCode::InvalidClientMetadata,
            field: "metadata",
            description: format!("the client metadata is malformed: {e}"),
        })
    })
}

/// The success body: the metadata, the RFC 7592 management coordinates, and the secrets this
/// response hands over.
fn answer(
    st: &SharedState,
    status: StatusCode,
    client: &Client,
    client_secret: Option<&str>,
    registration_access_token: &str,
) -> Response {
    let mut body = super::describe(client);
    if let Some(secret) = client_secret {
        body.insert("client_secret".into(), secret.into());
    }
    body.insert(
        "registration_access_token".into(),
        registration_access_token.into(),
    );
    body.insert(
        "registration_client_uri".into(),
        format!("{}{}/{}", st.issuer, paths::REGISTRATION, client.client_id).into(),
    );
    (status, no_store(), Json(Value::Object(body))).into_response()
}

/// `POST /register` (RFC 7591 §3.1).
async fn register_client(
    State(st): State<SharedState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    rate(&st, &meta)?;
    let (st, headers, body) = (&st, &headers, &body[..]);
    let now = st.clock.unix();
    // RFC 7591 §3: an initial access token, unless registration is open. It is checked
    // first, spent only when the registration succeeds, so a refused form can be corrected.
    let initial = if st.config.registration.open {
        None
    } else {
        let token = header_token(headers)?.ok_or(BearerError::Missing)?;
        let hash = hash_secret(&token);
        if !st.store.initial_access_token_usable(&hash, now).await? {
            return Err(BearerError::InvalidToken(
                "the initial access token is unknown, expired or already used",
            )
            .into());
        }
        Some(hash)
    };
    let valid = metadata(json_object(headers, body)?)?
        .validate()
        .map_err(Refusal::Metadata)?;
    if let Some(hash) = initial
        && !st.store.use_initial_access_token(&hash, now).await?
    {
        return Err(BearerError::InvalidToken(
            "the initial access token is unknown, expired or already used",
        )
        .into());
    }
    let who = Registrant {
        registration_token: true,
        ..Registrant::default()
    };
    let Registered {
        client,
        client_secret,
        registration_access_token,
    } = super::register(&st.store, valid, &who, now).await?;
    tracing::info!(client_id = %client.client_id, "client registered at the registration endpoint");
    let token = registration_access_token.unwrap_or_default();
    Ok(answer(
        st,
        StatusCode::CREATED,
        &client,
        client_secret.as_deref(),
        &token,
    ))
}

/// The client a registration access token manages (RFC 7592 §2). An unknown client and a
/// wrong token get the same 401, so the endpoint does not tell which clients exist.
async fn managed(
    st: &SharedState,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<(Client, String), Refusal> {
    let token = header_token(headers)?.ok_or(BearerError::Missing)?;
    let presented = hash_secret(&token);
    let client = st.store.client(client_id).await?;
    let ok = client
        .as_ref()
        .and_then(|c| c.registration_token_hash.as_deref())
        .is_some_and(|stored| ct_eq(&presented, stored));
    match client {
        Some(c) if ok => Ok((c, token)),
        _ => Err(BearerError::InvalidToken("the registration access token is not valid").into()),
    }
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
async fn read_client(
    State(st): State<SharedState>,
    meta: ClientMeta,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    rate(&st, &meta)?;
    let (client, token) = managed(&st, &headers, &client_id).await?;
    Ok(answer(&st, StatusCode::OK, &client, None, &token))
}

/// Fields a client may not send in an update (RFC 7592 §2.2).
const SERVER_FIELDS: [&str; 4] = [
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// `PUT /register/{client_id}` (RFC 7592 §2.2): the request replaces every field.
async fn update_client(
    State(st): State<SharedState>,
    meta: ClientMeta,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    rate(&st, &meta)?;
    let (client, token) = managed(&st, &headers, &client_id).await?;
    let mut map = json_object(&headers, &body)?;
    if map.get("client_id").and_then(Value::as_str) != Some(client.client_id.as_str()) {
        return Err(Refusal::InvalidRequest(
            "the body must carry this client's client_id (RFC 7592 §2.2)".into(),
        ));
    }
    if let Some(field) = SERVER_FIELDS.iter().find(|f| map.contains_key(**f)) {
        return Err(Refusal::InvalidRequest(format!(
            "{field} is set by the server and may not be sent (RFC 7592 §2.2)"
        )));
    }
    // RFC 7592 §2.2: a client_secret in the body must be the current one.
    let presented_secret = match map.remove("client_secret") {
        None => None,
        Some(Value::String(s)) => {
            let matches = client
                .secret_hash
                .as_deref()
                .is_some_and(|h| ct_eq(&hash_secret(&s), h));
            if !matches {
                return Err(Refusal::InvalidRequest(
                    "client_secret does not match the client's current secret".into(),
                ));
            }
            Some(s)
        }
        Some(_) => {
            return Err(Refusal::InvalidRequest(
                "client_secret must be a string".into(),
            ));
        }
    };
    map.remove("client_id");
    let valid = metadata(map)?.validate().map_err(Refusal::Metadata)?;
    let updated = super::update(&st.store, client, valid, None, st.clock.unix()).await?;
    let secret = updated
        .client_secret
        .or_else(|| presented_secret.filter(|_| updated.client.auth_method.uses_secret()));
    tracing::info!(client_id = %updated.client.client_id, "client updated at the registration endpoint");
    Ok(answer(
        &st,
        StatusCode::OK,
        &updated.client,
        secret.as_deref(),
        &token,
    ))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client and everything issued to it are
/// gone at once; 204.
async fn delete_client(
    State(st): State<SharedState>,
    meta: ClientMeta,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    rate(&st, &meta)?;
    let (client, _) = managed(&st, &headers, &client_id).await?;
    super::remove(&st.store, &client, st.clock.unix()).await?;
    tracing::info!(client_id = %client.client_id, "client deleted at the registration endpoint");
    Ok((StatusCode::NO_CONTENT, no_store()).into_response())
}
