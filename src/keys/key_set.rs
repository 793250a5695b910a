//! The published JWKS, rendered once into bytes with an ETag whenever one of its parts
//! changes, so `GET /.well-known/jwks.json` does no JSON work per request.
//! Order: the customer's keys first, then the IdP's keys (as Auth0 aggregates them).

use aws_lc_rs::digest;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::import::ImportedKey;
use super::signer::SigningKey;
use crate::jose::b64;

/// The customer's imported public keys, as published: one immutable snapshot per version.
#[derive(Debug, Clone, Default)]
pub struct CustomKeySet {
    /// Store version this snapshot came from (0: nothing stored yet).
    pub version: u64,
    pub keys: Vec<ImportedKey>,
    /// Unix time each kid was first published, for `min_published_age`.
    pub published_at: std::collections::BTreeMap<String, i64>,
    /// Strong ETag (quoted) over the keys as returned by the management API.
    pub etag: String,
    /// The config generation this snapshot was found to publish the active key of.
    pub published_for: PublishedFor,
}

/// A snapshot's memo of [`CustomKeySet::check_published`] for one config generation: its
/// active key is published, with its material, for long enough. True once, it stays true
/// for that snapshot and config (neither changes; the key's age only grows), so the check
/// runs once instead of on every re-signed request (#16: ~250 instructions and a clock read
/// of a cache hit). A clone (a snapshot being changed) starts without one.
#[derive(Debug)]
pub struct PublishedFor(std::sync::atomic::AtomicU64);

impl PublishedFor {
    const NONE: u64 = u64::MAX;

    pub fn is(&self, generation: u64) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed) == generation
    }

    pub fn set(&self, generation: u64) {
        self.0
            .store(generation, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Default for PublishedFor {
    fn default() -> Self {
        PublishedFor(std::sync::atomic::AtomicU64::new(Self::NONE))
    }
}

impl Clone for PublishedFor {
    fn clone(&self) -> Self {
        PublishedFor::default()
    }
}

impl CustomKeySet {
    pub fn new(
        version: u64,
        keys: Vec<ImportedKey>,
        published_at: std::collections::BTreeMap<String, i64>,
    ) -> Self {
        let json: Vec<&Map<String, Value>> = keys.iter().map(|k| &k.json).collect();
        let bytes = serde_json::to_vec(&json).unwrap_or_default();
        let etag = format!(
            "\"{}\"",
            b64::encode(&digest::digest(&digest::SHA256, &bytes).as_ref()[..16])
        );
        CustomKeySet {
            version,
            keys,
            published_at,
            etag,
            published_for: PublishedFor::default(),
        }
    }

    /// The JWK objects as stored, in import order.
    pub fn json(&self) -> Vec<Map<String, Value>> {
        self.keys.iter().map(|k| k.json.clone()).collect()
    }

    /// Checks that `key` is published: same kid, same key material, and (with
    /// `min_published_age`) published at least that long before `now`.
    pub fn check_published(
        &self,
        key: &SigningKey,
        min_published_age: u64,
        now: i64,
    ) -> Result<(), NotPublished> {
        // Checked on every re-signed request: nothing is allocated unless it fails.
        let kid = key.kid();
        let Some(published) = self.keys.iter().find(|k| k.kid == kid) else {
            return Err(NotPublished::Missing { kid: kid.into() });
        };
        if published.material != key.public_jwk().material {
            return Err(NotPublished::OtherMaterial { kid: kid.into() });
        }
        let since = self.published_at.get(kid).copied().unwrap_or(0);
        if now - since < min_published_age as i64 {
            return Err(NotPublished::TooRecent {
                kid: kid.into(),
                age: now - since,
                min: min_published_age,
            });
        }
        Ok(())
    }
}

/// Why the active signing key may not sign yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPublished {
    #[error("signing key {kid:?} is not in the published custom key set")]
    Missing { kid: String },
    #[error("the published key with kid {kid:?} has different key material than the signing key")]
    OtherMaterial { kid: String },
    #[error("signing key {kid:?} was published {age}s ago; min_published_age is {min}s")]
    TooRecent { kid: String, age: i64, min: u64 },
}

impl NotPublished {
    /// Whether importing the signing key's public JWK fixes it (otherwise: wait).
    pub fn needs_import(&self) -> bool {
        !matches!(self, NotPublished::TooRecent { .. })
    }
}

/// A rendered JWKS document and the inputs it was rendered from.
#[derive(Debug, Clone)]
pub struct RenderedJwks {
    pub body: Bytes,
    /// Strong ETag (quoted) over the body.
    pub etag: String,
    /// (custom set generation, IdP key generation, config generation, managed keys
    /// generation) this rendering reflects.
    pub source: (u64, u64, u64, u64),
}

impl RenderedJwks {
    /// Renders `custom` keys followed by `idp` keys. Each key map must already hold public
    /// members only; `render` drops any private member defensively all the same.
    pub fn render(
        custom: &[Map<String, Value>],
        idp: &[Map<String, Value>],
        source: (u64, u64, u64, u64),
    ) -> Self {
        let keys: Vec<Value> = custom
            .iter()
            .chain(idp.iter())
            .map(|key| {
                let mut key = key.clone();
                for private in PRIVATE_MEMBERS {
                    key.remove(*private);
                }
                Value::Object(key)
            })
            .filter(|key| key.get("kty").is_some_and(|k| k != "oct"))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap_or_default();
        let hash = digest::digest(&digest::SHA256, &body);
        let etag = format!("\"{}\"", b64::encode(&hash.as_ref()[..16]));
        RenderedJwks {
            body: Bytes::from(body),
            etag,
            source,
        }
    }
}

/// JWK members that carry private or symmetric key material (RFC 7518 §6).
pub const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_keys_come_first_and_private_members_never_appear() {
        let custom =
            json!({"kty": "EC", "kid": "c", "d": "secret", "crv": "P-256", "x": "x", "y": "y"});
        let idp = json!({"kty": "RSA", "kid": "i", "n": "n", "e": "AQAB", "p": "secret"});
        let oct = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
        let rendered = RenderedJwks::render(
            &[custom.as_object().unwrap().clone()],
            &[
                idp.as_object().unwrap().clone(),
                oct.as_object().unwrap().clone(),
            ],
            (1, 1, 1, 0),
        );
        let doc: Value = serde_json::from_slice(&rendered.body).unwrap();
        let kids: Vec<&str> = doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, ["c", "i"]);
        assert!(!String::from_utf8_lossy(&rendered.body).contains("secret"));
        let again = RenderedJwks::render(&[custom.as_object().unwrap().clone()], &[], (1, 2, 1, 0));
        assert_ne!(again.etag, rendered.etag);
    }
}
