//! Forwarding to the legacy API: the request is rewritten (route prefix optionally stripped,
//! hop-by-hop headers and those named in `Connection` removed, the client's token and any
//! client copy of the output header removed, the re-signed header set, `X-Forwarded-*`
//! added) and sent over the client connection's own upstream connection or the pooled
//! client ([`crate::http::bound`] says which); bodies stream both ways. The header
//! vocabulary (what is hop-by-hop, which transfer codings pass) is [`crate::http::headers`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

use super::error::ProxyError;
use crate::app::AppState;
use crate::config::{Route, UpstreamTarget};
use crate::http::body::Body;
use crate::http::bound::{self, ConnectError, Lease, Take};
use crate::http::client::{UpstreamBody, Upstreams, error_chain};
use crate::http::conn_info::ConnInfo;
use crate::http::headers::strip_hop_by_hop;
use crate::http::timeout_body::{BodyReadTimeout, RequestBodyFailed, TimeoutBody};
use crate::metrics::UpstreamError;

// Constants: `HeaderName::from_static` at run time checks every byte (#16).
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Sends `request` to the route's upstream with `token_header` as the output header (`None`:
/// a passthrough route, whose `Authorization` is left as the client sent it). `started`
/// (the request's start, or the end of its token work when that took time) starts the
/// route's timeout and the upstream's latency.
///
/// The request is rewritten here, at once; the future only waits for the upstream. It is
/// one of its own ([`Forwarding`]) rather than an `async fn`, which would keep the request
/// beside its rewritten parts and the exchange (1 KB, moved with every request's future, #16).
pub fn forward<'a, S>(
    state: &'a AppState,
    route: &'a Route,
    request: Request<Incoming>,
    token_header: Option<&HeaderValue>,
    conn: &'a ConnInfo<S>,
    started: tokio::time::Instant,
) -> Forwarding<'a, impl Future<Output = Option<Exchanged>> + Send + use<'a, S>>
where
    S: Sync,
{
    let request = match rewrite(route, request, token_header, conn) {
        Ok(request) => request,
        Err(err) => return Forwarding::Refused { err: Some(err) },
    };
    let upstreams = conn.upstreams.as_deref().unwrap_or(&state.upstream);
    let sent = exchange(upstreams, route, conn, request, started.into_std());
    Forwarding::Sending {
        limit: conn
            .route_timer
            .limit(started.checked_add(route.timeout), sent),
        state,
        route,
        started,
    }
}

/// The request as the upstream gets it: origin form, HTTP/1.1, no extensions; hop-by-hop
/// headers stripped, the upstream's `Host`, the output header, `X-Forwarded-*`; the body
/// read with the body read timeout.
fn rewrite<S>(
    route: &Route,
    request: Request<Incoming>,
    token_header: Option<&HeaderValue>,
    conn: &ConnInfo<S>,
) -> Result<Request<UpstreamBody>, ProxyError> {
    let (mut parts, body) = request.into_parts();
    let host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    // Origin form: the held connection sends it as is; the pool gets the absolute form.
    parts.uri = Uri::from(upstream_path(route, &parts.uri)?);
    parts.version = Version::HTTP_11;
    parts.extensions = http::Extensions::new();
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    headers.insert(header::HOST, route.upstream.host.clone());
    if let Some(token_header) = token_header {
        // `insert` replaces every value of its name: with the output header in
        // `Authorization` (the default), that is the client's token too.
        if route.header != header::AUTHORIZATION {
            headers.remove(header::AUTHORIZATION);
        }
        headers.insert(route.header.clone(), token_header.clone());
    }
    append_forwarded_for(headers, &conn.peer_ip);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(conn.scheme()));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    let body = TimeoutBody::new(body, conn.body_read_timeout);
    Ok(Request::from_parts(parts, body))
}

pin_project_lite::pin_project! {
    /// [`forward`]'s future: the exchange under the route's timeout, then its outcome as
    /// the response or the error (see [`finish`]).
    #[project = ForwardingProj]
    pub enum Forwarding<'a, L> {
        /// The request could not be rewritten for the upstream.
        Refused { err: Option<ProxyError> },
        Sending {
            #[pin]
            limit: L,
            state: &'a AppState,
            route: &'a Route,
            started: tokio::time::Instant,
        },
    }
}

impl<L: Future<Output = Option<Exchanged>>> Future for Forwarding<'_, L> {
    type Output = Result<Response<Body>, ProxyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ForwardingProj::Refused { err } => Poll::Ready(Err(err
                .take()
                .unwrap_or(ProxyError::BadRequest("request path cannot be forwarded")))),
            ForwardingProj::Sending {
                limit,
                state,
                route,
                started,
            } => {
                let outcome = std::task::ready!(limit.poll(cx));
                Poll::Ready(finish(state, route, *started, outcome))
            }
        }
    }
}

