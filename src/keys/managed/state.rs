//! The managed signing keys as the key store holds them, and `[signing.managed]` as
//! validated. Plain data (serde for the file store and the local copy; the PostgreSQL store
//! maps the same fields onto `resigner_signing_keys`, migration 0002).
//!
//! Invariants every writer keeps (the PostgreSQL schema enforces the first two): at most one
//! `current` and at most one `next` key; a key's `revoked_at` is set exactly when it is
//! `revoked`; keys are listed in creation order and never removed (a revoked key stays, for
//! the audit trail and Auth0's "revoked keys" list).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jose::alg::Alg;
use crate::keys::signer::SecretSource;

/// Where a managed key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not signing yet: becomes current at the next rotation.
    Next,
    /// Published and signing.
    Current,
    /// Published (tokens it signed still verify) until revoked.
    Previous,
    /// Not published; never signs again.
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Previous => "previous",
            KeyState::Revoked => "revoked",
        }
    }

    /// Whether a key in this state is in the published JWKS.
    pub fn is_published(self) -> bool {
        self != KeyState::Revoked
    }
}

/// A private key sealed with AES-256-GCM under the KEK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// Which KEK sealed it: a fingerprint of the KEK, never the KEK.
    pub kek_id: String,
    /// base64url(nonce || ciphertext || tag) of the PKCS#8 DER; the AAD binds kid and alg.
    pub data: String,
}

/// One managed key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedKey {
    /// The RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The JWS algorithm name (`ES256`, ...).
    pub alg: String,
    pub state: KeyState,
    /// The public JWK as published (kid, alg, use = sig; public members only).
    pub public_jwk: Map<String, Value>,
    /// The self-signed X.509 certificate of the key, PEM, as Auth0's API returns it.
    pub cert: String,
    /// The sealed private key (memory custody); `None` when a backend holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<Sealed>,
    /// Where a backend holds the private key (the PKCS#11 object label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<String>,
    /// Unix seconds: created, and published from that moment.
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_since: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

impl ManagedKey {
    /// The algorithm, if the stored name is one this build knows.
    pub fn algorithm(&self) -> Option<Alg> {
        Alg::parse(&self.alg)
    }
}

/// Every managed key and the version of the managed state (separate from the custom key
/// set's version: a rotation does not change the custom-signing ETag).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedState {
    /// Increases by one with every write of the managed keys.
    pub version: u64,
    /// In creation order.
    pub keys: Vec<ManagedKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

impl ManagedState {
    /// True before the first managed key was created (also what old store files read as).
    pub fn is_empty(&self) -> bool {
        self.version == 0 && self.keys.is_empty()
    }

    /// The key in `state` (first one; `current` and `next` are unique by invariant).
    pub fn find(&self, state: KeyState) -> Option<&ManagedKey> {
        self.keys.iter().find(|k| k.state == state)
    }

    pub fn get(&self, kid: &str) -> Option<&ManagedKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// What a write of the managed keys did (the audit action; PostgreSQL's
/// `resigner_signing_changes.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAction {
    /// The first current and next keys were generated.
    Create,
    Rotate,
    Revoke,
}

impl SigningAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAction::Create => "create",
            SigningAction::Rotate => "rotate",
            SigningAction::Revoke => "revoke",
        }
    }
}

/// One write of the managed keys: the whole new key list, what it did, to which kids, by whom.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningChange {
    pub keys: Vec<ManagedKey>,
    pub action: SigningAction,
    /// The kids the action touched (created / rotated in and out / revoked).
    pub kids: Vec<String>,
    pub by: Option<String>,
}

/// Where managed private keys live, as `[signing.managed]` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Custody {
    /// Generated in memory, stored sealed under the KEK (`kek_file` or `kek_env`).
    Sealed { kek: SecretSource },
    /// Generated on a PKCS#11 token (`pkcs11 = { module, token_label, pin_file | pin_env }`);
    /// the store holds only each key's label.
    Pkcs11 {
        module: std::path::PathBuf,
        token_label: String,
        pin: SecretSource,
    },
    /// Created in a Vault/OpenBao Transit engine (`transit = { address, mount, token_file |
    /// token_env, ca_file, timeout }`); the store holds only each key's name there. `key` and
    /// `key_version` of the spec are unset: every managed key has its own name, version 1.
    Transit(crate::keys::signer::TransitSpec),
}

/// `[signing.managed]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedSpec {
    /// The algorithm of every generated key.
    pub alg: Alg,
    pub custody: Custody,
    /// Scheduled rotation: a rotation is due when the current key has been current this long.
    pub rotate_every: Option<std::time::Duration>,
    /// How many previous keys stay published; a rotation revokes the oldest beyond that.
    pub keep_previous: usize,
}
