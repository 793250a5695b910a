//! The public key inside an X.509 certificate, for one check only: when the management API
//! imports a JWK that carries `x5c`, RFC 7517 §4.7 requires the key in the first (leaf)
//! certificate to match the JWK's own key members, and a key that fails that must be refused.
//! Only one field of the certificate matters for this, so instead of a full X.509 parser crate
//! this module holds a minimal, defensive DER reader that walks to the SubjectPublicKeyInfo
//! and decodes it into [`KeyMaterial`].
//!
//! Nothing else is checked here: not the signature, the chain, the validity period, names or
//! extensions. The reader accepts definite lengths only, bounds every length by the remaining
//! input, never recurses into fields it skips, limits nesting, and returns an error (never
//! panics) on any input.

use crate::alg::Curve;
use crate::keys::jwk::KeyMaterial;

/// Why no usable public key could be taken from a certificate. The texts are written to be
/// returned as-is in an API error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    #[error("certificate is not valid DER")]
    Der,
    #[error("certificate does not have the structure of an X.509 certificate")]
    Structure,
    #[error("certificate key type is not supported")]
    UnsupportedKeyType,
    #[error("certificate key is an RSA-PSS key, which is not supported; use rsaEncryption")]
    RsaPss,
    #[error("certificate key uses an elliptic curve that is not supported")]
    UnsupportedCurve,
    #[error("certificate key is a compressed EC point, which is not supported")]
    CompressedPoint,
    #[error("certificate public key is malformed")]
    MalformedKey,
}

/// DER tags (universal class unless noted).
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
/// `[0]` constructed, context-specific: the EXPLICIT version of a TBSCertificate.
const VERSION: u8 = 0xa0;

/// Content octets of the OIDs this module recognises.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const SECP521R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Deepest constructed value a reader will enter. The walk below never goes deeper than four
/// levels (Certificate, TBSCertificate, SubjectPublicKeyInfo, AlgorithmIdentifier; the
/// RSAPublicKey inside the key BIT STRING gets a fresh reader) and skips every other value
/// without looking inside it; the limit keeps nesting bounded if the walk ever changes.
const MAX_DEPTH: usize = 8;

/// Largest number of length octets accepted (lengths up to 2^32 - 1).
const MAX_LENGTH_OCTETS: usize = 4;

/// The public key of a DER certificate (one `x5c` entry, base64-decoded).
pub fn leaf_public_key(cert_der: &[u8]) -> Result<KeyMaterial, X509Error> {
    let mut outer = Reader::new(cert_der);
    let mut certificate = outer.enter(SEQUENCE)?;
    outer.finish()?;

    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let mut tbs = certificate.enter(SEQUENCE)?;
    certificate.read(SEQUENCE)?;
    certificate.read(BIT_STRING)?;
    certificate.finish()?;

    // TBSCertificate ::= SEQUENCE { [0] EXPLICIT version OPTIONAL, serialNumber, signature,
    //     issuer, validity, subject, subjectPublicKeyInfo, ... }
    if tbs.peek_tag() == Some(VERSION) {
        let mut version = tbs.enter(VERSION)?;
        version.read(INTEGER)?;
        version.finish()?;
    }
    tbs.read(INTEGER)?; // serialNumber
    tbs.read(SEQUENCE)?; // signature
    tbs.read(SEQUENCE)?; // issuer
    tbs.read(SEQUENCE)?; // validity
    tbs.read(SEQUENCE)?; // subject
    let spki = tbs.enter(SEQUENCE)?;
    // issuerUniqueID, subjectUniqueID and extensions may follow; none of them matter here.

    subject_public_key_info(spki)
}

/// SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT
/// STRING }, AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }.
fn subject_public_key_info(mut spki: Reader<'_>) -> Result<KeyMaterial, X509Error> {
    let mut algorithm = spki.enter(SEQUENCE)?;
    let public_key = spki.read(BIT_STRING)?;
    spki.finish()?;
    let oid = algorithm.read(OID)?;
    let key = bit_string_octets(public_key)?;

    if oid == RSA_ENCRYPTION {
        // RFC 3279 §2.3.1: parameters are NULL; tolerate their absence.
        if !algorithm.is_empty() {
            if !algorithm.read(NULL)?.is_empty() {
                return Err(X509Error::Structure);
            }
            algorithm.finish()?;
        }
        rsa_public_key(key)
    } else if oid == EC_PUBLIC_KEY {
        // RFC 5480 §2.1.1: ECParameters is a CHOICE; only namedCurve (an OID) is supported.
        if algorithm.peek_tag() != Some(OID) {
            return Err(X509Error::UnsupportedCurve);
        }
        let curve = match algorithm.read(OID)? {
            PRIME256V1 => Curve::P256,
            SECP384R1 => Curve::P384,
            SECP521R1 => Curve::P521,
            _ => return Err(X509Error::UnsupportedCurve),
        };
        algorithm.finish()?;
        ec_point(curve, key)
    } else if oid == ED25519 {
        // RFC 8410 §3: parameters are absent.
        algorithm.finish()?;
        if key.len() != 32 {
            return Err(X509Error::MalformedKey);
        }
        Ok(KeyMaterial::Ed25519 { x: key.to_vec() })
    } else if oid == RSASSA_PSS {
        Err(X509Error::RsaPss)
    } else {
        Err(X509Error::UnsupportedKeyType)
    }
}

