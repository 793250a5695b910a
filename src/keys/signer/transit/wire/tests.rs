use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use super::*;
use crate::keys::pem;

fn answer(key_type: &str, latest: u32, versions: &[(u32, &str)]) -> Vec<u8> {
    let keys: serde_json::Map<String, Value> = versions
        .iter()
        .map(|(v, pem)| (v.to_string(), json!({"public_key": pem, "name": "x"})))
        .collect();
    serde_json::to_vec(&json!({
        "data": {"type": key_type, "latest_version": latest, "keys": keys}
    }))
    .unwrap()
}

fn p256() -> (EcdsaKeyPair, String) {
    let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let der: PublicKeyX509Der = pair.public_key().as_der().unwrap();
    let text = pem::encode(der.as_ref(), "PUBLIC KEY");
    (pair, text)
}

#[test]
fn key_info_reads_the_pinned_or_newest_version() {
    let (one, pem_one) = p256();
    let (two, pem_two) = p256();
    let body = answer("ecdsa-p256", 2, &[(1, &pem_one), (2, &pem_two)]);
    let newest = key_info(&body, Alg::ES256, None).unwrap();
    assert_eq!((newest.latest, newest.version), (2, 2));
    let pinned = key_info(&body, Alg::ES256, Some(1)).unwrap();
    assert_eq!(pinned.version, 1);
    for (info, pair) in [(newest, two), (pinned, one)] {
        let KeyMaterial::Ec { x, y, .. } = info.material else {
            panic!("not EC")
        };
        let point = pair.public_key().as_ref();
        assert_eq!([&[4u8][..], &x, &y].concat(), point);
    }
}

#[test]
fn key_info_reads_rsa() {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let der: PublicKeyX509Der = pair.public_key().as_der().unwrap();
    let text = pem::encode(der.as_ref(), "PUBLIC KEY");
    let body = answer("rsa-2048", 1, &[(1, &text)]);
    for alg in [Alg::RS256, Alg::PS256] {
        let info = key_info(&body, alg, None).unwrap();
        let KeyMaterial::Rsa { n, .. } = info.material else {
            panic!("not RSA")
        };
        assert_eq!(n.len(), 256);
    }
}

#[test]
fn key_info_refusals() {
    let (_, pem_one) = p256();
    let body = answer("ecdsa-p256", 1, &[(1, &pem_one)]);
    type Case = (&'static str, Vec<u8>, Alg, Option<u32>, WireError);
    let cases: [Case; 5] = [
        (
            "type does not fit alg",
            body.clone(),
            Alg::RS256,
            None,
            WireError::KeyType {
                found: "ecdsa-p256".into(),
                alg: Alg::RS256,
                needs: "rsa-2048",
            },
        ),
        (
            "pinned version missing",
            body.clone(),
            Alg::ES256,
            Some(3),
            WireError::NoVersion(3, 1),
        ),
        (
            "not JSON",
            b"<html>".to_vec(),
            Alg::ES256,
            None,
            WireError::NotJson,
        ),
        (
            "no data",
            br#"{"errors":[]}"#.to_vec(),
            Alg::ES256,
            None,
            WireError::Missing("data"),
        ),
        (
            "curve differs from the type",
            answer("ecdsa-p384", 1, &[(1, &pem_one)]),
            Alg::ES384,
            None,
            WireError::PublicKey(1, "the key does not fit algorithm ES384".into()),
        ),
    ];
    for (name, body, alg, pinned, want) in cases {
        assert_eq!(key_info(&body, alg, pinned), Err(want), "{name}");
    }
}

#[test]
fn sign_body_matches_the_alg() {
    let body = |alg| -> Value { serde_json::from_slice(&sign_body(alg, 4, b"a.b")).unwrap() };
    let es = body(Alg::ES384);
    assert_eq!(es["input"], "YS5i");
    assert_eq!(es["key_version"], 4);
    assert_eq!(es["marshaling_algorithm"], "jws");
    assert_eq!(es["hash_algorithm"], "sha2-384");
    assert!(es.get("signature_algorithm").is_none());
    let rs = body(Alg::RS256);
    assert_eq!(rs["signature_algorithm"], "pkcs1v15");
    assert_eq!(rs["hash_algorithm"], "sha2-256");
    let ps = body(Alg::PS512);
    assert_eq!(ps["signature_algorithm"], "pss");
    assert_eq!(ps["salt_length"], "hash");
    assert_eq!(ps["hash_algorithm"], "sha2-512");
    assert!(body(Alg::EdDSA).get("hash_algorithm").is_none());
}

#[test]
fn signature_is_read_from_the_pinned_version_only() {
    let wrap = |sig: &str| serde_json::to_vec(&json!({"data": {"signature": sig}})).unwrap();
    assert_eq!(signature(&wrap("vault:v2:AAEC"), 2), Ok(vec![0, 1, 2]));
    let cases = [
        (
            "other version",
            "vault:v3:AAEC",
            WireError::WrongVersion { want: 2, got: 3 },
        ),
        ("no prefix", "AAEC", WireError::SignatureForm),
        ("no version", "vault:v:AAEC", WireError::SignatureForm),
        ("padded base64", "vault:v2:AAE=", WireError::SignatureForm),
        (
            "standard alphabet",
            "vault:v2:+/+/",
            WireError::SignatureForm,
        ),
    ];
    for (name, text, want) in cases {
        assert_eq!(signature(&wrap(text), 2), Err(want), "{name}");
    }
    assert_eq!(
        signature(br#"{"data":{}}"#, 1),
        Err(WireError::Missing("data.signature"))
    );
}

#[test]
fn errors_are_joined_and_flattened() {
    let body = br#"{"errors":["1 error occurred:\n\t* permission denied\n\n","second"]}"#;
    assert_eq!(
        errors(body),
        "1 error occurred: * permission denied; second"
    );
    assert_eq!(errors(br#"{"errors":[]}"#), "");
    assert_eq!(errors(b"not json"), "");
}
