//! The signer abstraction: a [`SigningKey`] is a kid, an algorithm, a public JWK and a
//! pre-encoded JWS header in front of one *backend* that makes the raw signature:
//!
//! | backend | where the private key is | how a signature is made ([`Placement`]) |
//! |---|---|---|
//! | [`memory`] (`path = ...`) | process memory (aws-lc-rs) | inline on the worker (ES, Ed) or on the signing threads (RSA) |
//! | [`pkcs11`] (`pkcs11 = {...}`) | an HSM, through a PKCS#11 module | on the signing threads (blocking calls, a pool of logged-in sessions) |
//! | [`transit`] (`transit = {...}`) | Vault / OpenBao | awaited on the worker (remote call, no thread held) |
//!
//! **From config to signers.** Configuration is plain data and starts nothing, so validation
//! (`config::validate::signing`) turns each `[[signing.keys]]` entry into a [`KeySpec`]: the
//! in-memory key is read there already (a local file, like a certificate), a backend key stays a
//! description ([`BackendSpec`]). The composition root (`service::start`), the reload path
//! (`reload`) and the commands that sign or publish call [`connect_all`], which opens what each
//! spec names (loads the PKCS#11 module, finds the key, reads its public half) and returns the
//! connected keys; `config::SigningSettings::attach` puts them into the config *before* it is
//! swapped in. A key that cannot be connected fails the start, or refuses the reload with the
//! reason while the running config (and its connected keys) stays.
//!
//! **The public half comes from the backend**, at every connect: the JWK published and checked
//! by the signing guard (`AppState::signing_status`) is what the HSM or KMS holds now, so a key
//! replaced inside the backend without publishing its new public half is never used.
//!
//! **Signing.** [`SigningKey::placement`] says where a signature may run; the proxy's sign stage
//! (`proxy::pipeline::Live::sign`) does one match on it. [`SigningKey::sign_compact`] is the
//! blocking form (memory, PKCS#11), [`SigningKey::sign_compact_async`] the awaited form
//! (remote backends); both go through the one dispatch, [`SigningKey::sign_raw`] /
//! [`SigningKey::sign_raw_async`]. The in-memory ES256 path is what it was before backends:
//! one `String` for the token, one `Vec` for the signature, no await.
//!
//! **Failures** are a [`SignerError`] with a kind (unavailable, timeout, refused, failed): the
//! proxy answers 503 `signing_unavailable` for the first three, and they are counted per
//! backend and kind (`resigner_signing_errors_total`). A backend recovers on its own (PKCS#11
//! drops a broken session and opens a new one on the next signature) without a restart.
//!
//! Adding a backend: a variant in [`BackendSpec`] and [`Backend`], an arm in [`connect`],
//! [`SigningKey::placement`], [`SigningKey::sign_raw_async`] (or `sign_raw`) and
//! [`SigningKey::health`].
//!
//! May use: `jose`, `keys::jwk`, `keys::pem`, `keys::weak`, `keys::x509`, and `http::client` /
//! `http::tls` (Transit). Private material never leaves a backend: `Debug` prints kid, alg and
//! backend only.

pub mod memory;
pub mod pkcs11;
pub mod transit;

use std::sync::Arc;

use serde_json::json;

use crate::jose::alg::{Alg, Curve};
use crate::jose::b64;
use crate::keys::jwk::{KeyMaterial, PublicJwk};
pub use memory::{MemoryKey, SigningKeyError};

/// Why a backend could not sign (or connect). Every kind but `Failed` is answered 503
/// `signing_unavailable`: the request may succeed later without any change on our side.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignerError {
    /// The backend cannot be reached or is not there (token removed, KMS down, circuit open).
    #[error("signing backend unavailable: {0}")]
    Unavailable(String),
    /// The backend did not answer in time.
    #[error("signing backend timed out: {0}")]
    Timeout(String),
    /// The backend answered and said no (PIN locked, permission denied, key disabled).
    #[error("signing backend refused: {0}")]
    Refused(String),
    /// Anything else: a bug, a malformed answer, an unsupported mechanism.
    #[error("signing failed: {0}")]
    Failed(String),
}

