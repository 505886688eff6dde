//! Where a server may send requests it makes on someone else's say-so (the provider's
//! back-channel logouts go to URIs that app developers register): never inward, to this
//! machine or the network it sits in, unless the operator allows it by name.
//!
//! The policy is checked twice: on the URI when it is registered (https, and no host that is
//! plainly inward), and on every address the connection is about to use, in the resolver
//! (so a name that resolves to a private address, or re-resolves to one later — DNS
//! rebinding — is refused at connect time; public addresses among the answers are still
//! tried). An IP literal in a URI bypasses a resolver, so [`Guarded::post`] checks it before
//! sending.
//!
//! The address classification is written here because the standard library's
//! `IpAddr::is_global` is not stable; the ranges are those of the IANA special-purpose address
//! registries (RFC 6890 and its updates), plus the cloud metadata addresses, which fall in
//! link-local (169.254.169.254, fd00:ec2::254) or shared address space (100.100.100.200).

use crate::http::is_localhost;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Why a URI or an address is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("must be an absolute http(s) URL")]
    NotHttp,
    #[error("must use https")]
    NotHttps,
    #[error("points at a local or private address")]
    Inward,
}

/// The operator's exceptions: host names (`app.internal`, or `*.localhost` for every name
/// under `localhost`), each on any port or on one (`app-a.localhost:5001`), and networks
/// (`10.1.0.0/16`, or one address) that requests may reach although they are not public,
/// over plain http as well. Empty by default.
#[derive(Clone, Debug, Default)]
pub struct Outbound {
    names: Vec<(String, Option<u16>)>,
    suffixes: Vec<(String, Option<u16>)>,
    nets: Vec<IpNet>,
}

impl Outbound {
    /// Parses the configured exceptions (`outbound.allow`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut policy = Self::default();
        for entry in entries {
            let entry = entry
                .as_ref()
                .trim()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if let Ok(net) = entry.parse::<IpNet>() {
                policy.nets.push(net.trunc());
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                policy.nets.push(IpNet::from(ip));
            } else {
                let (name, port) = match entry.rsplit_once(':') {
                    Some((name, port)) => {
                        let port = port.parse::<u16>().map_err(|_| bad_entry(&entry))?;
                        (name, Some(port))
                    }
                    None => (entry.as_str(), None),
                };
                if let Some(suffix) = name.strip_prefix("*.") {
                    check_name(suffix, &entry)?;
                    policy.suffixes.push((format!(".{suffix}"), port));
                } else {
                    check_name(name, &entry)?;
                    policy.names.push((name.to_owned(), port));
                }
            }
        }
        Ok(policy)
    }

    /// Whether `host` (a name, or an address as written in a URL) on `port` (any port, for
    /// `None`) is one of the exceptions.
    fn allows_host(&self, host: &str, port: Option<u16>) -> bool {
        let host = host
            .trim_end_matches('.')
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.allows_addr(ip);
        }
        let on = |p: &Option<u16>| port.is_none() || p.is_none() || *p == port;
        self.names.iter().any(|(n, p)| *n == host && on(p))
            || self
                .suffixes
                .iter()
                .any(|(s, p)| host.ends_with(s.as_str()) && on(p))
    }

    fn allows_addr(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether a connection for `host` may go to `ip`: a public address, an allowed network,
    /// or any address of an allowed host name.
    /// (The port is checked on the URL, [`Outbound::check_url`]; a resolver sees no port.)
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        is_public(ip) || self.allows_addr(ip) || self.allows_host(host, None)
    }

    /// The rules a URI must pass when it is registered and before each request: http(s),
    /// https unless its host is an exception, and no host that is inward by its very name
    /// (`localhost`, `*.localhost`) or address.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        let host = url.host_str().ok_or(Refused::NotHttp)?;
        let excepted = self.allows_host(host, url.port_or_known_default());
        match url.scheme() {
            "https" => {}
            "http" if excepted => {}
            "http" => return Err(Refused::NotHttps),
            _ => return Err(Refused::NotHttp),
        }
        let inward = match url.host() {
            Some(url::Host::Domain(d)) => is_localhost(d),
            Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
            None => true,
        };
        if inward && !excepted {
            return Err(Refused::Inward);
        }
        Ok(())
    }
}

fn bad_entry(entry: &str) -> String {
    format!(
        "outbound.allow: {entry:?} is not a host name (optionally `*.` a domain, and `:port`), \
         an address or a network"
    )
}

