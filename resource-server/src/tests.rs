//! Against a stand-in provider on loopback: a discovery document and a JWKS that a test can
//! change, counting how often the keys are fetched. Tokens are signed here with two fixed
//! P-256 test keys; time is the injected clock, frozen.

use super::*;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use infra::Clock;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

mod feed;

const API: &str = "https://notes.example";
/// Test keys (generated for these tests only).
const KEY_A: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZhIJmDDfNRvqtw+T
oWIOZlrcUEOL9hpmovhWhujQVl6hRANCAARUR8ai8RLSaNpiFXEPn3cpZUh3EZbR
KTCseEFi6SHXV2CHtBP8KQMFDIstfNaWlYf6hog0fWWEJQsJ1mlbjn0P
-----END PRIVATE KEY-----";
const JWK_A: (&str, &str) = (
    "VEfGovES0mjaYhVxD593KWVIdxGW0SkwrHhBYukh11c",
    "YIe0E_wpAwUMiy181paVh_qGiDR9ZYQlCwnWaVuOfQ8",
);
const KEY_B: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqU0aXUHF0h5kGpeM
zUMwkuhYH/Sx6moadRSYOjlrxaehRANCAASzG6xjPRXe3Q1sMApHwJZuzORZMiXJ
/fzUcPMNzN4d7iRFrMf+aPqWGLu03JkhVU0n3KMXgZVbQW2/kLPrBFX6
-----END PRIVATE KEY-----";
const JWK_B: (&str, &str) = (
    "sxusYz0V3t0NbDAKR8CWbszkWTIlyf381HDzDczeHe4",
    "JEWsx_5o-pYYu7TcmSFVTSfcoxeBlVtBbb-Qs-sEVfo",
);

/// The PKCS #8 DER inside a PEM text.
fn der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn jwk(kid: &str, (x, y): (&str, &str)) -> Value {
    json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"})
}

/// The stand-in provider: its issuer URL, the keys it publishes, how often they were read,
/// and a gate its key set waits behind while `stalled` (a slow provider).
struct Provider {
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    stalled: Arc<std::sync::atomic::AtomicBool>,
    gate: Arc<tokio::sync::Notify>,
    clock: Clock,
    /// The revocation feed it serves (`feed`).
    feed: Arc<feed::StandIn>,
}

async fn provider() -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let keys = Arc::new(Mutex::new(vec![jwk("a", JWK_A)]));
    let fetches = Arc::new(AtomicUsize::new(0));
    let doc = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "gatehouse_revocation_feed_endpoint": format!("{issuer}/feed"),
    });
    let feed = Arc::new(feed::StandIn::default());
    let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gate = Arc::new(tokio::sync::Notify::new());
    let (published, counted) = (keys.clone(), fetches.clone());
    let (stall, wait) = (stalled.clone(), gate.clone());
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { axum::Json(doc) }),
        )
        .route(
            "/jwks",
            get(move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                if stall.load(Ordering::SeqCst) {
                    wait.notified().await;
                }
                let keys = published.lock().unwrap().clone();
                axum::Json(json!({ "keys": keys }))
            }),
        )
        .merge(feed::routes(feed.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let clock = Clock::system();
    clock.freeze();
    Provider {
        issuer,
        keys,
        fetches,
        stalled,
        gate,
        clock,
        feed,
    }
}

impl Provider {
    async fn verifier(&self) -> Arc<Verifier> {
        let config = Config::new(self.issuer.clone(), API);
        let http = reqwest::Client::new();
        Arc::new(
            Verifier::discover(config, http, self.clock.clone())
                .await
                .unwrap(),
        )
    }

    /// An access token with `claims` over the usual ones, signed with `key` as `kid`.
    fn token_with(&self, kid: &str, key: &str, typ: &str, claims: Value) -> String {
        let now = self.clock.unix();
        let mut all = json!({
            "iss": self.issuer, "aud": API, "sub": "alice", "client_id": "app-a",
            "jti": "j1", "iat": now, "exp": now + 300, "scope": "notes:read", "sid": "s1",
        });
        if let (Some(all), Some(over)) = (all.as_object_mut(), claims.as_object()) {
            for (k, v) in over {
                all.insert(k.clone(), v.clone());
            }
        }
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.into());
        header.kid = Some(kid.into());
        let key = EncodingKey::from_ec_der(&der(key));
        jsonwebtoken::encode(&header, &all, &key).unwrap()
    }

    fn token(&self, claims: Value) -> String {
        self.token_with("a", KEY_A, "at+jwt", claims)
    }
}

