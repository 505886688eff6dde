//! The stop signal both servers (and the demo) wait for: Ctrl-C (`SIGINT`) or `SIGTERM`, the
//! signal service managers and container runtimes send to stop a process.

use std::future::Future;

/// A future that completes when the process is asked to stop. On unix both handlers are
/// installed when this is called (so a signal sent right after is not lost); elsewhere Ctrl-C
/// is listened for once the future is first polled. Call it inside the runtime. If a handler cannot be installed, the other one alone is waited for (and with
/// neither, it never completes: the process then stops only when killed, which is no worse
/// than having no handler).
pub fn signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let listeners = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        match listeners {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                one.recv().await;
            }
            (Err(_), Err(_)) => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        interrupted().await;
    }
}

/// A second stop signal within this time of the first is the same request: a process
/// manager that forwards Ctrl-C to a process group and then sends `SIGTERM` to each member
/// asks once, not twice.
const SAME_REQUEST: std::time::Duration = std::time::Duration::from_secs(1);

/// [`signal`] for a server that drains before it stops: once the first stop signal is heard,
/// a second one (a second or more later) ends the process at once (exit status 130, as for an
/// interrupt), so that an operator who asks twice does not wait out the drain. On unix the
/// second signal's handler is in place before this future completes.
pub fn signal_then_force() -> impl Future<Output = ()> {
    let first = signal();
    async move {
        first.await;
        let heard = std::time::Instant::now();
        let mut again = signal();
        tokio::spawn(async move {
            loop {
                again.await;
                if heard.elapsed() >= SAME_REQUEST {
                    break;
                }
                again = signal();
            }
            tracing::warn!("a second stop signal: stopping now, without draining");
            std::process::exit(130);
        });
    }
}

/// Ctrl-C, or never if it cannot be listened for.
#[cfg(not(unix))]
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
