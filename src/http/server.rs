//! A listener's accept loop: HTTP/1.1 and HTTP/2 (over TLS, ALPN offers `h2` and
//! `http/1.1`), the limits that keep one client from holding the proxy, and
//! graceful shutdown. What a request gets is up to the listener's [`Handler`]; which
//! listeners exist and what they serve is wired in [`crate::service`]. The public listener
//! runs one accept loop per per-core worker, or one on the shared runtime (`[server]
//! scheduler`, see [`crate::http::workers`]); the admin listener always runs on the process
//! runtime.
//!
//! May use: hyper, hyper-util, tokio, tokio-rustls and the rest of [`crate::http`]; nothing
//! of the config, the state or the proxy (they come in through [`Limits`] and [`Handler`]).
//!
//! Limits, per listener ([`Limits`], each from `[server]`):
//! - `max_connections`: a semaphore taken *before* `accept`, so beyond the limit new
//!   connections wait in the kernel's accept queue (they are not refused) until one closes;
//!   its depth is `listen_backlog` ([`crate::http::listen`]).
//! - `header_read_timeout`: an HTTP/1 request head (and a TLS handshake) must arrive in time,
//!   or the connection is closed without an answer (hyper's behaviour). It also closes idle
//!   keep-alive connections, since hyper starts it when it waits for the next request (the
//!   first one included). The auto builder reads the preface before hyper waits, with no
//!   limit, so a connection it serves also gets a first-request deadline: the one its first
//!   bytes were awaited under (a client that connects and sends nothing, or half a
//!   preface). A drain ends the wait for a plain connection's first bytes, or for a TLS
//!   handshake, at once.
//! - `max_header_bytes`: hyper's HTTP/1 read buffer (`max_buf_size`) and the HTTP/2 header
//!   list size; `max_headers`: the HTTP/1 header count. Beyond either, hyper answers 431 and
//!   closes (HTTP/2: h2 answers 431 on that stream).
//! - `body_read_timeout`: carried to the handler in [`ConnInfo`]; the proxy wraps the body it
//!   forwards (see [`crate::http::timeout_body`]).
//! - Request framing: a `Transfer-Encoding` other than a single `chunked` (hyper accepts any
//!   list ending in `chunked`) is answered 400 with `Connection: close` here, before the
//!   handler, and the connection closes ([`crate::http::framing`]).
//!
//! Protocol: a connection whose first bytes cannot begin the HTTP/2 preface (plain TCP, a
//! `peek` of up to three bytes) or that negotiated `http/1.1` by ALPN is served by hyper's
//! HTTP/1 server directly; anything else goes through hyper-util's auto builder, which reads
//! the preface to tell. (The auto builder's version detection and rewind cost ~4% of a
//! proxied request's instructions on every read, #16.)
//!
//! Shutdown stops accepting (the listening socket is closed, so new connections are
//! refused), lets in-flight requests finish for up to the drain timeout, then closes what is
//! left.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::rt::{Read, Write};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::http::body::Body;
use crate::http::client::Upstreams;
use crate::http::conn_info::ConnInfo;
use crate::http::drain::{Drain, Ended, Member};
use crate::http::framing;
use crate::http::headers::has_unsupported_transfer_coding;

/// What a listener does with each request; `conn` is what the accept loop knows about its
/// connection (built once per connection). Cloned once per connection.
pub trait Handler: Clone + Send + Sync + 'static {
    /// The handler's own state of a connection, made with it ([`ConnInfo::handler_state`]).
    type Conn: Default + Send + Sync + 'static;

    fn handle(
        &self,
        request: Request<Incoming>,
        conn: Arc<ConnInfo<Self::Conn>>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static + use<Self>;
}

pin_project_lite::pin_project! {
    /// What hyper awaits for one request: the handler's future, or the framing refusal.
    /// Not an `async` block, which would keep the handler's future twice (the one it made
    /// and the one it awaits) and every byte of both is copied when hyper stores it (#16).
    #[project = AnswerProj]
    enum Answer<F> {
        Handled { #[pin] future: F },
        Refused { response: Option<Response<Body>> },
    }
}

impl<F: Future<Output = Response<Body>>> Future for Answer<F> {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.project() {
            AnswerProj::Handled { future } => future.poll(cx).map(Ok),
            AnswerProj::Refused { response } => {
                std::task::Poll::Ready(Ok(response.take().unwrap_or_else(framing::refusal)))
            }
        }
    }
}

