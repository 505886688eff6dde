//! [`App`]: a provider instance: its context, its routes, and its background work (the
//! maintenance, the back-channel logout outbox and the revocation feed's poll), served until
//! told to stop.

use crate::config::Config;
use crate::context::Ctx;
use crate::logout::outbox::Outbox;
use crate::maintenance::Maintenance;
use crate::web::state::AppState;
use anyhow::Context as _;
use axum::Router;
use infra::Clock;
use infra::client_addr::{self, Proxies};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A configured provider, ready to serve.
pub struct App {
    ctx: Arc<Ctx>,
    web: AppState,
    maintenance: Maintenance,
    outbox: Outbox,
    /// `trusted_proxies`, parsed, and their header.
    proxies: Arc<Proxies>,
    /// The `/metrics` listener (`metrics_listen`), bound at start.
    metrics: Option<TcpListener>,
}

impl App {
    /// Connects to the store, runs migrations, loads (or creates) signing keys.
    pub async fn new(config: Config, clock: Clock) -> anyhow::Result<Self> {
        infra::metrics::install();
        crate::users::password::prepare_decoy().await?;
        let proxies = Arc::new(Proxies {
            trusted: client_addr::parse_trusted(&config.trusted_proxies)
                .map_err(anyhow::Error::msg)?,
            header: config.trusted_proxy_header,
        });
        let metrics = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (metrics_listen)"))?,
            ),
            None => None,
        };
        let ctx = Arc::new(Ctx::open(config, clock).await?);
        Ok(Self {
            metrics,
            proxies,
            web: AppState::new(ctx.clone()),
            maintenance: Maintenance::new(ctx.clone())?,
            outbox: Outbox::new(ctx.clone())?,
            ctx,
        })
    }

    /// The provider's context (its store, keys, sessions and clock).
    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// Where `/metrics` is served, if anywhere (`metrics_listen`, bound).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// This instance's maintenance (also run by hand in tests).
    pub fn maintenance(&self) -> &Maintenance {
        &self.maintenance
    }

    /// The whole HTTP surface.
    pub fn router(&self) -> Router {
        crate::web::router::router(self.web.clone())
    }

    /// Serves on `listener` until `shutdown` completes; meanwhile sweeps expired sessions and
    /// codes, and delivers back-channel logouts, in the background.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        let limits = self.ctx.config.limits.clone();
        let lease_holder = self.maintenance.instance_id().to_owned();
        let sweeper = self.maintenance.spawn();
        let outbox = self.outbox.spawn();
        let feed = tokio::spawn(self.ctx.feed.clone().run());
        // On the stop signal readiness goes first (503), while the instance keeps serving for
        // `shutdown.drain_delay`, so that load balancers move away before anything is refused;
        // then the feed's streams (which never end by themselves) are closed, so that the APIs
        // move to another instance, and the listener, while requests in flight finish.
        let closing = self.ctx.feed.clone();
        let ctx = self.ctx.clone();
        let shutdown = async move {
            shutdown.await;
            ctx.start_draining();
            let drain = ctx.config.shutdown.drain_delay;
            tracing::info!(?drain, "stopping: not ready any more, still serving");
            tokio::time::sleep(drain).await;
            closing.close();
        };
        let metrics = self.metrics.map(|listener| {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, crate::web::router::metrics_router()).await {
                    tracing::warn!(error = %e, "the metrics listener stopped");
                }
            })
        });
        let deadline = self.ctx.config.shutdown.deadline;
        let result = crate::web::server::serve(
            listener,
            router,
            (&limits, deadline),
            self.proxies,
            shutdown,
        )
        .await;
        sweeper.abort();
        // Ended before the lease is given up, so that no round of it takes the lease again.
        let _ = sweeper.await;
        Maintenance::release(&self.ctx, &lease_holder).await;
        outbox.abort();
        feed.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        result
    }
}
