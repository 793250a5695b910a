//! The in-memory backend: private keys parsed once from PKCS#8 and held in process memory.
//! jsonwebtoken re-parses the key on every encode (RS256 at ~39% of the raw signing rate), so
//! the hot path signs through aws-lc-rs key pairs directly. Private material never leaves this
//! module: [`MemoryKey`] has no `Debug` of its contents and no accessor for them.
//!
//! May use: `jose` (algorithm names), `keys::jwk` (the public material), `keys::pem`.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaEncoding, RsaKeyPair,
};

use super::SignerError;
use crate::jose::alg::{Alg, Curve, KeyFamily};
use crate::keys::jwk::KeyMaterial;
use crate::keys::pem;

/// Why a key file could not be loaded or a key generated.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Pem { path: String, source: pem::PemError },
    #[error("{path}: not a PKCS#8 {alg} private key ({reason})")]
    Parse {
        path: String,
        alg: Alg,
        reason: String,
    },
    #[error("key generation failed")]
    Generate,
}

enum Pair {
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key held in memory.
pub struct MemoryKey {
    pair: Pair,
    rng: SystemRandom,
}

/// Reads a PKCS#8 PEM file as DER.
pub fn read_pkcs8(path: &std::path::Path) -> Result<Vec<u8>, SigningKeyError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SigningKeyError::Read {
        path: shown.clone(),
        source,
    })?;
    pem::decode(&text, "PRIVATE KEY").map_err(|source| SigningKeyError::Pem {
        path: shown,
        source,
    })
}

impl MemoryKey {
    /// Parses PKCS#8 DER for `alg`; returns the key and its public material.
    pub fn from_pkcs8(der: &[u8], alg: Alg) -> Result<(MemoryKey, KeyMaterial), String> {
        let (pair, material) = match alg.family() {
            KeyFamily::Rsa => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| e.to_string())?;
                let bits = pair.public_modulus_len() * 8;
                if !(2048..=8192).contains(&bits) {
                    return Err(format!(
                        "RSA modulus of {bits} bits; 2048 to 8192 are accepted"
                    ));
                }
                let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let material = KeyMaterial::Rsa {
                    n: parts.n,
                    e: parts.e,
                };
                (Pair::Rsa(pair, rsa_encoding(alg)), material)
            }
            KeyFamily::Ec(curve) => {
                let pair = EcdsaKeyPair::from_pkcs8(ecdsa_signing(curve), der)
                    .map_err(|e| e.to_string())?;
                let material = super::ec_material(curve, pair.public_key().as_ref())
                    .ok_or("unexpected EC public key encoding")?;
                (Pair::Ecdsa(pair), material)
            }
            KeyFamily::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| e.to_string())?;
                let material = KeyMaterial::Ed25519 {
                    x: pair.public_key().as_ref().to_vec(),
                };
                (Pair::Ed25519(pair), material)
            }
        };
        let key = MemoryKey {
            pair,
            rng: SystemRandom::new(),
        };
        Ok((key, material))
    }

    /// Generates a new private key for `alg` and returns its PKCS#8 DER.
    pub fn generate_pkcs8(alg: Alg) -> Result<Vec<u8>, SigningKeyError> {
        let der = match alg.family() {
            KeyFamily::Rsa => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| SigningKeyError::Generate)?;
                let der = pair.as_der().map_err(|_| SigningKeyError::Generate)?;
                der.as_ref().to_vec()
            }
            KeyFamily::Ec(curve) => {
                let pair = EcdsaKeyPair::generate(ecdsa_signing(curve))
                    .map_err(|_| SigningKeyError::Generate)?;
                pair.to_pkcs8v1()
                    .map_err(|_| SigningKeyError::Generate)?
                    .as_ref()
                    .to_vec()
            }
            KeyFamily::Ed25519 => {
                let pair = Ed25519KeyPair::generate().map_err(|_| SigningKeyError::Generate)?;
                pair.to_pkcs8v1()
                    .map_err(|_| SigningKeyError::Generate)?
                    .as_ref()
                    .to_vec()
            }
        };
        Ok(der)
    }

    /// True for algorithms slow enough (RSA, ~200 µs) to run off the async workers.
    pub fn is_slow(&self) -> bool {
        matches!(self.pair, Pair::Rsa(..))
    }

    /// Raw JWS signature of `message` (PKCS#1/PSS bytes, `r || s`, or Ed25519).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let failed = |_| SignerError::Failed("the in-memory key refused to sign".into());
        match &self.pair {
            Pair::Rsa(pair, encoding) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(*encoding, &self.rng, message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
            Pair::Ecdsa(pair) => pair
                .sign(&self.rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(failed),
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

fn rsa_encoding(alg: Alg) -> &'static dyn RsaEncoding {
    match alg {
        Alg::RS384 => &signature::RSA_PKCS1_SHA384,
        Alg::RS512 => &signature::RSA_PKCS1_SHA512,
        Alg::PS256 => &signature::RSA_PSS_SHA256,
        Alg::PS384 => &signature::RSA_PSS_SHA384,
        Alg::PS512 => &signature::RSA_PSS_SHA512,
        _ => &signature::RSA_PKCS1_SHA256,
    }
}

fn ecdsa_signing(curve: Curve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}
