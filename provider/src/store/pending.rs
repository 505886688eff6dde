//! `pending_requests`: authorization requests waiting for a person, one row each (stored
//! under the hash of their id, bound to the browser session's handle). Each operation is one
//! statement, so concurrent tabs never overwrite one another, and a request is taken at most
//! once.

use super::handle::Store;

impl Store {
    /// Keeps a pending request (its JSON) for `session_handle` until `expires_at`, and drops
    /// that session's oldest ones beyond `keep`.
    pub async fn insert_pending(
        &self,
        id_hash: &str,
        session_handle: &str,
        request: &str,
        now: i64,
        expires_at: i64,
        keep: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO pending_requests (id_hash, session_handle, request, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(session_handle)
        .bind(request)
        .bind(now)
        .bind(expires_at)
        .execute(self.db.write())
        .await?;
        sqlx::query(
            "DELETE FROM pending_requests WHERE session_handle = $1 AND id_hash NOT IN \
             (SELECT id_hash FROM pending_requests WHERE session_handle = $1 \
              ORDER BY created_at DESC, id_hash LIMIT $2)",
        )
        .bind(session_handle)
        .bind(keep)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    /// The pending request `id_hash` of `session_handle`, if it is in date.
    pub async fn pending(
        &self,
        id_hash: &str,
        session_handle: &str,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT request FROM pending_requests \
             WHERE id_hash = $1 AND session_handle = $2 AND expires_at > $3",
        )
        .bind(id_hash)
        .bind(session_handle)
        .bind(now)
        .fetch_optional(self.db.read())
        .await?;
        Ok(row.map(|(r,)| r))
    }

    /// Removes the pending request `id_hash` of `session_handle` and returns it if it was in
    /// date: one statement, so of two concurrent takes one gets it.
    pub async fn take_pending(
        &self,
        id_hash: &str,
        session_handle: &str,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "DELETE FROM pending_requests WHERE id_hash = $1 AND session_handle = $2 \
             RETURNING request, expires_at",
        )
        .bind(id_hash)
        .bind(session_handle)
        .fetch_optional(self.db.write())
        .await?;
        Ok(row.and_then(|(r, expires_at)| (expires_at > now).then_some(r)))
    }

    /// Hands the pending requests of one browser session over to its successor (another
    /// person signed in on the browser).
    pub async fn move_pending(&self, from: &str, to: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE pending_requests SET session_handle = $2 WHERE session_handle = $1")
            .bind(from)
            .bind(to)
            .execute(self.db.write())
            .await?;
        Ok(())
    }

    /// Deletes pending requests out of date.
    pub async fn sweep_pending(&self, now: i64) -> Result<(), sqlx::Error> {
        self.delete_batched("pending_requests", "id_hash", "expires_at <= $1", &[now])
            .await?;
        Ok(())
    }
}
