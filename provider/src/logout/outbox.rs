//! Delivery of queued logout tokens: POSTed at once, with a timeout, retried with exponential
//! backoff, kept in the store across restarts, claimed by one instance at a time.
//!
//! Nobody can stall it (README "Hostile clients"): every delivery is a task of its own (no
//! batch waits for its slowest member), at most `outbound.per_host` are in flight to one host
//! and `outbound.in_flight` in all, first attempts are claimed ahead of retries, and every
//! request goes through the outbound policy ([`infra::outbound`]: https, never inward).

use crate::context::Ctx;
use crate::store::Delivery;
use crate::types::DeliveryState;
use infra::outbound::{Guarded, Refused};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinSet;

/// How long a claimed delivery is reserved for the instance that claimed it (longer than an
/// attempt can take).
const LEASE_SECS: i64 = 30;
/// Deliveries claimed by one statement, at most.
const CLAIM: usize = 64;
/// Attempts before a delivery is given up (about 25 minutes of backoff).
pub const MAX_ATTEMPTS: i64 = 12;

/// Seconds before attempt `n + 1` after `n` failed attempts: 1, 2, 4, … capped at 5 minutes.
pub fn backoff_secs(failed_attempts: i64) -> i64 {
    let exp = u32::try_from(failed_attempts.clamp(1, 16) - 1).unwrap_or(0);
    2_i64.pow(exp).min(300)
}

/// The host a delivery goes to (scheme, name and port): the unit of the per-host cap.
fn host_of(uri: &str) -> String {
    url::Url::parse(uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// What this instance has in flight: in all, per host, and the clients behind each host.
#[derive(Default)]
struct InFlight {
    total: usize,
    hosts: HashMap<String, (usize, HashMap<String, usize>)>,
}

impl InFlight {
    fn start(&mut self, host: &str, client_id: &str) {
        self.total += 1;
        let (n, clients) = self.hosts.entry(host.to_owned()).or_default();
        *n += 1;
        *clients.entry(client_id.to_owned()).or_default() += 1;
    }

    fn finish(&mut self, host: &str, client_id: &str) {
        self.total = self.total.saturating_sub(1);
        if let Some((n, clients)) = self.hosts.get_mut(host) {
            *n = n.saturating_sub(1);
            if let Some(c) = clients.get_mut(client_id) {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    clients.remove(client_id);
                }
            }
            if *n == 0 {
                self.hosts.remove(host);
            }
        }
    }

    fn host_full(&self, host: &str, per_host: usize) -> bool {
        self.hosts.get(host).is_some_and(|(n, _)| *n >= per_host)
    }

    /// The clients of every full host: not worth claiming until a slot frees.
    fn blocked_clients(&self, per_host: usize) -> Vec<String> {
        self.hosts
            .values()
            .filter(|(n, _)| *n >= per_host)
            .flat_map(|(_, clients)| clients.keys().cloned())
            .collect()
    }
}

/// Releases a delivery's slot when its task ends, however it ends.
struct Slot {
    in_flight: Arc<Mutex<InFlight>>,
    host: String,
    client_id: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finish(&self.host, &self.client_id);
    }
}

/// The deliverer: the context it signs with, the guarded HTTP client it posts with, and what
/// it has in flight.
#[derive(Clone)]
pub struct Outbox {
    ctx: Arc<Ctx>,
    http: Guarded,
    in_flight: Arc<Mutex<InFlight>>,
}

impl Outbox {
    pub fn new(ctx: Arc<Ctx>) -> Result<Self, reqwest::Error> {
        let http = Guarded::new(ctx.outbound.clone(), ctx.config.outbound.connect_timeout)?;
        Ok(Self {
            ctx,
            http,
            in_flight: Arc::default(),
        })
    }

    /// Runs until aborted (its deliveries in flight with it): wakes when a logout is queued,
    /// when a delivery ends, and every second for retries.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            loop {
                tokio::select! {
                    () = self.ctx.logout_queued.notified() => {}
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                while tasks.try_join_next().is_some() {}
                if let Err(e) = self.dispatch(&mut tasks).await {
                    tracing::warn!(error = %e, "logout delivery round failed");
                }
            }
        })
    }

    /// Starts every due delivery there is room for; those whose host is full wait a second.
    async fn dispatch(&self, tasks: &mut JoinSet<()>) -> Result<(), sqlx::Error> {
        let limits = &self.ctx.config.outbound;
        loop {
            let (room, blocked) = {
                let f = self
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                (
                    limits.in_flight.saturating_sub(f.total).min(CLAIM),
                    f.blocked_clients(limits.per_host),
                )
            };
            if room == 0 {
                return Ok(());
            }
            let now = self.ctx.clock.unix();
            let claimed = self
                .ctx
                .store
                .claim_due_deliveries(now, LEASE_SECS, room, &blocked)
                .await?;
            let full_claim = claimed.len() == room;
            let mut waiting = Vec::new();
            for d in claimed {
                let host = host_of(&d.uri);
                let slot = {
                    let mut f = self
                        .in_flight
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if f.host_full(&host, limits.per_host) {
                        None
                    } else {
                        f.start(&host, &d.client_id);
                        Some(Slot {
                            in_flight: self.in_flight.clone(),
                            host,
                            client_id: d.client_id.clone(),
                        })
                    }
                };
                match slot {
                    Some(slot) => {
                        let this = self.clone();
                        tasks.spawn(async move {
                            let _slot = slot;
                            if let Err(e) = this.deliver(d).await {
                                tracing::warn!(error = %e, "could not record a logout delivery");
                            }
                        });
                    }
                    None => waiting.push(d.id),
                }
            }
            if !waiting.is_empty() {
                self.ctx
                    .store
                    .postpone_deliveries(&waiting, now + 1)
                    .await?;
            }
            if !full_claim {
                return Ok(());
            }
        }
    }

    /// Starts every due delivery and waits for them all (tests).
    #[cfg(test)]
    pub(crate) async fn deliver_due_now(&self) -> Result<(), sqlx::Error> {
        let mut tasks = JoinSet::new();
        self.dispatch(&mut tasks).await?;
        while tasks.join_next().await.is_some() {}
        Ok(())
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
        // The reason is kept for the operator: a short fixed phrase, the detail only in the
        // log. Users and registrants see only the state ("your sessions").
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
        let refused = |why: Refused| {
            tracing::warn!(client_id = %d.client_id, %why, "logout delivery refused by the outbound policy");
            "refused by the outbound policy".to_owned()
        };
        let response = self
            .http
            .post(&d.uri)
            .map_err(refused)?
            .form(&[("logout_token", token.as_str())])
            .timeout(self.ctx.config.outbound.attempt_timeout)
            .send()
            .await
            .map_err(|e| {
                if infra::outbound::was_refused(&e) {
                    refused(Refused::Inward)
                } else if e.is_timeout() {
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
