//! Provider configuration: built-in defaults, then `provider.toml` (optional), then
//! `PROVIDER_…` environment variables (`__` nests: `PROVIDER_SESSION__IDLE_TIMEOUT=5s`).

use crate::types::Alg;
use figment::Figment;
use figment::providers::Serialized;
use infra::config::duration;
use serde::{Deserialize, Serialize};
pub use sessions::{SessionBackend, SessionConfig};
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The issuer identifier: the provider's public base URL (OIDC Discovery §3).
    pub issuer: Url,
    /// The socket address to listen on.
    pub listen: SocketAddr,
    /// Where `/metrics` is served, apart from the public listener (README "Hostile clients"
    /// 7); not served at all when unset.
    pub metrics_listen: Option<SocketAddr>,
    /// Reverse proxies (addresses or networks, `10.0.0.0/8`) whose `Forwarded` or
    /// `X-Forwarded-For` is believed: only behind one of these is the client's address taken
    /// from those headers (the right-most hop that is not itself a trusted proxy). Empty by
    /// default: the TCP peer is the client. Only the proxies: a client inside these networks
    /// could write hops of its own.
    pub trusted_proxies: Vec<String>,
    /// The header those proxies write: `x-forwarded-for` (default) or `forwarded`; the other
    /// is never read.
    pub trusted_proxy_header: infra::client_addr::ForwardedHeader,
    /// `sqlite://…` (embedded default) or `postgres://…`.
    pub database_url: String,
    pub session: SessionConfig,
    pub cookie: CookieConfig,
    pub tokens: TokenConfig,
    pub keys: KeyConfig,
    pub registration: RegistrationConfig,
    pub limits: LimitsConfig,
    pub outbound: OutboundConfig,
    /// Sensitive actions (a new client secret, deleting an app, disconnecting one, setting
    /// up a second factor) need the password typed within this long; otherwise it is asked
    /// again first.
    #[serde(with = "duration")]
    pub fresh_sign_in: Duration,
    pub shutdown: ShutdownConfig,
}

/// How an instance stops (`SIGTERM`): readiness first, then the listener, then what is in
/// flight, so that a load balancer moves away before anything is refused.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// How long the instance keeps serving after the stop signal while `/readyz` answers 503
    /// (longer than the load balancer's readiness interval).
    #[serde(with = "duration")]
    pub drain_delay: Duration,
    /// How long requests in flight may take to finish once the listener is closed.
    #[serde(with = "duration")]
    pub deadline: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_delay: Duration::from_secs(5),
            deadline: Duration::from_secs(20),
        }
    }
}

/// Requests the provider makes to URIs that app developers registered (back-channel logout):
/// https to public addresses only, unless the operator names exceptions (README "Hostile
/// clients").
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Host names (`app.internal`, `*.localhost`), addresses and networks (`10.1.0.0/16`)
    /// that may be reached although they are not public, over plain http as well.
    pub allow: Vec<String>,
    /// A connection must be established within this time.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// One delivery attempt, connection and answer, must finish within this time.
    #[serde(with = "duration")]
    pub attempt_timeout: Duration,
    /// Back-channel logouts in flight to one host (scheme, name and port) at once.
    pub per_host: usize,
    /// Back-channel logouts in flight in all.
    pub in_flight: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            connect_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
            per_host: 4,
            in_flight: 512,
        }
    }
}

impl OutboundConfig {
    /// The exceptions, parsed.
    pub fn policy(&self) -> anyhow::Result<infra::outbound::Outbound> {
        infra::outbound::Outbound::parse(&self.allow).map_err(anyhow::Error::msg)
    }
}

