//! The KMS endpoint of one Transit key ([`Endpoint`]): the key's `keys` and `sign` URIs built
//! from checked address, mount and key names, and one API call with the token, bounded by
//! the timeout and retried on connection failures and 5xx.
//!
//! May use: [`crate::http::client`], [`crate::http::tls`], `super::settings`,
//! `super::error`, `super::wire`.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};

use super::error::TransitError;
use super::settings::{TransitSettings, TransitToken};
use super::wire;
use crate::http::client::{KmsClient, error_chain, kms_client};
use crate::http::tls::ClientTls;

/// Attempts per call when the KMS cannot be reached or answers 5xx.
const ATTEMPTS: u32 = 3;
/// Pause before the first retry; doubled before each further one.
const BACKOFF: Duration = Duration::from_millis(20);
/// Largest answer read from the KMS (a key with many versions stays far below).
const MAX_ANSWER: usize = 256 * 1024;

/// The KMS endpoint of one key: where to call and with which token.
pub(super) struct Endpoint {
    pub(super) address: String,
    pub(super) keys_uri: Uri,
    pub(super) sign_uri: Uri,
    token: TransitToken,
    timeout: Duration,
    tls: Option<ClientTls>,
    client: KmsClient,
}

impl Endpoint {
    pub(super) fn new(settings: &TransitSettings) -> Result<Self, TransitError> {
        let address = base_address(&settings.address)?;
        let mount = segment(settings.mount.trim_matches('/'), true)?;
        let key = segment(&settings.key, false)?;
        let uri = |verb: &str| -> Result<Uri, TransitError> {
            format!("{address}/v1/{mount}/{verb}/{key}")
                .parse()
                .map_err(|_| TransitError::Address(settings.address.clone()))
        };
        Ok(Endpoint {
            keys_uri: uri("keys")?,
            sign_uri: uri("sign")?,
            token: settings.token.clone(),
            timeout: settings.timeout,
            client: kms_client(settings.timeout, settings.tls.as_ref()),
            tls: settings.tls.clone(),
            address,
        })
    }

    /// A new, empty connection pool (after a call on a runtime that has since ended).
    pub(super) fn renew_pool(&mut self) {
        self.client = kms_client(self.timeout, self.tls.as_ref());
    }

    /// One API call within `timeout`, retried on connection failures and 5xx.
    pub(super) async fn call(
        &self,
        method: Method,
        uri: &Uri,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, TransitError> {
        let body = Bytes::from(body.unwrap_or_default());
        let attempts = async {
            let mut pause = BACKOFF;
            let mut attempt = 1;
            loop {
                match self.call_once(method.clone(), uri, body.clone()).await {
                    Err(err) if err.retryable() && attempt < ATTEMPTS => {
                        tracing::debug!(error = %err, attempt, "retrying a transit call");
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        };
        tokio::time::timeout(self.timeout, attempts)
            .await
            .unwrap_or(Err(TransitError::Timeout(self.timeout)))
    }

    async fn call_once(
        &self,
        method: Method,
        uri: &Uri,
        body: Bytes,
    ) -> Result<Bytes, TransitError> {
        let has_body = !body.is_empty();
        let mut request = Request::builder()
            .method(method)
            .uri(uri.clone())
            .header("X-Vault-Token", self.token.0.clone())
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("resigner/", env!("CARGO_PKG_VERSION")),
            );
        if has_body {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body))
            .map_err(|_| TransitError::Address(self.address.clone()))?;
        let connect = |reason: String| TransitError::Connect {
            address: self.address.clone(),
            reason,
        };
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| connect(error_chain(&e)))?;
        let status = response.status();
        let answer = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| connect(format!("reading the answer: {e}")))?
            .to_bytes();
        match status {
            // 204: a key created (older Vault versions answer a create with no body).
            StatusCode::OK | StatusCode::NO_CONTENT => Ok(answer),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(TransitError::Denied {
                status,
                errors: wire::errors(&answer),
            }),
            StatusCode::NOT_FOUND => Err(TransitError::NotFound(uri.path().to_string())),
            _ => Err(TransitError::Status {
                status,
                errors: wire::errors(&answer),
            }),
        }
    }
}

/// `scheme://authority` of a configured address (a trailing `/` is allowed).
pub(super) fn base_address(address: &str) -> Result<String, TransitError> {
    let bad = || TransitError::Address(address.to_string());
    let uri: Uri = address.parse().map_err(|_| bad())?;
    let scheme = uri.scheme_str().filter(|s| *s == "http" || *s == "https");
    match (scheme, uri.authority(), uri.path(), uri.query()) {
        (Some(scheme), Some(authority), "" | "/", None) => Ok(format!("{scheme}://{authority}")),
        _ => Err(bad()),
    }
}

/// A mount (may nest: `a/b`) or key name: letters, digits, `-`, `_`, `.`, never `..`.
pub(super) fn segment(name: &str, nested: bool) -> Result<&str, TransitError> {
    let ok = !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        && (nested || !name.contains('/'));
    if ok {
        Ok(name)
    } else {
        Err(TransitError::Name(name.to_string()))
    }
}
