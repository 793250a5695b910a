//! The re-sign cache (moka). Key: SHA-256 of the incoming token plus the route, the token
//! exchange client it is issued to (none for the proxy), the request method's class for the route's authorization rules (see `proxy::authorize`), the config
//! generation (routes, claims and signing keys), the IdP key generation and the managed
//! signing keys' generation, so any change of
//! keys or mapping makes old entries unreachable by construction (compare Oathkeeper #763).
//! Each entry lives at most until its re-signed token's `exp` minus the leeway; the cache is
//! bounded by bytes (or entries); concurrent misses on one key sign once (moka's entry API).
//! A client connection remembers its last token's entry ([`LastToken`]), so a repeated
//! token skips the digest and the lookup.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use http::HeaderValue;
use moka::Expiry;
use moka::future::Cache;

use crate::config::CacheSettings;

mod last_token;
pub use last_token::LastToken;

/// What a cache key is made of: the token's digest and its [`KeyScope`]. Equality compares
/// every field; the hash (below) is cheaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheKey {
    token_sha256: [u8; 32],
    scope: KeyScope,
}

/// Everything in a [`CacheKey`] but the token: what the entry was made for and under which
/// generations. A client connection's [`LastToken`] compares it with the token's bytes
/// instead of their digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyScope {
    route: u32,
    /// Which of the route's method-limited rules applied (0: none of them).
    method_class: u8,
    /// The token exchange client the token was issued to (0: a proxied request): its
    /// tokens carry an `act` claim naming it, so they are never another caller's.
    client: u16,
    config_generation: u64,
    idp_generation: u64,
    /// The managed signing keys' generation (0 without `[signing.managed]`): a rotation or a
    /// revocation makes every entry unreachable.
    signing_generation: u64,
}

/// Five words for the cache's hasher ([`KeyHasher`]): the first eight bytes of the token's
/// digest, which are uniformly random and need the token to choose (and an entry needs an
/// IdP-signed token), then the other fields. The derived hash fed every field and the
/// digest's 32 bytes in small writes: ~1.8k instructions per cache lookup, ~2.5% of a hit's
/// (callgrind, #16). Equal keys hash equal; a lookup still compares the whole key.
impl std::hash::Hash for CacheKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&self.token_sha256[..8]);
        state.write_u64(u64::from_le_bytes(prefix));
        let scope = &self.scope;
        state.write_u64(
            u64::from(scope.route)
                | (u64::from(scope.method_class) << 32)
                | (u64::from(scope.client) << 40),
        );
        state.write_u64(scope.config_generation);
        state.write_u64(scope.idp_generation);
        state.write_u64(scope.signing_generation);
    }
}

impl CacheKey {
    pub fn new(
        token: impl AsRef<[u8]>,
        route: u32,
        config_generation: u64,
        idp_generation: u64,
    ) -> Self {
        CacheKey::of(
            token,
            KeyScope::new(route, config_generation, idp_generation),
        )
    }

    /// The key of `token` in `scope`: its SHA-256 (~0.5 ns per byte with SHA-NI, ~0.7 µs for
    /// a 1.3 KB token: a connection that repeats its token skips it, see [`LastToken`]).
    pub fn of(token: impl AsRef<[u8]>, scope: KeyScope) -> Self {
        let mut token_sha256 = [0u8; 32];
        token_sha256.copy_from_slice(digest::digest(&digest::SHA256, token.as_ref()).as_ref());
        CacheKey {
            token_sha256,
            scope,
        }
    }

    pub fn scope(&self) -> &KeyScope {
        &self.scope
    }

    /// The same key under managed signing keys generation `generation`.
    pub fn with_signing_generation(self, generation: u64) -> Self {
        CacheKey {
            scope: self.scope.with_signing_generation(generation),
            ..self
        }
    }

    /// The same key for a token issued to token exchange client `number` (1-based).
    pub fn with_client(self, number: u16) -> Self {
        CacheKey {
            scope: self.scope.with_client(number),
            ..self
        }
    }

    /// The same key for a request of method class `class` on the route.
    pub fn with_method_class(self, class: u8) -> Self {
        CacheKey {
            scope: self.scope.with_method_class(class),
            ..self
        }
    }
}

impl KeyScope {
    /// Route `route` under config generation `config_generation` and IdP key generation
    /// `idp_generation`, no method class, no client, signing generation 0.
    pub fn new(route: u32, config_generation: u64, idp_generation: u64) -> Self {
        KeyScope {
            route,
            method_class: 0,
            client: 0,
            config_generation,
            idp_generation,
            signing_generation: 0,
        }
    }

    /// The same scope under managed signing keys generation `generation`.
    pub fn with_signing_generation(self, generation: u64) -> Self {
        KeyScope {
            signing_generation: generation,
            ..self
        }
    }

    /// The same scope for a token issued to token exchange client `number` (1-based).
    pub fn with_client(self, number: u16) -> Self {
        KeyScope {
            client: number,
            ..self
        }
    }

    /// The same scope for a request of method class `class` on the route.
    pub fn with_method_class(self, class: u8) -> Self {
        KeyScope {
            method_class: class,
            ..self
        }
    }
}

/// A re-signed token ready to be set as the output header.
#[derive(Debug)]
pub struct Resigned {
    pub header_value: HeaderValue,
    /// Until when the entry may be served (the cache's expiry, and a [`LastToken`]'s).
    pub expires_at: Instant,
    /// The forwarded token's `exp` (a token exchange answers `expires_in` from it).
    pub exp: i64,
    /// A JWS verified with `idp`'s keys (not an introspected token): served only while
    /// those keys are usable.
    pub verified_with_keys: bool,
    /// The IdP that verified the token (by key or by introspection).
    pub idp: Arc<crate::idp::IdpClient>,
}