/// The exchange's outcome (`None`: the route's timeout came first) as the client's
/// response, hop-by-hop headers stripped, or the error; failures are counted and logged.
fn finish(
    state: &AppState,
    route: &Route,
    started: tokio::time::Instant,
    outcome: Option<Exchanged>,
) -> Result<Response<Body>, ProxyError> {
    let response = match outcome {
        None => {
            state.metrics.record_upstream_error(UpstreamError::Timeout);
            return Err(ProxyError::UpstreamTimeout);
        }
        Some(Err(err)) if BodyReadTimeout::is_cause_of(err.as_error()) => {
            tracing::info!(route = %route.prefix, error = %err.as_error(), "request body read timed out");
            return Err(ProxyError::RequestBodyTimeout);
        }
        Some(Err(err)) if RequestBodyFailed::is_cause_of(err.as_error()) => {
            tracing::info!(route = %route.prefix, error = %error_chain(err.as_error()), "request body malformed");
            return Err(ProxyError::BadFraming(
                "the request body is malformed or incomplete",
            ));
        }
        Some(Err(err)) => {
            let kind = if err.is_connect() {
                UpstreamError::Connect
            } else {
                UpstreamError::Other
            };
            state.metrics.record_upstream_error(kind);
            tracing::warn!(route = %route.prefix, error = %error_chain(err.as_error()), "upstream request failed");
            return Err(ProxyError::UpstreamUnreachable);
        }
        Some(Ok(response)) => {
            state.metrics.record_upstream(started.elapsed());
            response
        }
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Body::Upstream(body)))
}

/// Why an upstream exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    /// Through the pool.
    Pool(hyper_util::client::legacy::Error),
    /// Connecting the connection's own upstream connection.
    Connect(ConnectError),
    /// Over the connection's own upstream connection.
    Held(hyper::Error),
}

impl ExchangeError {
    fn is_connect(&self) -> bool {
        match self {
            ExchangeError::Pool(err) => err.is_connect(),
            ExchangeError::Connect(_) => true,
            ExchangeError::Held(_) => false,
        }
    }

    fn as_error(&self) -> &(dyn std::error::Error + 'static) {
        match self {
            ExchangeError::Pool(err) => err,
            ExchangeError::Connect(err) => err,
            ExchangeError::Held(err) => err,
        }
    }
}

/// Sends `request` (origin form, `Host` set) over the client connection's own upstream
/// connection when it has or may open one, else through the pool
/// ([`crate::http::bound`]). A request the held connection could not start sending (it
/// closed in between) goes through the pool. `now` is the request's start.
///
/// The common case, the held connection, is an [`Exchange::Held`] future of a few hundred
/// bytes; the others are boxed, so a forwarded request's future is not as large as theirs
/// (an `async fn` here was 1.4 KB, copied with every move of the request's future, #16).
fn exchange<'a, S>(
    upstreams: &'a Upstreams,
    route: &'a Route,
    conn: &'a ConnInfo<S>,
    request: Request<UpstreamBody>,
    now: std::time::Instant,
) -> impl Future<Output = Exchanged> + 'a {
    let key = &route.bound_key;
    let take = conn.bound.take(key, upstreams.pool_idle_timeout(), now);
    match take {
        Take::Held(lease, sender) => held(upstreams, route, lease, sender, request, now),
        Take::Pool => Exchange::Other {
            future: Box::pin(pool(upstreams, route, request)),
        },
        // Once per client connection.
        Take::Connect(lease) => Exchange::Other {
            future: Box::pin(connect(upstreams, route, lease, request, now)),
        },
    }
}

/// Sends `request` over `sender`, the connection `lease` holds: [`Exchange::Held`].
fn held<'a>(
    upstreams: &'a Upstreams,
    route: &'a Route,
    lease: Lease<'a>,
    mut sender: SendRequest<UpstreamBody>,
    request: Request<UpstreamBody>,
    now: std::time::Instant,
) -> Exchange<'a, impl Future<Output = Result<Response<Incoming>, TrySendError>> + 'a> {
    Exchange::Held {
        sending: sender.try_send_request(request),
        held: Some((lease, sender)),
        upstreams,
        route,
        now,
    }
}

type TrySendError = hyper::client::conn::TrySendError<Request<UpstreamBody>>;

pub type Exchanged = Result<Response<Incoming>, ExchangeError>;

