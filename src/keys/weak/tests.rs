//! The weak keys of `tests/data/weak-keys/` (made for the purpose, and ROCA moduli published
//! by the ROCA authors) are each refused for their reason; freshly generated keys and the
//! RFC and JOSE cookbook keys pass.

use serde_json::{Map, Value, json};

use super::*;
use crate::jose::b64;
use crate::keys::SigningKey;

fn material(jwk: &Map<String, Value>) -> KeyMaterial {
    KeyMaterial::from_jwk(jwk).unwrap().unwrap()
}

fn data(name: &str) -> Map<String, Value> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_weak_test_keys_are_refused_for_their_reason() {
    for (file, expected) in [
        ("small-factor.jwk.json", WeakKey::SmallFactor(751)),
        ("small-factor-7919.jwk.json", WeakKey::SmallFactor(7919)),
        ("close-primes.jwk.json", WeakKey::ClosePrimes),
        ("roca-constructed.jwk.json", WeakKey::Roca),
        ("roca-mod03.jwk.json", WeakKey::Roca),
        ("roca-mod09.jwk.json", WeakKey::Roca),
    ] {
        let jwk = data(&format!("weak-keys/{file}"));
        assert_eq!(check(&material(&jwk)), Err(expected), "{file}");
    }
}

#[test]
fn generated_and_published_keys_pass() {
    // Four fresh RSA moduli (the checks must not refuse good keys by chance) and each curve.
    let algs = [Alg::RS256, Alg::PS384, Alg::RS512, Alg::RS256].into_iter();
    for alg in algs.chain([Alg::ES256, Alg::ES384, Alg::ES512, Alg::EdDSA]) {
        let der = SigningKey::generate_pkcs8(alg).unwrap();
        let key = SigningKey::from_pkcs8(&der, alg, None).unwrap();
        assert_eq!(check(&key.public_jwk().material), Ok(()), "{alg:?}");
    }
    for file in [
        "jose-cookbook/jwk_3_2.ec_private_key.json",
        "jose-cookbook/jwk_3_4.rsa_private_key.json",
    ] {
        assert_eq!(check(&material(&data(file))), Ok(()), "{file}");
    }
}

#[test]
fn rsa_exponents_follow_the_baseline_requirements() {
    let n = data("jose-cookbook/jwk_3_4.rsa_private_key.json")["n"]
        .as_str()
        .map(|n| b64::decode(n).unwrap())
        .unwrap();
    let with_e = |e: &[u8]| KeyMaterial::Rsa {
        n: n.clone(),
        e: e.to_vec(),
    };
    for good in [&[1u8, 0, 1][..], &[1, 0, 3], &[0xff; 32], &[0, 1, 0, 1]] {
        assert_eq!(check(&with_e(good)), Ok(()), "{good:?}");
    }
    for bad in [
        &[3u8][..],
        &[1, 0, 0],
        &[0, 0xff, 0xff],
        &[1, 0, 2],
        &[],
        &[0xff; 33],
        &[0],
    ] {
        assert_eq!(check(&with_e(bad)), Err(WeakKey::Exponent), "{bad:?}");
    }
}

#[test]
fn ec_points_off_the_curve_are_refused() {
    let jwk = data("jose-cookbook/jwk_3_2.ec_private_key.json");
    let KeyMaterial::Ec { curve, x, mut y } = material(&jwk) else {
        panic!("an EC key");
    };
    y[10] ^= 1;
    let off = KeyMaterial::Ec { curve, x, y };
    assert_eq!(check(&off), Err(WeakKey::InvalidPoint));
    let zero = json!({"kty": "EC", "crv": "P-256", "x": b64::encode([0u8; 32]), "y": b64::encode([0u8; 32])});
    assert_eq!(
        check(&material(zero.as_object().unwrap())),
        Err(WeakKey::InvalidPoint)
    );
}

#[test]
fn every_reason_is_listed() {
    for weak in [
        WeakKey::SmallFactor(3),
        WeakKey::ClosePrimes,
        WeakKey::Roca,
        WeakKey::Exponent,
        WeakKey::InvalidPoint,
    ] {
        assert!(WeakKey::REASONS.contains(&weak.reason()), "{weak:?}");
    }
}
