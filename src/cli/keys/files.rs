//! Key files turned into a public JWKS, for `keys jwks` and `keys import`: a public JWK or
//! JWKS file is validated exactly as the management API validates a PUT body (so a private
//! member is refused, never passed on), and of a PKCS#8 PEM private key only the public JWK
//! is ever rendered, its algorithm inferred when `--alg` is not given.
//!
//! May use: `keys` (PEM, signing keys, the import validation) and `jose`; no HTTP.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::KeysCliError;
use crate::jose::alg::Alg;
use crate::keys::SigningKey;
use crate::keys::import;
use crate::keys::pem;

/// The order algorithms are tried in for a PEM key given without `--alg`.
pub const INFER_ORDER: [Alg; 5] = [Alg::EdDSA, Alg::ES256, Alg::ES384, Alg::ES512, Alg::RS256];

/// Builds the public JWKS `{"keys": [...]}` of `files`, validated as the management API
/// validates a PUT body (except for the IdP kid check, which only the server can do).
/// `alg` and `kid` override the members of every key; `kid` needs exactly one key.
pub fn public_jwks(
    files: &[PathBuf],
    alg: Option<Alg>,
    kid: Option<&str>,
) -> Result<Value, KeysCliError> {
    if files.is_empty() {
        return Err(KeysCliError::Usage("no key file given".into()));
    }
    if kid.is_some() && files.len() != 1 {
        return Err(KeysCliError::Usage(format!(
            "--kid names one key, but {} files were given; give each key its kid in its .jwk.json \
             (keys generate --kid) instead",
            files.len()
        )));
    }
    let mut keys = Vec::new();
    for path in files {
        keys.extend(keys_from_file(path, alg, kid)?);
    }
    if kid.is_some() && keys.len() != 1 {
        return Err(KeysCliError::Usage(format!(
            "--kid names one key, but {} holds {}",
            files[0].display(),
            keys.len()
        )));
    }
    validated(keys)
}

/// The JWKS `{"keys": [...]}` of `keys`, validated as a PUT body is (kids filled in).
pub(super) fn validated(keys: Vec<Value>) -> Result<Value, KeysCliError> {
    let validated = import::validate_keys(&keys, &HashSet::new())
        .map_err(|err| KeysCliError::InvalidSet(err.message))?;
    let keys: Vec<Value> = validated
        .into_iter()
        .map(|k| Value::Object(k.json))
        .collect();
    Ok(json!({ "keys": keys }))
}

/// The public JWKs in one file: a JWK, a JWKS, or a PKCS#8 PEM private key.
pub(super) fn keys_from_file(
    path: &Path,
    alg: Option<Alg>,
    kid: Option<&str>,
) -> Result<Vec<Value>, KeysCliError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| KeysCliError::Read {
        path: shown.clone(),
        error,
    })?;
    let fail = |message: String| KeysCliError::KeyFile {
        path: shown.clone(),
        message,
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| fail("neither a JWK (JSON) nor a PEM file (DER is not read)".into()))?;
    if text.trim_start().starts_with('{') {
        let keys = jwks_members(text).map_err(fail)?;
        let mut out = Vec::with_capacity(keys.len());
        for mut key in keys {
            if let Value::Object(map) = &mut key {
                if let Some(alg) = alg {
                    map.insert("alg".into(), Value::from(alg.name()));
                }
                if let Some(kid) = kid {
                    map.insert("kid".into(), Value::from(kid));
                }
            }
            // Checked one by one so the message names the file.
            import::validate_keys(std::slice::from_ref(&key), &HashSet::new())
                .map_err(|err| fail(err.message))?;
            out.push(key);
        }
        return Ok(out);
    }
    let key = signing_key_from_pem(text, alg, kid.map(str::to_string)).map_err(fail)?;
    Ok(vec![Value::Object(key.public_jwk().to_json())])
}

/// The JWK objects of a JSON document: a single JWK, or every key of a JWKS.
fn jwks_members(text: &str) -> Result<Vec<Value>, String> {
    serde_json::from_str::<Value>(text).map_err(|err| format!("not valid JSON: {err}"))?;
    let value =
        crate::jose::json::parse_value(text.as_bytes()).map_err(|err| format!("refused: {err}"))?;
    match value {
        Value::Object(mut map) if !map.contains_key("kty") && map.contains_key("keys") => {
            match map.remove("keys") {
                Some(Value::Array(keys)) if !keys.is_empty() => Ok(keys),
                _ => Err("\"keys\" must be a non-empty array of JWKs".into()),
            }
        }
        Value::Object(map) => Ok(vec![Value::Object(map)]),
        _ => Err("must be a JWK or a JWKS (a JSON object)".into()),
    }
}

/// Parses a PKCS#8 PEM private key for `alg`, or for the first algorithm of [`INFER_ORDER`]
/// that fits it.
pub fn signing_key_from_pem(
    text: &str,
    alg: Option<Alg>,
    kid: Option<String>,
) -> Result<SigningKey, String> {
    let der = pem::decode(text, "PRIVATE KEY").map_err(|err| pem_hint(text, err))?;
    if let Some(alg) = alg {
        return SigningKey::from_pkcs8(&der, alg, kid)
            .map_err(|reason| format!("not a PKCS#8 private key for {alg} ({reason})"));
    }
    let mut rsa_error = None;
    for candidate in INFER_ORDER {
        match SigningKey::from_pkcs8(&der, candidate, kid.clone()) {
            Ok(key) => return Ok(key),
            Err(reason) if candidate == Alg::RS256 => rsa_error = Some(reason),
            Err(_) => {}
        }
    }
    // An RSA key of the wrong size parses as RSA and says so; other failures say "no fit".
    match rsa_error {
        Some(reason) if reason.contains("bits") => Err(reason),
        _ => Err(
            "not a private key resigner can sign with (Ed25519, P-256, P-384, P-521 or RSA \
             2048 to 8192 bits in PKCS#8)"
                .into(),
        ),
    }
}

fn pem_hint(text: &str, err: pem::PemError) -> String {
    let hint = if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        "; the key is encrypted: decrypt it first (openssl pkcs8 -in KEY -out KEY.pem)"
    } else if text.contains("-----BEGIN RSA PRIVATE KEY-----")
        || text.contains("-----BEGIN EC PRIVATE KEY-----")
    {
        "; convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pem)"
    } else if text.contains("-----BEGIN PUBLIC KEY-----")
        || text.contains("-----BEGIN CERTIFICATE-----")
    {
        "; give the private key (PKCS#8 PEM) or the public .jwk.json instead"
    } else {
        ""
    };
    format!("neither a JWK (JSON) nor a PKCS#8 PEM private key: {err}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_keys_infer_their_algorithm_and_publish_only_public_members() {
        for alg in [Alg::EdDSA, Alg::ES256, Alg::ES384, Alg::ES512, Alg::RS256] {
            let der = SigningKey::generate_pkcs8(alg).unwrap();
            let text = pem::encode(&der, "PRIVATE KEY");
            let key = signing_key_from_pem(&text, None, None).unwrap();
            assert_eq!(key.alg(), alg);
            let jwk = key.public_jwk().to_json();
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(!jwk.contains_key(private));
            }
        }
        let der = SigningKey::generate_pkcs8(Alg::ES256).unwrap();
        let text = pem::encode(&der, "PRIVATE KEY");
        assert!(
            signing_key_from_pem(&text, Some(Alg::PS256), None)
                .unwrap_err()
                .contains("PS256")
        );
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(
            signing_key_from_pem(sec1, None, None)
                .unwrap_err()
                .contains("-topk8")
        );
    }
}
