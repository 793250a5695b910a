//! `[signing]`: the output issuer and lifetime, and the signing keys, loaded here (a key
//! file that does not parse, or whose public key is weak ([`crate::keys::weak`]), is a problem
//! with its field) with exactly one active kid.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::file;
use crate::config::problems::Problems;
use crate::config::runtime::SigningSettings;
use crate::jose::alg::Alg;
use crate::keys::{SigningKey, weak};

pub(super) fn settings(
    raw: &file::SigningSection,
    base: &Path,
    p: &mut Problems,
) -> Option<SigningSettings> {
    if raw.issuer.trim().is_empty() {
        p.push("signing.issuer", "must not be empty");
    }
    let max_ttl = p.duration("signing.max_ttl", &raw.max_ttl, Duration::from_secs(300));
    if max_ttl.is_zero() {
        p.push("signing.max_ttl", "must be positive");
    }
    if raw.keys.is_empty() {
        p.push(
            "signing.keys",
            "at least one [[signing.keys]] entry is required",
        );
    }
    let mut keys: Vec<Arc<SigningKey>> = Vec::new();
    let mut key_paths = Vec::new();
    for (index, entry) in raw.keys.iter().enumerate() {
        let field = format!("signing.keys[{index}]");
        let Some(alg) = Alg::parse(&entry.alg) else {
            p.push(
                format!("{field}.alg"),
                format!("unknown algorithm {:?}", entry.alg),
            );
            continue;
        };
        let path = base.join(&entry.path);
        key_paths.push(path.clone());
        match SigningKey::load(&path, alg, entry.kid.clone()) {
            Ok(key) if keys.iter().any(|k| k.kid() == key.kid()) => p.push(
                format!("{field}.kid"),
                format!("kid {:?} is used by another key", key.kid()),
            ),
            Ok(key) => match weak::check(&key.public_jwk().material) {
                Ok(()) => keys.push(Arc::new(key)),
                Err(weak) => p.push(
                    format!("{field}.path"),
                    format!("signing key {:?} is weak and is refused: {weak}", key.kid()),
                ),
            },
            Err(err) => p.push(format!("{field}.path"), err.to_string()),
        }
    }
    let active = match (&raw.active, keys.len()) {
        (Some(kid), _) => match keys.iter().find(|k| k.kid() == kid) {
            Some(key) => Some(key.clone()),
            None => {
                if keys.len() == raw.keys.len() {
                    p.push("signing.active", format!("no signing key has kid {kid:?}"));
                }
                None
            }
        },
        (None, 1) => keys.first().cloned(),
        (None, 0) => None,
        (None, _) => {
            p.push(
                "signing.active",
                "several signing keys are configured: name the active kid",
            );
            None
        }
    };
    let min_published_age = p.duration(
        "signing.min_published_age",
        &raw.min_published_age,
        Duration::ZERO,
    );
    active.map(|active| SigningSettings {
        issuer: raw.issuer.clone(),
        max_ttl,
        min_published_age,
        keys,
        key_paths,
        active,
    })
}
