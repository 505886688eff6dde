//! Delivery of queued logout tokens: POSTed at once, with a timeout, retried with exponential
//! backoff, kept in the store across restarts, claimed by one instance at a time.
//!
//! Nobody can stall it (README "Hostile clients" 4): every delivery is a task of its own (no
//! batch waits for its slowest member); at most `outbound.per_host` are in flight to one host
//! and as many for one client, `outbound.in_flight` in all; a claim takes at most that many
//! of one client's deliveries, first attempts before retries; a delivery claimed for a host
//! that is full is handed back for about an attempt's time, so a busy host costs a write per
//! delivery per attempt timeout, not a spin. Every request goes through the outbound policy
//! ([`infra::outbound`]: https, never inward), and one the policy refuses fails at once.

use crate::context::Ctx;
use crate::store::Delivery;
use crate::types::DeliveryState;
use infra::outbound::{Guarded, Refused};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinSet;

/// Deliveries claimed by one statement, at most.
const CLAIM: usize = 64;
/// Claim statements in one dispatch, at most (the next wake-up goes on).
const ROUNDS: usize = 8;
/// Attempts before a delivery is given up (about 25 minutes of backoff).
pub const MAX_ATTEMPTS: i64 = 12;
/// What the policy's refusal is recorded as (for the operator; people see the state only).
const REFUSED: &str = "refused by the outbound policy";

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

/// What this instance has in flight: in all, per host and per client.
#[derive(Default)]
struct InFlight {
    total: usize,
    hosts: HashMap<String, usize>,
    clients: HashMap<String, usize>,
}

fn add(map: &mut HashMap<String, usize>, key: &str) {
    *map.entry(key.to_owned()).or_default() += 1;
}

fn remove(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl InFlight {
    /// Takes a slot for a delivery to `host` for `client_id`, if both have room.
    fn start(&mut self, host: &str, client_id: &str, cap: usize) -> bool {
        let full =
            |map: &HashMap<String, usize>, key: &str| map.get(key).is_some_and(|n| *n >= cap);
        if full(&self.hosts, host) || full(&self.clients, client_id) {
            return false;
        }
        self.total += 1;
        add(&mut self.hosts, host);
        add(&mut self.clients, client_id);
        true
    }

    fn finish(&mut self, host: &str, client_id: &str) {
        self.total = self.total.saturating_sub(1);
        remove(&mut self.hosts, host);
        remove(&mut self.clients, client_id);
    }

    /// The clients at their cap: not worth claiming until a slot frees.
    fn full_clients(&self, cap: usize) -> Vec<String> {
        self.clients
            .iter()
            .filter(|(_, n)| **n >= cap)
            .map(|(c, _)| c.clone())
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

    /// How long a claimed delivery is reserved for the instance that claimed it: longer than
    /// an attempt can take, so no other instance sends it meanwhile.
    fn lease_secs(&self) -> i64 {
        let o = &self.ctx.config.outbound;
        infra::secs(o.attempt_timeout + o.connect_timeout) + 30
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

    /// Starts the due deliveries there is room for (a bounded number of claims); those whose
    /// host or client is full are handed back for about an attempt's time.
    async fn dispatch(&self, tasks: &mut JoinSet<()>) -> Result<(), sqlx::Error> {
        let limits = &self.ctx.config.outbound;
        let cap = limits.per_host;
        let now = self.ctx.clock.unix();
        let later = now + infra::secs(limits.attempt_timeout).max(1);
        for _ in 0..ROUNDS {
            let (room, skip) = {
                let f = self
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                (
                    limits.in_flight.saturating_sub(f.total).min(CLAIM),
                    f.full_clients(cap),
                )
            };
            if room == 0 {
                return Ok(());
            }
            let claimed = self
                .ctx
                .store
                .claim_due_deliveries(now, self.lease_secs(), room, cap, &skip)
                .await?;
            let full_claim = claimed.len() == room;
            let (mut started, mut waiting) = (0, Vec::new());
            for d in claimed {
                let host = host_of(&d.uri);
                let taken = self
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .start(&host, &d.client_id, cap);
                if !taken {
                    waiting.push(d.id);
                    continue;
                }
                let slot = Slot {
                    in_flight: self.in_flight.clone(),
                    host,
                    client_id: d.client_id.clone(),
                };
                let this = self.clone();
                tasks.spawn(async move {
                    let _slot = slot;
                    if let Err(e) = this.deliver(d).await {
                        tracing::warn!(error = %e, "could not record a logout delivery");
                    }
                });
                started += 1;
            }
            if !waiting.is_empty() {
                self.ctx.store.postpone_deliveries(&waiting, later).await?;
            }
            if !full_claim || started == 0 {
                return Ok(());
            }
        }
        Ok(())
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
            // The policy will refuse it every time: no point retrying.
            Err(error) if attempts >= MAX_ATTEMPTS || error == REFUSED => {
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
        let claim = d.next_attempt_at;
        let recorded = self
            .ctx
            .store
            .record_delivery(&d.id, claim, state, attempts, next, error.as_deref(), now)
            .await?;
        if !recorded {
            tracing::warn!(client_id = %d.client_id, sid = %d.sid, "a logout delivery outlived its lease; its outcome was not recorded");
        }
        Ok(())
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
            REFUSED.to_owned()
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
