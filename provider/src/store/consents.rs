//! `consents`: the scopes a user granted to a client, remembered across sign-ins.

use super::handle::Store;
use crate::types::ScopeSet;

impl Store {
    /// The scopes `user_id` has granted `client_id`, if any.
    pub async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<ScopeSet>, sqlx::Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(self.db.read())
                .await?;
        row.map(|(s,)| super::columns::decode("scope list", &s, |s| ScopeSet::parse_strict(s).ok()))
            .transpose()
    }

    /// Records a grant of `scopes` (the union with what was granted before).
    pub async fn grant_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: ScopeSet,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let before = self.consent(user_id, client_id).await?.unwrap_or_default();
        let all = before.union(scopes);
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = $3, granted_at = $4",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(all.to_string())
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    /// Every client `user_id` granted scopes to: client, scopes, when last granted.
    pub async fn consents_of(
        &self,
        user_id: &str,
    ) -> Result<Vec<(String, ScopeSet, i64)>, sqlx::Error> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT client_id, scope, granted_at FROM consents WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(self.db.read())
                .await?;
        rows.into_iter()
            .map(|(client, scope, at)| {
                let scope = super::columns::decode("scope list", &scope, |s| {
                    ScopeSet::parse_strict(s).ok()
                })?;
                Ok((client, scope, at))
            })
            .collect()
    }

    /// Forgets what `user_id` granted `client_id` (the app asks again next time); true if
    /// there was a consent.
    pub async fn delete_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(self.db.write())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
