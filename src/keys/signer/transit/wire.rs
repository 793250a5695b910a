//! The Transit HTTP API's shapes, as pure functions so they are tested without a server: the
//! `POST {mount}/sign/{key}` body for an alg, reading `vault:vN:SIG` out of its answer, the
//! public key of one version out of `GET {mount}/keys/{key}`, and the `errors` of a refusal.
//! Vault and OpenBao answer the same.
//!
//! May use: serde_json, [`crate::jose`], [`crate::keys::pem`], [`crate::keys::x509`].

use serde_json::{Map, Value, json};

use crate::jose::alg::{Alg, Curve, KeyFamily};
use crate::jose::{b64, json as strict};
use crate::keys::jwk::KeyMaterial;
use crate::keys::{pem, x509};

/// Why an answer of the Transit server could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the answer is not a JSON object")]
    NotJson,
    #[error("the answer has no {0}")]
    Missing(&'static str),
    #[error("the signature is not of the form vault:vN:base64url")]
    SignatureForm,
    #[error("the server signed with key version {got}, not the pinned {want}")]
    WrongVersion { want: u32, got: u32 },
    #[error("key type {found:?} cannot sign {alg} (needs {needs})")]
    KeyType {
        found: String,
        alg: Alg,
        needs: &'static str,
    },
    #[error("key version {0} does not exist (the key has versions up to {1})")]
    NoVersion(u32, u32),
    #[error("the public key of version {0} is not a usable SubjectPublicKeyInfo: {1}")]
    PublicKey(u32, String),
}

/// What `GET {mount}/keys/{key}` says about the key, for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's newest version.
    pub latest: u32,
    /// The version read (the pinned one, else `latest`).
    pub version: u32,
    pub material: KeyMaterial,
}

/// The Transit key types that sign `alg`, as named in the API (`type`).
pub fn key_types(alg: Alg) -> &'static [&'static str] {
    match alg.family() {
        KeyFamily::Rsa => &["rsa-2048", "rsa-3072", "rsa-4096"],
        KeyFamily::Ec(Curve::P256) => &["ecdsa-p256"],
        KeyFamily::Ec(Curve::P384) => &["ecdsa-p384"],
        KeyFamily::Ec(Curve::P521) => &["ecdsa-p521"],
        KeyFamily::Ed25519 => &["ed25519"],
    }
}

/// The body of `POST {mount}/sign/{key}` signing `message` (the JWS signing input) for
/// `alg` with key `version`. `marshaling_algorithm = jws` makes ECDSA answer `r || s` and
/// every signature base64url; PSS salts are the hash length, as RFC 7518 §3.5 requires.
pub fn sign_body(alg: Alg, version: u32, message: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let input = base64::engine::general_purpose::STANDARD.encode(message);
    let mut body = json!({
        "input": input,
        "key_version": version,
        "marshaling_algorithm": "jws",
    });
    let hash = match alg {
        Alg::RS256 | Alg::PS256 | Alg::ES256 => Some("sha2-256"),
        Alg::RS384 | Alg::PS384 | Alg::ES384 => Some("sha2-384"),
        Alg::RS512 | Alg::PS512 | Alg::ES512 => Some("sha2-512"),
        Alg::EdDSA => None,
    };
    if let (Some(hash), Value::Object(map)) = (hash, &mut body) {
        map.insert("hash_algorithm".into(), hash.into());
        match alg {
            Alg::RS256 | Alg::RS384 | Alg::RS512 => {
                map.insert("signature_algorithm".into(), "pkcs1v15".into());
            }
            Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                map.insert("signature_algorithm".into(), "pss".into());
                map.insert("salt_length".into(), "hash".into());
            }
            _ => {}
        }
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The raw signature bytes of a sign answer, which must come from `version`.
pub fn signature(body: &[u8], version: u32) -> Result<Vec<u8>, WireError> {
    let data = data(body)?;
    let text = data
        .get("signature")
        .and_then(Value::as_str)
        .ok_or(WireError::Missing("data.signature"))?;
    let rest = text
        .strip_prefix("vault:v")
        .ok_or(WireError::SignatureForm)?;
    let (got, sig) = rest.split_once(':').ok_or(WireError::SignatureForm)?;
    let got: u32 = got.parse().map_err(|_| WireError::SignatureForm)?;
    if got != version {
        return Err(WireError::WrongVersion { want: version, got });
    }
    b64::decode(sig).ok_or(WireError::SignatureForm)
}

/// The key's type, newest version and the public key of `pinned` (default: the newest),
/// from a `GET {mount}/keys/{key}` answer; the type must sign `alg`.
pub fn key_info(body: &[u8], alg: Alg, pinned: Option<u32>) -> Result<KeyInfo, WireError> {
    let data = data(body)?;
    let found = data
        .get("type")
        .and_then(Value::as_str)
        .ok_or(WireError::Missing("data.type"))?;
    let types = key_types(alg);
    if !types.contains(&found) {
        return Err(WireError::KeyType {
            found: found.into(),
            alg,
            needs: types.first().copied().unwrap_or_default(),
        });
    }
    let latest = data
        .get("latest_version")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(WireError::Missing("data.latest_version"))?;
    let version = pinned.unwrap_or(latest);
    let pem_text = data
        .get("keys")
        .and_then(Value::as_object)
        .ok_or(WireError::Missing("data.keys"))?
        .get(&version.to_string())
        .ok_or(WireError::NoVersion(version, latest))?
        .get("public_key")
        .and_then(Value::as_str)
        .ok_or(WireError::Missing("data.keys.N.public_key"))?;
    let material = public_key(pem_text, alg).map_err(|e| WireError::PublicKey(version, e))?;
    Ok(KeyInfo {
        latest,
        version,
        material,
    })
}

/// The key in a `PUBLIC KEY` PEM block (Transit's form; ed25519 keys come as bare base64).
fn public_key(text: &str, alg: Alg) -> Result<KeyMaterial, String> {
    let material = if alg.family() == KeyFamily::Ed25519 && !text.contains("-----BEGIN") {
        use base64::Engine;
        let x = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| "not base64".to_string())?;
        KeyMaterial::Ed25519 { x }
    } else {
        let der = pem::decode(text, "PUBLIC KEY").map_err(|e| e.to_string())?;
        x509::spki_public_key(&der).map_err(|e| e.to_string())?
    };
    material.parse_for(alg).map_err(|e| e.to_string())?;
    Ok(material)
}

/// The `errors` of a refusal, joined (empty when there are none, e.g. an unknown key).
pub fn errors(body: &[u8]) -> String {
    let list = strict::parse_object(body)
        .ok()
        .and_then(|doc| doc.get("errors").cloned());
    let Some(Value::Array(list)) = list else {
        return String::new();
    };
    let parts: Vec<String> = list
        .iter()
        .filter_map(Value::as_str)
        .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let mut text = parts.join("; ");
    text.truncate(200);
    text
}

fn data(body: &[u8]) -> Result<Map<String, Value>, WireError> {
    let mut doc = strict::parse_object(body).map_err(|_| WireError::NotJson)?;
    match doc.remove("data") {
        Some(Value::Object(data)) => Ok(data),
        _ => Err(WireError::Missing("data")),
    }
}

#[cfg(test)]
mod tests;
