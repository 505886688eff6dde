//! The app's HTTP client for the provider: the shared outbound policy (`infra::http`), and
//! an adapter that lets openidconnect use reqwest 0.13 (its own `reqwest` feature would pull in
//! reqwest 0.12 as well).

pub use infra::http::{LocalhostResolver, client_builder, is_localhost};

use openidconnect::{AsyncHttpClient, HttpClientError, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;

/// openidconnect's HTTP client trait over reqwest 0.13.
#[derive(Clone, Debug)]
pub struct OidcHttp(pub reqwest::Client);

type ResponseFuture<'c> = Pin<
    Box<dyn Future<Output = Result<HttpResponse, HttpClientError<reqwest::Error>>> + Send + 'c>,
>;

impl<'c> AsyncHttpClient<'c> for OidcHttp {
    type Error = HttpClientError<reqwest::Error>;
    type Future = ResponseFuture<'c>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(Box::new)?;
            let response = self.0.execute(request).await.map_err(Box::new)?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await.map_err(Box::new)?;
            builder.body(body.to_vec()).map_err(HttpClientError::Http)
        })
    }
}
