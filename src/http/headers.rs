//! HTTP header vocabulary a proxy must know, kept apart from forwarding so that config
//! validation (which refuses a hop-by-hop output header) and the request path share one
//! list: the RFC 9110 §7.6.1 hop-by-hop headers, their removal (with those named in
//! `Connection`), and the request transfer-coding precheck.
//!
//! May use: the `http` crate only; nothing of this crate.

use http::header::{self, HeaderMap, HeaderName};

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

/// Whether `name` is a hop-by-hop header (one a proxy never forwards).
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    // A match compiles to a switch on the length, then one comparison (#16: a scan of the
    // list compared every header of every request and response with all nine).
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Removes hop-by-hop headers and every header named in `Connection`. Costs one pass over
/// the names when there are none (a request, usually), and little more for a lone
/// `Connection: keep-alive` (a response, usually): no list is built unless `Connection`
/// names other headers or other hop-by-hop headers are present (#16).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let (mut connection, mut others) = (false, false);
    for name in headers.keys() {
        if name == header::CONNECTION {
            connection = true;
        } else if is_hop_by_hop(name) {
            others = true;
        }
    }
    if connection {
        // The common case, one `Connection: keep-alive` (or `close`) from the upstream,
        // names nothing else: removing it is all (#16).
        let mut values = headers.get_all(header::CONNECTION).iter();
        if let (Some(only), None) = (values.next(), values.next())
            && (only.as_bytes().eq_ignore_ascii_case(b"keep-alive")
                || only.as_bytes().eq_ignore_ascii_case(b"close"))
        {
            headers.remove(header::CONNECTION);
            connection = false;
        }
    }
    if connection {
        let mut named: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(header::CONNECTION) {
            let Ok(value) = value.to_str() else { continue };
            for token in value.split(',').map(str::trim) {
                // `close` and the hop-by-hop names themselves need no lookup of their own.
                if token.is_empty()
                    || token.eq_ignore_ascii_case("close")
                    || HOP_BY_HOP.iter().any(|h| token.eq_ignore_ascii_case(h))
                {
                    continue;
                }
                if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    named.push(name);
                }
            }
        }
        headers.remove(header::CONNECTION);
        for name in named {
            headers.remove(name);
        }
    }
    if others {
        let present: Vec<HeaderName> = headers
            .keys()
            .filter(|n| is_hop_by_hop(n))
            .cloned()
            .collect();
        for name in present {
            headers.remove(name);
        }
    }
}

/// Whether the request's `Transfer-Encoding` is anything but a single `chunked`. hyper
/// accepts any list that ends in `chunked` (`gzip, chunked`) and removes only the chunked
/// framing; since `Transfer-Encoding` is hop-by-hop and dropped when forwarding, such a body
/// would reach the upstream as gzip (or still-chunked) bytes labelled as plain, so the accept
/// loop refuses it and closes (RFC 9112 §6.1: a coding the proxy does not implement; see
/// [`crate::http::framing`]).
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

#[cfg(test)]
mod tests {
    use http::HeaderValue;

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
    fn a_lone_keep_alive_or_close_is_removed_with_the_other_hop_by_hop_headers() {
        for value in ["keep-alive", "Keep-Alive", "close"] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONNECTION, HeaderValue::from_static(value));
            headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
            headers.insert(header::TE, HeaderValue::from_static("trailers"));
            headers.insert("x-kept", HeaderValue::from_static("1"));
            strip_hop_by_hop(&mut headers);
            let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
            assert_eq!(names, ["x-kept"], "{value}");
        }
        // Two lines: the general path, which reads every name they give.
        let mut headers = HeaderMap::new();
        headers.append(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        headers.append(header::CONNECTION, HeaderValue::from_static("x-secret"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn each_hop_by_hop_header_alone_is_removed() {
        for name in HOP_BY_HOP {
            let mut headers = HeaderMap::new();
            headers.insert("x-kept", HeaderValue::from_static("1"));
            headers.insert(name, HeaderValue::from_static("x"));
            strip_hop_by_hop(&mut headers);
            let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
            assert_eq!(names, ["x-kept"], "{name}");
        }
        for name in HOP_BY_HOP {
            assert!(is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
        for name in [
            "x-kept",
            "host",
            "tea",
            "connections",
            "upgrade-insecure-requests",
        ] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
        let mut untouched = HeaderMap::new();
        untouched.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut untouched);
        assert_eq!(untouched.len(), 1);
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
}
