//! Password hashing: argon2id with at least the OWASP parameters (m = 19 MiB, t = 2, p = 1),
//! always on a blocking thread so a hash never stalls the async workers, and at most one hash
//! per CPU at a time: a hash is pure CPU work, so more at once would not finish sooner, but
//! each would hold its 19 MiB (a burst of 32 sign-ins would take 600 MiB). The others wait
//! their turn without holding a thread or memory.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Longest password accepted; checked before hashing, so nobody can make us hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn argon2() -> Result<Argon2<'static>, argon2::Error> {
    Ok(Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None)?,
    ))
}

/// Hashes `password` to PHC text (random salt). Slow by design: call from a blocking thread.
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    anyhow::ensure!(password.len() <= MAX_PASSWORD_BYTES, "password too long");
    let hash = argon2()
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// One permit per CPU for the hashes in flight.
fn slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        tokio::sync::Semaphore::new(cpus)
    })
}

/// Hashes on a blocking thread.
pub async fn hash(password: String) -> anyhow::Result<String> {
    let _slot = slots().acquire().await?;
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

/// Makes the decoy hash now (a serving instance does so at start), so that no sign-in pays
/// for it: the first sign-in of an unknown user would otherwise take longer than the others.
pub async fn prepare_decoy() -> anyhow::Result<()> {
    decoy().await.map(drop)
}

/// An argon2id hash of a random password, made once per process: verified against when the
/// user is unknown, so that an unknown user costs the same time as a wrong password.
async fn decoy() -> anyhow::Result<&'static str> {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let hash = DECOY
        .get_or_try_init(|| async { hash(infra::secret::random_token()?).await })
        .await?;
    Ok(hash.as_str())
}

/// Checks `password` against `stored` on a blocking thread. With no stored hash (unknown user)
/// it verifies against a decoy hash instead, so the answer takes the same time either way.
pub async fn verify(stored: Option<String>, password: String) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let known = stored.is_some();
    let phc = match stored {
        Some(phc) => phc,
        None => match decoy().await {
            Ok(d) => d.to_owned(),
            Err(e) => {
                tracing::error!(error = %e, "no decoy password hash");
                return false;
            }
        },
    };
    let Ok(_slot) = slots().acquire().await else {
        return false;
    };
    let ok = tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false);
    ok && known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("wonderland".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(Some(h.clone()), "wonderland".into()).await);
        assert!(!verify(Some(h.clone()), "wonderlanD".into()).await);
        // Unknown user: refused, after the same work (the decoy hash).
        assert!(!verify(None, "wonderland".into()).await);
        assert!(!verify(Some(h), "x".repeat(MAX_PASSWORD_BYTES + 1)).await);
    }
}
