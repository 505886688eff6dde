//! The revocation feed of APIs: every access token addressed to an API that is revoked, for
//! whatever cause (the token revoked, its grant revoked by a replayed code or a reused refresh
//! token, its SSO session ended, the app disconnected, a new password, the account disabled or
//! removed), told to the API while the token could still be accepted, so that an API that
//! validates tokens locally refuses a revoked one within a second.
//!
//! The source is the token registry itself (`access_tokens`, see `store::tokens`): a revocation
//! marks the API's tokens revoked in the same transaction as the grant, session or user it
//! revokes, so nothing the feed must tell can be missing from it, and nothing is lost when an
//! instance stops. An API subscribes at one instance (`web::oauth::feed`, a stream of
//! server-sent events authenticated as the API's client): it is sent the revoked tokens not yet
//! expired (its catch-up, so a reconnect misses nothing however long it was away), then every
//! revocation as this instance's poll finds it.
//!
//! The poll runs only while someone subscribes, every [`POLL_INTERVAL`] and at once when this
//! process commits a revocation, over the rows revoked since [`OVERLAP_SECS`] before its last
//! successful poll by the revoking instance's clock (a slow commit, a clock behind, a poll that
//! failed for a while: still seen), each row sent once. The instances and the command line
//! must keep their clocks within that of each other. After each successful poll, at most every
//! [`HEARTBEAT`], the subscribers are told that the feed is alive: an API that stops hearing it
//! knows that it no longer hears revocations either. One client holds at most
//! [`MAX_STREAMS_PER_CLIENT`] streams, each for at most [`STREAM_LIFETIME`].
//! A message bus between instances (Redis pub/sub) was weighed and not used: it forgets what
//! it carries while a subscriber is away and needs a delivery log beside it anyway, and the
//! command line revokes without one; a poll of an indexed table costs a few queries a second
//! per instance, on every backend alike.

use crate::store::{RevokedToken, Store};
use infra::Clock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// How often the feed looks for revocations made elsewhere (another instance, the command
/// line) while someone subscribes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How far back each poll looks, in seconds of the revoking instance's clock: longer than a
/// revocation's transaction can take (it is bounded by the request timeout) plus the clock
/// skew between instances.
pub const OVERLAP_SECS: i64 = 30;

/// How long after its expiry a revoked token is still told at catch-up, in seconds: an API
/// accepts a token a little past `exp` (its clock leeway), and must still refuse a revoked one
/// then.
pub const EXPIRY_GRACE_SECS: i64 = 60;

/// How often a subscriber hears that the feed is alive when nothing is revoked.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// How many streams one client may hold open at once (several replicas of an API).
pub const MAX_STREAMS_PER_CLIENT: usize = 16;

/// How long one stream lasts before the API is asked to reconnect (and catch up).
pub const STREAM_LIFETIME: Duration = Duration::from_secs(3600);

/// How many poll results a subscriber may fall behind by before it is dropped (it reconnects
/// and catches up).
const BACKLOG: usize = 256;

/// The feed of one provider instance. Cheap to clone.
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Clock,
    news: broadcast::Sender<Arc<[RevokedToken]>>,
    closed: watch::Sender<bool>,
    /// Open streams per client.
    streams: Mutex<HashMap<String, usize>>,
}

/// One subscriber's view of the feed: the revocations found after it subscribed.
pub struct Subscription {
    news: broadcast::Receiver<Arc<[RevokedToken]>>,
    closed: watch::Receiver<bool>,
    ends_at: tokio::time::Instant,
    /// Counts this stream against its client while it lives.
    _slot: Slot,
}

/// A client's hold on one of its streams.
struct Slot {
    feed: Arc<Inner>,
    client_id: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut streams = self.feed.streams();
        if let Some(n) = streams.get_mut(&self.client_id) {
            *n -= 1;
            if *n == 0 {
                streams.remove(&self.client_id);
            }
        }
    }
}

