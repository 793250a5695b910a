//! The one table from management API errors to responses, in Auth0's error body shape:
//! `{"statusCode": 400, "error": "Bad Request", "message": "...", "errorCode": "..."}`.

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use crate::http::body::{self, Body};
use crate::keys::import::ImportError;

/// Everything that can stop a management API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("Invalid token.")]
    Unauthorized,
    #[error("Insufficient scope; expected all of: {}.", .0.join(", "))]
    Forbidden(Vec<&'static str>),
    #[error("{0}")]
    InvalidBody(#[from] ImportError),
    #[error("Payload validation error: Content-Type must be application/json.")]
    ContentType,
    #[error("Payload validation error: the body is larger than {0} bytes.")]
    TooLarge(usize),
    #[error("No custom signing keys found for this tenant. Upload custom signing keys first.")]
    NoKeys,
    #[error("Not Found")]
    NoEndpoint,
    #[error("Method not allowed; use GET, PUT or DELETE.")]
    Method,
    #[error("The key set has changed since it was read: If-Match does not match the current ETag.")]
    Precondition,
    #[error("The key set was changed concurrently; read it again and retry.")]
    Conflict,
    #[error("The identity provider keys are unavailable; cannot verify the token.")]
    IdpUnavailable,
    #[error("The key store could not be written: {0}")]
    Store(String),
    /// The store (the database) cannot be reached: nothing was written; retry later.
    #[error("The key store {0} is unavailable; the key set was not changed. Retry later.")]
    StoreUnavailable(String),
    #[error("Managed signing keys are not enabled: [signing.managed] is not configured.")]
    SigningNotManaged,
    #[error("Signing key {0} does not exist.")]
    UnknownSigningKey(String),
    /// A rotation or revocation the key states do not allow (too young, not previous, ...).
    #[error("{0}")]
    SigningConflict(String),
}

impl From<crate::app::rotation::RotationError> for AdminError {
    fn from(err: crate::app::rotation::RotationError) -> AdminError {
        use crate::app::rotation::RotationError as R;
        use crate::keys::managed::ManagedError as M;
        match err {
            R::NotManaged => AdminError::SigningNotManaged,
            R::NoSet(location) | R::StoreUnavailable(location) => {
                AdminError::StoreUnavailable(location)
            }
            R::Precondition => AdminError::Precondition,
            R::Conflict => AdminError::Conflict,
            R::Store(message) => AdminError::Store(message),
            R::Managed(M::UnknownKid(kid)) => AdminError::UnknownSigningKey(kid),
            R::Managed(
                err @ (M::TooYoung { .. } | M::NotPrevious { .. } | M::AlreadyRevoked(_)),
            ) => AdminError::SigningConflict(format!("The signing keys cannot change: {err}.")),
            R::Managed(other) => AdminError::Store(other.to_string()),
        }
    }
}

impl AdminError {
    /// Status and Auth0-style `errorCode`.
    fn classify(&self) -> (StatusCode, &'static str) {
        match self {
            AdminError::Unauthorized => (StatusCode::UNAUTHORIZED, "invalid_token"),
            AdminError::Forbidden(_) => (StatusCode::FORBIDDEN, "insufficient_scope"),
            AdminError::InvalidBody(err) => (StatusCode::BAD_REQUEST, err.code),
            AdminError::ContentType => (StatusCode::BAD_REQUEST, "invalid_body"),
            AdminError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AdminError::NoKeys => (StatusCode::NOT_FOUND, "inexistent_custom_signing_keys"),
            AdminError::NoEndpoint => (StatusCode::NOT_FOUND, "not_found"),
            AdminError::Method => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            AdminError::Precondition => (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
            AdminError::Conflict => (StatusCode::CONFLICT, "conflict"),
            AdminError::IdpUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            }
            AdminError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
            AdminError::StoreUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            }
            AdminError::SigningNotManaged => (StatusCode::NOT_FOUND, "managed_keys_not_configured"),
            AdminError::UnknownSigningKey(_) => (StatusCode::NOT_FOUND, "inexistent_signing_key"),
            AdminError::SigningConflict(_) => (StatusCode::CONFLICT, "conflict"),
        }
    }

    pub fn response(&self) -> Response<Body> {
        let (status, code) = self.classify();
        let mut response = body::json(
            status,
            &json!({
                "statusCode": status.as_u16(),
                "error": status.canonical_reason().unwrap_or(""),
                "message": self.to_string(),
                "errorCode": code,
            }),
        );
        let headers = response.headers_mut();
        match self {
            AdminError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"resigner-admin\", error=\"invalid_token\"",
                    ),
                );
            }
            AdminError::Forbidden(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"resigner-admin\", error=\"insufficient_scope\"",
                    ),
                );
            }
            AdminError::Method => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET, PUT, DELETE"));
            }
            AdminError::IdpUnavailable | AdminError::StoreUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: AdminError, status: u16, code: &str) {
        let response = error.response();
        assert_eq!(response.status().as_u16(), status, "{error:?}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let (_, expected_code) = error.classify();
        assert_eq!(expected_code, code);
    }

    #[test]
    fn every_error_maps_to_its_row() {
        check(AdminError::Unauthorized, 401, "invalid_token");
        check(
            AdminError::Forbidden(vec!["read:custom_signing_keys"]),
            403,
            "insufficient_scope",
        );
        check(
            AdminError::InvalidBody(ImportError {
                message: "m".into(),
                code: "invalid_body",
            }),
            400,
            "invalid_body",
        );
        check(
            AdminError::InvalidBody(ImportError {
                message: "keys[0] (kid \"a\"): the key is weak and is refused: ...".into(),
                code: "weak_key",
            }),
            400,
            "weak_key",
        );
        check(AdminError::ContentType, 400, "invalid_body");
        check(AdminError::TooLarge(65536), 413, "payload_too_large");
        check(AdminError::NoKeys, 404, "inexistent_custom_signing_keys");
        check(AdminError::NoEndpoint, 404, "not_found");
        check(AdminError::Method, 405, "method_not_allowed");
        check(AdminError::Precondition, 412, "precondition_failed");
        check(AdminError::Conflict, 409, "conflict");
        check(AdminError::IdpUnavailable, 503, "temporarily_unavailable");
        use crate::app::rotation::RotationError as R;
        use crate::keys::managed::ManagedError as M;
        let not_managed = AdminError::from(R::NotManaged);
        check(not_managed.clone(), 404, "managed_keys_not_configured");
        assert!(not_managed.to_string().contains("[signing.managed]"));
        check(
            AdminError::from(R::Managed(M::UnknownKid("k".into()))),
            404,
            "inexistent_signing_key",
        );
        for conflict in [
            R::Managed(M::TooYoung {
                kid: "k".into(),
                age_secs: 1,
                required_secs: 60,
            }),
            R::Managed(M::NotPrevious {
                kid: "k".into(),
                state: crate::keys::managed::KeyState::Current,
            }),
            R::Managed(M::AlreadyRevoked("k".into())),
            R::Conflict,
        ] {
            check(AdminError::from(conflict), 409, "conflict");
        }
        check(
            AdminError::from(R::Precondition),
            412,
            "precondition_failed",
        );
        for down in [R::StoreUnavailable("db".into()), R::NoSet("db".into())] {
            let error = AdminError::from(down);
            check(error.clone(), 503, "temporarily_unavailable");
            assert_eq!(error.response().headers()[header::RETRY_AFTER], "5");
        }
        check(AdminError::from(R::Store("x".into())), 500, "store_error");
        check(AdminError::from(R::Managed(M::NoNext)), 500, "store_error");
        check(AdminError::Store("disk full".into()), 500, "store_error");
        let down = AdminError::StoreUnavailable("postgres://app@db:5432/keys".into());
        check(down.clone(), 503, "temporarily_unavailable");
        assert_eq!(down.response().headers()[header::RETRY_AFTER], "5");
        assert_eq!(
            AdminError::Forbidden(vec![
                "create:custom_signing_keys",
                "update:custom_signing_keys"
            ])
            .to_string(),
            "Insufficient scope; expected all of: create:custom_signing_keys, update:custom_signing_keys."
        );
        assert!(
            AdminError::Unauthorized
                .response()
                .headers()
                .contains_key(header::WWW_AUTHENTICATE)
        );
        assert!(
            AdminError::Method
                .response()
                .headers()
                .contains_key(header::ALLOW)
        );
    }
}
