//! Headless Chromium over WebDriver, for what only a browser decides (cookie flags and
//! prefixes, SameSite across sites, redirects between hosts, HttpOnly).
//!
//! Needs `GATEHOUSE_TEST_CHROMEDRIVER` (and `CHROME_BIN`, default `/usr/bin/chromium`);
//! without it the tests say they were skipped. Each test starts its own chromedriver on a free
//! loopback port (killed on drop) and a fresh profile; at most two run at once on this 2-core
//! machine. Every step's screenshot lands in `target/screenshots/<test>/`.

use fantoccini::{Client, ClientBuilder, Locator};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

static SLOTS: Semaphore = Semaphore::const_new(2);

/// A Chromium session and the chromedriver that runs it.
pub struct Chrome {
    pub client: Client,
    driver: Child,
    shots: PathBuf,
    step: u32,
    _profile: tempfile::TempDir,
    _slot: SemaphorePermit<'static>,
}

impl Drop for Chrome {
    /// Ends chromedriver and every browser process it started. A test that closed its session
    /// has no browser left; one that panicked first would leave Chromium running, so the whole
    /// process group (chromedriver runs in its own) is killed.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Chrome {
    /// `None` (after saying so) when no chromedriver is configured.
    pub async fn start(test: &str) -> Option<Self> {
        let Ok(driver_bin) = std::env::var("GATEHOUSE_TEST_CHROMEDRIVER") else {
            infra::testing::skip(
                &format!("browser journey {test}"),
                "GATEHOUSE_TEST_CHROMEDRIVER",
            );
            return None;
        };
        let chrome_bin = std::env::var("CHROME_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let slot = SLOTS.acquire().await.unwrap();
        let profile = tempfile::tempdir().unwrap();
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome_bin,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1100,860",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let caps = caps.as_object().unwrap().clone();
        // A free port can be taken between our probe and chromedriver's bind: if chromedriver
        // exits, start it again on another port.
        let (mut driver, mut client) = (None, None);
        'attempts: for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new(&driver_bin)
                .process_group(0)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {driver_bin}: {e}"));
            for _ in 0..100 {
                if child.try_wait().ok().flatten().is_some() {
                    continue 'attempts;
                }
                let builder =
                    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                        .capabilities(caps.clone())
                        .connect(&format!("http://127.0.0.1:{port}"))
                        .await;
                if let Ok(c) = builder {
                    client = Some(c);
                    driver = Some(child);
                    break 'attempts;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let driver = driver.expect("chromedriver started");
        let client = client.expect("chromedriver answered within ten seconds");
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/screenshots")
            .join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        Some(Self {
            client,
            driver,
            shots,
            step: 0,
            _profile: profile,
            _slot: slot,
        })
    }

    /// Saves a screenshot of the current page as `NN-name.png`.
    pub async fn shot(&mut self, name: &str) {
        self.step += 1;
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{:02}-{name}.png", self.step)), png).unwrap();
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn click(&self, id: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id}: {e}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn fill(&self, id: &str, text: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Waits until the current URL starts with `prefix` (redirects settle), for ten seconds.
    pub async fn wait_for_url(&self, prefix: &str) -> url::Url {
        for _ in 0..200 {
            let url = self.client.current_url().await.unwrap();
            if url.as_str().starts_with(prefix) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "never reached {prefix}; at {}",
            self.client.current_url().await.unwrap()
        );
    }

    /// Waits until element `id` reads `expected` (the navigation a click started has landed),
    /// for ten seconds.
    pub async fn wait_for_text(&self, id: &str, expected: &str) {
        let mut last = String::new();
        for _ in 0..200 {
            if let Ok(el) = self.client.find(Locator::Id(id)).await
                && let Ok(text) = el.text().await
            {
                if text == expected {
                    return;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("#{id} never read {expected:?} (last: {last:?})");
    }

    /// The text of element `id`.
    pub async fn text(&self, id: &str) -> String {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The page's whole text.
    pub async fn page_text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The id of the focused element.
    pub async fn focused_id(&self) -> String {
        match self.client.active_element().await {
            Ok(el) => el.attr("id").await.ok().flatten().unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Presses Tab until element `id` has the focus (at most 40 times): the keyboard path a
    /// person without a mouse takes. Panics if the element is never reached.
    pub async fn tab_to(&self, id: &str) {
        let tab = fantoccini::key::Key::Tab.to_string();
        for _ in 0..40 {
            if self.focused_id().await == id {
                return;
            }
            let el = self.client.active_element().await.unwrap();
            el.send_keys(&tab).await.unwrap();
        }
        panic!("Tab never reached #{id}");
    }

    /// Types into the focused element.
    pub async fn type_keys(&self, text: &str) {
        let el = self.client.active_element().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    /// Presses Enter (or Space, for a checkbox) on the focused element.
    pub async fn press(&self, key: fantoccini::key::Key) {
        let el = self.client.active_element().await.unwrap();
        el.send_keys(&key.to_string()).await.unwrap();
    }
}
