//! Public JWKs (RFC 7517): the key material resigner verifies with (IdP keys) and publishes
//! (signing keys), RFC 7638 thumbprints for default kids, and rendering that can only ever
//! emit public members.

use aws_lc_rs::digest;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::ParsedPublicKey;
use serde_json::{Map, Value, json};

use crate::jose::alg::{Alg, Curve, KeyFamily};
use crate::jose::b64;

/// The public part of a signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

/// Why a JWK could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwkError {
    #[error("member {0:?} is missing or not a string")]
    Missing(&'static str),
    #[error("member {0:?} is not base64url without padding")]
    Base64(&'static str),
    #[error("RSA modulus has {0} bits; 2048 to 8192 are accepted")]
    RsaSize(usize),
    #[error("unsupported curve {0:?}")]
    Curve(String),
    #[error("coordinate {0:?} has the wrong length for the curve")]
    CoordinateLength(&'static str),
    #[error("the key does not fit algorithm {0}")]
    AlgMismatch(Alg),
    #[error("the key material was rejected by the crypto library")]
    Rejected,
}

impl KeyMaterial {
    pub fn family(&self) -> KeyFamily {
        match self {
            KeyMaterial::Rsa { .. } => KeyFamily::Rsa,
            KeyMaterial::Ec { curve, .. } => KeyFamily::Ec(*curve),
            KeyMaterial::Ed25519 { .. } => KeyFamily::Ed25519,
        }
    }

    /// Parses the key-type members of a JWK object (`kty` and its public members).
    /// Returns `Ok(None)` for a key type resigner does not use (e.g. `oct`).
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<Option<Self>, JwkError> {
        let kty = string(jwk, "kty")?;
        Ok(Some(match kty {
            "RSA" => {
                let n = strip_leading_zeros(bytes(jwk, "n")?);
                let e = strip_leading_zeros(bytes(jwk, "e")?);
                // An empty `n` is 0 bits (it underflowed here: a panic with overflow checks).
                let bits = n
                    .first()
                    .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
                if !(2048..=8192).contains(&bits) {
                    return Err(JwkError::RsaSize(bits));
                }
                KeyMaterial::Rsa { n, e }
            }
            "EC" => {
                let crv = string(jwk, "crv")?;
                let curve = Curve::parse(crv).ok_or_else(|| JwkError::Curve(crv.to_string()))?;
                let x = bytes(jwk, "x")?;
                let y = bytes(jwk, "y")?;
                if x.len() != curve.coordinate_len() {
                    return Err(JwkError::CoordinateLength("x"));
                }
                if y.len() != curve.coordinate_len() {
                    return Err(JwkError::CoordinateLength("y"));
                }
                KeyMaterial::Ec { curve, x, y }
            }
            "OKP" => {
                let crv = string(jwk, "crv")?;
                if crv != "Ed25519" {
                    return Err(JwkError::Curve(crv.to_string()));
                }
                let x = bytes(jwk, "x")?;
                if x.len() != 32 {
                    return Err(JwkError::CoordinateLength("x"));
                }
                KeyMaterial::Ed25519 { x }
            }
            _ => return Ok(None),
        }))
    }

    /// The public members of the JWK, `kty` included, in RFC 7638 order.
    pub fn members(&self) -> Map<String, Value> {
        let value = match self {
            KeyMaterial::Rsa { n, e } => {
                json!({"e": b64::encode(e), "kty": "RSA", "n": b64::encode(n)})
            }
            KeyMaterial::Ec { curve, x, y } => json!({
                "crv": curve.name(), "kty": "EC", "x": b64::encode(x), "y": b64::encode(y)
            }),
            KeyMaterial::Ed25519 { x } => {
                json!({"crv": "Ed25519", "kty": "OKP", "x": b64::encode(x)})
            }
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url): the default `kid`.
    pub fn thumbprint(&self) -> String {
        // serde_json's Map is ordered by key (no preserve_order feature), which is exactly
        // the lexicographic order RFC 7638 §3 requires; values contain no escapes.
        let canonical = serde_json::to_vec(&self.members()).unwrap_or_default();
        b64::encode(digest::digest(&digest::SHA256, &canonical))
    }

    /// Builds the parsed aws-lc-rs key for `alg`, refusing a family mismatch.
    pub fn parse_for(&self, alg: Alg) -> Result<ParsedPublicKey, JwkError> {
        if alg.family() != self.family() {
            return Err(JwkError::AlgMismatch(alg));
        }
        match self {
            KeyMaterial::Rsa { n, e } => {
                let params = alg.rsa_parameters().ok_or(JwkError::AlgMismatch(alg))?;
                PublicKeyComponents {
                    n: n.as_slice(),
                    e: e.as_slice(),
                }
                .to_parsed_public_key(params)
                .map_err(|_| JwkError::Rejected)
            }
            KeyMaterial::Ec { x, y, .. } => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                ParsedPublicKey::new(alg.verification(), point).map_err(|_| JwkError::Rejected)
            }
            KeyMaterial::Ed25519 { x } => {
                ParsedPublicKey::new(alg.verification(), x).map_err(|_| JwkError::Rejected)
            }
        }
    }
}

/// A key the proxy publishes: material plus `kid` and `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicJwk {
    pub kid: String,
    pub alg: Option<Alg>,
    pub material: KeyMaterial,
}

impl PublicJwk {
    /// The JWK object as published: `kty`, public members, `kid`, `use: sig`, `alg`.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut map = self.material.members();
        map.insert("kid".into(), Value::from(self.kid.clone()));
        map.insert("use".into(), Value::from("sig"));
        if let Some(alg) = self.alg {
            map.insert("alg".into(), Value::from(alg.name()));
        }
        map
    }
}

