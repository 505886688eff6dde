//! `clients`: registered relying parties.

use super::columns::{decode, flag, json_list, parse_list};
use super::handle::Store;
use crate::types::{Alg, AuthMethod, GrantType, Level};
use sqlx::FromRow;

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
    /// OIDC Front-Channel Logout §2: framed by the signed-out page of a session it joined.
    pub frontchannel_logout_uri: Option<String>,
    /// Front-Channel Logout §2: `iss` and `sid` are added to that URI.
    pub frontchannel_logout_session_required: bool,
    /// RFC 9126 §6: its authorization requests must be pushed first (PAR).
    pub require_par: bool,
    /// RFC 9449 §5.2: its token requests must carry a DPoP proof.
    pub dpop_bound: bool,
    pub grant_types: Vec<GrantType>,
    pub auth_method: AuthMethod,
    pub id_token_alg: Alg,
    /// First-party apps skip the consent screen.
    pub first_party: bool,
    /// The client's public keys (a JWK Set, JSON), for `private_key_jwt`.
    pub jwks: Option<String>,
    /// The user who registered it in the developer console.
    pub owner_id: Option<String>,
    /// SHA-256 of its RFC 7592 registration access token (dynamically registered clients).
    pub registration_token_hash: Option<String>,
    /// The levels its requests ask for when they name none (OIDC Registration §2), in order
    /// of preference.
    pub default_acr_values: Vec<Level>,
    /// An operator's setting: every sign-in for it needs two factors.
    pub require_mfa: bool,
    /// An operator's setting, on unless turned off for a confidential client: its
    /// authorization requests must carry a PKCE challenge. See [`Client::pkce_required`].
    pub require_pkce: bool,
    pub created_at: i64,
}

/// An operator's settings on a client (`provider clients update`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientFlag {
    /// Every sign-in for it needs two factors.
    RequireMfa,
    /// Its authorization requests must carry PKCE. Turning it off for a public client is
    /// stored but has no effect ([`Client::pkce_required`]); the command line refuses it.
    RequirePkce,
}

impl ClientFlag {
    pub fn name(self) -> &'static str {
        match self {
            Self::RequireMfa => "require_mfa",
            Self::RequirePkce => "require_pkce",
        }
    }
}

impl Client {
    /// Exact string comparison, as RFC 9700 §4.1.3 and OIDC Core §3.1.2.1 require.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether its codes need PKCE: always for a public client (nothing else protects its
    /// codes, RFC 9700 §2.1.1), and for a confidential one unless an operator said otherwise.
    pub fn pkce_required(&self) -> bool {
        self.require_pkce || self.auth_method == AuthMethod::None
    }
}

/// A client as it is written: made only by the registration rules (`registration`), which
/// every way of registering goes through, so nothing stored has skipped them.
#[derive(Clone, Debug)]
pub struct NewClient {
    pub(crate) client_id: String,
    pub(crate) secret_hash: Option<String>,
    pub(crate) name: String,
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) post_logout_redirect_uris: Vec<String>,
    pub(crate) backchannel_logout_uri: Option<String>,
    pub(crate) backchannel_logout_session_required: bool,
    pub(crate) frontchannel_logout_uri: Option<String>,
    pub(crate) frontchannel_logout_session_required: bool,
    pub(crate) require_par: bool,
    pub(crate) dpop_bound: bool,
    pub(crate) grant_types: Vec<GrantType>,
    pub(crate) auth_method: AuthMethod,
    pub(crate) id_token_alg: Alg,
    pub(crate) first_party: bool,
    pub(crate) jwks: Option<String>,
    pub(crate) owner_id: Option<String>,
    pub(crate) registration_token_hash: Option<String>,
    pub(crate) default_acr_values: Vec<Level>,
}

