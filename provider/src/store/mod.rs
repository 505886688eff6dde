//! The provider's durable state over one sqlx `Any` pool: SQLite by default, PostgreSQL by URL.
//! One portable SQL string per operation, `$N` placeholders; the only SQL in the provider.

mod audit;
mod clients;
mod codes;
mod consents;
mod keys;
pub mod logout;
mod tokens;
mod users;

pub use audit::AuditRow;
pub use clients::{AuthMethod, Client, NewClient};
pub use codes::{AuthCode, Redeemed};
pub use keys::StoredKey;
pub use logout::Delivery;
pub use tokens::{AccessTokenRow, RefreshTokenRow};
pub use users::{NewUser, User};

use sqlx::AnyPool;

/// Handle to the provider database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Connects to `database_url` (`sqlite://…?mode=rwc` or `postgres://…`).
    pub async fn connect(database_url: &str) -> Result<Self, sqlx::Error> {
        let max = if database_url.starts_with("sqlite:") {
            8
        } else {
            16
        };
        Ok(Self {
            pool: sessions::connect_any(database_url, max).await?,
        })
    }

    /// Creates or upgrades every table the provider uses (its own and the sessions table).
    /// Safe when several instances start at once: sqlx serialises migrations with a lock.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        let mut migrator = sqlx::migrate!("../migrations/provider");
        migrator.set_ignore_missing(true);
        migrator.run(&self.pool).await?;
        sessions::SqlStore::new(self.pool.clone()).migrate().await
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
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
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives lease `name` up, if `holder` has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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
