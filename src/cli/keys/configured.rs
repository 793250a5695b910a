//! `keys jwks|import --config FILE`: the signing keys of a resigner config, published under
//! the kid and alg the config gives them, so that what is imported is exactly what `serve`
//! signs with (a PEM alone only knows its thumbprint kid). Also `keys import --keep-existing`
//! and the import command `serve` names when its signing key is not published.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

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
        return super::validated(signing.keys.iter().map(|key| jwk(key)).collect());
    }
    let mut keys: Vec<Value> = Vec::new();
    for path in files {
        for key in super::keys_from_file(path, None, None)? {
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
    super::validated(keys)
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
    super::validated(keys)
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

/// The command that publishes the signing keys of the config at `config` (as `serve` was
/// given it, made absolute) on the admin listener bound to `admin`.
pub fn import_command(config: Option<&Path>, admin: SocketAddr, tls: bool) -> String {
    let host = match admin.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    let config = config.map_or_else(
        || "CONFIG".to_string(),
        |path| {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            shell_word(&path.display().to_string())
        },
    );
    let admin = SocketAddr::new(host, admin.port());
    format!("resigner keys import --config {config} --admin {scheme}://{admin}")
}

/// `text` as one POSIX shell word: as is when it holds only safe characters, else in
/// single quotes.
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_commands_name_a_reachable_admin_url_and_quote_the_path() {
        let any: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        assert_eq!(
            import_command(Some(Path::new("/etc/resigner.toml")), any, false),
            "resigner keys import --config /etc/resigner.toml --admin http://127.0.0.1:9090"
        );
        let v6: SocketAddr = "[::]:9443".parse().unwrap();
        assert_eq!(
            import_command(Some(Path::new("/my conf/it's.toml")), v6, true),
            r"resigner keys import --config '/my conf/it'\''s.toml' --admin https://[::1]:9443"
        );
        let relative = import_command(Some(Path::new("config/r.toml")), any, false);
        let cwd = std::env::current_dir().unwrap();
        assert!(
            relative.contains(&cwd.join("config/r.toml").display().to_string()),
            "{relative}"
        );
        assert!(import_command(None, any, false).contains("--config CONFIG "));
    }

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
