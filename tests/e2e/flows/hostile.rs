//! Hostile input: every parser (authorization parameters, token form, cookies, JWTs, logout
//! tokens, registration JSON) answers malformed input with a 4xx in its own format, reflected
//! values are escaped, and thousands of randomized malformed requests get no 5xx, no hang and
//! leave the provider working.

use crate::flows::sign_in;
use crate::harness::{ALICE, Browser, Stack, spawn};
use rand::{RngExt, SeedableRng};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }
}

fn addr_of(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!("127.0.0.1:{}", u.port().unwrap())
}

/// Sends `request` (raw bytes, the connection closed after it) and reads the answer.
async fn send_raw(addr: &str, request: &[u8]) -> Raw {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), conn.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "no answer within 15 s to {:?}",
        String::from_utf8_lossy(&request[..request.len().min(300)])
    );
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Raw {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn request(method: &str, target: &[u8], headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(method.as_bytes());
    r.push(b' ');
    r.extend_from_slice(target);
    r.extend_from_slice(b" HTTP/1.1\r\nHost: idp.localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        r.extend_from_slice(name.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(value);
        r.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

const FORM: (&str, &[u8]) = ("Content-Type", b"application/x-www-form-urlencoded");
const JSON: (&str, &[u8]) = ("Content-Type", b"application/json");

fn assert_json_error(r: &Raw, status: u16, error: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {r:?}");
    assert!(
        r.content_type().starts_with("application/json"),
        "{what}: {r:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_else(|e| {
        panic!("{what}: not JSON ({e}): {r:?}");
    });
    assert_eq!(body["error"], error, "{what}: {r:?}");
}

fn assert_html_error(r: &Raw, what: &str) {
    assert!((400..500).contains(&r.status), "{what}: {r:?}");
    assert!(r.content_type().starts_with("text/html"), "{what}: {r:?}");
}

#[tokio::test]
async fn each_parser_answers_malformed_input_in_its_own_format() {
    let stack = spawn().await;
    let idp = addr_of(&stack.issuer);
    let basic = format!(
        "Basic {}",
        base64_basic(&stack.app_a.client_id, &stack.app_a.secret)
    );
    let auth: (&str, &[u8]) = ("Authorization", basic.as_bytes());

    // The token endpoint: JSON errors (RFC 6749 §5.2) for every malformed form.
    let many: Vec<String> = (0..5000).map(|i| format!("p{i}=v")).collect();
    let many = many.join("&");
    let forms: [(&str, &[u8]); 6] = [
        ("bad percent-encoding", b"grant_type=%zz"),
        ("invalid UTF-8", b"grant_type=%ff%fe"),
        ("a NUL byte", b"grant_type=client%00credentials"),
        ("a repeated parameter", b"grant_type=a&grant_type=b"),
        ("5,000 parameters", many.as_bytes()),
        ("raw invalid UTF-8", b"grant_type=\xff\xfe"),
    ];
    for (what, body) in forms {
        for path in ["/token", "/revoke", "/introspect"] {
            let r = send_raw(&idp, &request("POST", path.as_bytes(), &[FORM, auth], body)).await;
            assert_json_error(&r, 400, "invalid_request", &format!("{path}: {what}"));
        }
    }
    let json = br#"{"grant_type":"client_credentials"}"#;
    for path in ["/token", "/revoke", "/introspect"] {
        let r = send_raw(&idp, &request("POST", path.as_bytes(), &[JSON, auth], json)).await;
        assert_json_error(
            &r,
            400,
            "invalid_request",
            &format!("{path}: JSON, not a form"),
        );
    }
    // CRLF inside a Basic credential: refused as a credential, never a header of the answer.
    let crlf = format!("Basic {}", base64_basic("app-a\r\nSet-Cookie: evil=1", "x"));
    let r = send_raw(
        &idp,
        &request(
            "POST",
            b"/token",
            &[FORM, ("Authorization", crlf.as_bytes())],
            b"grant_type=client_credentials",
        ),
    )
    .await;
    assert_json_error(&r, 401, "invalid_client", "CRLF in a client id");
    assert!(!r.head.to_ascii_lowercase().contains("evil"), "{r:?}");

    // The authorization endpoint: a page for a person when the client is not established.
    for target in [
        "/authorize?client_id=%zz",
        "/authorize?client_id=%ff",
        "/authorize?client_id=a%00b",
        "/authorize?client_id=a&client_id=b",
    ] {
        let r = send_raw(&idp, &request("GET", target.as_bytes(), &[], b"")).await;
        assert_html_error(&r, target);
    }
    // Reflected values are escaped.
    let r = send_raw(
        &idp,
        &request(
            "GET",
            b"/authorize?client_id=%3Cscript%3Ealert(1)%3C%2Fscript%3E&response_type=code",
            &[],
            b"",
        ),
    )
    .await;
    assert_html_error(&r, "a script as client_id");
    assert!(!r.body.contains("<script>alert"), "{}", r.body);
    // CRLF in state travels percent-encoded in the error redirect, never as a header line.
    let target = format!(
        "/authorize?client_id={}&redirect_uri={}&response_type=token&state=x%0D%0ASet-Cookie:%20evil%3D1",
        stack.app_a.client_id,
        urlencode(&stack.app_a.redirect_uri)
    );
    let r = send_raw(&idp, &request("GET", target.as_bytes(), &[], b"")).await;
    assert_eq!(r.status, 303, "{r:?}");
    let location = r.header("location").unwrap();
    assert!(
        location.contains("error=unsupported_response_type"),
        "{location}"
    );
    assert!(location.contains("%0D%0A"), "{location}");
    assert!(
        !r.head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("set-cookie: evil")),
        "{r:?}"
    );
    // A URL of 5,000 parameters is over the URL limit (here 40 KB: over the head limit too).
    let target = format!("/authorize?{many}");
    let r = send_raw(&idp, &request("GET", target.as_bytes(), &[], b"")).await;
    assert!(r.status == 414 || r.status == 431, "{r:?}");

    // Forms for a person (the sign-in form): an HTML page.
    let r = send_raw(
        &idp,
        &request("POST", b"/login", &[FORM], b"username=%ff&password=x"),
    )
    .await;
    assert_html_error(&r, "sign-in form with invalid UTF-8");

    // Cookies that are not ours, or not cookies at all, are ignored: the page works.
    for cookie in [
        &b"gatehouse_sso=%ff%fe"[..],
        b";;;==;gatehouse_sso=\"unterminated",
        b"gatehouse_sso=",
        b"\xff\xfe=\xfd",
    ] {
        let r = send_raw(&idp, &request("GET", b"/", &[("Cookie", cookie)], b"")).await;
        assert_eq!(r.status, 200, "cookie {cookie:?}: {r:?}");
    }

    // JWTs: malformed bearer tokens and id_token_hints.
    for token in [
        "a.b.c",
        "not-a-jwt",
        "eyJhbGciOiJub25lIn0.e30.",
        "%%%",
        "\u{1F600}",
    ] {
        let value = format!("Bearer {token}");
        let r = send_raw(
            &idp,
            &request(
                "GET",
                b"/userinfo",
                &[("Authorization", value.as_bytes())],
                b"",
            ),
        )
        .await;
        // RFC 6750 §3.1: a token that is no token is invalid_token (401); a header that is
        // not even ASCII is a malformed request (400).
        let expected = if token.is_ascii() {
            (401, "invalid_token")
        } else {
            (400, "invalid_request")
        };
        assert_eq!(r.status, expected.0, "{token}: {r:?}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|w| w.contains(expected.1)),
            "{token}: {r:?}"
        );
        let target = format!("/logout?id_token_hint={}", urlencode(token));
        let r = send_raw(&idp, &request("GET", target.as_bytes(), &[], b"")).await;
        assert_html_error(&r, &format!("id_token_hint {token}"));
    }

    // Registration JSON (RFC 7591 §3.2.2): JSON errors.
    let deep = "[".repeat(10_000);
    let bodies: [(&str, &[u8]); 6] = [
        (
            "invalid JSON",
            b"{\"redirect_uris\": [\"https://a.localhost/cb\"",
        ),
        ("nested 10,000 deep", deep.as_bytes()),
        ("a NUL in a string", b"{\"client_name\": \"a\\u0000b\"}"),
        ("an array", b"[1, 2, 3]"),
        ("invalid UTF-8", b"{\"client_name\": \"\xff\"}"),
        ("a huge number", b"{\"redirect_uris\": 1e999999}"),
    ];
    for (what, body) in bodies {
        let r = send_raw(&idp, &request("POST", b"/register", &[JSON], body)).await;
        // Without an initial access token the request is refused first (401), with the
        // bearer challenge; with open registration the body is read (see the next stack).
        assert_eq!(r.status, 401, "{what}: {r:?}");
    }
    let stack_open = crate::harness::spawn_with(crate::harness::Options {
        open_registration: true,
        ..Default::default()
    })
    .await;
    let open = addr_of(&stack_open.issuer);
    for (what, body) in bodies {
        let r = send_raw(&open, &request("POST", b"/register", &[JSON], body)).await;
        assert_json_error(&r, 400, "invalid_request", what);
    }
    let r = send_raw(
        &open,
        &request(
            "POST",
            b"/register",
            &[FORM],
            b"redirect_uris=https://a.localhost/cb",
        ),
    )
    .await;
    assert_json_error(&r, 400, "invalid_request", "a form, not JSON");

    // Logout tokens at the app's back-channel endpoint (Back-Channel Logout §2.8): 400 JSON.
    let app = addr_of(&stack.app_a.url);
    for body in [
        &b"logout_token=a.b.c"[..],
        b"logout_token=%zz",
        b"logout_token=",
        b"\xff\xfe",
        b"logout_token=eyJhbGciOiJub25lIn0.e30.",
    ] {
        let r = send_raw(
            &app,
            &request("POST", b"/backchannel-logout", &[FORM], body),
        )
        .await;
        assert_eq!(r.status, 400, "{body:?}: {r:?}");
        assert!(r.content_type().starts_with("application/json"), "{r:?}");
    }

    // After all that, the provider works as before.
    let browser = Browser::new();
    let home = sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    assert!(
        home.url.as_str().starts_with(&stack.app_a.url),
        "{}",
        home.url
    );
}

fn base64_basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---- randomized ----------------------------------------------------------------------------

const PATHS: [&str; 24] = [
    "/",
    "/login",
    "/consent",
    "/authorize",
    "/token",
    "/revoke",
    "/introspect",
    "/userinfo",
    "/logout",
    "/logout/confirm",
    "/register",
    "/register/app-a",
    "/account/sessions",
    "/account/sessions/revoke",
    "/account/sessions/revoke-all",
    "/developer",
    "/developer/apps",
    "/developer/apps/new",
    "/developer/apps/app-a",
    "/developer/apps/app-a/rotate-secret",
    "/.well-known/openid-configuration",
    "/jwks",
    "/static/style.css",
    "/nowhere/%2e%2e/%2e%2e",
];

const NAMES: [&str; 22] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "id_token_hint",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "token",
    "token_type_hint",
    "username",
    "password",
    "csrf_token",
    "request",
    "post_logout_redirect_uri",
];

