//! SQL backend over a [`Db`] (the sqlx `Any` driver): SQLite (the embedded default) or PostgreSQL, with one
//! portable SQL string per operation. Expiry is part of every read's `WHERE`, so an expired
//! row is never returned even before the sweeper deletes it.

use crate::model::StoredSession;
use crate::store::{SessionStore, StoreError};
use async_trait::async_trait;
use infra::Db;
use sqlx::FromRow;

/// Sessions in the `sessions` table (see `migrations/sessions/`).
#[derive(Clone)]
pub struct SqlStore {
    db: Db,
}

const COLUMNS: &str = "id_hash, handle, user_id, external_key, data, csrf_token, created_at, \
    last_seen_at, idle_expires_at, absolute_expires_at, auth_time, user_agent, client_addr, version";

#[derive(FromRow)]
struct SessionRow {
    id_hash: String,
    handle: String,
    user_id: Option<String>,
    external_key: Option<String>,
    data: String,
    csrf_token: String,
    created_at: i64,
    last_seen_at: i64,
    idle_expires_at: i64,
    absolute_expires_at: i64,
    auth_time: Option<i64>,
    user_agent: Option<String>,
    client_addr: Option<String>,
    version: i64,
}

infra::lite_row!(SessionRow {
    id_hash,
    handle,
    user_id,
    external_key,
    data,
    csrf_token,
    created_at,
    last_seen_at,
    idle_expires_at,
    absolute_expires_at,
    auth_time,
    user_agent,
    client_addr,
    version,
});

impl TryFrom<SessionRow> for StoredSession {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id_hash: r.id_hash,
            handle: r.handle,
            user_id: r.user_id,
            external_key: r.external_key,
            data: serde_json::from_str(&r.data)?,
            csrf_token: r.csrf_token,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            idle_expires_at: r.idle_expires_at,
            absolute_expires_at: r.absolute_expires_at,
            auth_time: r.auth_time,
            user_agent: r.user_agent,
            client_addr: r.client_addr,
            version: r.version,
        })
    }
}

fn rows(rows: Vec<SessionRow>) -> Result<Vec<StoredSession>, StoreError> {
    rows.into_iter().map(StoredSession::try_from).collect()
}

