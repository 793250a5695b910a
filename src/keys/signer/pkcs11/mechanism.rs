//! Which PKCS#11 mechanism makes a JWS signature for an algorithm, and the byte work around
//! it: the message digest when the token lacks the combined mechanism (CKM_ECDSA over a
//! software SHA-2, CKM_RSA_PKCS over a DigestInfo), and ECDSA output (raw `r || s` per the
//! standard, DER from some tokens) converted to the JOSE fixed-width `r || s`.
//!
//! May use: cryptoki's mechanism types, aws-lc-rs digests, `jose::alg`.

use aws_lc_rs::digest;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};

use crate::jose::alg::{Alg, KeyFamily};

/// How one algorithm is signed on one token: the mechanism and whether the message is
/// digested (and, for PKCS#1 v1.5, wrapped in a DigestInfo) here first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    combined: bool,
    alg: Alg,
}

/// The SHA-2 of an algorithm: its digest, its PKCS#11 mechanism types (plain, ECDSA, RSA
/// PKCS#1, RSA PSS), the MGF1 function and the DER DigestInfo prefix.
struct Hash {
    digest: &'static digest::Algorithm,
    sha: MechanismType,
    ecdsa: MechanismType,
    pkcs1: MechanismType,
    pss: MechanismType,
    mgf: PkcsMgfType,
    digest_info: &'static [u8],
}

fn hash(alg: Alg) -> Hash {
    match alg {
        Alg::RS384 | Alg::PS384 | Alg::ES384 => Hash {
            digest: &digest::SHA384,
            sha: MechanismType::SHA384,
            ecdsa: MechanismType::ECDSA_SHA384,
            pkcs1: MechanismType::SHA384_RSA_PKCS,
            pss: MechanismType::SHA384_RSA_PKCS_PSS,
            mgf: PkcsMgfType::MGF1_SHA384,
            digest_info: &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
        },
        Alg::RS512 | Alg::PS512 | Alg::ES512 => Hash {
            digest: &digest::SHA512,
            sha: MechanismType::SHA512,
            ecdsa: MechanismType::ECDSA_SHA512,
            pkcs1: MechanismType::SHA512_RSA_PKCS,
            pss: MechanismType::SHA512_RSA_PKCS_PSS,
            mgf: PkcsMgfType::MGF1_SHA512,
            digest_info: &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        },
        _ => Hash {
            digest: &digest::SHA256,
            sha: MechanismType::SHA256,
            ecdsa: MechanismType::ECDSA_SHA256,
            pkcs1: MechanismType::SHA256_RSA_PKCS,
            pss: MechanismType::SHA256_RSA_PKCS_PSS,
            mgf: PkcsMgfType::MGF1_SHA256,
            digest_info: &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
        },
    }
}

fn is_pss(alg: Alg) -> bool {
    matches!(alg, Alg::PS256 | Alg::PS384 | Alg::PS512)
}

impl Plan {
    /// The plan for `alg` on a token offering `mechanisms`: the combined mechanism when it is
    /// there, else the raw one over a digest made here; `None` when neither is.
    pub fn choose(alg: Alg, mechanisms: &[MechanismType]) -> Option<Plan> {
        let h = hash(alg);
        let (combined, raw) = match alg.family() {
            KeyFamily::Ec(_) => (h.ecdsa, MechanismType::ECDSA),
            KeyFamily::Rsa if is_pss(alg) => (h.pss, MechanismType::RSA_PKCS_PSS),
            KeyFamily::Rsa => (h.pkcs1, MechanismType::RSA_PKCS),
            KeyFamily::Ed25519 => return None,
        };
        if mechanisms.contains(&combined) {
            Some(Plan {
                combined: true,
                alg,
            })
        } else if mechanisms.contains(&raw) {
            Some(Plan {
                combined: false,
                alg,
            })
        } else {
            None
        }
    }

    /// A short name for logs and status (`CKM_ECDSA_SHA256`, `CKM_ECDSA over SHA-256`, ...).
    pub fn describe(&self) -> String {
        let family = match self.alg.family() {
            KeyFamily::Ec(_) => "CKM_ECDSA",
            KeyFamily::Rsa if is_pss(self.alg) => "CKM_RSA_PKCS_PSS",
            _ => "CKM_RSA_PKCS",
        };
        let bits = self.hash_bits();
        match self.combined {
            true => format!("{family} with SHA-{bits} on the token"),
            false => format!("{family} over a SHA-{bits} digest made here"),
        }
    }

    fn hash_bits(&self) -> usize {
        hash(self.alg).digest.output_len() * 8
    }

    /// The mechanism and the bytes to give `C_Sign` for `message`.
    pub fn prepare(&self, message: &[u8]) -> (Mechanism<'static>, Vec<u8>) {
        let h = hash(self.alg);
        let pss = PkcsPssParams {
            hash_alg: h.sha,
            mgf: h.mgf,
            s_len: (h.digest.output_len() as u64).into(),
        };
        if self.combined {
            let mechanism = match self.alg.family() {
                KeyFamily::Ec(_) => ecdsa_combined(self.alg),
                _ if is_pss(self.alg) => pss_combined(self.alg, pss),
                _ => pkcs1_combined(self.alg),
            };
            return (mechanism, message.to_vec());
        }
        let digest = digest::digest(h.digest, message);
        match self.alg.family() {
            KeyFamily::Ec(_) => (Mechanism::Ecdsa, digest.as_ref().to_vec()),
            _ if is_pss(self.alg) => (Mechanism::RsaPkcsPss(pss), digest.as_ref().to_vec()),
            _ => {
                let mut info = h.digest_info.to_vec();
                info.extend_from_slice(digest.as_ref());
                (Mechanism::RsaPkcs, info)
            }
        }
    }

