//! `leases`: named leases, so that one instance at a time does a job (maintenance, the first
//! keys).

use super::handle::Store;

impl Store {
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

    /// Forgets every lease: for a database just restored, whose leases were held by
    /// processes of the copy's moment, not by any that runs on it.
    pub async fn clear_leases(&self) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM leases")
            .execute(self.db.write())
            .await?;
        Ok(())
    }

    /// When lease `name` runs out, if someone holds it at `now`: an instance at work.
    pub async fn lease_held_until(&self, name: &str, now: i64) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT expires_at FROM leases WHERE name = $1 AND expires_at > $2")
            .bind(name)
            .bind(now)
            .fetch_optional(self.db.read())
            .await
    }
}
