//! The ledger of SSO sessions (`sso_sessions`): the authority on which signed-in sessions
//! exist and which have ended, kept in the database beside the grants whatever backend holds
//! the sessions themselves.
//!
//! A session's row is written at sign-in, before the session store holds the session, and
//! only while the credential the sign-in checked is still current ([`Store::open_session`]).
//! An end is one transaction ([`Store::end_session`]): the row marked ended, the session's
//! unredeemed codes and online grants (with their tokens) revoked, and a back-channel logout
//! queued for every app that joined it. Only then is the session removed from the session
//! store, and the removal is confirmed here later ([`Store::mark_removed`]), so an end
//! interrupted between the steps (a crash, a shutdown, an outage of either store) is finished
//! by the maintenance loop, never lost. Every step is idempotent: an end recorded twice (two
//! instances sweeping, a retry) queues its logouts once.

use super::grants::retrying;
use super::handle::Store;
use super::rows::Val;

/// A tombstone is kept this long after the end: far longer than any code issuance that
/// checked the session just before it ended can take.
const TOMBSTONE_SECS: i64 = 86_400;

/// The credential a sign-in checked, read before the password was hashed.
#[derive(Clone, Copy, Debug)]
pub struct Credential<'a> {
    pub user_id: &'a str,
    pub password_hash: &'a str,
    pub session_epoch: i64,
}

/// One end's statements, in order: the ledger row first (which a code issuance's guard
/// locks, see `store::grants`), then codes, grants and tokens, then the logouts. `$1` the
/// sid, `$2` the time, `$3` the user, `$4` the tombstone's deadline, `$5` the cause.
const END_LEDGER: &str = "INSERT INTO sso_sessions (sid, user_id, expires_at, ended_at) \
    VALUES ($1, $3, $4, $2) \
    ON CONFLICT (sid) DO UPDATE SET ended_at = $2, expires_at = $4 \
    WHERE sso_sessions.ended_at IS NULL";
const END_STEPS: [(&str, usize); 6] = [
    (
        "UPDATE authorization_codes SET revoked_at = $2 WHERE sid = $1 AND revoked_at IS NULL",
        2,
    ),
    (
        "UPDATE grants SET revoked_at = $2 WHERE sid = $1 AND revoked_at IS NULL",
        2,
    ),
    (
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL \
         AND grant_id IN (SELECT grant_id FROM grants WHERE sid = $1)",
        2,
    ),
    (
        "UPDATE access_tokens SET revoked_at = $2 WHERE revoked_at IS NULL \
         AND grant_id IN (SELECT grant_id FROM grants WHERE sid = $1)",
        2,
    ),
    (
        "INSERT INTO logout_deliveries (id, sid, client_id, user_id, uri, cause, state, \
         attempts, next_attempt_at, created_at) \
         SELECT s.sid || ' ' || s.client_id, s.sid, s.client_id, $3, c.backchannel_logout_uri, \
         $5, 'pending', 0, $2, $2 \
         FROM session_clients s JOIN clients c ON c.client_id = s.client_id \
         WHERE s.sid = $1 AND c.backchannel_logout_uri IS NOT NULL \
         ON CONFLICT (id) DO NOTHING",
        5,
    ),
    ("DELETE FROM session_clients WHERE sid = $1", 1),
];
/// The index of the step that queues the logouts.
const QUEUE_STEP: usize = 4;

