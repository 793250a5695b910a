//! Outbound HTTP: pooled hyper clients over HTTP and HTTPS (rustls, aws-lc-rs, TLS 1.2+).
//! IdP fetches send no body; a remote signer's calls send small JSON bodies; proxied
//! requests stream the client's body (under the body read timeout). Servers are verified against the webpki roots plus, per route or for the IdP, an
//! optional private CA; a route may present a client certificate. [`Upstreams`] keeps one
//! pooled client per distinct TLS setting, so routes sharing settings share connections.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::http::timeout_body::TimeoutBody;
use crate::http::tls::{self, ClientTls};

pub type Connector = HttpsConnector<HttpConnector>;
/// The body sent upstream: the client's, each wait for a frame bounded.
pub type UpstreamBody = TimeoutBody<Incoming>;
/// Client for proxied requests (the incoming body is streamed through).
pub type UpstreamClient = Client<Connector, UpstreamBody>;
/// Client for IdP discovery and JWKS fetches.
pub type FetchClient = Client<Connector, Empty<Bytes>>;
/// Client for a remote signer's API (small JSON bodies, e.g. Vault Transit).
pub type KmsClient = Client<Connector, Full<Bytes>>;

/// `err` and its sources, joined by ": ". hyper-util's client errors show only "client error
/// (Connect)"; the TLS reason (say, an unknown issuer) is further down the chain.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = err.source();
    }
    text
}

/// HTTP and HTTPS (rustls, webpki roots) with a connect timeout.
pub fn connector(connect_timeout: Duration) -> Connector {
    connector_with(connect_timeout, None)
}

/// HTTP and HTTPS verified with `tls` (default: webpki roots, no client certificate).
pub fn connector_with(connect_timeout: Duration, tls: Option<&ClientTls>) -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let config = match tls {
        Some(tls) => (*tls.config).clone(),
        None => tls::default_client_config(),
    };
    HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// The pooled clients for upstreams: one for routes without TLS settings, one per distinct
/// `ca_file`/client certificate (keyed by the files' digest, created on first use); and
/// their connectors, for a client connection's own upstream connection
/// ([`crate::http::bound`]).
pub struct Upstreams {
    connect_timeout: Duration,
    pool_idle_timeout: Duration,
    default: (UpstreamClient, Connector),
    by_tls: Mutex<HashMap<[u8; 32], (UpstreamClient, Connector)>>,
}

impl Upstreams {
    pub fn new(connect_timeout: Duration, pool_idle_timeout: Duration) -> Self {
        Upstreams {
            connect_timeout,
            pool_idle_timeout,
            default: upstream_pool(connect_timeout, pool_idle_timeout, None),
            by_tls: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `request` over the pool for a route's TLS settings.
    pub fn request(
        &self,
        tls: Option<&ClientTls>,
        request: http::Request<UpstreamBody>,
    ) -> hyper_util::client::legacy::ResponseFuture {
        match tls {
            None => self.default.0.request(request),
            Some(tls) => self.pool_for(tls).0.request(request),
        }
    }

    /// `[upstream] pool_idle_timeout`: how long an idle connection is kept.
    pub fn pool_idle_timeout(&self) -> Duration {
        self.pool_idle_timeout
    }

    /// The connector for a route's TLS settings (connect timeout, TLS verification and
    /// client certificate as its pool's).
    pub fn connector(&self, tls: Option<&ClientTls>) -> Connector {
        match tls {
            None => self.default.1.clone(),
            Some(tls) => self.pool_for(tls).1,
        }
    }

    /// The client and connector for a route's own TLS settings (cheap handles onto a shared
    /// pool).
    fn pool_for(&self, tls: &ClientTls) -> (UpstreamClient, Connector) {
        let mut clients = self.by_tls.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(tls.id)
            .or_insert_with(|| {
                upstream_pool(self.connect_timeout, self.pool_idle_timeout, Some(tls))
            })
            .clone()
    }
}

fn upstream_pool(
    connect_timeout: Duration,
    pool_idle_timeout: Duration,
    tls: Option<&ClientTls>,
) -> (UpstreamClient, Connector) {
    let connector = connector_with(connect_timeout, tls);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(pool_idle_timeout)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector.clone());
    (client, connector)
}

/// The client for IdP fetches, verified with `tls` (`[idp] ca_file`) when given.
pub fn fetch_client(connect_timeout: Duration, tls: Option<&ClientTls>) -> FetchClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build(connector_with(connect_timeout, tls))
}

/// The client for a remote signer (`[[signing.keys]] transit`), verified with `tls` when
/// given; idle connections are kept so a signature costs no handshake.
pub fn kms_client(connect_timeout: Duration, tls: Option<&ClientTls>) -> KmsClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector_with(connect_timeout, tls))
}
