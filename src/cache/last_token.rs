//! A client connection's last token and the cache entry it was served (#16). A client
//! sends the same bearer token on request after request of a keep-alive connection until
//! the token expires; the re-sign cache finds each by the token's SHA-256, which costs
//! about 0.5 ns per byte even with SHA-NI (~0.7 µs of a 1.3 KB token: the largest part of a
//! cache hit's own work, `benches/resign.rs` `hit/cache_key`). [`LastToken`] keeps the
//! bytes of the connection's last token beside its entry, so the next request with the same
//! token in the same [`KeyScope`] is served by comparing bytes, with no digest and no cache
//! lookup.
//!
//! It serves exactly what the cache would: the whole token must be equal (not a hash of
//! it), and so must the scope (route, method class, client, config, IdP key and signing
//! generations), and the entry's own `expires_at` must be ahead. What follows a cache hit
//! (its IdP's keys still usable) runs after it as after any hit.
//!
//! Memory: at most one token of up to [`MAX_REMEMBERED`] bytes and one entry reference per
//! client connection, on top of `[cache]`'s bound (an entry the cache evicted lives on while
//! a connection remembers it). May use: std and the cache's types.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{KeyScope, Resigned};

/// The longest token remembered; a longer one (up to `verify::MAX_TOKEN_BYTES`) is looked
/// up in the cache each time.
pub const MAX_REMEMBERED: usize = 4096;

/// One client connection's last token (see the module doc). HTTP/2 streams of one
/// connection share it: a request that finds it in use skips it and asks the cache.
#[derive(Default)]
pub struct LastToken {
    slot: Mutex<Option<Remembered>>,
}

struct Remembered {
    token: Vec<u8>,
    scope: KeyScope,
    resigned: Arc<Resigned>,
}

impl LastToken {
    /// The entry remembered for `token` in `scope`, while it is not expired at `now`.
    pub fn get(&self, token: &[u8], scope: &KeyScope, now: Instant) -> Option<Arc<Resigned>> {
        let slot = self.slot.try_lock().ok()?;
        let remembered = slot.as_ref()?;
        (remembered.scope == *scope
            && remembered.token == token
            && now < remembered.resigned.expires_at)
            .then(|| remembered.resigned.clone())
    }

    /// Remembers `resigned` as the entry of `token` in `scope`, in place of the last one
    /// (its buffer reused). A token longer than [`MAX_REMEMBERED`] forgets the last one.
    pub fn remember(&self, token: &[u8], scope: &KeyScope, resigned: &Arc<Resigned>) {
        let Ok(mut slot) = self.slot.try_lock() else {
            return;
        };
        if token.len() > MAX_REMEMBERED {
            *slot = None;
            return;
        }
        match &mut *slot {
            Some(remembered) => {
                remembered.token.clear();
                remembered.token.extend_from_slice(token);
                remembered.scope = *scope;
                remembered.resigned = resigned.clone();
            }
            None => {
                *slot = Some(Remembered {
                    token: token.to_vec(),
                    scope: *scope,
                    resigned: resigned.clone(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;

    fn entry(expires_at: Instant) -> Arc<Resigned> {
        Arc::new(Resigned {
            header_value: HeaderValue::from_static("Bearer x"),
            expires_at,
            exp: 0,
            verified_with_keys: true,
            idp: crate::idp::registry::tests::client("https://idp.test/"),
        })
    }

    #[test]
    fn serves_only_the_same_token_in_the_same_scope_before_it_expires() {
        let now = Instant::now();
        let last = LastToken::default();
        let scope = KeyScope::new(1, 1, 1);
        assert!(last.get(b"abc", &scope, now).is_none(), "empty");
        let resigned = entry(now + Duration::from_secs(60));
        last.remember(b"abc", &scope, &resigned);
        let served = last.get(b"abc", &scope, now).expect("remembered");
        assert!(Arc::ptr_eq(&served, &resigned));
        for other in [&b"abd"[..], b"ab", b"abcd", b""] {
            assert!(last.get(other, &scope, now).is_none(), "{other:?}");
        }
        let scopes = [
            KeyScope::new(2, 1, 1),
            KeyScope::new(1, 2, 1),
            KeyScope::new(1, 1, 2),
            scope.with_method_class(1),
            scope.with_client(1),
            scope.with_signing_generation(1),
        ];
        for other in scopes {
            assert!(last.get(b"abc", &other, now).is_none(), "{other:?}");
        }
        let expiry = resigned.expires_at;
        assert!(last.get(b"abc", &scope, expiry).is_none(), "expired");
        assert!(
            last.get(b"abc", &scope, expiry - Duration::from_millis(1))
                .is_some()
        );
    }

    #[test]
    fn a_new_token_replaces_the_last_and_a_long_one_clears_it() {
        let now = Instant::now();
        let last = LastToken::default();
        let scope = KeyScope::new(1, 1, 1);
        let (first, second) = (
            entry(now + Duration::from_secs(60)),
            entry(now + Duration::from_secs(60)),
        );
        last.remember(b"first-token", &scope, &first);
        last.remember(b"second", &scope, &second);
        assert!(last.get(b"first-token", &scope, now).is_none());
        assert!(Arc::ptr_eq(
            &last.get(b"second", &scope, now).unwrap(),
            &second
        ));
        let long = vec![b'a'; MAX_REMEMBERED + 1];
        last.remember(&long, &scope, &first);
        assert!(
            last.get(&long, &scope, now).is_none(),
            "too long to remember"
        );
        assert!(last.get(b"second", &scope, now).is_none(), "forgotten");
        let longest = vec![b'a'; MAX_REMEMBERED];
        last.remember(&longest, &scope, &first);
        assert!(last.get(&longest, &scope, now).is_some());
    }

    #[test]
    fn a_request_that_finds_it_in_use_skips_it() {
        let now = Instant::now();
        let last = LastToken::default();
        let scope = KeyScope::new(1, 1, 1);
        let resigned = entry(now + Duration::from_secs(60));
        last.remember(b"abc", &scope, &resigned);
        let held = last.slot.lock().unwrap();
        assert!(last.get(b"abc", &scope, now).is_none());
        last.remember(b"other", &scope, &resigned);
        drop(held);
        assert!(
            last.get(b"abc", &scope, now).is_some(),
            "unchanged while in use"
        );
    }
}
