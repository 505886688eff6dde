//! `session_clients` and `logout_deliveries`: who joined an SSO session, and the outbox of
//! back-channel logout deliveries when it ends.

use super::handle::Store;
use super::rows::{Insert, Table};
use crate::types::DeliveryState;
use sqlx::FromRow;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Finished back-channel logout deliveries are kept this long ("Your sessions" shows the last
/// day's), then forgotten, so the outbox does not grow for ever.
pub const DELIVERY_RETENTION_SECS: i64 = 7 * 86_400;

/// One logout token to deliver (or delivered).
#[derive(Clone, Debug, FromRow)]
pub struct Delivery {
    pub id: String,
    pub sid: String,
    pub client_id: String,
    pub user_id: String,
    pub uri: String,
    pub cause: String,
    #[sqlx(try_from = "String")]
    pub state: DeliveryState,
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
    /// The names of the clients that joined each of `sids`, in joining order, in one query.
    pub async fn session_client_names(
        &self,
        sids: &[&str],
    ) -> Result<HashMap<String, Vec<String>>, sqlx::Error> {
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        // At most this many sessions per statement (far under either database's limit).
        for chunk in sids.chunks(500) {
            let mut sql = String::from(
                "SELECT s.sid, c.name FROM session_clients s \
                 JOIN clients c ON c.client_id = s.client_id WHERE s.sid IN (",
            );
            for i in 1..=chunk.len() {
                let _ = write!(sql, "{}${i}", if i == 1 { "" } else { ", " });
            }
            sql.push_str(") ORDER BY s.sid, s.joined_at, c.name");
            let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
            for sid in chunk {
                query = query.bind(*sid);
            }
            for (sid, name) in query.fetch_all(self.db.read()).await? {
                names.entry(sid).or_default().push(name);
            }
        }
        Ok(names)
    }

    /// The front-channel logout URIs (with whether each wants `iss` and `sid`) of the apps
    /// that joined session `sid` and registered one (Front-Channel Logout §2), in joining
    /// order; read before the session's end forgets who joined it.
    pub async fn frontchannel_targets(
        &self,
        sid: &str,
    ) -> Result<Vec<(String, bool)>, sqlx::Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.frontchannel_logout_uri, c.frontchannel_logout_session_required \
             FROM session_clients s JOIN clients c ON c.client_id = s.client_id \
             WHERE s.sid = $1 AND c.frontchannel_logout_uri IS NOT NULL \
             ORDER BY s.joined_at, c.client_id",
        )
        .bind(sid)
        .fetch_all(self.db.read())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(uri, with)| (uri, with != 0))
            .collect())
    }

    /// Queues a logout delivery to `client_id` for every session of `user_id` it joined (the
    /// app was disconnected; the sessions themselves go on), and forgets those memberships.
    /// Each delivery is named after the session, the client and the time, so that the
    /// session's own end later is delivered as well.
    pub async fn enqueue_app_logouts(
        &self,
        user_id: &str,
        client_id: &str,
        cause: &str,
        now: i64,
    ) -> Result<u64, sqlx::Error> {
        let mut tx = self.db.write().begin().await?;
        let queued = sqlx::query(
            "INSERT INTO logout_deliveries (id, sid, client_id, user_id, uri, cause, state, \
             attempts, next_attempt_at, created_at) \
             SELECT s.sid || ' ' || s.client_id || ' ' || $3 || ' ' || CAST($4 AS TEXT), \
             s.sid, s.client_id, $1, c.backchannel_logout_uri, $3, 'pending', 0, $4, $4 \
             FROM session_clients s JOIN clients c ON c.client_id = s.client_id \
             WHERE s.user_id = $1 AND s.client_id = $2 AND c.backchannel_logout_uri IS NOT NULL \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(cause)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM session_clients WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Claims up to `limit` due deliveries for `lease_secs` (their `next_attempt_at` moves to
    /// `now + lease_secs`, which is the claim's token, and no other instance takes them
    /// meanwhile): at most `per_client` of any one client, first attempts before retries,
    /// oldest first, none of the clients in `skip` (full here).
    pub async fn claim_due_deliveries(
        &self,
        now: i64,
        lease_secs: i64,
        limit: usize,
        per_client: usize,
        skip: &[String],
    ) -> Result<Vec<Delivery>, sqlx::Error> {
        let mut skipped = String::new();
        if !skip.is_empty() {
            skipped.push_str(" AND client_id NOT IN (");
            for i in 0..skip.len() {
                let _ = write!(skipped, "{}${}", if i == 0 { "" } else { ", " }, i + 5);
            }
            skipped.push(')');
        }
        let order = "CASE WHEN attempts = 0 THEN 0 ELSE 1 END, next_attempt_at";
        let sql = format!(
            "UPDATE logout_deliveries SET next_attempt_at = $2 \
             WHERE id IN (SELECT id FROM (SELECT id, attempts, next_attempt_at, \
                 ROW_NUMBER() OVER (PARTITION BY client_id ORDER BY {order}) AS turn \
                 FROM logout_deliveries WHERE state = 'pending' \
                 AND next_attempt_at <= $1{skipped}) due \
               WHERE turn <= $4 ORDER BY {order} LIMIT $3) \
             AND state = 'pending' AND next_attempt_at <= $1 \
             RETURNING {DELIVERY_COLUMNS}"
        );
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(now + lease_secs)
            .bind(as_i64(limit))
            .bind(as_i64(per_client));
        for client_id in skip {
            query = query.bind(client_id);
        }
        query.fetch_all(self.db.write()).await
    }

    /// Hands claimed deliveries back, due again at `at` (their host was busy).
    pub async fn postpone_deliveries(&self, ids: &[String], at: i64) -> Result<(), sqlx::Error> {
        for chunk in ids.chunks(500) {
            let mut sql = String::from(
                "UPDATE logout_deliveries SET next_attempt_at = $1 \
                 WHERE state = 'pending' AND id IN (",
            );
            for i in 0..chunk.len() {
                let _ = write!(sql, "{}${}", if i == 0 { "" } else { ", " }, i + 2);
            }
            sql.push(')');
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(at);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(self.db.write()).await?;
        }
        Ok(())
    }

    /// Records an attempt's outcome: delivered, or the next attempt (or failure) with its
    /// error; only while the delivery is still under the claim `claim` (its `next_attempt_at`
    /// when claimed), so a slow attempt whose lease ran out cannot overwrite a newer one's
    /// outcome. Whether it was recorded.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_delivery(
        &self,
        id: &str,
        claim: i64,
        state: DeliveryState,
        attempts: i64,
        next_attempt_at: i64,
        error: Option<&str>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE logout_deliveries SET state = $2, attempts = $3, next_attempt_at = $4, \
             last_error = $5, delivered_at = CASE WHEN $2 = 'delivered' THEN $6 ELSE NULL END \
             WHERE id = $1 AND state = 'pending' AND next_attempt_at = $7",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(error)
        .bind(now)
        .bind(claim)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets finished deliveries (delivered, or given up) created before `before`; a
    /// pending one is kept whatever its age. Returns how many were forgotten.
    pub async fn sweep_deliveries(&self, before: i64) -> Result<u64, sqlx::Error> {
        // 'pending' is `DeliveryState::Pending`, written out: the batches bind numbers only.
        debug_assert_eq!(DeliveryState::Pending.as_str(), "pending");
        self.delete_batched(
            "logout_deliveries",
            "id",
            "state <> 'pending' AND created_at < $1",
            &[before],
        )
        .await
    }

    /// A user's deliveries since `since`, newest first, with the name of each one's client
    /// (if it is still registered).
    pub async fn deliveries_for_user(
        &self,
        user_id: &str,
        since: i64,
    ) -> Result<Vec<(Delivery, Option<String>)>, sqlx::Error> {
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            delivery: Delivery,
            client_name: Option<String>,
        }
        let columns = DELIVERY_COLUMNS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {columns}, c.name AS client_name FROM logout_deliveries d \
             LEFT JOIN clients c ON c.client_id = d.client_id \
             WHERE d.user_id = $1 AND d.created_at >= $2 \
             ORDER BY d.created_at DESC, d.client_id LIMIT 50"
        )))
        .bind(user_id)
        .bind(since)
        .fetch_all(self.db.read())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.delivery, r.client_name))
            .collect())
    }
}
