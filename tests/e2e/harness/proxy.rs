//! A reverse proxy in front of the provider: the issuer is the proxy's address, everything is
//! forwarded unchanged but for what a real proxy adds (its client's address appended to
//! `X-Forwarded-For`, and the connection to the provider made from [`SOURCE`], an address of
//! its own), except that ID tokens in token responses are forged while `tamper` is set (a
//! claim changed, the signature kept), to prove the app refuses them.

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The address the proxy connects to the provider from (Linux routes all of 127.0.0.0/8 to
/// the loopback interface), so that the provider can tell it from the clients.
pub const SOURCE: &str = "127.0.0.2";

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    tamper: Arc<AtomicBool>,
}

pub fn spawn(listener: TcpListener, upstream_port: u16, tamper: Arc<AtomicBool>) -> JoinHandle<()> {
    let proxy = Proxy {
        upstream: format!("http://127.0.0.1:{upstream_port}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(SOURCE.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap(),
        tamper,
    };
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await.unwrap();
    })
}

async fn forward(
    State(p): State<Proxy>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
        .to_owned();
    let mut upstream = p
        .client
        .request(parts.method.clone(), format!("{}{path}", p.upstream))
        .body(body);
    let mut forwarded_for: Vec<&str> = Vec::new();
    for (name, value) in &parts.headers {
        if name == "x-forwarded-for" {
            forwarded_for.push(value.to_str().unwrap_or(""));
        } else if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let peer = peer.ip().to_string();
    forwarded_for.push(&peer);
    upstream = upstream.header("x-forwarded-for", forwarded_for.join(", "));
    let resp = upstream.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut bytes = resp.bytes().await.unwrap().to_vec();
    if path.starts_with("/token") && p.tamper.load(Ordering::SeqCst) && status.is_success() {
        let mut json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if let Some(id_token) = json
            .get("id_token")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
        {
            let parts: Vec<&str> = id_token.split('.').collect();
            let mut claims: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
            claims["sub"] = "mallory".into();
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                URL_SAFE_NO_PAD.encode(claims.to_string()),
                parts[2]
            );
            json["id_token"] = forged.into();
        }
        bytes = serde_json::to_vec(&json).unwrap();
    }
    let mut out = Response::builder().status(status);
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            out = out.header(name, value);
        }
    }
    out.body(Body::from(bytes)).unwrap()
}
