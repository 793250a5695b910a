//! The upstream connection a client connection keeps (#16). A keep-alive client connection's
//! requests to one upstream go over one `hyper::client::conn::http1` connection of its own,
//! taken and put back without a pool checkout: the pooled client ([`crate::http::client`])
//! costs a keyed lookup, a spawned "return when ready" task and a channel hop per request,
//! about a tenth of a cache hit's instructions (callgrind, #16).
//!
//! The rules, per client connection ([`BoundUpstream`]):
//! - its first request goes through the pool: a client that sends one request per
//!   connection never opens an upstream connection of its own;
//! - from the second request on (the client keeps its connection alive), a request finds
//!   the held connection and uses it when it goes to the same upstream (scheme, authority,
//!   TLS settings) and is ready; with none held, it connects one ([`connect`]) and keeps it;
//! - a request finding it busy (HTTP/2 streams in parallel), not ready, or held for another
//!   upstream goes through the pool; one that finds it closed (the upstream ended it)
//!   connects a new one, and so does one that finds it idle for longer than
//!   `[upstream] pool_idle_timeout` (as the pool would have closed it);
//! - a request that fails or is dropped (timeout, client gone) while it holds the connection
//!   drops it (hyper closes a connection whose request future is dropped), so the next one
//!   connects afresh. It lives as long as the client connection (it is dropped with it).
//!
//! May use: hyper, http, tokio, tower-service and the connector and body types of
//! [`crate::http::client`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::Uri;
use http::uri::{Authority, Scheme};
use hyper::client::conn::http1::{self, SendRequest};
use tower_service::Service;

use crate::http::client::{Connector, UpstreamBody};

/// Which upstream a held connection goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamKey {
    pub scheme: Scheme,
    pub authority: Authority,
    /// The route's TLS settings ([`crate::http::tls::ClientTls::id`]); `None`: the default.
    pub tls: Option<[u8; 32]>,
}

/// One client connection's upstream connection (see the module doc).
#[derive(Default)]
pub struct BoundUpstream {
    slot: Mutex<Slot>,
}

#[derive(Default)]
enum Slot {
    /// No request yet.
    #[default]
    Fresh,
    /// Requests seen, no connection held: the next request connects one.
    Unbound,
    /// Held, idle since the instant (the start of the last request it served).
    Idle(Arc<UpstreamKey>, SendRequest<UpstreamBody>, Instant),
    /// A request holds it ([`Lease`]).
    Busy,
}

/// What [`BoundUpstream::take`] gives a request.
pub enum Take<'a> {
    /// The held connection, ready for it.
    Held(Lease<'a>, SendRequest<UpstreamBody>),
    /// None held: connect one ([`connect`]) and [`Lease::put`] it back after the response.
    Connect(Lease<'a>),
    /// Use the pool.
    Pool,
}

/// A request's hold on the slot; dropped without [`Lease::put`] (a failed or abandoned
/// request), it leaves the slot empty, so the connection it held is closed.
pub struct Lease<'a> {
    bound: &'a BoundUpstream,
    returned: bool,
}

impl BoundUpstream {
    /// The connection for a request to `key` (see the module doc); one held idle for longer
    /// than `max_idle` (`[upstream] pool_idle_timeout`) is closed and replaced, so it is not
    /// kept past an upstream's own keep-alive timeout any more than a pooled one.
    /// `now` is the request's start.
    pub fn take(&self, key: &Arc<UpstreamKey>, max_idle: Duration, now: Instant) -> Take<'_> {
        let mut slot = self.lock();
        match std::mem::replace(&mut *slot, Slot::Busy) {
            Slot::Fresh => {
                *slot = Slot::Unbound;
                Take::Pool
            }
            Slot::Unbound => Take::Connect(self.lease()),
            Slot::Idle(_, sender, since)
                if sender.is_closed() || now.saturating_duration_since(since) > max_idle =>
            {
                Take::Connect(self.lease())
            }
            Slot::Idle(held, sender, _)
                if (Arc::ptr_eq(&held, key) || held == *key) && sender.is_ready() =>
            {
                Take::Held(self.lease(), sender)
            }
            idle @ Slot::Idle(..) => {
                *slot = idle;
                Take::Pool
            }
            Slot::Busy => Take::Pool,
        }
    }

    fn lease(&self) -> Lease<'_> {
        Lease {
            bound: self,
            returned: false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Lease<'_> {
    /// Keeps `sender` for the connection's next request to `key`; idle since `since` (the
    /// start of the request it served: an earlier instant than its end, so it is never
    /// kept longer than `max_idle`, and no clock read).
    pub fn put(mut self, key: Arc<UpstreamKey>, sender: SendRequest<UpstreamBody>, since: Instant) {
        *self.bound.lock() = Slot::Idle(key, sender, since);
        self.returned = true;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if !self.returned {
            *self.bound.lock() = Slot::Unbound;
        }
    }
}

/// Why [`connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("HTTP/1 handshake: {0}")]
    Handshake(#[source] hyper::Error),
}

/// Opens an HTTP/1 connection to `uri`'s authority with `connector` (the route's TLS
/// settings and connect timeout) and runs it as a task of the current runtime until its
/// sender is dropped or the upstream closes it.
pub async fn connect(
    mut connector: Connector,
    uri: Uri,
) -> Result<SendRequest<UpstreamBody>, ConnectError> {
    std::future::poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(ConnectError::Connect)?;
    let io = connector.call(uri).await.map_err(ConnectError::Connect)?;
    let (sender, connection) = http1::Builder::new()
        .handshake(io)
        .await
        .map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "upstream connection ended");
        }
    });
    Ok(sender)
}
