//! `access_tokens` (the registry that makes JWT access tokens revocable) and `refresh_tokens`
//! (opaque, hashed, rotated, one family per grant).

use super::handle::Store;
use super::rows::{Insert, Table};
use crate::types::{Methods, ScopeSet};
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
    /// The API the token is addressed to (its `aud`); `None` for the provider's own.
    pub resource_id: Option<String>,
    /// The token this one was exchanged for (RFC 8693), which takes it along when revoked.
    pub parent_jti: Option<String>,
}

/// A revoked access token of an API, as its revocation feed tells the API.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct RevokedToken {
    pub resource_id: String,
    pub jti: String,
    pub expires_at: i64,
    pub revoked_at: i64,
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
    /// The methods of the sign-in the grant came from (`amr`).
    #[sqlx(try_from = "String")]
    pub amr: Methods,
    /// The level its tokens state, when the request asked for an essential one.
    pub acr: Option<String>,
    pub issued_at: i64,
    pub family_expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The DPoP key (its thumbprint) a public client's token is bound to (RFC 9449 §5).
    pub dpop_jkt: Option<String>,
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
    resource_id,
    parent_jti,
});

infra::lite_row!(RevokedToken {
    resource_id,
    jti,
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
    amr as String,
    acr,
    issued_at,
    family_expires_at,
    used_at,
    revoked_at,
    dpop_jkt,
});

const RT_COLUMNS: &str = "token_hash, grant_id, client_id, user_id, scope, sid, auth_time, amr, \
    acr, issued_at, family_expires_at, used_at, revoked_at, dpop_jkt";

static ACCESS_TOKENS: Table = Table {
    head: "INSERT INTO access_tokens (jti, grant_id, client_id, user_id, scope, issued_at, \
           expires_at, resource_id, parent_jti) VALUES",
    columns: 9,
    tail: "",
};

/// A refresh token already stored is kept as it is: a token's successor is derived from it,
/// so a retry within the grace window writes the same row again.
static REFRESH_TOKENS: Table = Table {
    head: "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scope, sid, \
           auth_time, amr, acr, issued_at, family_expires_at, dpop_jkt) VALUES",
    columns: 12,
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
                t.resource_id.clone().into(),
                t.parent_jti.clone().into(),
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
                t.amr.to_string().into(),
                t.acr.clone().into(),
                t.issued_at.into(),
                t.family_expires_at.into(),
                t.dpop_jkt.clone().into(),
            ],
        )
    }
}

/// The tokens exchanged (RFC 8693) from token `$1`.
pub(super) const EXCHANGED_FROM_TOKEN: &str = "SELECT jti FROM access_tokens WHERE parent_jti = $1";
/// The tokens client `$1` obtained (by exchange, as an API acting for a user, or otherwise).
pub(super) const TOKENS_OF_CLIENT: &str = "SELECT jti FROM access_tokens WHERE client_id = $1";

/// Revokes the tokens that `base` names (one query of `jti`s, `$1` the key) and every token
/// exchanged from them, at any depth, in `tx`. Repeated until a pass finds nothing: each pass
/// is a statement of its own, with a fresh snapshot even under PostgreSQL's READ COMMITTED, so
/// a token that an exchange in flight committed while an earlier pass waited on its parent's
/// lock is caught by the next (and an exchange that comes later finds its parent revoked).
/// Exchanges nest a few levels at most (`protocol::token::exchange`), so this ends after a few
/// passes.
pub(super) async fn revoke_exchanged(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    base: &str,
    key: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "UPDATE access_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND jti IN \
         (WITH RECURSIVE chain (jti) AS ({base} UNION SELECT a.jti FROM access_tokens a \
         JOIN chain c ON a.parent_jti = c.jti) SELECT jti FROM chain)"
    );
    loop {
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(key)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(());
        }
    }
}

impl Store {
    pub async fn access_token(&self, jti: &str) -> Result<Option<AccessTokenRow>, sqlx::Error> {
        self.db
            .read_optional(
                "SELECT jti, grant_id, client_id, user_id, scope, issued_at, expires_at, \
                 revoked_at, resource_id, parent_jti FROM access_tokens WHERE jti = $1",
                &[jti.into()],
            )
            .await
    }

    /// Revokes one access token, and every token exchanged from it (RFC 8693), at any depth;
    /// true if it was live. The token's own row first, in its own statement: an exchange
    /// holds that row until it commits (`Guard::access_token_live`), so what a concurrent
    /// exchange wrote is seen by the next statement (a fresh snapshot), or the exchange sees
    /// the revocation; then its descendants ([`revoke_exchanged`]).
    pub async fn revoke_access_token(&self, jti: &str, now: i64) -> Result<bool, sqlx::Error> {
        super::grants::retrying(|| async {
            let mut tx = self.db.write().begin().await?;
            let done = sqlx::query(
                "UPDATE access_tokens SET revoked_at = $2 WHERE jti = $1 AND revoked_at IS NULL",
            )
            .bind(jti)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            revoke_exchanged(&mut tx, EXCHANGED_FROM_TOKEN, jti, now).await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
        .await
        .inspect(|_| self.revoked())
    }

    /// The tokens of APIs revoked at `since` or later (by the revoking instance's clock), for
    /// the revocation feed's poll.
    pub async fn api_tokens_revoked_since(
        &self,
        since: i64,
    ) -> Result<Vec<RevokedToken>, sqlx::Error> {
        self.db
            .read_all(
                "SELECT resource_id, jti, expires_at, revoked_at FROM access_tokens \
                 WHERE resource_id IS NOT NULL AND revoked_at >= $1",
                &[since.into()],
            )
            .await
    }

    /// The tokens of API `resource_id` revoked and not expired at `after` (a subscriber's
    /// catch-up).
    pub async fn api_tokens_revoked(
        &self,
        resource_id: &str,
        after: i64,
    ) -> Result<Vec<RevokedToken>, sqlx::Error> {
        self.db
            .read_all(
                "SELECT resource_id, jti, expires_at, revoked_at FROM access_tokens \
                 WHERE revoked_at IS NOT NULL AND resource_id IS NOT NULL \
                 AND resource_id = $1 AND expires_at > $2",
                &[resource_id.into(), after.into()],
            )
            .await
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
