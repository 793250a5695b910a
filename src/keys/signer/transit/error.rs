//! Why a Transit key could not be connected or could not sign ([`TransitError`]), its metric
//! label, what it says about the KMS being up (the circuit and the retries read it), and its
//! mapping onto the signer abstraction's [`SignerError`] kinds.
//!
//! May use: `super::super` (the error type), `super::wire`.

use std::time::Duration;

use http::StatusCode;

use super::super::SignerError;
use super::wire::WireError;

/// Why a Transit key could not be connected or could not sign. [`TransitError::kind`] is
/// the metric label.
#[derive(Debug, thiserror::Error)]
pub enum TransitError {
    #[error("transit address {0:?} is not an http:// or https:// URL without a path")]
    Address(String),
    #[error("transit mount or key name {0:?} is not a plain path segment")]
    Name(String),
    #[error("transit key_version {0} is out of range")]
    Version(u64),
    #[error("transit token: {0}")]
    Token(String),
    #[error("cannot reach the KMS at {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("the KMS did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the KMS answered {status}{}", if .errors.is_empty() { String::new() } else { format!(": {}", .errors) })]
    Status { status: StatusCode, errors: String },
    #[error("the KMS refused the token ({status}): {errors}")]
    Denied { status: StatusCode, errors: String },
    #[error("the KMS has no key {0:?} (or no such mount)")]
    NotFound(String),
    #[error("the KMS answer is unusable: {0}")]
    Invalid(#[from] WireError),
    #[error("the KMS signature does not verify with the pinned public key of version {0}")]
    Mismatch(u32),
    #[error("the KMS is failing; calls are refused for the circuit's cool-down")]
    CircuitOpen,
}

impl TransitError {
    /// A short stable label: `config`, `connect`, `timeout`, `status`, `denied`,
    /// `not_found`, `invalid`, `mismatch`, `circuit_open`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransitError::Address(_)
            | TransitError::Name(_)
            | TransitError::Version(_)
            | TransitError::Token(_) => "config",
            TransitError::Connect { .. } => "connect",
            TransitError::Timeout(_) => "timeout",
            TransitError::Status { .. } => "status",
            TransitError::Denied { .. } => "denied",
            TransitError::NotFound(_) => "not_found",
            TransitError::Invalid(_) => "invalid",
            TransitError::Mismatch(_) => "mismatch",
            TransitError::CircuitOpen => "circuit_open",
        }
    }

    /// What the failure says about the KMS being up: `Some(false)` down, `None` it
    /// answered (a refusal or a bad answer).
    pub(super) fn availability(&self) -> Option<bool> {
        match self {
            TransitError::Connect { .. } | TransitError::Timeout(_) => Some(false),
            TransitError::Status { status, .. } if status.is_server_error() => Some(false),
            _ => None,
        }
    }

    pub(super) fn retryable(&self) -> bool {
        self.availability() == Some(false) && !matches!(self, TransitError::Timeout(_))
    }
}

/// The abstraction's kinds: the KMS down or failing fast is `Unavailable`, no answer in
/// time `Timeout`, a refusal (token, missing key, other key material) `Refused` — all 503;
/// a malformed answer or a bad setting `Failed`.
impl From<TransitError> for SignerError {
    fn from(err: TransitError) -> Self {
        let text = format!("transit ({}): {err}", err.kind());
        match err {
            TransitError::Connect { .. } | TransitError::CircuitOpen => {
                SignerError::Unavailable(text)
            }
            TransitError::Status { status, .. } if status.is_server_error() => {
                SignerError::Unavailable(text)
            }
            TransitError::Timeout(_) => SignerError::Timeout(text),
            TransitError::Status { .. }
            | TransitError::Denied { .. }
            | TransitError::NotFound(_)
            | TransitError::Mismatch(_) => SignerError::Refused(text),
            TransitError::Address(_)
            | TransitError::Name(_)
            | TransitError::Version(_)
            | TransitError::Token(_)
            | TransitError::Invalid(_) => SignerError::Failed(text),
        }
    }
}
