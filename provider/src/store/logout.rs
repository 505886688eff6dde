//! `session_clients` and `logout_deliveries`: who joined an SSO session, and the outbox of
//! back-channel logout deliveries when it ends.

use super::Store;
use super::batch::{Insert, Table};
use sqlx::FromRow;

/// Delivery states.
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// One logout token to deliver (or delivered).
#[derive(Clone, Debug, FromRow)]
pub struct Delivery {
    pub id: String,
    pub sid: String,
    pub client_id: String,
    pub user_id: String,
    pub uri: String,
    pub cause: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, sid, client_id, user_id, uri, cause, state, attempts, \
    next_attempt_at, last_error, created_at, delivered_at";

static SESSION_CLIENTS: Table = Table {
    head: "INSERT INTO session_clients (sid, client_id, user_id, joined_at) VALUES",
    columns: 4,
    tail: " ON CONFLICT (sid, client_id) DO NOTHING",
};

impl Insert {
    /// That `client_id` obtained a code through SSO session `sid` (kept once per pair).
    pub fn session_member(sid: &str, client_id: &str, user_id: &str, now: i64) -> Self {
        Self::new(
            &SESSION_CLIENTS,
            vec![sid.into(), client_id.into(), user_id.into(), now.into()],
        )
    }
}

impl Store {
    /// The names of the clients that joined `sid`, in joining order.
    pub async fn session_client_names(&self, sid: &str) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT c.name FROM session_clients s JOIN clients c ON c.client_id = s.client_id \
             WHERE s.sid = $1 ORDER BY s.joined_at, c.name",
        )
        .bind(sid)
        .fetch_all(self.db.read())
        .await?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// Queues a logout delivery for every client of the ended session `sid` that registered a
    /// back-channel logout URI, and forgets the session's clients. Idempotent: a session that
    /// is reported ended twice (two instances sweeping) is delivered once.
    pub async fn enqueue_logouts(
        &self,
        sid: &str,
        user_id: &str,
        cause: &str,
        now: i64,
    ) -> Result<u64, sqlx::Error> {
        let mut tx = self.db.write().begin().await?;
        let queued = sqlx::query(
            "INSERT INTO logout_deliveries (id, sid, client_id, user_id, uri, cause, state, \
             attempts, next_attempt_at, created_at) \
             SELECT s.sid || ' ' || s.client_id, s.sid, s.client_id, $2, c.backchannel_logout_uri, \
             $3, 'pending', 0, $4, $4 \
             FROM session_clients s JOIN clients c ON c.client_id = s.client_id \
             WHERE s.sid = $1 AND c.backchannel_logout_uri IS NOT NULL \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(sid)
        .bind(user_id)
        .bind(cause)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM session_clients WHERE sid = $1")
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Claims up to `limit` due deliveries for `lease_secs` (their `next_attempt_at` moves to
    /// `now + lease_secs`, so no other instance takes them meanwhile).
    pub async fn claim_due_deliveries(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE logout_deliveries SET next_attempt_at = $2 \
             WHERE id IN (SELECT id FROM logout_deliveries WHERE state = 'pending' \
               AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3) \
             AND state = 'pending' AND next_attempt_at <= $1 \
             RETURNING {DELIVERY_COLUMNS}"
        )))
        .bind(now)
        .bind(now + lease_secs)
        .bind(limit)
        .fetch_all(self.db.write())
        .await
    }

    /// Records an attempt's outcome: delivered, or the next attempt (or failure) with its error.
    pub async fn record_delivery(
        &self,
        id: &str,
        state: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE logout_deliveries SET state = $2, attempts = $3, next_attempt_at = $4, \
             last_error = $5, delivered_at = CASE WHEN $2 = 'delivered' THEN $6 ELSE NULL END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(error)
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    /// A user's deliveries since `since`, newest first.
    pub async fn deliveries_for_user(
        &self,
        user_id: &str,
        since: i64,
    ) -> Result<Vec<Delivery>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM logout_deliveries \
             WHERE user_id = $1 AND created_at >= $2 ORDER BY created_at DESC, client_id LIMIT 50"
        )))
        .bind(user_id)
        .bind(since)
        .fetch_all(self.db.read())
        .await
    }
}
