//! DPoP (RFC 9449) over HTTP: the token endpoint asks for its nonce (`use_dpop_nonce` with a
//! `DPoP-Nonce` header), binds App A's tokens to the proof's key, and userinfo then wants the
//! `DPoP` scheme with a proof by that key; refusals carry a `DPoP` challenge.

use crate::harness::{ALICE, Browser, Stack, param, spawn};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A client's DPoP key.
struct DpopKey {
    key: EncodingKey,
    jwk: Jwk,
}

impl DpopKey {
    fn new() -> Self {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let key = EncodingKey::from_ec_der(pair.to_pkcs8v1().unwrap().as_ref());
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        Self { key, jwk }
    }

    /// Its RFC 7638 thumbprint (`jkt`).
    fn jkt(&self) -> String {
        self.jwk
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap()
    }

    fn proof(&self, method: &str, url: &str, extra: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        let mut claims = json!({
            "jti": infra::secret::random_handle().unwrap(), "htm": method, "htu": url,
            "iat": infra::Clock::system().unix(),
        });
        if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

/// A code for App A, as alice (consent given), its request with `extra` parameters.
async fn app_a_code(stack: &Stack, extra: &[(&str, &str)]) -> (String, String) {
    let app = &stack.app_a;
    let request = stack.authorize_url(&app.client_id, &app.redirect_uri, extra);
    (code_at(stack, request.url.as_str()).await, request.verifier)
}

/// The code App A gets for the authorization request at `url`, alice signing in (and
/// consenting) in a new browser.
async fn code_at(stack: &Stack, url: &str) -> String {
    let app = &stack.app_a;
    let browser = Browser::new();
    let mut page = browser.follow_until(url, &app.redirect_uri).await;
    if page.url.path() == "/login" {
        let fields = [("username", ALICE.0), ("password", ALICE.1)];
        page = browser
            .submit_until(&page, "/login", &fields, &app.redirect_uri)
            .await;
    }
    if page.url.path() == "/consent" {
        let fields = [("decision", "allow")];
        page = browser
            .submit_until(&page, "/consent", &fields, &app.redirect_uri)
            .await;
    }
    param(page.url.as_str(), "code").expect("a code")
}

/// The token request redeeming App A's `code` (PKCE `verifier`).
fn code_form<'a>(stack: &'a Stack, code: &'a str, verifier: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &stack.app_a.redirect_uri),
        ("code_verifier", verifier),
    ]
}

/// What App A's POST of `form` to `url` (HTTP Basic, with a DPoP proof if given) gets: the
/// status, the `DPoP-Nonce` header, and the JSON body.
async fn post_as_app_a(
    stack: &Stack,
    url: &str,
    form: &[(&str, &str)],
    proof: Option<String>,
) -> (u16, Option<String>, Value) {
    let app = &stack.app_a;
    let http = client_app::http::client_builder().build().unwrap();
    let mut req = http
        .post(url)
        .basic_auth(&app.client_id, Some(&app.secret))
        .form(form);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    let resp = req.send().await.unwrap();
    let nonce = resp
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = resp.status().as_u16();
    (status, nonce, resp.json().await.unwrap())
}

