//! Tests of the x5c leaf key: real rcgen certificates for every supported key, hand-built
//! certificates around unusual SubjectPublicKeyInfos, and malformed, truncated, nested and
//! random input that must be refused without a panic.

use super::*;
use crate::jose::alg::Alg;
use crate::keys::signer::SigningKey;

/// DER tags and OID content octets for hand-built certificates.
mod der {
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    /// `[0]` constructed, context-specific: the EXPLICIT version of a TBSCertificate.
    pub const VERSION: u8 = 0xa0;
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
}

fn rcgen_alg(alg: Alg) -> &'static rcgen::SignatureAlgorithm {
    match alg {
        Alg::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Alg::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        Alg::ES512 => &rcgen::PKCS_ECDSA_P521_SHA512,
        Alg::EdDSA => &rcgen::PKCS_ED25519,
        _ => &rcgen::PKCS_RSA_SHA256,
    }
}

/// A fresh key for `alg` as rcgen's key pair, and the material resigner itself derives
/// from the same PKCS#8 key.
fn key_pair_and_material(alg: Alg) -> (rcgen::KeyPair, KeyMaterial) {
    let pkcs8 = SigningKey::generate_pkcs8(alg).unwrap();
    let material = SigningKey::from_pkcs8(&pkcs8, alg, None)
        .unwrap()
        .public_jwk()
        .material
        .clone();
    let key_pair =
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_slice().into(), rcgen_alg(alg))
            .unwrap();
    (key_pair, material)
}

/// A fresh key for `alg`: its self-signed certificate (built by rcgen from the same
/// PKCS#8 key) and the material resigner itself derives from that key.
fn cert_and_material(alg: Alg) -> (Vec<u8>, KeyMaterial) {
    let (key_pair, material) = key_pair_and_material(alg);
    let cert = rcgen::CertificateParams::new(vec!["example".into()])
        .unwrap()
        .self_signed(&key_pair)
        .unwrap();
    (cert.der().to_vec(), material)
}

const ALGS: [Alg; 5] = [Alg::RS256, Alg::ES256, Alg::ES384, Alg::ES512, Alg::EdDSA];

/// DER TLV with a minimal length encoding.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    crate::keys::der::tagged(tag, content)
}

fn spki(algorithm_oid: &[u8], parameters: &[u8], key: &[u8]) -> Vec<u8> {
    let algorithm = tlv(
        der::SEQUENCE,
        &[tlv(der::OID, algorithm_oid), parameters.to_vec()].concat(),
    );
    let key = tlv(der::BIT_STRING, &[&[0u8][..], key].concat());
    tlv(der::SEQUENCE, &[algorithm, key].concat())
}

