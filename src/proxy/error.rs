//! The one table from proxy errors to HTTP responses: status, RFC 6750 `WWW-Authenticate`
//! challenge, `Retry-After`, and a JSON body `{"error", "error_description"}` (plus `scope`
//! when a required scope is missing: the challenge's `scope` attribute, RFC 6750 §3).

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use super::authorize::Denied;
use super::verify::VerifyError;
use crate::http::body::{self, Body};

/// Everything that can stop a proxied request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("no route for this path")]
    NoRoute,
    #[error("no bearer token in the Authorization header")]
    MissingToken,
    #[error("{0}")]
    BadRequest(&'static str),
    /// The request's framing is broken: answered with `Connection: close`.
    #[error("{0}")]
    BadFraming(&'static str),
    #[error("{0}")]
    InvalidToken(#[from] VerifyError),
    /// A valid token without what the route's `required_scopes` or `require` rules ask.
    #[error("{0}")]
    Forbidden(#[from] Denied),
    #[error("identity provider keys are unavailable")]
    IdpUnavailable,
    /// An opaque token whose IdP's introspection endpoint gave no usable answer.
    #[error("token introspection is unavailable")]
    IntrospectionUnavailable,
    #[error("signing key unavailable")]
    SigningUnavailable,
    /// No custom key set is held yet (the key store was unreachable at start and there was no
    /// local copy): the JWKS is not published rather than published without its keys.
    #[error("not ready: no key set loaded yet (the key store is unreachable)")]
    NotReady,
    #[error("could not sign the token")]
    SigningFailed,
    #[error("upstream unreachable")]
    UpstreamUnreachable,
    #[error("upstream did not answer in time")]
    UpstreamTimeout,
    #[error("the request body did not arrive in time")]
    RequestBodyTimeout,
}

impl ProxyError {
    /// A short stable label for metrics and logs; token errors use their [`VerifyError`]'s.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyError::NoRoute => "no_route",
            ProxyError::MissingToken => "missing_token",
            ProxyError::BadRequest(_) => "bad_request",
            ProxyError::BadFraming(_) => "bad_framing",
            ProxyError::InvalidToken(err) => err.reason(),
            ProxyError::Forbidden(Denied::Scope { .. }) => "insufficient_scope",
            ProxyError::Forbidden(Denied::Rule { .. }) => "claim_rule",
            ProxyError::IdpUnavailable => "idp_unavailable",
            ProxyError::IntrospectionUnavailable => "introspection_unavailable",
            ProxyError::SigningUnavailable => "signing_unavailable",
            ProxyError::NotReady => "not_ready",
            ProxyError::SigningFailed => "signing_failed",
            ProxyError::UpstreamUnreachable => "upstream_unreachable",
            ProxyError::UpstreamTimeout => "upstream_timeout",
            ProxyError::RequestBodyTimeout => "request_body_timeout",
        }
    }

    /// The text for the log: the error and, when a token member was compared with a setting,
    /// what came and what was expected (`token type not accepted: typ "JWT", expected
    /// "at+jwt"`). More than the client is told; never the token.
    pub fn logged(&self) -> String {
        match self {
            ProxyError::InvalidToken(err) => err.logged(),
            other => other.to_string(),
        }
    }

    /// Whether the request was forwarded and the upstream failed (counted as an upstream
    /// error, not a verification failure).
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            ProxyError::UpstreamUnreachable | ProxyError::UpstreamTimeout
        )
    }
}

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "5";

