//! `provider backup FILE` and `provider restore FILE`: a consistent copy of the embedded
//! (SQLite) database taken while the provider serves, and putting one back
//! (`infra::backup`). Users, clients, signing keys, grants and tokens, the audit trail, and
//! the SSO sessions when they are kept in the database (`session.store = "sql"`); sessions in
//! Redis are Redis's to keep. PostgreSQL is backed up with `pg_dump` (README "Backups").

use super::io::{Io, rfc3339, store};
use crate::Config;
use crate::store::Store;
use infra::Clock;
use infra::backup::{self, Inspection};
use std::path::{Path, PathBuf};

/// The tables a backup's summary counts.
const COUNTED: &[(&str, &str)] = &[
    ("users", "user(s)"),
    ("clients", "client(s)"),
    ("signing_keys", "signing key(s)"),
    ("sessions", "SSO session(s)"),
    ("refresh_tokens", "refresh token(s)"),
    ("audit_events", "audit event(s)"),
];

fn tables() -> Vec<&'static str> {
    COUNTED.iter().map(|(t, _)| *t).collect()
}

/// "2 user(s), 2 client(s), …" for what `seen` counted.
fn summary(seen: &Inspection) -> String {
    COUNTED
        .iter()
        .filter_map(|(table, what)| seen.rows_of(table).map(|n| format!("{n} {what}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sessions_note(config: &Config) -> Option<&'static str> {
    (config.session.store != sessions::SessionBackend::Sql)
        .then_some("the SSO sessions are not in the database (session.store), so not in this copy")
}

/// `provider backup FILE`.
pub(super) async fn backup(config: &Config, file: PathBuf, io: &mut Io<'_>) -> anyhow::Result<()> {
    let store = store(config).await?;
    backup::snapshot(store.db(), &file).await?;
    let seen = inspect(file.clone()).await?;
    out!(
        io,
        "backup written to {}: {}",
        file.display(),
        summary(&seen)
    );
    if let Some(note) = sessions_note(config) {
        out!(io, "note: {note}");
    }
    Ok(())
}

/// `provider restore FILE`: refused for a copy that is damaged, not Gatehouse's, or from a
/// newer Gatehouse; and while an instance is at work on the database (its maintenance lease
/// is held), unless `force`.
pub(super) async fn restore(
    config: &Config,
    file: PathBuf,
    force: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let seen = inspect(file.clone()).await?;
    let known = Store::schema_versions();
    if let Some(newer) = seen.versions.iter().find(|v| !known.contains(v)) {
        anyhow::bail!(
            "{} was made by a newer Gatehouse (schema version {newer}): restore it with that version",
            file.display()
        );
    }
    let store = store(config).await?;
    let Some(live) = store.db().sqlite_file().await? else {
        anyhow::bail!("the database is not an SQLite file: restore PostgreSQL with pg_restore");
    };
    let now = Clock::system().unix();
    if let Some(until) = store.lease_held_until("maintenance", now).await?
        && !force
    {
        anyhow::bail!(
            "a provider instance is at work on this database (its maintenance lease runs until {}): \
             stop every instance first, then wait until then or pass --force",
            rfc3339(until)
        );
    }
    restore_file(file.clone(), live.clone()).await?;
    // A copy from an older Gatehouse is brought up to this one's schema.
    store.migrate().await?;
    let now_seen = inspect(live.clone()).await?;
    out!(
        io,
        "restored {} into {}: {}",
        file.display(),
        live.display(),
        summary(&now_seen)
    );
    if let Some(note) = sessions_note(config) {
        out!(io, "note: {note}");
    }
    Ok(())
}

async fn inspect(file: PathBuf) -> anyhow::Result<Inspection> {
    let tables = tables();
    Ok(tokio::task::spawn_blocking(move || backup::inspect(&file, &tables)).await??)
}

async fn restore_file(src: PathBuf, dest: PathBuf) -> anyhow::Result<()> {
    let copy = move || backup::restore(Path::new(&src), Path::new(&dest));
    Ok(tokio::task::spawn_blocking(copy).await??)
}

#[cfg(test)]
mod tests {
    use crate::cli::run_args;
    use crate::config::Config;

    fn config(dir: &std::path::Path, name: &str) -> Config {
        Config {
            database_url: format!("sqlite://{}?mode=rwc", dir.join(name).display()),
            ..Config::default()
        }
    }

    /// A copy from a newer Gatehouse (a schema version this build does not know) is refused,
    /// and the database it would have replaced is untouched.
    #[tokio::test]
    async fn a_copy_from_a_newer_gatehouse_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let source = config(dir.path(), "source.db");
        let file = dir.path().join("copy.db");
        let file = file.to_str().unwrap();
        let made = run_args(source.clone(), ["provider", "backup", file], "").await;
        assert!(made.unwrap().contains("0 user(s)"));
        let copy = record_future_version(file).await;
        assert!(copy, "a future version recorded in the copy");
        let target = config(dir.path(), "target.db");
        let refused = run_args(target, ["provider", "restore", file], "").await;
        let why = refused.unwrap_err().to_string();
        assert!(why.contains("newer Gatehouse"), "{why}");
    }

    /// Records a schema version from the future in the copy at `file`.
    async fn record_future_version(file: &str) -> bool {
        let url = format!("sqlite://{file}");
        let db = infra::Db::connect(&url, 1).await.unwrap();
        let done = sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99991231000000, 'from the future', TRUE, x'00', 0)",
        )
        .execute(db.write())
        .await
        .unwrap();
        db.close().await;
        done.rows_affected() == 1
    }
}
