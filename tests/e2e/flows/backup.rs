//! Backups: `provider backup` taken while the provider serves, and `provider restore` into
//! another database, which then holds the users, clients, signing keys and SSO sessions of
//! the moment of the copy (nothing written after it); and the refusals: an instance at work
//! on the database, a file that exists, a file that is not a database, a missing one.

use crate::harness::{ALICE, Browser, Stack, eventually, spawn};

/// Runs a `provider` command against the database at `database_url` (the stack's session
/// store, so a restored sessions table is read where the command looks).
async fn cli_on(stack: &Stack, database_url: &str, args: &[&str]) -> Result<String, String> {
    let mut config = stack.provider.config.clone();
    config.database_url = database_url.to_owned();
    let mut all = vec!["provider"];
    all.extend_from_slice(args);
    provider::cli::run_args(config, all, "")
        .await
        .map_err(|e| format!("{e:#}"))
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_users_clients_keys_and_sessions() {
    let stack = spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gatehouse.backup");
    let file = file.to_str().unwrap();
    if !stack.provider.config.database_url.starts_with("sqlite:") {
        let refused = stack.cli(&["backup", file]).await.unwrap_err();
        assert!(refused.contains("pg_dump"), "{refused}");
        return;
    }
    let alice = Browser::new();
    super::sign_in(&stack, &alice, &stack.app_b, ALICE).await;
    let keys = stack.cli(&["keys", "list"]).await.unwrap();

    let made = stack.cli(&["backup", file]).await.unwrap();
    for counted in [
        "2 user(s)",
        "1 SSO session(s)",
        "signing key(s)",
        "client(s)",
    ] {
        assert!(made.contains(counted), "{counted}: {made}");
    }
    let again = stack.cli(&["backup", file]).await.unwrap_err();
    assert!(again.contains("exists already"), "{again}");
    // Written after the copy: not in it.
    stack
        .cli_with_stdin(
            &["users", "add", "carol", "--password-stdin"],
            "a-long-password\n",
        )
        .await
        .unwrap();

    // Not over the database an instance is at work on: the stack's maintenance holds its
    // lease (renewed every round, `session.sweep_interval`), once its first round is done.
    let store = stack.store.clone();
    eventually("the stack holds the maintenance lease", || {
        let store = store.clone();
        async move {
            let now = infra::Clock::system().unix();
            let held = store.lease_held_until("maintenance", now).await.unwrap();
            held.map(|_| ())
        }
    })
    .await;
    let busy = stack.cli(&["restore", file]).await.unwrap_err();
    assert!(busy.contains("at work"), "{busy}");

    // Into another database: what the copy held, and nothing after it.
    let other = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("restored.db").display()
    );
    let restored = cli_on(&stack, &other, &["restore", file]).await.unwrap();
    assert!(restored.contains("2 user(s)"), "{restored}");
    assert!(
        restored.contains("everything since the copy is undone"),
        "{restored}"
    );
    assert!(
        !restored.contains("is kept in"),
        "nothing to keep: {restored}"
    );
    let users = cli_on(&stack, &other, &["users", "list"]).await.unwrap();
    assert!(users.contains("alice") && users.contains("bob"), "{users}");
    assert!(!users.contains("carol"), "{users}");
    let clients = cli_on(&stack, &other, &["clients", "list"]).await.unwrap();
    assert!(
        clients.contains("app-a") && clients.contains("app-b"),
        "{clients}"
    );
    assert_eq!(
        cli_on(&stack, &other, &["keys", "list"]).await.unwrap(),
        keys
    );
    let sessions = cli_on(
        &stack,
        &other,
        &["sessions", "list", "--user", ALICE.0, "--json"],
    )
    .await
    .unwrap();
    let sessions: serde_json::Value = serde_json::from_str(&sessions).unwrap();
    assert_eq!(sessions.as_array().map(Vec::len), Some(1), "{sessions}");

    // What is not a copy of ours is refused, and the database left as it was.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "shopping: tea, milk, a very large hat").unwrap();
    let refused = cli_on(&stack, &other, &["restore", text.to_str().unwrap()])
        .await
        .unwrap_err();
    assert!(refused.contains("not a sound SQLite database"), "{refused}");
    let missing = dir.path().join("missing.backup");
    let refused = cli_on(&stack, &other, &["restore", missing.to_str().unwrap()])
        .await
        .unwrap_err();
    assert!(refused.contains("is not there"), "{refused}");
    let users = cli_on(&stack, &other, &["users", "list"]).await.unwrap();
    assert!(users.contains("alice"), "{users}");
    // Restored over a database that holds something: that one is kept beside it first.
    let again = cli_on(&stack, &other, &["restore", file]).await.unwrap();
    let kept = again
        .lines()
        .find_map(|l| l.strip_prefix("the database it replaced is kept in "))
        .unwrap_or_else(|| panic!("a copy kept: {again}"));
    assert!(std::path::Path::new(kept).is_file(), "{kept}");
}
