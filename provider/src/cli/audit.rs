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
    let mut follower = Follower::default();
    for row in follower.take(store.audit_tail(i64::from(lines)).await?) {
        show(io, &row)?;
    }
    io.out.flush()?;
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        for row in follower.poll(&store).await? {
            show(io, &row)?;
        }
        io.out.flush()?;
    }
}

/// How far back each poll looks again: longer than any transaction that writes an audit
/// event can take to commit (a commit that slow has long timed out).
const WINDOW_US: i64 = 30_000_000;

/// Follows the trail without skipping anything. An event's time is taken before its
/// transaction commits, so events can become visible out of order (a slower commit carrying
/// an earlier time than one already shown); paging on the time alone would skip the late
/// one for good. Each poll therefore reads the last [`WINDOW_US`] again and shows only what
/// it has not shown, so an event that commits late is still shown, once.
#[derive(Default)]
struct Follower {
    /// What was shown within the window, by `(at_us, id)`.
    shown: std::collections::BTreeSet<(i64, String)>,
    /// The newest time shown.
    newest: i64,
}

impl Follower {
    /// Of `rows`, those not shown yet, which now count as shown.
    fn take(&mut self, rows: Vec<AuditRow>) -> Vec<AuditRow> {
        let fresh: Vec<AuditRow> = rows
            .into_iter()
            .filter(|r| self.shown.insert((r.at_us, r.id.clone())))
            .collect();
        if let Some(newest) = fresh.iter().map(|r| r.at_us).max() {
            self.newest = self.newest.max(newest);
        }
        let horizon = self.newest.saturating_sub(WINDOW_US);
        self.shown = self.shown.split_off(&(horizon, String::new()));
        fresh
    }

    /// The events not shown yet, oldest first, a page at a time.
    async fn poll(&mut self, store: &crate::store::Store) -> Result<Vec<AuditRow>, sqlx::Error> {
        const PAGE: i64 = 1000;
        let mut out = Vec::new();
        let mut from = (self.newest.saturating_sub(WINDOW_US), String::new());
        loop {
            let rows = store.audit_after(from.0, &from.1, PAGE).await?;
            let full = rows.len() as i64 == PAGE;
            if let Some(last) = rows.last() {
                from = (last.at_us, last.id.clone());
            }
            out.extend(self.take(rows));
            if !full {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{self, Event, Kind};
    use crate::context::testing;
    use crate::store::Insert;

    /// Writes an event stamped `at_us`, as a transaction that took that long to commit would.
    async fn late(ctx: &testing::TestCtx, at_us: i64, what: &str) {
        let mut event = audit::prepare(at_us, Event::new(Kind::SignInFailed).detail(what));
        event.at_us = at_us; // as stamped, before a slow commit
        ctx.store.insert(vec![Insert::audit(&event)]).await.unwrap();
    }

    /// An event that becomes visible after a newer one was shown (its commit was slower) is
    /// still shown by the next poll, and nothing is shown twice.
    #[tokio::test]
    async fn an_event_committed_out_of_order_is_still_followed() {
        let ctx = testing::ctx().await;
        let now = audit::now_us(&ctx.clock);
        let mut follower = Follower::default();
        late(&ctx, now - 2_000_000, "first").await;
        late(&ctx, now, "second").await;
        let first = follower.poll(&ctx.store).await.unwrap();
        assert_eq!(first.len(), 2);
        late(&ctx, now - 1_000_000, "slow commit").await;
        let next = follower.poll(&ctx.store).await.unwrap();
        let details: Vec<_> = next.iter().map(|r| r.detail.clone()).collect();
        assert_eq!(details, vec![Some("slow commit".to_owned())]);
        assert!(
            follower.poll(&ctx.store).await.unwrap().is_empty(),
            "shown once"
        );
    }
}