/// What one client may ask of the server (hostile input gets a 4xx, never a hang).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body (413 beyond).
    pub max_body_bytes: usize,
    /// Longest request target, path and query (414 beyond).
    pub max_uri_bytes: usize,
    /// Largest request head, request line and headers (431 beyond; at least 8 KiB).
    pub max_header_bytes: usize,
    /// A client must send its request head within this time, or is disconnected.
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// A whole request, body included, must be answered within this time (408).
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// A statement waits this long for a database connection, then the request gets a 503
    /// (fail fast when the database is gone or overloaded).
    #[serde(with = "duration")]
    pub database_wait: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Requests per minute from one client address to the token, revocation, introspection
    /// and registration endpoints, counted before the client authenticates (0: no limit).
    pub rate_per_address: u64,
    /// Token requests per minute by one authenticated client (0: no limit).
    pub token_rate_per_client: u64,
    /// Introspection requests per minute by one authenticated client (0: no limit).
    pub introspection_rate_per_client: u64,
    /// Registration requests (RFC 7591 and 7592) per minute from one address (0: no limit).
    pub registration_rate_per_address: u64,
    /// New (pre-login) browser sessions per minute from one address: cookieless visits to
    /// the sign-in page or an authorization request that must wait (0: no limit).
    pub new_sessions_per_address: u64,
    /// Throttle password guessing per account and per address (README "Hostile clients").
    /// Off only for a benchmark that signs one account in from many clients at once.
    pub sign_in_throttle: bool,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            database_wait: Duration::from_secs(1),
            max_connections: 1024,
            rate_per_address: 3000,
            token_rate_per_client: 1200,
            introspection_rate_per_client: 6000,
            registration_rate_per_address: 30,
            new_sessions_per_address: 300,
            sign_in_throttle: true,
        }
    }
}

/// Dynamic Client Registration (RFC 7591).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// Anyone may register a client without an initial access token (RFC 7591 §3: open
    /// registration). Off by default: `provider clients initial-token` hands out tokens.
    pub open: bool,
    /// Apps one developer may hold in the developer console (0: no limit).
    pub apps_per_developer: usize,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            open: false,
            apps_per_developer: 25,
        }
    }
}

/// Signing-key rotation.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// A signing key is replaced this long after it started signing.
    #[serde(with = "duration")]
    pub rotation_period: Duration,
    /// A new key is in the JWKS this long before it signs (longer than the JWKS max-age, so
    /// every client has it before it sees a token signed with it).
    #[serde(with = "duration")]
    pub publish_ahead: Duration,
    /// The algorithms the provider keeps a signing key for (and apps may register): RS256
    /// always (OIDC Core §15.1), ES256, and EdDSA (Ed25519) when listed. Opt-in because a key
    /// once stored is one that an older release cannot read: enable it once every instance
    /// runs this one.
    pub algorithms: Vec<Alg>,
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self {
            rotation_period: Duration::from_secs(90 * 24 * 3600),
            publish_ahead: Duration::from_secs(15 * 60),
            algorithms: vec![Alg::RS256, Alg::ES256],
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CookieConfig {
    /// Base name of the SSO cookie (`__Host-` is prefixed when it is `Secure`).
    pub name: String,
    /// Allow a non-`Secure` cookie when the issuer is plain http (the localhost demo only).
    pub allow_insecure_http: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Authorization code lifetime; at most 60 s (RFC 9700 §4.2.1 wants it short).
    #[serde(with = "duration")]
    pub code_lifetime: Duration,
    #[serde(with = "duration")]
    pub access_token_lifetime: Duration,
    #[serde(with = "duration")]
    pub id_token_lifetime: Duration,
    /// Absolute lifetime of a refresh-token family, whatever the rotation.
    #[serde(with = "duration")]
    pub refresh_token_lifetime: Duration,
    /// A concurrent retry of an already-rotated refresh token within this window gets a valid
    /// answer; a reuse after it revokes the whole family.
    #[serde(with = "duration")]
    pub refresh_grace: Duration,
    /// How long a device authorization request (RFC 8628 §3.2 `expires_in`) waits for the
    /// person: 1 to 30 minutes.
    #[serde(with = "duration")]
    pub device_code_lifetime: Duration,
    /// The least time between a device's polls (RFC 8628 §3.2 `interval`, whole seconds, at
    /// least 1).
    #[serde(with = "duration")]
    pub device_poll_interval: Duration,
    /// DPoP proofs at the token endpoint must carry a nonce the provider gave (RFC 9449 §8).
    pub dpop_nonce: bool,
    /// Authorization codes may be bound to a DPoP key (RFC 9449 §10: `dpop_jkt`, or a proof
    /// sent with a push). Off only while instances of a release without it share the
    /// database: they would redeem a bound code without its key. Off, `dpop_jkt` is refused
    /// and a push's proof binds nothing, as that release did.
    pub dpop_code_binding: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: Url::parse("http://idp.localhost:4000").unwrap_or_else(|_| unreachable!()),
            listen: SocketAddr::from(([127, 0, 0, 1], 4000)),
            trusted_proxies: Vec::new(),
            trusted_proxy_header: infra::client_addr::ForwardedHeader::default(),
            metrics_listen: None,
            database_url: "sqlite://provider.db?mode=rwc".into(),
            session: SessionConfig::default(),
            cookie: CookieConfig::default(),
            tokens: TokenConfig::default(),
            keys: KeyConfig::default(),
            registration: RegistrationConfig::default(),
            limits: LimitsConfig::default(),
            outbound: OutboundConfig::default(),
            fresh_sign_in: Duration::from_secs(300),
            shutdown: ShutdownConfig::default(),
        }
    }
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "gatehouse_sso".into(),
            allow_insecure_http: false,
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            code_lifetime: Duration::from_secs(60),
            access_token_lifetime: Duration::from_secs(600),
            id_token_lifetime: Duration::from_secs(600),
            refresh_token_lifetime: Duration::from_secs(30 * 24 * 3600),
            refresh_grace: Duration::from_secs(5),
            device_code_lifetime: Duration::from_secs(600),
            // RFC 8628 §3.2: the interval a client assumes when none is given.
            device_poll_interval: Duration::from_secs(5),
            dpop_nonce: true,
            dpop_code_binding: true,
        }
    }
}

