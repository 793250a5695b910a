//! Validation of customer public keys imported through the management API (and of the
//! stored set when it is loaded or edited on disk): Auth0's JWK schema plus what safety needs.
//! The raw JSON is checked member by member, because serde would silently drop `d` or `k`.
//! A set is accepted whole or rejected whole, and every message names the key (index and
//! kid) and the member at fault.

use std::collections::HashSet;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::jwk::KeyMaterial;
use super::x509;
use crate::jose::alg::{Alg, KeyFamily};
use crate::jose::b64;
use crate::jose::json;

/// At most this many keys in a set (Auth0's limit).
pub const MAX_KEYS: usize = 10;
/// At most this many bytes in a PUT body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const ALLOWED: [&str; 14] = [
    "kty", "kid", "use", "key_ops", "alg", "n", "e", "crv", "x", "y", "x5c", "x5t", "x5t#S256",
    "x5u",
];
const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why an import was refused: a message for the API client and an Auth0-style error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ImportError {
    pub message: String,
    pub code: &'static str,
}

impl ImportError {
    fn body(message: impl Into<String>) -> Self {
        ImportError {
            message: message.into(),
            code: "invalid_body",
        }
    }
}

/// A validated customer key: the JWK as stored (kid filled in) and its parsed material.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedKey {
    pub kid: String,
    pub alg: Option<Alg>,
    pub material: KeyMaterial,
    pub json: Map<String, Value>,
}

/// Validates a PUT body `{"keys": [...]}`. `idp_kids` are the IdP's current kids, which an
/// imported key may not reuse.
pub fn parse_body(
    body: &[u8],
    idp_kids: &HashSet<String>,
) -> Result<Vec<ImportedKey>, ImportError> {
    let document = json::parse_value(body)
        .map_err(|err| match err {
            json::JsonError::Duplicate(name) => json::JsonError::Duplicate(shown(&name)),
            other => other,
        })
        .map_err(|err| ImportError::body(format!("Payload validation error: body is {err}")))?;
    let Value::Object(document) = document else {
        return Err(ImportError::body(
            "Payload validation error: body must be an object {\"keys\": [...]}",
        ));
    };
    if let Some(other) = document.keys().find(|name| *name != "keys") {
        return Err(ImportError::body(format!(
            "Payload validation error: unknown top-level member {:?}",
            shown(other)
        )));
    }
    let keys = match document.get("keys") {
        Some(Value::Array(keys)) => keys,
        Some(_) => {
            return Err(ImportError::body(
                "Payload validation error: \"keys\" must be an array",
            ));
        }
        None => {
            return Err(ImportError::body(
                "Payload validation error: missing required member \"keys\"",
            ));
        }
    };
    if keys.is_empty() {
        return Err(ImportError::body(
            "Payload validation error: \"keys\" must hold at least one key",
        ));
    }
    validate_keys(keys, idp_kids)
}

