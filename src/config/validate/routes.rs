//! `[[routes]]`: prefix (unique, from `/`), upstream URL, mode, audience, output header
//! (never hop-by-hop or `Host`), timeout, outbound TLS and the IdPs it accepts; the claim mapping is checked in
//! [`super::claims`], the scopes and claim rules in [`super::authorization`].

use std::collections::HashSet;
use std::path::Path;

use http::header::HeaderName;
use http::uri::Scheme;

use super::{authorization, claims, idp, transport};
use crate::config::file;
use crate::config::problems::Problems;
use crate::config::runtime::{IdpSettings, Route, RouteMode, UpstreamSettings, UpstreamTarget};

pub(super) fn routes(
    raw: &[file::RouteSection],
    upstream: &UpstreamSettings,
    idps: &[IdpSettings],
    base: &Path,
    p: &mut Problems,
) -> Vec<Route> {
    let mut seen = HashSet::new();
    let mut routes = Vec::new();
    for (index, route) in raw.iter().enumerate() {
        let field = format!("routes[{index}]");
        if !route.prefix.starts_with('/') {
            p.push(format!("{field}.prefix"), "must start with '/'");
        } else if !seen.insert(route.prefix.trim_end_matches('/').to_string()) {
            p.push(
                format!("{field}.prefix"),
                format!("{:?} is used by another route", route.prefix),
            );
        }
        let target = p
            .http_url(&format!("{field}.upstream"), &route.upstream)
            .and_then(|uri| {
                let parts = uri.into_parts();
                if parts
                    .path_and_query
                    .as_ref()
                    .is_some_and(|pq| pq.query().is_some())
                {
                    p.push(format!("{field}.upstream"), "must not have a query string");
                    return None;
                }
                let (scheme, authority) = (parts.scheme?, parts.authority?);
                Some(UpstreamTarget {
                    host: host_header(&scheme, &authority)?,
                    scheme,
                    authority,
                    base_path: parts
                        .path_and_query
                        .map(|pq| pq.path().trim_end_matches('/').to_string())
                        .unwrap_or_default(),
                })
            });
        let mode = match route.mode.as_deref().unwrap_or("resign") {
            "resign" => RouteMode::Resign,
            "verify" => RouteMode::Verify,
            "passthrough" => RouteMode::Passthrough,
            other => {
                p.push(
                    format!("{field}.mode"),
                    format!("{other:?}: must be \"resign\", \"verify\" or \"passthrough\""),
                );
                RouteMode::Resign
            }
        };
        let audience = route.audience.clone().unwrap_or_default();
        if mode == RouteMode::Passthrough {
            if route.audience.is_some()
                || route.claims.audience.is_some()
                || route.claims.copy.is_some()
                || !route.claims.rename.is_empty()
                || !route.claims.set.is_empty()
                || !route.claims.remove.is_empty()
            {
                p.push(
                    format!("{field}.mode"),
                    "a passthrough route does no token work: remove its audience and claims",
                );
            }
            if route.required_scopes.is_some()
                || !route.require.is_empty()
                || route.issuers.is_some()
            {
                p.push(
                    format!("{field}.mode"),
                    "a passthrough route checks no token: remove its issuers, required_scopes and require rules",
                );
            }
        } else if audience.trim().is_empty() {
            p.push(
                format!("{field}.audience"),
                "is required (the \"aud\" incoming tokens must contain) and must not be empty",
            );
        }
        let header = output_header(
            p,
            &field,
            route.header.as_deref().unwrap_or("Authorization"),
        );
        let timeout = p.duration(
            &format!("{field}.timeout"),
            &route.timeout,
            upstream.timeout,
        );
        let claims = claims::mapping(p, &field, &route.claims, &audience);
        let authorization = authorization::authorization(p, &field, route);
        let issuers = idp::resolve(p, &format!("{field}.issuers"), &route.issuers, idps);
        let https = target.as_ref().is_none_or(|t| t.scheme == Scheme::HTTPS);
        let tls = transport::route_tls(&field, route, https, base, p);
        if let (Some(upstream), Some(header)) = (target, header) {
            let bound_key = std::sync::Arc::new(crate::http::bound::UpstreamKey {
                scheme: upstream.scheme.clone(),
                authority: upstream.authority.clone(),
                tls: tls.as_ref().map(|tls| tls.id),
            });
            routes.push(Route {
                id: index as u32,
                bound_key,
                prefix: route.prefix.clone(),
                upstream,
                audience,
                mode,
                strip_prefix: route.strip_prefix,
                header,
                timeout,
                claims,
                authorization,
                issuers,
                tls,
            });
        }
    }
    routes
}

fn output_header(p: &mut Problems, field: &str, name: &str) -> Option<HeaderName> {
    let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
        p.push(
            format!("{field}.header"),
            format!("{name:?} is not a valid header name"),
        );
        return None;
    };
    if crate::http::headers::is_hop_by_hop(&header) || header == http::header::HOST {
        p.push(
            format!("{field}.header"),
            format!("{name:?} is a hop-by-hop or Host header"),
        );
        return None;
    }
    Some(header)
}

/// The `Host` an upstream is sent: its host, and the port when it is not the scheme's
/// default (as hyper-util's client made it); never the URL's userinfo.
fn host_header(
    scheme: &http::uri::Scheme,
    authority: &http::uri::Authority,
) -> Option<http::HeaderValue> {
    let default = if *scheme == http::uri::Scheme::HTTPS {
        443
    } else {
        80
    };
    let text = match authority.port_u16() {
        Some(port) if port != default => format!("{}:{port}", authority.host()),
        _ => authority.host().to_string(),
    };
    http::HeaderValue::try_from(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_header_has_no_userinfo_and_no_default_port() {
        for (url, host) in [
            ("http://legacy:8081/x", "legacy:8081"),
            ("http://legacy:80/", "legacy"),
            ("https://legacy:443", "legacy"),
            ("https://legacy:8443", "legacy:8443"),
            ("https://user:secret@legacy/", "legacy"),
            ("http://[::1]:9000", "[::1]:9000"),
        ] {
            let uri: http::Uri = url.parse().unwrap();
            let got = host_header(uri.scheme().unwrap(), uri.authority().unwrap()).unwrap();
            assert_eq!(got, host, "{url}");
        }
    }
}