#[tokio::test]
async fn a_token_for_this_api_is_verified_locally_with_its_claims() {
    let p = provider().await;
    let v = p.verifier().await;
    let t = v.verify(&p.token(json!({"auth_time": 5}))).await.unwrap();
    assert_eq!((t.sub.as_str(), t.client_id.as_str()), ("alice", "app-a"));
    assert_eq!(t.scopes, vec!["notes:read"]);
    assert!(t.has_scope("notes:read") && !t.has_scope("notes:write"));
    assert_eq!(
        (t.auth_time, t.sid.as_deref(), t.acr),
        (Some(5), Some("s1"), None)
    );
    assert_eq!(t.actor, None);
    // Exchanged on the user's behalf (RFC 8693 §4.1): the actors, nested.
    let act = json!({"act": {"sub": "notes-api", "act": {"sub": "gateway"}}});
    let t = v.verify(&p.token(act)).await.unwrap();
    let gateway = Actor {
        sub: "gateway".into(),
        act: None,
    };
    let expected = Actor {
        sub: "notes-api".into(),
        act: Some(Box::new(gateway)),
    };
    assert_eq!(t.actor, Some(expected));
    // An audience list naming this API will do (RFC 7519 §4.1.3); the keys were read once.
    let listed = p.token(json!({"aud": ["https://other.example", API]}));
    v.verify(&listed).await.unwrap();
    let typed = p.token_with("a", KEY_A, "application/at+jwt", json!({}));
    v.verify(&typed).await.unwrap();
    assert_eq!(p.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn each_rule_of_rfc_9068_refuses_its_token() {
    let p = provider().await;
    let v = p.verifier().await;
    let now = p.clock.unix();
    let refused = [
        (
            p.token_with("a", KEY_A, "JWT", json!({})),
            VerifyError::WrongType,
        ),
        (
            p.token(json!({"aud": "https://other.example"})),
            VerifyError::Audience,
        ),
        (
            p.token(json!({"aud": ["https://other.example"]})),
            VerifyError::Audience,
        ),
        (p.token(json!({"exp": now - 31})), VerifyError::Expired),
        (p.token(json!({"nbf": now + 31})), VerifyError::NotYet),
        (p.token(json!({"iat": now + 31})), VerifyError::NotYet),
        ("not.a.jwt".to_owned(), VerifyError::Malformed),
    ];
    for (token, why) in refused {
        assert_eq!(v.verify(&token).await, Err(why));
    }
    // Within the leeway of thirty seconds.
    v.verify(&p.token(json!({"exp": now - 29}))).await.unwrap();
    // Another issuer, missing claims, a signature by a key that is not the one named.
    let other = p.token(json!({"iss": "https://evil.example"}));
    assert!(matches!(
        v.verify(&other).await,
        Err(VerifyError::Invalid(_))
    ));
    let no_sub = p.token(json!({"sub": null}));
    assert!(matches!(
        v.verify(&no_sub).await,
        Err(VerifyError::Invalid(_))
    ));
    let forged = p.token_with("a", KEY_B, "at+jwt", json!({}));
    assert!(matches!(
        v.verify(&forged).await,
        Err(VerifyError::Invalid(_))
    ));
    // HS256 "signed" with the public key, and no algorithm at all, are not ours.
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("a".into());
    let claims = json!({"iss": p.issuer, "aud": API, "sub": "x", "exp": now + 60, "iat": now});
    let secret = EncodingKey::from_secret(JWK_A.0.as_bytes());
    let hmac = jsonwebtoken::encode(&header, &claims, &secret).unwrap();
    let refused = v.verify(&hmac).await;
    assert_eq!(
        refused,
        Err(VerifyError::Key(infra::jwks::KeyError::Algorithm))
    );
    let unsigned = format!(
        "{}.",
        hmac.rsplit_once('.').unwrap().0.replace("HS256", "none")
    );
    assert!(v.verify(&unsigned).await.is_err());
}

#[tokio::test]
async fn a_new_key_is_fetched_when_a_token_names_it_and_forged_kids_do_not_hammer_the_provider() {
    let p = provider().await;
    let v = p.verifier().await;
    v.verify(&p.token(json!({}))).await.unwrap();
    assert_eq!(p.fetches.load(Ordering::SeqCst), 1);
    // The provider publishes key b (a rotation), and the first token signed with it is
    // accepted: the set is fetched again.
    p.keys.lock().unwrap().push(jwk("b", JWK_B));
    p.clock.advance(std::time::Duration::from_secs(10));
    let rotated = p.token_with("b", KEY_B, "at+jwt", json!({}));
    v.verify(&rotated).await.unwrap();
    assert_eq!(p.fetches.load(Ordering::SeqCst), 2);
    // Unknown kids: one fetch, then none until ten seconds have passed.
    for _ in 0..2 {
        p.clock.advance(std::time::Duration::from_secs(10));
        for kid in ["x", "y", "z"] {
            let forged = p.token_with(kid, KEY_A, "at+jwt", json!({}));
            let why = v.verify(&forged).await;
            assert_eq!(why, Err(VerifyError::Key(infra::jwks::KeyError::Unknown)));
        }
    }
    assert_eq!(p.fetches.load(Ordering::SeqCst), 4);
}

/// A fetch under way (a slow provider, an unknown `kid`) holds up no token whose key is held.
#[tokio::test]
async fn a_slow_key_fetch_holds_up_no_token_with_a_known_key() {
    let p = provider().await;
    let v = p.verifier().await;
    v.verify(&p.token(json!({}))).await.unwrap();
    p.stalled.store(true, Ordering::SeqCst);
    p.clock.advance(std::time::Duration::from_secs(10));
    let unknown = p.token_with("new", KEY_B, "at+jwt", json!({}));
    let waiting = {
        let v = v.clone();
        tokio::spawn(async move { v.verify(&unknown).await })
    };
    // Wait until that fetch has reached the provider, then verify with the known key.
    let patience = std::time::Duration::from_secs(20);
    tokio::time::timeout(patience, async {
        while p.fetches.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the fetch for the unknown kid started");
    let known = tokio::time::timeout(patience, v.verify(&p.token(json!({}))))
        .await
        .expect("a held key does not wait for the fetch");
    known.unwrap();
    p.gate.notify_one();
    let refused = waiting.await.unwrap();
    assert_eq!(
        refused,
        Err(VerifyError::Key(infra::jwks::KeyError::Unknown))
    );
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let p = provider().await;
    let config = Config::new(format!("{}/", p.issuer), API);
    let wrong = Verifier::discover(config, reqwest::Client::new(), p.clock.clone()).await;
    assert!(
        matches!(wrong, Err(SetupError::Issuer { .. })),
        "{:?}",
        wrong.err()
    );
}

/// `GET /notes` behind the layer (`notes:read`), answering the caller and the key its token
/// is bound to.
fn notes_router(v: &Arc<Verifier>) -> Router {
    async fn notes(Caller(token): Caller) -> axum::Json<Value> {
        axum::Json(json!({"owner": token.sub, "jkt": token.dpop_jkt}))
    }
    Router::new().route(
        "/notes",
        get(notes).route_layer(require(v, &["notes:read"])),
    )
}

/// What a protected route answers: status, `WWW-Authenticate` (its challenges joined by
/// ` | `), body.
async fn call(app: &Router, authorization: &[&str]) -> (StatusCode, String, Value) {
    let mut req = Request::get("/notes");
    for a in authorization {
        req = req.header(header::AUTHORIZATION, *a);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let challenge = resp
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ");
    let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, challenge, body)
}

#[tokio::test]
async fn a_protected_route_answers_rfc_6750_and_hands_the_token_to_its_handler() {
    let p = provider().await;
    let v = p.verifier().await;
    let app = notes_router(&v);
    let good = format!("Bearer {}", p.token(json!({})));
    let (status, _, body) = call(&app, &[&good]).await;
    assert_eq!(
        (status, body["owner"].as_str()),
        (StatusCode::OK, Some("alice"))
    );
    let lower = format!("bearer {}", p.token(json!({})));
    assert_eq!(call(&app, &[&lower]).await.0, StatusCode::OK);

    let (status, challenge, _) = call(&app, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A challenge for each scheme, neither with an error code (RFC 6750 §3.1, RFC 9449 §7.1).
    assert_eq!(
        challenge,
        format!("Bearer realm=\"{API}\" | DPoP algs=\"ES256 RS256 EdDSA\""),
    );
    assert_eq!(
        call(&app, &["Basic YTpi"]).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (status, challenge, body) = call(&app, &["Bearer abc.def.ghi"]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(body["error"], "invalid_token");

    let writer = format!("Bearer {}", p.token(json!({"scope": "notes:write"})));
    let (status, challenge, body) = call(&app, &[&writer]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        challenge.contains("error=\"insufficient_scope\", scope=\"notes:read\""),
        "{challenge}"
    );
    assert_eq!(body["error"], "insufficient_scope");

    let (status, challenge, _) = call(&app, &[&good, &good]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    assert_eq!(
        call(&app, &["Bearer a\"b"]).await.0,
        StatusCode::BAD_REQUEST
    );
}

/// A DPoP proof for `method` `url` by the P-256 key `key` (PEM), with `extra` claims.
fn dpop_proof(key: &str, method: &str, url: &str, now: i64, extra: Value) -> String {
    let encoding = EncodingKey::from_ec_der(&der(key));
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(jwk);
    let mut claims = json!({
        "jti": infra::secret::random_handle().unwrap(), "htm": method, "htu": url, "iat": now,
    });
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    jsonwebtoken::encode(&header, &claims, &encoding).unwrap()
}

/// RFC 9449 §7.1: a bound token (`cnf.jkt`) only under the DPoP scheme, with a proof for this
/// request naming the token, by its key, once; an unbound one never under DPoP.
#[tokio::test]
async fn a_dpop_bound_token_needs_a_fresh_proof_by_its_key() {
    let p = provider().await;
    let v = p.verifier().await;
    let app = notes_router(&v);
    // The client's DPoP key is KEY_B; its thumbprint is what the token is bound to.
    let client_jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(
        &EncodingKey::from_ec_der(&der(KEY_B)),
        Algorithm::ES256,
    )
    .unwrap();
    let jkt = client_jwk
        .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .unwrap();
    let token = p.token(json!({ "cnf": { "jkt": jkt } }));
    let now = p.clock.unix();
    let ath = infra::dpop::token_hash(&token);
    let url = format!("{API}/notes");
    let send = |scheme: &str, proofs: Vec<String>| {
        let mut req =
            Request::get("/notes").header(header::AUTHORIZATION, format!("{scheme} {token}"));
        for proof in proofs {
            req = req.header("DPoP", proof);
        }
        let app = app.clone();
        async move {
            let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (resp.status(), challenge)
        }
    };
    let proof = dpop_proof(KEY_B, "GET", &url, now, json!({ "ath": ath }));
    assert_eq!(send("DPoP", vec![proof.clone()]).await.0, StatusCode::OK);
    // The same proof again, none, two, another key's, another URL's, another token's.
    let (status, challenge) = send("DPoP", vec![proof.clone()]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.starts_with("DPoP algs=\"ES256 RS256 EdDSA\", error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    let fresh = || dpop_proof(KEY_B, "GET", &url, now, json!({ "ath": ath }));
    for proofs in [
        vec![],
        vec![fresh(), fresh()],
        vec![dpop_proof(KEY_A, "GET", &url, now, json!({ "ath": ath }))],
        vec![dpop_proof(
            KEY_B,
            "GET",
            "https://other.example/notes",
            now,
            json!({ "ath": ath }),
        )],
        vec![dpop_proof(KEY_B, "POST", &url, now, json!({ "ath": ath }))],
        vec![dpop_proof(KEY_B, "GET", &url, now, json!({ "ath": "x" }))],
    ] {
        let (status, challenge) = send("DPoP", proofs).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
    }
    // As a bearer token: refused, proof or not, with a DPoP challenge.
    let (status, challenge) = send("Bearer", vec![fresh()]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.starts_with("DPoP algs=\"ES256 RS256 EdDSA\", error=\"invalid_token\""),
        "{challenge}"
    );
    // An unbound token under the DPoP scheme: refused, under the scheme it came with (§7.1).
    let unbound = p.token(json!({}));
    let req = Request::get("/notes")
        .header(header::AUTHORIZATION, format!("DPoP {unbound}"))
        .header("DPoP", fresh());
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.starts_with("DPoP algs=\"ES256 RS256 EdDSA\", error=\"invalid_token\""),
        "{challenge}"
    );
}

/// Behind a nesting router the proof names the path the client sent; two DPoP headers, one of
/// them unreadable, are not one.
#[tokio::test]
async fn a_proof_names_the_path_the_client_sent() {
    let p = provider().await;
    let v = p.verifier().await;
    let inner = notes_router(&v);
    let app = Router::new().nest("/v1", inner);
    let client = EncodingKey::from_ec_der(&der(KEY_B));
    let jkt = jsonwebtoken::jwk::Jwk::from_encoding_key(&client, Algorithm::ES256)
        .unwrap()
        .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .unwrap();
    let token = p.token(json!({ "cnf": { "jkt": jkt } }));
    let now = p.clock.unix();
    let ath = infra::dpop::token_hash(&token);
    let status = |proofs: Vec<http::HeaderValue>| {
        let mut req =
            Request::get("/v1/notes").header(header::AUTHORIZATION, format!("DPoP {token}"));
        for proof in proofs {
            req = req.header("DPoP", proof);
        }
        let app = app.clone();
        async move {
            app.oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap()
                .status()
        }
    };
    let proof = |url: &str| {
        http::HeaderValue::from_str(&dpop_proof(KEY_B, "GET", url, now, json!({ "ath": ath })))
            .unwrap()
    };
    assert_eq!(
        status(vec![proof(&format!("{API}/v1/notes"))]).await,
        StatusCode::OK
    );
    assert_eq!(
        status(vec![proof(&format!("{API}/notes"))]).await,
        StatusCode::UNAUTHORIZED,
        "the path the nested router sees is not the one the client sent"
    );
    let unreadable = http::HeaderValue::from_bytes(b"\xff\xfe").unwrap();
    assert_eq!(
        status(vec![proof(&format!("{API}/v1/notes")), unreadable]).await,
        StatusCode::UNAUTHORIZED
    );
}

/// `bearer()` is for routes that take the Bearer scheme alone: no token is a bare Bearer
/// challenge (no DPoP one), and a token under the DPoP scheme is `invalid_token`.
#[test]
fn bearer_takes_the_bearer_scheme_alone() {
    let headers = |value: Option<&str>| {
        let mut h = http::HeaderMap::new();
        if let Some(v) = value {
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
        }
        h
    };
    assert_eq!(bearer(&headers(Some("Bearer abc"))), Ok("abc"));
    let none = bearer(&headers(None)).unwrap_err();
    assert_eq!(none, Refusal::NoBearerToken);
    let answer = refusal_response("https://api.example", none);
    let challenges: Vec<_> = answer
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .collect();
    assert_eq!(challenges, [r#"Bearer realm="https://api.example""#]);
    assert!(matches!(
        bearer(&headers(Some("DPoP abc"))),
        Err(Refusal::InvalidToken(_))
    ));
}

/// A request under the DPoP scheme is refused under that scheme, even when its
/// `Authorization` headers cannot be read (RFC 9449 §7.1); under Bearer, as RFC 6750 says.
#[tokio::test]
async fn malformed_requests_are_refused_under_the_scheme_they_used() {
    let p = provider().await;
    let v = p.verifier().await;
    let app = notes_router(&v);
    let (status, challenge, _) = call(&app, &["DPoP a", "DPoP b"]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        challenge.starts_with("DPoP algs=\"ES256 RS256 EdDSA\", error=\"invalid_request\""),
        "{challenge}"
    );
    let (status, challenge, _) = call(&app, &["Bearer a", "Bearer b"]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        challenge.starts_with(&format!(
            "Bearer realm=\"{API}\", error=\"invalid_request\""
        )),
        "{challenge}"
    );
}
