//! Fixture generator for `benches/load.sh` (a bench target so it builds with the crate in
//! release mode and never runs under `cargo test`): an RS256 IdP key, its JWKS and public PEM
//! (for HAProxy's `jwt_verify`), N access tokens, a customer signing key, and the raw
//! aws-lc-rs sign/verify rates of this machine (the crypto ceiling the miss path is compared
//! with).
//!
//! `cargo bench --bench load_fixture -- OUT_DIR N_TOKENS ISSUER AUDIENCE`

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::json;

use resigner::jose::alg::Alg;
use resigner::keys::{SigningKey, der, pem};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 4 {
        // `cargo test --all-targets` runs bench targets with no arguments, or with just the
        // test filter given to it: nothing to do.
        eprintln!(
            "load_fixture: a fixture generator for benches/load.sh \
             (OUT_DIR N_TOKENS ISSUER AUDIENCE); nothing done"
        );
        return;
    }
    let [out, count, issuer, audience] = args.as_slice() else {
        eprintln!("usage: load_fixture OUT_DIR N_TOKENS ISSUER AUDIENCE");
        std::process::exit(2);
    };
    let out = std::path::Path::new(out);
    let count: usize = count.parse().expect("N_TOKENS is a number");
    std::fs::create_dir_all(out).expect("create OUT_DIR");

    let idp_der = SigningKey::generate_pkcs8(Alg::RS256).expect("IdP key");
    let idp = SigningKey::from_pkcs8(&idp_der, Alg::RS256, Some("bench-idp".into()))
        .expect("IdP key parses");
    let jwks = json!({ "keys": [idp.public_jwk().to_json()] });
    std::fs::write(out.join("jwks.json"), jwks.to_string()).expect("write jwks.json");
    std::fs::write(out.join("idp-public.pem"), public_pem(&idp)).expect("write idp-public.pem");

    for alg in [Alg::ES256, Alg::RS256] {
        let der = SigningKey::generate_pkcs8(alg).expect("signing key");
        let key = SigningKey::from_pkcs8(&der, alg, None).expect("signing key parses");
        std::fs::write(
            out.join(format!("signing-{alg}.pem")),
            pem::encode(&der, "PRIVATE KEY"),
        )
        .expect("write key");
        let keys = json!({ "version": 1, "keys": [key.public_jwk().to_json()], "published_at": { key.kid(): 0 } });
        std::fs::write(out.join(format!("store-{alg}.json")), keys.to_string())
            .expect("write store");
    }

    let now = resigner::jose::time::now_unix();
    let mut tokens = String::with_capacity(count * 700);
    for index in 0..count {
        let claims = json!({
            "iss": issuer, "sub": format!("user-{index}"), "aud": audience, "iat": now,
            "exp": now + 3 * 3600, "jti": format!("bench-{index}"), "client_id": "bench-client",
            "scope": "read:orders write:orders", "https://bench/roles": ["reader"],
        });
        let token = idp
            .sign_compact(claims.to_string().as_bytes())
            .expect("mint");
        let _ = writeln!(tokens, "{token}");
    }
    std::fs::write(out.join("tokens.txt"), tokens).expect("write tokens.txt");

    let message = vec![7u8; 700];
    let mut rates = serde_json::Map::new();
    for alg in [Alg::RS256, Alg::ES256] {
        let der = SigningKey::generate_pkcs8(alg).expect("key");
        let key = SigningKey::from_pkcs8(&der, alg, None).expect("key parses");
        let signature = key.sign_raw(&message).expect("sign");
        let parsed = key
            .public_jwk()
            .material
            .parse_for(alg)
            .expect("public key");
        let sign = rate(|| {
            let _ = black_box(key.sign_raw(black_box(&message)));
        });
        let verify = rate(|| {
            let _ = black_box(parsed.verify_sig(black_box(&message), black_box(&signature)));
        });
        rates.insert(format!("{alg}_sign_per_s"), json!(sign.round()));
        rates.insert(format!("{alg}_verify_per_s"), json!(verify.round()));
    }
    std::fs::write(
        out.join("crypto.json"),
        serde_json::Value::Object(rates).to_string(),
    )
    .expect("write crypto.json");
    eprintln!(
        "fixture: {count} tokens, keys and crypto rates in {}",
        out.display()
    );
}

/// Operations per second of `op` over about one second, on the calling thread.
fn rate(mut op: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..50 {
            op();
        }
        done += 50;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

/// The IdP's public key as an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), built from n and e.
fn public_pem(key: &SigningKey) -> String {
    let resigner::keys::KeyMaterial::Rsa { n, e } = &key.public_jwk().material else {
        unreachable!("RS256 key")
    };
    let rsa_public_key = der::sequence(&[der::integer(n), der::integer(e)]);
    let mut bit_string = vec![0u8];
    bit_string.extend_from_slice(&rsa_public_key);
    let algorithm = der::sequence(&[
        der::tagged(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
        ),
        vec![0x05, 0x00],
    ]);
    let spki = der::sequence(&[algorithm, der::tagged(0x03, &bit_string)]);
    pem::encode(&spki, "PUBLIC KEY")
}
