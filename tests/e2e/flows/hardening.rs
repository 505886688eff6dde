//! Hostile clients: password guessing is throttled without locking anyone out for good, and
//! oversized or slow requests are cut off with the right status while the server keeps serving.

use crate::flows::sign_in;
use crate::harness::{
    ALICE, Browser, Options, Page, Stack, grants, proxy, register, spawn, spawn_with, update_client,
};
use provider::types::{Alg, AuthMethod, GrantType};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The provider's sign-in page, reached as App A's user would.
async fn login_page(stack: &Stack, browser: &Browser) -> Page {
    let page = browser.follow(&format!("{}/login", stack.app_a.url)).await;
    assert_eq!(page.url.path(), "/login", "{}", page.body);
    page
}

async fn attempt(browser: &Browser, page: &Page, user: &str, password: &str) -> Page {
    browser
        .submit(
            page,
            "/login",
            &[("username", user), ("password", password)],
        )
        .await
}

fn retry_after(page: &Page) -> u64 {
    page.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn twenty_wrong_passwords_are_throttled_and_the_right_one_works_after_the_delay() {
    let stack = spawn().await;
    // The waits are a second or two at first: on the running wall clock one could be over
    // before the next request arrives on a busy machine. Frozen, only the test moves time.
    stack.clock.freeze();
    let browser = Browser::new();
    let mut page = login_page(&stack, &browser).await;
    let (mut failures, mut waits) = (0, Vec::new());
    while failures < 20 {
        let answer = attempt(&browser, &page, "alice", "not-her-password").await;
        match answer.status.as_u16() {
            401 => {
                failures += 1;
                assert!(answer.body.contains("Incorrect username or password."));
            }
            429 => {
                let wait = retry_after(&answer);
                assert!(answer.body.contains("Too many failed attempts"));
                waits.push((failures, wait));
                // The right password is not even checked while the account waits.
                let early = attempt(&browser, &answer, ALICE.0, ALICE.1).await;
                assert_eq!(early.status, 429, "throttled means throttled");
                assert_eq!(retry_after(&early), wait, "a refused attempt adds no wait");
                stack.clock.advance(Duration::from_secs(wait));
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
        page = answer;
    }
    // Five free failures, then each one doubles the wait (1 s after the fifth), which stops
    // growing at a minute.
    let expected: Vec<(u64, u64)> = (5..20).map(|n| (n, (1_u64 << (n - 5)).min(60))).collect();
    assert_eq!(waits, expected);
    // After the last failure the account waits once more; then alice's password works.
    let throttled = attempt(&browser, &page, ALICE.0, ALICE.1).await;
    assert_eq!(throttled.status, 429);
    stack
        .clock
        .advance(Duration::from_secs(retry_after(&throttled)));
    let signed_in = attempt(&browser, &throttled, ALICE.0, ALICE.1).await;
    // Signed in: the app's request expired during the waits, so the provider's own page.
    assert!(
        signed_in.url.as_str().starts_with(&stack.app_a.url)
            || signed_in.url.path() == "/consent"
            || signed_in.body.contains("Signed in as alice"),
        "ended at {}: {}",
        signed_in.url,
        signed_in.body
    );
}

/// A page with its per-session and per-name parts blanked, to compare two answers.
fn normalized(page: &Page, username: &str) -> String {
    let csrf = page.hidden("csrf_token").unwrap_or_default();
    let request = page.hidden("request").unwrap_or_default();
    let mut body = page.body.clone();
    // The wait itself may differ between two names (the clock is real, and each name has its
    // own count), and with it the plural: both are blanked, the rest must be identical.
    if let Some(wait) = page.headers.get("retry-after") {
        let wait = wait.to_str().unwrap();
        let said = if wait == "1" {
            "Wait 1 second ".to_owned()
        } else {
            format!("Wait {wait} seconds ")
        };
        assert!(body.contains(&said), "the page states the Retry-After wait");
        body = body.replace(&said, "Wait N seconds ");
    }
    body.replace(&csrf, "CSRF")
        .replace(&request, "REQUEST")
        .replace(&format!("value=\"{username}\""), "value=\"NAME\"")
}

#[tokio::test]
async fn unknown_users_wrong_passwords_and_throttled_names_look_alike() {
    let stack = spawn().await;
    let browser = Browser::new();
    let page = login_page(&stack, &browser).await;
    let wrong = attempt(&browser, &page, "alice", "wrong").await;
    let unknown = attempt(&browser, &wrong, "nobody-here", "wrong").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(
        normalized(&unknown, "nobody-here"),
        normalized(&wrong, "alice")
    );
    // Throttle both names the same way: the answers still cannot tell them apart. (The clock
    // is real, so in a slow run a one-second wait may be over before the next attempt: go on
    // until both names wait at once, as the growing waits make them soon.)
    let mut last = (unknown, wrong);
    for _ in 0..12 {
        let a = attempt(&browser, &last.0, "alice", "wrong").await;
        let b = attempt(&browser, &a, "nobody-here", "wrong").await;
        last = (b, a);
        if last.0.status == 429 && last.1.status == 429 {
            break;
        }
    }
    let (unknown, alice) = last;
    assert_eq!(alice.status, 429);
    assert_eq!(unknown.status, 429);
    assert!((1..=60).contains(&retry_after(&alice)));
    assert!((1..=60).contains(&retry_after(&unknown)));
    assert_eq!(
        normalized(&unknown, "nobody-here"),
        normalized(&alice, "alice")
    );
}

#[tokio::test]
async fn overlong_names_and_passwords_get_the_usual_answer_and_the_cli_refuses_them() {
    let stack = spawn().await;
    let browser = Browser::new();
    let page = login_page(&stack, &browser).await;
    let long_name = "a".repeat(10_000);
    let long_password = "p".repeat(20_000);
    for (user, password) in [
        (long_name.as_str(), "wonderland"),
        ("alice", long_password.as_str()),
    ] {
        let answer = attempt(&browser, &page, user, password).await;
        assert_eq!(answer.status, 401);
        assert!(answer.body.contains("Incorrect username or password."));
        // The name typed is shown back cut to its maximum length, escaped.
        assert!(answer.body.len() < 20_000, "{}", answer.body.len());
    }
    // The CLI refuses an overlong password too, before hashing it.
    let config = stack.provider.config.clone();
    let refused = provider::cli::run_args(
        config,
        &["provider", "users", "add", "zed", "--password-stdin"],
        &format!("{long_password}\n"),
    )
    .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn failures_from_one_address_across_many_names_are_throttled_too() {
    let stack = spawn().await;
    let browser = Browser::new();
    let mut page = login_page(&stack, &browser).await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        page = attempt(&browser, &page, &format!("user{i}"), "guess").await;
        statuses.push(page.status.as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    // Then the address waits (the first wait is a second of real time, which a slow run may
    // let pass; the next ones are longer), whatever name it tries.
    let mut throttled = None;
    for i in 20..26 {
        page = attempt(&browser, &page, &format!("user{i}"), "guess").await;
        if page.status == 429 {
            throttled = Some(i);
            break;
        }
        assert_eq!(page.status, 401);
    }
    assert!(throttled.is_some(), "the address waits after 20 failures");
    assert!(page.body.contains("Too many failed attempts"));
}

// ---- limits --------------------------------------------------------------------------------

fn provider_addr(stack: &Stack) -> String {
    let port = url::Url::parse(&stack.issuer).unwrap().port().unwrap();
    format!("127.0.0.1:{port}")
}

async fn discovery_works(stack: &Stack) {
    let resp = reqwest::get(format!(
        "http://{}/.well-known/openid-configuration",
        provider_addr(stack)
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_two_megabyte_body_gets_413_and_the_server_keeps_serving() {
    let stack = spawn().await;
    let http = reqwest::Client::new();
    let addr = provider_addr(&stack);
    for path in ["/token", "/login", "/register", "/introspect"] {
        let resp = http
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; 2 * 1024 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 413, "{path}");
    }
    discovery_works(&stack).await;
}

#[tokio::test]
async fn long_urls_get_414_and_huge_headers_431() {
    let stack = spawn().await;
    let http = reqwest::Client::new();
    let addr = provider_addr(&stack);
    let long = format!("http://{addr}/authorize?state={}", "x".repeat(9000));
    assert_eq!(http.get(&long).send().await.unwrap().status(), 414);
    let huge = http
        .get(format!("http://{addr}/"))
        .header("x-padding", "y".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 431);
    discovery_works(&stack).await;
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_disconnected() {
    let stack = spawn_with(Options {
        configure: Some(|c| c.limits.header_read_timeout = Duration::from_secs(1)),
        ..Options::default()
    })
    .await;
    let mut slow = tokio::net::TcpStream::connect(provider_addr(&stack))
        .await
        .unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header line every 300 ms, never the blank line that ends the head.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow
                .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            let mut buf = [0u8; 512];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await
                && (n == 0 || buf.starts_with(b"HTTP/1.1 408"))
            {
                return;
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the slow client is still connected after 5 s"
    );
    discovery_works(&stack).await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let mut stack = spawn_with(Options {
        configure: Some(|c| c.limits.max_connections = 2),
        ..Options::default()
    })
    .await;
    // An instance nothing else talks to (the apps keep their connections to the first one), so
    // this test alone holds its slots.
    let instance = stack.start_instance().await;
    let port = url::Url::parse(stack.instance_url(instance))
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{}", port.unwrap());
    // The server accepts in order: a and b take both slots, so a third waits in the backlog.
    let a = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let b = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let url = format!("http://{addr}/healthz");
    let waiting = tokio::time::timeout(Duration::from_millis(500), reqwest::get(&url)).await;
    assert!(
        waiting.is_err(),
        "a third connection is not served while two hold the slots"
    );
    drop((a, b));
    let served = tokio::time::timeout(crate::harness::PATIENCE, reqwest::get(&url))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert_eq!(served.status(), 200);
}

// ---- rate limits ---------------------------------------------------------------------------

/// A `client_credentials` client `id` with the secret `{id}-secret`.
async fn service_client(stack: &Stack, id: &str) {
    register(
        &stack.store,
        id,
        id,
        Some(&format!("{id}-secret")),
        &["https://service.localhost/cb"],
        AuthMethod::ClientSecretBasic,
        false,
        Alg::RS256,
        stack.clock.unix(),
    )
    .await;
    update_client(&stack.store, id, |c| {
        c.grant_types = grants(&[GrantType::ClientCredentials]);
    })
    .await
    .unwrap();
}

async fn cc(stack: &Stack, id: &str, secret: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let (status, headers, body) = stack
        .token(&[("grant_type", "client_credentials")], Some((id, secret)))
        .await;
    (status.as_u16(), headers, body)
}

fn assert_rate_limited(status: u16, headers: &reqwest::header::HeaderMap, body: &Value) -> u64 {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=120).contains(&wait), "{wait}");
    wait
}

#[tokio::test]
async fn token_requests_are_limited_per_authenticated_client() {
    let stack = spawn_with(Options {
        configure: Some(|c| c.limits.token_rate_per_client = 3),
        ..Options::default()
    })
    .await;
    service_client(&stack, "svc-a").await;
    service_client(&stack, "svc-b").await;
    for _ in 0..3 {
        assert_eq!(cc(&stack, "svc-a", "svc-a-secret").await.0, 200);
    }
    let (status, headers, body) = cc(&stack, "svc-a", "svc-a-secret").await;
    let wait = assert_rate_limited(status, &headers, &body);
    // Another client has its own budget.
    assert_eq!(cc(&stack, "svc-b", "svc-b-secret").await.0, 200);
    // After the wait it is told, the client is served again.
    stack.clock.advance(Duration::from_secs(wait));
    assert_eq!(cc(&stack, "svc-a", "svc-a-secret").await.0, 200);

    // Requests that fail to authenticate do not spend the client's budget: whoever knows a
    // client id cannot lock that client out.
    stack.clock.advance(Duration::from_secs(180));
    for _ in 0..10 {
        assert_eq!(cc(&stack, "svc-a", "not-the-secret").await.0, 401);
    }
    for _ in 0..3 {
        assert_eq!(cc(&stack, "svc-a", "svc-a-secret").await.0, 200);
    }
    assert_eq!(cc(&stack, "svc-a", "svc-a-secret").await.0, 429);
}

#[tokio::test]
async fn one_address_is_limited_across_token_introspection_and_registration() {
    let stack = spawn_with(Options {
        open_registration: true,
        configure: Some(|c| {
            c.limits.rate_per_address = 6;
            c.limits.registration_rate_per_address = 2;
        }),
        ..Options::default()
    })
    .await;
    service_client(&stack, "svc").await;
    let http = reqwest::Client::new();
    let addr = provider_addr(&stack);
    let register = || {
        http.post(format!("http://{addr}/register"))
            .json(&serde_json::json!({
                "redirect_uris": ["https://app.localhost/cb"],
                "client_name": "Limited"
            }))
            .send()
    };
    // Registration has its own, smaller budget per address.
    assert_eq!(register().await.unwrap().status(), 201);
    assert_eq!(register().await.unwrap().status(), 201);
    let refused = register().await.unwrap();
    let (status, headers) = (refused.status().as_u16(), refused.headers().clone());
    assert_rate_limited(status, &headers, &refused.json().await.unwrap());
    // Three requests spent of the address's six: three more of any kind, then 429 at every
    // endpoint, whichever client asks.
    let (status, _, body) = cc(&stack, "svc", "svc-secret").await;
    assert_eq!(status, 200, "{body}");
    let at = body["access_token"].as_str().unwrap().to_owned();
    let introspect = || {
        http.post(format!("http://{addr}/introspect"))
            .basic_auth("svc", Some("svc-secret"))
            .form(&[("token", at.as_str())])
            .send()
    };
    assert_eq!(introspect().await.unwrap().status(), 200);
    assert_eq!(cc(&stack, "svc", "svc-secret").await.0, 200);
    let (status, headers, body) = cc(&stack, "svc", "svc-secret").await;
    assert_rate_limited(status, &headers, &body);
    let refused = introspect().await.unwrap();
    let (status, headers) = (refused.status().as_u16(), refused.headers().clone());
    let wait = assert_rate_limited(status, &headers, &refused.json().await.unwrap());
    stack.clock.advance(Duration::from_secs(wait));
    assert_eq!(introspect().await.unwrap().status(), 200);
}

// ---- audit trail ---------------------------------------------------------------------------

async fn audit_kinds(stack: &Stack) -> Vec<provider::store::AuditRow> {
    stack.store.audit_tail(1000).await.unwrap()
}

#[tokio::test]
async fn the_audit_trail_records_security_events_with_their_request_ids() {
    let stack = spawn().await;
    let browser = Browser::new();
    let page = login_page(&stack, &browser).await;
    let wrong = attempt(&browser, &page, "alice", "wrong").await;
    assert_eq!(wrong.status, 401);
    let unknown = attempt(&browser, &wrong, "mallory", "guess").await;
    assert_eq!(unknown.status, 401);
    let failed_request_id = unknown.headers["x-request-id"].to_str().unwrap().to_owned();
    // A full sign-in at App A (code, tokens), then a sign-out everywhere.
    crate::flows::sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    let rows = audit_kinds(&stack).await;
    let alice = stack
        .store
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap()
        .id;
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("no {k} in {kinds:?}"))
    };
    assert!(pos("sign_in.failed") < pos("sign_in.ok"), "{kinds:?}");
    assert!(pos("sign_in.ok") <= pos("session.created"), "{kinds:?}");
    assert!(pos("session.created") < pos("token.issued"), "{kinds:?}");
    let failures: Vec<_> = rows.iter().filter(|r| r.kind == "sign_in.failed").collect();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].user_id.as_deref(), Some(alice.as_str()));
    assert_eq!(failures[0].detail.as_deref(), Some("wrong password"));
    // The name typed for an unknown account is not kept (it may be a misplaced password).
    assert_eq!(failures[1].user_id, None);
    assert!(!format!("{:?}", failures[1]).contains("mallory"));
    assert_eq!(
        failures[1].request_id.as_deref(),
        Some(failed_request_id.as_str()),
        "the event carries the id of the request that caused it"
    );
    assert_eq!(failures[1].addr.as_deref(), Some("127.0.0.1"));
    let ok = &rows[pos("sign_in.ok")];
    assert_eq!(ok.user_id.as_deref(), Some(alice.as_str()));
    let sid = ok.session.clone().unwrap();
    let issued = &rows[pos("token.issued")];
    assert_eq!(
        issued.client_id.as_deref(),
        Some(stack.app_a.client_id.as_str())
    );
    assert_eq!(issued.session.as_deref(), Some(sid.as_str()));
    // No secret reaches the trail: not the password, not the session id, not a token.
    let everything = format!("{rows:?}");
    assert!(!everything.contains(ALICE.1));
    let cookie = browser
        .cookie(&stack.issuer, &stack.provider.config.cookie.name)
        .expect("the provider's session cookie");
    assert!(!everything.contains(&cookie));

    // Ending the session is recorded with its cause.
    provider::users::admin::end_all_sessions(&stack.store, &stack.provider.sessions, &alice)
        .await
        .unwrap();
    let rows = audit_kinds(&stack).await;
    let ended = rows
        .iter()
        .find(|r| r.kind == "session.ended")
        .expect("session.ended");
    assert_eq!(ended.session.as_deref(), Some(sid.as_str()));
    assert!(ended.detail.is_some());

    // `provider audit tail` shows the same events, in order.
    let config = stack.provider.config.clone();
    let out = provider::cli::run_args(
        config.clone(),
        &["provider", "audit", "tail", "-n", "3"],
        "",
    )
    .await
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[2].contains("session.ended"), "{out}");
    let json = provider::cli::run_args(config, &["provider", "audit", "tail", "--json"], "")
        .await
        .unwrap();
    let parsed: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), rows.len());
    assert_eq!(parsed[0]["kind"], rows[0].kind);
}

