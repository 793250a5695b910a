//! Outbound HTTP: one pooled hyper client per body type (IdP fetches send no body, proxied
//! requests stream the client's body), HTTP and HTTPS (rustls, webpki roots).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

pub type Connector = HttpsConnector<HttpConnector>;
/// Client for proxied requests (the incoming body is streamed through).
pub type UpstreamClient = Client<Connector, Incoming>;
/// Client for IdP discovery and JWKS fetches.
pub type FetchClient = Client<Connector, Empty<Bytes>>;

/// HTTP and HTTPS (rustls, webpki roots) with a connect timeout.
pub fn connector(connect_timeout: Duration) -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// The pooled client for upstreams.
pub fn upstream_client(connect_timeout: Duration, pool_idle_timeout: Duration) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(pool_idle_timeout)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector(connect_timeout))
}

/// The client for IdP fetches.
pub fn fetch_client(connect_timeout: Duration) -> FetchClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build(connector(connect_timeout))
}