/// Status, RFC 6750 error code (`None`: challenge without error, or no challenge at all) and
/// whether a challenge is sent.
fn classify(error: &ProxyError) -> (StatusCode, Option<&'static str>, bool) {
    match error {
        ProxyError::NoRoute => (StatusCode::NOT_FOUND, Some("not_found"), false),
        // RFC 6750 §3.1: a request without credentials gets a challenge without error code.
        ProxyError::MissingToken => (StatusCode::UNAUTHORIZED, None, true),
        ProxyError::BadRequest(_) | ProxyError::BadFraming(_) => {
            (StatusCode::BAD_REQUEST, Some("invalid_request"), true)
        }
        ProxyError::InvalidToken(_) => (StatusCode::UNAUTHORIZED, Some("invalid_token"), true),
        // RFC 6750 §3.1: a valid token without the access the resource needs.
        ProxyError::Forbidden(_) => (StatusCode::FORBIDDEN, Some("insufficient_scope"), true),
        ProxyError::IdpUnavailable
        | ProxyError::IntrospectionUnavailable
        | ProxyError::SigningUnavailable
        | ProxyError::NotReady => (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("temporarily_unavailable"),
            false,
        ),
        ProxyError::SigningFailed => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("server_error"),
            false,
        ),
        ProxyError::UpstreamUnreachable => (StatusCode::BAD_GATEWAY, Some("bad_gateway"), false),
        ProxyError::UpstreamTimeout => {
            (StatusCode::GATEWAY_TIMEOUT, Some("gateway_timeout"), false)
        }
        ProxyError::RequestBodyTimeout => {
            (StatusCode::REQUEST_TIMEOUT, Some("request_timeout"), false)
        }
    }
}

