//! Outbound HTTP policy shared by both servers (the app's calls to the provider, the
//! provider's back-channel logout deliveries): a reqwest client that resolves `*.localhost` to
//! loopback itself (RFC 6761 §6.3; the system resolver here does not), never follows redirects
//! (an SSRF precaution), and gives up in seconds.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Resolves `localhost` and `*.localhost` to 127.0.0.1 without asking DNS; anything else
/// through the system resolver.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalhostResolver;

/// Whether `host` is `localhost` or under `.localhost` (RFC 6761 §6.3).
pub fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

impl Resolve for LocalhostResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if is_localhost(&host) {
                let addrs: Addrs =
                    Box::new(std::iter::once(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))));
                return Ok(addrs);
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// A client builder with the loopback resolver, no redirects and a timeout.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(LocalhostResolver))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_names() {
        assert!(is_localhost("localhost"));
        assert!(is_localhost("idp.localhost"));
        assert!(is_localhost("APP-A.LOCALHOST."));
        assert!(!is_localhost("localhost.example.com"));
        assert!(!is_localhost("evil-localhost"));
    }
}
