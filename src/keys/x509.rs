//! The public key inside an X.509 certificate, for one check only: when the management API
//! imports a JWK that carries `x5c`, RFC 7517 §4.7 requires the key in the first (leaf)
//! certificate to match the JWK's own key members, and a key that fails that must be refused.
//! The same SubjectPublicKeyInfo reading serves a bare `PUBLIC KEY` (a KMS-held key's public
//! half, see [`crate::keys::signer::transit`]).
//!
//! The certificate is parsed by `x509-parser` (maintained, fuzzed in OSS-Fuzz; DER only, every
//! length bounded by the input), and this module keeps only what is ours: turning its
//! SubjectPublicKeyInfo into [`KeyMaterial`] for the comparison, with the key types and curves
//! resigner supports and a named error for the rest. Nothing else is checked here: not the
//! signature, the chain, the validity period, names or extensions.
//!
//! May use: x509-parser, [`crate::keys::jwk`], [`crate::jose::alg`].

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::jose::alg::Curve;
use crate::keys::jwk::KeyMaterial;

/// Why no usable public key could be taken from a certificate. The texts are written to be
/// returned as-is in an API error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    #[error("certificate is not valid DER")]
    Der,
    #[error("certificate does not have the structure of an X.509 certificate")]
    Structure,
    #[error("certificate key type is not supported")]
    UnsupportedKeyType,
    #[error("certificate key is an RSA-PSS key, which is not supported; use rsaEncryption")]
    RsaPss,
    #[error("certificate key uses an elliptic curve that is not supported")]
    UnsupportedCurve,
    #[error("certificate key is a compressed EC point, which is not supported")]
    CompressedPoint,
    #[error("certificate public key is malformed")]
    MalformedKey,
}

/// Dotted OIDs of the key types and curves this module recognises.
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const PRIME256V1: &str = "1.2.840.10045.3.1.7";
const SECP384R1: &str = "1.3.132.0.34";
const SECP521R1: &str = "1.3.132.0.35";
const ED25519: &str = "1.3.101.112";

/// DER tags of the parameter values read here.
const NULL: u8 = 0x05;
const OID: u8 = 0x06;

/// The public key of a DER certificate (one `x5c` entry, base64-decoded).
pub fn leaf_public_key(cert_der: &[u8]) -> Result<KeyMaterial, X509Error> {
    let (rest, certificate) = X509Certificate::from_der(cert_der).map_err(|err| match err {
        x509_parser::nom::Err::Incomplete(_) => X509Error::Der,
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => match e {
            x509_parser::error::X509Error::Der(_) => X509Error::Der,
            _ => X509Error::Structure,
        },
    })?;
    if !rest.is_empty() {
        return Err(X509Error::Structure);
    }
    public_key(certificate.public_key())
}

/// The public key of a DER SubjectPublicKeyInfo (a `PUBLIC KEY` PEM block, as a KMS such as
/// Vault Transit publishes a key it holds).
pub fn spki_public_key(der: &[u8]) -> Result<KeyMaterial, X509Error> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(der).map_err(|_| X509Error::Der)?;
    if !rest.is_empty() {
        return Err(X509Error::Structure);
    }
    public_key(&spki)
}

/// SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT
/// STRING }, AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }.
fn public_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyMaterial, X509Error> {
    let algorithm = spki.algorithm.algorithm.to_id_string();
    let parameters = spki.algorithm.parameters.as_ref();
    let bits = &spki.subject_public_key;
    if bits.unused_bits != 0 {
        return Err(X509Error::MalformedKey);
    }
    let key: &[u8] = &bits.data;
    match algorithm.as_str() {
        RSA_ENCRYPTION => {
            // RFC 3279 §2.3.1: parameters are NULL; tolerate their absence.
            if parameters.is_some_and(|p| p.header.tag().0 != u32::from(NULL) || !p.data.is_empty())
            {
                return Err(X509Error::Structure);
            }
            rsa_public_key(key)
        }
        EC_PUBLIC_KEY => {
            // RFC 5480 §2.1.1: ECParameters is a CHOICE; only namedCurve (an OID) is supported.
            let curve = parameters
                .filter(|p| p.header.tag().0 == u32::from(OID))
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            let curve = match curve.as_deref() {
                Some(PRIME256V1) => Curve::P256,
                Some(SECP384R1) => Curve::P384,
                Some(SECP521R1) => Curve::P521,
                _ => return Err(X509Error::UnsupportedCurve),
            };
            ec_point(curve, key)
        }
        ED25519 => {
            // RFC 8410 §3: parameters are absent.
            if parameters.is_some() || key.len() != 32 {
                return Err(X509Error::MalformedKey);
            }
            Ok(KeyMaterial::Ed25519 { x: key.to_vec() })
        }
        RSASSA_PSS => Err(X509Error::RsaPss),
        _ => Err(X509Error::UnsupportedKeyType),
    }
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 A.1.1),
/// decoded by x509-parser; the members are then checked to be positive.
fn rsa_public_key(der: &[u8]) -> Result<KeyMaterial, X509Error> {
    let (rest, key) = x509_parser::public_key::RSAPublicKey::from_der(der)
        .map_err(|_| X509Error::MalformedKey)?;
    if !rest.is_empty() {
        return Err(X509Error::MalformedKey);
    }
    Ok(KeyMaterial::Rsa {
        n: positive_integer(key.modulus)?,
        e: positive_integer(key.exponent)?,
    })
}

/// A positive INTEGER's magnitude, big-endian without leading zero octets (the JWK form).
fn positive_integer(content: &[u8]) -> Result<Vec<u8>, X509Error> {
    match content.first() {
        Some(first) if first & 0x80 == 0 => {}
        _ => return Err(X509Error::MalformedKey), // empty or negative
    }
    let start = content
        .iter()
        .position(|&b| b != 0)
        .ok_or(X509Error::MalformedKey)?; // zero
    Ok(content.get(start..).unwrap_or_default().to_vec())
}

/// An uncompressed point `0x04 || x || y` with fixed-length coordinates (SEC 1 §2.3.3).
fn ec_point(curve: Curve, point: &[u8]) -> Result<KeyMaterial, X509Error> {
    let len = curve.coordinate_len();
    match point.split_first() {
        Some((0x04, xy)) if xy.len() == 2 * len => {
            let (x, y) = xy.split_at(len);
            Ok(KeyMaterial::Ec {
                curve,
                x: x.to_vec(),
                y: y.to_vec(),
            })
        }
        Some((0x02 | 0x03, xy)) if xy.len() == len => Err(X509Error::CompressedPoint),
        _ => Err(X509Error::MalformedKey),
    }
}

#[cfg(test)]
mod tests;