fn check_name(name: &str, entry: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok { Ok(()) } else { Err(bad_entry(entry)) }
}

/// Whether `ip` is reachable on the public internet: not unspecified, loopback, private,
/// shared (CGNAT), link-local, unique-local, multicast, documentation, benchmarking or
/// reserved, and no translation of such an address (IPv4-mapped, NAT64, 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0                                  // "this network" (RFC 791)
        || a == 10                                        // private (RFC 1918)
        || (a == 100 && (64..128).contains(&b))           // shared, CGNAT (RFC 6598)
        || a == 127                                       // loopback
        || (a == 169 && b == 254)                         // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))            // private (RFC 1918)
        || (a == 192 && b == 0 && c == 0)                 // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)                 // documentation
        || (a == 192 && b == 88 && c == 99)               // 6to4 relay anycast
        || (a == 192 && b == 168)                         // private (RFC 1918)
        || (a == 198 && (b == 18 || b == 19))             // benchmarking (RFC 2544)
        || (a == 198 && b == 51 && c == 100)              // documentation
        || ip == Ipv4Addr::new(168, 63, 129, 16)          // Azure's platform endpoint
        || (a == 203 && b == 0 && c == 113)               // documentation
        || a >= 224; // multicast, reserved, broadcast
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    // NAT64 (64:ff9b::/96, RFC 6052): the IPv4 address it stands for decides.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(v4_of(s[6], s[7]));
    }
    // 6to4 (2002::/16, RFC 3056): likewise.
    if s[0] == 0x2002 {
        return is_public_v4(v4_of(s[1], s[2]));
    }
    let special = s[0..6] == [0, 0, 0, 0, 0, 0]           // IPv4-compatible, deprecated
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)  // local-use NAT64 (RFC 8215)
        || s[0] == 0x100 && s[1..4] == [0, 0, 0]          // discard-only (RFC 6666)
        || (s[0] == 0x2001 && s[1] < 0x200)               // IETF protocol assignments, Teredo
        || (s[0] == 0x2001 && s[1] == 0xdb8)              // documentation
        || (s[0] & 0xfff0) == 0x3ff0                      // documentation (RFC 9637)
        || s[0] == 0x5f00                                 // SRv6 segment identifiers
        || (s[0] & 0xfe00) == 0xfc00                      // unique-local (RFC 4193)
        || (s[0] & 0xffc0) == 0xfe80                      // link-local
        || (s[0] & 0xffc0) == 0xfec0                      // site-local, deprecated
        || (s[0] & 0xff00) == 0xff00; // multicast
    !special
}

/// The IPv4 address held in two IPv6 segments.
fn v4_of(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

/// A resolver that applies the policy to every answer: `localhost` and `*.localhost` are
/// loopback (RFC 6761 §6.3) without asking DNS, inward answers are dropped, and a name left
/// with none is refused.
///
/// The system resolver blocks a thread of tokio's blocking pool per lookup, which a name with
/// slow DNS can hold for half a minute: at most [`LOOKUPS`] run at once (the pool also hashes
/// passwords), and a lookup that takes longer than the connect timeout is given up on (its
/// thread finishes in the background, still holding its place).
#[derive(Clone, Debug)]
struct GuardedResolver {
    policy: Arc<Outbound>,
    lookups: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
    /// Answers given instead of DNS's (tests: a name that resolves inward, with no DNS
    /// server to make it so).
    #[cfg(test)]
    answers: std::collections::HashMap<String, Vec<IpAddr>>,
}

/// Lookups in flight at once, at most.
const LOOKUPS: usize = 16;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl GuardedResolver {
    async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, BoxError> {
        if is_localhost(host) {
            return Ok(vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))]);
        }
        #[cfg(test)]
        if let Some(ips) = self.answers.get(host) {
            return Ok(ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect());
        }
        let permit = self.lookups.clone().acquire_owned().await?;
        let name = host.to_owned();
        let lookup = tokio::spawn(async move {
            let _permit = permit;
            tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map(Iterator::collect::<Vec<_>>)
        });
        let found = tokio::time::timeout(self.timeout, lookup)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "DNS lookup timed out")
            })??;
        Ok(found?)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let policy = &this.policy;
            let found = this.lookup(&host).await?;
            let permitted: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.permits(&host, a.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(Box::new(Refused::Inward) as BoxError);
            }
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