struct TtlPolicy;

impl Expiry<CacheKey, Arc<Resigned>> for TtlPolicy {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<Resigned>,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(value.expires_at.saturating_duration_since(created_at))
    }
}

pub type ResignCache = Cache<CacheKey, Arc<Resigned>, KeyHasher>;

/// The cache's hasher: a per-process random seed folded with the key's five words by
/// multiply and rotate, then mixed (MurmurHash3's 64-bit finalizer). moka's default, keyed
/// SipHash-1-3, took ~400 instructions per lookup of a cache hit's ~63k (callgrind, #16).
/// Flooding one bucket would need many IdP-signed tokens whose SHA-256 (the first word)
/// collide there, as the [`CacheKey`] hash already relies on; a lookup compares whole keys.
#[derive(Clone)]
pub struct KeyHasher {
    seed: u64,
}

impl Default for KeyHasher {
    fn default() -> Self {
        use std::hash::BuildHasher;
        // The standard library's random keys, drawn once per process.
        KeyHasher {
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl std::hash::BuildHasher for KeyHasher {
    type Hasher = Folded;

    fn build_hasher(&self) -> Folded {
        Folded(self.seed)
    }
}

/// [`KeyHasher`]'s state.
pub struct Folded(u64);

impl std::hash::Hasher for Folded {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Per-entry bookkeeping bytes counted on top of the token itself.
const ENTRY_OVERHEAD: u32 = 160;

/// Builds the cache: bounded by `max_entries` when given, else by `max_bytes` (default 64 MiB).
pub fn build(settings: &CacheSettings) -> ResignCache {
    let builder = Cache::builder().expire_after(TtlPolicy);
    match settings.max_entries {
        Some(entries) => builder
            .max_capacity(entries)
            .build_with_hasher(KeyHasher::default()),
        None => builder
            .max_capacity(settings.max_bytes.unwrap_or(64 * 1024 * 1024))
            .weigher(|_key: &CacheKey, value: &Arc<Resigned>| {
                (value.header_value.len() as u32).saturating_add(ENTRY_OVERHEAD)
            })
            .build_with_hasher(KeyHasher::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_every_component() {
        let base = CacheKey::new("t", 1, 1, 1);
        assert_eq!(base, CacheKey::new("t", 1, 1, 1));
        assert_ne!(base, CacheKey::new("u", 1, 1, 1));
        assert_ne!(base, CacheKey::new("t", 2, 1, 1));
        assert_ne!(base, CacheKey::new("t", 1, 2, 1));
        assert_ne!(base, CacheKey::new("t", 1, 1, 2));
        assert_ne!(base, base.with_signing_generation(2));
        assert_ne!(base, base.with_method_class(1));
        assert_ne!(base, base.with_client(1));
        assert_eq!(base, base.with_method_class(0));
    }

    #[test]
    fn equal_keys_hash_equal_and_each_component_moves_the_hash() {
        use std::hash::BuildHasher;
        let hasher = KeyHasher::default();
        let base = CacheKey::new("t", 1, 1, 1);
        assert_eq!(
            hasher.hash_one(base),
            hasher.hash_one(CacheKey::new("t", 1, 1, 1))
        );
        let others = [
            CacheKey::new("u", 1, 1, 1),
            CacheKey::new("t", 2, 1, 1),
            CacheKey::new("t", 1, 2, 1),
            CacheKey::new("t", 1, 1, 2),
            base.with_signing_generation(2),
            base.with_method_class(1),
            base.with_client(1),
        ];
        for other in others {
            assert_ne!(hasher.hash_one(base), hasher.hash_one(other), "{other:?}");
        }
    }

    #[test]
    fn the_hasher_spreads_keys_over_its_low_and_high_bits() {
        use std::hash::BuildHasher;
        let hasher = KeyHasher::default();
        let (mut low, mut high) = ([0u32; 256], [0u32; 256]);
        for n in 0..25_600u32 {
            // One token: only the low-entropy words (route, generation) differ.
            let hash = hasher.hash_one(CacheKey::new("t", n, u64::from(n % 7), 1));
            low[(hash & 0xff) as usize] += 1;
            high[(hash >> 56) as usize] += 1;
        }
        // 100 per bucket on average; a binomial spread stays well within 50..200.
        for (bits, counts) in [("low", low), ("high", high)] {
            let (min, max) = (counts.iter().min(), counts.iter().max());
            assert!(
                counts.iter().all(|&c| (50..200).contains(&c)),
                "{bits} bits: {min:?}..{max:?}"
            );
        }
        assert_ne!(
            KeyHasher::default().hash_one(CacheKey::new("t", 1, 1, 1)),
            KeyHasher::default().hash_one(CacheKey::new("t", 1, 1, 1)),
            "seeded per hasher"
        );
    }

    #[tokio::test]
    async fn entries_expire_after_their_ttl() {
        let cache = build(&CacheSettings {
            max_bytes: None,
            max_entries: None,
        });
        let key = CacheKey::new("t", 0, 0, 0);
        let value = Arc::new(Resigned {
            header_value: HeaderValue::from_static("Bearer x"),
            expires_at: Instant::now() + Duration::from_millis(50),
            exp: 0,
            verified_with_keys: true,
            idp: crate::idp::registry::tests::client("https://idp.test/"),
        });
        cache.insert(key, value).await;
        assert!(cache.get(&key).await.is_some());
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(cache.get(&key).await.is_none());
    }
}
