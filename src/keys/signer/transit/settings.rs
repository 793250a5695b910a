//! The settings of one Transit key: [`TransitSettings`] (the validated `transit = { ... }`,
//! built from the spec by [`TransitSettings::from_spec`]) and the token it carries,
//! [`TransitToken`], whose `Debug` prints no secret.
//!
//! May use: [`crate::http::tls`], `super::super` (the spec), `super::circuit`,
//! `super::error`.

use std::time::Duration;

use http::HeaderValue;

use super::super::TransitSpec;
use super::circuit::CircuitSettings;
use super::error::TransitError;
use crate::http::tls::ClientTls;

/// The Vault token, held so it cannot be printed by accident.
#[derive(Clone)]
pub struct TransitToken(pub(super) HeaderValue);

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
