//! `[admin]`: who may use the management API — an IdP audience and static tokens kept
//! only as SHA-256, with scopes from the API's own list.

use super::super::file;
use crate::config::problems::Problems;
use crate::config::runtime::{AdminSettings, StaticToken};

/// Scopes the management API knows (Auth0's names).
pub const ADMIN_SCOPES: [&str; 7] = [
    "read:custom_signing_keys",
    "create:custom_signing_keys",
    "update:custom_signing_keys",
    "delete:custom_signing_keys",
    "read:signing_keys",
    "create:signing_keys",
    "update:signing_keys",
];

pub(super) fn settings(raw: &file::AdminSection, p: &mut Problems) -> AdminSettings {
    if raw.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
        p.push("admin.audience", "must not be empty");
    }
    let mut tokens = Vec::new();
    for (index, token) in raw.tokens.iter().enumerate() {
        let field = format!("admin.tokens[{index}]");
        if token.name.trim().is_empty() {
            p.push(format!("{field}.name"), "must not be empty");
        }
        let Some(sha256) = p.sha256_hex(&format!("{field}.sha256"), &token.sha256) else {
            continue;
        };
        for scope in &token.scopes {
            if !ADMIN_SCOPES.contains(&scope.as_str()) {
                p.push(
                    format!("{field}.scopes"),
                    format!(
                        "unknown scope {scope:?} (known: {})",
                        ADMIN_SCOPES.join(", ")
                    ),
                );
            }
        }
        tokens.push(StaticToken {
            name: token.name.clone(),
            sha256,
            scopes: token.scopes.clone(),
        });
    }
    AdminSettings {
        audience: raw.audience.clone(),
        tokens,
        issuers: None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn admin_token_hash_must_be_ascii_hex() {
        // Found by fuzz/ (target config): a 64-byte value with a multi-byte character at an
        // odd offset panicked when sliced into digit pairs; "+f" parsed as a hex pair.
        let hashes = [format!("{}\u{49c}f", "e".repeat(61)), "+f".repeat(32)];
        for sha256 in hashes {
            let text = format!(
                "[server]\nlisten = \"127.0.0.1:1\"\n[idp]\nissuer = \"https://idp/\"\n\
                 [signing]\nissuer = \"https://me/\"\n\
                 [[admin.tokens]]\nname = \"t\"\nsha256 = \"{sha256}\"\nscopes = []\n"
            );
            let err = crate::config::parse_config(&text, Path::new("/nonexistent")).unwrap_err();
            let problems = err.problems();
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with("admin.tokens[0].sha256: must be 64 hex digits")),
                "{sha256:?}: {problems:#?}"
            );
        }
    }
}
