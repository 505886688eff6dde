//! Hearing revocations: the provider's revocation feed, kept open in the background, tells
//! the API which of its tokens were revoked (the token itself, its grant, its SSO session, its
//! user's password or account), so that a token validated locally is refused within a second
//! of its revocation, with no call to the provider per request.
//!
//! The feed is a stream of server-sent events (the provider's `/revocation-feed`, named in its
//! discovery document as `gatehouse_revocation_feed_endpoint`) that the API's client opens with
//! its credentials: first every revoked token of this API not yet expired, then `synced`, then
//! each revocation as it happens, and `alive` every five seconds while nothing does (sent only
//! after the provider has looked for revocations, so it means "nothing was revoked", not just
//! "the connection is up"). When the stream breaks or falls silent, the listener reconnects
//! (after 0.1 s, doubling to 5 s, each wait randomised by up to half so that an API's replicas
//! do not return all at once) and is sent the revoked tokens again, so nothing is missed
//! however long it was away. The events are single-line JSON: the few lines that read them are
//! here rather than a general SSE client crate and the stream stack it brings.
//!
//! While the feed is not heard, the API cannot know of a revocation, so it stops accepting
//! tokens ([`VerifyError::RevocationsUnknown`], a 503 from the layer) before the first
//! `synced`, once nothing has been heard from a synced stream for longer than
//! [`Feed::stale_after`] (ten seconds unless set: an API that prefers to stay up on old news
//! sets it longer), and once its [`Listener`] is dropped.

use crate::verify::VerifyError;
use infra::Clock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long the stream may stay silent (the provider says something every five seconds)
/// before it is taken for dead and opened again.
const SILENCE: Duration = Duration::from_secs(12);
/// The first wait before reconnecting, doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long one stream is kept before it is opened again (and caught up): whatever overall
/// timeout the HTTP client was built with, this one applies to the feed.
const STREAM_LIFETIME: Duration = Duration::from_secs(3600);
/// A line or an event longer than this is not the provider's: the stream is dropped.
const MAX_EVENT_BYTES: usize = 16 * 1024;

/// Where and as whom the API hears its revocations.
#[derive(Clone)]
pub struct Feed {
    /// The provider's feed endpoint (`gatehouse_revocation_feed_endpoint`).
    pub endpoint: String,
    /// The API's client (registered with the API: `provider resources add … --client`).
    pub client_id: String,
    pub client_secret: String,
    /// How long tokens are still accepted after the feed was last heard (without news, a
    /// revoked token would be accepted that long). Ten seconds by default.
    pub stale_after: Duration,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("stale_after", &self.stale_after)
            .finish_non_exhaustive()
    }
}

impl Feed {
    pub fn new(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            stale_after: Duration::from_secs(10),
        }
    }
}

/// What the API knows of its revoked tokens.
pub(crate) struct Revocations {
    state: Mutex<State>,
    clock: Clock,
    /// How long past `exp` a revoked token is remembered (the verifier's leeway).
    leeway: i64,
}

#[derive(Default)]
struct State {
    /// Whether a feed is listened to at all (without one, nothing is ever refused here).
    listening: bool,
    stale_after: i64,
    /// jti → exp.
    revoked: HashMap<String, i64>,
    /// The current stream has sent `synced`.
    synced: bool,
    /// When a synced stream last said something (`None` before the first, and once the
    /// listener is dropped).
    heard_at: Option<i64>,
}

impl Revocations {
    pub(crate) fn new(clock: Clock, leeway: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            clock,
            leeway: i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves only a map and flags behind: still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn listen(&self, stale_after: Duration) {
        let mut s = self.state();
        s.listening = true;
        s.stale_after = i64::try_from(stale_after.as_secs()).unwrap_or(i64::MAX);
    }

    /// Whether a token may be accepted as far as revocations go.
    pub(crate) fn check(&self, jti: &str) -> Result<(), VerifyError> {
        let s = self.state();
        if !s.listening {
            return Ok(());
        }
        if s.revoked.contains_key(jti) {
            return Err(VerifyError::Revoked);
        }
        let now = self.clock.unix();
        if s.heard_at.is_some_and(|t| now - t <= s.stale_after) {
            Ok(())
        } else {
            Err(VerifyError::RevocationsUnknown)
        }
    }

    fn revoked(&self, jti: String, exp: i64) {
        let now = self.clock.unix();
        let mut s = self.state();
        s.revoked.insert(jti, exp);
        if s.synced {
            s.heard_at = Some(now);
        }
    }

    /// The provider looked and found nothing to tell.
    fn alive(&self) {
        let now = self.clock.unix();
        let mut s = self.state();
        if s.synced {
            s.heard_at = Some(now);
        }
    }

    /// The stream's catch-up is complete: forget what has expired meanwhile.
    fn synced(&self) {
        self.prune();
        let now = self.clock.unix();
        let mut s = self.state();
        s.synced = true;
        s.heard_at = Some(now);
    }

    /// The stream broke: what it said stays true, for [`Feed::stale_after`] after it was last
    /// heard.
    fn lost(&self) {
        self.state().synced = false;
    }

    /// The listener is gone: nothing more will be heard.
    fn deaf(&self) {
        let mut s = self.state();
        s.synced = false;
        s.heard_at = None;
    }

    /// Forgets expired tokens now and then (a long-lived stream is never re-synced).
    fn prune(&self) {
        let now = self.clock.unix();
        let leeway = self.leeway;
        self.state()
            .revoked
            .retain(|_, exp| exp.saturating_add(leeway) > now);
    }

    #[cfg(test)]
    pub(crate) fn heard_at(&self) -> Option<i64> {
        self.state().heard_at
    }

    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.state().revoked.len()
    }
}

