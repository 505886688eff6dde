//! `user_totp` and `recovery_codes`: a user's second factors. Every check that spends
//! something (a TOTP time step, a recovery code) is one statement that both checks and
//! writes, so a code is accepted once whatever the number of instances and requests racing.

use super::handle::Store;
use sqlx::FromRow;

/// A user's authenticator app. Its `Debug` leaves the seed out.
#[derive(Clone, FromRow)]
pub struct TotpFactor {
    /// The seed, base32 (what the authenticator app was given).
    pub secret: String,
    pub created_at: i64,
    /// When a first code proved it; `None` while it is being set up.
    pub confirmed_at: Option<i64>,
    /// The highest time step a code was accepted for.
    pub last_step: i64,
}

impl std::fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpFactor")
            .field("created_at", &self.created_at)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// `user_id`'s authenticator app, confirmed or being set up.
    pub async fn totp_factor(&self, user_id: &str) -> Result<Option<TotpFactor>, sqlx::Error> {
        sqlx::query_as(
            "SELECT secret, created_at, confirmed_at, last_step FROM user_totp WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.db.read())
        .await
    }

    /// Starts setting up an authenticator app with seed `secret`, replacing one being set up;
    /// false (nothing written) when one is confirmed already.
    pub async fn begin_totp(
        &self,
        user_id: &str,
        secret: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO user_totp (user_id, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
             created_at = excluded.created_at WHERE user_totp.confirmed_at IS NULL",
        )
        .bind(user_id)
        .bind(secret)
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Confirms the app being set up with seed `secret` (a code for time `step` proved it)
    /// and stores its recovery codes' hashes, in one transaction; false if that seed is not
    /// the one being set up any more (set up anew, confirmed or removed meanwhile).
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        secret: &str,
        step: i64,
        recovery_hashes: &[String],
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.write().begin().await?;
        let done = sqlx::query(
            "UPDATE user_totp SET confirmed_at = $3, last_step = $4 \
             WHERE user_id = $1 AND secret = $2 AND confirmed_at IS NULL",
        )
        .bind(user_id)
        .bind(secret)
        .bind(now)
        .bind(step)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for hash in recovery_hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Spends time step `step` of `user_id`'s confirmed app: true if no code of this step or
    /// a later one was accepted before (RFC 6238 §5.2: each code once).
    pub async fn spend_totp_step(&self, user_id: &str, step: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE user_totp SET last_step = $2 \
             WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2",
        )
        .bind(user_id)
        .bind(step)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Spends recovery code `code_hash` of `user_id`: true if it was theirs and unspent.
    pub async fn spend_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 \
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(code_hash)
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many of `user_id`'s recovery codes are unspent.
    pub async fn recovery_codes_left(&self, user_id: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(self.db.read())
        .await
    }

    /// Removes `user_id`'s authenticator app and recovery codes; false if there was no app.
    pub async fn remove_totp(&self, user_id: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.write().begin().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