const CLIENT_COLUMNS: &str = "client_id, secret_hash, name, redirect_uris, \
    post_logout_redirect_uris, backchannel_logout_uri, backchannel_logout_session_required, \
    frontchannel_logout_uri, frontchannel_logout_session_required, \
    require_pushed_authorization_requests, dpop_bound_access_tokens, grant_types, token_endpoint_auth_method, id_token_signed_response_alg, first_party, jwks, \
    owner_id, registration_token_hash, default_acr_values, require_mfa, require_pkce, created_at";

#[derive(FromRow)]
struct ClientRow {
    client_id: String,
    secret_hash: Option<String>,
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: i64,
    frontchannel_logout_uri: Option<String>,
    frontchannel_logout_session_required: i64,
    require_pushed_authorization_requests: i64,
    dpop_bound_access_tokens: i64,
    grant_types: String,
    token_endpoint_auth_method: String,
    id_token_signed_response_alg: String,
    first_party: i64,
    jwks: Option<String>,
    owner_id: Option<String>,
    registration_token_hash: Option<String>,
    default_acr_values: String,
    require_mfa: i64,
    require_pkce: i64,
    created_at: i64,
}

infra::lite_row!(ClientRow {
    client_id,
    secret_hash,
    name,
    redirect_uris,
    post_logout_redirect_uris,
    backchannel_logout_uri,
    backchannel_logout_session_required,
    frontchannel_logout_uri,
    frontchannel_logout_session_required,
    require_pushed_authorization_requests,
    dpop_bound_access_tokens,
    grant_types,
    token_endpoint_auth_method,
    id_token_signed_response_alg,
    first_party,
    jwks,
    owner_id,
    registration_token_hash,
    default_acr_values,
    require_mfa,
    require_pkce,
    created_at,
});

impl TryFrom<ClientRow> for Client {
    type Error = sqlx::Error;
    fn try_from(r: ClientRow) -> Result<Self, sqlx::Error> {
        let grant_types = parse_list(&r.grant_types)
            .iter()
            .map(|g| decode("grant type", g, GrantType::parse))
            .collect::<Result<_, _>>()?;
        let default_acr_values = parse_list(&r.default_acr_values)
            .iter()
            .map(|a| decode("acr value", a, Level::parse))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            client_id: r.client_id,
            secret_hash: r.secret_hash,
            name: r.name,
            redirect_uris: parse_list(&r.redirect_uris),
            post_logout_redirect_uris: parse_list(&r.post_logout_redirect_uris),
            backchannel_logout_uri: r.backchannel_logout_uri,
            backchannel_logout_session_required: r.backchannel_logout_session_required != 0,
            frontchannel_logout_uri: r.frontchannel_logout_uri,
            frontchannel_logout_session_required: r.frontchannel_logout_session_required != 0,
            require_par: r.require_pushed_authorization_requests != 0,
            dpop_bound: r.dpop_bound_access_tokens != 0,
            grant_types,
            auth_method: decode(
                "token_endpoint_auth_method",
                &r.token_endpoint_auth_method,
                AuthMethod::parse,
            )?,
            id_token_alg: decode(
                "id_token_signed_response_alg",
                &r.id_token_signed_response_alg,
                Alg::parse,
            )?,
            first_party: r.first_party != 0,
            jwks: r.jwks,
            owner_id: r.owner_id,
            registration_token_hash: r.registration_token_hash,
            default_acr_values,
            require_mfa: r.require_mfa != 0,
            require_pkce: r.require_pkce != 0,
            created_at: r.created_at,
        })
    }
}

impl Store {
    /// Registers a client, or replaces the one with the same id (the demo seeds this way, and
    /// updates write the whole client).
    pub async fn upsert_client(&self, c: &NewClient, now: i64) -> Result<(), sqlx::Error> {
        self.write_client(
            c,
            now,
            "ON CONFLICT (client_id) DO UPDATE SET secret_hash = $2, name = $3, \
             redirect_uris = $4, post_logout_redirect_uris = $5, backchannel_logout_uri = $6, \
             grant_types = $7, token_endpoint_auth_method = $8, \
             id_token_signed_response_alg = $9, first_party = $10, \
             backchannel_logout_session_required = $12, jwks = $13, owner_id = $14, \
             registration_token_hash = $15, default_acr_values = $16, \
             frontchannel_logout_uri = $17, frontchannel_logout_session_required = $18, \
             require_pushed_authorization_requests = $19, dpop_bound_access_tokens = $20, \
             require_pkce = CASE WHEN clients.token_endpoint_auth_method = $8 \
             THEN clients.require_pkce ELSE 1 END",
        )
        .await
        .map(|_| ())
    }