impl SignerError {
    /// A short stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            SignerError::Unavailable(_) => "unavailable",
            SignerError::Timeout(_) => "timeout",
            SignerError::Refused(_) => "refused",
            SignerError::Failed(_) => "failed",
        }
    }
}

/// Where a secret (PIN, token) is read from when a backend connects; never held in config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(std::path::PathBuf),
    Env(String),
}

impl SecretSource {
    /// Reads the secret (trailing newline trimmed).
    pub fn read(&self) -> Result<String, String> {
        match self {
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|err| format!("cannot read {}: {err}", path.display())),
            SecretSource::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
            }
        }
    }
}

/// `pkcs11 = { module, token_label, key_label, pin_file | pin_env }`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Spec {
    pub module: std::path::PathBuf,
    pub token_label: String,
    pub key_label: String,
    pub pin: SecretSource,
}

/// `transit = { address, mount, key, token_file | token_env, ca_file, key_version, timeout }`,
/// validated (the Transit backend connects it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitSpec {
    pub address: String,
    pub mount: String,
    pub key: String,
    pub token: SecretSource,
    pub ca_file: Option<std::path::PathBuf>,
    /// `None`: the latest version at connect time.
    pub key_version: Option<u64>,
    pub timeout: std::time::Duration,
}

/// What holds a key's private half, as the config describes it.
#[derive(Debug, Clone)]
pub enum BackendSpec {
    /// Read while validating (a local file): already a key.
    Memory(Arc<SigningKey>),
    Pkcs11(Pkcs11Spec),
    Transit(TransitSpec),
}

/// One `[[signing.keys]]` entry, validated: plain data until [`connect`]ed.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub kid: String,
    pub alg: Alg,
    pub backend: BackendSpec,
}

/// A connected backend.
pub enum Backend {
    Memory(MemoryKey),
    Pkcs11(Box<pkcs11::Pkcs11Key>),
    Transit(Box<transit::TransitKey>),
}

impl Backend {
    /// The name shown in `/admin/status` and used as the `backend` metric label.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Memory(_) => "memory",
            Backend::Pkcs11(_) => "pkcs11",
            Backend::Transit(_) => "transit",
        }
    }
}

/// Where a signature may run (see the table in the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Cheap and CPU-only (in-memory ES, Ed): on the async worker.
    Inline,
    /// Slow or blocking (in-memory RSA, PKCS#11): on the signing threads.
    Threads,
    /// A remote call: awaited, no thread held.
    Remote,
}