impl Config {
    /// Defaults, then `provider.toml` in the working directory, then the environment.
    pub fn figment() -> Figment {
        Self::figment_over(Serialized::defaults(Self::default()))
    }

    /// Like [`Config::figment`], with `base` (for instance the demo's settings) instead of the
    /// built-in defaults; the file and the environment still win.
    pub fn figment_over(base: impl figment::Provider) -> Figment {
        infra::config::layered(Self::default(), base, "provider.toml", "PROVIDER_")
    }

    /// Reads and checks the configuration.
    pub fn load(figment: &Figment) -> anyhow::Result<Self> {
        let config: Self = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Rules a type cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.keys.algorithms.contains(&Alg::RS256),
            "keys.algorithms must include RS256 (every OpenID provider signs with it)"
        );
        anyhow::ensure!(
            self.shutdown.drain_delay <= Duration::from_secs(120),
            "shutdown.drain_delay must be at most 2m"
        );
        anyhow::ensure!(
            !self.shutdown.deadline.is_zero() && self.shutdown.deadline <= Duration::from_secs(600),
            "shutdown.deadline must be between 1s and 10m"
        );
        anyhow::ensure!(
            !self.fresh_sign_in.is_zero() && self.fresh_sign_in <= Duration::from_secs(3600),
            "fresh_sign_in must be between 1s and 1h"
        );
        anyhow::ensure!(
            matches!(self.issuer.scheme(), "http" | "https"),
            "issuer must be an http(s) URL"
        );
        anyhow::ensure!(
            self.issuer.query().is_none() && self.issuer.fragment().is_none(),
            "issuer must have no query or fragment (OIDC Discovery §3)"
        );
        // OIDC Discovery §3 and RFC 9700 §2.6: the issuer is an https URL. Plain http is for
        // a provider only this machine can reach (the demo, tests).
        anyhow::ensure!(
            self.issuer.scheme() == "https" || is_local(&self.issuer),
            "issuer must be https (plain http only on loopback or a *.localhost host)"
        );
        anyhow::ensure!(
            self.tokens.code_lifetime <= Duration::from_secs(60),
            "tokens.code_lifetime must be at most 60s"
        );
        anyhow::ensure!(
            (Duration::from_secs(60)..=Duration::from_secs(1800))
                .contains(&self.tokens.device_code_lifetime),
            "tokens.device_code_lifetime must be between 1 and 30 minutes"
        );
        anyhow::ensure!(
            (Duration::from_secs(1)..=Duration::from_secs(60))
                .contains(&self.tokens.device_poll_interval)
                && self.tokens.device_poll_interval.subsec_nanos() == 0,
            "tokens.device_poll_interval must be whole seconds, from 1 to 60"
        );
        self.session.validate().map_err(anyhow::Error::msg)?;
        self.outbound.policy()?;
        infra::client_addr::parse_trusted(&self.trusted_proxies).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            self.outbound.per_host >= 1
                && self.outbound.in_flight >= self.outbound.per_host
                && self.outbound.in_flight <= 4096,
            "outbound.per_host must be at least 1, and outbound.in_flight between per_host and 4096"
        );
        Ok(())
    }

    /// The issuer as written in tokens and discovery: no trailing slash.
    pub fn issuer_str(&self) -> String {
        self.issuer.as_str().trim_end_matches('/').to_owned()
    }
}

