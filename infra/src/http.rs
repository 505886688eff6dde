//! Outbound HTTP policy shared by both servers (the app's calls to the provider, the
//! provider's back-channel logout deliveries) and the command-line client: a reqwest client
//! that resolves `*.localhost` to loopback itself (RFC 6761 §6.3; the system resolver here
//! does not), never follows redirects (an SSRF precaution), and gives up in seconds; and
//! [`OAuthHttp`], the adapter that lets the `oauth2` and `openidconnect` crates use it.

use oauth2::{AsyncHttpClient, HttpClientError, HttpRequest, HttpResponse};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
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

/// The `oauth2` crate's HTTP client trait (which `openidconnect` re-exports) over reqwest
/// 0.13: the crates' own `reqwest` feature would pull in reqwest 0.12 as well.
#[derive(Clone, Debug)]
pub struct OAuthHttp(pub reqwest::Client);

type ResponseFuture<'c> = Pin<
    Box<dyn Future<Output = Result<HttpResponse, HttpClientError<reqwest::Error>>> + Send + 'c>,
>;

impl<'c> AsyncHttpClient<'c> for OAuthHttp {
    type Error = HttpClientError<reqwest::Error>;
    type Future = ResponseFuture<'c>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(Box::new)?;
            let response = self.0.execute(request).await.map_err(Box::new)?;
            let mut builder = oauth2::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await.map_err(Box::new)?;
            builder.body(body.to_vec()).map_err(HttpClientError::Http)
        })
    }
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
