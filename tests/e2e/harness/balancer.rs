//! A small round-robin load balancer in front of several provider instances, behaving as the
//! usual ones do: it asks each instance's `/readyz` every 50 ms and sends requests only to the
//! ready ones (an instance that says it is draining is out at once; one that fails to answer
//! in time, after two misses, so that one slow answer on a busy machine takes nobody out); a
//! request whose connection is refused (nothing was sent) goes to the next one, and with no
//! instance ready every one is tried. Its idle connections are dropped after a second, well
//! before an instance closes an idle one (`limits.header_read_timeout`).
//! It records what it saw of each instance (ready, not ready), so a test can tell that an
//! instance left and came back.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the balancer knows of one instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub ready: bool,
    /// Times it was seen going from ready to not ready, and back.
    pub left: usize,
    pub returned: usize,
    /// `/readyz` answers 503 seen (an instance draining, as opposed to gone).
    pub draining: usize,
    /// Polls missed in a row (no answer, or not in time).
    misses: usize,
}

#[derive(Clone)]
struct Balancer {
    upstreams: Arc<Vec<String>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    next: Arc<AtomicUsize>,
    client: reqwest::Client,
}

pub struct Running {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// What the balancer saw of instance `i` so far.
    pub fn seen(&self, i: usize) -> Seen {
        self.seen.lock().unwrap()[i]
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A balancer over the instances at `upstreams` (base URLs), listening on loopback.
pub async fn spawn(upstreams: Vec<String>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(vec![Seen::default(); upstreams.len()]));
    let balancer = Balancer {
        upstreams: Arc::new(upstreams),
        seen: seen.clone(),
        next: Arc::new(AtomicUsize::new(0)),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap(),
    };
    let poller = tokio::spawn(poll(balancer.clone()));
    // The first round has been seen before any request is sent.
    crate::harness::eventually("the balancer sees an instance ready", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().iter().any(|s| s.ready).then_some(()) }
    })
    .await;
    let app = axum::Router::new().fallback(forward).with_state(balancer);
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Running {
        url,
        seen,
        tasks: vec![poller, server],
    }
}

async fn poll(b: Balancer) {
    loop {
        for (i, upstream) in b.upstreams.iter().enumerate() {
            // Longer than `/readyz` may take (a second per check).
            let answer = b
                .client
                .get(format!("{upstream}/readyz"))
                .timeout(Duration::from_millis(2500))
                .send()
                .await;
            let (status, body) = match answer {
                Ok(a) => (
                    Some(a.status().as_u16()),
                    a.text().await.unwrap_or_default(),
                ),
                Err(_) => (None, String::new()),
            };
            let mut seen = b.seen.lock().unwrap();
            let s = &mut seen[i];
            let draining = status == Some(503) && body.contains("draining");
            if draining {
                s.draining += 1;
            }
            s.misses = if status == Some(200) { 0 } else { s.misses + 1 };
            let ready = status == Some(200) || (!draining && s.ready && s.misses < 2);
            match (s.ready, ready) {
                (true, false) => s.left += 1,
                (false, true) if s.left > 0 => s.returned += 1,
                _ => {}
            }
            s.ready = ready;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn forward(State(b): State<Balancer>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::builder()
            .status(400)
            .body(Body::from("the request body broke off"))
            .unwrap();
    };
    let body: Bytes = body;
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let n = b.upstreams.len();
    let start = b.next.fetch_add(1, Ordering::Relaxed);
    let mut last_error = String::from("no instance answers");
    // The ready ones in turn; with none ready, every one.
    let ready: Vec<usize> = (0..n)
        .map(|k| (start + k) % n)
        .filter(|i| b.seen.lock().unwrap()[*i].ready)
        .collect();
    let order = if ready.is_empty() {
        (0..n).map(|k| (start + k) % n).collect()
    } else {
        ready
    };
    for i in order {
        let mut upstream = b
            .client
            .request(parts.method.clone(), format!("{}{path}", b.upstreams[i]))
            .body(body.clone());
        for (name, value) in &parts.headers {
            if name != "host" && name != "content-length" {
                upstream = upstream.header(name, value);
            }
        }
        match upstream.send().await {
            Ok(answer) => {
                let mut out = Response::builder().status(answer.status());
                for (name, value) in answer.headers() {
                    if name != "content-length" && name != "transfer-encoding" {
                        out = out.header(name, value);
                    }
                }
                let bytes = answer.bytes().await.unwrap_or_default();
                return out.body(Body::from(bytes)).unwrap();
            }
            // Refused before anything was sent: the next instance may take it.
            Err(e) if e.is_connect() => last_error = e.to_string(),
            Err(e) => {
                return Response::builder()
                    .status(502)
                    .body(Body::from(format!("instance {i}: {e}")))
                    .unwrap();
            }
        }
    }
    Response::builder()
        .status(502)
        .body(Body::from(last_error))
        .unwrap()
}
