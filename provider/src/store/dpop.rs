//! `dpop_proofs`: the DPoP proofs seen (RFC 9449 §11.1), each once.

use super::handle::Store;

impl Store {
    /// Records proof `proof_hash` (its key's thumbprint and `jti`, hashed) until `expires_at`;
    /// false if it was seen before: one statement, so of two concurrent uses one counts.
    pub async fn dpop_proof_fresh(
        &self,
        proof_hash: &str,
        expires_at: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO dpop_proofs (proof_hash, expires_at) VALUES ($1, $2) \
             ON CONFLICT (proof_hash) DO NOTHING",
        )
        .bind(proof_hash)
        .bind(expires_at)
        .execute(self.db.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets proofs that could no longer be accepted.
    pub async fn sweep_dpop_proofs(&self, now: i64) -> Result<u64, sqlx::Error> {
        self.delete_batched("dpop_proofs", "proof_hash", "expires_at < $1", &[now])
            .await
    }
}
