//! The Notes API: each user's notes, written by one app and read by another. A new note is
//! also recorded at the Audit API, on the user's behalf, with a token exchanged for the one
//! the note came with, bound to this API's own DPoP key (RFC 9449): a token taken from the
//! call to Audit is of no use without the key.

use super::{PerUser, Running, Settings, checked, now_rfc3339, refused, text_of, verifier};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderMap, StatusCode};
use resource_server::{ProofKey, RequireScopes, Verifier, require};
use serde_json::{Value, json};
use std::sync::Arc;

struct Notes {
    settings: Settings,
    verifier: Arc<Verifier>,
    read: RequireScopes,
    write: RequireScopes,
    /// The Audit API, if notes are audited.
    audit: Option<AuditApi>,
    http: reqwest::Client,
    clock: infra::Clock,
    /// Each user's notes.
    notes: PerUser,
    /// This API's DPoP key: the tokens it obtains for Audit are bound to it.
    proof_key: ProofKey,
}

/// Where the Audit API is: its resource indicator (what a token for it names), and the base
/// URL it is called at (the same, unless it is reached by another address).
#[derive(Clone, Debug)]
pub struct AuditApi {
    pub resource: String,
    pub url: String,
}

/// The Notes API for `settings`, auditing each new note at `audit` when given. Its feed
/// listener is running when this returns.
pub async fn notes(
    settings: Settings,
    audit: Option<AuditApi>,
    http: reqwest::Client,
    clock: infra::Clock,
) -> anyhow::Result<Running> {
    let (verifier, listener) = verifier(&settings, http.clone(), clock.clone()).await?;
    let proof_key = ProofKey::generate(clock.clone())?;
    let api = Arc::new(Notes {
        proof_key,
        read: require(&verifier, &["notes:read"]),
        write: require(&verifier, &["notes:write"]),
        settings,
        verifier,
        audit,
        http,
        clock,
        notes: PerUser::default(),
    });
    let router = Router::new()
        .route("/notes", get(list).post(add))
        .with_state(api);
    Ok(Running { router, listener })
}

async fn list(State(api): State<Arc<Notes>>, request: Parts) -> Response {
    let (token, validation) = match checked(&api.read, &api.settings.audience, &request).await {
        Ok(t) => t,
        Err(refusal) => return refusal,
    };
    let body = json!({
        "sub": token.sub,
        "client_id": token.client_id,
        "notes": api.notes.of(&token.sub),
        "validation": validation,
    });
    Json(body).into_response()
}

async fn add(State(api): State<Arc<Notes>>, request: Parts, body: Bytes) -> Response {
    let (token, validation) = match checked(&api.write, &api.settings.audience, &request).await {
        Ok(t) => t,
        Err(refusal) => return refusal,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a JSON body is required",
        );
    };
    let Some(text) = text_of(&body) else {
        return refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_text",
            "text must be 1 to 500 characters",
        );
    };
    let note = json!({
        "text": text,
        "by_app": token.client_id,
        "at": now_rfc3339(&api.clock),
    });
    api.notes.push(token.sub.clone(), note.clone());
    let audited = match &api.audit {
        Some(audit) => record(&api, &request.headers, audit).await,
        None => Value::Null,
    };
    let body = json!({"note": note, "audit": audited, "validation": validation});
    (StatusCode::CREATED, Json(body)).into_response()
}

/// Records the new note at the Audit API, as the user, through a token exchanged for the one
/// the request carried: what Audit answered, or why it could not be asked.
async fn record(api: &Notes, headers: &HeaderMap, audit: &AuditApi) -> Value {
    let Ok((_, subject)) = resource_server::presented(headers) else {
        return json!({"error": "no access token"});
    };
    let credentials = (
        api.settings.client_id.as_str(),
        api.settings.client_secret.as_str(),
    );
    let key = Some(&api.proof_key);
    let exchanged = api
        .verifier
        .exchange_with(
            credentials,
            subject,
            &audit.resource,
            Some("audit:write"),
            key,
        )
        .await;
    let token = match exchanged {
        Ok(t) => t,
        Err(e) => return json!({"error": e.to_string()}),
    };
    let url = format!("{}/events", audit.url.trim_end_matches('/'));
    let mut request = api.http.post(&url).json(&json!({"what": "note written"}));
    request = if token.token_type.eq_ignore_ascii_case("DPoP") {
        match api
            .proof_key
            .authorization("POST", &url, &token.access_token)
        {
            Ok((authorization, proof)) => match http::HeaderValue::from_str(&authorization) {
                Ok(mut value) => {
                    // As `bearer_auth` marks it: kept out of `Debug` and header compression.
                    value.set_sensitive(true);
                    request
                        .header(http::header::AUTHORIZATION, value)
                        .header("DPoP", proof)
                }
                Err(e) => return json!({"error": e.to_string()}),
            },
            Err(e) => return json!({"error": e.to_string()}),
        }
    } else {
        request.bearer_auth(&token.access_token)
    };
    match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let answer: Value = r.json().await.unwrap_or(Value::Null);
            json!({
                "status": status, "event": answer.get("event"), "scope": token.scope,
                "token_type": token.token_type,
            })
        }
        Err(e) => json!({"error": e.to_string()}),
    }
}
