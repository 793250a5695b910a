//! [`ConnInfo`]: what the accept loop knows about a connection, handed with each of its
//! requests to the listener's handler (the peer, TLS or not, the body read timeout, a
//! per-core worker's own upstream pools, the connection's own upstream connection and
//! timers, and the handler's own state of it). Built
//! once per connection, so what a request needs from it costs no formatting or allocation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::http::bound::BoundUpstream;
use crate::http::client::Upstreams;
use crate::http::timer::ConnTimer;

/// What the accept loop knows about a request's connection, and `S`: the listener's handler's
/// own state of it ([`crate::http::server::Handler::Conn`]).
pub struct ConnInfo<S = ()> {
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's IP as an `X-Forwarded-For` element.
    pub peer_ip: HeaderValue,
    /// Whether the client connected over TLS (`X-Forwarded-Proto: https`).
    pub tls: bool,
    /// `[server] body_read_timeout`, applied to the body forwarded upstream.
    pub body_read_timeout: Duration,
    /// A per-core worker's own upstream pools: their connections live on the worker's
    /// runtime, so no other thread's runtime (or its shutdown) can stall them. `None`: the
    /// shared pools in [`crate::AppState::upstream`].
    pub upstreams: Option<Arc<Upstreams>>,
    /// The connection's own upstream connection ([`crate::http::bound`]).
    pub bound: BoundUpstream,
    /// The connection's reusable timers ([`crate::http::timer`]): hyper's header read
    /// timeout, and the route's upstream timeout. Two, as their durations differ: one sleep
    /// moved back and forth between two deadlines would be filed anew each time.
    pub header_timer: ConnTimer,
    pub route_timer: ConnTimer,
    /// The handler's own per-connection state (the public listener's: the connection's last
    /// bearer token, [`crate::cache::LastToken`]).
    pub handler_state: S,
}

impl<S: Default> ConnInfo<S> {
    pub fn new(
        peer: SocketAddr,
        tls: bool,
        body_read_timeout: Duration,
        upstreams: Option<Arc<Upstreams>>,
    ) -> Self {
        let peer_ip = HeaderValue::try_from(peer.ip().to_string())
            .unwrap_or(HeaderValue::from_static("unknown"));
        ConnInfo {
            peer,
            peer_ip,
            tls,
            body_read_timeout,
            upstreams,
            bound: BoundUpstream::default(),
            header_timer: ConnTimer::default(),
            route_timer: ConnTimer::default(),
            handler_state: S::default(),
        }
    }
}

impl<S> ConnInfo<S> {
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}
