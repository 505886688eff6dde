//! The Audit API: what was done for each user, by which app, through which API (the actors of
//! an exchanged token, RFC 8693 §4.1).

use super::{PerUser, Running, Settings, checked, now_rfc3339, refused, verifier};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use resource_server::{Actor, RequireScopes, require};
use serde_json::{Value, json};
use std::sync::Arc;

struct Audit {
    settings: Settings,
    read: RequireScopes,
    write: RequireScopes,
    clock: infra::Clock,
    /// Each user's events.
    events: PerUser,
}

/// The Audit API for `settings`. Its feed listener is running when this returns.
pub async fn audit(
    settings: Settings,
    http: reqwest::Client,
    clock: infra::Clock,
) -> anyhow::Result<Running> {
    let (verifier, listener) = verifier(&settings, http, clock.clone()).await?;
    let api = Arc::new(Audit {
        read: require(&verifier, &["audit:read"]),
        write: require(&verifier, &["audit:write"]),
        settings,
        clock,
        events: PerUser::default(),
    });
    let router = Router::new()
        .route("/events", get(list).post(add))
        .with_state(api);
    Ok(Running { router, listener })
}

/// The actors of a token, nearest first.
fn actors(mut actor: Option<&Actor>) -> Vec<String> {
    let mut all = Vec::new();
    while let Some(a) = actor {
        all.push(a.sub.clone());
        actor = a.act.as_deref();
    }
    all
}

async fn list(State(api): State<Arc<Audit>>, request: Parts) -> Response {
    let (token, validation) = match checked(&api.read, &api.settings.audience, &request).await {
        Ok(t) => t,
        Err(refusal) => return refusal,
    };
    let mine = api.events.of(&token.sub);
    Json(json!({"events": mine, "validation": validation})).into_response()
}

async fn add(State(api): State<Arc<Audit>>, request: Parts, body: Bytes) -> Response {
    let (token, validation) = match checked(&api.write, &api.settings.audience, &request).await {
        Ok(t) => t,
        Err(refusal) => return refusal,
    };
    let what = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("what").and_then(|w| w.as_str()).map(str::to_owned));
    let Some(what) = what.filter(|w| !w.is_empty() && w.len() <= 200) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "what (1 to 200 bytes) is required",
        );
    };
    let event = json!({
        "what": what,
        "for": token.sub,
        "client_id": token.client_id,
        "acted_by": actors(token.actor.as_ref()),
        // Bound to the caller's DPoP key, whose proof the layer checked (RFC 9449 §7).
        "sender_constrained": token.dpop_jkt.is_some(),
        "at": now_rfc3339(&api.clock),
    });
    api.events.push(token.sub, event.clone());
    (
        StatusCode::CREATED,
        Json(json!({"event": event, "validation": validation})),
    )
        .into_response()
}
