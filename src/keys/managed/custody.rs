//! Custody of managed private keys at run time: generating a new key pair and connecting a
//! stored one to a signer. This build keeps managed keys sealed under the KEK
//! ([`super::kek`]); generating them on a PKCS#11 token is refused by validation until it
//! lands (issue #14 continues).
//!
//! Every method may block (key generation, RSA especially): callers run them off the async
//! workers. May use: `keys::signer`, `keys::managed::{kek, cert, state}`.

use std::sync::Arc;

use super::cert;
use super::error::ManagedError;
use super::kek::Kek;
use super::state::{Custody as CustodySpec, KeyState, ManagedKey, ManagedSpec};
use crate::jose::alg::Alg;
use crate::keys::SigningKey;

/// Where managed keys are generated and how a stored one becomes a signer.
#[derive(Debug)]
pub struct Custody {
    kek: Kek,
}

impl Custody {
    /// Opens the custody `spec` names: reads the KEK (missing or malformed: an error naming
    /// `signing.managed.kek_file` / `kek_env`).
    pub fn open(spec: &ManagedSpec) -> Result<Custody, ManagedError> {
        match &spec.custody {
            CustodySpec::Sealed { kek } => Ok(Custody {
                kek: Kek::open(kek)?,
            }),
            CustodySpec::Pkcs11 { .. } => Err(ManagedError::Pkcs11(
                "generating managed keys on a PKCS#11 token is not in this build yet; use \
                 kek_file or kek_env"
                    .into(),
            )),
        }
    }

    /// A new key pair for `alg`: state next, published from `now`, its certificate made,
    /// its private half sealed under the KEK (and nowhere else).
    pub fn generate(&self, alg: Alg, now: i64) -> Result<ManagedKey, ManagedError> {
        let generate = |e: String| ManagedError::Generate(e);
        let der = SigningKey::generate_pkcs8(alg).map_err(|e| generate(e.to_string()))?;
        let signer = SigningKey::from_pkcs8(&der, alg, None).map_err(generate)?;
        let kid = signer.kid().to_string();
        let cert = cert::self_signed(&der, &kid, now)?;
        let sealed = self.kek.seal(&kid, alg.name(), &der)?;
        Ok(ManagedKey {
            public_jwk: signer.public_jwk().to_json(),
            kid,
            alg: alg.name().to_string(),
            state: KeyState::Next,
            cert,
            sealed: Some(sealed),
            backend_ref: None,
            created_at: now,
            current_since: None,
            current_until: None,
            revoked_at: None,
        })
    }

    /// A signer for a stored key: unsealed with the KEK, and its public half checked against
    /// the stored JWK.
    pub fn connect(&self, key: &ManagedKey) -> Result<Arc<SigningKey>, ManagedError> {
        let corrupt =
            |what: &str| ManagedError::Corrupt(format!("managed key {}: {what}", key.kid));
        let alg = key
            .algorithm()
            .ok_or_else(|| corrupt(&format!("unknown algorithm {:?}", key.alg)))?;
        let sealed = key.sealed.as_ref().ok_or_else(|| {
            corrupt("no sealed private key (held by a backend this build does not open)")
        })?;
        let der = self.kek.unseal(sealed, &key.kid, &key.alg)?;
        let signer = SigningKey::from_pkcs8(&der, alg, Some(key.kid.clone()))
            .map_err(|e| corrupt(&format!("the unsealed key does not parse: {e}")))?;
        if signer.public_jwk().to_json() != key.public_jwk {
            return Err(corrupt(
                "the unsealed key does not match the published public key",
            ));
        }
        Ok(Arc::new(signer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::signer::SecretSource;

    fn custody(byte: u8) -> Custody {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        std::fs::write(&path, format!("{:02x}", byte).repeat(32)).unwrap();
        let spec = ManagedSpec {
            alg: Alg::ES256,
            custody: CustodySpec::Sealed {
                kek: SecretSource::File(path),
            },
            rotate_every: None,
            keep_previous: 1,
        };
        Custody::open(&spec).unwrap()
    }

    #[test]
    fn a_generated_key_is_sealed_signs_after_connect_and_needs_its_kek() {
        let first = custody(1);
        let key = first.generate(Alg::ES256, 1_800_000_000).unwrap();
        let stored = serde_json::to_string(&key).unwrap();
        assert!(!stored.contains("\"d\""), "no private JWK member is stored");
        assert_eq!(key.public_jwk["kid"], key.kid.as_str());
        let signer = first.connect(&key).unwrap();
        assert_eq!(signer.kid(), key.kid);
        let token = signer.sign_compact(b"{}").unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert!(matches!(
            custody(2).connect(&key),
            Err(ManagedError::WrongKek { .. })
        ));
    }
}
