//! One imported JWK checked member by member, in the order a client can act on: members that
//! must never appear (private material, `x5u`) or are unknown, the key type and its members,
//! the usage members (`kid`, `use`, `key_ops`, `alg`), encodings and RSA's fixed form, then the
//! key itself (on the curve, big enough, of the `alg`'s family, not weak) and its
//! certificates (`x5c`, `x5t`, `x5t#S256`). Every message names the key (index and kid) and
//! the member at fault.
//!
//! May use: [`crate::keys::jwk`], [`crate::keys::weak`], [`crate::keys::x509`],
//! [`crate::jose`], aws-lc-rs digests.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::{ImportError, ImportedKey};
use crate::jose::alg::{Alg, Curve, KeyFamily};
use crate::jose::b64;
use crate::keys::jwk::KeyMaterial;
use crate::keys::{weak, x509};

const ALLOWED: [&str; 14] = [
    "kty", "kid", "use", "key_ops", "alg", "n", "e", "crv", "x", "y", "x5c", "x5t", "x5t#S256",
    "x5u",
];
const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Validates the JWK at `keys[index]`.
pub(super) fn validate_key(index: usize, key: &Value) -> Result<ImportedKey, ImportError> {
    let Value::Object(jwk) = key else {
        return Err(ImportError::body(format!(
            "keys[{index}]: must be a JSON object (a JWK)"
        )));
    };
    let key = Jwk::new(index, jwk);
    key.members()?;
    let kty = key.key_type()?;
    key.usage()?;
    let alg = key.alg()?;
    key.encodings(kty)?;
    let material = key.material(kty, alg)?;
    key.certificates(&material)?;
    let kid = match key.string("kid")? {
        Some(kid) => kid.to_string(),
        None => material.thumbprint(),
    };
    let mut stored = jwk.clone();
    stored.insert("kid".into(), Value::from(kid.clone()));
    Ok(ImportedKey {
        kid,
        alg,
        material,
        json: stored,
    })
}

/// A JWK under validation and where it stands in the request, for messages.
struct Jwk<'a> {
    jwk: &'a Map<String, Value>,
    /// `keys[2] (kid "a")` or `keys[2] (no kid)`.
    at: String,
}

impl<'a> Jwk<'a> {
    fn new(index: usize, jwk: &'a Map<String, Value>) -> Self {
        let at = match jwk.get("kid").and_then(Value::as_str) {
            Some(kid) => format!("keys[{index}] (kid {:?})", shown(kid)),
            None => format!("keys[{index}] (no kid)"),
        };
        Jwk { jwk, at }
    }

    fn fail(&self, member: &str, problem: &str) -> ImportError {
        ImportError::body(format!("{}: member {:?} {problem}", self.at, shown(member)))
    }

    /// A string member, `None` when absent; any other JSON type is refused.
    fn string(&self, name: &'static str) -> Result<Option<&'a str>, ImportError> {
        match self.jwk.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(self.fail(name, "must be a string")),
        }
    }

    /// No private material, no key URL, nothing outside Auth0's JWK schema.
    fn members(&self) -> Result<(), ImportError> {
        for (name, _) in self.jwk.iter() {
            if PRIVATE.contains(&name.as_str()) {
                return Err(ImportError::body(format!(
                    "{}: member {name:?} is private key material; private keys must never be uploaded, only public JWKs",
                    self.at
                )));
            }
            if name == "x5u" {
                return Err(self.fail(
                    "x5u",
                    "is not accepted: resigner never fetches key URLs; send the certificate chain in x5c",
                ));
            }
            if !ALLOWED.contains(&name.as_str()) {
                return Err(self.fail(name, "is not an allowed JWK member"));
            }
        }
        Ok(())
    }