impl Inner {
    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // Counts only: still right after a panic elsewhere.
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a subscriber hears next.
#[derive(Debug)]
pub enum Heard {
    /// Revoked tokens (of every API: the subscriber keeps its own); none at all is the
    /// heartbeat.
    Revoked(Arc<[RevokedToken]>),
    /// The subscriber fell too far behind, its stream is over, or the instance is stopping:
    /// it must reconnect.
    End,
}

/// The client already holds [`MAX_STREAMS_PER_CLIENT`] streams.
#[derive(Debug)]
pub struct TooManyStreams;

impl Subscription {
    pub async fn next(&mut self) -> Heard {
        if *self.closed.borrow() {
            return Heard::End;
        }
        tokio::select! {
            news = self.news.recv() => match news {
                Ok(batch) => Heard::Revoked(batch),
                // Lagged: what was skipped is lost to this stream, so it ends, and the API's
                // reconnect catches up from the registry.
                Err(_) => Heard::End,
            },
            _ = self.closed.changed() => Heard::End,
            () = tokio::time::sleep_until(self.ends_at) => Heard::End,
        }
    }
}

impl Feed {
    pub fn new(store: Store, clock: Clock) -> Self {
        let (news, _) = broadcast::channel(BACKLOG);
        let (closed, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                news,
                closed,
                streams: Mutex::default(),
            }),
        }
    }

    /// Subscribes for `client_id`; call before [`Feed::catch_up`], so that a revocation
    /// committed between the two is heard (perhaps twice), never lost.
    pub fn subscribe(&self, client_id: &str) -> Result<Subscription, TooManyStreams> {
        {
            let mut streams = self.inner.streams();
            let n = streams.entry(client_id.to_owned()).or_default();
            if *n >= MAX_STREAMS_PER_CLIENT {
                return Err(TooManyStreams);
            }
            *n += 1;
        }
        Ok(Subscription {
            news: self.inner.news.subscribe(),
            closed: self.inner.closed.subscribe(),
            ends_at: tokio::time::Instant::now() + STREAM_LIFETIME,
            _slot: Slot {
                feed: self.inner.clone(),
                client_id: client_id.to_owned(),
            },
        })
    }

    /// The tokens of API `resource_id` revoked and not yet expired (by more than
    /// [`EXPIRY_GRACE_SECS`]).
    pub async fn catch_up(&self, resource_id: &str) -> Result<Vec<RevokedToken>, sqlx::Error> {
        let after = self.inner.clock.unix() - EXPIRY_GRACE_SECS;
        self.inner
            .store
            .api_tokens_revoked(resource_id, after)
            .await
    }

    /// Ends every subscription (the instance is stopping: the APIs reconnect to another).
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// The poll: runs until [`Feed::close`], telling subscribers what it finds.
    pub async fn run(self) {
        let inner = &self.inner;
        let mut closed = inner.closed.subscribe();
        let mut told = Told::default();
        // The clock reading of the last successful poll, and when anything was last sent.
        let mut polled: Option<i64> = None;
        let mut sent = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = inner.store.revocation_committed() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = closed.changed() => return,
            }
            if inner.news.receiver_count() == 0 {
                // Whoever subscribes next catches up from the registry.
                told = Told::default();
                polled = None;
                continue;
            }
            let now = inner.clock.unix();
            let since = polled.map_or(now, |p| p.min(now)) - OVERLAP_SECS;
            match inner.store.api_tokens_revoked_since(since).await {
                Ok(rows) => {
                    polled = Some(now);
                    let fresh = told.fresh(rows, since);
                    if !fresh.is_empty() || sent.elapsed() >= HEARTBEAT {
                        sent = tokio::time::Instant::now();
                        // No receiver left since the count: nothing to tell.
                        let _ = inner.news.send(fresh.into());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the revocation feed could not poll"),
            }
        }
    }
}

/// What the poll has told already, within its window.
#[derive(Default)]
struct Told {
    /// jti → revoked_at.
    seen: HashMap<String, i64>,
}

impl Told {
    /// The rows not told before; forgets those that fell out of the window (they will not be
    /// found again).
    fn fresh(&mut self, rows: Vec<RevokedToken>, since: i64) -> Vec<RevokedToken> {
        self.seen.retain(|_, revoked_at| *revoked_at >= since);
        rows.into_iter()
            .filter(|r| self.seen.insert(r.jti.clone(), r.revoked_at).is_none())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(jti: &str, revoked_at: i64) -> RevokedToken {
        RevokedToken {
            resource_id: "https://api.example".into(),
            jti: jti.into(),
            expires_at: revoked_at + 300,
            revoked_at,
        }
    }

    #[test]
    fn each_revocation_is_told_once_within_the_window() {
        let mut told = Told::default();
        let first = told.fresh(vec![row("a", 100), row("b", 101)], 80);
        assert_eq!(first.len(), 2);
        // The next poll finds them again, and one more that committed late.
        let second = told.fresh(vec![row("a", 100), row("b", 101), row("c", 95)], 81);
        assert_eq!(second, vec![row("c", 95)]);
        // Out of the window, forgotten; never found again by a poll that far on.
        let third = told.fresh(vec![row("d", 130)], 101);
        assert_eq!(third, vec![row("d", 130)]);
        assert!(!told.seen.contains_key("a") && told.seen.contains_key("b"));
    }
}
