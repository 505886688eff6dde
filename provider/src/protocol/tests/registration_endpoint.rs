//! The registration endpoints' rules (RFC 7591 §3, RFC 7592 §2).

use crate::context::testing;
use crate::protocol::error::{BearerError, RegistrationError};
use crate::protocol::registration::endpoint::{self, Body};
use crate::types::{BearerErrorCode, RegistrationErrorCode};
use serde_json::json;

const METADATA: &[u8] = br#"{"client_name": "Mine", "redirect_uris": ["https://mine.example/cb"]}"#;

fn bearer_code(e: &RegistrationError) -> Option<BearerErrorCode> {
    match e {
        RegistrationError::Bearer(b) => b.code(),
        _ => None,
    }
}

#[tokio::test]
async fn an_initial_access_token_registers_one_client() {
    let ctx = testing::ctx().await;
    let now = ctx.clock.unix();
    let (token, _) = crate::protocol::registration::issue_initial_access_token(&ctx.store, now, 60)
        .await
        .unwrap();
    let missing = endpoint::register(&ctx, Ok(None), Body::Json(METADATA))
        .await
        .unwrap_err();
    assert!(matches!(
        missing,
        RegistrationError::Bearer(BearerError::Missing)
    ));
    // A refused form does not spend the token.
    let bad = br#"{"redirect_uris": ["http://mine.example/cb"]}"#;
    let refused = endpoint::register(&ctx, Ok(Some(token.clone())), Body::Json(bad)).await;
    match refused {
        Err(RegistrationError::Metadata(m)) => {
            assert_eq!(m.code, RegistrationErrorCode::InvalidRedirectUri)
        }
        other => panic!("{other:?}"),
    }
    let done = endpoint::register(&ctx, Ok(Some(token.clone())), Body::Json(METADATA)).await;
    let done = done.unwrap().0;
    assert_eq!(done["client_name"], "Mine");
    assert!(done["client_secret"].is_string() && done["registration_access_token"].is_string());
    let again = endpoint::register(&ctx, Ok(Some(token)), Body::Json(METADATA)).await;
    assert_eq!(
        bearer_code(&again.unwrap_err()),
        Some(BearerErrorCode::InvalidToken),
        "spent"
    );
    // Not JSON at all, or not an object.
    for body in [Body::NotJson, Body::Json(b"[1]"), Body::Json(b"{nope")] {
        let (token, _) =
            crate::protocol::registration::issue_initial_access_token(&ctx.store, now, 60)
                .await
                .unwrap();
        let got = endpoint::register(&ctx, Ok(Some(token)), body).await;
        assert!(
            matches!(got, Err(RegistrationError::InvalidRequest(_))),
            "{body:?}"
        );
    }
}

#[tokio::test]
async fn open_registration_looks_at_no_token() {
    let mut ctx = testing::ctx().await;
    std::sync::Arc::get_mut(&mut ctx.ctx)
        .unwrap()
        .config
        .registration
        .open = true;
    let garbled = Err(BearerError::invalid_request(
        "malformed Authorization header",
    ));
    assert!(
        endpoint::register(&ctx, garbled, Body::Json(METADATA))
            .await
            .is_ok()
    );
    assert!(
        endpoint::register(&ctx, Ok(None), Body::Json(METADATA))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_registration_access_token_manages_its_client_only() {
    let mut ctx = testing::ctx().await;
    std::sync::Arc::get_mut(&mut ctx.ctx)
        .unwrap()
        .config
        .registration
        .open = true;
    let done = endpoint::register(&ctx, Ok(None), Body::Json(METADATA))
        .await
        .unwrap()
        .0;
    let id = done["client_id"].as_str().unwrap().to_owned();
    let token = done["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = done["client_secret"].as_str().unwrap().to_owned();
    let wrong = endpoint::managed(&ctx, Some("guess".into()), &id)
        .await
        .unwrap_err();
    assert_eq!(bearer_code(&wrong), Some(BearerErrorCode::InvalidToken));
    let unknown = endpoint::managed(&ctx, Some(token.clone()), "nobody")
        .await
        .unwrap_err();
    assert_eq!(
        bearer_code(&unknown),
        Some(BearerErrorCode::InvalidToken),
        "same answer"
    );
    let (client, token) = endpoint::managed(&ctx, Some(token), &id).await.unwrap();
    assert_eq!(
        endpoint::read(&ctx, &client, &token).0["client_id"],
        id.as_str()
    );
    // RFC 7592 §2.2: the update carries the client's id, no server fields, the current secret.
    let update = |v: serde_json::Value| serde_json::to_vec(&v).unwrap();
    let uris = json!(["https://mine.example/new"]);
    for body in [
        json!({"redirect_uris": uris}),
        json!({"client_id": id, "redirect_uris": uris, "client_id_issued_at": 1}),
        json!({"client_id": id, "redirect_uris": uris, "client_secret": "not-it"}),
    ] {
        let bytes = update(body);
        let got = endpoint::update(&ctx, client.clone(), &token, Body::Json(&bytes)).await;
        assert!(
            matches!(got, Err(RegistrationError::InvalidRequest(_))),
            "{got:?}"
        );
    }
    let bytes = update(json!({"client_id": id, "redirect_uris": uris, "client_secret": secret}));
    let updated = endpoint::update(&ctx, client, &token, Body::Json(&bytes))
        .await
        .unwrap()
        .0;
    assert_eq!(updated["redirect_uris"], uris);
    let (client, _) = endpoint::managed(&ctx, Some(token.clone()), &id)
        .await
        .unwrap();
    endpoint::delete(&ctx, &client).await.unwrap();
    assert!(
        endpoint::managed(&ctx, Some(token), &id).await.is_err(),
        "gone"
    );
}