pin_project_lite::pin_project! {
    /// [`exchange`]'s future.
    #[project = ExchangeProj]
    enum Exchange<'a, S> {
        /// Over the held connection: `sending` is its request.
        Held {
            #[pin]
            sending: S,
            held: Option<(Lease<'a>, SendRequest<UpstreamBody>)>,
            upstreams: &'a Upstreams,
            route: &'a Route,
            now: std::time::Instant,
        },
        /// Through the pool, or over a connection being opened.
        Other { future: Pin<Box<dyn Future<Output = Exchanged> + Send + 'a>> },
    }
}

impl<'a, S> Future for Exchange<'a, S>
where
    S: Future<Output = Result<Response<Incoming>, TrySendError>>,
{
    type Output = Exchanged;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Exchanged> {
        let retry = match self.as_mut().project() {
            ExchangeProj::Other { future } => return future.as_mut().poll(cx),
            ExchangeProj::Held {
                sending,
                held,
                upstreams,
                route,
                now,
            } => match std::task::ready!(sending.poll(cx)) {
                Ok(response) => {
                    if let Some((lease, sender)) = held.take() {
                        lease.put(route.bound_key.clone(), sender, *now);
                    }
                    return Poll::Ready(Ok(response));
                }
                Err(mut err) => match err.take_message() {
                    Some(request) => {
                        drop(held.take());
                        Box::pin(pool(upstreams, route, request))
                    }
                    None => return Poll::Ready(Err(ExchangeError::Held(err.into_error()))),
                },
            },
        };
        self.set(Exchange::Other { future: retry });
        self.poll(cx)
    }
}

/// Connects the client connection's own upstream connection, sends `request` over it and
/// keeps it for the next request.
async fn connect(
    upstreams: &Upstreams,
    route: &Route,
    lease: Lease<'_>,
    request: Request<UpstreamBody>,
    now: std::time::Instant,
) -> Exchanged {
    let uri = absolute(&route.upstream, PathAndQuery::from_static("/"))?;
    let connector = upstreams.connector(route.tls.as_deref());
    let sender = bound::connect(connector, uri)
        .await
        .map_err(ExchangeError::Connect)?;
    held(upstreams, route, lease, sender, request, now).await
}

/// Sends `request` through the pool for the route's TLS settings, in absolute form.
async fn pool(
    upstreams: &Upstreams,
    route: &Route,
    mut request: Request<UpstreamBody>,
) -> Result<Response<Incoming>, ExchangeError> {
    let path_and_query = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = absolute(&route.upstream, path_and_query)?;
    upstreams
        .request(route.tls.as_deref(), request)
        .await
        .map_err(ExchangeError::Pool)
}

/// `path_and_query` on the upstream `target`, in absolute form (what the pool and the
/// connector are given).
fn absolute(target: &UpstreamTarget, path_and_query: PathAndQuery) -> Result<Uri, ExchangeError> {
    Uri::builder()
        .scheme(target.scheme.clone())
        .authority(target.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|err| ExchangeError::Connect(ConnectError::Connect(err.into())))
}

/// Appends the client's IP (formatted once per connection) to `X-Forwarded-For`: one list
/// of the values the request had (all its lines, in order) and the peer. One lookup.
fn append_forwarded_for(headers: &mut HeaderMap, peer_ip: &HeaderValue) {
    match headers.entry(X_FORWARDED_FOR) {
        Entry::Vacant(entry) => {
            entry.insert(peer_ip.clone());
        }
        Entry::Occupied(mut entry) => {
            let mut list: Vec<&str> = entry
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect();
            list.push(peer_ip.to_str().unwrap_or_default());
            if let Ok(value) = HeaderValue::try_from(list.join(", ")) {
                entry.insert(value);
            }
        }
    }
}

/// The upstream path and query: upstream base path + request path (minus the route prefix
/// when `strip_prefix`) + the original query. With no base path and nothing stripped it is
/// the request's own, not copied.
fn upstream_path(route: &Route, original: &Uri) -> Result<PathAndQuery, ProxyError> {
    if route.upstream.base_path.is_empty()
        && !route.strip_prefix
        && let Some(path_and_query) = original.path_and_query()
        && path_and_query.path().starts_with('/')
    {
        return Ok(path_and_query.clone());
    }
    let path = original.path();
    let rest = if route.strip_prefix {
        let prefix = route.prefix.trim_end_matches('/');
        &path[prefix.len().min(path.len())..]
    } else {
        path
    };
    let mut target = String::with_capacity(route.upstream.base_path.len() + rest.len() + 64);
    target.push_str(&route.upstream.base_path);
    if !rest.starts_with('/') {
        target.push('/');
    }
    target.push_str(rest);
    if let Some(query) = original.query() {
        target.push('?');
        target.push_str(query);
    }
    PathAndQuery::try_from(target)
        .map_err(|_| ProxyError::BadRequest("request path cannot be forwarded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_appends() {
        let mut headers = HeaderMap::new();
        append_forwarded_for(&mut headers, &HeaderValue::from_static("10.0.0.1"));
        append_forwarded_for(&mut headers, &HeaderValue::from_static("::1"));
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, ::1");

        // Every line the client sent is kept, in order; empty ones are dropped.
        let mut headers = HeaderMap::new();
        for line in ["1.1.1.1", " ", "2.2.2.2, 3.3.3.3"] {
            headers.append("x-forwarded-for", HeaderValue::from_static(line));
        }
        append_forwarded_for(&mut headers, &HeaderValue::from_static("10.0.0.1"));
        let lines: Vec<_> = headers.get_all("x-forwarded-for").iter().collect();
        assert_eq!(lines, ["1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1"]);
    }
}