/// An HTTP client bound to the policy: its resolver refuses inward addresses, it never uses
/// a proxy from the environment (which would resolve names itself) or follows a redirect,
/// and it gives up connecting after `connect_timeout`.
#[derive(Clone, Debug)]
pub struct Guarded {
    http: reqwest::Client,
    policy: Arc<Outbound>,
}

impl Guarded {
    pub fn new(policy: Outbound, connect_timeout: Duration) -> Result<Self, reqwest::Error> {
        Self::build(policy, connect_timeout, |_| {})
    }

    /// [`Guarded::new`] whose resolver answers `answers` itself (tests).
    #[cfg(test)]
    fn with_answers(policy: Outbound, answers: &[(&str, &[&str])]) -> Result<Self, reqwest::Error> {
        Self::build(policy, Duration::from_secs(5), |r| {
            for (name, ips) in answers {
                let ips = ips.iter().filter_map(|ip| ip.parse().ok()).collect();
                r.answers.insert((*name).to_owned(), ips);
            }
        })
    }

    fn build(
        policy: Outbound,
        connect_timeout: Duration,
        edit: impl FnOnce(&mut GuardedResolver),
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let mut resolver = GuardedResolver {
            policy: policy.clone(),
            lookups: Arc::new(tokio::sync::Semaphore::new(LOOKUPS)),
            timeout: connect_timeout,
            #[cfg(test)]
            answers: std::collections::HashMap::new(),
        };
        edit(&mut resolver);
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(resolver))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(4)
            .build()?;
        Ok(Self { http, policy })
    }

    /// A POST to `url`, if the policy allows the URL (an address in it is checked here, a
    /// name when it is resolved).
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, Refused> {
        let parsed = Url::parse(url).map_err(|_| Refused::NotHttp)?;
        self.policy.check_url(&parsed)?;
        Ok(self.http.post(parsed))
    }
}