impl Store {
    /// Records session `sid` of the credential's user as live until `expires_at`, if the
    /// credential is still current (same password hash, same sessions epoch, account enabled)
    /// and the session has not ended. False, and nothing written, otherwise. The check locks
    /// the user's row until the record commits, so a change that moves the epoch on either
    /// waits for this record (and then finds it among the user's sessions) or comes first
    /// (and this check fails).
    pub async fn open_session(
        &self,
        sid: &str,
        credential: Credential<'_>,
        expires_at: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.write().begin().await?;
        let current = sqlx::query(
            "UPDATE users SET session_epoch = session_epoch \
             WHERE id = $1 AND password_hash = $2 AND session_epoch = $3 AND disabled = 0",
        )
        .bind(credential.user_id)
        .bind(credential.password_hash)
        .bind(credential.session_epoch)
        .execute(&mut *tx)
        .await?;
        if current.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let done = sqlx::query(
            "INSERT INTO sso_sessions (sid, user_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sid) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE sso_sessions.ended_at IS NULL AND sso_sessions.user_id = excluded.user_id",
        )
        .bind(sid)
        .bind(credential.user_id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Whether session `sid` is recorded and has not ended.
    pub async fn session_open(&self, sid: &str) -> Result<bool, sqlx::Error> {
        Ok(self.open_session_user(sid).await?.is_some())
    }

    /// The user of session `sid` if it is recorded and has not ended.
    pub async fn open_session_user(&self, sid: &str) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String,)> = self
            .db
            .read_optional(
                "SELECT user_id FROM sso_sessions WHERE sid = $1 AND ended_at IS NULL",
                &[sid.into()],
            )
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// The sessions of `user_id` recorded and not ended.
    pub async fn open_sessions_of(&self, user_id: &str) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT sid FROM sso_sessions WHERE user_id = $1 AND ended_at IS NULL")
                .bind(user_id)
                .fetch_all(self.db.read())
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Moves the user's sessions epoch on ("sign out everywhere"), so that a sign-in already
    /// under way does not record its session.
    pub async fn bump_session_epoch(&self, user_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = $1")
            .bind(user_id)
            .execute(self.db.write())
            .await?;
        Ok(())
    }

    /// Records the end of session `sid` of `user_id` (see the module documentation), in one
    /// transaction. `Some(logouts queued)` if this call ended it; `None` if it had already
    /// ended (nothing is done twice).
    pub async fn end_session(
        &self,
        sid: &str,
        user_id: &str,
        cause: &str,
        now: i64,
    ) -> Result<Option<u64>, sqlx::Error> {
        let params: [Val; 5] = [
            sid.into(),
            now.into(),
            user_id.into(),
            (now + TOMBSTONE_SECS).into(),
            cause.into(),
        ];
        retrying(|| self.end_session_once(&params)).await
    }

    async fn end_session_once(&self, params: &[Val; 5]) -> Result<Option<u64>, sqlx::Error> {
        let bind = |sql: &'static str, n: usize| {
            params[..n].iter().fold(sqlx::query(sql), |q, v| v.bind(q))
        };
        let mut tx = self.db.write().begin().await?;
        if bind(END_LEDGER, 4).execute(&mut *tx).await?.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut queued = 0;
        for (i, (sql, n)) in END_STEPS.iter().enumerate() {
            let done = bind(sql, *n).execute(&mut *tx).await?;
            if i == QUEUE_STEP {
                queued = done.rows_affected();
            }
        }
        tx.commit().await?;
        self.revoked();
        Ok(Some(queued))
    }

    /// Up to `limit` sessions whose end is recorded but whose removal from the session store
    /// was not yet confirmed.
    pub async fn unremoved_ends(&self, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT sid FROM sso_sessions \
             WHERE ended_at IS NOT NULL AND removed_at IS NULL ORDER BY ended_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.read())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Confirms that ended session `sid` is gone from the session store (nothing if it has
    /// no ledger row: a pre-login session).
    pub async fn mark_removed(&self, sid: &str, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE sso_sessions SET removed_at = $2 WHERE sid = $1 AND removed_at IS NULL",
        )
        .bind(sid)
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    /// Up to `limit` sessions recorded live whose lifetime is over at `now` (`(sid,
    /// user_id)`): sessions the session store lost without a sweep reporting them (Redis
    /// data lost in a failover, or kept past its grace while every instance was down).
    pub async fn overdue_sessions(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT sid, user_id FROM sso_sessions \
             WHERE ended_at IS NULL AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.db.read())
        .await
    }
}