    /// `kty`, with exactly the members of its family.
    fn key_type(&self) -> Result<&'a str, ImportError> {
        let kty = self
            .string("kty")?
            .ok_or_else(|| self.fail("kty", "is required"))?;
        let family_members: &[&str] = match kty {
            "RSA" => &["n", "e"],
            "EC" => &["crv", "x", "y"],
            "OKP" => &["crv", "x"],
            _ => return Err(self.fail("kty", "must be \"RSA\", \"EC\" or \"OKP\"")),
        };
        for member in ["n", "e", "crv", "x", "y"] {
            if self.jwk.contains_key(member) && !family_members.contains(&member) {
                return Err(self.fail(member, &format!("does not belong to a {kty} key")));
            }
        }
        for member in family_members {
            self.string(member)?
                .ok_or_else(|| self.fail(member, &format!("is required for a {kty} key")))?;
        }
        Ok(kty)
    }

    /// `kid`, `use` and `key_ops`: a key that verifies signatures.
    fn usage(&self) -> Result<(), ImportError> {
        if let Some(kid) = self.string("kid")?
            && (kid.is_empty() || kid.len() > 256 || kid.chars().any(char::is_control))
        {
            return Err(self.fail(
                "kid",
                "must be 1 to 256 characters without control characters",
            ));
        }
        if self.string("use")?.is_some_and(|use_| use_ != "sig") {
            return Err(self.fail("use", "must be \"sig\": custom keys verify signatures"));
        }
        if let Some(ops) = self.jwk.get("key_ops") {
            let ops = ops
                .as_array()
                .ok_or_else(|| self.fail("key_ops", "must be an array of strings"))?;
            if ops.len() != 1 || ops[0] != "verify" {
                return Err(self.fail(
                    "key_ops",
                    "must be [\"verify\"]: a public signing key only verifies",
                ));
            }
        }
        Ok(())
    }

    fn alg(&self) -> Result<Option<Alg>, ImportError> {
        self.string("alg")?
            .map(|name| {
                Alg::parse(name).ok_or_else(|| {
                    self.fail("alg", "must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA")
                })
            })
            .transpose()
    }

    /// base64url members, and RSA's minimal modulus and fixed exponent.
    fn encodings(&self, kty: &str) -> Result<(), ImportError> {
        for member in ["n", "e", "x", "y", "x5t", "x5t#S256"] {
            if self
                .string(member)?
                .is_some_and(|text| b64::decode(text).is_none())
            {
                return Err(self.fail(member, "must be base64url without padding"));
            }
        }
        if kty == "RSA" {
            let decoded =
                |name| Ok(b64::decode(self.string(name)?.unwrap_or_default()).unwrap_or_default());
            if decoded("n")?.first() == Some(&0) {
                return Err(self.fail("n", "must not start with a zero octet"));
            }
            if decoded("e")? != [1, 0, 1] {
                return Err(self.fail("e", "must be AQAB (65537)"));
            }
        }
        Ok(())
    }

    /// The key itself: a supported, valid key of the `alg`'s family.
    fn material(&self, kty: &str, alg: Option<Alg>) -> Result<KeyMaterial, ImportError> {
        let material = KeyMaterial::from_jwk(self.jwk)
            .map_err(|err| ImportError::body(format!("{}: {err}", self.at)))?
            .ok_or_else(|| self.fail("kty", "is not supported"))?;
        if let Some(alg) = alg
            && alg.family() != material.family()
        {
            let what = match &material {
                KeyMaterial::Ec { curve, .. } => format!("an EC key on curve {}", curve.name()),
                _ => format!("a {kty} key"),
            };
            return Err(self.fail("alg", &format!("cannot be used with {what}")));
        }
        let check_alg = alg.unwrap_or(match material.family() {
            KeyFamily::Rsa => Alg::RS256,
            KeyFamily::Ec(Curve::P256) => Alg::ES256,
            KeyFamily::Ec(Curve::P384) => Alg::ES384,
            KeyFamily::Ec(Curve::P521) => Alg::ES512,
            KeyFamily::Ed25519 => Alg::EdDSA,
        });
        material.parse_for(check_alg).map_err(|_| {
            ImportError::body(format!(
                "{}: the public key is not valid (for EC keys: the point is not on the curve)",
                self.at
            ))
        })?;
        weak::check(&material).map_err(|weak| ImportError::weak(&self.at, &weak))?;
        Ok(material)
    }

    /// `x5c` (its leaf carries this key) and the thumbprints of that leaf.
    fn certificates(&self, material: &KeyMaterial) -> Result<(), ImportError> {
        let leaf = match self.jwk.get("x5c") {
            None => None,
            Some(Value::Array(chain)) if !chain.is_empty() && chain.len() <= 10 => {
                let mut certs = Vec::with_capacity(chain.len());
                for cert in chain {
                    let der = cert
                        .as_str()
                        .and_then(|text| STANDARD.decode(text).ok())
                        .ok_or_else(|| {
                            self.fail("x5c", "must hold base64 (not base64url) DER certificates")
                        })?;
                    certs.push(der);
                }
                let leaf = certs.swap_remove(0);
                let key = x509::leaf_public_key(&leaf)
                    .map_err(|err| self.fail("x5c", &format!("leaf certificate: {err}")))?;
                if &key != material {
                    return Err(self.fail(
                        "x5c",
                        "leaf certificate carries a different public key than the JWK",
                    ));
                }
                Some(leaf)
            }
            Some(_) => return Err(self.fail("x5c", "must be an array of 1 to 10 certificates")),
        };
        for (member, algorithm, len) in [
            ("x5t", &digest::SHA1_FOR_LEGACY_USE_ONLY, 20),
            ("x5t#S256", &digest::SHA256, 32),
        ] {
            let Some(Value::String(text)) = self.jwk.get(member) else {
                continue;
            };
            let given = b64::decode(text).unwrap_or_default();
            if given.len() != len {
                return Err(self.fail(member, &format!("must be a {len}-byte thumbprint")));
            }
            if leaf
                .as_ref()
                .is_some_and(|leaf| digest::digest(algorithm, leaf).as_ref() != given.as_slice())
            {
                return Err(self.fail(member, "does not match the x5c leaf certificate"));
            }
        }
        Ok(())
    }
}

/// A member name or kid as it appears in a message: at most 64 characters.
pub(super) fn shown(name: &str) -> String {
    name.chars().take(64).collect()
}
