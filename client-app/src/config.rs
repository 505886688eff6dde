//! Client-app configuration: built-in defaults, then `client-app.toml` (optional), then
//! `CLIENT_APP_…` environment variables (`__` nests: `CLIENT_APP_SESSION__IDLE_TIMEOUT=5m`).

use figment::Figment;
use figment::providers::Serialized;
use infra::config::duration;
use serde::{Deserialize, Serialize};
use sessions::SessionConfig;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Shown on the pages ("App A").
    pub name: String,
    pub listen: SocketAddr,
    /// This app's public base URL; the redirect URI is `{public_url}/callback`.
    pub public_url: Url,
    /// The provider's issuer identifier; discovery is fetched from it.
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    /// The app's own database (its sessions): `sqlite://…` or `postgres://…`.
    pub database_url: String,
    pub session: SessionConfig,
    pub cookie: CookieConfig,
    /// How long to keep retrying discovery at start-up while the provider is not up yet.
    #[serde(with = "duration")]
    pub discovery_timeout: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CookieConfig {
    /// Base name of the session cookie (`__Host-` is prefixed when it is `Secure`).
    pub name: String,
    /// Allow a non-`Secure` cookie when `public_url` is plain http (the localhost demo only).
    pub allow_insecure_http: bool,
}

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "app_session".into(),
            allow_insecure_http: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let url = |s: &str| Url::parse(s).unwrap_or_else(|_| unreachable!());
        Self {
            name: "Sample app".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 5001)),
            public_url: url("http://app-a.localhost:5001"),
            issuer: url("http://idp.localhost:4000"),
            client_id: String::new(),
            client_secret: Secret::default(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            database_url: "sqlite://client-app.db?mode=rwc".into(),
            session: SessionConfig {
                absolute_lifetime: Duration::from_secs(8 * 3600),
                ..SessionConfig::default()
            },
            cookie: CookieConfig::default(),
            discovery_timeout: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// Defaults, then `client-app.toml`, then the environment.
    pub fn figment() -> Figment {
        Self::figment_over(Serialized::defaults(Self::default()))
    }

    /// Like [`Config::figment`] with `base` over the defaults; file and environment still win.
    pub fn figment_over(base: impl figment::Provider) -> Figment {
        infra::config::layered(Self::default(), base, "client-app.toml", "CLIENT_APP_")
    }

    pub fn load(figment: &Figment) -> anyhow::Result<Self> {
        let c: Self = figment.extract()?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.client_id.is_empty(), "client_id is required");
        anyhow::ensure!(
            matches!(self.public_url.scheme(), "http" | "https"),
            "public_url must be an http(s) URL"
        );
        self.session.validate().map_err(anyhow::Error::msg)?;
        Ok(())
    }

    /// `{public_url}/callback`.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/callback",
            self.public_url.as_str().trim_end_matches('/')
        )
    }
}