/// The limits of one listener (see the module doc).
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    pub drain_timeout: Duration,
}

/// One listener's accept loop and what it needs; per-core workers each run a clone of the
/// public one on their own copy of the socket, sharing its connection slots.
#[derive(Clone)]
pub struct AcceptLoop<H> {
    handler: H,
    tls: Option<TlsAcceptor>,
    settings: Limits,
    /// `max_connections` for the whole listener.
    slots: Arc<Semaphore>,
    /// See [`ConnInfo::upstreams`].
    upstreams: Option<Arc<Upstreams>>,
}

impl<H: Handler> AcceptLoop<H> {
    /// A listener serving `handler`, over TLS when `tls` is set, within `limits`.
    pub fn new(handler: H, tls: Option<TlsAcceptor>, limits: Limits) -> Self {
        AcceptLoop {
            handler,
            tls,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            settings: limits,
            upstreams: None,
        }
    }

    /// Requests on this loop forward through `upstreams` (a per-core worker's own pools).
    pub fn with_upstreams(mut self, upstreams: Arc<Upstreams>) -> Self {
        self.upstreams = Some(upstreams);
        self
    }

    fn builders(&self) -> Builders {
        let settings = &self.settings;
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_read_timeout)
            .max_buf_size(settings.max_header_bytes);
        let mut auto = auto::Builder::new(TokioExecutor::new());
        auto.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_read_timeout)
            .max_buf_size(settings.max_header_bytes);
        // hyper's default is 100 on its stack; a count set explicitly, even 100, is a
        // vector filled on every request head (~4% of a proxied request, #16).
        if settings.max_headers != DEFAULT_MAX_HEADERS {
            http1.max_headers(settings.max_headers);
            auto.http1().max_headers(settings.max_headers);
        }
        auto.http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
        Builders { http1, auto }
    }

    /// Accepts and serves until `shutdown` carries a drain timeout, then drains.
    pub async fn run(self, listener: TcpListener, mut shutdown: watch::Receiver<Option<Duration>>) {
        let builders = Arc::new(self.builders());
        // Dropped when this loop ends: every connection still open then is closed.
        let drain = Drain::default();
        let slots = self.slots.clone();
        let mut full_logged = false;
        loop {
            if slots.available_permits() == 0 && !full_logged {
                tracing::warn!(
                    max_connections = self.settings.max_connections,
                    "connection limit reached; new connections wait to be accepted"
                );
            }
            full_logged = slots.available_permits() == 0;
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                _ = shutdown.changed() => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                handler: self.handler.clone(),
                peer,
                builders: builders.clone(),
                member: drain.member(),
                info: Arc::new(ConnInfo::new(
                    peer,
                    self.tls.is_some(),
                    self.settings.body_read_timeout,
                    self.upstreams.clone(),
                )),
                header_read_timeout: self.settings.header_read_timeout,
            };
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                connection.run(stream, tls).await;
            });
        }
        drop(listener);
        let drain_timeout = (*shutdown.borrow()).unwrap_or(self.settings.drain_timeout);
        let open = drain.open();
        if tokio::time::timeout(drain_timeout, drain.drain())
            .await
            .is_err()
        {
            tracing::warn!(drain = ?drain_timeout, "drain timeout: closing the connections still open");
        } else if open > 0 {
            tracing::info!(connections = open, "connections drained");
        }
    }
}

/// One accepted connection, served until it ends, shutdown finishes it, or the drain timeout
/// closes it.
struct Connection<H: Handler> {
    handler: H,
    peer: SocketAddr,
    builders: Arc<Builders>,
    member: Member,
    info: Arc<ConnInfo<H::Conn>>,
    /// Bounds the TLS handshake and the wait for the first request.
    header_read_timeout: Duration,
}

