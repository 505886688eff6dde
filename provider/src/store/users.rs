//! `users`: accounts that sign in with a password.

use super::columns::{decode, flag};
use super::handle::Store;
use crate::types::ScopeSet;
use sqlx::FromRow;

/// A user account. The password hash is argon2id PHC text.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub developer: bool,
    pub disabled: bool,
    pub updated_at: i64,
    /// Moved on by every change that signs the user out everywhere; a sign-in records its
    /// session only if the epoch it read is still current (see `Store::open_session`).
    pub session_epoch: i64,
}

/// What creating or replacing a user takes.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub developer: bool,
}

#[derive(FromRow)]
pub(super) struct UserRow {
    id: String,
    username: String,
    password_hash: String,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    email_verified: i64,
    developer: i64,
    disabled: i64,
    updated_at: i64,
    session_epoch: i64,
}

infra::lite_row!(UserRow {
    id,
    username,
    password_hash,
    name,
    given_name,
    family_name,
    email,
    email_verified,
    developer,
    disabled,
    updated_at,
    session_epoch,
});

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            username: r.username,
            password_hash: r.password_hash,
            name: r.name,
            given_name: r.given_name,
            family_name: r.family_name,
            email: r.email,
            email_verified: r.email_verified != 0,
            developer: r.developer != 0,
            disabled: r.disabled != 0,
            updated_at: r.updated_at,
            session_epoch: r.session_epoch,
        }
    }
}

/// An attempt counted in advance against a throttle key: the wait before it and the one it
/// set (see `Store::reserve_login_attempt`).
#[derive(Clone, Debug)]
pub struct Reserved {
    pub key: String,
    pub previous: i64,
    pub until: i64,
}

/// A user's columns as [`UserRow`] reads them, from a `users` table aliased `u` (for a query
/// that reads a user beside the row that names it).
pub(super) const USER_FIELDS: &str = "u.id, u.username, u.password_hash, u.name, u.given_name, \
    u.family_name, u.email, u.email_verified, u.developer, u.disabled, u.updated_at, \
    u.session_epoch";

const COLUMNS: &str = "SELECT id, username, password_hash, name, given_name, family_name, email, \
    email_verified, developer, disabled, updated_at, session_epoch FROM users";

