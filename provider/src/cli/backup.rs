//! `provider backup FILE` and `provider restore FILE`: a consistent copy of the embedded
//! (SQLite) database taken while the provider serves, and putting one back
//! (`infra::backup`). Users, clients, signing keys, grants and tokens, the audit trail, and
//! the SSO sessions when they are kept in the database (`session.store = "sql"`); sessions in
//! Redis are Redis's to keep. PostgreSQL is backed up with `pg_dump` (README "Backups").

use super::io::{Io, existing_store, rfc3339};
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

/// `provider backup FILE`: the database as it is (neither migrated nor created).
pub(super) async fn backup(config: &Config, file: PathBuf, io: &mut Io<'_>) -> anyhow::Result<()> {
    let store = existing_store(config).await?;
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

/// Whether `seen` is a copy this build can put back: every migration it records succeeded
/// and is one of this build's, with the same checksum, and the provider's first is there.
fn restorable(file: &Path, seen: &Inspection) -> anyhow::Result<()> {
    let known = Store::schema();
    for applied in &seen.applied {
        anyhow::ensure!(
            applied.success,
            "{}: schema migration {} failed in it: it is not a sound copy",
            file.display(),
            applied.version
        );
        match known.iter().find(|(v, _)| *v == applied.version) {
            None => anyhow::bail!(
                "{} was made by a newer Gatehouse (schema version {}): restore it with that version",
                file.display(),
                applied.version
            ),
            Some((_, checksum)) => anyhow::ensure!(
                *checksum == applied.checksum,
                "{}: schema migration {} is not this Gatehouse's",
                file.display(),
                applied.version
            ),
        }
    }
    let first = Store::first_schema_version();
    anyhow::ensure!(
        seen.applied.iter().any(|a| Some(a.version) == first),
        "{} is not a Gatehouse provider database",
        file.display()
    );
    Ok(())
}

/// What a restore undoes, said after it.
const UNDONE: &str = "everything since the copy is undone, revocations included: passwords \
    changed, accounts disabled or removed, sessions and tokens revoked since then are back. \
    Revoke the sessions of the accounts concerned (`provider sessions revoke --user`, \
    `provider users revoke-grants`) and rotate the keys (`provider keys rotate`) if the copy \
    is older than something you revoked";

/// `provider restore FILE`: refused for a copy that is damaged, not Gatehouse's, or from
/// another Gatehouse's schema; for the live database itself; and while an instance is at
/// work on the database (its maintenance lease is held), unless `force`. The database it
/// replaces is kept beside it first.
pub(super) async fn restore(
    config: &Config,
    file: PathBuf,
    force: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let seen = inspect(file.clone()).await?;
    restorable(&file, &seen)?;
    // Neither migrated (it is about to be replaced) nor refused when new (a new machine).
    let store =
        Store::connect_waiting(&config.database_url, std::time::Duration::from_secs(30)).await?;
    let Some(live) = store.db().sqlite_file().await? else {
        anyhow::bail!("the database is not an SQLite file: restore PostgreSQL with pg_restore");
    };
    anyhow::ensure!(
        std::fs::canonicalize(&file)? != std::fs::canonicalize(&live)?,
        "{} is the database itself",
        file.display()
    );
    let now = Clock::system().unix();
    // A database that is already a Gatehouse one: nobody at work on it, and kept first.
    let holds = inspect(live.clone())
        .await
        .is_ok_and(|seen| !seen.applied.is_empty());
    if holds
        && let Some(until) = store.lease_held_until("maintenance", now).await?
        && !force
    {
        anyhow::bail!(
            "a provider instance is at work on this database (its maintenance lease runs until {}): \
             stop every instance first, then wait until then or pass --force",
            rfc3339(until)
        );
    }
    let kept = if holds {
        Some(keep_before(&store, &live, now).await?)
    } else {
        None
    };
    restore_file(file.clone(), live.clone()).await?;
    // A copy from an older Gatehouse is brought up to this one's schema; the leases it holds
    // were those of processes at the copy's moment.
    store.migrate().await?;
    store.clear_leases().await?;
    let now_seen = inspect(live.clone()).await?;
    out!(
        io,
        "restored {} into {}: {}",
        file.display(),
        live.display(),
        summary(&now_seen)
    );
    if let Some(kept) = kept {
        out!(io, "the database it replaced is kept in {}", kept.display());
    }
    out!(io, "note: {UNDONE}");
    if let Some(note) = sessions_note(config) {
        out!(io, "note: {note}");
    }
    Ok(())
}

/// A copy of the database about to be replaced, beside it.
async fn keep_before(store: &Store, live: &Path, now: i64) -> anyhow::Result<PathBuf> {
    let mut name = live.as_os_str().to_owned();
    name.push(format!(".before-restore-{now}"));
    let kept = PathBuf::from(name);
    backup::snapshot(store.db(), &kept).await?;
    Ok(kept)
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
    /// and the database it would have replaced is untouched; so is a copy whose history is
    /// not this build's, and the live database itself.
    #[tokio::test]
    async fn copies_that_are_not_this_gatehouses_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let source = config(dir.path(), "source.db");
        let migrated = run_args(source.clone(), ["provider", "migrate"], "").await;
        assert!(migrated.is_ok());
        let file = dir.path().join("copy.db");
        let file = file.to_str().unwrap();
        let made = run_args(source.clone(), ["provider", "backup", file], "").await;
        assert!(made.unwrap().contains("0 user(s)"));
        assert!(record_future_version(file).await);
        let target = config(dir.path(), "target.db");
        let refused = run_args(target.clone(), ["provider", "restore", file], "").await;
        let why = refused.unwrap_err().to_string();
        assert!(why.contains("newer Gatehouse"), "{why}");
        assert!(!dir.path().join("target.db").exists(), "nothing created");
        // The live database itself.
        let live = dir.path().join("source.db");
        let itself = run_args(source, ["provider", "restore", live.to_str().unwrap()], "").await;
        let why = itself.unwrap_err().to_string();
        assert!(why.contains("is the database itself"), "{why}");
        // Run where there is no database: nothing is created, and it says where to run it.
        let nowhere = config(dir.path(), "nowhere.db");
        let other = dir.path().join("other.db");
        let refused = run_args(nowhere, ["provider", "backup", other.to_str().unwrap()], "").await;
        let why = format!("{:#}", refused.unwrap_err());
        assert!(why.contains("run this where the provider runs"), "{why}");
        assert!(!dir.path().join("nowhere.db").exists());
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
