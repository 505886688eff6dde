//! `signing_keys`: the provider's private signing keys (PKCS#8 DER, base64).

use super::handle::Store;
use crate::types::Alg;
use sqlx::FromRow;

#[derive(Clone, Debug, FromRow)]
pub struct StoredKey {
    pub kid: String,
    #[sqlx(try_from = "String")]
    pub alg: Alg,
    pub private_key: String,
    pub created_at: i64,
    /// From when the key signs (it is published from `created_at`).
    pub activates_at: i64,
}

impl Store {
    /// Every key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, sqlx::Error> {
        sqlx::query_as(
            "SELECT kid, alg, private_key, created_at, activates_at FROM signing_keys \
             ORDER BY activates_at, created_at, kid",
        )
        .fetch_all(self.db.read())
        .await
    }

    pub async fn insert_signing_key(&self, k: &StoredKey) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key, created_at, activates_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&k.kid)
        .bind(k.alg.as_str())
        .bind(&k.private_key)
        .bind(k.created_at)
        .bind(k.activates_at)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    /// Deletes a retired key (it leaves the JWKS).
    pub async fn delete_signing_key(&self, kid: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(self.db.write())
            .await?;
        Ok(())
    }
}
