//! The HTTP server loop, with the limits a public endpoint needs: at most
//! `limits.max_connections` connections at once (the rest wait in the accept backlog), the
//! request head read within `limits.header_read_timeout` (a client that trickles it is
//! disconnected), a kept-alive connection closed after the same time without a byte from its
//! client (idle connections cannot hold the slots), and the head at most
//! `limits.max_header_bytes` (hyper answers 431 beyond it). Bodies, URL length and each
//! request's time are limited by layers in the router (`web::router`).
//!
//! Written over hyper directly because `axum::serve` does not expose these settings, and
//! hyper's own header timeout does not cover a kept-alive connection between requests.

use crate::config::LimitsConfig;
use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use infra::client_addr::{self, ClientAddr, Proxies};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// A connection's transport that remembers when its client last sent something.
struct Watched {
    io: TokioIo<TcpStream>,
    epoch: Instant,
    last_read_ms: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_read_ms.store(ms, Ordering::Relaxed);
    }
}

impl hyper::rt::Read for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if polled.is_ready() {
            self.touch();
        }
        polled
    }
}

impl hyper::rt::Write for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish
/// (for up to `deadline`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    (limits, deadline): (&LimitsConfig, Duration),
    proxies: Arc<Proxies>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stopping_tx, stopping) = watch::channel(false);
    let idle = limits.header_read_timeout;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(100);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, never spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let proxies = proxies.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let client = client_addr::resolve(addr.ip(), req.headers(), &proxies);
            req.extensions_mut().insert(ConnectInfo(addr));
            req.extensions_mut().insert(ClientAddr(client));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let last_read_ms = Arc::new(AtomicU64::new(0));
        let io = Watched {
            io: TokioIo::new(stream),
            epoch: Instant::now(),
            last_read_ms: last_read_ms.clone(),
        };
        let epoch = io.epoch;
        let conn = http.serve_connection(io, service);
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let mut closing = false;
            loop {
                tokio::select! {
                    // Errors here are the client's (a reset, a timeout, a malformed head);
                    // hyper has already answered what deserved an answer.
                    _ = conn.as_mut() => break,
                    _ = stopping.changed(), if !closing => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    () = tokio::time::sleep(idle / 4), if !closing => {
                        let last = Duration::from_millis(last_read_ms.load(Ordering::Relaxed));
                        if epoch.elapsed().saturating_sub(last) > idle {
                            // Nothing from the client for a while: finish what is in flight
                            // and close.
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    // Every connection holds a slot until it ends: all slots back means all done.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(deadline, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(?deadline, "stopping with requests still in flight");
    }
    Ok(())
}
