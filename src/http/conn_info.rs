//! [`ConnInfo`]: what the accept loop knows about a connection, handed to the proxy as a
//! request extension (TLS or not, the body read timeout, a per-core worker's own upstream
//! pools).

use std::sync::Arc;
use std::time::Duration;

use crate::http::client::Upstreams;

/// What the accept loop knows about a request's connection; a request extension.
#[derive(Clone)]
pub struct ConnInfo {
    /// Whether the client connected over TLS (`X-Forwarded-Proto: https`).
    pub tls: bool,
    /// `[server] body_read_timeout`, applied to the body forwarded upstream.
    pub body_read_timeout: Duration,
    /// A per-core worker's own upstream pools: their connections live on the worker's
    /// runtime, so no other thread's runtime (or its shutdown) can stall them. `None`: the
    /// shared pools in [`crate::AppState::upstream`].
    pub upstreams: Option<Arc<Upstreams>>,
}

impl ConnInfo {
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

impl Default for ConnInfo {
    fn default() -> Self {
        ConnInfo {
            tls: false,
            body_read_timeout: Duration::from_secs(30),
            upstreams: None,
        }
    }
}
