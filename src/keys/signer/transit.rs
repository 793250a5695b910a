//! The Vault / OpenBao Transit backend (`transit = { ... }`): resigner never sees the private
//! half. At connect the public key of the pinned version (default: the newest at that moment)
//! is read with `GET /v1/{mount}/keys/{key}` and becomes the key's JWK; every signature is a
//! `POST /v1/{mount}/sign/{key}` for that version only, so a version rotated in inside the KMS
//! is never used until a reload reads it (and the signing guard then holds it back until its
//! public half is published). Each signature is checked against the pinned public key before
//! use, so key material replaced under the same name and version is never used either.
//!
//! Calls go through the crate's outbound client ([`crate::http::client::kms_client`]), each
//! signature bounded by `timeout` (retries included). Connection failures and 5xx answers are
//! retried a few times within it (signing has no side effect); a [`circuit::Circuit`] fails
//! fast while the KMS is down. The token is sent as a sensitive header and never printed:
//! [`TransitToken`]'s `Debug` shows no secret. [`connect`] is the blocking entry the
//! spec-to-signer step uses (start, reload, CLI); the proxy awaits [`TransitKey::sign`].
//!
//! May use: [`crate::http::client`], [`crate::http::tls`], [`crate::keys::jwk`],
//! [`crate::jose`], [`super`] (the spec and error types).

pub mod circuit;
pub mod wire;

use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::signature::ParsedPublicKey;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};

use super::{SignerError, TransitSpec};
use crate::http::client::{KmsClient, error_chain, kms_client};
use crate::http::tls::ClientTls;
use crate::jose::alg::Alg;
use crate::keys::jwk::KeyMaterial;
use circuit::{Circuit, CircuitSettings, CircuitState};
use wire::WireError;
/// Attempts per call when the KMS cannot be reached or answers 5xx.
const ATTEMPTS: u32 = 3;
/// Pause before the first retry; doubled before each further one.
const BACKOFF: Duration = Duration::from_millis(20);
/// Largest answer read from the KMS (a key with many versions stays far below).
const MAX_ANSWER: usize = 256 * 1024;

/// The Vault token, held so it cannot be printed by accident.
#[derive(Clone)]
pub struct TransitToken(HeaderValue);

impl std::fmt::Debug for TransitToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransitToken(<redacted>)")
    }
}

impl TransitToken {
    /// A token given as text (surrounding whitespace, e.g. a file's newline, is dropped).
    pub fn new(text: &str) -> Result<Self, TransitError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TransitError::Token("the token is empty".into()));
        }
        let mut value = HeaderValue::from_str(text).map_err(|_| {
            TransitError::Token("the token has characters a header cannot carry".into())
        })?;
        value.set_sensitive(true);
        Ok(TransitToken(value))
    }

    /// The token in the file at `path` (`token_file`).
    pub fn from_file(path: &std::path::Path) -> Result<Self, TransitError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TransitError::Token(format!("cannot read {}: {e}", path.display())))?;
        Self::new(&text)
    }

    /// The token in environment variable `name` (`token_env`).
    pub fn from_env(name: &str) -> Result<Self, TransitError> {
        let text = std::env::var(name)
            .map_err(|_| TransitError::Token(format!("environment variable {name} is not set")))?;
        Self::new(&text)
    }
}

/// Where the key lives and how to reach it: the validated `transit = { ... }` of a key.
#[derive(Debug, Clone)]
pub struct TransitSettings {
    /// `http://host:port` or `https://...` (no path).
    pub address: String,
    /// The Transit engine's mount path, e.g. `transit`.
    pub mount: String,
    /// The key's name in the engine.
    pub key: String,
    pub token: TransitToken,
    /// Trust for an https address (`ca_file`); `None`: the webpki roots.
    pub tls: Option<ClientTls>,
    /// Bound on one call, retries included (and on each connection attempt).
    pub timeout: Duration,
    /// The key version to sign with; `None`: the newest at connect.
    pub key_version: Option<u32>,
    pub circuit: CircuitSettings,
}

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
    fn availability(&self) -> Option<bool> {
        match self {
            TransitError::Connect { .. } | TransitError::Timeout(_) => Some(false),
            TransitError::Status { status, .. } if status.is_server_error() => Some(false),
            _ => None,
        }
    }

    fn retryable(&self) -> bool {
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

impl TransitSettings {
    /// The settings a validated spec describes: the token read from its file or variable,
    /// the CA file loaded; the circuit opens after 3 failures for 5 s.
    pub fn from_spec(spec: &TransitSpec) -> Result<Self, TransitError> {
        let token = TransitToken::new(&spec.token.read().map_err(TransitError::Token)?)?;
        let tls = spec
            .ca_file
            .as_deref()
            .map(|path| ClientTls::load(Some(path), None))
            .transpose()
            .map_err(|e| TransitError::Address(format!("{} (ca_file: {e})", spec.address)))?;
        let key_version = spec
            .key_version
            .map(|v| u32::try_from(v).map_err(|_| TransitError::Version(v)))
            .transpose()?;
        Ok(TransitSettings {
            address: spec.address.clone(),
            mount: spec.mount.clone(),
            key: spec.key.clone(),
            token,
            tls,
            timeout: spec.timeout,
            key_version,
            circuit: CircuitSettings::default(),
        })
    }
}

/// Connects `spec` for `alg`, blocking the caller (at most `timeout`): the key and the public
/// half of its pinned version. Runs on a thread of its own, so it works inside and outside a
/// runtime.
pub fn connect(spec: &TransitSpec, alg: Alg) -> Result<(TransitKey, KeyMaterial), SignerError> {
    let settings = TransitSettings::from_spec(spec)?;
    let (mut key, material) = blocking(TransitKey::connect(settings, alg))??;
    // The pooled connection belongs to the finished runtime: start the pool afresh.
    key.endpoint.renew_pool();
    tracing::info!(address = %key.endpoint.address, key = %spec.key, version = key.version, latest = key.latest_at_connect, alg = alg.name(), "transit key connected");
    Ok((key, material))
}

/// Runs `future` to completion on a current-thread runtime on a new thread.
fn blocking<T: Send>(
    future: impl std::future::Future<Output = T> + Send,
) -> Result<T, SignerError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(future))
                    .map_err(|e| SignerError::Failed(format!("transit: no runtime: {e}")))
            })
            .join()
            .unwrap_or_else(|_| Err(SignerError::Failed("transit: the call panicked".into())))
    })
}

