//! Stopping the `provider serve` process: the first stop signal drains (README "Rolling
//! restarts"); a second one ends the process at once, without waiting out the drain.

#![cfg(unix)]
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a test")]

use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous: a cold process on a busy machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// Whether the server on `port` answers `/readyz` with 200.
async fn ready(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request =
        format!("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.starts_with(b"HTTP/1.1 200")
}

fn signal(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

#[tokio::test]
async fn a_second_stop_signal_ends_the_drain_at_once() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_provider"))
        .arg("serve")
        .current_dir(dir.path())
        .env("PROVIDER_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("PROVIDER_LISTEN", format!("127.0.0.1:{port}"))
        .env("PROVIDER_DATABASE_URL", database)
        .env("PROVIDER_SESSION__STORE", "memory")
        // Longer than the test's patience: only the second signal can end it in time.
        .env("PROVIDER_SHUTDOWN__DRAIN_DELAY", "120s")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the provider binary starts");
    let pid = child.id();
    let log = std::io::BufReader::new(child.stderr.take().expect("its stderr"));
    let (said, mut heard) = tokio::sync::mpsc::unbounded_channel();
    // The log is read on a thread of its own (a blocking pipe), until the process is gone.
    std::thread::spawn(move || {
        for line in log.lines().map_while(Result::ok) {
            let _ = said.send(line);
        }
    });
    // Killed if the test fails before the process has ended (and not after: it has been
    // waited for then, and its pid may be another process's).
    struct Kill(Option<u32>);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(pid) = self.0 {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
    let mut kill = Kill(Some(pid));

    let started = tokio::time::timeout(PATIENCE, async {
        while !ready(port).await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if started.is_err() {
        let mut said = Vec::new();
        while let Ok(line) = heard.try_recv() {
            said.push(line);
        }
        panic!("the provider never became ready: {said:#?}");
    }
    signal(pid, "TERM");
    // Draining (the second signal's handler is in place by then).
    let draining = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = heard.recv().await {
            if line.contains("stopping: not ready any more") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(draining, Ok(true), "no drain was logged");
    let still_serving = tokio::time::timeout(PATIENCE, ready(port)).await;
    assert_eq!(still_serving, Ok(false), "draining: not ready");
    // A second signal within a second of the first counts as the same request: it is sent
    // again every two seconds until the process ends.
    let status = tokio::time::timeout(PATIENCE, async {
        loop {
            signal(pid, "INT");
            for _ in 0..20 {
                if let Some(status) = child.try_wait().expect("the child's state") {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
    .await
    .expect("a second signal ends the process");
    kill.0 = None;
    assert_eq!(status.code(), Some(130), "{status:?}");
}
