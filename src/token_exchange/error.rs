//! The one table from token exchange errors to RFC 6749 §5.2 answers: status, a JSON body
//! `{"error", "error_description"}`, `Cache-Control: no-store`, and for a client that failed
//! to authenticate `WWW-Authenticate: Basic` (401). Errors about the subject token keep the
//! proxy's wording (the same verification ran) under RFC 8693 §2.2.2's codes.

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use crate::http::body::{self, Body};
use crate::proxy::ProxyError;
use crate::proxy::authorize::Denied;

/// Why a token exchange request got no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    #[error("only POST is allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("client authentication failed")]
    InvalidClient,
    #[error("grant_type must be urn:ietf:params:oauth:grant-type:token-exchange")]
    UnsupportedGrantType,
    /// `resource`/`audience` name no route, several, or one the client may not use.
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    InvalidScope(String),
    /// The subject token failed what the proxy checks, or a dependency was unavailable.
    #[error("subject_token: {0}")]
    Subject(ProxyError),
}

impl ExchangeError {
    /// The RFC 6749 / RFC 8693 error code.
    pub fn code(&self) -> &'static str {
        match self {
            ExchangeError::MethodNotAllowed | ExchangeError::InvalidRequest(_) => "invalid_request",
            ExchangeError::InvalidClient => "invalid_client",
            ExchangeError::UnsupportedGrantType => "unsupported_grant_type",
            ExchangeError::InvalidTarget(_) => "invalid_target",
            ExchangeError::InvalidScope(_) => "invalid_scope",
            ExchangeError::Subject(err) => match err {
                ProxyError::Forbidden(Denied::Scope { .. }) => "invalid_scope",
                ProxyError::IdpUnavailable
                | ProxyError::IntrospectionUnavailable
                | ProxyError::SigningUnavailable
                | ProxyError::NotReady => "temporarily_unavailable",
                ProxyError::SigningFailed => "server_error",
                _ => "invalid_request",
            },
        }
    }

    fn status(&self) -> StatusCode {
        match (self, self.code()) {
            (ExchangeError::MethodNotAllowed, _) => StatusCode::METHOD_NOT_ALLOWED,
            (ExchangeError::InvalidClient, _) => StatusCode::UNAUTHORIZED,
            (_, "temporarily_unavailable") => StatusCode::SERVICE_UNAVAILABLE,
            (_, "server_error") => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The log's text: more than the client is told for a subject token (what was compared).
    pub fn logged(&self) -> String {
        match self {
            ExchangeError::Subject(err) => format!("subject_token: {}", err.logged()),
            other => other.to_string(),
        }
    }
}

/// The answer for `error`.
pub fn response(error: &ExchangeError) -> Response<Body> {
    let status = error.status();
    let mut response = body::json(
        status,
        &json!({"error": error.code(), "error_description": error.to_string()}),
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    match error {
        ExchangeError::InvalidClient => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"resigner\""),
            );
        }
        ExchangeError::MethodNotAllowed => {
            headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        _ if status == StatusCode::SERVICE_UNAVAILABLE => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::verify::VerifyError;

    fn answer(error: ExchangeError) -> (u16, String, Option<String>) {
        let response = response(&error);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let www = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string());
        (response.status().as_u16(), error.code().to_string(), www)
    }

    #[test]
    fn every_error_has_its_status_and_code() {
        let basic = Some("Basic realm=\"resigner\"".to_string());
        for (error, status, code, www) in [
            (
                ExchangeError::MethodNotAllowed,
                405,
                "invalid_request",
                None,
            ),
            (
                ExchangeError::InvalidRequest("x".into()),
                400,
                "invalid_request",
                None,
            ),
            (ExchangeError::InvalidClient, 401, "invalid_client", basic),
            (
                ExchangeError::UnsupportedGrantType,
                400,
                "unsupported_grant_type",
                None,
            ),
            (
                ExchangeError::InvalidTarget("x".into()),
                400,
                "invalid_target",
                None,
            ),
            (
                ExchangeError::InvalidScope("x".into()),
                400,
                "invalid_scope",
                None,
            ),
            (
                ExchangeError::Subject(ProxyError::InvalidToken(VerifyError::Expired)),
                400,
                "invalid_request",
                None,
            ),
            (
                ExchangeError::Subject(ProxyError::Forbidden(Denied::Scope { scope: "a".into() })),
                400,
                "invalid_scope",
                None,
            ),
            (
                ExchangeError::Subject(ProxyError::IdpUnavailable),
                503,
                "temporarily_unavailable",
                None,
            ),
            (
                ExchangeError::Subject(ProxyError::IntrospectionUnavailable),
                503,
                "temporarily_unavailable",
                None,
            ),
            (
                ExchangeError::Subject(ProxyError::SigningFailed),
                500,
                "server_error",
                None,
            ),
        ] {
            let name = format!("{error:?}");
            assert_eq!(answer(error), (status, code.to_string(), www), "{name}");
        }
        let unavailable = response(&ExchangeError::Subject(ProxyError::SigningUnavailable));
        assert!(unavailable.headers().contains_key(header::RETRY_AFTER));
        let expired = ExchangeError::Subject(ProxyError::InvalidToken(VerifyError::Expired));
        assert_eq!(expired.to_string(), "subject_token: token expired");
    }
}