#[tokio::test]
async fn throttling_registration_and_revocation_leave_a_trace() {
    let stack = spawn_with(Options {
        open_registration: true,
        ..Options::default()
    })
    .await;
    let browser = Browser::new();
    let mut page = login_page(&stack, &browser).await;
    for _ in 0..7 {
        page = attempt(&browser, &page, "alice", "wrong").await;
        if page.status == 429 {
            break;
        }
    }
    assert_eq!(page.status, 429);
    let http = reqwest::Client::new();
    let registered: Value = http
        .post(format!("http://{}/register", provider_addr(&stack)))
        .json(&serde_json::json!({"redirect_uris": ["https://app.localhost/cb"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    service_client(&stack, "svc").await;
    let (_, _, body) = cc(&stack, "svc", "svc-secret").await;
    let at = body["access_token"].as_str().unwrap();
    let revoked = http
        .post(format!("http://{}/revoke", provider_addr(&stack)))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let rows = audit_kinds(&stack).await;
    let find = |kind: &str| {
        rows.iter()
            .find(|r| r.kind == kind)
            .unwrap_or_else(|| panic!("no {kind}: {rows:?}"))
    };
    assert!(
        find("sign_in.throttled")
            .detail
            .as_deref()
            .unwrap()
            .starts_with("wait ")
    );
    let this_client = Some(client_id.as_str());
    assert!(
        rows.iter()
            .any(|r| r.kind == "client.registered" && r.client_id.as_deref() == this_client),
        "the registration left a trace: {rows:?}"
    );
    let issued = find("token.issued");
    assert_eq!(issued.client_id.as_deref(), Some("svc"));
    assert!(
        issued
            .detail
            .as_deref()
            .unwrap()
            .contains("client_credentials")
    );
    assert_eq!(find("token.revoked").client_id.as_deref(), Some("svc"));
}

/// README "Hostile clients" 2: behind a reverse proxy the operator trusts, each client is
/// counted and shown under its own address (the right-most hop the proxy recorded), whatever
/// it claims in a header of its own. Without `trusted_proxies` everyone would be the proxy,
/// and one guesser would lock everyone out.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_its_own_address() {
    let stack = spawn_with(Options {
        proxy: true,
        configure: Some(|c| c.trusted_proxies = vec![proxy::SOURCE.into()]),
        ..Options::default()
    })
    .await;
    // Mallory, behind the proxy, guesses names until her address waits; she claims to be
    // 198.51.100.23 in both headers (the proxy appends to X-Forwarded-For and passes
    // Forwarded through), which changes nothing.
    let mallory = Browser::from_address("127.0.0.6", Some("198.51.100.23"));
    let mut page = login_page(&stack, &mallory).await;
    let mut throttled = false;
    for i in 0..30 {
        page = attempt(&mallory, &page, &format!("user{i}"), "guess").await;
        if page.status == 429 {
            throttled = true;
            break;
        }
        assert_eq!(page.status, 401, "{}", page.body);
    }
    assert!(throttled, "mallory's address waits");
    // Alice, behind the same proxy and claiming the same address, signs in at once.
    let alice = Browser::from_address("127.0.0.5", Some("198.51.100.23"));
    sign_in(&stack, &alice, &stack.app_a, ALICE).await;
    let sessions = alice
        .follow(&format!("{}/account/sessions", stack.issuer))
        .await;
    assert_eq!(sessions.status, 200);
    assert!(sessions.body.contains("127.0.0.5"), "{}", sessions.body);
    for not_hers in ["198.51.100.23", proxy::SOURCE, "127.0.0.6"] {
        assert!(
            !sessions.body.contains(not_hers),
            "{not_hers}: {}",
            sessions.body
        );
    }
}

/// README "Hostile clients" 5: cookieless visits that would each write a pre-login session
/// are counted per address; over the budget the answer is 429 with `Retry-After` and nothing
/// is written, while a browser that has its session, and every other address, goes on.
#[tokio::test]
async fn new_sessions_are_rate_limited_per_address() {
    let stack = spawn_with(Options {
        configure: Some(|c| c.limits.new_sessions_per_address = 5),
        ..Options::default()
    })
    .await;
    let login = format!("{}/login", stack.issuer);
    let kept = Browser::new();
    assert_eq!(kept.follow(&login).await.status, 200);
    for _ in 0..4 {
        assert_eq!(Browser::new().follow(&login).await.status, 200);
    }
    let refused = Browser::new().follow(&login).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(
        refused.body.contains("Too many new visits"),
        "{}",
        refused.body
    );
    assert!(
        !refused.headers.contains_key("set-cookie"),
        "no session written"
    );
    // A browser with its session is not counted again; another address has its own budget.
    assert_eq!(kept.follow(&login).await.status, 200);
    let elsewhere = Browser::from_address("127.0.0.9", None);
    assert_eq!(elsewhere.follow(&login).await.status, 200);
}
