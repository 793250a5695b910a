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
//! [`create`] makes a new key in the engine (for managed signing keys, `keys::managed`).
//!
//! Split by concept: `settings` (the validated settings and the token), `error` (the error
//! type and its mapping onto [`SignerError`]), `endpoint` (the URIs and one API call with its
//! retries), [`wire`] (the JSON bodies), [`circuit`]; this file is the connected key.
//!
//! May use: its submodules, [`crate::keys::jwk`], [`crate::jose`], [`super`] (the spec and
//! error types).

pub mod circuit;
mod endpoint;
mod error;
mod settings;
pub mod wire;

use std::sync::Mutex;

use aws_lc_rs::signature::ParsedPublicKey;
use http::Method;

use super::{SignerError, TransitSpec};
use crate::jose::alg::Alg;
use crate::keys::jwk::KeyMaterial;
use circuit::{Circuit, CircuitState};
use endpoint::Endpoint;
pub use error::TransitError;
pub use settings::{TransitSettings, TransitToken};
use wire::WireError;

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

/// Creates key `spec.key` for `alg` in the engine (not exportable, no plaintext backup),
/// blocking the caller; refuses a name that exists (a managed key is never another's).
pub fn create(spec: &TransitSpec, alg: Alg) -> Result<(), SignerError> {
    let settings = TransitSettings::from_spec(spec)?;
    let endpoint = Endpoint::new(&settings)?;
    let body = serde_json::json!({
        "type": wire::key_types(alg)[0],
        "exportable": false,
        "allow_plaintext_backup": false,
    });
    let created = blocking(async {
        match endpoint.call(Method::GET, &endpoint.keys_uri, None).await {
            Ok(_) => Ok(false),
            Err(TransitError::NotFound(_)) => {
                let body = serde_json::to_vec(&body).unwrap_or_default();
                endpoint
                    .call(Method::POST, &endpoint.keys_uri, Some(body))
                    .await
                    .map(|_| true)
            }
            Err(err) => Err(err),
        }
    })??;
    if !created {
        return Err(SignerError::Refused(format!(
            "transit key {:?} exists already; refusing to take it over",
            spec.key
        )));
    }
    tracing::info!(address = %endpoint.address, key = %spec.key, alg = alg.name(), "transit key created");
    Ok(())
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

#[cfg(test)]
mod tests;
