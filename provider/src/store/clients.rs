//! `clients`: registered relying parties.

use super::{Store, flag, json_list, parse_list};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

/// How a client authenticates at the token endpoint (RFC 7591 §2 `token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client (no secret); PKCE protects its codes.
    None,
    /// A JWT assertion signed with one of the client's registered keys (RFC 7523).
    PrivateKeyJwt,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "none" => Some(Self::None),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            _ => None,
        }
    }
}

/// A registered client. `secret_hash` is the SHA-256 of its secret (none for public clients).
#[derive(Clone, Debug)]
pub struct Client {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    /// OIDC Back-Channel Logout §2.2: the client wants `sid` in logout tokens (we always send it).
    pub backchannel_logout_session_required: bool,
    pub grant_types: Vec<String>,
    pub auth_method: AuthMethod,
    pub id_token_alg: String,
    /// First-party apps skip the consent screen.
    pub first_party: bool,
    /// The client's public keys (a JWK Set, JSON), for `private_key_jwt`.
    pub jwks: Option<String>,
}

impl Client {
    /// Exact string comparison, as RFC 9700 §4.1.3 and OIDC Core §3.1.2.1 require.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

/// What registering a client takes.
#[derive(Clone, Debug)]
pub struct NewClient {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub grant_types: Vec<String>,
    pub auth_method: AuthMethod,
    pub id_token_alg: String,
    pub first_party: bool,
    pub jwks: Option<String>,
}

#[derive(FromRow)]
struct ClientRow {
    client_id: String,
    secret_hash: Option<String>,
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: i64,
    grant_types: String,
    token_endpoint_auth_method: String,
    id_token_signed_response_alg: String,
    first_party: i64,
    jwks: Option<String>,
}

impl TryFrom<ClientRow> for Client {
    type Error = sqlx::Error;
    fn try_from(r: ClientRow) -> Result<Self, sqlx::Error> {
        let auth_method = AuthMethod::parse(&r.token_endpoint_auth_method).ok_or_else(|| {
            sqlx::Error::Decode(
                format!("unknown auth method {}", r.token_endpoint_auth_method).into(),
            )
        })?;
        Ok(Self {
            client_id: r.client_id,
            secret_hash: r.secret_hash,
            name: r.name,
            redirect_uris: parse_list(&r.redirect_uris),
            post_logout_redirect_uris: parse_list(&r.post_logout_redirect_uris),
            backchannel_logout_uri: r.backchannel_logout_uri,
            backchannel_logout_session_required: r.backchannel_logout_session_required != 0,
            grant_types: parse_list(&r.grant_types),
            auth_method,
            id_token_alg: r.id_token_signed_response_alg,
            first_party: r.first_party != 0,
            jwks: r.jwks,
        })
    }
}

impl Store {
    /// Registers a client, or replaces the one with the same id (the demo seeds this way).
    pub async fn upsert_client(&self, c: &NewClient, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, name, redirect_uris, \
             post_logout_redirect_uris, backchannel_logout_uri, grant_types, \
             token_endpoint_auth_method, id_token_signed_response_alg, first_party, created_at, \
             backchannel_logout_session_required, jwks) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (client_id) DO UPDATE SET secret_hash = $2, name = $3, \
             redirect_uris = $4, post_logout_redirect_uris = $5, backchannel_logout_uri = $6, \
             grant_types = $7, token_endpoint_auth_method = $8, \
             id_token_signed_response_alg = $9, first_party = $10, \
             backchannel_logout_session_required = $12, jwks = $13",
        )
        .bind(&c.client_id)
        .bind(&c.secret_hash)
        .bind(&c.name)
        .bind(json_list(&c.redirect_uris))
        .bind(json_list(&c.post_logout_redirect_uris))
        .bind(&c.backchannel_logout_uri)
        .bind(json_list(&c.grant_types))
        .bind(c.auth_method.as_str())
        .bind(&c.id_token_alg)
        .bind(flag(c.first_party))
        .bind(now)
        .bind(flag(c.backchannel_logout_session_required))
        .bind(&c.jwks)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, sqlx::Error> {
        let row: Option<ClientRow> = sqlx::query_as(
            "SELECT client_id, secret_hash, name, redirect_uris, post_logout_redirect_uris, \
             backchannel_logout_uri, backchannel_logout_session_required, grant_types, \
             token_endpoint_auth_method, id_token_signed_response_alg, first_party, jwks \
             FROM clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Client::try_from).transpose()
    }

    /// Records an assertion's `jti` for `client_id` until `expires_at`; false if it was seen
    /// before (a replay).
    pub async fn use_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        sqlx::query("DELETE FROM used_assertions WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let done = sqlx::query(
            "INSERT INTO used_assertions (jti, client_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(jti)
        .bind(client_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
