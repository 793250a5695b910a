//! Private signing keys, parsed once from PKCS#8 and held in memory. jsonwebtoken re-parses
//! the key on every encode (RS256 at ~39% of the raw signing rate), so the hot path signs
//! through aws-lc-rs key pairs directly. Private material never leaves this module: `Debug`
//! prints the kid only, and the only published view is [`SigningKey::public_jwk`].

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaEncoding, RsaKeyPair,
};
use serde_json::json;

use crate::jose::alg::{Alg, Curve, KeyFamily};
use crate::jose::b64;
use crate::keys::jwk::{KeyMaterial, PublicJwk};
use crate::keys::pem;

/// Why a signing key could not be loaded, generated or used.
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
    #[error("signing failed")]
    Sign,
}

enum Pair {
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key ready to sign JWTs, with its pre-encoded JWS header.
pub struct SigningKey {
    kid: String,
    alg: Alg,
    pair: Pair,
    public: PublicJwk,
    header_b64: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM file; `kid` defaults to the RFC 7638 thumbprint.
    pub fn load(
        path: &std::path::Path,
        alg: Alg,
        kid: Option<String>,
    ) -> Result<Self, SigningKeyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SigningKeyError::Read {
            path: shown.clone(),
            source,
        })?;
        let der = pem::decode(&text, "PRIVATE KEY").map_err(|source| SigningKeyError::Pem {
            path: shown.clone(),
            source,
        })?;
        Self::from_pkcs8(&der, alg, kid).map_err(|reason| SigningKeyError::Parse {
            path: shown,
            alg,
            reason,
        })
    }

    /// Parses PKCS#8 DER for `alg`.
    pub fn from_pkcs8(der: &[u8], alg: Alg, kid: Option<String>) -> Result<Self, String> {
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
                let point = pair.public_key().as_ref();
                let len = curve.coordinate_len();
                if point.len() != 1 + 2 * len || point[0] != 0x04 {
                    return Err("unexpected EC public key encoding".into());
                }
                let material = KeyMaterial::Ec {
                    curve,
                    x: point[1..1 + len].to_vec(),
                    y: point[1 + len..].to_vec(),
                };
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
        let kid = kid.unwrap_or_else(|| material.thumbprint());
        let header = json!({"alg": alg.name(), "kid": kid, "typ": "at+jwt"});
        let header_b64 = b64::encode(serde_json::to_vec(&header).unwrap_or_default());
        let public = PublicJwk {
            kid: kid.clone(),
            alg: Some(alg),
            material,
        };
        Ok(SigningKey {
            kid,
            alg,
            pair,
            public,
            header_b64,
            rng: SystemRandom::new(),
        })
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

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public JWK to publish for this key.
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    /// True for algorithms slow enough (RSA, ~200 µs) to run off the async workers.
    pub fn is_slow(&self) -> bool {
        matches!(self.pair, Pair::Rsa(..))
    }

    /// Signs `payload` (JSON bytes) as a compact JWS with header `{alg, kid, typ: at+jwt}`.
    pub fn sign_compact(&self, payload: &[u8]) -> Result<String, SigningKeyError> {
        let sig_len = 512 + 4;
        let mut out = String::with_capacity(
            self.header_b64.len() + payload.len() * 4 / 3 + sig_len * 4 / 3 + 4,
        );
        out.push_str(&self.header_b64);
        out.push('.');
        b64::encode_into(payload, &mut out);
        let signature = self.sign_raw(out.as_bytes())?;
        out.push('.');
        b64::encode_into(signature, &mut out);
        Ok(out)
    }

    /// Raw JWS signature of `message` (PKCS#1/PSS bytes, `r || s`, or Ed25519).
    pub fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, SigningKeyError> {
        match &self.pair {
            Pair::Rsa(pair, encoding) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(*encoding, &self.rng, message, &mut sig)
                    .map_err(|_| SigningKeyError::Sign)?;
                Ok(sig)
            }
            Pair::Ecdsa(pair) => pair
                .sign(&self.rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| SigningKeyError::Sign),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_algorithm_signs_what_its_public_jwk_verifies() {
        for alg in Alg::ALL {
            let der = SigningKey::generate_pkcs8(alg).unwrap();
            let key = SigningKey::from_pkcs8(&der, alg, None).unwrap();
            assert_eq!(key.kid(), key.public_jwk().material.thumbprint());
            let token = key.sign_compact(br#"{"sub":"x"}"#).unwrap();
            let (input, sig) = token.rsplit_once('.').unwrap();
            let parsed = key.public_jwk().material.parse_for(alg).unwrap();
            parsed
                .verify_sig(input.as_bytes(), &b64::decode(sig).unwrap())
                .unwrap();
            let header = crate::jose::json::parse_object(
                &b64::decode(input.split('.').next().unwrap()).unwrap(),
            )
            .unwrap();
            assert_eq!(header["alg"], alg.name());
            assert_eq!(header["typ"], "at+jwt");
            assert!(!format!("{key:?}").contains("pair"));
        }
    }

    #[test]
    fn wrong_algorithm_for_the_key_is_refused() {
        let der = SigningKey::generate_pkcs8(Alg::ES256).unwrap();
        assert!(SigningKey::from_pkcs8(&der, Alg::RS256, None).is_err());
        assert!(SigningKey::from_pkcs8(&der, Alg::ES384, None).is_err());
    }
}