/// What the fuzzer knows of the live stack, to get past the first checks now and then.
struct Known {
    client_id: String,
    redirect_uri: String,
    cookie: String,
    csrf: String,
}

fn pick<'a, T>(rng: &mut impl rand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A parameter value: plausible, hostile, or noise.
fn value(rng: &mut impl rand::Rng, known: &Known) -> String {
    match rng.random_range(0..12) {
        0 => known.client_id.clone(),
        1 => urlencode(&known.redirect_uri),
        2 => "code".into(),
        3 => "openid+profile+email".into(),
        4 => "%zz".into(),
        5 => "%00".into(),
        6 => "%ff%fe".into(),
        7 => "%0D%0ASet-Cookie:%20x=1".into(),
        8 => "%3Cscript%3E".into(),
        9 => "x".repeat(rng.random_range(0..3000)),
        10 => {
            // Random bytes, percent-encoded.
            let n = rng.random_range(0..40);
            (0..n)
                .map(|_| format!("%{:02X}", rng.random::<u8>()))
                .collect()
        }
        _ => String::new(),
    }
}

fn params(rng: &mut impl rand::Rng, known: &Known) -> String {
    let n = match rng.random_range(0..20) {
        0 => 200, // over the parameter cap
        _ => rng.random_range(0..8),
    };
    let mut out = Vec::new();
    for _ in 0..n {
        let name = match rng.random_range(0..6) {
            0 => value(rng, known),
            _ => (*pick(rng, &NAMES)).to_owned(),
        };
        out.push(format!("{name}={}", value(rng, known)));
    }
    if rng.random_range(0..4) == 0
        && let Some(first) = out.first().cloned()
    {
        out.push(first); // a repeated parameter
    }
    out.join("&")
}

