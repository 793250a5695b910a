//! Forwarding to the legacy API: the request is rewritten (route prefix optionally stripped,
//! hop-by-hop headers and those named in `Connection` removed, the client's token and any
//! client copy of the output header removed, the re-signed header set, `X-Forwarded-*`
//! added) and sent over the pooled client; bodies stream both ways. The header vocabulary
//! (what is hop-by-hop, which transfer codings pass) is [`crate::http::headers`].

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::error::ProxyError;
use crate::app::AppState;
use crate::config::Route;
use crate::http::body::Body;
use crate::http::conn_info::ConnInfo;
use crate::http::headers::strip_hop_by_hop;
use crate::http::timeout_body::{BodyReadTimeout, RequestBodyFailed, TimeoutBody};
use crate::metrics::UpstreamError;

/// Sends `request` to the route's upstream with `token_header` as the output header (`None`:
/// a passthrough route, whose `Authorization` is left as the client sent it).
pub async fn forward(
    state: &AppState,
    route: &Route,
    request: Request<Incoming>,
    token_header: Option<&HeaderValue>,
    peer: SocketAddr,
) -> Result<Response<Body>, ProxyError> {
    let (mut parts, body) = request.into_parts();
    let conn = parts.extensions.remove::<ConnInfo>().unwrap_or_default();
    let host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    parts.uri = upstream_uri(route, &parts.uri)?;
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    headers.remove(header::HOST);
    if let Some(token_header) = token_header {
        headers.remove(header::AUTHORIZATION);
        headers.remove(&route.header);
        headers.insert(route.header.clone(), token_header.clone());
    }
    append_forwarded_for(headers, peer);
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(conn.scheme()),
    );
    if let Some(host) = host {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
    let body = TimeoutBody::new(body, conn.body_read_timeout);
    let upstreams = conn.upstreams.as_deref().unwrap_or(&state.upstream);
    let sent = upstreams.request(route.tls.as_deref(), Request::from_parts(parts, body));
    let started = std::time::Instant::now();
    let response = match tokio::time::timeout(route.timeout, sent).await {
        Err(_) => {
            state.metrics.record_upstream_error(UpstreamError::Timeout);
            return Err(ProxyError::UpstreamTimeout);
        }
        Ok(Err(err)) if BodyReadTimeout::is_cause_of(&err) => {
            tracing::info!(route = %route.prefix, error = %err, "request body read timed out");
            return Err(ProxyError::RequestBodyTimeout);
        }
        Ok(Err(err)) if RequestBodyFailed::is_cause_of(&err) => {
            tracing::info!(route = %route.prefix, error = %crate::http::client::error_chain(&err), "request body malformed");
            return Err(ProxyError::BadFraming(
                "the request body is malformed or incomplete",
            ));
        }
        Ok(Err(err)) => {
            let kind = if err.is_connect() {
                UpstreamError::Connect
            } else {
                UpstreamError::Other
            };
            state.metrics.record_upstream_error(kind);
            tracing::warn!(route = %route.prefix, error = %crate::http::client::error_chain(&err), "upstream request failed");
            return Err(ProxyError::UpstreamUnreachable);
        }
        Ok(Ok(response)) => {
            state.metrics.record_upstream(started.elapsed());
            response
        }
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, body.boxed()))
}

fn append_forwarded_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let name = HeaderName::from_static("x-forwarded-for");
    let ip = peer.ip().to_string();
    let value = match headers.get(&name).and_then(|v| v.to_str().ok()) {
        Some(previous) if !previous.trim().is_empty() => format!("{previous}, {ip}"),
        _ => ip,
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}

/// The upstream URI: upstream base path + request path (minus the route prefix when
/// `strip_prefix`) + the original query.
fn upstream_uri(route: &Route, original: &Uri) -> Result<Uri, ProxyError> {
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
    let path_and_query = PathAndQuery::try_from(target)
        .map_err(|_| ProxyError::BadRequest("request path cannot be forwarded"))?;
    Uri::builder()
        .scheme(route.upstream.scheme.clone())
        .authority(route.upstream.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| ProxyError::BadRequest("request path cannot be forwarded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_appends() {
        let mut headers = HeaderMap::new();
        append_forwarded_for(&mut headers, "10.0.0.1:5".parse().unwrap());
        append_forwarded_for(&mut headers, "[::1]:5".parse().unwrap());
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, ::1");
    }
}