/// An IdP verification key: what the JWK said plus aws-lc-rs keys parsed once per usable alg.
pub struct VerifyKey {
    pub kid: Option<String>,
    /// The `alg` the JWK pins, if any; a token must then use exactly that.
    pub alg: Option<Alg>,
    pub material: KeyMaterial,
    parsed: Vec<(Alg, ParsedPublicKey)>,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field(
                "algs",
                &self.parsed.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl VerifyKey {
    /// Builds a verification key from an IdP JWK for the algorithms in `allowed`.
    /// `Ok(None)`: a key resigner has no use for (encryption key, symmetric key, an `alg`
    /// outside the allow-list); such keys are skipped, not fatal for the whole set.
    pub fn from_jwk(jwk: &Map<String, Value>, allowed: &[Alg]) -> Result<Option<Self>, JwkError> {
        if jwk.get("use").is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        if let Some(ops) = jwk.get("key_ops") {
            let verifies = ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|o| o == "verify"));
            if !verifies {
                return Ok(None);
            }
        }
        let alg = match jwk.get("alg") {
            None => None,
            Some(Value::String(name)) => match Alg::parse(name) {
                Some(alg) => Some(alg),
                None => return Ok(None),
            },
            Some(_) => return Err(JwkError::Missing("alg")),
        };
        let kid = match jwk.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(JwkError::Missing("kid")),
        };
        let Some(material) = KeyMaterial::from_jwk(jwk)? else {
            return Ok(None);
        };
        let candidates: Vec<Alg> = match alg {
            Some(alg) => vec![alg],
            None => allowed
                .iter()
                .copied()
                .filter(|a| a.family() == material.family())
                .collect(),
        };
        let mut parsed = Vec::new();
        for candidate in candidates.into_iter().filter(|a| allowed.contains(a)) {
            parsed.push((candidate, material.parse_for(candidate)?));
        }
        if parsed.is_empty() {
            return Ok(None);
        }
        Ok(Some(VerifyKey {
            kid,
            alg,
            material,
            parsed,
        }))
    }

    /// The parsed key for `alg`, or `None` when this key may not verify `alg` tokens.
    pub fn for_alg(&self, alg: Alg) -> Option<&ParsedPublicKey> {
        self.parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, key)| key)
    }

    /// The JWK as republished in the aggregated JWKS: public members only.
    pub fn public_json(&self) -> Map<String, Value> {
        let mut map = self.material.members();
        if let Some(kid) = &self.kid {
            map.insert("kid".into(), Value::from(kid.clone()));
        }
        map.insert("use".into(), Value::from("sig"));
        if let Some(alg) = self.alg {
            map.insert("alg".into(), Value::from(alg.name()));
        }
        map
    }
}