/// A key ready to sign JWTs: kid, alg, public JWK, pre-encoded header, and its backend.
pub struct SigningKey {
    kid: String,
    alg: Alg,
    public: PublicJwk,
    header_b64: String,
    backend: Backend,
    /// For a backend key: a digest of what it was connected from ([`origin`]), so a reload
    /// can keep it when nothing it depends on changed.
    origin: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl SigningKey {
    /// A key on `backend` whose public half is `material`; `kid` defaults to the RFC 7638
    /// thumbprint.
    pub fn new(kid: Option<String>, alg: Alg, material: KeyMaterial, backend: Backend) -> Self {
        let kid = kid.unwrap_or_else(|| material.thumbprint());
        let header = json!({"alg": alg.name(), "kid": kid, "typ": "at+jwt"});
        let header_b64 = b64::encode(serde_json::to_vec(&header).unwrap_or_default());
        let public = PublicJwk {
            kid: kid.clone(),
            alg: Some(alg),
            material,
        };
        SigningKey {
            kid,
            alg,
            public,
            header_b64,
            backend,
            origin: None,
        }
    }

    /// Reads a PKCS#8 PEM file into an in-memory key.
    pub fn load(
        path: &std::path::Path,
        alg: Alg,
        kid: Option<String>,
    ) -> Result<Self, SigningKeyError> {
        let der = memory::read_pkcs8(path)?;
        Self::from_pkcs8(&der, alg, kid).map_err(|reason| SigningKeyError::Parse {
            path: path.display().to_string(),
            alg,
            reason,
        })
    }

    /// Parses PKCS#8 DER for `alg` into an in-memory key.
    pub fn from_pkcs8(der: &[u8], alg: Alg, kid: Option<String>) -> Result<Self, String> {
        let (key, material) = MemoryKey::from_pkcs8(der, alg)?;
        Ok(Self::new(kid, alg, material, Backend::Memory(key)))
    }

    /// Generates a new private key for `alg` and returns its PKCS#8 DER.
    pub fn generate_pkcs8(alg: Alg) -> Result<Vec<u8>, SigningKeyError> {
        MemoryKey::generate_pkcs8(alg)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The backend's name (`memory`, `pkcs11`, ...).
    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// The public JWK to publish for this key.
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    /// Where a signature with this key may run.
    pub fn placement(&self) -> Placement {
        match &self.backend {
            Backend::Memory(key) if key.is_slow() => Placement::Threads,
            Backend::Memory(_) => Placement::Inline,
            Backend::Pkcs11(_) => Placement::Threads,
            Backend::Transit(_) => Placement::Remote,
        }
    }

    /// The KMS key version every signature uses (Transit only; for `/admin/status`).
    pub fn key_version(&self) -> Option<u32> {
        match &self.backend {
            Backend::Transit(key) => Some(key.version()),
            _ => None,
        }
    }

    /// `None` when the backend worked at its last use; else why not (for `/admin/status`).
    pub fn health(&self) -> Option<String> {
        match &self.backend {
            Backend::Memory(_) => None,
            Backend::Pkcs11(key) => key.health(),
            Backend::Transit(key) => key.health(),
        }
    }

    /// Signs `payload` (JSON bytes) as a compact JWS with header `{alg, kid, typ: at+jwt}`,
    /// blocking the calling thread for the backend (see [`SigningKey::placement`]).
    pub fn sign_compact(&self, payload: &[u8]) -> Result<String, SignerError> {
        let out = self.signing_input(payload);
        let signature = self.sign_raw(out.as_bytes())?;
        Ok(self.finish(out, &signature))
    }

    /// As [`SigningKey::sign_compact`], awaiting a remote backend.
    pub async fn sign_compact_async(&self, payload: &[u8]) -> Result<String, SignerError> {
        let out = self.signing_input(payload);
        let signature = self.sign_raw_async(out.as_bytes()).await?;
        Ok(self.finish(out, &signature))
    }

    /// Raw JWS signature of `message` (PKCS#1/PSS bytes, `r || s`, or Ed25519), blocking.
    pub fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        match &self.backend {
            Backend::Memory(key) => key.sign(message),
            Backend::Pkcs11(key) => key.sign(self.alg, message),
            Backend::Transit(key) => key.sign_blocking(message),
        }
    }

    /// The one async dispatch point: remote backends are awaited here, the others sign in
    /// place.
    pub async fn sign_raw_async(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        match &self.backend {
            Backend::Transit(key) => Ok(key.sign(message).await?),
            _ => self.sign_raw(message),
        }
    }

    /// `header.payload` with room for the signature.
    fn signing_input(&self, payload: &[u8]) -> String {
        let sig_len = 512 + 4;
        let mut out = String::with_capacity(
            self.header_b64.len() + payload.len() * 4 / 3 + sig_len * 4 / 3 + 4,
        );
        out.push_str(&self.header_b64);
        out.push('.');
        b64::encode_into(payload, &mut out);
        out
    }

    fn finish(&self, mut out: String, signature: &[u8]) -> String {
        out.push('.');
        b64::encode_into(signature, &mut out);
        out
    }
}

/// Connects one spec: the in-memory key as validated, a backend key opened and its public
/// half read from the backend.
pub fn connect(spec: &KeySpec) -> Result<Arc<SigningKey>, SignerError> {
    let (material, backend) = match &spec.backend {
        // Read (and weak-checked) by config validation.
        BackendSpec::Memory(key) => return Ok(key.clone()),
        BackendSpec::Pkcs11(pkcs11) => {
            let (key, material) = pkcs11::connect(pkcs11, spec.alg)?;
            (material, Backend::Pkcs11(Box::new(key)))
        }
        BackendSpec::Transit(transit) => {
            let (key, material) = transit::connect(transit, spec.alg)?;
            (material, Backend::Transit(Box::new(key)))
        }
    };
    // The public half an HSM or KMS holds passes the same checks as an imported key.
    crate::keys::weak::check(&material)
        .map_err(|weak| SignerError::Refused(format!("the key is weak and is refused: {weak}")))?;
    let mut key = SigningKey::new(Some(spec.kid.clone()), spec.alg, material, backend);
    key.origin = origin(spec);
    Ok(Arc::new(key))
}

/// Connects every spec, in order; every failure is reported, one line each, naming the key.
pub fn connect_all(specs: &[KeySpec]) -> Result<Vec<Arc<SigningKey>>, Vec<String>> {
    connect_each(specs, connect)
}

/// Connects `specs` for a reload: a backend key whose description, secret and CA are the same
/// as when the running key (`running`, connected from `running_specs`) was connected is kept
/// as it is: the same sessions, the same pinned Transit version (an unpinned key does not move
/// to a version rotated in meanwhile, and unpublished), no call to a backend that may be down.
/// Every other key is connected anew.
pub fn reconnect_all(
    specs: &[KeySpec],
    running_specs: &[KeySpec],
    running: &[Arc<SigningKey>],
) -> Result<Vec<Arc<SigningKey>>, Vec<String>> {
    connect_each(specs, |spec| {
        let kept = running_specs
            .iter()
            .zip(running)
            .find(|(old, key)| {
                old.kid == spec.kid
                    && old.alg == spec.alg
                    && old.backend.same_remote(&spec.backend)
                    && key.origin.is_some()
                    && key.origin == origin(spec)
            })
            .map(|(_, key)| key.clone());
        match kept {
            Some(key) => Ok(key),
            None => connect(spec),
        }
    })
}

impl BackendSpec {
    /// The same remote key described the same way (in-memory keys are never kept: every
    /// validation reads their files anew).
    fn same_remote(&self, other: &BackendSpec) -> bool {
        match (self, other) {
            (BackendSpec::Pkcs11(a), BackendSpec::Pkcs11(b)) => a == b,
            (BackendSpec::Transit(a), BackendSpec::Transit(b)) => a == b,
            _ => false,
        }
    }
}

/// SHA-256 over what a backend key is connected with besides its description: the PIN or
/// token as read now and, for Transit, the CA file's bytes. `None` for an in-memory key or a
/// secret that cannot be read (never kept, then). Only the digest is held, never the secret.
fn origin(spec: &KeySpec) -> Option<String> {
    let (secret, ca_file) = match &spec.backend {
        BackendSpec::Memory(_) => return None,
        BackendSpec::Pkcs11(pkcs11) => (&pkcs11.pin, None),
        BackendSpec::Transit(transit) => (&transit.token, transit.ca_file.as_ref()),
    };
    let mut bytes = secret.read().ok()?.into_bytes();
    bytes.push(0);
    if let Some(path) = ca_file {
        bytes.extend(std::fs::read(path).ok()?);
    }
    Some(crate::keys::digest::sha256_hex(bytes))
}

fn connect_each(
    specs: &[KeySpec],
    mut connect: impl FnMut(&KeySpec) -> Result<Arc<SigningKey>, SignerError>,
) -> Result<Vec<Arc<SigningKey>>, Vec<String>> {
    let mut keys = Vec::with_capacity(specs.len());
    let mut problems = Vec::new();
    for spec in specs {
        match connect(spec) {
            Ok(key) => keys.push(key),
            Err(err) => problems.push(format!("signing key {:?}: {err}", spec.kid)),
        }
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems)
    }
}

/// The public material of an uncompressed EC point (`04 || x || y`) on `curve`.
pub fn ec_material(curve: Curve, point: &[u8]) -> Option<KeyMaterial> {
    let len = curve.coordinate_len();
    if point.len() != 1 + 2 * len || point[0] != 0x04 {
        return None;
    }
    Some(KeyMaterial::Ec {
        curve,
        x: point[1..1 + len].to_vec(),
        y: point[1 + len..].to_vec(),
    })
}

#[cfg(test)]
mod tests;
