//! `server_secrets`: the provider's own secrets, made once and shared by every instance.

use super::handle::Store;

impl Store {
    /// The secret `name`: the stored one, or `candidate` if there was none (then stored). One
    /// insert that keeps an existing value, so instances starting together agree on one.
    pub async fn server_secret(&self, name: &str, candidate: &str) -> Result<String, sqlx::Error> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(self.db.write())
        .await?;
        let (value,): (String,) =
            sqlx::query_as("SELECT value FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(self.db.write())
                .await?;
        Ok(value)
    }
}