/// The two ways a connection is served (see the module doc).
struct Builders {
    http1: hyper::server::conn::http1::Builder,
    auto: auto::Builder<TokioExecutor>,
}

/// hyper's own HTTP/1 header count limit when none is set (`[server] max_headers`'s
/// default, see [`crate::config`]).
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// What a connection speaks, as far as the accept loop can tell before hyper reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    /// Possibly HTTP/2: hyper-util's auto builder reads the preface to tell.
    Detect,
}

/// The start of the HTTP/2 connection preface (RFC 9113 §3.4); no HTTP/1 method is `PRI`.
const H2_START: &[u8] = b"PRI";

/// Waits for a plain connection's first bytes (without taking them); `None` when it closes
/// or fails first.
async fn sniff(stream: &TcpStream) -> Option<Protocol> {
    let mut first = [0u8; H2_START.len()];
    match stream.peek(&mut first).await {
        Ok(0) | Err(_) => None,
        Ok(n) if H2_START.starts_with(&first[..n]) => Some(Protocol::Detect),
        Ok(_) => Some(Protocol::Http1),
    }
}

impl<H: Handler> Connection<H> {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let limit = self.header_read_timeout;
        let Some(acceptor) = tls else {
            let deadline = tokio::time::Instant::now() + limit;
            let sniffed = tokio::select! {
                sniffed = tokio::time::timeout_at(deadline, sniff(&stream)) => sniffed,
                () = self.member.draining() => return,
            };
            return match sniffed {
                Ok(Some(protocol)) => self.serve(TokioIo::new(stream), protocol, deadline).await,
                Ok(None) => {}
                Err(_) => {
                    tracing::debug!(peer = %self.peer, "no request within header_read_timeout")
                }
            };
        };
        let handshake = tokio::select! {
            handshake = tokio::time::timeout(limit, acceptor.accept(stream)) => handshake,
            () = self.member.draining() => return,
        };
        match handshake {
            Ok(Ok(stream)) => {
                let protocol = match stream.get_ref().1.alpn_protocol() {
                    Some(b"http/1.1") => Protocol::Http1,
                    _ => Protocol::Detect,
                };
                let deadline = tokio::time::Instant::now() + limit;
                self.serve(TokioIo::new(stream), protocol, deadline).await
            }
            Ok(Err(err)) => {
                tracing::debug!(peer = %self.peer, error = %err, "TLS handshake failed")
            }
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    /// Serves `io`. Through the auto builder, a first request that has not begun by
    /// `first_request` closes it (for HTTP/1, hyper's own header read timer does).
    async fn serve<I>(self, io: I, protocol: Protocol, first_request: tokio::time::Instant)
    where
        I: Read + Write + Unpin + Send + 'static,
    {
        let Connection {
            handler,
            peer,
            builders,
            member,
            info,
            header_read_timeout: _,
        } = self;
        let header_timer = info.header_timer.clone();
        let seen_first = Arc::new(AtomicBool::new(false));
        let seen = seen_first.clone();
        let service = service_fn(move |request: http::Request<Incoming>| {
            seen.store(true, Ordering::Relaxed);
            // A coding hyper accepts but resigner does not implement: the body's end is in
            // doubt, so no handler sees it and the connection closes (see `framing`).
            if has_unsupported_transfer_coding(request.headers()) {
                Answer::Refused {
                    response: Some(framing::refusal()),
                }
            } else {
                Answer::Handled {
                    future: handler.handle(request, info.clone()),
                }
            }
        });
        let ended = match protocol {
            Protocol::Http1 => {
                // Its header read timeout on a reusable timer of the connection's (#16).
                let mut http1 = builders.http1.clone();
                http1.timer(header_timer);
                let connection = http1.serve_connection(io, service);
                member.serve(connection, None, &seen_first).await
            }
            Protocol::Detect => {
                let connection = builders.auto.serve_connection(io, service);
                member
                    .serve(connection, Some(first_request), &seen_first)
                    .await
            }
        };
        match ended {
            Ended::Done => {}
            Ended::NoRequest => tracing::debug!(%peer, "no request within header_read_timeout"),
            Ended::Closed => tracing::debug!(%peer, "connection closed at the drain timeout"),
        }
    }
}