fn random_request(rng: &mut impl rand::Rng, known: &Known) -> Vec<u8> {
    let method = *pick(
        rng,
        &[
            "GET", "GET", "GET", "POST", "POST", "POST", "POST", "PUT", "DELETE", "HEAD",
        ],
    );
    let mut target = (*pick(rng, &PATHS)).to_owned();
    if rng.random_range(0..2) == 0 {
        target.push('?');
        target.push_str(&params(rng, known));
    }
    let mut headers: Vec<(&str, Vec<u8>)> = Vec::new();
    let content_type = *pick(
        rng,
        &[
            "application/x-www-form-urlencoded",
            "application/json",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded; charset=\u{fffd}",
            "",
        ],
    );
    if !content_type.is_empty() {
        headers.push(("Content-Type", content_type.as_bytes().to_vec()));
    }
    match rng.random_range(0..5) {
        0 => headers.push((
            "Authorization",
            format!("Basic {}", base64_basic(&known.client_id, "app-a-secret")).into_bytes(),
        )),
        1 => headers.push((
            "Authorization",
            format!("Bearer {}", value(rng, known)).into_bytes(),
        )),
        2 => headers.push(("Authorization", b"Basic \xff\xfe%%".to_vec())),
        _ => {}
    }
    if rng.random_range(0..2) == 0 {
        headers.push(("Cookie", known.cookie.clone().into_bytes()));
    } else if rng.random_range(0..3) == 0 {
        headers.push(("Cookie", value(rng, known).into_bytes()));
    }
    let mut body = match rng.random_range(0..4) {
        0 => params(rng, known),
        1 => format!(
            "{{\"redirect_uris\": [\"{}\"], \"client_name\": \"{}\"}}",
            value(rng, known),
            value(rng, known)
        ),
        2 => (0..rng.random_range(0..200))
            .map(|_| char::from(rng.random_range(0x20u8..0x7f)))
            .collect(),
        _ => String::new(),
    };
    // Now and then the real CSRF token (never at /login: failed sign-ins would throttle).
    if target.split('?').next() != Some("/login") && rng.random_range(0..3) == 0 {
        body = format!("csrf_token={}&{body}", known.csrf);
    }
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    request(method, target.as_bytes(), &headers, body.as_bytes())
}

