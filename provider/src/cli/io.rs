//! What every command shares: where it reads and writes, the store it works on, and how it
//! writes times.

use crate::Config;
use crate::store::Store;
use std::io::{BufRead, Write};

/// Where a command reads its input (passwords) and writes its output.
pub struct Io<'a> {
    pub input: &'a mut dyn BufRead,
    pub out: &'a mut dyn Write,
}

/// The store of `config`, migrated (a command may be the first to touch a new database).
pub(super) async fn store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url).await?;
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
