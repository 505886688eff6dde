//! `access_tokens` (the registry that makes JWT access tokens revocable) and `refresh_tokens`
//! (opaque, hashed, rotated, one family per grant).

use super::handle::Store;
use super::rows::{Insert, Table};
use crate::types::ScopeSet;
use sqlx::FromRow;

/// An issued access token's registry entry.
#[derive(Clone, Debug, FromRow)]
pub struct AccessTokenRow {
    pub jti: String,
    pub grant_id: Option<String>,
    pub client_id: String,
    pub user_id: Option<String>,
    /// The token's scope as it carries it (OpenID scopes, or an API's).
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// A refresh token (by its hash).
#[derive(Clone, Debug, FromRow)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    /// The grant's whole scope (a narrowed refresh narrows its access token, not the grant).
    #[sqlx(try_from = "String")]
    pub scope: ScopeSet,
    pub sid: Option<String>,
    pub auth_time: i64,
    pub issued_at: i64,
    pub family_expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

infra::lite_row!(AccessTokenRow {
    jti,
    grant_id,
    client_id,
    user_id,
    scope,
    issued_at,
    expires_at,
    revoked_at,
});

infra::lite_row!(RefreshTokenRow {
    token_hash,
    grant_id,
    client_id,
    user_id,
    scope as String,
    sid,
    auth_time,
    issued_at,
    family_expires_at,
    used_at,
    revoked_at,
});

const RT_COLUMNS: &str = "token_hash, grant_id, client_id, user_id, scope, sid, auth_time, \
    issued_at, family_expires_at, used_at, revoked_at";

static ACCESS_TOKENS: Table = Table {
    head: "INSERT INTO access_tokens (jti, grant_id, client_id, user_id, scope, issued_at, \
           expires_at) VALUES",
    columns: 7,
    tail: "",
};

/// A refresh token already stored is kept as it is: a token's successor is derived from it,
/// so a retry within the grace window writes the same row again.
static REFRESH_TOKENS: Table = Table {
    head: "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scope, sid, \
           auth_time, issued_at, family_expires_at) VALUES",
    columns: 9,
    tail: " ON CONFLICT (token_hash) DO NOTHING",
};

impl Insert {
    /// An issued access token's registry entry.
    pub fn access_token(t: &AccessTokenRow) -> Self {
        Self::new(
            &ACCESS_TOKENS,
            vec![
                t.jti.as_str().into(),
                t.grant_id.clone().into(),
                t.client_id.as_str().into(),
                t.user_id.clone().into(),
                t.scope.as_str().into(),
                t.issued_at.into(),
                t.expires_at.into(),
            ],
        )
    }

    /// A new refresh token (its hash).
    pub fn refresh_token(t: &RefreshTokenRow) -> Self {
        Self::new(
            &REFRESH_TOKENS,
            vec![
                t.token_hash.as_str().into(),
                t.grant_id.as_str().into(),
                t.client_id.as_str().into(),
                t.user_id.as_str().into(),
                t.scope.to_string().into(),
                t.sid.clone().into(),
                t.auth_time.into(),
                t.issued_at.into(),
                t.family_expires_at.into(),
            ],
        )
    }
}

impl Store {
    pub async fn access_token(&self, jti: &str) -> Result<Option<AccessTokenRow>, sqlx::Error> {
        self.db
            .read_optional(
                "SELECT jti, grant_id, client_id, user_id, scope, issued_at, expires_at, \
                 revoked_at FROM access_tokens WHERE jti = $1",
                &[jti.into()],
            )
            .await
    }

    /// Revokes one access token; true if it was live.
    pub async fn revoke_access_token(&self, jti: &str, now: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $2 WHERE jti = $1 AND revoked_at IS NULL",
        )
        .bind(jti)
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshTokenRow>, sqlx::Error> {
        self.db
            .read_optional(
                &format!("SELECT {RT_COLUMNS} FROM refresh_tokens WHERE token_hash = $1"),
                &[token_hash.into()],
            )
            .await
    }

    /// Deletes registry rows of tokens that expired more than `keep_secs` ago.
    pub async fn sweep_tokens(&self, now: i64, keep_secs: i64) -> Result<(), sqlx::Error> {
        let before = now - keep_secs;
        self.delete_batched("access_tokens", "jti", "expires_at < $1", &[before])
            .await?;
        self.delete_batched(
            "refresh_tokens",
            "token_hash",
            "family_expires_at < $1",
            &[before],
        )
        .await?;
        self.delete_batched(
            "initial_access_tokens",
            "token_hash",
            "expires_at < $1",
            &[before],
        )
        .await?;
        Ok(())
    }
}