    /// Registers a new client; false (and nothing written) if its id is taken.
    pub async fn insert_client(&self, c: &NewClient, now: i64) -> Result<bool, sqlx::Error> {
        self.write_client(c, now, "ON CONFLICT (client_id) DO NOTHING")
            .await
    }

    /// Registers a new client owned by `c.owner_id`, unless its owner already holds `limit`
    /// clients: the count and the insert in one transaction, after the owner's row is locked,
    /// so parallel registrations (on any instance) are counted one after another. `None` when
    /// the owner is at the limit; otherwise whether the client was written (its id was free).
    pub async fn insert_owned_client(
        &self,
        c: &NewClient,
        now: i64,
        limit: usize,
    ) -> Result<Option<bool>, sqlx::Error> {
        let mut tx = self.db.write().begin().await?;
        sqlx::query("UPDATE users SET session_epoch = session_epoch WHERE id = $1")
            .bind(&c.owner_id)
            .execute(&mut *tx)
            .await?;
        let (held,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM clients WHERE owner_id = $1")
            .bind(&c.owner_id)
            .fetch_one(&mut *tx)
            .await?;
        if held >= i64::try_from(limit).unwrap_or(i64::MAX) {
            return Ok(None);
        }
        let done = client_write(c, now, "ON CONFLICT (client_id) DO NOTHING")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(done.rows_affected() == 1))
    }

