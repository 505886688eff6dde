//! The provider's durable state over one [`Db`] (the sqlx `Any` driver): SQLite by default,
//! PostgreSQL by URL. One portable SQL string per operation, `$N` placeholders; the only SQL
//! in the provider. Statements that change something go to the write pool, plain reads to
//! the read pool (on SQLite one writer connection and several readers; see [`Db`]).

mod audit;
mod batch;
mod clients;
mod codes;
mod consents;
mod keys;
pub mod logout;
mod tokens;
mod users;

pub use audit::AuditRow;
pub use batch::Insert;
pub use clients::{AuthMethod, Client, NewClient};
pub use codes::{AuthCode, Redeemed};
pub use keys::StoredKey;
pub use logout::Delivery;
pub use tokens::{AccessTokenRow, RefreshTokenRow};
pub use users::{NewUser, User};

use infra::Db;

/// Handle to the provider database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    batch: batch::Batcher,
}

impl Store {
    /// Connects to `database_url` (`sqlite://…?mode=rwc` or `postgres://…`).
    pub async fn connect(database_url: &str) -> Result<Self, sqlx::Error> {
        // SQLite: one writer and four readers (CPU-bound, in-process); PostgreSQL: sixteen.
        let max = if database_url.starts_with("sqlite:") {
            4
        } else {
            16
        };
        let db = Db::connect(database_url, max).await?;
        Ok(Self {
            batch: batch::Batcher::spawn(db.clone()),
            db,
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

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Takes or renews lease `name` for `holder` until `now + ttl`; false while another holder
    /// has it. One statement, so two instances never both get it.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = $3 \
             WHERE leases.expires_at <= $4 OR leases.holder = $2",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl)
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives lease `name` up, if `holder` has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.db.write())
            .await?;
        Ok(())
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

fn flag(b: bool) -> i64 {
    i64::from(b)
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}
