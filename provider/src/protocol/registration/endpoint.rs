//! The rules of the registration endpoint (RFC 7591 §3) and the client configuration endpoint
//! (RFC 7592 §2): `POST /register` with an initial access token (unless registration is
//! open), then read, update and delete with the registration access token it returned.

use super::{ClientMetadata, MetadataError, RegisterError, Registered, Registrant};
use crate::context::Ctx;
use crate::paths;
use crate::protocol::error::{BearerError, RegistrationError};
use crate::store::Client;
use infra::secret::{ct_eq, hash_secret};
use serde_json::{Map, Value};

/// A registration as the endpoints answer it: the metadata, the RFC 7592 management
/// coordinates, and the secrets this answer hands over.
#[derive(Debug)]
pub struct Registration(pub Map<String, Value>);

fn answer(
    ctx: &Ctx,
    client: &Client,
    client_secret: Option<&str>,
    registration_access_token: &str,
) -> Registration {
    let mut body = super::describe(client);
    if let Some(secret) = client_secret {
        body.insert("client_secret".into(), secret.into());
    }
    body.insert(
        "registration_access_token".into(),
        registration_access_token.into(),
    );
    let uri = ctx.url(&paths::for_client(
        paths::REGISTRATION_CLIENT,
        &client.client_id,
    ));
    body.insert("registration_client_uri".into(), uri.into());
    Registration(body)
}

/// A request body as it came: declared `application/json` (RFC 7591 §3.1), or not.
#[derive(Clone, Copy, Debug)]
pub enum Body<'a> {
    Json(&'a [u8]),
    NotJson,
}

/// The request body as a JSON object. A NUL character fits in JSON but in no database text
/// column (PostgreSQL refuses it): refused here, as in forms.
pub fn json_object(body: Body<'_>) -> Result<Map<String, Value>, RegistrationError> {
    let Body::Json(body) = body else {
        return Err(RegistrationError::InvalidRequest(
            "the request body must be client metadata as application/json".into(),
        ));
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) if map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) => Err(
            RegistrationError::InvalidRequest("the request body contains a NUL character".into()),
        ),
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(RegistrationError::InvalidRequest(
            "the request body must be a JSON object".into(),
        )),
        Err(e) => Err(RegistrationError::InvalidRequest(format!(
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
fn metadata(map: Map<String, Value>) -> Result<ClientMetadata, RegistrationError> {
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        MetadataError::metadata("metadata", format!("the client metadata is malformed: {e}")).into()
    })
}

const UNUSABLE_INITIAL: &str = "the initial access token is unknown, expired or already used";

/// `POST /register` (RFC 7591 §3.1): `bearer` is the request's Bearer token (or why its
/// `Authorization` header is unusable), the initial access token needed unless registration
/// is open (then the header is not looked at). The token is checked first and spent only when
/// the registration succeeds, so a refused form can be corrected. `body` is the request body.
pub async fn register(
    ctx: &Ctx,
    bearer: Result<Option<String>, BearerError>,
    body: Body<'_>,
) -> Result<Registration, RegistrationError> {
    let now = ctx.clock.unix();
    let initial = if ctx.config.registration.open {
        None
    } else {
        let hash = hash_secret(&bearer?.ok_or(BearerError::Missing)?);
        if !ctx.store.initial_access_token_usable(&hash, now).await? {
            return Err(BearerError::invalid_token(UNUSABLE_INITIAL).into());
        }
        Some(hash)
    };
    let valid = metadata(json_object(body)?)?.validate(&ctx.outbound)?;
    if let Some(hash) = initial
        && !ctx.store.use_initial_access_token(&hash, now).await?
    {
        return Err(BearerError::invalid_token(UNUSABLE_INITIAL).into());
    }
    let who = Registrant {
        registration_token: true,
        ..Registrant::default()
    };
    let Registered {
        client,
        client_secret,
        registration_access_token,
    } = super::register(&ctx.store, valid, &who, now).await?;
    tracing::info!(client_id = %client.client_id, "client registered at the registration endpoint");
    let token = registration_access_token.unwrap_or_default();
    Ok(answer(ctx, &client, client_secret.as_deref(), &token))
}

/// The client a registration access token manages (RFC 7592 §2). An unknown client and a
/// wrong token get the same answer, so the endpoint does not tell which clients exist.
pub async fn managed(
    ctx: &Ctx,
    bearer: Option<String>,
    client_id: &str,
) -> Result<(Client, String), RegistrationError> {
    let token = bearer.ok_or(BearerError::Missing)?;
    let presented = hash_secret(&token);
    let client = ctx.store.client(client_id).await?;
    let ok = client
        .as_ref()
        .and_then(|c| c.registration_token_hash.as_deref())
        .is_some_and(|stored| ct_eq(&presented, stored));
    match client {
        Some(c) if ok => Ok((c, token)),
        _ => Err(BearerError::invalid_token("the registration access token is not valid").into()),
    }
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
pub fn read(ctx: &Ctx, client: &Client, token: &str) -> Registration {
    answer(ctx, client, None, token)
}

/// Fields a client may not send in an update (RFC 7592 §2.2).
const SERVER_FIELDS: [&str; 4] = [
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// `PUT /register/{client_id}` (RFC 7592 §2.2): the request replaces every field.
pub async fn update(
    ctx: &Ctx,
    client: Client,
    token: &str,
    body: Body<'_>,
) -> Result<Registration, RegistrationError> {
    let invalid = RegistrationError::InvalidRequest;
    let mut map = json_object(body)?;
    if map.get("client_id").and_then(Value::as_str) != Some(client.client_id.as_str()) {
        return Err(invalid(
            "the body must carry this client's client_id (RFC 7592 §2.2)".into(),
        ));
    }
    if let Some(field) = SERVER_FIELDS.iter().find(|f| map.contains_key(**f)) {
        return Err(invalid(format!(
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
                return Err(invalid(
                    "client_secret does not match the client's current secret".into(),
                ));
            }
            Some(s)
        }
        Some(_) => return Err(invalid("client_secret must be a string".into())),
    };
    map.remove("client_id");
    let valid = metadata(map)?.validate(&ctx.outbound)?;
    let updated = super::update(&ctx.store, client, valid, None, ctx.clock.unix()).await?;
    let secret = updated
        .client_secret
        .or_else(|| presented_secret.filter(|_| updated.client.auth_method.uses_secret()));
    tracing::info!(client_id = %updated.client.client_id, "client updated at the registration endpoint");
    Ok(answer(ctx, &updated.client, secret.as_deref(), token))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client and everything issued to it are
/// gone at once.
pub async fn delete(ctx: &Ctx, client: &Client) -> Result<(), RegistrationError> {
    super::remove(&ctx.store, client, ctx.clock.unix()).await?;
    tracing::info!(client_id = %client.client_id, "client deleted at the registration endpoint");
    Ok(())
}

impl From<RegisterError> for RegistrationError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Invalid(m) => Self::Metadata(m),
            RegisterError::System(e) => Self::System(e),
            // A random client id never collides in practice; a vanished client is gone.
            RegisterError::Taken(_) | RegisterError::NoSuchClient(_) => {
                BearerError::invalid_token("the client does not exist").into()
            }
            RegisterError::NoSecret(..) | RegisterError::TooMany(_) => {
                Self::InvalidRequest(e.to_string())
            }
        }
    }
}
