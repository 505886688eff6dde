//! Hearing revocations: a stand-in for the provider's revocation feed (its catch-up, live
//! events, cuts and refusals under the test's control), and what the verifier makes of it.

use super::{API, Provider, provider};
use crate::revocations::Events;
use crate::{Feed, VerifyError, require};
use axum::Router;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, StreamExt};
use http::{HeaderMap, StatusCode};
use serde_json::json;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub(super) struct StandIn {
    /// The catch-up: every token revoked so far (jti, exp).
    revoked: Mutex<Vec<(String, i64)>>,
    live: broadcast::Sender<(String, i64)>,
    /// Moved on to cut every open stream.
    cuts: watch::Sender<u64>,
    /// Answer 503 instead of a stream.
    refusing: AtomicBool,
    /// Streams opened.
    opened: AtomicUsize,
    /// Requests refused.
    refused: AtomicUsize,
    /// The last request's `Authorization` header and body.
    last: Mutex<Option<(String, String)>>,
}

impl Default for StandIn {
    fn default() -> Self {
        Self {
            revoked: Mutex::default(),
            live: broadcast::channel(64).0,
            cuts: watch::channel(0).0,
            refusing: AtomicBool::new(false),
            opened: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            last: Mutex::default(),
        }
    }
}

impl StandIn {
    /// Revokes `jti`: told live to open streams, and at every catch-up from now on.
    fn revoke(&self, jti: &str, exp: i64) {
        self.revoked.lock().unwrap().push((jti.into(), exp));
        let _ = self.live.send((jti.into(), exp));
    }

    /// The heartbeat: nothing revoked.
    fn alive(&self) {
        let _ = self.live.send((String::new(), 0));
    }

