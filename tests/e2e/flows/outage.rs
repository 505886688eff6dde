//! Fail closed, fail fast: with its session store gone the provider answers 503 within a
//! second (never a hang, never a wrong yes), and recovers by itself when the store is back.

use super::sign_in;
use crate::harness::{ALICE, Browser, Options, eventually, param, spawn_with};
use std::time::{Duration, Instant};

/// No hang: the provider gives up on a dead store within a second (its timeouts), and a hung
/// request would run into the browser's ten-second timeout. The bound in between is generous,
/// since a busy machine stalls a test for a second or two.
const NO_HANG: Duration = Duration::from_secs(6);

async fn status(browser: &Browser, url: &str) -> (u16, Duration) {
    let started = Instant::now();
    let page = browser.get_once(url).await;
    (page.status.as_u16(), started.elapsed())
}

#[tokio::test]
async fn a_redis_outage_gives_quick_503s_then_recovers() {
    if !sessions::testing::redis_server_available("Redis outage test") {
        return;
    }
    // A private redis-server on a spare port (killed on drop).
    let mut redis = sessions::testing::RedisProcess::server(&[]).await;
    let store = sessions::testing::TestRedis {
        url: redis.url(),
        prefix: "outage:".into(),
    };
    let stack = spawn_with(Options {
        redis_sessions: Some(store),
        ..Options::default()
    })
    .await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let readyz = format!("{}/readyz", stack.issuer);
    assert_eq!(status(&browser, &readyz).await.0, 200);

    redis.kill();
    let req = stack.authorize_url(
        &stack.app_b.client_id,
        &stack.app_b.redirect_uri,
        &[("prompt", "none")],
    );
    let (code, took) = status(&browser, req.url.as_str()).await;
    assert_eq!(code, 503, "no session store, no answer about the session");
    assert!(took < NO_HANG, "no hang: {took:?}");
    let page = browser.get_once(req.url.as_str()).await;
    assert!(
        page.hops[0].location.is_none(),
        "nothing redirected, nothing accepted"
    );
    assert_eq!(page.headers["retry-after"], "1");
    let (code, took) = status(&browser, &readyz).await;
    assert_eq!(code, 503);
    assert!(took < NO_HANG, "{took:?}");
    assert_eq!(
        status(&browser, &format!("{}/healthz", stack.issuer))
            .await
            .0,
        200,
        "alive all along"
    );

    // Redis comes back (empty: it keeps nothing on disk). Service resumes by itself.
    redis.restart().await;
    eventually("the provider reconnected", || async {
        (status(&browser, &readyz).await.0 == 200).then_some(())
    })
    .await;
    // The old session is gone with the data: refused, not wrongly accepted; a new sign-in works.
    let page = browser.get_once(req.url.as_str()).await;
    assert_eq!(
        param(page.hops[0].location.as_deref().unwrap(), "error").as_deref(),
        Some("login_required")
    );
    browser
        .submit(
            &browser.follow(&format!("{}/", stack.app_b.url)).await,
            "/logout",
            &[],
        )
        .await;
    let page = sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    assert_eq!(page.url.as_str(), format!("{}/", stack.app_b.url));
}

/// A TCP proxy in front of PostgreSQL that can cut every connection (and refuse new ones)
/// and then come back on the same port, as a database failover would look to the provider.
struct Cutter {
    port: u16,
    upstream: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Cutter {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let mut cutter = Self {
            port: 0,
            upstream,
            task: None,
        };
        cutter.open(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        cutter
    }

    fn open(&mut self, listener: tokio::net::TcpListener) {
        self.port = listener.local_addr().unwrap().port();
        let upstream = self.upstream;
        self.task = Some(tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                links.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    /// Every connection dropped, new ones refused.
    fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Listens again on its port (tried again for a while if an outgoing connection took it
    /// as its source port meanwhile).
    async fn restore(&mut self) {
        let port = self.port;
        let listener = eventually("the cutter's port is free again", || async move {
            tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .ok()
        })
        .await;
        self.open(listener);
    }
}

impl Drop for Cutter {
    fn drop(&mut self) {
        self.cut();
    }
}

#[tokio::test]
async fn a_database_outage_gives_quick_503s_then_recovers() {
    let Some(db) = infra::testing::TestPostgres::create("PostgreSQL outage test").await else {
        return;
    };
    let url = url::Url::parse(&db.url).unwrap();
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], url.port().unwrap_or(5432)));
    let mut cutter = Cutter::start(upstream).await;
    let mut via_cutter = url.clone();
    via_cutter.set_port(Some(cutter.port)).unwrap();
    let through_cutter = infra::testing::TestPostgres::adopt(db, via_cutter.to_string());
    let stack = spawn_with(Options {
        postgres: Some(through_cutter),
        ..Options::default()
    })
    .await;
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_b, ALICE).await;
    let req = stack.authorize_url(
        &stack.app_b.client_id,
        &stack.app_b.redirect_uri,
        &[("prompt", "none")],
    );

    cutter.cut();
    let (code, took) = status(&browser, req.url.as_str()).await;
    assert_eq!(code, 503, "no database, no answer");
    assert!(took < NO_HANG, "no hang: {took:?}");
    let client = client_app::http::client_builder().build().unwrap();
    let token = client
        .post(format!("{}/token", stack.issuer))
        .form(&[("grant_type", "client_credentials"), ("client_id", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 503);
    assert_eq!(
        token.json::<serde_json::Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    assert_eq!(
        status(&browser, &format!("{}/readyz", stack.issuer))
            .await
            .0,
        503
    );

    cutter.restore().await;
    let location = eventually("the provider recovered", || async {
        let page = browser.get_once(req.url.as_str()).await;
        (page.status == 303).then(|| page.hops[0].location.clone().unwrap())
    })
    .await;
    assert!(
        param(&location, "code").is_some(),
        "the session (in the database) is back: {location}"
    );
}