/// A structurally valid certificate around `spki` (unsigned; nothing checks signatures).
fn cert_with_spki(spki: &[u8], with_version: bool) -> Vec<u8> {
    let ecdsa_with_sha256 = tlv(der::OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
    let name = tlv(der::SEQUENCE, &[]);
    let validity = tlv(
        der::SEQUENCE,
        &[tlv(0x17, b"250101000000Z"), tlv(0x17, b"350101000000Z")].concat(),
    );
    let mut tbs = Vec::new();
    if with_version {
        tbs.extend(tlv(der::VERSION, &tlv(der::INTEGER, &[2])));
    }
    tbs.extend(tlv(der::INTEGER, &[1]));
    tbs.extend(tlv(der::SEQUENCE, &ecdsa_with_sha256));
    tbs.extend(name.clone());
    tbs.extend(validity);
    tbs.extend(name);
    tbs.extend_from_slice(spki);
    let tbs = tlv(der::SEQUENCE, &tbs);
    let signature = tlv(der::BIT_STRING, &[0, 1, 2, 3]);
    tlv(
        der::SEQUENCE,
        &[tbs, tlv(der::SEQUENCE, &ecdsa_with_sha256), signature].concat(),
    )
}

#[test]
fn leaf_key_matches_the_key_it_was_issued_for() {
    for alg in ALGS {
        let (cert, material) = cert_and_material(alg);
        assert_eq!(leaf_public_key(&cert), Ok(material), "{alg}");
    }
}

#[test]
fn leaf_key_differs_from_other_keys() {
    let pairs: Vec<_> = ALGS.into_iter().map(cert_and_material).collect();
    for (i, (cert, _)) in pairs.iter().enumerate() {
        let key = leaf_public_key(cert).unwrap();
        for (j, (_, other)) in pairs.iter().enumerate() {
            assert_eq!(i == j, key == *other, "cert {i} against key {j}");
        }
    }
    // Same algorithm, different key.
    for alg in ALGS {
        let (cert, _) = cert_and_material(alg);
        let (_, other) = cert_and_material(alg);
        assert_ne!(leaf_public_key(&cert).unwrap(), other, "{alg}");
    }
}

#[test]
fn rsa_members_have_no_leading_zero_octets() {
    let (cert, _) = cert_and_material(Alg::RS256);
    let Ok(KeyMaterial::Rsa { n, e }) = leaf_public_key(&cert) else {
        panic!("not an RSA key");
    };
    assert_eq!(n.len(), 256);
    assert_ne!(n[0], 0);
    assert_eq!(e, [1, 0, 1]);
}

#[test]
fn hand_built_certificates_decode_with_or_without_version() {
    let x = [7u8; 32];
    let ed = spki(der::ED25519, &[], &x);
    for with_version in [true, false] {
        assert_eq!(
            leaf_public_key(&cert_with_spki(&ed, with_version)),
            Ok(KeyMaterial::Ed25519 { x: x.to_vec() })
        );
    }
    // RSA with parameters omitted instead of NULL; the modulus's sign octet is dropped.
    let rsa_with = |n: &[u8]| {
        let rsa = tlv(
            der::SEQUENCE,
            &[tlv(der::INTEGER, n), tlv(der::INTEGER, &[1, 0, 1])].concat(),
        );
        leaf_public_key(&cert_with_spki(&spki(der::RSA_ENCRYPTION, &[], &rsa), true))
    };
    let n = [&[0u8][..], &[0xc5; 256]].concat();
    assert_eq!(
        rsa_with(&n),
        Ok(KeyMaterial::Rsa {
            n: vec![0xc5; 256],
            e: vec![1, 0, 1]
        })
    );
    // A non-minimal INTEGER is not DER: refused.
    let padded = [&[0u8, 0][..], &[0xc5; 256]].concat();
    assert_eq!(rsa_with(&padded), Err(X509Error::MalformedKey));
}

#[test]
fn unsupported_keys_are_named() {
    let cert = |spki: Vec<u8>| leaf_public_key(&cert_with_spki(&spki, true));
    let p256 = tlv(der::OID, der::PRIME256V1);
    let mut uncompressed = vec![4u8];
    uncompressed.extend([9u8; 64]);
    assert!(matches!(
        cert(spki(der::EC_PUBLIC_KEY, &p256, &uncompressed)),
        Ok(KeyMaterial::Ec {
            curve: Curve::P256,
            ..
        })
    ));

    let compressed = [&[2u8][..], &[9; 32]].concat();
    assert_eq!(
        cert(spki(der::EC_PUBLIC_KEY, &p256, &compressed)),
        Err(X509Error::CompressedPoint)
    );
    assert_eq!(
        cert(spki(der::EC_PUBLIC_KEY, &p256, &uncompressed[..64])),
        Err(X509Error::MalformedKey)
    );
    let secp256k1 = tlv(der::OID, &[0x2b, 0x81, 0x04, 0x00, 0x0a]);
    assert_eq!(
        cert(spki(der::EC_PUBLIC_KEY, &secp256k1, &uncompressed)),
        Err(X509Error::UnsupportedCurve)
    );
    let specified_curve = tlv(der::SEQUENCE, &tlv(der::INTEGER, &[1]));
    assert_eq!(
        cert(spki(der::EC_PUBLIC_KEY, &specified_curve, &uncompressed)),
        Err(X509Error::UnsupportedCurve)
    );
    let ed448 = [0x2b, 0x65, 0x71];
    assert_eq!(
        cert(spki(&ed448, &[], &[1; 57])),
        Err(X509Error::UnsupportedKeyType)
    );
    let dsa = [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
    assert_eq!(
        cert(spki(&dsa, &[], &tlv(der::INTEGER, &[5]))),
        Err(X509Error::UnsupportedKeyType)
    );
    assert_eq!(
        cert(spki(der::ED25519, &[], &[1; 31])),
        Err(X509Error::MalformedKey)
    );
    let negative = tlv(
        der::SEQUENCE,
        &[tlv(der::INTEGER, &[0x85; 256]), tlv(der::INTEGER, &[3])].concat(),
    );
    assert_eq!(
        cert(spki(der::RSA_ENCRYPTION, &tlv(der::NULL, &[]), &negative)),
        Err(X509Error::MalformedKey)
    );

    // A key BIT STRING with unused bits: refused by the parser (DER wants the unused
    // bits zero) or here.
    let algorithm = tlv(der::SEQUENCE, &tlv(der::OID, der::ED25519));
    let key = tlv(der::BIT_STRING, &[&[1u8][..], &[1; 32]].concat());
    assert!(matches!(
        cert(tlv(der::SEQUENCE, &[algorithm, key].concat())),
        Err(X509Error::MalformedKey | X509Error::Structure)
    ));
}

#[test]
fn rsa_pss_spki_is_refused() {
    // Rewrite the SPKI algorithm of a real certificate from rsaEncryption to RSASSA-PSS.
    let (mut cert, _) = cert_and_material(Alg::RS256);
    let needle = tlv(der::OID, der::RSA_ENCRYPTION);
    let at = cert
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    cert[at..at + needle.len()].copy_from_slice(&tlv(der::OID, der::RSASSA_PSS));
    assert_eq!(leaf_public_key(&cert), Err(X509Error::RsaPss));
    assert_eq!(
        X509Error::RsaPss.to_string(),
        "certificate key is an RSA-PSS key, which is not supported; use rsaEncryption"
    );
}

#[test]
fn truncated_or_extended_certificates_are_refused() {
    for alg in ALGS {
        let (cert, _) = cert_and_material(alg);
        for len in 0..cert.len() {
            assert!(leaf_public_key(&cert[..len]).is_err(), "{alg} at {len}");
        }
        let mut longer = cert.clone();
        longer.push(0);
        assert_eq!(leaf_public_key(&longer), Err(X509Error::Structure));
    }
}

/// Refused as not DER or not a certificate (the parser's two kinds of decoding error).
fn not_der(result: Result<KeyMaterial, X509Error>) -> bool {
    matches!(result, Err(X509Error::Der | X509Error::Structure))
}

#[test]
fn malformed_lengths_are_refused() {
    assert!(not_der(leaf_public_key(&[])));
    // Lengths of 2^32 - 1 and 2^32 bytes with a few bytes of content.
    let huge = [0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x00];
    assert!(not_der(leaf_public_key(&huge)));
    let huger = [0x30, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00];
    assert!(not_der(leaf_public_key(&huger)));
    let max = [0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert!(not_der(leaf_public_key(&max)));
    // Indefinite length, reserved length, non-minimal lengths, high tag number.
    for input in [
        &[0x30, 0x80, 0x00, 0x00][..],
        &[0x30, 0xff],
        &[0x30, 0x81, 0x02, 0x05, 0x00],
        &[0x30, 0x82, 0x00, 0x02, 0x05, 0x00],
        &[0x3f, 0x01, 0x00],
    ] {
        assert!(not_der(leaf_public_key(input)), "{input:02x?}");
    }
    // A real certificate whose outer length claims 2^32 - 1 bytes.
    let (cert, _) = cert_and_material(Alg::ES256);
    let body = &cert[4..]; // rcgen certificates this size use a 0x82 length
    assert_eq!(cert[1], 0x82);
    let lying = [&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..], body].concat();
    assert!(not_der(leaf_public_key(&lying)));
}

#[test]
fn deeply_nested_sequences_are_refused() {
    let mut nested = tlv(der::NULL, &[]);
    for _ in 0..10_000 {
        nested = tlv(der::SEQUENCE, &nested);
    }
    assert!(leaf_public_key(&nested).is_err());
    let mut short = Vec::new();
    for _ in 0..16 {
        short = tlv(der::SEQUENCE, &short);
    }
    assert!(leaf_public_key(&short).is_err());
}

#[test]
fn a_certificate_with_extensions_and_a_chain_position_parses() {
    // rcgen's certificates carry extensions (subjectAltName); a CA certificate adds
    // basicConstraints and key usage. Neither changes the key that is read.
    for alg in [Alg::ES256, Alg::EdDSA] {
        let (key_pair, material) = key_pair_and_material(alg);
        let mut params = rcgen::CertificateParams::new(vec!["a.example".into()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        let cert = params.self_signed(&key_pair).unwrap();
        assert_eq!(leaf_public_key(cert.der()), Ok(material), "{alg}");
    }
}

#[test]
fn random_and_mutated_input_never_panics() {
    // xorshift64*: deterministic, so a failure is reproducible.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for _ in 0..20_000 {
        let len = (next() % 600) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        assert!(leaf_public_key(&bytes).is_err());
        // The same bytes behind a plausible certificate header.
        let framed = tlv(der::SEQUENCE, &tlv(der::SEQUENCE, &bytes));
        assert!(leaf_public_key(&framed).is_err());
    }
    for alg in ALGS {
        let (cert, _) = cert_and_material(alg);
        for _ in 0..5_000 {
            let mut mutated = cert.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % mutated.len();
                mutated[at] ^= 1 << (next() % 8);
            }
            let _ = leaf_public_key(&mutated); // may parse; must not panic
        }
    }
}

#[test]
fn messages_are_sentences_for_api_errors() {
    assert_eq!(X509Error::Der.to_string(), "certificate is not valid DER");
    assert_eq!(
        X509Error::UnsupportedKeyType.to_string(),
        "certificate key type is not supported"
    );
}