    /// Cuts every open stream; refuses new ones while `refuse`.
    fn cut(&self, refuse: bool) {
        self.refusing.store(refuse, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn serve(&self, headers: &HeaderMap, body: String) -> Response {
        let auth = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        *self.last.lock().unwrap() = Some((auth, body));
        if self.refusing.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        self.opened.fetch_add(1, Ordering::SeqCst);
        let live = self.live.subscribe();
        let mut cuts = self.cuts.subscribe();
        cuts.borrow_and_update();
        let backlog = self.revoked.lock().unwrap().clone();
        let synced = Event::default()
            .event("synced")
            .data(json!({"revoked": backlog.len()}).to_string());
        let first: Vec<Event> = backlog
            .iter()
            .map(|(jti, exp)| revoked(jti, *exp))
            .chain([synced])
            .collect();
        let heard = stream::unfold((live, cuts), |(mut live, mut cuts)| async move {
            tokio::select! {
                Ok((jti, exp)) = live.recv() => Some((revoked(&jti, exp), (live, cuts))),
                _ = cuts.changed() => None,
            }
        });
        let events = stream::iter(first).chain(heard).map(Ok::<_, Infallible>);
        Sse::new(events).into_response()
    }
}

/// A revocation; the empty jti stands for the feed's heartbeat.
fn revoked(jti: &str, exp: i64) -> Event {
    if jti.is_empty() {
        return Event::default().event("alive").data("{}");
    }
    Event::default()
        .event("revoked")
        .data(json!({"jti": jti, "exp": exp}).to_string())
}

pub(super) fn routes(feed: Arc<StandIn>) -> Router {
    Router::new().route(
        "/feed",
        post(move |headers: HeaderMap, body: String| async move { feed.serve(&headers, body) }),
    )
}

/// Waits (generously: the machine may be busy) until `verify` of `token` gives `expected`.
async fn until(v: &crate::Verifier, token: &str, expected: Result<(), VerifyError>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = v.verify(token).await.map(|_| ());
        if got == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {got:?}, waiting for {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Provider {
    fn token_of(&self, jti: &str) -> String {
        self.token(json!({"jti": jti}))
    }
}

#[tokio::test]
async fn a_token_is_refused_once_the_feed_tells_of_its_revocation() {
    let p = provider().await;
    let v = p.verifier().await;
    let exp = p.clock.unix() + 300;
    p.feed.revoke("old", exp);
    let _listener = v.hear_revocations("notes api", "s3cret:!").unwrap();
    // The catch-up: a token revoked before the API listened is refused.
    until(&v, &p.token_of("old"), Err(VerifyError::Revoked)).await;
    until(&v, &p.token_of("j1"), Ok(())).await;
    p.feed.revoke("j1", exp);
    until(&v, &p.token_of("j1"), Err(VerifyError::Revoked)).await;
    v.verify(&p.token_of("j2")).await.unwrap();
    // As the API's client (RFC 6749 §2.3.1: form-encoded, then Basic), for this API.
    let (auth, body) = p.feed.last.lock().unwrap().clone().unwrap();
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("notes+api:s3cret%3A%21");
    assert_eq!(auth, format!("Basic {basic}"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form, vec![("resource".to_owned(), API.to_owned())]);
}

#[tokio::test]
async fn a_reconnect_catches_up_with_what_was_revoked_while_the_feed_was_away() {
    let p = provider().await;
    let v = p.verifier().await;
    let _listener = v.hear_revocations("api", "secret").unwrap();
    let token = p.token_of("j1");
    until(&v, &token, Ok(())).await;
    // The stream is cut and cannot be opened again for now; meanwhile j1 is revoked, which
    // no open stream hears.
    p.feed.cut(true);
    p.feed
        .revoked
        .lock()
        .unwrap()
        .push(("j1".into(), p.clock.unix() + 300));
    // Within the ten seconds a lost feed is trusted, the token still passes (the clock is
    // frozen); once the feed is back, the catch-up tells of it.
    v.verify(&token).await.unwrap();
    p.feed.refusing.store(false, Ordering::SeqCst);
    until(&v, &token, Err(VerifyError::Revoked)).await;
    assert!(p.feed.opened.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn while_revocations_cannot_be_heard_tokens_are_not_accepted() {
    let p = provider().await;
    let v = p.verifier().await;
    p.feed.cut(true);
    let listener = v.hear_revocations_at(Feed {
        stale_after: Duration::from_secs(10),
        ..Feed::new(format!("{}/feed", p.issuer), "api", "secret")
    });
    let token = p.token_of("j1");
    // Never synced: unknown, and the layer answers 503 (to be tried again).
    assert_eq!(v.verify(&token).await, Err(VerifyError::RevocationsUnknown));
    let app = Router::new().route(
        "/notes",
        get(|| async { "notes" }).route_layer(require(&v, &["notes:read"])),
    );
    let bearer = format!("Bearer {token}");
    let (status, _, body) = super::call(&app, &[&bearer]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "temporarily_unavailable");
    // Synced: accepted. Lost: accepted for ten seconds, then not, until heard again.
    p.feed.refusing.store(false, Ordering::SeqCst);
    until(&v, &token, Ok(())).await;
    let refused = p.feed.refused.load(Ordering::SeqCst);
    p.feed.cut(true);
    // Once the listener has noticed (it tried again, and was refused), time passes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while p.feed.refused.load(Ordering::SeqCst) == refused {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cut went unnoticed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p.clock.advance(Duration::from_secs(11));
    until(&v, &token, Err(VerifyError::RevocationsUnknown)).await;
    p.feed.refusing.store(false, Ordering::SeqCst);
    until(&v, &token, Ok(())).await;
    // Heard, it stays trusted while time passes; silent for longer than ten seconds, not.
    p.clock.advance(Duration::from_secs(8));
    p.feed.alive();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while v.revocations.heard_at() != Some(p.clock.unix()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the heartbeat went unheard"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p.clock.advance(Duration::from_secs(8));
    until(&v, &token, Ok(())).await;
    p.clock.advance(Duration::from_secs(3));
    until(&v, &token, Err(VerifyError::RevocationsUnknown)).await;
    p.feed.alive();
    until(&v, &token, Ok(())).await;
    // Dropped, the listener stops, and nothing is accepted without it.
    drop(listener);
    assert_eq!(v.verify(&token).await, Err(VerifyError::RevocationsUnknown));
    let opened = p.feed.opened.load(Ordering::SeqCst);
    p.feed.cut(false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p.feed.opened.load(Ordering::SeqCst), opened);
}

#[tokio::test]
async fn a_discovery_document_without_a_feed_is_an_error_and_expired_revocations_are_forgotten() {
    let p = provider().await;
    let v = p.verifier().await;
    let _listener = v.hear_revocations("api", "secret").unwrap();
    let now = p.clock.unix();
    p.feed.revoke("soon", now + 5);
    p.feed.revoke("later", now + 300);
    until(&v, &p.token_of("later"), Err(VerifyError::Revoked)).await;
    assert_eq!(v.revocations.count(), 2);
    // Past `exp` and the leeway, a token is refused as expired anyway: at the next catch-up
    // its revocation is forgotten.
    p.clock.advance(Duration::from_secs(40));
    p.feed.cut(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while v.revocations.count() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "never forgotten");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let bare = crate::Verifier::with_jwks_uri(
        crate::Config::new(p.issuer.clone(), API),
        format!("{}/jwks", p.issuer),
        reqwest::Client::new(),
        p.clock.clone(),
    );
    assert!(matches!(
        bare.hear_revocations("api", "secret"),
        Err(crate::SetupError::NoFeed)
    ));
}

#[test]
fn events_are_read_across_chunks_and_line_endings() {
    let mut e = Events::default();
    assert!(e.push(b": keep-alive\n\nevent: revo").unwrap().is_empty());
    let got = e
        .push(b"ked\r\ndata: {\"jti\":\"a\"}\r\n\r\ndata: x\ndata: y\n\n")
        .unwrap();
    assert_eq!(
        got,
        vec![
            ("revoked".to_owned(), r#"{"jti":"a"}"#.to_owned()),
            ("message".to_owned(), "x\ny".to_owned()),
        ]
    );
    let long = vec![b'a'; 20_000];
    assert!(e.push(&long).is_err());
}
