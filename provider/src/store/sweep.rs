//! Deleting what has expired, in bounded batches (README "Hostile clients" 5): each statement
//! removes at most [`SWEEP_BATCH`] rows, chosen by primary key, so no sweep holds the write
//! lock (SQLite's one writer, PostgreSQL's row locks) for long however much piled up, and a
//! sweep that is stopped half-way has done its part.

use super::handle::Store;
use sqlx::AssertSqlSafe;

/// Rows deleted by one statement, at most.
pub const SWEEP_BATCH: i64 = 1000;

impl Store {
    /// Deletes the rows of `table` (primary key `key`, one column or a parenthesised list)
    /// that match `condition`, whose placeholders `$1`, `$2`, … are `binds`; a batch at a
    /// time. Returns how many were deleted. `table`, `key` and `condition` are the caller's
    /// constants, never input.
    pub(super) async fn delete_batched(
        &self,
        table: &str,
        key: &str,
        condition: &str,
        binds: &[i64],
    ) -> Result<u64, sqlx::Error> {
        let limit = binds.len() + 1;
        let columns = key.trim_start_matches('(').trim_end_matches(')');
        let sql = format!(
            "DELETE FROM {table} WHERE {key} IN \
             (SELECT {columns} FROM {table} WHERE {condition} LIMIT ${limit})"
        );
        let mut deleted = 0;
        loop {
            let mut query = sqlx::query(AssertSqlSafe(sql.as_str()));
            for b in binds {
                query = query.bind(*b);
            }
            let done = query
                .bind(SWEEP_BATCH)
                .execute(self.db.write())
                .await?
                .rows_affected();
            deleted += done;
            if done < u64::try_from(SWEEP_BATCH).unwrap_or(u64::MAX) {
                return Ok(deleted);
            }
        }
    }

    /// Forgets which apps joined sessions that are over, where the session's end did not
    /// (memberships are removed with the session's end; this catches any left behind, such as
    /// those of sessions from before the session ledger): a membership older than
    /// `older_than` (longer than any session lives) whose session has no live ledger row.
    pub async fn sweep_memberships(&self, older_than: i64) -> Result<u64, sqlx::Error> {
        self.delete_batched(
            "session_clients",
            "(sid, client_id)",
            "joined_at < $1 AND NOT EXISTS (SELECT 1 FROM sso_sessions l \
             WHERE l.sid = session_clients.sid AND l.ended_at IS NULL)",
            &[older_than],
        )
        .await
    }
}