/// Whether a failed request was refused by the policy (rather than by the network).
pub fn was_refused(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<Refused>().is_some() {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A loopback listener that counts the connections it accepts: its port and the count.
    async fn counting_listener() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let reached = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = reached.clone();
        tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        (port, reached)
    }

    /// Waits (generously) until the listener has accepted a connection.
    async fn connected(reached: &std::sync::atomic::AtomicUsize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while reached.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline, "never connected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn inward_addresses_are_not_public() {
        for inward in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.100.100.200",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
            "2001:0:1::1",
            "fc00::1",
            "3fff::1",
            "5f00::1",
            "168.63.129.16",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip(inward)), "{inward}");
        }
        for public in [
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "169.253.1.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
            "2606:4700:4700::1111",
        ] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn uris_are_https_and_outward_unless_excepted() {
        let none = Outbound::default();
        let check = |p: &Outbound, u: &str| p.check_url(&Url::parse(u).unwrap());
        assert_eq!(check(&none, "https://app.example/bc"), Ok(()));
        assert_eq!(
            check(&none, "http://app.example/bc"),
            Err(Refused::NotHttps)
        );
        assert_eq!(check(&none, "ftp://app.example/bc"), Err(Refused::NotHttp));
        for inward in [
            "https://127.0.0.1/bc",
            "https://[::1]/bc",
            "https://[::ffff:a9fe:a9fe]/bc",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.5:8443/admin",
            "https://localhost/bc",
            "https://app.localhost/bc",
            "https://APP.LOCALHOST./bc",
            "https://0x7f.1/bc",
            "https://2130706433/bc",
        ] {
            assert_eq!(check(&none, inward), Err(Refused::Inward), "{inward}");
        }
        assert_eq!(
            check(&none, "http://app.localhost/bc"),
            Err(Refused::NotHttps)
        );

        let demo = Outbound::parse(&["*.localhost", "10.1.0.0/16", "intranet.corp"]).unwrap();
        assert_eq!(check(&demo, "http://app-a.localhost:5001/bc"), Ok(()));
        assert_eq!(
            check(&demo, "http://localhost:5001/bc"),
            Err(Refused::NotHttps)
        );
        assert_eq!(check(&demo, "http://10.1.2.3/bc"), Ok(()));
        assert_eq!(check(&demo, "https://10.2.0.1/bc"), Err(Refused::Inward));
        assert_eq!(check(&demo, "http://intranet.corp/bc"), Ok(()));
        assert_eq!(
            check(&demo, "http://x.intranet.corp/bc"),
            Err(Refused::NotHttps)
        );
        assert!(Outbound::parse(&["*."]).is_err());
        assert!(Outbound::parse(&["http://x"]).is_err());
        assert!(Outbound::parse(&["app.localhost:99999"]).is_err());
        // A name on one port only.
        let ported = Outbound::parse(&["app-a.localhost:5001", "*.corp:8443"]).unwrap();
        assert_eq!(check(&ported, "http://app-a.localhost:5001/bc"), Ok(()));
        assert_eq!(
            check(&ported, "http://app-a.localhost:4000/token"),
            Err(Refused::NotHttps)
        );
        assert_eq!(
            check(&ported, "https://app-a.localhost:4090/metrics"),
            Err(Refused::Inward)
        );
        assert_eq!(check(&ported, "https://x.corp:8443/bc"), Ok(()));
    }

    #[test]
    fn addresses_at_connect_time() {
        let demo = Outbound::parse(&["*.localhost", "10.1.0.0/16"]).unwrap();
        assert!(demo.permits("app.example", ip("93.184.216.34")));
        assert!(!demo.permits("app.example", ip("127.0.0.1")));
        assert!(!demo.permits("app.example", ip("::ffff:169.254.169.254")));
        assert!(demo.permits("app.example", ip("10.1.9.9")));
        assert!(demo.permits("app-a.localhost", ip("127.0.0.1")));
        assert!(!Outbound::default().permits("app-a.localhost", ip("127.0.0.1")));
    }

    /// DNS rebinding: a name that passed registration (https, a public-looking name) but
    /// resolves to loopback or metadata when the delivery connects is refused there, whatever
    /// mix of inward answers it gives, unless the operator allowed the name.
    #[tokio::test]
    async fn a_name_that_resolves_inward_is_refused_when_connecting() {
        let (port, reached) = counting_listener().await;
        let client = Guarded::with_answers(
            Outbound::default(),
            &[
                ("rebound.example", &["127.0.0.1"]),
                (
                    "metadata.example",
                    &["169.254.169.254", "::ffff:127.0.0.1", "fd00:ec2::254"],
                ),
            ],
        )
        .unwrap();
        for name in ["rebound.example", "metadata.example"] {
            let url = format!("https://{name}:{port}/bc");
            // The URL itself passes (https, a name): only the answer is inward.
            let request = client.post(&url).unwrap();
            let e = request.send().await.unwrap_err();
            assert!(was_refused(&e), "{name}: {e:?}");
        }
        assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0);
        // The operator's exception lets the same answer through.
        let allowed = Guarded::with_answers(
            Outbound::parse(&["rebound.example"]).unwrap(),
            &[("rebound.example", &["127.0.0.1"])],
        )
        .unwrap();
        let e = allowed
            .post(&format!("http://rebound.example:{port}/bc"))
            .unwrap()
            .timeout(Duration::from_millis(300))
            .send()
            .await
            .unwrap_err();
        assert!(!was_refused(&e), "{e:?}");
        connected(&reached).await;
    }

    /// A name that resolves inward is refused at connect time, and the error says so.
    #[tokio::test]
    async fn the_resolver_refuses_inward_answers() {
        let (port, reached) = counting_listener().await;
        // Allowed as a URL (https, a name), but it resolves to loopback.
        let client = Guarded::new(
            Outbound::parse(&["other.localhost"]).unwrap(),
            Duration::from_secs(5),
        )
        .unwrap();
        let refused = Guarded::new(Outbound::default(), Duration::from_secs(5)).unwrap();
        let e = refused
            .http
            .post(format!("https://rebound.localhost:{port}/x"))
            .send()
            .await
            .unwrap_err();
        assert!(was_refused(&e), "{e:?}");
        // An address literal is checked before sending.
        assert_eq!(
            refused.post(&format!("https://127.0.0.1:{port}/x")).err(),
            Some(Refused::Inward)
        );
        // An excepted name connects (the listener sees it; no TLS, so the request fails).
        let e = client
            .post(&format!("http://other.localhost:{port}/x"))
            .unwrap()
            .timeout(Duration::from_millis(200))
            .send()
            .await
            .unwrap_err();
        assert!(!was_refused(&e));
        connected(&reached).await;
    }
}