    async fn write_client(
        &self,
        c: &NewClient,
        now: i64,
        on_conflict: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = client_write(c, now, on_conflict)
            .execute(self.db.write())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every client, by name.
    pub async fn list_clients(&self) -> Result<Vec<Client>, sqlx::Error> {
        let rows: Vec<ClientRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_COLUMNS} FROM clients ORDER BY name, client_id"
        )))
        .fetch_all(self.db.read())
        .await?;
        rows.into_iter().map(Client::try_from).collect()
    }

    /// The clients a user registered in the developer console, by name.
    pub async fn clients_of_owner(&self, owner_id: &str) -> Result<Vec<Client>, sqlx::Error> {
        let rows: Vec<ClientRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE owner_id = $1 ORDER BY name, client_id"
        )))
        .bind(owner_id)
        .fetch_all(self.db.read())
        .await?;
        rows.into_iter().map(Client::try_from).collect()
    }

    /// Sets one of an operator's settings on a client, which no registration update changes.
    /// False if there is no such client.
    pub async fn set_client_flag(
        &self,
        client_id: &str,
        which: ClientFlag,
        on: bool,
    ) -> Result<bool, sqlx::Error> {
        let sql = match which {
            ClientFlag::RequireMfa => "UPDATE clients SET require_mfa = $2 WHERE client_id = $1",
            ClientFlag::RequirePkce => "UPDATE clients SET require_pkce = $2 WHERE client_id = $1",
        };
        let done = sqlx::query(sql)
            .bind(client_id)
            .bind(flag(on))
            .execute(self.db.write())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a client's secret hash; the old secret stops working at once (every
    /// authentication reads the store). False if there is no such client.
    pub async fn set_client_secret_hash(
        &self,
        client_id: &str,
        secret_hash: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE clients SET secret_hash = $2 WHERE client_id = $1")
            .bind(client_id)
            .bind(secret_hash)
            .execute(self.db.write())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a client and everything issued to it (codes, grants, access and refresh
    /// tokens, consents, its place in SSO sessions, pending logouts): its tokens stop working
    /// at once. First its grants are revoked, as any revocation is (`Revoke::Client`, against
    /// issuances in flight); then, in one transaction that first locks the client's row (which
    /// an exchange in flight holds, `Guard::client_exists`), the tokens it obtained acting for
    /// others and every token exchanged from them, at any depth; then the rest goes. Tokens
    /// for APIs are kept, revoked, until they expire, for the APIs' revocation feed. False if
    /// there was no such client.
    pub async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, sqlx::Error> {
        self.revoke(super::Revoke::Client(client_id), now).await?;
        let deleted = super::grants::retrying(|| self.delete_client_once(client_id, now)).await;
        self.revoked();
        deleted
    }

    async fn delete_client_once(&self, client_id: &str, now: i64) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.write().begin().await?;
        sqlx::query("UPDATE clients SET client_id = client_id WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        super::tokens::revoke_exchanged(&mut tx, super::tokens::TOKENS_OF_CLIENT, client_id, now)
            .await?;
        sqlx::query("DELETE FROM access_tokens WHERE client_id = $1 AND resource_id IS NULL")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        for table in [
            "authorization_codes",
            "device_authorizations",
            "pushed_requests",
            "refresh_tokens",
            "token_exchange_rules",
            "consents",
            "session_clients",
            "logout_deliveries",
            "used_assertions",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE client_id = $1"
            )))
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a new initial access token (RFC 7591 §3), by its hash.
    pub async fn insert_initial_access_token(
        &self,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO initial_access_tokens (token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    /// Whether an initial access token exists, is unused and has not expired (nothing spent).
    pub async fn initial_access_token_usable(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT expires_at FROM initial_access_tokens \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.db.read())
        .await?;
        Ok(row.is_some())
    }

    /// Spends an initial access token: true once, if it exists and has not expired. One
    /// statement, so two registrations racing with one token cannot both get it.
    pub async fn use_initial_access_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE initial_access_tokens SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, sqlx::Error> {
        let row: Option<ClientRow> = self
            .db
            .read_optional(
                &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1"),
                &[client_id.into()],
            )
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
            .execute(self.db.write())
            .await?;
        let done = sqlx::query(
            "INSERT INTO used_assertions (jti, client_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(jti)
        .bind(client_id)
        .bind(expires_at)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// The statement that writes client `c` (`on_conflict` says what a taken id does).
fn client_write<'q>(
    c: &'q NewClient,
    now: i64,
    on_conflict: &str,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO clients (client_id, secret_hash, name, redirect_uris, \
         post_logout_redirect_uris, backchannel_logout_uri, grant_types, \
         token_endpoint_auth_method, id_token_signed_response_alg, first_party, created_at, \
         backchannel_logout_session_required, jwks, owner_id, registration_token_hash, \
         default_acr_values, frontchannel_logout_uri, frontchannel_logout_session_required, \
         require_pushed_authorization_requests, dpop_bound_access_tokens) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20) {on_conflict}"
    )))
    .bind(&c.client_id)
    .bind(&c.secret_hash)
    .bind(&c.name)
    .bind(json_list(c.redirect_uris.iter().map(String::as_str)))
    .bind(json_list(
        c.post_logout_redirect_uris.iter().map(String::as_str),
    ))
    .bind(&c.backchannel_logout_uri)
    .bind(json_list(c.grant_types.iter().map(|g| g.as_str())))
    .bind(c.auth_method.as_str())
    .bind(c.id_token_alg.as_str())
    .bind(flag(c.first_party))
    .bind(now)
    .bind(flag(c.backchannel_logout_session_required))
    .bind(&c.jwks)
    .bind(&c.owner_id)
    .bind(&c.registration_token_hash)
    .bind(json_list(c.default_acr_values.iter().map(|l| l.as_str())))
    .bind(&c.frontchannel_logout_uri)
    .bind(flag(c.frontchannel_logout_session_required))
    .bind(flag(c.require_par))
    .bind(flag(c.dpop_bound))
}
