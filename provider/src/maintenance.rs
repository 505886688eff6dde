//! The provider's background upkeep: sweeping expired sessions (their ends reported like any
//! other), codes, tokens, throttle records and old audit events, and rotating the signing
//! keys. The shared part runs in one instance at a time, under a lease in the database; every
//! instance reloads its keys when what is stored has changed.

use crate::context::{Ctx, SystemError};
use crate::keys::{self, KeyError, RotationPolicy};
use crate::logout;
use infra::secret::RandomError;
use std::sync::Arc;

/// Runs the maintenance of one provider instance.
pub struct Maintenance {
    ctx: Arc<Ctx>,
    /// This instance's name for the lease (random).
    instance_id: String,
}

impl Maintenance {
    pub fn new(ctx: Arc<Ctx>) -> Result<Self, RandomError> {
        Ok(Self {
            ctx,
            instance_id: infra::secret::random_handle()?,
        })
    }

    /// This instance's name as a lease holder.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Gives the shared upkeep's lease up, if this instance holds it (on a clean stop, so that
    /// another instance, or `provider restore`, need not wait for it to run out).
    pub async fn release(ctx: &Ctx, instance_id: &str) {
        if let Err(e) = ctx.store.release_lease("maintenance", instance_id).await {
            tracing::warn!(error = %e, "the maintenance lease could not be given up");
        }
    }

    /// Runs [`Maintenance::run_once`] every `session.sweep_interval` until aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let every = self.ctx.config.session.sweep_interval;
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                self.run_once().await;
            }
        })
    }

    /// One round: the shared upkeep if this instance holds the lease, then this instance's key
    /// reload. Returns whether it held the lease.
    pub async fn run_once(&self) -> bool {
        let ctx = &self.ctx;
        let now = ctx.clock.unix();
        // The lease outlives a few rounds, so a holder that stops is replaced soon.
        let ttl = infra::secs(ctx.config.session.sweep_interval).max(1) * 3;
        let holder = match ctx
            .store
            .try_lease("maintenance", &self.instance_id, now, ttl)
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "maintenance lease unavailable");
                false
            }
        };
        if holder {
            sweep(ctx, now).await;
        }
        if let Err(e) = maintain_keys(ctx, holder).await {
            tracing::warn!(error = %e, "key maintenance failed");
        }
        holder
    }
}

/// Ends every expired session, a batch at a time.
async fn sweep_sessions(ctx: &Ctx) -> Result<(), SystemError> {
    const BATCH: usize = 500;
    loop {
        let expired = ctx.sessions.expired(BATCH).await?;
        logout::end(ctx, &expired).await?;
        if expired.len() < BATCH {
            return Ok(());
        }
    }
}

/// Deletes what has expired. Codes and tokens are kept ten minutes past expiry so that a late
/// replay is still recognised.
async fn sweep(ctx: &Ctx, now: i64) {
    // Idle and absolute expiry are session ends like any other: the apps hear. Each end is
    // recorded before its session is removed, and an end interrupted earlier (a crash, an
    // outage) is finished here, so stopping this loop at any point loses nothing.
    if let Err(e) = sweep_sessions(ctx).await {
        tracing::warn!(error = %e, "session sweep failed");
    }
    match logout::finish_interrupted(&ctx.store, &ctx.sessions, now).await {
        Ok(queued) if queued > 0 => ctx.logout_queued.notify_one(),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "finishing interrupted session ends failed"),
    }
    let store = &ctx.store;
    if let Err(e) = store.sweep_auth_codes(now, 600).await {
        tracing::warn!(error = %e, "code sweep failed");
    }
    if let Err(e) = store.sweep_tokens(now, 600).await {
        tracing::warn!(error = %e, "token sweep failed");
    }
    // A grant is kept as long as an access token issued under it may live (a registered API's
    // may outlive the provider's own), so that revoking by user, app or session still finds
    // its tokens.
    let api = store.longest_api_token_lifetime().await.ok().flatten();
    let keep = api.unwrap_or(0).max(600);
    if let Err(e) = store.sweep_grants(now, keep).await {
        tracing::warn!(error = %e, "grant sweep failed");
    }
    if let Err(e) = store.sweep_pending(now).await {
        tracing::warn!(error = %e, "pending request sweep failed");
    }
    if let Err(e) = store.sweep_devices(now, 600).await {
        tracing::warn!(error = %e, "device authorization sweep failed");
    }
    if let Err(e) = store.sweep_pushed(now).await {
        tracing::warn!(error = %e, "pushed request sweep failed");
    }
    if let Err(e) = store.sweep_dpop_proofs(now).await {
        tracing::warn!(error = %e, "DPoP proof sweep failed");
    }
    if let Err(e) = store.sweep_ceremonies(now).await {
        tracing::warn!(error = %e, "passkey ceremony sweep failed");
    }
    if let Err(e) = store.sweep_login_throttle(now, 3600).await {
        tracing::warn!(error = %e, "throttle sweep failed");
    }
    if let Err(e) = store
        .sweep_deliveries(now - crate::store::DELIVERY_RETENTION_SECS)
        .await
    {
        tracing::warn!(error = %e, "delivery sweep failed");
    }
    // Longer than any session lives: a membership this old belongs to a session that is over.
    let lifetime = infra::secs(ctx.config.session.absolute_lifetime);
    if let Err(e) = store.sweep_memberships(now - lifetime - 86_400).await {
        tracing::warn!(error = %e, "membership sweep failed");
    }
    let before = (now - crate::audit::RETENTION_SECS).saturating_mul(1_000_000);
    if let Err(e) = store.sweep_audit(before).await {
        tracing::warn!(error = %e, "audit sweep failed");
    }
}

/// With `rotate`, one key-rotation step (rotate if due, retire what expired); then reloads the
/// keys if anything changed, including a published key whose time to sign has come.
pub async fn maintain_keys(ctx: &Ctx, rotate: bool) -> Result<(), KeyError> {
    let now = ctx.clock.unix();
    let t = &ctx.config.tokens;
    let policy = RotationPolicy {
        rotation_period: infra::secs(ctx.config.keys.rotation_period),
        publish_ahead: infra::secs(ctx.config.keys.publish_ahead),
        // The longest-lived token a key signs (a registered API's access tokens may live
        // longer than the provider's own), plus a logout token and a margin.
        retire_after: infra::secs(t.access_token_lifetime.max(t.id_token_lifetime))
            .max(ctx.store.longest_api_token_lifetime().await?.unwrap_or(0))
            + 180,
    };
    if rotate {
        keys::maintain(&ctx.store, now, policy, &ctx.config.keys.algorithms).await?;
    }
    if ctx.keys.refresh(&ctx.store, now).await? {
        tracing::info!("signing keys reloaded");
    }
    Ok(())
}