    /// The token's output as a JWS signature: ECDSA as fixed-width `r || s`.
    pub fn finish(&self, output: Vec<u8>) -> Option<Vec<u8>> {
        match self.alg.family() {
            KeyFamily::Ec(curve) => jose_ecdsa(&output, curve.coordinate_len()),
            _ => Some(output),
        }
    }
}

fn ecdsa_combined(alg: Alg) -> Mechanism<'static> {
    match alg {
        Alg::ES384 => Mechanism::EcdsaSha384,
        Alg::ES512 => Mechanism::EcdsaSha512,
        _ => Mechanism::EcdsaSha256,
    }
}

fn pkcs1_combined(alg: Alg) -> Mechanism<'static> {
    match alg {
        Alg::RS384 => Mechanism::Sha384RsaPkcs,
        Alg::RS512 => Mechanism::Sha512RsaPkcs,
        _ => Mechanism::Sha256RsaPkcs,
    }
}

fn pss_combined(alg: Alg, params: PkcsPssParams) -> Mechanism<'static> {
    match alg {
        Alg::PS384 => Mechanism::Sha384RsaPkcsPss(params),
        Alg::PS512 => Mechanism::Sha512RsaPkcsPss(params),
        _ => Mechanism::Sha256RsaPkcsPss(params),
    }
}

/// ECDSA output as JOSE `r || s`, each `len` bytes: raw output of that size is taken as it
/// is, a DER `SEQUENCE { INTEGER r, INTEGER s }` is unpacked.
pub fn jose_ecdsa(output: &[u8], len: usize) -> Option<Vec<u8>> {
    if output.len() == 2 * len {
        return Some(output.to_vec());
    }
    let (body, rest) = der_take(output, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (r, body) = der_take(body, 0x02)?;
    let (s, body) = der_take(body, 0x02)?;
    if !body.is_empty() {
        return None;
    }
    let mut out = vec![0u8; 2 * len];
    let (r_half, s_half) = out.split_at_mut(len);
    for (integer, half) in [(r, r_half), (s, s_half)] {
        let integer = match integer.iter().position(|&b| b != 0) {
            Some(first) => &integer[first..],
            None => &[],
        };
        if integer.len() > len {
            return None;
        }
        half[len - integer.len()..].copy_from_slice(integer);
    }
    Some(out)
}

/// One DER element with `tag` at the start of `input`: its content and what follows.
fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, input) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len_byte, mut input) = input.split_first()?;
    let len = match len_byte {
        short @ 0..=0x7f => short as usize,
        0x81 => {
            let (&len, rest) = input.split_first()?;
            input = rest;
            len as usize
        }
        0x82 => {
            let (bytes, rest) = input.split_at_checked(2)?;
            input = rest;
            u16::from_be_bytes([bytes[0], bytes[1]]) as usize
        }
        _ => return None,
    };
    input.split_at_checked(len)
}

/// The EC point inside `CKA_EC_POINT`: a DER OCTET STRING (the standard) or the bare point.
pub fn ec_point(attribute: &[u8]) -> &[u8] {
    match der_take(attribute, 0x04) {
        Some((point, [])) if point.first() == Some(&0x04) => point,
        _ => attribute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_output_becomes_fixed_width_r_s() {
        let raw: Vec<u8> = (1..=64).collect();
        assert_eq!(jose_ecdsa(&raw, 32).unwrap(), raw);
        // r with a leading zero (high bit set) and a short s.
        let mut der = vec![0x30, 0x26, 0x02, 0x21, 0x00];
        der.extend([0x80; 32]);
        der.extend([0x02, 0x01, 0x07]);
        let out = jose_ecdsa(&der, 32).unwrap();
        assert_eq!(&out[..32], &[0x80; 32]);
        assert_eq!(&out[32..63], &[0; 31]);
        assert_eq!(out[63], 7);
        assert!(jose_ecdsa(&der[..der.len() - 1], 32).is_none(), "truncated");
        assert!(jose_ecdsa(&[0x31, 0x00], 32).is_none(), "not a sequence");
    }

    #[test]
    fn the_combined_mechanism_is_preferred_and_the_raw_one_gets_a_digest() {
        let both = [MechanismType::ECDSA, MechanismType::ECDSA_SHA256];
        assert!(Plan::choose(Alg::ES256, &both).unwrap().combined);
        let raw = Plan::choose(Alg::ES256, &[MechanismType::ECDSA]).unwrap();
        let (mechanism, data) = raw.prepare(b"abc");
        assert_eq!(mechanism.mechanism_type(), MechanismType::ECDSA);
        assert_eq!(data, digest::digest(&digest::SHA256, b"abc").as_ref());
        let rsa = Plan::choose(Alg::RS256, &[MechanismType::RSA_PKCS]).unwrap();
        let (_, info) = rsa.prepare(b"abc");
        assert_eq!(info.len(), 19 + 32);
        assert!(Plan::choose(Alg::PS256, &[MechanismType::RSA_PKCS]).is_none());
        assert!(Plan::choose(Alg::EdDSA, &both).is_none());
    }

    #[test]
    fn an_ec_point_is_unwrapped_from_its_octet_string() {
        let point: Vec<u8> = std::iter::once(4).chain(1..=64).collect();
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(&point);
        assert_eq!(ec_point(&wrapped), &point[..]);
        assert_eq!(ec_point(&point), &point[..]);
    }
}
