//! `provider audit tail`: the audit trail, newest events first, then followed.

use super::io::{Io, store};
use crate::Config;
use crate::store::AuditRow;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(super) enum AuditCommand {
    /// The newest events, oldest first; with --follow, then each new one as it happens.
    Tail {
        /// How many events.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: u32,
        /// Keep watching for new events (until interrupted).
        #[arg(short, long)]
        follow: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(
    config: &Config,
    command: AuditCommand,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let store = store(config).await?;
    let AuditCommand::Tail {
        lines,
        follow,
        json,
    } = command;
    let show = |io: &mut Io<'_>, row: &AuditRow| -> anyhow::Result<()> {
        if json {
            out!(io, "{}", serde_json::to_string(row)?);
        } else {
            out!(io, "{}", crate::audit::format_line(row));
        }
        Ok(())
    };
    let mut last = None;
    for row in store.audit_tail(i64::from(lines)).await? {
        show(io, &row)?;
        last = Some((row.at_us, row.id));
    }
    io.out.flush()?;
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let (at, id) = last.clone().unwrap_or((0, String::new()));
        for row in store.audit_after(at, &id, 1000).await? {
            show(io, &row)?;
            last = Some((row.at_us, row.id));
        }
        io.out.flush()?;
    }
}
