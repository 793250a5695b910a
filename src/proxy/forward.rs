//! Forwarding to the legacy API: the request is rewritten (route prefix optionally stripped,
//! hop-by-hop headers and those named in `Connection` removed, the client's token and any
//! client copy of the output header removed, the re-signed header set, `X-Forwarded-*`
//! added) and sent over the pooled client; bodies stream both ways. A request body in a
//! transfer coding other than plain `chunked` is refused first
//! ([`has_unsupported_transfer_coding`]).

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
use crate::http::timeout_body::{BodyReadTimeout, TimeoutBody};
use crate::metrics::UpstreamError;

/// RFC 9110 §7.6.1 connection-specific headers, plus the legacy `Proxy-Connection`.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Removes hop-by-hop headers and every header named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Whether the request's `Transfer-Encoding` is anything but a single `chunked`. hyper
/// accepts any list that ends in `chunked` (`gzip, chunked`) and removes only the chunked
/// framing; since `Transfer-Encoding` is hop-by-hop and dropped here, forwarding such a body
/// would hand the upstream gzip (or still-chunked) bytes labelled as plain, so it is refused
/// (RFC 9112 §6.1: a coding the proxy does not implement).
pub fn has_unsupported_transfer_coding(headers: &HeaderMap) -> bool {
    let mut codings = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty());
    match (codings.next(), codings.next()) {
        (None, _) => false,
        (Some(only), None) => !only.eq_ignore_ascii_case(b"chunked"),
        (Some(_), Some(_)) => true,
    }
}

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
    fn connection_named_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret, Authorization"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut headers);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn only_a_single_chunked_coding_is_supported() {
        let cases: [(&str, &[&str], bool); 7] = [
            ("none", &[], false),
            ("chunked", &["chunked"], false),
            ("upper case", &["Chunked"], false),
            ("gzip, chunked", &["gzip, chunked"], true),
            ("two lines", &["gzip", "chunked"], true),
            ("chunked twice", &["chunked, chunked"], true),
            ("identity", &["identity"], true),
        ];
        for (name, values, refused) in cases {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(header::TRANSFER_ENCODING, HeaderValue::from_static(value));
            }
            assert_eq!(has_unsupported_transfer_coding(&headers), refused, "{name}");
        }
    }

    #[test]
    fn forwarded_for_appends() {
        let mut headers = HeaderMap::new();
        append_forwarded_for(&mut headers, "10.0.0.1:5".parse().unwrap());
        append_forwarded_for(&mut headers, "[::1]:5".parse().unwrap());
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, ::1");
    }
}
