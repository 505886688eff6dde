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
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(&driver_bin)
                .process_group(0)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {driver_bin}: {e}"));
            let child = std::sync::Mutex::new(child);
            // Connected, or `None` when chromedriver exited (its port was taken): try again.
            let connected = super::eventually("chromedriver answers", || {
                let (child, caps) = (&child, caps.clone());
                async move {
                    if child.lock().unwrap().try_wait().ok().flatten().is_some() {
                        return Some(None);
                    }
                    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                        .capabilities(caps)
                        .connect(&format!("http://127.0.0.1:{port}"))
                        .await
                        .ok()
                        .map(Some)
                }
            })
            .await;
            let mut child = child.into_inner().unwrap();
            if let Some(c) = connected {
                client = Some(c);
                driver = Some(child);
                break;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let driver = driver.expect("chromedriver started");
        let client = client.expect("chromedriver answered");
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

    /// Gives the browser a virtual authenticator (WebDriver's WebAuthn extension, WebAuthn
    /// Level 3 §11.3): a platform authenticator that keeps discoverable credentials and
    /// verifies the person (as a fingerprint reader would) without asking anyone.
    pub async fn add_virtual_authenticator(&self) {
        self.client
            .issue_cmd(AddVirtualAuthenticator)
            .await
            .expect("chromedriver adds a virtual authenticator");
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

    /// Clicks button `id` once it is enabled (a page's script enables it when it listens).
    pub async fn click_when_enabled(&self, id: &str) {
        let found = super::within_patience(|| async {
            let button = self.client.find(Locator::Id(id)).await.ok()?;
            button.is_enabled().await.ok()?.then_some(button)
        })
        .await;
        match found {
            Some(button) => button.click().await.unwrap(),
            None => self.fail(&format!("#{id} is enabled")).await,
        }
    }

    pub async fn fill(&self, id: &str, text: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Waits until the current URL starts with `prefix` (redirects settle).
    pub async fn wait_for_url(&self, prefix: &str) -> url::Url {
        let found = super::within_patience(|| async {
            let url = self.client.current_url().await.unwrap();
            url.as_str().starts_with(prefix).then_some(url)
        })
        .await;
        match found {
            Some(url) => url,
            None => self.fail(&format!("the browser reaches {prefix}")).await,
        }
    }

    /// Waits until element `id` reads `expected` (the navigation a click started has landed).
    pub async fn wait_for_text(&self, id: &str, expected: &str) {
        let found = super::within_patience(|| async {
            let el = self.client.find(Locator::Id(id)).await.ok()?;
            (el.text().await.ok()? == expected).then_some(())
        })
        .await;
        if found.is_none() {
            self.fail(&format!("#{id} reads {expected:?}")).await;
        }
    }

    /// Fails the test for a wait that ran out, with what the browser shows instead: its URL,
    /// the page's text, and a screenshot (`failed.png` beside the test's other shots).
    async fn fail(&self, what: &str) -> ! {
        let url = self.client.current_url().await.map(|u| u.to_string());
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        };
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(self.shots.join("failed.png"), png);
        }
        panic!(
            "{what}: not within {:?}; the browser is at {url:?}, showing:\n{text}",
            super::PATIENCE
        );
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

/// WebAuthn Level 3 §11.3.1 "Add Virtual Authenticator".
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/webauthn/authenticator"))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let authenticator = serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        (http::Method::POST, Some(authenticator.to_string()))
    }
}