/// A key's backend health, for `/admin/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitHealth {
    pub circuit: CircuitState,
    /// The version every signature uses.
    pub version: u32,
    /// The newest version the KMS reported at connect.
    pub latest_at_connect: u32,
    /// The last failure's text, cleared by a success.
    pub last_error: Option<String>,
}

/// The KMS endpoint of one key: where to call and with which token.
struct Endpoint {
    address: String,
    keys_uri: Uri,
    sign_uri: Uri,
    token: TransitToken,
    timeout: Duration,
    tls: Option<ClientTls>,
    client: KmsClient,
}

/// A connected Transit key: the endpoint, the pinned version and its public key.
pub struct TransitKey {
    alg: Alg,
    parsed: ParsedPublicKey,
    version: u32,
    latest_at_connect: u32,
    endpoint: Endpoint,
    circuit: Circuit,
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for TransitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitKey")
            .field("alg", &self.alg)
            .field("sign_uri", &self.endpoint.sign_uri)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl TransitKey {
    /// Reads the key's public half (pinned version, default the newest) and checks its type
    /// against `alg`.
    pub async fn connect(
        settings: TransitSettings,
        alg: Alg,
    ) -> Result<(Self, KeyMaterial), TransitError> {
        let endpoint = Endpoint::new(&settings)?;
        let answer = endpoint.call(Method::GET, &endpoint.keys_uri, None).await?;
        let info = wire::key_info(&answer, alg, settings.key_version)?;
        let parsed = info.material.parse_for(alg).map_err(|e| {
            TransitError::Invalid(WireError::PublicKey(info.version, e.to_string()))
        })?;
        let key = TransitKey {
            alg,
            parsed,
            version: info.version,
            latest_at_connect: info.latest,
            endpoint,
            circuit: Circuit::new(settings.circuit),
            last_error: Mutex::new(None),
        };
        Ok((key, info.material))
    }

    /// The version every signature uses.
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn status(&self) -> TransitHealth {
        TransitHealth {
            circuit: self.circuit.state(),
            version: self.version,
            latest_at_connect: self.latest_at_connect,
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    /// `None` while the last call worked and the circuit is closed; else why not.
    pub fn health(&self) -> Option<String> {
        let status = self.status();
        match (status.circuit, status.last_error) {
            (CircuitState::Closed, None) => None,
            (CircuitState::Closed, Some(error)) => Some(error),
            (circuit, error) => Some(format!(
                "circuit {}: {}",
                circuit.name(),
                error.unwrap_or_else(|| "the KMS is failing".into())
            )),
        }
    }

    /// The raw JWS signature of `message` by the pinned version, checked before it is
    /// returned. Fails fast while the circuit is open.
    pub async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TransitError> {
        let result = if self.circuit.admit() {
            let result = self.sign_checked(message).await;
            let available = match &result {
                Ok(_) => Some(true),
                Err(err) => err.availability(),
            };
            self.circuit.record(available);
            result
        } else {
            Err(TransitError::CircuitOpen)
        };
        match &result {
            Ok(_) => {
                if let Ok(mut last) = self.last_error.lock() {
                    *last = None;
                }
            }
            Err(TransitError::CircuitOpen) => {}
            Err(err) => {
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(err.to_string());
                }
            }
        }
        result
    }

    /// [`TransitKey::sign`] for callers without a runtime (CLI commands).
    pub fn sign_blocking(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(blocking(self.sign(message))??)
    }

    async fn sign_checked(&self, message: &[u8]) -> Result<Vec<u8>, TransitError> {
        let body = wire::sign_body(self.alg, self.version, message);
        let endpoint = &self.endpoint;
        let answer = endpoint
            .call(Method::POST, &endpoint.sign_uri, Some(body))
            .await?;
        let signature = wire::signature(&answer, self.version)?;
        self.parsed
            .verify_sig(message, &signature)
            .map_err(|_| TransitError::Mismatch(self.version))?;
        Ok(signature)
    }
}

impl Endpoint {
    fn new(settings: &TransitSettings) -> Result<Self, TransitError> {
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
    fn renew_pool(&mut self) {
        self.client = kms_client(self.timeout, self.tls.as_ref());
    }

    /// One API call within `timeout`, retried on connection failures and 5xx.
    async fn call(
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
            StatusCode::OK => Ok(answer),
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
fn base_address(address: &str) -> Result<String, TransitError> {
    let bad = || TransitError::Address(address.to_string());
    let uri: Uri = address.parse().map_err(|_| bad())?;
    let scheme = uri.scheme_str().filter(|s| *s == "http" || *s == "https");
    match (scheme, uri.authority(), uri.path(), uri.query()) {
        (Some(scheme), Some(authority), "" | "/", None) => Ok(format!("{scheme}://{authority}")),
        _ => Err(bad()),
    }
}

/// A mount (may nest: `a/b`) or key name: letters, digits, `-`, `_`, `.`, never `..`.
fn segment(name: &str, nested: bool) -> Result<&str, TransitError> {
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

#[cfg(test)]
mod tests;
