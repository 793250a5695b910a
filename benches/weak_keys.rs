//! Cost of one weak-key check ([`resigner::keys::weak::check`]) per key: a good key runs every
//! check (the worst case), a weak one stops at the first that finds it. Only the crate's
//! public API is called; figures in `benches/README.md`.
//!
//! Run: `cargo bench --bench weak_keys -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value};

use resigner::jose::alg::Alg;
use resigner::keys::weak;
use resigner::keys::{KeyMaterial, SigningKey};

fn generated(alg: Alg) -> KeyMaterial {
    let der = SigningKey::generate_pkcs8(alg).expect("generate");
    let key = SigningKey::from_pkcs8(&der, alg, None).expect("parse");
    key.public_jwk().material.clone()
}

fn rsa_4096() -> KeyMaterial {
    let pair = KeyPair::generate(KeySize::Rsa4096).expect("generate");
    let der: Pkcs8V1Der = pair.as_der().expect("der");
    let key = SigningKey::from_pkcs8(der.as_ref(), Alg::RS256, None).expect("parse");
    key.public_jwk().material.clone()
}

fn weak_file(name: &str) -> KeyMaterial {
    let path = format!("{}/tests/data/weak-keys/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("read");
    let jwk: Map<String, Value> = serde_json::from_str(&text).expect("json");
    KeyMaterial::from_jwk(&jwk).expect("jwk").expect("RSA")
}

fn bench(c: &mut Criterion) {
    let cases = [
        ("good/rsa2048", generated(Alg::RS256), true),
        ("good/rsa4096", rsa_4096(), true),
        ("good/p256", generated(Alg::ES256), true),
        ("good/ed25519", generated(Alg::EdDSA), true),
        (
            "weak/small_factor",
            weak_file("small-factor.jwk.json"),
            false,
        ),
        ("weak/roca", weak_file("roca-mod03.jwk.json"), false),
        (
            "weak/close_primes",
            weak_file("close-primes.jwk.json"),
            false,
        ),
    ];
    let mut group = c.benchmark_group("weak_check");
    for (id, material, good) in &cases {
        assert_eq!(weak::check(material).is_ok(), *good, "{id}");
        group.bench_function(*id, |b| b.iter(|| weak::check(black_box(material))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
