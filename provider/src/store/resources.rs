//! `resources` (APIs that accept our access tokens, RFC 8707 / RFC 9068), `grant_resources` (the
//! API a grant may obtain tokens for) and `consent_resources` (a user's consent to a
//! third-party app's use of an API).

use super::handle::Store;
use super::rows::{Insert, Table};
use crate::types::{Alg, ApiScopes};
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
    #[sqlx(try_from = "String")]
    pub access_token_alg: Alg,
    /// The client the API authenticates as (to introspect its tokens), if any.
    pub client_id: Option<String>,
    /// Also the registration's generation (a grant holds the one it was given).
    pub created_at: i64,
}

infra::lite_row!(Resource {
    resource_id,
    name,
    scopes as String,
    access_token_lifetime,
    access_token_alg as String,
    client_id,
    created_at,
});

/// Who may exchange tokens for an API's (RFC 8693): the API client `client_id`, for tokens
/// addressed to `resource_id` with at most `scopes`.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct ExchangeRule {
    pub client_id: String,
    pub resource_id: String,
    #[sqlx(try_from = "String")]
    pub scopes: ApiScopes,
}

infra::lite_row!(ExchangeRule {
    client_id,
    resource_id,
    scopes as String,
});

/// A resource as it is written: made only by the rules of `protocol::resources`, so nothing
/// stored has skipped them.
#[derive(Clone, Debug)]
pub struct NewResource(pub(crate) Resource);

/// What a grant may obtain tokens for: the API, the scopes granted there, and the API's
/// registration as it is now (its scopes, its tokens' lifetime and algorithm).
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct GrantResource {
    pub resource_id: String,
    #[sqlx(try_from = "String")]
    pub scopes: ApiScopes,
    #[sqlx(try_from = "String")]
    pub defined: ApiScopes,
    pub access_token_lifetime: i64,
    #[sqlx(try_from = "String")]
    pub access_token_alg: Alg,
}

infra::lite_row!(GrantResource {
    resource_id,
    scopes as String,
    defined as String,
    access_token_lifetime,
    access_token_alg as String,
});

const COLUMNS: &str =
    "resource_id, name, scopes, access_token_lifetime, access_token_alg, client_id, created_at";

static GRANT_RESOURCES: Table = Table {
    head: "INSERT INTO grant_resources (grant_id, resource_id, generation, scopes, expires_at) \
           VALUES",
    columns: 5,
    tail: "",
};

impl Insert {
    /// The API grant `grant_id` (the code's hash) may obtain tokens for, in its registration
    /// `generation`, with the code; kept until `expires_at`, the latest the grant could live.
    pub fn grant_resource(
        grant_id: &str,
        resource_id: &str,
        generation: i64,
        scopes: &ApiScopes,
        expires_at: i64,
    ) -> Self {
        Self::new(
            &GRANT_RESOURCES,
            vec![
                grant_id.into(),
                resource_id.into(),
                generation.into(),
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

    /// The longest lifetime of any registered API's access tokens (seconds), if any API is
    /// registered: how long a signing key and a grant must outlive their last use.
    pub async fn longest_api_token_lifetime(&self) -> Result<Option<i64>, sqlx::Error> {
        let (longest,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(access_token_lifetime) FROM resources")
                .fetch_one(self.db.read())
                .await?;
        Ok(longest)
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
            "INSERT INTO resources (resource_id, name, scopes, access_token_lifetime, \
             access_token_alg, client_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (resource_id) DO NOTHING",
        )
        .bind(&r.resource_id)
        .bind(&r.name)
        .bind(r.scopes.to_string())
        .bind(r.access_token_lifetime)
        .bind(r.access_token_alg.as_str())
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
        for sql in [
            "DELETE FROM grant_resources WHERE resource_id = $1",
            "DELETE FROM consent_resources WHERE resource_id = $1",
            "DELETE FROM token_exchange_rules WHERE resource_id = $1",
        ] {
            sqlx::query(sql).bind(resource_id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM resources WHERE resource_id = $1")
            .bind(resource_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The API grant `grant_id` may obtain tokens for, if it is `resource_id` and still
    /// registered as it was when the grant was given (not removed, nor registered anew since).
    pub async fn grant_resource(
        &self,
        grant_id: &str,
        resource_id: &str,
    ) -> Result<Option<GrantResource>, sqlx::Error> {
        self.db
            .read_optional(
                "SELECT g.resource_id, g.scopes, r.scopes AS defined, r.access_token_lifetime, \
                 r.access_token_alg FROM grant_resources g JOIN resources r \
                 ON r.resource_id = g.resource_id AND r.created_at = g.generation \
                 WHERE g.grant_id = $1 AND g.resource_id = $2",
                &[grant_id.into(), resource_id.into()],
            )
            .await
    }

    /// What `user_id` let each app do at an API: consented to (a third-party app), or held by
    /// a live grant (any app). Rows of (client, the API's name, scopes); an app and API may
    /// appear more than once.
    pub async fn api_access_of(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<(String, String, ApiScopes)>, sqlx::Error> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT c.client_id, r.name, c.scopes FROM consent_resources c \
             JOIN resources r ON r.resource_id = c.resource_id WHERE c.user_id = $1 \
             UNION ALL \
             SELECT g.client_id, r.name, gr.scopes FROM grants g \
             JOIN grant_resources gr ON gr.grant_id = g.grant_id \
             JOIN resources r ON r.resource_id = gr.resource_id AND r.created_at = gr.generation \
             WHERE g.user_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $2",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(self.db.read())
        .await?;
        rows.into_iter()
            .map(|(client, name, scopes)| Ok((client, name, super::columns::api_scopes(&scopes)?)))
            .collect()
    }

    /// Lets API client `client_id` exchange its tokens for tokens addressed to `resource_id`
    /// with at most `scopes` (replacing a rule it had there).
    pub async fn allow_exchange(&self, rule: &ExchangeRule, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO token_exchange_rules (client_id, resource_id, scopes, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (client_id, resource_id) DO UPDATE SET scopes = $3",
        )
        .bind(&rule.client_id)
        .bind(&rule.resource_id)
        .bind(rule.scopes.to_string())
        .bind(now)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    /// Withdraws a rule; true if there was one.
    pub async fn disallow_exchange(
        &self,
        client_id: &str,
        resource_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM token_exchange_rules WHERE client_id = $1 AND resource_id = $2",
        )
        .bind(client_id)
        .bind(resource_id)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The rule for `client_id` exchanging for tokens addressed to `resource_id`, if any.
    pub async fn exchange_rule(
        &self,
        client_id: &str,
        resource_id: &str,
    ) -> Result<Option<ExchangeRule>, sqlx::Error> {
        self.db
            .read_optional(
                "SELECT client_id, resource_id, scopes FROM token_exchange_rules \
                 WHERE client_id = $1 AND resource_id = $2",
                &[client_id.into(), resource_id.into()],
            )
            .await
    }

    /// Every exchange rule, by API and client.
    pub async fn exchange_rules(&self) -> Result<Vec<ExchangeRule>, sqlx::Error> {
        self.db
            .read_all(
                "SELECT client_id, resource_id, scopes FROM token_exchange_rules \
                 ORDER BY resource_id, client_id",
                &[],
            )
            .await
    }

    /// Forgets the APIs of grants that can no longer be alive (with `Store::sweep_grants`).
    pub(super) async fn sweep_grant_resources(&self, before: i64) -> Result<u64, sqlx::Error> {
        self.delete_batched("grant_resources", "grant_id", "expires_at < $1", &[before])
            .await
    }
}