#[tokio::test]
async fn tokens_bound_to_a_dpop_key_need_a_proof_by_it() {
    let stack = spawn().await;
    let discovery = stack.discovery().await;
    assert_eq!(
        discovery["dpop_signing_alg_values_supported"],
        json!(["ES256", "RS256", "EdDSA"])
    );
    let http = client_app::http::client_builder().build().unwrap();
    let token_url = format!("{}/token", stack.issuer);
    let userinfo_url = format!("{}/userinfo", stack.issuer);
    let key = DpopKey::new();
    let (code, verifier) = app_a_code(&stack, &[]).await;
    let app = &stack.app_a;
    let form = code_form(&stack, &code, &verifier);
    let redeem = |proof: String| {
        http.post(&token_url)
            .basic_auth(&app.client_id, Some(&app.secret))
            .header("DPoP", proof)
            .form(&form)
            .send()
    };
    // Without the nonce: 400 use_dpop_nonce, the nonce in DPoP-Nonce, the code unspent.
    let first = redeem(key.proof("POST", &token_url, json!({})))
        .await
        .unwrap();
    assert_eq!(first.status(), 400);
    let nonce = first.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    let bound = redeem(key.proof("POST", &token_url, json!({ "nonce": nonce })))
        .await
        .unwrap();
    assert_eq!(bound.status(), 200);
    // A success carries the nonce too (RFC 9449 §8.2): the next proof needs no round trip.
    assert!(bound.headers().contains_key("dpop-nonce"));
    let tokens: Value = bound.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP", "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let claims = crate::harness::jwt_part(access, 1);
    let jkt = key.jkt();
    assert_eq!(claims["cnf"]["jkt"], jkt.as_str());

    // Userinfo: the DPoP scheme and a proof naming the token.
    use base64::Engine;
    let ath = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(access.as_bytes()));
    let proof = key.proof("GET", &userinfo_url, json!({ "ath": ath }));
    // Userinfo as `authorization` with `proof`: its status and challenge.
    let userinfo = |authorization: String, proof: Option<&str>| {
        let mut req = http
            .get(&userinfo_url)
            .header("Authorization", authorization);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        async move {
            let resp = req.send().await.unwrap();
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (resp.status(), challenge)
        }
    };
    let (status, _) = userinfo(format!("DPoP {access}"), Some(&proof)).await;
    assert_eq!(status, 200);
    let (status, challenge) = userinfo(format!("Bearer {access}"), None).await;
    assert_eq!(status, 401);
    // The challenge tells the client which scheme the token needs (RFC 9449 §7.1).
    assert!(
        challenge.starts_with("DPoP algs=\"ES256 RS256 EdDSA\", error=\"invalid_token\""),
        "{challenge}"
    );
    let (status, challenge) = userinfo(format!("DPoP {access}"), Some(&proof)).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("DPoP algs=\"ES256 RS256 EdDSA\", error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    // A token refused under the DPoP scheme is refused under that scheme's challenge.
    let (status, challenge) = userinfo("DPoP not-a-token".into(), Some(&proof)).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("DPoP algs=\"ES256 RS256 EdDSA\", error=\"invalid_token\""),
        "{challenge}"
    );
    // Introspection says what the token is bound to (RFC 9449 §6.2).
    let introspected: Value = http
        .post(format!("{}/introspect", stack.issuer))
        .basic_auth(&app.client_id, Some(&app.secret))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"]["jkt"], jkt.as_str());
}

/// RFC 9449 §10: an authorization request naming a key (`dpop_jkt`) gets a code that only a
/// proof by that key redeems; the refusals are `invalid_dpop_proof` and spend nothing.
#[tokio::test]
async fn a_code_bound_with_dpop_jkt_redeems_only_with_a_proof_by_that_key() {
    let stack = spawn().await;
    let token_url = format!("{}/token", stack.issuer);
    let key = DpopKey::new();
    let (code, verifier) = app_a_code(&stack, &[("dpop_jkt", &key.jkt())]).await;
    let form = code_form(&stack, &code, &verifier);
    let redeem = |proof| post_as_app_a(&stack, &token_url, &form, proof);
    let (status, nonce, _) = redeem(Some(key.proof("POST", &token_url, json!({})))).await;
    assert_eq!(status, 400);
    let nonce = json!({ "nonce": nonce.unwrap() });
    let other = DpopKey::new();
    for proof in [None, Some(other.proof("POST", &token_url, nonce.clone()))] {
        let (status, _, body) = redeem(proof).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{body}"
        );
    }
    let (status, _, tokens) = redeem(Some(key.proof("POST", &token_url, nonce))).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = crate::harness::jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["cnf"]["jkt"], key.jkt().as_str());
}

/// RFC 9449 §10.1: a push to the PAR endpoint sent with a proof (for that endpoint, with the
/// provider's nonce) binds the code the browser brings back to the proof's key.
#[tokio::test]
async fn a_push_sent_with_a_proof_binds_the_code_to_its_key() {
    let stack = spawn().await;
    let (par_url, token_url) = (
        format!("{}/par", stack.issuer),
        format!("{}/token", stack.issuer),
    );
    let app = &stack.app_a;
    let request = stack.authorize_url(&app.client_id, &app.redirect_uri, &[]);
    let params: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (&**k, &**v)).collect();
    let key = DpopKey::new();
    let push = |proof| post_as_app_a(&stack, &par_url, &params, Some(proof));
    let (status, nonce, body) = push(key.proof("POST", &par_url, json!({}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let nonce = json!({ "nonce": nonce.unwrap() });
    // A proof made for the token endpoint is not one for the PAR endpoint.
    let (status, _, body) = push(key.proof("POST", &token_url, nonce.clone())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let (status, _, pushed) = push(key.proof("POST", &par_url, nonce.clone())).await;
    assert_eq!(status, 201, "{pushed}");

    let mut url = url::Url::parse(&format!("{}/authorize", stack.issuer)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &app.client_id)
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap());
    let code = code_at(&stack, url.as_str()).await;
    let form = code_form(&stack, &code, &request.verifier);
    let redeem = |proof| post_as_app_a(&stack, &token_url, &form, Some(proof));
    let other = DpopKey::new();
    let (status, _, body) = redeem(other.proof("POST", &token_url, nonce.clone())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let (status, _, tokens) = redeem(key.proof("POST", &token_url, nonce)).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = crate::harness::jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["cnf"]["jkt"], key.jkt().as_str());
}
