//! `provider doctor` against a running stack: every check passes (the issuer's discovery and
//! keys as served, the cookie as served, the apps' back-channel endpoints); then a broken
//! setting of each kind is found, named, and fails the command.

use crate::harness::{Stack, spawn};

/// Runs `provider doctor` with the stack's configuration changed by `edit`.
async fn doctor(stack: &Stack, edit: impl FnOnce(&mut provider::Config)) -> Result<String, String> {
    let mut config = stack.provider.config.clone();
    edit(&mut config);
    provider::cli::run_args(config, ["provider", "doctor"], "")
        .await
        .map_err(|e| format!("{e:#}"))
}

#[tokio::test]
async fn the_doctor_passes_a_sound_stack_and_finds_each_broken_setting() {
    let stack = spawn().await;
    let report = doctor(&stack, |_| {}).await.unwrap();
    for seen in [
        "is this issuer's",
        "RS256 key",
        "ES256 key",
        "published",
        "the SSO cookie",
        "app-a: back-channel logout endpoint answers",
        "app-b: back-channel logout endpoint answers",
        "no problem found",
    ] {
        assert!(report.contains(seen), "{seen}: {report}");
    }

    // The issuer somewhere nothing answers.
    let broken = doctor(&stack, |c| {
        c.issuer = url::Url::parse("http://idp.localhost:9").unwrap();
    })
    .await
    .unwrap_err();
    assert!(broken.contains("problem(s) found"), "{broken}");
    assert!(broken.contains("is not reachable"), "{broken}");

    // Another cookie name than the one the provider serves.
    let broken = doctor(&stack, |c| c.cookie.name = "elsewhere".into())
        .await
        .unwrap_err();
    assert!(broken.contains("sets no elsewhere cookie"), "{broken}");

    // An app whose back-channel endpoint does not answer, and one the policy refuses.
    stack
        .cli(&[
            "clients",
            "add",
            "--client-id",
            "gone",
            "--name",
            "Gone",
            "--redirect-uri",
            "http://gone.localhost:9/callback",
            "--backchannel-logout-uri",
            "http://gone.localhost:9/logout",
        ])
        .await
        .unwrap();
    let broken = doctor(&stack, |_| {}).await.unwrap_err();
    assert!(
        broken.contains("gone: http://gone.localhost:9/logout does not answer"),
        "{broken}"
    );
    let broken = doctor(&stack, |c| c.outbound.allow.clear())
        .await
        .unwrap_err();
    assert!(
        broken.contains("refused by the outbound policy"),
        "{broken}"
    );
}