/// Listens to the feed until dropped (the task is aborted then, and the verifier accepts no
/// token until another listener hears the feed).
#[must_use = "the feed is heard only while its Listener is kept"]
pub struct Listener {
    task: tokio::task::JoinHandle<()>,
    revocations: std::sync::Arc<Revocations>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
        self.revocations.deaf();
    }
}

impl Listener {
    pub(crate) fn spawn(
        revocations: std::sync::Arc<Revocations>,
        feed: Feed,
        audience: String,
        http: reqwest::Client,
    ) -> Self {
        revocations.listen(feed.stale_after);
        let held = revocations.clone();
        let task = tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let mut synced = false;
                if let Err(e) =
                    read_stream(&revocations, &feed, &audience, &http, &mut synced).await
                {
                    tracing::warn!(error = %e, "the revocation feed failed");
                }
                revocations.lost();
                if synced {
                    backoff = FIRST_BACKOFF;
                }
                // Up to half again at random: replicas sent away together come back apart.
                let jitter = rand::random_range(0..=backoff.as_millis() / 2);
                let jitter = Duration::from_millis(u64::try_from(jitter).unwrap_or(0));
                tokio::time::sleep(backoff + jitter).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
        Self {
            task,
            revocations: held,
        }
    }
}

/// One stream, read until it ends (`Ok`: the provider closed it, say to stop) or fails;
/// `synced` tells whether it got as far as `synced`.
async fn read_stream(
    revocations: &Revocations,
    feed: &Feed,
    audience: &str,
    http: &reqwest::Client,
    synced: &mut bool,
) -> Result<(), String> {
    let mut response = http
        .post(&feed.endpoint)
        .basic_auth(
            form_encode(&feed.client_id),
            Some(form_encode(&feed.client_secret)),
        )
        .form(&[("resource", audience)])
        .timeout(STREAM_LIFETIME)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!(
            "{status}: {}",
            body.chars().take(200).collect::<String>()
        ));
    }
    let mut events = Events::default();
    let mut seen = 0usize;
    loop {
        let chunk = tokio::time::timeout(SILENCE, response.chunk())
            .await
            .map_err(|_| "the stream fell silent".to_owned())?
            .map_err(|e| e.to_string())?;
        let Some(chunk) = chunk else { return Ok(()) };
        for (name, data) in events.push(&chunk)? {
            match name.as_str() {
                "revoked" => {
                    let t: Revoked = serde_json::from_str(&data).map_err(|e| e.to_string())?;
                    revocations.revoked(t.jti, t.exp);
                    seen += 1;
                    if seen.is_multiple_of(1024) {
                        revocations.prune();
                    }
                }
                "synced" => {
                    revocations.synced();
                    *synced = true;
                }
                "alive" => revocations.alive(),
                _ => {}
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct Revoked {
    jti: String,
    exp: i64,
}

/// RFC 6749 §2.3.1: the client id and secret are form-encoded before the Basic encoding.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Server-sent events as they arrive in chunks (the HTML Living Standard's event stream
/// format, §9.2.6: lines, a blank line ends an event, `:` starts a comment).
#[derive(Default)]
pub(crate) struct Events {
    line: Vec<u8>,
    name: String,
    data: String,
}

impl Events {
    /// The events that `chunk` completes, as (event name, data).
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<(String, String)>, String> {
        let mut done = Vec::new();
        for &b in chunk {
            if b != b'\n' {
                self.line.push(b);
                if self.line.len() > MAX_EVENT_BYTES {
                    return Err("an event stream line is too long".into());
                }
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let line = String::from_utf8(line).map_err(|_| "the event stream is not UTF-8")?;
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                let name = std::mem::take(&mut self.name);
                let data = std::mem::take(&mut self.data);
                if !data.is_empty() || !name.is_empty() {
                    done.push((
                        if name.is_empty() {
                            "message".into()
                        } else {
                            name
                        },
                        data,
                    ));
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => value.clone_into(&mut self.name),
                "data" => {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                    if self.data.len() > MAX_EVENT_BYTES {
                        return Err("an event is too long".into());
                    }
                }
                _ => {}
            }
        }
        Ok(done)
    }
}
