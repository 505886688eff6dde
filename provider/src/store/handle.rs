//! [`Store`]: the handle to the provider database, its pools and its group commit.

use super::batch;
use super::rows::Insert;
use infra::Db;
use std::sync::Arc;
use tokio::sync::Notify;

/// Handle to the provider database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(super) db: Db,
    pub(super) batch: batch::Batcher,
    /// Told after every commit that revoked access tokens in this process, so that the
    /// revocation feed of APIs looks at once rather than at its next poll.
    revoked: Arc<Notify>,
}

impl Store {
    /// Connects to `database_url` (`sqlite://…?mode=rwc` or `postgres://…`).
    pub async fn connect(database_url: &str) -> Result<Self, sqlx::Error> {
        Self::connect_waiting(database_url, std::time::Duration::from_secs(1)).await
    }

    /// [`Store::connect`] for the command line: a busy database is waited for up to `acquire`
    /// per statement rather than failing after a second, as a request would.
    pub async fn connect_waiting(
        database_url: &str,
        acquire: std::time::Duration,
    ) -> Result<Self, sqlx::Error> {
        // SQLite: one writer and four readers (CPU-bound, in-process); PostgreSQL: sixteen.
        let max = if database_url.starts_with("sqlite:") {
            4
        } else {
            16
        };
        let db = Db::connect_waiting(database_url, max, acquire).await?;
        Ok(Self {
            batch: batch::Batcher::spawn(db.clone()),
            db,
            revoked: Arc::new(Notify::new()),
        })
    }

    /// Inserts `rows` atomically, in one transaction with other requests' rows (see
    /// [`batch`]); returns once they are committed.
    pub async fn insert(&self, rows: Vec<Insert>) -> Result<(), sqlx::Error> {
        self.batch.insert(rows).await
    }

    /// Creates or upgrades every table the provider uses (its own and the sessions table).
    /// Safe when several instances start at once: sqlx serialises migrations with a lock.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        let mut migrator = sqlx::migrate!("../migrations/provider");
        migrator.set_ignore_missing(true);
        migrator.run(self.db.write()).await?;
        sessions::SqlStore::new(self.db.clone()).migrate().await
    }

    /// Every schema migration this build knows (the provider's and the session table's):
    /// version and checksum, oldest first.
    pub fn schema() -> Vec<(i64, Vec<u8>)> {
        let migrator = sqlx::migrate!("../migrations/provider");
        let mut all: Vec<(i64, Vec<u8>)> = migrator
            .iter()
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect();
        all.extend(sessions::SqlStore::schema());
        all.sort_unstable();
        all
    }

    /// The provider's first schema version: every database of its has it.
    pub fn first_schema_version() -> Option<i64> {
        let migrator = sqlx::migrate!("../migrations/provider");
        migrator.iter().map(|m| m.version).min()
    }

    /// Completes after a revocation committed in this process (one that came while nobody
    /// waited is kept for the next wait).
    pub async fn revocation_committed(&self) {
        self.revoked.notified().await;
    }

    /// Called after a commit that may have revoked access tokens.
    pub(super) fn revoked(&self) {
        self.revoked.notify_one();
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The database server's clock (Unix seconds), to compare with this machine's; `None`
    /// for SQLite, which has no clock of its own (it is this machine's).
    pub async fn database_time(&self) -> Result<Option<f64>, sqlx::Error> {
        if self.db.is_sqlite() {
            return Ok(None);
        }
        sqlx::query_scalar("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)")
            .fetch_one(self.db.read())
            .await
            .map(Some)
    }

    /// PostgreSQL's replication as this server sees it: whether it is a standby, and how
    /// many standbys stream from it; `None` for SQLite.
    pub async fn replication(&self) -> Result<Option<(bool, i64)>, sqlx::Error> {
        if self.db.is_sqlite() {
            return Ok(None);
        }
        let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(self.db.read())
            .await?;
        let streaming: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_replication")
            .fetch_one(self.db.read())
            .await?;
        Ok(Some((standby, streaming)))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        self.db.ping().await
    }
}

/// Whether an error is a unique-constraint violation (an id or name already taken).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
