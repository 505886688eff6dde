//! The stop signal both servers (and the demo) wait for: Ctrl-C (`SIGINT`) or `SIGTERM`, the
//! signal service managers and container runtimes send to stop a process.

use std::future::Future;

/// A future that completes when the process is asked to stop. The `SIGTERM` handler is
/// installed when this is called (so a signal sent right after is not lost); call it inside
/// the runtime. If a handler cannot be installed, the other one alone is waited for (and with
/// neither, it never completes: the process then stops only when killed, which is no worse
/// than having no handler).
pub fn signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        #[cfg(unix)]
        {
            let Ok(mut term) = term else {
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
        // The handler is in place once `signal()` returns: a SIGTERM sent now ends the wait
        // instead of the process.
        let stop = tokio::spawn(super::signal());
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(30), stop)
            .await
            .expect("the stop signal was heard")
            .unwrap();
    }
}
