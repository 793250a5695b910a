//! The key-encryption key (KEK) that seals managed private keys: 32 bytes read from
//! `kek_file` or `kek_env` (base64, standard or url-safe, or 64 hex digits), never stored,
//! logged or printed (`Debug` shows only its id). Sealing is AES-256-GCM (aws-lc-rs) with a
//! random 96-bit nonce and the kid and algorithm as associated data, so a sealed key moved
//! to another row does not open.
//!
//! May use: `jose::b64`, `keys::digest`, `keys::signer::SecretSource`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;

use super::error::ManagedError;
use super::state::Sealed;
use crate::jose::b64;
use crate::keys::signer::SecretSource;

/// The KEK, opened.
pub struct Kek {
    key: LessSafeKey,
    id: String,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).finish()
    }
}

impl Kek {
    /// Reads the KEK from `source`; errors name the setting and the expected form only.
    pub fn open(source: &SecretSource) -> Result<Kek, ManagedError> {
        let setting = match source {
            SecretSource::File(_) => "signing.managed.kek_file",
            SecretSource::Env(_) => "signing.managed.kek_env",
        };
        let text = source.read().map_err(|message| ManagedError::Kek {
            setting,
            message: format!("the key-encryption key is missing: {message}"),
        })?;
        let bytes = parse(text.trim()).ok_or_else(|| ManagedError::Kek {
            setting,
            message: "the key-encryption key must be 32 bytes as base64 (44 characters) or \
                      64 hex digits (make one with `resigner keys kek`)"
                .into(),
        })?;
        Kek::from_bytes(&bytes)
    }

    /// A KEK from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Kek, ManagedError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| ManagedError::Kek {
            setting: "signing.managed",
            message: "the key-encryption key is not a valid AES-256 key".into(),
        })?;
        let mut tagged = b"resigner-kek-v1".to_vec();
        tagged.extend_from_slice(bytes);
        let id = crate::keys::digest::sha256_hex(&tagged)[..16].to_string();
        Ok(Kek {
            key: LessSafeKey::new(unbound),
            id,
        })
    }

    /// The KEK's fingerprint (what `Sealed::kek_id` records).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `secret` (a PKCS#8 DER) for the key `kid` of algorithm `alg`.
    pub fn seal(&self, kid: &str, alg: &str, secret: &[u8]) -> Result<Sealed, ManagedError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ManagedError::Generate("no randomness for a nonce".into()))?;
        let mut data = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(kid, alg)),
                &mut data,
            )
            .map_err(|_| ManagedError::Generate("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(Sealed {
            kek_id: self.id.clone(),
            data: b64::encode(out),
        })
    }

    /// Opens a sealed key; a key sealed under another KEK, or bytes that do not
    /// authenticate, is [`ManagedError::WrongKek`].
    pub fn unseal(&self, sealed: &Sealed, kid: &str, alg: &str) -> Result<Vec<u8>, ManagedError> {
        let wrong = |message: String| ManagedError::WrongKek {
            kid: kid.to_string(),
            message,
        };
        if sealed.kek_id != self.id {
            return Err(wrong(format!(
                "it was sealed under key-encryption key {}, but the configured one is {}: \
                 configure the KEK it was sealed with",
                sealed.kek_id, self.id
            )));
        }
        let bytes = b64::decode(&sealed.data)
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(|| {
                wrong("the sealed data is not base64url of nonce and ciphertext".into())
            })?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| wrong("the nonce is malformed".into()))?;
        let mut data = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(kid, alg)), &mut data)
            .map_err(|_| wrong("the sealed data does not authenticate under the configured key-encryption key (wrong KEK or altered data)".into()))?;
        Ok(plain.to_vec())
    }
}

/// A new random KEK, base64 (for `resigner keys kek`).
pub fn generate() -> Result<String, ManagedError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ManagedError::Generate("no randomness for a KEK".into()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn aad(kid: &str, alg: &str) -> Vec<u8> {
    format!("resigner-managed-key:{kid}:{alg}").into_bytes()
}

fn parse(text: &str) -> Option<[u8; 32]> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()
    } else {
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
    }?;
    decoded.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_opens_only_with_the_same_kek_kid_and_alg() {
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let sealed = kek.seal("k1", "ES256", b"secret der").unwrap();
        assert_eq!(kek.unseal(&sealed, "k1", "ES256").unwrap(), b"secret der");
        assert!(!sealed.data.contains("secret"));
        assert!(matches!(
            kek.unseal(&sealed, "k2", "ES256"),
            Err(ManagedError::WrongKek { .. })
        ));
        assert!(matches!(
            kek.unseal(&sealed, "k1", "ES384"),
            Err(ManagedError::WrongKek { .. })
        ));
        let other = Kek::from_bytes(&[8u8; 32]).unwrap();
        let err = other
            .unseal(&sealed, "k1", "ES256")
            .unwrap_err()
            .to_string();
        assert!(err.contains(kek.id()) && err.contains(other.id()), "{err}");
        assert_eq!(
            format!("{kek:?}"),
            format!("Kek {{ id: {:?} }}", kek.id()),
            "Debug shows the id only"
        );
    }

    #[test]
    fn kek_forms_and_errors_name_the_setting() {
        let hex = "07".repeat(32);
        assert_eq!(parse(&hex), Some([7u8; 32]));
        let b64 = generate().unwrap();
        assert!(parse(&b64).is_some());
        assert_eq!(parse("short"), None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        std::fs::write(&path, "not a key").unwrap();
        let err = Kek::open(&SecretSource::File(path.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("signing.managed.kek_file") && !err.contains("not a key"),
            "{err}"
        );
        let err = Kek::open(&SecretSource::Env("RESIGNER_TEST_NO_SUCH_KEK".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("signing.managed.kek_env") && err.contains("missing"),
            "{err}"
        );
        std::fs::write(&path, format!("{b64}\n")).unwrap();
        assert!(Kek::open(&SecretSource::File(path)).is_ok());
    }
}
