//! `resources` (APIs that accept our access tokens, RFC 8707 / RFC 9068), `grant_resources` (the
//! API a grant may obtain tokens for) and `consent_resources` (a user's consent to a
//! third-party app's use of an API).

use super::handle::Store;
use super::rows::{Insert, Table};
use crate::types::ApiScopes;
use sqlx::FromRow;

/// A registered API. `resource_id` is its resource indicator and its tokens' `aud`.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct Resource {
    pub resource_id: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub scopes: ApiScopes,
    /// Seconds.
    pub access_token_lifetime: i64,
    /// The client the API authenticates as (to introspect its tokens), if any.
    pub client_id: Option<String>,
    pub created_at: i64,
}

infra::lite_row!(Resource {
    resource_id,
    name,
    scopes as String,
    access_token_lifetime,
    client_id,
    created_at,
});

/// A resource as it is written: made only by the rules of `protocol::resources`, so nothing
/// stored has skipped them.
#[derive(Clone, Debug)]
pub struct NewResource(pub(crate) Resource);

/// What a grant may obtain tokens for: the API and the scopes granted there.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct GrantResource {
    pub resource_id: String,
    #[sqlx(try_from = "String")]
    pub scopes: ApiScopes,
    pub access_token_lifetime: i64,
}

infra::lite_row!(GrantResource {
    resource_id,
    scopes as String,
    access_token_lifetime,
});

const COLUMNS: &str = "resource_id, name, scopes, access_token_lifetime, client_id, created_at";

static GRANT_RESOURCES: Table = Table {
    head: "INSERT INTO grant_resources (grant_id, resource_id, scopes, expires_at) VALUES",
    columns: 4,
    tail: "",
};

impl Insert {
    /// The API grant `grant_id` (the code's hash) may obtain tokens for, with the code; kept
    /// until `expires_at`, the latest the grant could live.
    pub fn grant_resource(
        grant_id: &str,
        resource_id: &str,
        scopes: &ApiScopes,
        expires_at: i64,
    ) -> Self {
        Self::new(
            &GRANT_RESOURCES,
            vec![
                grant_id.into(),
                resource_id.into(),
                scopes.to_string().into(),
                expires_at.into(),
            ],
        )
    }
}

impl Store {
    /// The resource registered as `resource_id` (compared exactly).
    pub async fn resource(&self, resource_id: &str) -> Result<Option<Resource>, sqlx::Error> {
        self.db
            .read_optional(
                &format!("SELECT {COLUMNS} FROM resources WHERE resource_id = $1"),
                &[resource_id.into()],
            )
            .await
    }

    /// Every resource, by id.
    pub async fn resources(&self) -> Result<Vec<Resource>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM resources ORDER BY resource_id");
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.db.read())
            .await
    }

    /// Registers a resource; false if one with that id exists.
    pub async fn add_resource(&self, r: &NewResource) -> Result<bool, sqlx::Error> {
        let r = &r.0;
        let done = sqlx::query(
            "INSERT INTO resources (resource_id, name, scopes, access_token_lifetime, client_id, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (resource_id) DO NOTHING",
        )
        .bind(&r.resource_id)
        .bind(&r.name)
        .bind(r.scopes.to_string())
        .bind(r.access_token_lifetime)
        .bind(&r.client_id)
        .bind(r.created_at)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a resource: no grant or consent names it any more, so no new token is issued
    /// for it. True if it was there.
    pub async fn remove_resource(&self, resource_id: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.write().begin().await?;
        sqlx::query("DELETE FROM grant_resources WHERE resource_id = $1")
            .bind(resource_id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM resources WHERE resource_id = $1")
            .bind(resource_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The API grant `grant_id` may obtain tokens for, if it is `resource_id`.
    pub async fn grant_resource(
        &self,
        grant_id: &str,
        resource_id: &str,
    ) -> Result<Option<GrantResource>, sqlx::Error> {
        self.db
            .read_optional(
                "SELECT g.resource_id, g.scopes, r.access_token_lifetime \
                 FROM grant_resources g JOIN resources r ON r.resource_id = g.resource_id \
                 WHERE g.grant_id = $1 AND g.resource_id = $2",
                &[grant_id.into(), resource_id.into()],
            )
            .await
    }

    /// The scopes of `resource_id` that `user_id` allowed `client_id`, if any.
    pub async fn resource_consent(
        &self,
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
        .fetch_optional(self.db.read())
        .await?;
        row.map(|(s,)| {
            super::columns::decode("API scope list", &s, |s| {
                ApiScopes::try_from(s.to_owned()).ok()
            })
        })
        .transpose()
    }

    /// Forgets the APIs of grants that can no longer be alive (with `Store::sweep_grants`).
    pub(super) async fn sweep_grant_resources(&self, before: i64) -> Result<u64, sqlx::Error> {
        self.delete_batched("grant_resources", "grant_id", "expires_at < $1", &[before])
            .await
    }
}
