//! Delivery of queued logout tokens: POSTed at once, with a timeout, retried with exponential
//! backoff, kept in the store across restarts, claimed by one instance at a time.

use crate::context::Ctx;
use crate::store::Delivery;
use crate::types::DeliveryState;
use std::sync::Arc;
use std::time::Duration;

/// How long a claimed delivery is reserved for the instance that claimed it.
const LEASE_SECS: i64 = 30;
/// Deliveries attempted together.
const BATCH: i64 = 16;
/// Timeout of one delivery attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts before a delivery is given up (about 25 minutes of backoff).
pub const MAX_ATTEMPTS: i64 = 12;

/// Seconds before attempt `n + 1` after `n` failed attempts: 1, 2, 4, … capped at 5 minutes.
pub fn backoff_secs(failed_attempts: i64) -> i64 {
    let exp = u32::try_from(failed_attempts.clamp(1, 16) - 1).unwrap_or(0);
    2_i64.pow(exp).min(300)
}

/// The deliverer: the context it signs with, and the HTTP client it posts with (the shared
/// outbound policy of `infra::http`).
#[derive(Clone)]
pub struct Outbox {
    ctx: Arc<Ctx>,
    http: reqwest::Client,
}

impl Outbox {
    pub fn new(ctx: Arc<Ctx>) -> Result<Self, reqwest::Error> {
        Ok(Self {
            ctx,
            http: infra::http::client_builder().build()?,
        })
    }

    /// Runs until aborted: wakes when a logout is queued, and every second for retries.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = self.ctx.logout_queued.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if let Err(e) = self.deliver_due().await {
                    tracing::warn!(error = %e, "logout delivery round failed");
                }
            }
        })
    }

    /// Delivers every due logout token (several at a time).
    pub async fn deliver_due(&self) -> Result<(), sqlx::Error> {
        loop {
            let now = self.ctx.clock.unix();
            let batch = self
                .ctx
                .store
                .claim_due_deliveries(now, LEASE_SECS, BATCH)
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut tasks = tokio::task::JoinSet::new();
            for delivery in batch {
                let this = self.clone();
                tasks.spawn(async move { this.deliver(delivery).await });
            }
            while let Some(done) = tasks.join_next().await {
                if let Ok(Err(e)) = done {
                    tracing::warn!(error = %e, "could not record a logout delivery");
                }
            }
        }
    }

    /// One attempt, and its outcome recorded: delivered, retried later, or given up.
    async fn deliver(&self, d: Delivery) -> Result<(), sqlx::Error> {
        let now = self.ctx.clock.unix();
        let attempts = d.attempts + 1;
        let (state, next, error) = match self.attempt(&d, now).await {
            Ok(()) => {
                tracing::info!(client_id = %d.client_id, sid = %d.sid, "back-channel logout delivered");
                (DeliveryState::Delivered, now, None)
            }
            Err(error) if attempts >= MAX_ATTEMPTS => {
                tracing::warn!(client_id = %d.client_id, sid = %d.sid, %error, "back-channel logout failed for good");
                (DeliveryState::Failed, now, Some(error))
            }
            Err(error) => {
                tracing::info!(client_id = %d.client_id, sid = %d.sid, %error, attempts, "back-channel logout will be retried");
                (
                    DeliveryState::Pending,
                    now + backoff_secs(attempts),
                    Some(error),
                )
            }
        };
        let outcome = match state {
            DeliveryState::Pending => "retrying",
            other => other.as_str(),
        };
        metrics::counter!("gatehouse_logout_deliveries_total", "outcome" => outcome).increment(1);
        self.ctx
            .store
            .record_delivery(&d.id, state, attempts, next, error.as_deref(), now)
            .await
    }

    /// One POST of a freshly signed token (a new `jti` per attempt: a retry after a lost
    /// response must not look like a replay to the app). Returns a short reason on failure.
    async fn attempt(&self, d: &Delivery, now: i64) -> Result<(), String> {
        // The reason is shown to the user on "your sessions": a short fixed phrase, the
        // detail only in the log.
        let alg = match self.ctx.store.client(&d.client_id).await {
            Ok(Some(c)) => c.id_token_alg,
            Ok(None) => return Err("the client no longer exists".into()),
            Err(e) => {
                tracing::warn!(error = %e, "logout delivery: cannot read the client");
                return Err("the provider could not read the client".into());
            }
        };
        let token = super::logout_token(&self.ctx, &d.client_id, alg, &d.sid, &d.user_id, now)
            .map_err(|e| {
                tracing::error!(error = %e, "logout delivery: cannot sign the token");
                "the provider could not sign the logout token".to_owned()
            })?;
        let response = self
            .http
            .post(&d.uri)
            .form(&[("logout_token", token.as_str())])
            .timeout(ATTEMPT_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    "could not connect".to_owned()
                }
            })?;
        // Back-Channel Logout §2.8: 200 (or 204) means done; anything else failed.
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", response.status().as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_secs;

    #[test]
    fn backoff_doubles_then_caps() {
        let seq: Vec<i64> = (1..=11).map(backoff_secs).collect();
        assert_eq!(seq, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }
}
