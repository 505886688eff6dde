//! `authorization_codes`: single use, short-lived, bound to client, redirect URI, PKCE
//! challenge, nonce and SSO session.

use super::handle::Store;
use super::rows::{Insert, Table};
use super::users::{USER_FIELDS, User, UserRow};
use crate::types::{Methods, ScopeSet};
use sqlx::FromRow;

/// An authorization code's bindings (the code itself is only stored as its hash).
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct AuthCode {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    #[sqlx(try_from = "String")]
    pub scope: ScopeSet,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub sid: String,
    pub auth_time: i64,
    /// The methods of the sign-in the code was issued on (`amr`).
    #[sqlx(try_from = "String")]
    pub amr: Methods,
    /// The level its tokens state, when the request asked for an essential one (`None`: the
    /// level `amr` reaches).
    pub acr: Option<String>,
    pub expires_at: i64,
    /// The thumbprint of the DPoP key the code is bound to (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
}

/// What a presented code is, as last committed.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeState {
    /// Never redeemed, unrevoked and in date: the caller checks the bindings and redeems it
    /// under [`super::Guard::code_redeemed`], in the transaction that stores its tokens.
    Fresh(AuthCode),
    /// Already redeemed once: a replay. The grant it started must be revoked.
    Replayed(AuthCode),
    /// Never redeemed, but out of date.
    Expired,
    /// Revoked before its redemption (its SSO session ended, its app was disconnected).
    Revoked,
    /// Never issued (or swept long ago).
    Unknown,
}

/// A code as stored, with whether it was redeemed or revoked, and its user.
#[derive(FromRow)]
struct CodeRow {
    #[sqlx(flatten)]
    code: AuthCode,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    #[sqlx(flatten)]
    user: UserRow,
}

infra::lite_row!(AuthCode {
    client_id,
    user_id,
    redirect_uri,
    scope as String,
    nonce,
    code_challenge,
    sid,
    auth_time,
    amr as String,
    acr,
    expires_at,
    dpop_jkt,
});

impl infra::FromLite for CodeRow {
    fn from_lite(row: &infra::LiteRow<'_>) -> infra::LiteResult<Self> {
        Ok(Self {
            code: AuthCode::from_lite(row)?,
            used_at: row.get("used_at")?,
            revoked_at: row.get("revoked_at")?,
            user: UserRow::from_lite(row)?,
        })
    }
}

const CODE_COLUMNS: &str = "c.client_id, c.user_id, c.redirect_uri, c.scope, c.nonce, \
    c.code_challenge, c.sid, c.auth_time, c.amr, c.acr, c.expires_at, c.dpop_jkt";

static AUTHORIZATION_CODES: Table = Table {
    head: "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, scope, \
           nonce, code_challenge, sid, auth_time, amr, acr, created_at, expires_at, dpop_jkt) \
           VALUES",
    columns: 14,
    tail: "",
};

impl Insert {
    /// A new authorization code (its hash) and its bindings.
    pub fn auth_code(code_hash: &str, c: &AuthCode, now: i64) -> Self {
        Self::new(
            &AUTHORIZATION_CODES,
            vec![
                code_hash.into(),
                c.client_id.as_str().into(),
                c.user_id.as_str().into(),
                c.redirect_uri.as_str().into(),
                c.scope.to_string().into(),
                c.nonce.clone().into(),
                c.code_challenge.as_str().into(),
                c.sid.as_str().into(),
                c.auth_time.into(),
                c.amr.to_string().into(),
                c.acr.clone().into(),
                now.into(),
                c.expires_at.into(),
                c.dpop_jkt.clone().into(),
            ],
        )
    }
}

impl Store {
    /// What the code with this hash is, as last committed, with its user (read in the same
    /// query: the redemption needs both): a plain read, no write. A fresh code is only
    /// redeemed by [`super::Guard::code_redeemed`] in the transaction that stores its tokens,
    /// so of two concurrent redemptions exactly one commits, and a redemption that fails
    /// writes nothing. A code whose user is gone is [`CodeState::Unknown`].
    pub async fn auth_code(
        &self,
        code_hash: &str,
        now: i64,
    ) -> Result<(CodeState, Option<User>), sqlx::Error> {
        let row: Option<CodeRow> = self
            .db
            .read_optional(
                &format!(
                    "SELECT {CODE_COLUMNS}, c.used_at, c.revoked_at, {USER_FIELDS} \
                     FROM authorization_codes c JOIN users u ON u.id = c.user_id \
                     WHERE c.code_hash = $1"
                ),
                &[code_hash.into()],
            )
            .await?;
        let Some(row) = row else {
            return Ok((CodeState::Unknown, None));
        };
        let user = User::from(row.user);
        let state = match row {
            CodeRow {
                used_at: Some(_),
                code,
                ..
            } => CodeState::Replayed(code),
            CodeRow {
                revoked_at: Some(_),
                ..
            } => CodeState::Revoked,
            CodeRow { code, .. } if code.expires_at <= now => CodeState::Expired,
            CodeRow { code, .. } => CodeState::Fresh(code),
        };
        Ok((state, Some(user)))
    }

    /// Deletes codes that expired more than `keep_secs` ago (kept a while to recognise replays).
    pub async fn sweep_auth_codes(&self, now: i64, keep_secs: i64) -> Result<u64, sqlx::Error> {
        self.delete_batched(
            "authorization_codes",
            "code_hash",
            "expires_at < $1",
            &[now - keep_secs],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::users::USER_FIELDS;
    use super::CODE_COLUMNS;

    /// A code and its user are read in one row by column name: no name may be in both.
    #[test]
    fn a_code_and_its_user_share_no_column_name() {
        let names = |list: &str| -> Vec<String> {
            list.split(',')
                .map(|c| c.trim().rsplit('.').next().unwrap_or("").to_owned())
                .collect()
        };
        let (code, user) = (names(CODE_COLUMNS), names(USER_FIELDS));
        assert!(code.len() > 5 && user.len() > 5);
        for c in code
            .iter()
            .chain(["used_at".into(), "revoked_at".into()].iter())
        {
            assert!(!user.contains(c), "{c} is a column of both");
        }
    }
}
