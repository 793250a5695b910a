//! Pure transitions of the managed key list: bootstrap, rotate, revoke. No I/O, no crypto;
//! every result keeps the invariants (at most one current, at most one next).
//! May use: `state`, `error`.

use super::error::ManagedError;
use super::state::{KeyState, ManagedKey};

/// The first key list: `current` becomes current from `now`, `next` is next.
pub fn bootstrap(mut current: ManagedKey, mut next: ManagedKey, now: i64) -> Vec<ManagedKey> {
    current.state = KeyState::Current;
    current.current_since = Some(now);
    next.state = KeyState::Next;
    vec![current, next]
}

/// Rotates: current → previous, next → current, previous beyond `keep_previous` revoked
/// (oldest `current_until` first), `new_next` appended. Returns the kids touched.
pub fn rotate(
    keys: &[ManagedKey],
    mut new_next: ManagedKey,
    now: i64,
    min_published_age: u64,
    keep_previous: usize,
) -> Result<(Vec<ManagedKey>, Vec<String>), ManagedError> {
    let next = check_rotate(keys, now, min_published_age)?;
    let mut out = keys.to_vec();
    let mut touched = Vec::new();
    for key in out.iter_mut().filter(|k| k.state == KeyState::Current) {
        key.state = KeyState::Previous;
        key.current_until = Some(now);
        touched.push(key.kid.clone());
    }
    out[next].state = KeyState::Current;
    out[next].current_since = Some(now);
    touched.push(out[next].kid.clone());
    let mut previous: Vec<usize> = (0..out.len())
        .filter(|&i| out[i].state == KeyState::Previous)
        .collect();
    previous.sort_by_key(|&i| out[i].current_until.unwrap_or(i64::MIN));
    let excess = previous.len().saturating_sub(keep_previous);
    for &i in &previous[..excess] {
        out[i].state = KeyState::Revoked;
        out[i].revoked_at = Some(now);
        touched.push(out[i].kid.clone());
    }
    new_next.state = KeyState::Next;
    touched.push(new_next.kid.clone());
    out.push(new_next);
    Ok((out, touched))
}

/// Whether a rotation is allowed now (a next key published at least `min_published_age`);
/// returns the next key's index. [`rotate`] checks the same; callers ask first so a refused
/// rotation generates no key.
pub fn check_rotate(
    keys: &[ManagedKey],
    now: i64,
    min_published_age: u64,
) -> Result<usize, ManagedError> {
    let next = keys
        .iter()
        .position(|k| k.state == KeyState::Next)
        .ok_or(ManagedError::NoNext)?;
    let age = now.saturating_sub(keys[next].created_at).max(0) as u64;
    if age < min_published_age {
        return Err(ManagedError::TooYoung {
            kid: keys[next].kid.clone(),
            age_secs: age,
            required_secs: min_published_age,
        });
    }
    Ok(next)
}

/// Revokes a previous key.
pub fn revoke(keys: &[ManagedKey], kid: &str, now: i64) -> Result<Vec<ManagedKey>, ManagedError> {
    let i = keys
        .iter()
        .position(|k| k.kid == kid)
        .ok_or_else(|| ManagedError::UnknownKid(kid.to_string()))?;
    match keys[i].state {
        KeyState::Previous => {}
        KeyState::Revoked => return Err(ManagedError::AlreadyRevoked(kid.to_string())),
        state => {
            return Err(ManagedError::NotPrevious {
                kid: kid.to_string(),
                state,
            });
        }
    }
    let mut out = keys.to_vec();
    out[i].state = KeyState::Revoked;
    out[i].revoked_at = Some(now);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, created_at: i64) -> ManagedKey {
        ManagedKey {
            kid: kid.into(),
            alg: "ES256".into(),
            state: KeyState::Next,
            public_jwk: Default::default(),
            cert: String::new(),
            sealed: None,
            backend_ref: None,
            created_at,
            current_since: None,
            current_until: None,
            revoked_at: None,
        }
    }

    fn states(keys: &[ManagedKey]) -> Vec<(&str, KeyState)> {
        keys.iter().map(|k| (k.kid.as_str(), k.state)).collect()
    }

    #[test]
    fn rotate_rules() {
        let keys = bootstrap(key("a", 0), key("b", 0), 0);
        match rotate(&keys, key("c", 10), 10, 60, 1) {
            Err(ManagedError::TooYoung {
                kid,
                age_secs: 10,
                required_secs: 60,
            }) => {
                assert_eq!(kid, "b")
            }
            other => panic!("{other:?}"),
        }
        let (keys, touched) = rotate(&keys, key("c", 100), 100, 60, 1).unwrap();
        assert_eq!(touched, ["a", "b", "c"]);
        let (keys, _) = rotate(&keys, key("d", 200), 200, 60, 1).unwrap();
        use KeyState::*;
        assert_eq!(
            states(&keys),
            [("a", Revoked), ("b", Previous), ("c", Current), ("d", Next)]
        );
        assert_eq!(keys[0].revoked_at, Some(200));
    }

    #[test]
    fn revoke_rules() {
        let keys = bootstrap(key("a", 0), key("b", 0), 0);
        let (keys, _) = rotate(&keys, key("c", 100), 100, 0, 5).unwrap();
        assert!(matches!(
            revoke(&keys, "b", 1),
            Err(ManagedError::NotPrevious { .. })
        ));
        assert!(matches!(
            revoke(&keys, "c", 1),
            Err(ManagedError::NotPrevious { .. })
        ));
        assert!(matches!(
            revoke(&keys, "x", 1),
            Err(ManagedError::UnknownKid(_))
        ));
        let keys = revoke(&keys, "a", 5).unwrap();
        assert_eq!(keys[0].revoked_at, Some(5));
        assert!(matches!(
            revoke(&keys, "a", 6),
            Err(ManagedError::AlreadyRevoked(_))
        ));
    }
}