/// Builds the response for `error`.
pub fn response(error: &ProxyError) -> Response<Body> {
    let (status, code, challenge) = classify(error);
    let description = error.to_string();
    let scope = match error {
        ProxyError::Forbidden(Denied::Scope { scope }) => Some(scope.as_str()),
        _ => None,
    };
    let mut body = json!({
        "error": code.unwrap_or("invalid_request"),
        "error_description": description,
    });
    if let Some(scope) = scope {
        body["scope"] = scope.into();
    }
    let mut response = body::json(status, &body);
    let headers = response.headers_mut();
    if challenge {
        let mut value = match code {
            None => "Bearer realm=\"resigner\"".to_string(),
            Some(code) => format!(
                "Bearer realm=\"resigner\", error=\"{code}\", error_description=\"{}\"",
                ascii(&description)
            ),
        };
        if let Some(scope) = scope {
            // Scope tokens are checked at load: no space, '"' or '\\' inside one.
            value.push_str(&format!(", scope=\"{scope}\""));
        }
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    if let ProxyError::BadFraming(_) = error {
        crate::http::framing::mark_close(&mut response);
    }
    response
}

/// RFC 6750 §3: `error_description` is printable ASCII without `"` and `\`.
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '\''
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: ProxyError, status: u16, challenge: Option<&str>, retry: bool) {
        let response = response(&error);
        assert_eq!(response.status().as_u16(), status, "{error:?}");
        let www = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string());
        match challenge {
            None => assert!(www.is_none(), "{error:?}: {www:?}"),
            Some(expected) => assert!(
                www.as_deref().is_some_and(|w| w.starts_with(expected)),
                "{error:?}: {www:?}"
            ),
        }
        assert_eq!(
            response.headers().contains_key(header::RETRY_AFTER),
            retry,
            "{error:?}"
        );
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn every_error_maps_to_its_row() {
        check(ProxyError::NoRoute, 404, None, false);
        check(
            ProxyError::MissingToken,
            401,
            Some("Bearer realm=\"resigner\""),
            false,
        );
        let www = response(&ProxyError::MissingToken).headers()[header::WWW_AUTHENTICATE].clone();
        assert_eq!(
            www, "Bearer realm=\"resigner\"",
            "no error code without credentials"
        );
        check(
            ProxyError::BadRequest("two Authorization headers"),
            400,
            Some("Bearer realm=\"resigner\", error=\"invalid_request\""),
            false,
        );
        check(
            ProxyError::InvalidToken(VerifyError::Expired),
            401,
            Some(
                "Bearer realm=\"resigner\", error=\"invalid_token\", error_description=\"token expired\"",
            ),
            false,
        );
        check(
            ProxyError::Forbidden(Denied::Scope {
                scope: "read:orders write:orders".into(),
            }),
            403,
            Some("Bearer realm=\"resigner\", error=\"insufficient_scope\""),
            false,
        );
        check(
            ProxyError::Forbidden(Denied::Rule {
                index: 1,
                claim: "org_id".into(),
            }),
            403,
            Some("Bearer realm=\"resigner\", error=\"insufficient_scope\""),
            false,
        );
        check(ProxyError::IdpUnavailable, 503, None, true);
        check(ProxyError::IntrospectionUnavailable, 503, None, true);
        check(
            ProxyError::InvalidToken(VerifyError::Inactive),
            401,
            Some(
                "Bearer realm=\"resigner\", error=\"invalid_token\", error_description=\"token is not active\"",
            ),
            false,
        );
        check(ProxyError::SigningUnavailable, 503, None, true);
        check(ProxyError::NotReady, 503, None, true);
        check(ProxyError::SigningFailed, 500, None, false);
        check(ProxyError::UpstreamUnreachable, 502, None, false);
        check(ProxyError::UpstreamTimeout, 504, None, false);
        check(ProxyError::RequestBodyTimeout, 408, None, false);
        let framing = response(&ProxyError::BadFraming("bad chunk"));
        assert_eq!(framing.status(), 400);
        assert_eq!(framing.headers()[header::CONNECTION], "close");
        let other = response(&ProxyError::BadRequest("x"));
        assert!(other.headers().get(header::CONNECTION).is_none());
    }

    #[test]
    fn reasons_are_short_stable_labels() {
        let errors = [
            ProxyError::NoRoute,
            ProxyError::MissingToken,
            ProxyError::BadRequest("x"),
            ProxyError::InvalidToken(VerifyError::Expired),
            ProxyError::InvalidToken(VerifyError::Duplicate("payload", "secret".into())),
            ProxyError::Forbidden(Denied::Scope { scope: "a".into() }),
            ProxyError::Forbidden(Denied::Rule {
                index: 0,
                claim: "org".into(),
            }),
            ProxyError::IdpUnavailable,
            ProxyError::IntrospectionUnavailable,
            ProxyError::InvalidToken(VerifyError::Inactive),
            ProxyError::SigningUnavailable,
            ProxyError::NotReady,
            ProxyError::SigningFailed,
            ProxyError::UpstreamUnreachable,
            ProxyError::UpstreamTimeout,
            ProxyError::RequestBodyTimeout,
            ProxyError::BadFraming("x"),
        ];
        let reasons: Vec<&str> = errors.iter().map(ProxyError::reason).collect();
        assert_eq!(reasons[3], "expired");
        assert_eq!(reasons[4], "duplicate_member");
        for reason in &reasons {
            assert!(
                !reason.is_empty() && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{reason}"
            );
        }
        let unique: std::collections::HashSet<_> = reasons.iter().collect();
        assert_eq!(unique.len(), reasons.len());
        assert_eq!(
            errors.iter().filter(|e| e.is_upstream()).count(),
            2,
            "only the two upstream failures"
        );
    }

    #[test]
    fn the_log_names_what_came_and_the_client_is_told_no_more() {
        let mismatch = super::super::verify::Mismatch::new("typ", "at+jwt", Some("JWT"));
        let error = ProxyError::InvalidToken(VerifyError::Typ(mismatch));
        assert_eq!(
            error.logged(),
            r#"token type not accepted: typ "JWT", expected "at+jwt""#
        );
        assert_eq!(
            error.to_string(),
            "token type not accepted",
            "the error_description is unchanged"
        );
        assert_eq!(ProxyError::NoRoute.logged(), "no route for this path");
    }

    #[test]
    fn a_missing_scope_names_the_scopes_and_a_failed_rule_names_the_rule() {
        let scope = response(&ProxyError::Forbidden(Denied::Scope {
            scope: "read:orders write:orders".into(),
        }));
        assert_eq!(
            scope.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"resigner\", error=\"insufficient_scope\", \
             error_description=\"the token lacks a scope this route requires\", \
             scope=\"read:orders write:orders\""
        );
        let rule = response(&ProxyError::Forbidden(Denied::Rule {
            index: 2,
            claim: "org_id".into(),
        }));
        let www = rule.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert_eq!(
            www,
            "Bearer realm=\"resigner\", error=\"insufficient_scope\", \
             error_description=\"the token does not satisfy rule require[2] on claim org_id\""
        );
    }

    #[test]
    fn descriptions_are_quoted_safely() {
        let description = ascii("member \"a\\b\" é");
        assert_eq!(description, "member 'a'b' '");
        let response = response(&ProxyError::InvalidToken(VerifyError::Duplicate(
            "payload",
            "a\"b".into(),
        )));
        let www = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        let description = www
            .split("error_description=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"');
        assert!(
            description.starts_with("token payload repeats member '"),
            "{www}"
        );
        assert!(
            !description.contains('"') && !description.contains('\\'),
            "{www}"
        );
    }
}
