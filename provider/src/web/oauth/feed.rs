//! `POST /revocation-feed`: an API's client hears which of the API's access tokens are
//! revoked, as server-sent events (who may: `protocol::revocation::feed_subscriber`; where the
//! revocations come from: `crate::feed`). A POST, so that the client authenticates as at the
//! token endpoint, by any of its methods.
//!
//! The stream: an event `revoked` (data `{"jti": …, "exp": …}`) for each revoked token not yet
//! expired (the catch-up), then `synced` (data `{"revoked": N}`, the catch-up's count), then
//! a `revoked` for each revocation as it is found, and `alive` (data `{}`) after a successful
//! poll when nothing was said for five seconds: an API that stops hearing it cannot trust its
//! list of revoked tokens. The stream ends after an hour, when the instance stops or when the
//! subscriber falls behind; the API reconnects, and catches up again. A client holds at most
//! sixteen streams at once (429 beyond).

use crate::feed::{Heard, Subscription};
use crate::protocol::error::TokenError;
use crate::protocol::revocation;
use crate::store::RevokedToken;
use crate::web::error::no_store;
use crate::web::extract::ClientForm;
use crate::web::state::AppState;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use std::convert::Infallible;

/// When a client that holds all its streams may try again, in seconds.
const HELD_STREAMS_RETRY: u64 = 5;

pub async fn subscribe_feed(
    State(st): State<AppState>,
    ClientForm { client, form }: ClientForm,
) -> Result<Response, TokenError> {
    let limit = st.ctx.config.limits.introspection_rate_per_client;
    st.client_rate(&format!("feed:{}", client.client_id), limit)
        .map_err(TokenError::RateLimited)?;
    let resource = revocation::feed_subscriber(&st.ctx, &client, &form).await?;
    // Subscribed before the catch-up is read: nothing committed in between is missed.
    let live = (st.ctx.feed.subscribe(&client.client_id))
        .map_err(|_| TokenError::RateLimited(HELD_STREAMS_RETRY))?;
    let backlog = st.ctx.feed.catch_up(&resource).await?;
    let sse = Sse::new(events(backlog, live, resource));
    Ok((no_store(), sse).into_response())
}

/// The catch-up, `synced`, then what the subscription hears of `resource`.
fn events(
    backlog: Vec<RevokedToken>,
    live: Subscription,
    resource: String,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let synced = Event::default()
        .event("synced")
        .data(format!(r#"{{"revoked":{}}}"#, backlog.len()));
    let first: Vec<Event> = backlog.iter().map(revoked).chain([synced]).collect();
    let heard = stream::unfold((live, resource), |(mut live, resource)| async move {
        match live.next().await {
            Heard::Revoked(batch) if batch.is_empty() => {
                let alive = Event::default().event("alive").data("{}");
                Some((stream::iter(vec![alive]), (live, resource)))
            }
            Heard::Revoked(batch) => {
                let mine: Vec<Event> = batch
                    .iter()
                    .filter(|t| t.resource_id == resource)
                    .map(revoked)
                    .collect();
                Some((stream::iter(mine), (live, resource)))
            }
            Heard::End => None,
        }
    });
    stream::iter(first)
        .chain(heard.flatten())
        .map(Ok::<_, Infallible>)
}

fn revoked(t: &RevokedToken) -> Event {
    let data = serde_json::json!({"jti": t.jti, "exp": t.expires_at});
    Event::default().event("revoked").data(data.to_string())
}