#[tokio::test]
async fn thousands_of_random_malformed_requests_get_no_5xx_and_sign_in_still_works() {
    let stack = spawn().await;
    let seed: u64 = std::env::var("GATEHOUSE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let count: usize = std::env::var("GATEHOUSE_FUZZ_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    eprintln!("fuzz: {count} requests, GATEHOUSE_FUZZ_SEED={seed}");
    // A signed-in browser lends the fuzzer a real session cookie and CSRF token.
    let browser = Browser::new();
    sign_in(&stack, &browser, &stack.app_a, ALICE).await;
    let page = browser
        .follow(&format!("{}/account/sessions", stack.issuer))
        .await;
    let known = Known {
        client_id: stack.app_a.client_id.clone(),
        redirect_uri: stack.app_a.redirect_uri.clone(),
        cookie: browser.cookies_for(&stack.issuer),
        csrf: page.hidden("csrf_token").expect("a CSRF token"),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let requests: Vec<Vec<u8>> = (0..count)
        .map(|_| random_request(&mut rng, &known))
        .collect();
    let idp = addr_of(&stack.issuer);
    let mut tasks = tokio::task::JoinSet::new();
    let chunks: Vec<Vec<Vec<u8>>> = requests
        .chunks(count.div_ceil(8))
        .map(<[_]>::to_vec)
        .collect();
    for chunk in chunks {
        let idp = idp.clone();
        tasks.spawn(async move {
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            for req in chunk {
                let r = send_raw(&idp, &req).await;
                assert!(
                    (100..500).contains(&r.status),
                    "seed {seed}: {} answered {r:?}",
                    String::from_utf8_lossy(&req[..req.len().min(600)])
                );
                *statuses.entry(r.status).or_default() += 1;
            }
            statuses
        });
    }
    let mut all = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(done) = tasks.join_next().await {
        for (status, n) in done.unwrap() {
            *all.entry(status).or_default() += n;
        }
    }
    eprintln!("fuzz: statuses {all:?}");
    assert_eq!(all.values().sum::<usize>(), count);
    assert!(
        all.keys().any(|s| *s >= 400),
        "the fuzzer reached no error path"
    );

    // The provider still works: a new browser signs in at App B and App A.
    let browser = Browser::new();
    let home = sign_in(&stack, &browser, &stack.app_b, crate::harness::BOB).await;
    assert!(
        home.url.as_str().starts_with(&stack.app_b.url),
        "{}",
        home.url
    );
    let (status, me) = crate::flows::me(&browser, &stack.app_b).await;
    assert_eq!(status, 200, "{me}");
    check_stack_is_whole(&stack).await;
}

/// Nothing the provider acknowledged was lost: the demo clients are still registered.
async fn check_stack_is_whole(stack: &Stack) {
    for id in [&stack.app_a.client_id, &stack.app_b.client_id] {
        assert!(stack.store.client(id).await.unwrap().is_some(), "{id}");
    }
}