/// Validates a list of JWKs as a set (1 to 10 keys, unique kids, none an IdP kid).
pub fn validate_keys(
    keys: &[Value],
    idp_kids: &HashSet<String>,
) -> Result<Vec<ImportedKey>, ImportError> {
    if keys.len() > MAX_KEYS {
        return Err(ImportError::body(format!(
            "Payload validation error: {} keys given; at most {MAX_KEYS} custom signing keys are allowed",
            keys.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let imported = validate_key(index, key)?;
        let at = format!("keys[{index}] (kid {:?})", imported.kid);
        if !seen.insert(imported.kid.clone()) {
            return Err(ImportError::body(format!(
                "{at}: duplicate kid; every key needs its own kid"
            )));
        }
        if idp_kids.contains(&imported.kid) {
            return Err(ImportError::body(format!(
                "{at}: kid is already used by a key of the identity provider"
            )));
        }
        out.push(imported);
    }
    Ok(out)
}

/// A member name as messages show it: at most 64 characters, like kids, so a client's 60 KB
/// name is not echoed back (or logged, for an edit of the store file) in full.
fn shown(name: &str) -> String {
    name.chars().take(64).collect()
}

fn validate_key(index: usize, key: &Value) -> Result<ImportedKey, ImportError> {
    let Value::Object(jwk) = key else {
        return Err(ImportError::body(format!(
            "keys[{index}]: must be a JSON object (a JWK)"
        )));
    };
    let named_kid = jwk
        .get("kid")
        .and_then(Value::as_str)
        .map(|kid| kid.chars().take(64).collect::<String>());
    let at = match &named_kid {
        Some(kid) => format!("keys[{index}] (kid {kid:?})"),
        None => format!("keys[{index}] (no kid)"),
    };
    let fail = |member: &str, problem: &str| {
        ImportError::body(format!("{at}: member {:?} {problem}", shown(member)))
    };
    for (name, _) in jwk.iter() {
        if PRIVATE.contains(&name.as_str()) {
            return Err(ImportError::body(format!(
                "{at}: member {name:?} is private key material; private keys must never be uploaded, only public JWKs"
            )));
        }
        if name == "x5u" {
            return Err(fail(
                "x5u",
                "is not accepted: resigner never fetches key URLs; send the certificate chain in x5c",
            ));
        }
        if !ALLOWED.contains(&name.as_str()) {
            return Err(fail(name, "is not an allowed JWK member"));
        }
    }
    let string = |name: &'static str| -> Result<Option<&str>, ImportError> {
        match jwk.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(fail(name, "must be a string")),
        }
    };
    let kty = string("kty")?.ok_or_else(|| fail("kty", "is required"))?;
    let family_members: &[&str] = match kty {
        "RSA" => &["n", "e"],
        "EC" => &["crv", "x", "y"],
        "OKP" => &["crv", "x"],
        _ => return Err(fail("kty", "must be \"RSA\", \"EC\" or \"OKP\"")),
    };
    for member in ["n", "e", "crv", "x", "y"] {
        if jwk.contains_key(member) && !family_members.contains(&member) {
            return Err(fail(member, &format!("does not belong to a {kty} key")));
        }
    }
    for member in family_members {
        string(member)?.ok_or_else(|| fail(member, &format!("is required for a {kty} key")))?;
    }
    if let Some(kid) = string("kid")?
        && (kid.is_empty() || kid.len() > 256 || kid.chars().any(char::is_control))
    {
        return Err(fail(
            "kid",
            "must be 1 to 256 characters without control characters",
        ));
    }
    if string("use")?.is_some_and(|use_| use_ != "sig") {
        return Err(fail(
            "use",
            "must be \"sig\": custom keys verify signatures",
        ));
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops
            .as_array()
            .ok_or_else(|| fail("key_ops", "must be an array of strings"))?;
        if ops.len() != 1 || ops[0] != "verify" {
            return Err(fail(
                "key_ops",
                "must be [\"verify\"]: a public signing key only verifies",
            ));
        }
    }
    let alg = match string("alg")? {
        None => None,
        Some(name) => Some(Alg::parse(name).ok_or_else(|| {
            fail("alg", "must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA")
        })?),
    };
    for member in ["n", "e", "x", "y", "x5t", "x5t#S256"] {
        if string(member)?.is_some_and(|text| b64::decode(text).is_none()) {
            return Err(fail(member, "must be base64url without padding"));
        }
    }
    if kty == "RSA" {
        let n = b64::decode(string("n")?.unwrap_or_default()).unwrap_or_default();
        if n.first() == Some(&0) {
            return Err(fail("n", "must not start with a zero octet"));
        }
        let e = b64::decode(string("e")?.unwrap_or_default()).unwrap_or_default();
        if e != [1, 0, 1] {
            return Err(fail("e", "must be AQAB (65537)"));
        }
    }
    let material = KeyMaterial::from_jwk(jwk)
        .map_err(|err| ImportError::body(format!("{at}: {err}")))?
        .ok_or_else(|| fail("kty", "is not supported"))?;
    if let Some(alg) = alg
        && alg.family() != material.family()
    {
        let what = match &material {
            KeyMaterial::Ec { curve, .. } => format!("an EC key on curve {}", curve.name()),
            _ => format!("a {kty} key"),
        };
        return Err(fail("alg", &format!("cannot be used with {what}")));
    }
    let check_alg = alg.unwrap_or(match material.family() {
        KeyFamily::Rsa => Alg::RS256,
        KeyFamily::Ec(crate::jose::alg::Curve::P256) => Alg::ES256,
        KeyFamily::Ec(crate::jose::alg::Curve::P384) => Alg::ES384,
        KeyFamily::Ec(crate::jose::alg::Curve::P521) => Alg::ES512,
        KeyFamily::Ed25519 => Alg::EdDSA,
    });
    material.parse_for(check_alg).map_err(|_| {
        ImportError::body(format!(
            "{at}: the public key is not valid (for EC keys: the point is not on the curve)"
        ))
    })?;
    check_certificates(jwk, &material, &fail)?;
    let kid = match string("kid")? {
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

fn check_certificates(
    jwk: &Map<String, Value>,
    material: &KeyMaterial,
    fail: &dyn Fn(&str, &str) -> ImportError,
) -> Result<(), ImportError> {
    let leaf = match jwk.get("x5c") {
        None => None,
        Some(Value::Array(chain)) if !chain.is_empty() && chain.len() <= 10 => {
            let mut certs = Vec::with_capacity(chain.len());
            for cert in chain {
                let der = cert
                    .as_str()
                    .and_then(|text| STANDARD.decode(text).ok())
                    .ok_or_else(|| {
                        fail("x5c", "must hold base64 (not base64url) DER certificates")
                    })?;
                certs.push(der);
            }
            let leaf = certs.swap_remove(0);
            let key = x509::leaf_public_key(&leaf)
                .map_err(|err| fail("x5c", &format!("leaf certificate: {err}")))?;
            if &key != material {
                return Err(fail(
                    "x5c",
                    "leaf certificate carries a different public key than the JWK",
                ));
            }
            Some(leaf)
        }
        Some(_) => return Err(fail("x5c", "must be an array of 1 to 10 certificates")),
    };
    for (member, algorithm, len) in [
        ("x5t", &digest::SHA1_FOR_LEGACY_USE_ONLY, 20),
        ("x5t#S256", &digest::SHA256, 32),
    ] {
        let Some(Value::String(text)) = jwk.get(member) else {
            continue;
        };
        let given = b64::decode(text).unwrap_or_default();
        if given.len() != len {
            return Err(fail(member, &format!("must be a {len}-byte thumbprint")));
        }
        if leaf
            .as_ref()
            .is_some_and(|leaf| digest::digest(algorithm, leaf).as_ref() != given.as_slice())
        {
            return Err(fail(member, "does not match the x5c leaf certificate"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use serde_json::json;

    fn public(alg: Alg) -> Map<String, Value> {
        let der = SigningKey::generate_pkcs8(alg).unwrap();
        SigningKey::from_pkcs8(&der, alg, None)
            .unwrap()
            .public_jwk()
            .to_json()
    }

    fn check(keys: Value) -> Result<Vec<ImportedKey>, ImportError> {
        parse_body(
            json!({ "keys": keys }).to_string().as_bytes(),
            &HashSet::from(["idp-kid".to_string()]),
        )
    }

    #[test]
    fn accepts_every_algorithm_and_fills_missing_kids() {
        let mut keys = vec![];
        for alg in [
            Alg::RS256,
            Alg::PS384,
            Alg::ES256,
            Alg::ES384,
            Alg::ES512,
            Alg::EdDSA,
        ] {
            keys.push(Value::Object(public(alg)));
        }
        let mut bare = public(Alg::ES256);
        bare.remove("kid");
        bare.remove("alg");
        bare.remove("use");
        keys.push(Value::Object(bare.clone()));
        let imported = check(Value::from(keys)).unwrap();
        assert_eq!(imported.len(), 7);
        let last = imported.last().unwrap();
        assert_eq!(
            last.kid,
            last.material.thumbprint(),
            "kid defaults to the RFC 7638 thumbprint"
        );
        assert_eq!(last.json["kid"], last.kid.as_str());
    }

    #[test]
    fn rejections_name_the_key_and_the_member() {
        let good = Value::Object(public(Alg::ES256));
        let with = |member: &str, value: Value| {
            let mut key = good.clone();
            key[member] = value;
            key
        };
        let cases: Vec<(Value, &str)> = vec![
            (with("d", json!("AAAA")), "private key material"),
            (with("k", json!("AAAA")), "private key material"),
            (with("x5u", json!("http://127.0.0.1/")), "never fetches"),
            (with("extra", json!(1)), "\"extra\" is not an allowed"),
            (with("use", json!("enc")), "\"use\" must be \"sig\""),
            (with("key_ops", json!(["sign"])), "key_ops"),
            (with("alg", json!("RS256")), "cannot be used with an EC key"),
            (
                with("alg", json!("ES384")),
                "cannot be used with an EC key on curve P-256",
            ),
            (with("alg", json!("none")), "\"alg\" must be one of"),
            (with("alg", json!("HS256")), "\"alg\" must be one of"),
            (
                with("x", json!(format!("{}=", good["x"].as_str().unwrap()))),
                "base64url without padding",
            ),
            (with("y", json!(b64::encode([7u8; 32]))), "not on the curve"),
            (with("x", json!(b64::encode([7u8; 31]))), "wrong length"),
            (with("n", json!("AQAB")), "does not belong to a EC key"),
            (with("kty", json!("oct")), "\"kty\" must be"),
            (with("kid", json!(7)), "\"kid\" must be a string"),
            (with("kid", json!("idp-kid")), "identity provider"),
            (with("x5c", json!(["not base64!"])), "x5c"),
            (
                with("x5t", json!(b64::encode([1u8; 19]))),
                "20-byte thumbprint",
            ),
            (json!("a string"), "must be a JSON object"),
        ];
        for (key, expected) in cases {
            let err = check(json!([key])).unwrap_err();
            assert!(
                err.message.contains(expected),
                "{expected:?} not in {:?}",
                err.message
            );
            assert!(err.message.contains("keys[0]"), "{}", err.message);
        }
        let mut rsa = public(Alg::RS256);
        rsa.insert("e".into(), json!("Aw"));
        assert!(check(json!([rsa])).unwrap_err().message.contains("AQAB"));
        let small = json!({"kty": "RSA", "n": b64::encode([0xc5u8; 128]), "e": "AQAB"});
        assert!(
            check(json!([small]))
                .unwrap_err()
                .message
                .contains("1024 bits")
        );
        let zero = json!({"kty": "RSA", "n": b64::encode([0u8, 0xc5].repeat(129)), "e": "AQAB"});
        assert!(
            check(json!([zero]))
                .unwrap_err()
                .message
                .contains("zero octet")
        );
    }

    #[test]
    fn set_rules() {
        let key = Value::Object(public(Alg::ES256));
        assert!(
            check(json!([key, key]))
                .unwrap_err()
                .message
                .contains("duplicate kid")
        );
        assert!(
            check(json!([]))
                .unwrap_err()
                .message
                .contains("at least one")
        );
        let eleven: Vec<Value> = (0..11).map(|_| Value::Object(public(Alg::EdDSA))).collect();
        assert!(
            check(Value::from(eleven))
                .unwrap_err()
                .message
                .contains("at most 10")
        );
        let body = br#"{"keys": [], "keys": []}"#;
        assert!(
            parse_body(body, &HashSet::new())
                .unwrap_err()
                .message
                .contains("more than once")
        );
        assert!(
            parse_body(br#"{"keys": [], "other": 1}"#, &HashSet::new())
                .unwrap_err()
                .message
                .contains("other")
        );
        assert!(parse_body(b"nope", &HashSet::new()).is_err());
    }
}