impl SqlStore {
    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("../migrations/sessions")
    }

    /// The schema migrations [`SqlStore::migrate`] knows: version and checksum.
    pub fn schema() -> Vec<(i64, Vec<u8>)> {
        Self::migrator()
            .iter()
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect()
    }

    /// Uses `db`; call [`SqlStore::migrate`] once at start-up.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Creates or upgrades the `sessions` table. Safe to run from several processes at once
    /// (sqlx takes an advisory lock on PostgreSQL), and beside other crates' migrations in the
    /// same database (missing versions from those are ignored).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        let mut migrator = Self::migrator();
        migrator.set_ignore_missing(true);
        migrator.run(self.db.write()).await
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert(&self, s: &StoredSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, handle, user_id, external_key, data, csrf_token, \
             created_at, last_seen_at, idle_expires_at, absolute_expires_at, auth_time, \
             user_agent, client_addr, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&s.id_hash)
        .bind(&s.handle)
        .bind(&s.user_id)
        .bind(&s.external_key)
        .bind(s.data.to_string())
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.idle_expires_at)
        .bind(s.absolute_expires_at)
        .bind(s.auth_time)
        .bind(&s.user_agent)
        .bind(&s.client_addr)
        .bind(s.version)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    async fn get(&self, id_hash: &str, now: i64) -> Result<Option<StoredSession>, StoreError> {
        let row: Option<SessionRow> = self
            .db
            .read_optional(
                &format!(
                    "SELECT {COLUMNS} FROM sessions \
                     WHERE id_hash = $1 AND idle_expires_at > $2 AND absolute_expires_at > $2"
                ),
                &[id_hash.into(), now.into()],
            )
            .await?;
        row.map(StoredSession::try_from).transpose()
    }

    async fn update(
        &self,
        old_hash: &str,
        s: &StoredSession,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET id_hash = $2, handle = $3, user_id = $4, external_key = $5, \
             data = $6, csrf_token = $7, created_at = $8, last_seen_at = $9, \
             idle_expires_at = $10, absolute_expires_at = $11, auth_time = $12, \
             user_agent = $13, client_addr = $14, version = $16 \
             WHERE id_hash = $1 AND idle_expires_at > $15 AND absolute_expires_at > $15 \
             AND version = $16 - 1",
        )
        .bind(old_hash)
        .bind(&s.id_hash)
        .bind(&s.handle)
        .bind(&s.user_id)
        .bind(&s.external_key)
        .bind(s.data.to_string())
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.idle_expires_at)
        .bind(s.absolute_expires_at)
        .bind(s.auth_time)
        .bind(&s.user_agent)
        .bind(&s.client_addr)
        .bind(now)
        .bind(s.version)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch(&self, id_hash: &str, now: i64, idle_expires_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sessions SET last_seen_at = $2, idle_expires_at = $3 \
             WHERE id_hash = $1 AND idle_expires_at > $2 AND absolute_expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .bind(idle_expires_at)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    async fn remove(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "DELETE FROM sessions WHERE id_hash = $1 RETURNING {COLUMNS}"
        )))
        .bind(id_hash)
        .fetch_optional(self.db.write())
        .await?;
        row.map(StoredSession::try_from).transpose()
    }

    async fn remove_by_handle(&self, handle: &str) -> Result<Option<StoredSession>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "DELETE FROM sessions WHERE handle = $1 RETURNING {COLUMNS}"
        )))
        .bind(handle)
        .fetch_optional(self.db.write())
        .await?;
        row.map(StoredSession::try_from).transpose()
    }

    async fn get_by_handle(&self, handle: &str) -> Result<Option<StoredSession>, StoreError> {
        let row: Option<SessionRow> = self
            .db
            .read_optional(
                &format!("SELECT {COLUMNS} FROM sessions WHERE handle = $1"),
                &[handle.into()],
            )
            .await?;
        row.map(StoredSession::try_from).transpose()
    }

    async fn list_expired(&self, now: i64, limit: usize) -> Result<Vec<StoredSession>, StoreError> {
        rows(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM sessions \
                 WHERE idle_expires_at <= $1 OR absolute_expires_at <= $1 LIMIT $2"
            )))
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.db.read())
            .await?,
        )
    }

    async fn mark_ended(
        &self,
        marker: &str,
        ended_at: i64,
        keep_until: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ended_keys (marker, ended_at, keep_until) VALUES ($1, $2, $3) \
             ON CONFLICT (marker) DO UPDATE SET \
             ended_at = excluded.ended_at, keep_until = excluded.keep_until",
        )
        .bind(marker)
        .bind(ended_at)
        .bind(keep_until)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    async fn ended_at(&self, marker: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = self
            .db
            .read_optional(
                "SELECT ended_at FROM ended_keys WHERE marker = $1 AND keep_until > $2",
                &[marker.into(), now.into()],
            )
            .await?;
        Ok(row.map(|r| r.0))
    }

    async fn remove_by_user(&self, user_id: &str) -> Result<Vec<StoredSession>, StoreError> {
        rows(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "DELETE FROM sessions WHERE user_id = $1 RETURNING {COLUMNS}"
            )))
            .bind(user_id)
            .fetch_all(self.db.write())
            .await?,
        )
    }

    async fn remove_by_external_key(&self, key: &str) -> Result<Vec<StoredSession>, StoreError> {
        rows(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "DELETE FROM sessions WHERE external_key = $1 RETURNING {COLUMNS}"
            )))
            .bind(key)
            .fetch_all(self.db.write())
            .await?,
        )
    }

    async fn list_by_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<StoredSession>, StoreError> {
        rows(
            self.db
                .read_all(
                    &format!(
                        "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 \
                         AND idle_expires_at > $2 AND absolute_expires_at > $2 ORDER BY created_at"
                    ),
                    &[user_id.into(), now.into()],
                )
                .await?,
        )
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }

    async fn remove_expired(&self, now: i64) -> Result<Vec<StoredSession>, StoreError> {
        sqlx::query("DELETE FROM ended_keys WHERE keep_until <= $1")
            .bind(now)
            .execute(self.db.write())
            .await?;
        rows(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "DELETE FROM sessions WHERE idle_expires_at <= $1 OR absolute_expires_at <= $1 \
                 RETURNING {COLUMNS}"
            )))
            .bind(now)
            .fetch_all(self.db.write())
            .await?,
        )
    }
}