/// The octets of a BIT STRING holding a key: the unused-bits count must be zero.
fn bit_string_octets(content: &[u8]) -> Result<&[u8], X509Error> {
    match content.split_first() {
        Some((0, octets)) => Ok(octets),
        _ => Err(X509Error::MalformedKey),
    }
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 A.1.1).
fn rsa_public_key(der: &[u8]) -> Result<KeyMaterial, X509Error> {
    let malformed = |_| X509Error::MalformedKey;
    let mut outer = Reader::new(der);
    let mut sequence = outer.enter(SEQUENCE).map_err(malformed)?;
    outer.finish().map_err(malformed)?;
    let n = positive_integer(sequence.read(INTEGER).map_err(malformed)?)?;
    let e = positive_integer(sequence.read(INTEGER).map_err(malformed)?)?;
    sequence.finish().map_err(malformed)?;
    Ok(KeyMaterial::Rsa { n, e })
}

/// A positive INTEGER's magnitude, big-endian without leading zero octets (the JWK form).
fn positive_integer(content: &[u8]) -> Result<Vec<u8>, X509Error> {
    match content.first() {
        Some(first) if first & 0x80 == 0 => {}
        _ => return Err(X509Error::MalformedKey), // empty or negative
    }
    let start = content
        .iter()
        .position(|&b| b != 0)
        .ok_or(X509Error::MalformedKey)?; // zero
    Ok(content.get(start..).unwrap_or_default().to_vec())
}

/// An uncompressed point `0x04 || x || y` with fixed-length coordinates (SEC 1 §2.3.3).
fn ec_point(curve: Curve, point: &[u8]) -> Result<KeyMaterial, X509Error> {
    let len = curve.coordinate_len();
    match point.split_first() {
        Some((0x04, xy)) if xy.len() == 2 * len => {
            let (x, y) = xy.split_at(len);
            Ok(KeyMaterial::Ec {
                curve,
                x: x.to_vec(),
                y: y.to_vec(),
            })
        }
        Some((0x02 | 0x03, xy)) if xy.len() == len => Err(X509Error::CompressedPoint),
        _ => Err(X509Error::MalformedKey),
    }
}

