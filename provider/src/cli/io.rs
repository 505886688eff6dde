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
