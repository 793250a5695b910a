//! Custody of managed private keys at run time: generating a new key pair and connecting a
//! stored one to a signer. Three custodies:
//! - sealed: generated in memory, stored sealed under the KEK ([`super::kek`]);
//! - PKCS#11: generated on the token (private half sensitive, never extractable), labelled
//!   `resigner-<16 hex digits>`; the store holds only that label (`backend_ref`), the public
//!   JWK and the certificate, which the token signs. Nothing secret is stored at all.
//! - Transit: created in a Vault/OpenBao Transit engine under such a name (not exportable,
//!   version 1 only); the store holds the name, and the engine signs tokens and certificate.
//!
//! Every method may block (key generation, RSA especially; token calls): callers run them off
//! the async workers. May use: `keys::signer` (its PKCS#11 and Transit backends),
//! `keys::managed::{kek, cert, state}`.

use std::sync::Arc;

use super::cert;
use super::error::ManagedError;
use super::kek::Kek;
use super::state::{Custody as CustodySpec, KeyState, ManagedKey, ManagedSpec};
use crate::jose::alg::{Alg, KeyFamily};
use crate::keys::SigningKey;
use crate::keys::signer::{Backend, Pkcs11Spec, SecretSource, TransitSpec, pkcs11, transit};

/// Where managed keys are generated and how a stored one becomes a signer.
#[derive(Debug)]
pub struct Custody {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Sealed(Kek),
    Pkcs11(Token),
    /// The engine's settings; `key` is each managed key's own name.
    Transit(TransitSpec),
}

/// The token managed keys are generated on.
#[derive(Debug)]
struct Token {
    module: std::path::PathBuf,
    token_label: String,
    pin: SecretSource,
}

impl Custody {
    /// Opens the custody `spec` names: reads the KEK (missing or malformed: an error naming
    /// `signing.managed.kek_file` / `kek_env`); a token is reached at the first key.
    pub fn open(spec: &ManagedSpec) -> Result<Custody, ManagedError> {
        let inner = match &spec.custody {
            CustodySpec::Sealed { kek } => Inner::Sealed(Kek::open(kek)?),
            CustodySpec::Pkcs11 {
                module,
                token_label,
                pin,
            } => Inner::Pkcs11(Token {
                module: module.clone(),
                token_label: token_label.clone(),
                pin: pin.clone(),
            }),
            CustodySpec::Transit(spec) => Inner::Transit(spec.clone()),
        };
        Ok(Custody { inner })
    }

    /// A new key pair for `alg`: state next, published from `now`, its certificate made,
    /// its private half sealed under the KEK (and nowhere else) or generated on the token.
    pub fn generate(&self, alg: Alg, now: i64) -> Result<ManagedKey, ManagedError> {
        let generate = |e: String| ManagedError::Generate(e);
        let (signer, cert, sealed, backend_ref) = match &self.inner {
            Inner::Sealed(kek) => {
                let der = SigningKey::generate_pkcs8(alg).map_err(|e| generate(e.to_string()))?;
                let signer = SigningKey::from_pkcs8(&der, alg, None).map_err(generate)?;
                let cert = cert::self_signed(&der, signer.kid(), now)?;
                let sealed = kek.seal(signer.kid(), alg.name(), &der)?;
                (signer, cert, Some(sealed), None)
            }
            Inner::Pkcs11(token) => {
                let label = new_label()?;
                let spec = token.spec(&label);
                pkcs11::generate(&spec, alg).map_err(|e| ManagedError::Pkcs11(e.to_string()))?;
                let signer = token.signer(&label, alg, None)?;
                // The certificate is signed on the token too.
                let cert = match cert_alg(alg) {
                    same if same == alg => cert::self_signed_by(&signer, signer.kid(), now)?,
                    other => {
                        let by = token.signer(&label, other, Some(signer.kid().into()))?;
                        cert::self_signed_by(&by, signer.kid(), now)?
                    }
                };
                tracing::info!(label = %label, token = ?spec.token_label, kid = signer.kid(),
                    "managed signing key generated on the PKCS#11 token");
                (signer, cert, None, Some(label))
            }
            Inner::Transit(engine) => {
                let name = new_label()?;
                let spec = TransitSpec {
                    key: name.clone(),
                    ..engine.clone()
                };
                transit::create(&spec, alg).map_err(|e| ManagedError::Transit(e.to_string()))?;
                // The certificate through a connection of its own (signing it blocks on a
                // runtime of its own, whose pooled connections the serving key must not reuse).
                let by = transit_signer(engine, &name, cert_alg(alg), None)?;
                let cert = cert::self_signed_by(&by, by.kid(), now)?;
                let signer = transit_signer(engine, &name, alg, None)?;
                tracing::info!(key = %name, address = %engine.address, kid = signer.kid(),
                    "managed signing key created in the Transit engine");
                (signer, cert, None, Some(name))
            }
        };
        Ok(ManagedKey {
            public_jwk: signer.public_jwk().to_json(),
            kid: signer.kid().to_string(),
            alg: alg.name().to_string(),
            state: KeyState::Next,
            cert,
            sealed,
            backend_ref,
            created_at: now,
            current_since: None,
            current_until: None,
            revoked_at: None,
        })
    }

