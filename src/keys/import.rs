//! Validation of customer public keys imported through the management API (and of the
//! stored set when it is loaded or edited on disk): Auth0's JWK schema plus what safety needs.
//! The raw JSON is checked member by member, because serde would silently drop `d` or `k`.
//! A set is accepted whole or rejected whole, and every message names the key (index and
//! kid) and the member at fault. A key that is valid but weak ([`crate::keys::weak`]: small
//! factor, close primes, ROCA, exponent) is refused with errorCode `weak_key`.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::jwk::KeyMaterial;
use super::weak::WeakKey;
use crate::jose::alg::Alg;
use crate::jose::json;

mod member;

use member::{shown, validate_key};

/// At most this many keys in a set (Auth0's limit).
pub const MAX_KEYS: usize = 10;
/// At most this many bytes in a PUT body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why an import was refused: a message for the API client and an Auth0-style error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ImportError {
    pub message: String,
    pub code: &'static str,
}

impl ImportError {
    pub(super) fn body(message: impl Into<String>) -> Self {
        ImportError {
            message: message.into(),
            code: "invalid_body",
        }
    }

    /// A key that parses but fails [`crate::keys::weak::check`]: errorCode `weak_key`.
    pub(super) fn weak(at: &str, weak: &WeakKey) -> Self {
        ImportError {
            message: format!("{at}: the key is weak and is refused: {weak}"),
            code: "weak_key",
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::b64;
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
    fn weak_keys_are_refused_with_their_kid_and_reason() {
        for (file, reason) in [
            ("small-factor.jwk.json", "divisible by 751"),
            ("close-primes.jwk.json", "too close together"),
            ("roca-mod03.jwk.json", "ROCA"),
        ] {
            let path = format!("{}/tests/data/weak-keys/{file}", env!("CARGO_MANIFEST_DIR"));
            let weak: Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let kid = weak["kid"].as_str().unwrap().to_string();
            let err = check(json!([public(Alg::ES256), weak])).unwrap_err();
            assert_eq!(err.code, "weak_key", "{file}");
            assert!(
                err.message.contains(&format!("keys[1] (kid {kid:?})")),
                "{}",
                err.message
            );
            assert!(err.message.contains(reason), "{}", err.message);
        }
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