impl Store {
    /// Creates a user with a new random id; fails with a unique violation if the name is taken.
    pub async fn create_user(&self, u: &NewUser, now: i64) -> Result<User, sqlx::Error> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, name, given_name, family_name, \
             email, email_verified, developer, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10)",
        )
        .bind(&id)
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(&u.name)
        .bind(&u.given_name)
        .bind(&u.family_name)
        .bind(&u.email)
        .bind(flag(u.email_verified))
        .bind(flag(u.developer))
        .bind(now)
        .execute(self.db.write())
        .await?;
        self.user_by_id(&id).await?.ok_or(sqlx::Error::RowNotFound)
    }

    /// User `id`, and the scopes it has consented to for `client_id` (if any), in one query
    /// (an authorization for a third-party app reads both).
    pub async fn user_with_consent(
        &self,
        id: &str,
        client_id: &str,
    ) -> Result<Option<(User, Option<ScopeSet>)>, sqlx::Error> {
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRow,
            consent: Option<String>,
        }
        impl infra::FromLite for Row {
            fn from_lite(row: &infra::LiteRow<'_>) -> infra::LiteResult<Self> {
                Ok(Self {
                    user: UserRow::from_lite(row)?,
                    consent: row.get("consent")?,
                })
            }
        }
        let row: Option<Row> = self
            .db
            .read_optional(
                &format!(
                    "SELECT {USER_FIELDS}, c.scope AS consent FROM users u \
                     LEFT JOIN consents c ON c.user_id = u.id AND c.client_id = $2 \
                     WHERE u.id = $1"
                ),
                &[id.into(), client_id.into()],
            )
            .await?;
        row.map(|r| {
            let consent = r
                .consent
                .map(|s| decode("scope list", &s, |s| ScopeSet::parse_strict(s).ok()))
                .transpose()?;
            Ok((User::from(r.user), consent))
        })
        .transpose()
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, sqlx::Error> {
        let row: Option<UserRow> = self
            .db
            .read_optional(&format!("{COLUMNS} WHERE id = $1"), &[id.into()])
            .await?;
        Ok(row.map(User::from))
    }

    /// For a bearer of access token `jti`: whether the registry has it revoked, and the user
    /// it was issued to, in one query. `None` if the registry has no such token with a user.
    pub async fn access_token_user(
        &self,
        jti: &str,
    ) -> Result<Option<(Option<i64>, User)>, sqlx::Error> {
        #[derive(FromRow)]
        struct Row {
            revoked_at: Option<i64>,
            #[sqlx(flatten)]
            user: UserRow,
        }
        impl infra::FromLite for Row {
            fn from_lite(row: &infra::LiteRow<'_>) -> infra::LiteResult<Self> {
                Ok(Self {
                    revoked_at: row.get("revoked_at")?,
                    user: UserRow::from_lite(row)?,
                })
            }
        }
        let row: Option<Row> = self
            .db
            .read_optional(
                &format!(
                    "SELECT t.revoked_at, {USER_FIELDS} \
                     FROM access_tokens t JOIN users u ON u.id = t.user_id WHERE t.jti = $1"
                ),
                &[jti.into()],
            )
            .await?;
        Ok(row.map(|r| (r.revoked_at, r.user.into())))
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, sqlx::Error> {
        let row: Option<UserRow> = self
            .db
            .read_optional(
                &format!("{COLUMNS} WHERE username = $1"),
                &[username.into()],
            )
            .await?;
        Ok(row.map(User::from))
    }

    /// Replaces a user's password hash (and moves the sessions epoch on: a sign-in that
    /// checked the old password no longer records its session).
    pub async fn set_password_hash(
        &self,
        id: &str,
        hash: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $2, updated_at = $3, \
                 session_epoch = session_epoch + 1 WHERE id = $1",
        )
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Disables or enables a user (and moves the sessions epoch on).
    pub async fn set_disabled(
        &self,
        id: &str,
        disabled: bool,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE users SET disabled = $2, updated_at = $3, \
             session_epoch = session_epoch + 1 WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(disabled))
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every user, by username.
    pub async fn list_users(&self) -> Result<Vec<User>, sqlx::Error> {
        let rows: Vec<UserRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{COLUMNS} ORDER BY username")))
                .fetch_all(self.db.read())
                .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Deletes a user with their codes, tokens and consents (their sessions must be ended
    /// first, so that the apps hear of it). First every grant of theirs is revoked, as any
    /// revocation is (against issuances in flight: none can follow), with its tokens; then
    /// the rest goes in one transaction. The access tokens of APIs are kept, revoked, until
    /// they expire: they are what the APIs' revocation feed tells them (`store::tokens`).
    /// False if there was none.
    pub async fn delete_user(&self, id: &str, now: i64) -> Result<bool, sqlx::Error> {
        self.revoke(super::Revoke::User(id), now).await?;
        let mut tx = self.db.write().begin().await?;
        sqlx::query("DELETE FROM access_tokens WHERE user_id = $1 AND resource_id IS NULL")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for table in [
            "authorization_codes",
            "grants",
            "refresh_tokens",
            "consents",
            "recovery_codes",
            "user_totp",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE user_id = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts a failed sign-in for `key` in the current window (a new window starts
    /// `window` seconds after the last one began); returns the count and the window's start.
    /// One statement, so concurrent failures on several instances all count.
    /// Takes an attempt for each of `keys` (`(key, free failures)`), atomically for all of
    /// them: each is counted as a failure in advance, and its next wait set, in one
    /// transaction, unless one of them is still waiting; then nothing is counted and the
    /// longest wait in seconds is returned. `delay(failures, free)` is the wait after a
    /// failure; past `cap` failures a key waits for its window's end. The row lock the count
    /// takes (on PostgreSQL; SQLite has one writer) holds concurrent attempts until the wait
    /// is written, so a burst cannot slip past it.
    pub async fn reserve_login_attempt(
        &self,
        keys: &[(&str, i64)],
        now: i64,
        window: i64,
        cap: i64,
        delay: fn(i64, i64) -> i64,
    ) -> Result<Result<Vec<Reserved>, i64>, sqlx::Error> {
        let mut tx = self.db.write().begin().await?;
        let mut wait = 0;
        let mut reserved = Vec::new();
        for (key, free) in keys {
            let counted: Option<(i64, i64)> = sqlx::query_as(
                "INSERT INTO login_throttle (throttle_key, failures, window_start, blocked_until) \
                 VALUES ($1, 1, $2, 0) \
                 ON CONFLICT (throttle_key) DO UPDATE SET \
                 failures = CASE WHEN login_throttle.window_start <= $2 - $3 THEN 1 \
                            ELSE login_throttle.failures + 1 END, \
                 window_start = CASE WHEN login_throttle.window_start <= $2 - $3 THEN $2 \
                                ELSE login_throttle.window_start END \
                 WHERE login_throttle.blocked_until <= $2 \
                 RETURNING failures, window_start",
            )
            .bind(key)
            .bind(now)
            .bind(window)
            .fetch_optional(&mut *tx)
            .await?;
            match counted {
                Some((failures, window_start)) => {
                    let until = if failures >= cap {
                        window_start + window
                    } else {
                        now + delay(failures, *free)
                    };
                    // The wait before this attempt: the row is locked now, and only the next
                    // statement changes it.
                    let (previous,): (i64,) = sqlx::query_as(
                        "SELECT blocked_until FROM login_throttle WHERE throttle_key = $1",
                    )
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?;
                    reserved.push(Reserved {
                        key: (*key).to_owned(),
                        previous,
                        until,
                    });
                    sqlx::query(
                        "UPDATE login_throttle SET blocked_until = $2 WHERE throttle_key = $1",
                    )
                    .bind(key)
                    .bind(until)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    let (until,): (i64,) = sqlx::query_as(
                        "SELECT blocked_until FROM login_throttle WHERE throttle_key = $1",
                    )
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?;
                    wait = wait.max(until - now);
                }
            }
        }
        if wait > 0 {
            tx.rollback().await?;
            return Ok(Err(wait));
        }
        tx.commit().await?;
        Ok(Ok(reserved))
    }

    /// Takes back an attempt counted in advance (it succeeded): one failure less, and the
    /// wait it set back to what it was, unless a later failure has set another since.
    pub async fn refund_login_attempt(&self, r: &Reserved) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE login_throttle SET failures = failures - 1, \
             blocked_until = CASE WHEN blocked_until = $2 THEN $3 ELSE blocked_until END \
             WHERE throttle_key = $1 AND failures > 0",
        )
        .bind(&r.key)
        .bind(r.until)
        .bind(r.previous)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
            .bind(key)
            .execute(self.db.write())
            .await?;
        Ok(())
    }

    /// Forgets throttle records whose window ended and whose wait is over.
    pub async fn sweep_login_throttle(&self, now: i64, window: i64) -> Result<(), sqlx::Error> {
        self.delete_batched(
            "login_throttle",
            "throttle_key",
            "window_start <= $1 AND blocked_until <= $2",
            &[now - window, now],
        )
        .await?;
        Ok(())
    }
}