    /// A signer for a stored key: unsealed with the KEK, or found on the token by its label;
    /// its public half checked against the stored JWK either way.
    pub fn connect(&self, key: &ManagedKey) -> Result<Arc<SigningKey>, ManagedError> {
        let corrupt =
            |what: &str| ManagedError::Corrupt(format!("managed key {}: {what}", key.kid));
        let alg = key
            .algorithm()
            .ok_or_else(|| corrupt(&format!("unknown algorithm {:?}", key.alg)))?;
        let signer = match (&self.inner, &key.sealed, &key.backend_ref) {
            (Inner::Sealed(kek), Some(sealed), _) => {
                let der = kek.unseal(sealed, &key.kid, &key.alg)?;
                SigningKey::from_pkcs8(&der, alg, Some(key.kid.clone()))
                    .map_err(|e| corrupt(&format!("the unsealed key does not parse: {e}")))?
            }
            (Inner::Pkcs11(token), _, Some(label)) => {
                token.signer(label, alg, Some(key.kid.clone()))?
            }
            (Inner::Transit(engine), _, Some(name)) => {
                transit_signer(engine, name, alg, Some(key.kid.clone()))?
            }
            (Inner::Sealed(_), None, _) => {
                return Err(corrupt(
                    "it is held by a key backend, and [signing.managed] names a KEK instead",
                ));
            }
            (Inner::Pkcs11(_) | Inner::Transit(_), _, None) => {
                return Err(corrupt(
                    "it is sealed under a KEK, and [signing.managed] names a key backend instead",
                ));
            }
        };
        if signer.public_jwk().to_json() != key.public_jwk {
            return Err(corrupt(
                "the private key found does not match the published public key",
            ));
        }
        Ok(Arc::new(signer))
    }
}

impl Token {
    fn spec(&self, label: &str) -> Pkcs11Spec {
        Pkcs11Spec {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            key_label: label.to_string(),
            pin: self.pin.clone(),
        }
    }

    /// The key labelled `label` on the token, signing with `alg`.
    fn signer(
        &self,
        label: &str,
        alg: Alg,
        kid: Option<String>,
    ) -> Result<SigningKey, ManagedError> {
        let spec = self.spec(label);
        let (key, material) = pkcs11::connect(&spec, alg).map_err(|e| {
            ManagedError::Pkcs11(format!(
                "key {label:?} on token {:?}: {e}",
                spec.token_label
            ))
        })?;
        Ok(SigningKey::new(
            kid,
            alg,
            material,
            Backend::Pkcs11(Box::new(key)),
        ))
    }
}

/// The algorithm a backend signs a key's certificate with: PKCS#1 v1.5 (RS256) for any RSA
/// key (X.509 signers expect it; PSS certificates are not made), the key's own otherwise.
fn cert_alg(alg: Alg) -> Alg {
    match alg.family() {
        KeyFamily::Rsa => Alg::RS256,
        _ => alg,
    }
}

/// Managed key `name` (version 1: a managed key is never rotated inside the engine) of the
/// engine, signing with `alg`.
fn transit_signer(
    engine: &TransitSpec,
    name: &str,
    alg: Alg,
    kid: Option<String>,
) -> Result<SigningKey, ManagedError> {
    let spec = TransitSpec {
        key: name.to_string(),
        key_version: Some(1),
        ..engine.clone()
    };
    let (key, material) = transit::connect(&spec, alg)
        .map_err(|e| ManagedError::Transit(format!("key {name:?}: {e}")))?;
    Ok(SigningKey::new(
        kid,
        alg,
        material,
        Backend::Transit(Box::new(key)),
    ))
}

/// `resigner-` and 16 random hex digits: the label (and CKA_ID) of a key on the token.
fn new_label() -> Result<String, ManagedError> {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ManagedError::Generate("no randomness for a token key label".into()))?;
    Ok(format!(
        "resigner-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
