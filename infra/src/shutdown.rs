//! The stop signal both servers (and the demo) wait for: Ctrl-C (`SIGINT`) or `SIGTERM`, the
//! signal service managers and container runtimes send to stop a process.

/// Completes when the process is asked to stop. If a signal handler cannot be installed,
/// waits on the other one alone (and, with neither, never completes: the process then stops
/// only when killed, which is no worse than having no handler).
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            interrupted().await;
            return;
        };
        let heard = tokio::select! {
            r = tokio::signal::ctrl_c() => r.is_ok(),
            _ = term.recv() => true,
        };
        if !heard {
            term.recv().await;
        }
    }
    #[cfg(not(unix))]
    interrupted().await;
}

/// Ctrl-C, or never if it cannot be listened for.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    #[tokio::test]
    async fn sigterm_asks_for_a_stop() {
        let stop = tokio::spawn(super::signal());
        // Let the task install its handlers, then send this process a SIGTERM: handled, it
        // ends the wait instead of the process.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!stop.is_finished());
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(5), stop)
            .await
            .expect("the stop signal was heard")
            .unwrap();
    }
}
