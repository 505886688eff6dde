//! What every command shares: where it reads and writes, the store it works on, and how it
//! writes times.

use crate::Config;
use crate::store::Store;
use std::io::{BufRead, Write};
use std::time::Duration;

/// Where a command reads its input (passwords) and writes its output.
pub struct Io<'a> {
    pub input: &'a mut dyn BufRead,
    pub out: &'a mut dyn Write,
}

/// The store of `config`, migrated (a command may be the first to touch a new database).
pub(super) async fn store(config: &Config) -> anyhow::Result<Store> {
    // An operator's command waits out a busy database (up to half a minute per statement)
    // rather than failing halfway through ending sessions.
    let store = Store::connect_waiting(&config.database_url, Duration::from_secs(30)).await?;
    store.migrate().await?;
    Ok(store)
}

/// The store of `config` as it is: not migrated (a newer binary must not change the schema
/// under running servers, nor a backup hold a schema they do not know) and, for SQLite,
/// never created (run from the wrong directory, a command would find an empty one).
pub(super) async fn existing_store(config: &Config) -> anyhow::Result<Store> {
    use anyhow::Context;
    let url = existing(&config.database_url);
    Store::connect_waiting(&url, Duration::from_secs(30))
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}: run this where the provider runs (its working \
                 directory, its PROVIDER_DATABASE_URL)",
                config.database_url
            )
        })
}

/// `url`, which for SQLite may not create the file (`mode=rw`).
fn existing(url: &str) -> String {
    if !url
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("sqlite:"))
    {
        return url.to_owned();
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut options: Vec<&str> = query
        .split('&')
        .filter(|o| !o.is_empty() && !o.starts_with("mode="))
        .collect();
    options.push("mode=rw");
    format!("{path}?{}", options.join("&"))
}

/// An RFC 3339 time for people, from Unix seconds.
pub(super) fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_existing_sqlite_database_is_never_created() {
        assert_eq!(
            super::existing("sqlite://provider.db?mode=rwc"),
            "sqlite://provider.db?mode=rw"
        );
        assert_eq!(
            super::existing("sqlite:///var/lib/g/p.db"),
            "sqlite:///var/lib/g/p.db?mode=rw"
        );
        assert_eq!(
            super::existing("sqlite://p.db?cache=shared&mode=rwc"),
            "sqlite://p.db?cache=shared&mode=rw"
        );
        let pg = "postgres://u@h/db?sslmode=require";
        assert_eq!(super::existing(pg), pg);
    }
}
