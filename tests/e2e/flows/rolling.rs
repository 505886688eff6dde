//! Rolling restarts: two provider instances on one database behind a round-robin balancer
//! that follows their readiness, under a steady load of flows (discovery, a
//! `client_credentials` token, the key set), each instance restarted in turn. On the stop
//! signal an instance answers `/readyz` with 503 while it still serves
//! (`shutdown.drain_delay`), so the balancer moves away before its listener closes; then it
//! finishes what is in flight. Not one flow fails.

use crate::harness::balancer;
use crate::harness::{Options, Stack, eventually, register_service, spawn_with};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const WORKERS: usize = 3;

/// One flow through `base`: what went wrong, if anything.
async fn flow(http: &reqwest::Client, base: &str) -> Result<(), String> {
    let discovery = http
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .map_err(|e| format!("discovery: {e}"))?;
    if discovery.status() != 200 {
        return Err(format!("discovery: {}", discovery.status()));
    }
    let token = http
        .post(format!("{base}/token"))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(|e| format!("token: {e}"))?;
    let status = token.status();
    let body: serde_json::Value = token.json().await.map_err(|e| format!("token: {e}"))?;
    if status != 200 || body["access_token"].as_str().is_none() {
        return Err(format!("token: {status} {body}"));
    }
    let keys = http
        .get(format!("{base}/jwks"))
        .send()
        .await
        .map_err(|e| format!("jwks: {e}"))?;
    if keys.status() != 200 {
        return Err(format!("jwks: {}", keys.status()));
    }
    Ok(())
}

struct Load {
    done: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(base: &str) -> Self {
        let done = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..WORKERS)
            .map(|_| {
                let (done, failures, stop) = (done.clone(), failures.clone(), stop.clone());
                let base = base.to_owned();
                tokio::spawn(async move {
                    let http = reqwest::Client::builder()
                        .timeout(Duration::from_secs(20))
                        .build()
                        .unwrap();
                    while !stop.load(Ordering::SeqCst) {
                        match flow(&http, &base).await {
                            Ok(()) => done.fetch_add(1, Ordering::SeqCst),
                            Err(e) => {
                                failures.lock().unwrap().push(e);
                                0
                            }
                        };
                        // A steady load, not a flood of one SQLite writer.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
            })
            .collect();
        Self {
            done,
            failures,
            stop,
            workers,
        }
    }

    /// Waits until `more` flows more have completed.
    async fn wait_for(&self, more: usize) {
        let target = self.done.load(Ordering::SeqCst) + more;
        eventually(&format!("{more} more flows"), || async {
            (self.done.load(Ordering::SeqCst) >= target).then_some(())
        })
        .await;
    }

    async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers {
            worker.await.unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.done.load(Ordering::SeqCst), failures)
    }
}

fn configure(config: &mut provider::Config) {
    // Longer than the balancer's readiness interval (50 ms) by far, so that it has moved away
    // before the listener closes, however busy the machine.
    config.shutdown.drain_delay = Duration::from_secs(3);
    // The load comes from one address: no per-address budget in the way.
    config.limits.rate_per_address = 0;
    config.limits.token_rate_per_client = 0;
}

async fn stack() -> Stack {
    let stack = spawn_with(Options {
        configure: Some(configure),
        ..Options::default()
    })
    .await;
    register_service(&stack.store, "svc", "svc-secret", stack.clock.unix()).await;
    stack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_restarted_in_turn_under_load_fails_no_flow() {
    let mut stack = stack().await;
    let first = stack.start_instance().await;
    let second = stack.start_instance().await;
    let upstreams = [first, second]
        .iter()
        .map(|i| stack.instance_url(*i).replace("idp.localhost", "127.0.0.1"))
        .collect();
    let lb = balancer::spawn(upstreams).await;
    eventually("both instances ready at the balancer", || async {
        (lb.seen(0).ready && lb.seen(1).ready).then_some(())
    })
    .await;
    let load = Load::start(&lb.url);
    load.wait_for(30).await;
    for (k, instance) in [first, second].into_iter().enumerate() {
        let before = lb.seen(k).returned;
        stack.restart_instance(instance).await;
        eventually(
            "the restarted instance ready again at the balancer",
            || async { (lb.seen(k).returned > before && lb.seen(k).ready).then_some(()) },
        )
        .await;
        load.wait_for(30).await;
    }
    let (done, failures) = load.finish().await;
    assert!(
        failures.is_empty(),
        "{} of {done} flows failed: {failures:#?}",
        failures.len()
    );
    for k in 0..2 {
        let seen = lb.seen(k);
        assert!(
            seen.left >= 1 && seen.returned >= 1,
            "instance {k}: {seen:?}"
        );
        assert!(
            seen.draining >= 1,
            "instance {k} said it was draining: {seen:?}"
        );
    }
}
