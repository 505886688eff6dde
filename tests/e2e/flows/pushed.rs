//! Pushed authorization requests (RFC 9126) over HTTP: App A pushes its request, the browser
//! carries only the `request_uri`, and the code it brings back redeems as usual; the PAR
//! endpoint answers refusals as JSON, and a `request_uri` serves once.

use crate::harness::{ALICE, Browser, param, spawn};
use serde_json::Value;

#[tokio::test]
async fn a_pushed_request_signs_in_and_the_endpoint_refuses_as_json() {
    let stack = spawn().await;
    let discovery = stack.discovery().await;
    let endpoint = format!("{}/par", stack.issuer);
    assert_eq!(
        discovery["pushed_authorization_request_endpoint"],
        endpoint.as_str()
    );
    assert_eq!(discovery["request_parameter_supported"], true);
    assert_eq!(discovery["require_pushed_authorization_requests"], false);

    let app = &stack.app_a;
    let request = stack.authorize_url(&app.client_id, &app.redirect_uri, &[]);
    let params: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    let http = client_app::http::client_builder().build().unwrap();
    let post = |form: Vec<(String, String)>, basic: bool| {
        let http = http.clone();
        let endpoint = endpoint.clone();
        let (id, secret) = (app.client_id.clone(), app.secret.clone());
        async move {
            let mut req = http.post(&endpoint).form(&form);
            if basic {
                req = req.basic_auth(id, Some(secret));
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let no_store = resp.headers()["cache-control"] == "no-store";
            (status, no_store, resp.json::<Value>().await.unwrap())
        }
    };
    let (status, no_store, pushed) = post(params.clone(), true).await;
    assert_eq!(status, 201, "{pushed}");
    assert!(no_store);
    assert_eq!(pushed["expires_in"], 60);
    let request_uri = pushed["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));

    // The browser carries two parameters; the pushed state comes back with the code.
    let mut url = url::Url::parse(&format!("{}/authorize", stack.issuer)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &app.client_id)
        .append_pair("request_uri", &request_uri);
    let browser = Browser::new();
    let page = browser.follow(url.as_str()).await;
    let page = browser
        .submit_until(
            &page,
            "/login",
            &[("username", ALICE.0), ("password", ALICE.1)],
            &app.redirect_uri,
        )
        .await;
    let page = if page.url.path() == "/consent" {
        browser
            .submit_until(
                &page,
                "/consent",
                &[("decision", "allow")],
                &app.redirect_uri,
            )
            .await
    } else {
        page
    };
    assert!(
        page.url.as_str().starts_with(&app.redirect_uri),
        "{}",
        page.url
    );
    assert_eq!(
        param(page.url.as_str(), "state").as_deref(),
        Some(request.state.as_str())
    );
    let code = param(page.url.as_str(), "code").unwrap();
    let (status, _, tokens) = stack.redeem_as_app_a(&code, &request.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string());

    // Used once.
    let again = browser.follow(url.as_str()).await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("expired or was used"), "{}", again.body);

    // Refusals, as JSON (RFC 9126 §2.3).
    let (status, _, body) = post(params.clone(), false).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let with = |name: &str, value: &str| {
        let mut p = params.clone();
        p.retain(|(n, _)| n != name);
        p.push((name.to_owned(), value.to_owned()));
        p
    };
    for (form, error) in [
        (
            with("redirect_uri", "https://evil.example/cb"),
            "invalid_request",
        ),
        (with("request_uri", &request_uri), "invalid_request"),
        (with("scope", "profile"), "invalid_scope"),
        (with("request", "not.a.jwt"), "invalid_request_object"),
    ] {
        let (status, no_store, body) = post(form, true).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{body}"
        );
        assert!(no_store);
    }
}
