//! [`try_handle`]: one proxied request from its route to the upstream's response. What needs
//! no waiting is done at once (see its doc); [`Handled`] is the future of the rest. May use
//! the proxy's stages ([`super::pipeline`], [`super::forward`]) and the connection's
//! [`LastToken`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

use super::{ProxyError, bearer_unchecked, forward, is_normalized, pipeline};
use crate::app::AppState;
use crate::cache::LastToken;
use crate::config::{Config, Route};
use crate::http::body::Body;
use crate::http::conn_info::ConnInfo;

/// Handles one request on the public listener that is not the JWKS endpoint: `route` is
/// the one the router matched in `config` (the snapshot the request uses to the end). The
/// router answers its result with [`respond`].
///
/// What needs no waiting is done here, at once: the path and route checks, the token's
/// extraction, and for a token the connection's previous request carried (its
/// [`LastToken`]) the answer, so the request goes straight to [`forward::forward`]. Only a
/// token looked up in the cache (or verified and signed) waits, in a boxed future: the
/// request's own future holds no cache lookup (#16: every byte of it is copied when it is
/// moved, and it is moved per request).
pub fn try_handle<'a>(
    state: &'a AppState,
    config: &'a Config,
    route: Option<&'a Route>,
    request: Request<Incoming>,
    conn: &'a ConnInfo<LastToken>,
) -> impl Future<Output = Result<Response<Body>, ProxyError>> + Send + 'a {
    let now = tokio::time::Instant::now();
    let refused = |err| Handled::Done {
        result: Some(Err(err)),
    };
    if !is_normalized(request.uri().path()) {
        return refused(ProxyError::BadRequest(
            "path has dot segments or encoded separators",
        ));
    }
    let Some(route) = route else {
        return refused(ProxyError::NoRoute);
    };
    let then = move |request, token_header: Option<&HeaderValue>, started| {
        forward::forward(state, route, request, token_header, conn, started)
    };
    let Some(work) = pipeline::TokenWork::of(route) else {
        // mode = "passthrough": no token work at all.
        let forwarding = then(request, None, now);
        return Handled::Forwarding { forwarding };
    };
    // The b64token check runs on a cache miss only (see `bearer_unchecked`).
    let token = match bearer_unchecked(request.headers()) {
        Ok(token) => token,
        Err(err) => return refused(err),
    };
    let caller = pipeline::Caller::Request(request.method());
    let scope = match pipeline::scope(state, config, route, work, caller) {
        Ok(scope) => scope,
        Err(err) => return refused(err),
    };
    let last = &conn.handler_state;
    if let Some(recalled) = pipeline::recall(state, last, token, &scope, now.into_std()) {
        return match recalled {
            Ok(served) => {
                let forwarding = then(request, Some(&served.resigned.header_value), now);
                Handled::Forwarding { forwarding }
            }
            Err(err) => refused(err),
        };
    }
    // The cache's way: the token and method owned by the boxed future, which the request
    // is kept beside.
    let token = bytes::Bytes::copy_from_slice(token);
    let method = request.method().clone();
    let resign = Box::pin(async move {
        let caller = pipeline::Caller::Request(&method);
        pipeline::lookup(
            state,
            config,
            route,
            work,
            &token,
            caller,
            scope,
            Some(last),
        )
        .await
    });
    Handled::Resigning {
        resign,
        request: Some(request),
        then,
        now,
    }
}

/// A request's token work in the cache's way ([`pipeline::lookup`], boxed).
type Resigning<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<pipeline::Served, ProxyError>> + Send + 'a>>;

pin_project_lite::pin_project! {
    /// [`try_handle`]'s future. `then` forwards a request with its output header from a
    /// start instant; `F` is what it returns.
    #[project = HandledProj]
    enum Handled<'a, C, F> {
        /// Answered without forwarding: refused.
        Done { result: Option<Result<Response<Body>, ProxyError>> },
        /// Waiting for the cache (or the pipeline): the request is forwarded after.
        Resigning {
            resign: Resigning<'a>,
            request: Option<Request<Incoming>>,
            then: C,
            now: tokio::time::Instant,
        },
        Forwarding { #[pin] forwarding: F },
    }
}

impl<'a, C, F> Future for Handled<'a, C, F>
where
    C: Fn(Request<Incoming>, Option<&HeaderValue>, tokio::time::Instant) -> F,
    F: Future<Output = Result<Response<Body>, ProxyError>>,
{
    type Output = Result<Response<Body>, ProxyError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project() {
                // Polled again after its answer: nothing more comes.
                HandledProj::Done { result } => {
                    return result.take().map_or(Poll::Pending, Poll::Ready);
                }
                HandledProj::Forwarding { forwarding } => return forwarding.poll(cx),
                HandledProj::Resigning {
                    resign,
                    request,
                    then,
                    now,
                } => match (std::task::ready!(resign.as_mut().poll(cx)), request.take()) {
                    (Ok(served), Some(request)) => {
                        // A miss verified and signed since `now`: the upstream's time
                        // starts after that.
                        let started = if served.fresh {
                            tokio::time::Instant::now()
                        } else {
                            *now
                        };
                        let token_header = Some(&served.resigned.header_value);
                        Handled::Forwarding {
                            forwarding: then(request, token_header, started),
                        }
                    }
                    (Err(err), _) => Handled::Done {
                        result: Some(Err(err)),
                    },
                    (Ok(_), None) => Handled::Done { result: None },
                },
            };
            self.set(next);
        }
    }
}
