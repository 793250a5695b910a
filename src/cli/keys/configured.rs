//! `keys jwks|import --config FILE`: the signing keys of a resigner config, published under
//! the kid and alg the config gives them, so that what is imported is exactly what `serve`
//! signs with (a PEM alone only knows its thumbprint kid). Also `keys import --keep-existing`.
//! (The import command `serve` names when its signing key is not published is built in
//! [`crate::app::hints`].)

use std::path::PathBuf;

use serde_json::Value;

use super::{AdminClient, KeysCliError, StoredKeys};
use crate::config::SigningSettings;
use crate::keys::KeyMaterial;

/// The public JWKS of the configured `[[signing.keys]]`: every one when `files` is empty;
/// otherwise the keys of `files`, where a file holding a configured key (its PEM, or a JWK
/// with its key material) is published under that key's configured kid and alg, and any
/// other file is published as `keys jwks FILE` would.
pub fn configured_jwks(
    signing: &SigningSettings,
    files: &[PathBuf],
) -> Result<Value, KeysCliError> {
    let jwk = |key: &crate::keys::SigningKey| Value::Object(key.public_jwk().to_json());
    if files.is_empty() {
        return super::files::validated(signing.keys.iter().map(|key| jwk(key)).collect());
    }
    let mut keys: Vec<Value> = Vec::new();
    for path in files {
        for key in super::files::keys_from_file(path, None, None)? {
            let material = key
                .as_object()
                .and_then(|map| KeyMaterial::from_jwk(map).ok().flatten());
            let configured: Vec<Value> = signing
                .keys
                .iter()
                .filter(|k| material.as_ref() == Some(&k.public_jwk().material))
                .map(|k| jwk(k))
                .collect();
            if configured.is_empty() {
                keys.push(key);
            }
            // A configured key given twice (its .pem and its .jwk.json) is published once.
            for key in configured {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
    }
    super::files::validated(keys)
}

/// `--keep-existing`: the stored keys whose kid `new` does not use, then the keys of `new`.
pub fn merged(stored: &StoredKeys, new: &Value) -> Result<Value, KeysCliError> {
    let kid = |key: &Value| key.get("kid").and_then(Value::as_str).map(str::to_string);
    let new_keys = new
        .get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new_kids: Vec<Option<String>> = new_keys.iter().map(kid).collect();
    let mut keys: Vec<Value> = stored
        .keys
        .iter()
        .filter(|key| !new_kids.contains(&kid(key)))
        .cloned()
        .collect();
    keys.extend(new_keys);
    super::files::validated(keys)
}

impl AdminClient {
    /// `keys import --keep-existing`: reads the stored set, then replaces it with
    /// [`merged`] only if it is unchanged since (`If-Match` its ETag, or `if_match` when
    /// given).
    pub async fn import_keeping(
        &self,
        jwks: &Value,
        if_match: Option<&str>,
    ) -> Result<StoredKeys, KeysCliError> {
        let stored = self.list().await?;
        let merged = merged(&stored, jwks)?;
        self.import(&merged, if_match.or(stored.etag.as_deref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_existing_replaces_same_kids_and_keeps_the_rest() {
        use crate::jose::alg::Alg;
        use crate::keys::SigningKey;
        let key = |kid: &str| {
            let der = SigningKey::generate_pkcs8(Alg::ES256).unwrap();
            let key = SigningKey::from_pkcs8(&der, Alg::ES256, Some(kid.into())).unwrap();
            Value::Object(key.public_jwk().to_json())
        };
        let (old_a, b, new_a, c) = (key("a"), key("b"), key("a"), key("c"));
        let stored = StoredKeys {
            keys: vec![old_a, b.clone()],
            etag: Some("\"x\"".into()),
        };
        let merged = merged(
            &stored,
            &serde_json::json!({ "keys": [new_a.clone(), c.clone()] }),
        )
        .unwrap();
        assert_eq!(merged["keys"], serde_json::json!([b, new_a, c]));
    }
}
