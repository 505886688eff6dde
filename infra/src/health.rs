//! `/healthz` (the process is alive) and `/readyz` (what it depends on answers), the same for
//! the provider and the apps. Each dependency gets one second: a readiness probe never hangs.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::time::Duration;

/// `GET /healthz`: 200 while the process serves requests.
pub async fn alive() -> Response {
    (StatusCode::OK, Json(serde_json::json!({"status": "alive"}))).into_response()
}

/// Runs one dependency check, with a one-second limit.
pub async fn check<E: std::fmt::Display>(
    probe: impl Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(1), probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within a second".to_owned()),
    }
}

/// 200 `ready` when every check passed, else 503 naming each failing dependency and why.
pub fn report(results: &[(&str, Result<(), String>)]) -> Response {
    let failing: serde_json::Map<String, serde_json::Value> = results
        .iter()
        .filter_map(|(name, r)| {
            r.as_ref()
                .err()
                .map(|why| ((*name).to_owned(), why.clone().into()))
        })
        .collect();
    if failing.is_empty() {
        (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))).into_response()
    } else {
        let body = serde_json::json!({"status": "unavailable", "failing": failing});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}