/// Whether `url`'s host is this machine: `localhost`, a `*.localhost` name (RFC 6761 §6.3)
/// or a loopback address.
fn is_local(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
// figment's Jail fixes the closure's error type (figment::Error, which is large).
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn a_plain_http_issuer_is_for_this_machine_only() {
        let with = |issuer: &str| Config {
            issuer: Url::parse(issuer).unwrap(),
            ..Config::default()
        };
        for ok in [
            "https://idp.example.com",
            "http://idp.localhost:4000",
            "http://localhost:4000",
            "http://127.0.0.1:4000",
            "http://[::1]:4000",
        ] {
            assert!(with(ok).validate().is_ok(), "{ok}");
        }
        for refused in [
            "http://idp.example.com",
            "http://10.0.0.5",
            "http://localhost.example.com",
        ] {
            let e = with(refused).validate().unwrap_err().to_string();
            assert!(e.contains("https"), "{refused}: {e}");
        }
    }

    #[test]
    fn env_overrides_nested_durations() {
        Jail::expect_with(|jail| {
            jail.set_env("PROVIDER_SESSION__IDLE_TIMEOUT", "5s");
            jail.set_env("PROVIDER_SESSION__STORE", "memory");
            jail.set_env("PROVIDER_ISSUER", "https://idp.example.com");
            let c = Config::load(&Config::figment()).map_err(|e| e.to_string())?;
            assert_eq!(c.session.idle_timeout, Duration::from_secs(5));
            assert_eq!(c.session.absolute_lifetime, Duration::from_secs(12 * 3600));
            assert_eq!(c.session.store, SessionBackend::Memory);
            assert_eq!(c.issuer_str(), "https://idp.example.com");
            Ok(())
        });
    }

    #[test]
    fn file_is_read_and_unknown_keys_refused() {
        Jail::expect_with(|jail| {
            jail.create_file("provider.toml", "[session]\nabsolute_lifetime = \"1h\"\n")?;
            let c = Config::load(&Config::figment()).map_err(|e| e.to_string())?;
            assert_eq!(c.session.absolute_lifetime, Duration::from_secs(3600));
            jail.create_file("provider.toml", "[session]\nidle_timeot = \"1h\"\n")?;
            assert!(Config::load(&Config::figment()).is_err());
            Ok(())
        });
    }

    #[test]
    fn long_codes_are_refused() {
        let mut c = Config::default();
        c.tokens.code_lifetime = Duration::from_secs(600);
        assert!(c.validate().is_err());
    }
}