/// A cursor over DER TLVs within one constructed value.
struct Reader<'a> {
    rest: &'a [u8],
    depth: usize,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Self {
        Reader {
            rest: input,
            depth: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads one TLV and returns its tag and content octets.
    fn read_any(&mut self) -> Result<(u8, &'a [u8]), X509Error> {
        let (&tag, rest) = self.rest.split_first().ok_or(X509Error::Der)?;
        if tag & 0x1f == 0x1f {
            // High-tag-number form: never used by the fields read here.
            return Err(X509Error::Der);
        }
        let (&first, rest) = rest.split_first().ok_or(X509Error::Der)?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            // 0x80 is the indefinite form (BER only); 0xff is reserved.
            let count = usize::from(first & 0x7f);
            if count == 0 || count > MAX_LENGTH_OCTETS {
                return Err(X509Error::Der);
            }
            let (octets, rest) = rest.split_at_checked(count).ok_or(X509Error::Der)?;
            if octets.first() == Some(&0) {
                return Err(X509Error::Der); // not the shortest encoding
            }
            let len = octets
                .iter()
                .fold(0u64, |len, &b| (len << 8) | u64::from(b));
            if len < 0x80 {
                return Err(X509Error::Der); // should have used the short form
            }
            (usize::try_from(len).map_err(|_| X509Error::Der)?, rest)
        };
        let (content, rest) = rest.split_at_checked(len).ok_or(X509Error::Der)?;
        self.rest = rest;
        Ok((tag, content))
    }

    /// Reads one TLV that must carry `tag` and returns its content octets.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], X509Error> {
        match self.read_any()? {
            (found, content) if found == tag => Ok(content),
            _ => Err(X509Error::Structure),
        }
    }

    /// Reads a constructed TLV with `tag` and returns a reader over its contents.
    fn enter(&mut self, tag: u8) -> Result<Reader<'a>, X509Error> {
        let content = self.read(tag)?;
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(X509Error::Der);
        }
        Ok(Reader {
            rest: content,
            depth,
        })
    }

    /// Fails unless every TLV of this value has been read.
    fn finish(&self) -> Result<(), X509Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(X509Error::Structure)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::Alg;
    use crate::keys::signing::SigningKey;

    fn rcgen_alg(alg: Alg) -> &'static rcgen::SignatureAlgorithm {
        match alg {
            Alg::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Alg::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Alg::ES512 => &rcgen::PKCS_ECDSA_P521_SHA512,
            Alg::EdDSA => &rcgen::PKCS_ED25519,
            _ => &rcgen::PKCS_RSA_SHA256,
        }
    }

    /// A fresh key for `alg`: its self-signed certificate (built by rcgen from the same
    /// PKCS#8 key) and the material resigner itself derives from that key.
    fn cert_and_material(alg: Alg) -> (Vec<u8>, KeyMaterial) {
        let pkcs8 = SigningKey::generate_pkcs8(alg).unwrap();
        let material = SigningKey::from_pkcs8(&pkcs8, alg, None)
            .unwrap()
            .public_jwk()
            .material
            .clone();
        let key_pair =
            rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_slice().into(), rcgen_alg(alg))
                .unwrap();
        let cert = rcgen::CertificateParams::new(vec!["example".into()])
            .unwrap()
            .self_signed(&key_pair)
            .unwrap();
        (cert.der().to_vec(), material)
    }

    const ALGS: [Alg; 5] = [Alg::RS256, Alg::ES256, Alg::ES384, Alg::ES512, Alg::EdDSA];

    /// DER TLV with a minimal length encoding.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let octets: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | octets.len() as u8);
            out.extend(octets);
        }
        out.extend_from_slice(content);
        out
    }

    fn spki(algorithm_oid: &[u8], parameters: &[u8], key: &[u8]) -> Vec<u8> {
        let algorithm = tlv(
            SEQUENCE,
            &[tlv(OID, algorithm_oid), parameters.to_vec()].concat(),
        );
        let key = tlv(BIT_STRING, &[&[0u8][..], key].concat());
        tlv(SEQUENCE, &[algorithm, key].concat())
    }

    /// A structurally valid certificate around `spki` (unsigned; nothing checks signatures).
    fn cert_with_spki(spki: &[u8], with_version: bool) -> Vec<u8> {
        let ecdsa_with_sha256 = tlv(OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
        let name = tlv(SEQUENCE, &[]);
        let validity = tlv(
            SEQUENCE,
            &[tlv(0x17, b"250101000000Z"), tlv(0x17, b"350101000000Z")].concat(),
        );
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(tlv(VERSION, &tlv(INTEGER, &[2])));
        }
        tbs.extend(tlv(INTEGER, &[1]));
        tbs.extend(tlv(SEQUENCE, &ecdsa_with_sha256));
        tbs.extend(name.clone());
        tbs.extend(validity);
        tbs.extend(name);
        tbs.extend_from_slice(spki);
        let tbs = tlv(SEQUENCE, &tbs);
        let signature = tlv(BIT_STRING, &[0, 1, 2, 3]);
        tlv(
            SEQUENCE,
            &[tbs, tlv(SEQUENCE, &ecdsa_with_sha256), signature].concat(),
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
        let ed = spki(ED25519, &[], &x);
        for with_version in [true, false] {
            assert_eq!(
                leaf_public_key(&cert_with_spki(&ed, with_version)),
                Ok(KeyMaterial::Ed25519 { x: x.to_vec() })
            );
        }
        // RSA with parameters omitted instead of NULL, and a non-minimal INTEGER.
        let n = [&[0u8, 0][..], &[0xc5; 256]].concat();
        let rsa = tlv(
            SEQUENCE,
            &[tlv(INTEGER, &n), tlv(INTEGER, &[1, 0, 1])].concat(),
        );
        assert_eq!(
            leaf_public_key(&cert_with_spki(&spki(RSA_ENCRYPTION, &[], &rsa), true)),
            Ok(KeyMaterial::Rsa {
                n: vec![0xc5; 256],
                e: vec![1, 0, 1]
            })
        );
    }

    #[test]
    fn unsupported_keys_are_named() {
        let cert = |spki: Vec<u8>| leaf_public_key(&cert_with_spki(&spki, true));
        let p256 = tlv(OID, PRIME256V1);
        let mut uncompressed = vec![4u8];
        uncompressed.extend([9u8; 64]);
        assert!(matches!(
            cert(spki(EC_PUBLIC_KEY, &p256, &uncompressed)),
            Ok(KeyMaterial::Ec {
                curve: Curve::P256,
                ..
            })
        ));

        let compressed = [&[2u8][..], &[9; 32]].concat();
        assert_eq!(
            cert(spki(EC_PUBLIC_KEY, &p256, &compressed)),
            Err(X509Error::CompressedPoint)
        );
        assert_eq!(
            cert(spki(EC_PUBLIC_KEY, &p256, &uncompressed[..64])),
            Err(X509Error::MalformedKey)
        );
        let secp256k1 = tlv(OID, &[0x2b, 0x81, 0x04, 0x00, 0x0a]);
        assert_eq!(
            cert(spki(EC_PUBLIC_KEY, &secp256k1, &uncompressed)),
            Err(X509Error::UnsupportedCurve)
        );
        let specified_curve = tlv(SEQUENCE, &tlv(INTEGER, &[1]));
        assert_eq!(
            cert(spki(EC_PUBLIC_KEY, &specified_curve, &uncompressed)),
            Err(X509Error::UnsupportedCurve)
        );
        let ed448 = [0x2b, 0x65, 0x71];
        assert_eq!(
            cert(spki(&ed448, &[], &[1; 57])),
            Err(X509Error::UnsupportedKeyType)
        );
        let dsa = [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
        assert_eq!(
            cert(spki(&dsa, &[], &tlv(INTEGER, &[5]))),
            Err(X509Error::UnsupportedKeyType)
        );
        assert_eq!(
            cert(spki(ED25519, &[], &[1; 31])),
            Err(X509Error::MalformedKey)
        );
        let negative = tlv(
            SEQUENCE,
            &[tlv(INTEGER, &[0x85; 256]), tlv(INTEGER, &[3])].concat(),
        );
        assert_eq!(
            cert(spki(RSA_ENCRYPTION, &tlv(NULL, &[]), &negative)),
            Err(X509Error::MalformedKey)
        );

        // A key BIT STRING with unused bits.
        let algorithm = tlv(SEQUENCE, &tlv(OID, ED25519));
        let key = tlv(BIT_STRING, &[&[1u8][..], &[1; 32]].concat());
        assert_eq!(
            cert(tlv(SEQUENCE, &[algorithm, key].concat())),
            Err(X509Error::MalformedKey)
        );
    }

    #[test]
    fn rsa_pss_spki_is_refused() {
        // Rewrite the SPKI algorithm of a real certificate from rsaEncryption to RSASSA-PSS.
        let (mut cert, _) = cert_and_material(Alg::RS256);
        let needle = tlv(OID, RSA_ENCRYPTION);
        let at = cert
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        cert[at..at + needle.len()].copy_from_slice(&tlv(OID, RSASSA_PSS));
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

    #[test]
    fn malformed_lengths_are_refused() {
        assert_eq!(leaf_public_key(&[]), Err(X509Error::Der));
        // Lengths of 2^32 - 1 and 2^32 bytes with a few bytes of content.
        let huge = [0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x00];
        assert_eq!(leaf_public_key(&huge), Err(X509Error::Der));
        let huger = [0x30, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00];
        assert_eq!(leaf_public_key(&huger), Err(X509Error::Der));
        let max = [0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(leaf_public_key(&max), Err(X509Error::Der));
        // Indefinite length, reserved length, non-minimal lengths, high tag number.
        for input in [
            &[0x30, 0x80, 0x00, 0x00][..],
            &[0x30, 0xff],
            &[0x30, 0x81, 0x02, 0x05, 0x00],
            &[0x30, 0x82, 0x00, 0x02, 0x05, 0x00],
            &[0x3f, 0x01, 0x00],
        ] {
            assert_eq!(leaf_public_key(input), Err(X509Error::Der), "{input:02x?}");
        }
        // A real certificate whose outer length claims 2^32 - 1 bytes.
        let (cert, _) = cert_and_material(Alg::ES256);
        let body = &cert[4..]; // rcgen certificates this size use a 0x82 length
        assert_eq!(cert[1], 0x82);
        let lying = [&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..], body].concat();
        assert_eq!(leaf_public_key(&lying), Err(X509Error::Der));
    }

    #[test]
    fn deeply_nested_sequences_are_refused() {
        let mut nested = tlv(NULL, &[]);
        for _ in 0..10_000 {
            nested = tlv(SEQUENCE, &nested);
        }
        assert!(leaf_public_key(&nested).is_err());
        let mut short = Vec::new();
        for _ in 0..MAX_DEPTH * 2 {
            short = tlv(SEQUENCE, &short);
        }
        assert!(leaf_public_key(&short).is_err());
    }

    #[test]
    fn reader_depth_is_limited() {
        let mut nested = Vec::new();
        for _ in 0..MAX_DEPTH + 1 {
            nested = tlv(SEQUENCE, &nested);
        }
        let mut reader = Reader::new(&nested);
        for _ in 0..MAX_DEPTH {
            reader = reader.enter(SEQUENCE).unwrap();
        }
        assert_eq!(reader.enter(SEQUENCE).err(), Some(X509Error::Der));
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
            let framed = tlv(SEQUENCE, &tlv(SEQUENCE, &bytes));
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
}
