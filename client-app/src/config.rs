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
    /// The Notes API this app calls on the user's behalf, if any.
    pub notes: Option<NotesConfig>,
    /// The level of sign-in (an `acr` value the provider lists in `acr_values_supported`)
    /// that this app's Settings page needs; with none, the app has no Settings page.
    pub settings_acr: Option<String>,
}

/// The Notes API (the demo's third service) as this app uses it: the app asks for a token
/// addressed to it (RFC 8707 `resource`) and calls it from its server, never the browser.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotesConfig {
    /// The API's resource indicator: named at the authorization and token endpoints, and
    /// its tokens' `aud`, exactly as registered (a URL, kept as written: no `/` added).
    pub resource: String,
    /// Where the API is called, when not at `resource` itself.
    #[serde(default)]
    pub url: Option<String>,
    /// Whether this app writes notes (and asks for `notes:write`) or only reads them.
    #[serde(default)]
    pub write: bool,
    /// How long the check after "Sign out everywhere" waits for the API to refuse the token
    /// the app held (the API hears revocations within a second or so).
    #[serde(with = "duration", default = "NotesConfig::default_refusal_wait")]
    pub refusal_wait: Duration,
}

/// Whether `url`'s host is this machine (`localhost`, `*.localhost`, a loopback address).
fn on_this_machine(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => infra::http::is_localhost(d),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl NotesConfig {
    fn default_refusal_wait() -> Duration {
        Duration::from_secs(5)
    }

    /// The API at `resource`, read only unless `write`.
    pub fn new(resource: impl Into<String>, write: bool) -> Self {
        Self {
            resource: resource.into(),
            url: None,
            write,
            refusal_wait: Self::default_refusal_wait(),
        }
    }

    /// The scopes this app asks the API for.
    pub fn scopes(&self) -> Vec<String> {
        let mut scopes = vec!["notes:read".to_owned()];
        if self.write {
            scopes.push("notes:write".to_owned());
        }
        scopes
    }

    /// `{url}/notes` (or `{resource}/notes`).
    pub fn endpoint(&self) -> String {
        let base = self.url.as_ref().unwrap_or(&self.resource);
        format!("{}/notes", base.trim_end_matches('/'))
    }
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
            notes: None,
            settings_acr: None,
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
        if let Some(notes) = &self.notes {
            // RFC 8707 §2: an absolute URI without a fragment (and, as it SHOULD, no query);
            // https unless on this machine or the demo's plain http is allowed, since a
            // bearer token travels to it.
            for url in std::iter::once(&notes.resource).chain(&notes.url) {
                let parsed = Url::parse(url).ok().filter(|u| {
                    u.fragment().is_none()
                        && u.query().is_none()
                        && (u.scheme() == "https"
                            || u.scheme() == "http"
                                && (self.cookie.allow_insecure_http || on_this_machine(u)))
                });
                anyhow::ensure!(
                    parsed.is_some(),
                    "notes.resource and notes.url must be https URLs (http on localhost, or \
                     with cookie.allow_insecure_http) without a query or fragment: {url}"
                );
            }
            anyhow::ensure!(
                notes.refusal_wait <= Duration::from_secs(30),
                "notes.refusal_wait must be at most 30s"
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_notes(resource: &str, url: Option<&str>) -> Config {
        Config {
            client_id: "app".into(),
            notes: Some(NotesConfig {
                url: url.map(str::to_owned),
                ..NotesConfig::new(resource, true)
            }),
            ..Config::default()
        }
    }

    #[test]
    fn the_notes_api_is_an_http_url_without_a_fragment_kept_as_written() {
        let fine = with_notes("http://api.localhost:5003", None);
        assert!(fine.validate().is_ok());
        let notes = fine.notes.unwrap();
        assert_eq!(notes.resource, "http://api.localhost:5003", "no `/` added");
        assert_eq!(notes.endpoint(), "http://api.localhost:5003/notes");
        assert_eq!(notes.scopes(), ["notes:read", "notes:write"]);
        let elsewhere = with_notes("https://notes.example", Some("http://127.0.0.1:9/"));
        assert_eq!(
            elsewhere.notes.unwrap().endpoint(),
            "http://127.0.0.1:9/notes"
        );
        for (resource, url) in [
            ("api.localhost", None),
            ("https://notes.example#x", None),
            ("https://notes.example?v=1", None),
            ("ftp://notes.example", None),
            ("http://notes.example", None),
            ("https://notes.example", Some("javascript:alert(1)")),
        ] {
            let bad = with_notes(resource, url);
            assert!(bad.validate().is_err(), "{resource} {url:?}");
        }
        let mut insecure = with_notes("http://notes.example", None);
        insecure.cookie.allow_insecure_http = true;
        assert!(insecure.validate().is_ok(), "plain http, allowed");
        let mut slow = with_notes("https://notes.example", None);
        if let Some(n) = slow.notes.as_mut() {
            n.refusal_wait = Duration::from_secs(31);
        }
        assert!(slow.validate().is_err());
        let read_only = NotesConfig::new("https://notes.example", false);
        assert_eq!(read_only.scopes(), ["notes:read"]);
    }
}