fn string<'a>(jwk: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, JwkError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or(JwkError::Missing(name))
}

fn bytes(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, JwkError> {
    b64::decode(string(jwk, name)?).ok_or(JwkError::Base64(name))
}

fn strip_leading_zeros(mut value: Vec<u8>) -> Vec<u8> {
    let zeros = value.iter().take_while(|b| **b == 0).count();
    value.drain(..zeros.min(value.len().saturating_sub(1)));
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookbook(name: &str) -> Map<String, Value> {
        let path = format!(
            "{}/tests/data/jose-cookbook/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn empty_rsa_modulus_is_refused_not_a_panic() {
        // Found by fuzz/ (target jwk_set): `"n": ""` decodes to no bytes, and the bit count
        // subtracted 8 from 0. The same JWK from the IdP's JWKS takes the same path.
        for n in ["", "AA", "AAAA"] {
            let jwk = json!({"kty": "RSA", "n": n, "e": "AQAB"});
            let jwk = jwk.as_object().unwrap();
            assert_eq!(KeyMaterial::from_jwk(jwk), Err(JwkError::RsaSize(0)));
            assert!(VerifyKey::from_jwk(jwk, &[Alg::RS256]).is_err());
        }
        let body = br#"{"keys":[{"kty":"RSA","n":"","e":"AQAB"}]}"#;
        let err = crate::keys::import::parse_body(body, &Default::default()).unwrap_err();
        assert!(
            err.message.contains("RSA modulus has 0 bits"),
            "{}",
            err.message
        );
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 §3.1: the RSA key of RFC 7517 A.1 has this thumbprint.
        let jwk: Map<String, Value> = serde_json::from_value(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        })).unwrap();
        let material = KeyMaterial::from_jwk(&jwk).unwrap().unwrap();
        assert_eq!(
            material.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn cookbook_keys_parse_and_publish_no_private_members() {
        let ec = cookbook("jwk_3_2.ec_private_key.json");
        let key = VerifyKey::from_jwk(&ec, &[Alg::ES512]).unwrap().unwrap();
        let published = key.public_json();
        assert!(!published.contains_key("d"));
        assert_eq!(published["crv"], "P-521");
        let rsa = cookbook("jwk_3_4.rsa_private_key.json");
        let key = VerifyKey::from_jwk(&rsa, &[Alg::RS256, Alg::PS256])
            .unwrap()
            .unwrap();
        assert!(key.for_alg(Alg::RS256).is_some() && key.for_alg(Alg::PS256).is_some());
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(!key.public_json().contains_key(private));
        }
    }

    #[test]
    fn skips_keys_it_has_no_use_for_and_rejects_bad_ones() {
        let enc = json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"});
        assert!(
            VerifyKey::from_jwk(enc.as_object().unwrap(), &[Alg::RS256])
                .unwrap()
                .is_none()
        );
        let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(
            VerifyKey::from_jwk(oct.as_object().unwrap(), &[Alg::RS256])
                .unwrap()
                .is_none()
        );
        let small = json!({"kty": "RSA", "n": b64::encode([0xffu8; 128]), "e": "AQAB"});
        assert_eq!(
            VerifyKey::from_jwk(small.as_object().unwrap(), &[Alg::RS256]).unwrap_err(),
            JwkError::RsaSize(1024)
        );
        let short = json!({"kty": "EC", "crv": "P-256", "x": b64::encode([1u8; 31]), "y": b64::encode([1u8; 32])});
        assert_eq!(
            VerifyKey::from_jwk(short.as_object().unwrap(), &[Alg::ES256]).unwrap_err(),
            JwkError::CoordinateLength("x")
        );
        let padded =
            json!({"kty": "OKP", "crv": "Ed25519", "x": format!("{}=", b64::encode([1u8; 32]))});
        assert_eq!(
            VerifyKey::from_jwk(padded.as_object().unwrap(), &[Alg::EdDSA]).unwrap_err(),
            JwkError::Base64("x")
        );
    }
}
