//! `consents` and `consent_resources`: the scopes a user granted to a client, and at each API,
//! remembered across sign-ins.

use super::columns::decode;
use super::handle::Store;
use crate::types::{ApiScopes, ScopeSet};

impl Store {
    /// The scopes `user_id` has granted `client_id`, if any.
    pub async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<ScopeSet>, sqlx::Error> {
        consented(self.db.read(), user_id, client_id).await
    }

    /// The scopes of `resource_id` that `user_id` allowed `client_id`, if any.
    pub async fn resource_consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource_id: &str,
    ) -> Result<Option<ApiScopes>, sqlx::Error> {
        consented_at_api(self.db.read(), user_id, client_id, resource_id).await
    }

    /// Records a grant of `scopes` and, if the request named an API, of `api`'s scopes there
    /// (each the union with what was granted before, read in the same transaction, so that
    /// two approvals at once both count).
    pub async fn grant_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: ScopeSet,
        api: Option<(&str, &ApiScopes)>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.write().begin().await?;
        // PostgreSQL: the consent row is locked first (an upsert that changes nothing), so a
        // concurrent approval waits here instead of reading the same "before".
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, '', $3) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET granted_at = consents.granted_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let before = consented(&mut *tx, user_id, client_id).await?;
        sqlx::query(
            "UPDATE consents SET scope = $3, granted_at = $4 WHERE user_id = $1 AND client_id = $2",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(before.unwrap_or_default().union(scopes).to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some((resource, granted)) = api {
            let held = consented_at_api(&mut *tx, user_id, client_id, resource).await?;
            sqlx::query(
                // A resource removed meanwhile is not consented to (nor an error).
                "INSERT INTO consent_resources (user_id, client_id, resource_id, scopes) \
                 SELECT $1, $2, resource_id, $4 FROM resources WHERE resource_id = $3 \
                 ON CONFLICT (user_id, client_id, resource_id) DO UPDATE SET scopes = $4",
            )
            .bind(user_id)
            .bind(client_id)
            .bind(resource)
            .bind(held.unwrap_or_default().union(granted).to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
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
                let scope = decode("scope list", &scope, |s| ScopeSet::parse_strict(s).ok())?;
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

/// The scopes `user_id` granted `client_id`, read through `ex` (the read pool, or the
/// transaction of a new grant).
async fn consented<'e>(
    ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    user_id: &str,
    client_id: &str,
) -> Result<Option<ScopeSet>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(ex)
            .await?;
    row.map(|(s,)| decode("scope list", &s, |s| ScopeSet::parse_strict(s).ok()))
        .transpose()
}

/// The scopes of `resource_id` that `user_id` allowed `client_id`, read through `ex`.
async fn consented_at_api<'e>(
    ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    user_id: &str,
    client_id: &str,
    resource_id: &str,
) -> Result<Option<ApiScopes>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT scopes FROM consent_resources \
         WHERE user_id = $1 AND client_id = $2 AND resource_id = $3",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(resource_id)
    .fetch_optional(ex)
    .await?;
    row.map(|(s,)| super::columns::api_scopes(&s)).transpose()
}
