//! `pushed_requests`: authorization requests pushed by their clients (RFC 9126), kept under
//! the hash of their `request_uri` until taken once or expired.

use super::handle::Store;

impl Store {
    /// Keeps a pushed request (its parameters, form-encoded) for `client_id`.
    pub async fn insert_pushed(
        &self,
        request_uri_hash: &str,
        client_id: &str,
        params: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO pushed_requests (request_uri_hash, client_id, params, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(request_uri_hash)
        .bind(client_id)
        .bind(params)
        .bind(now)
        .bind(expires_at)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    /// Removes the pushed request `request_uri_hash` of `client_id` and returns it if it was in
    /// date: one statement, so of two concurrent takes one gets it. Another client's
    /// `request_uri` is neither returned nor spent.
    pub async fn take_pushed(
        &self,
        request_uri_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "DELETE FROM pushed_requests WHERE request_uri_hash = $1 AND client_id = $2 \
             RETURNING params, expires_at",
        )
        .bind(request_uri_hash)
        .bind(client_id)
        .fetch_optional(self.db.write())
        .await?;
        Ok(row.and_then(|(params, expires_at)| (expires_at > now).then_some(params)))
    }

    /// Deletes pushed requests that have expired.
    pub async fn sweep_pushed(&self, now: i64) -> Result<u64, sqlx::Error> {
        self.delete_batched(
            "pushed_requests",
            "request_uri_hash",
            "expires_at <= $1",
            &[now],
        )
        .await
    }
}
