//! Weak public keys: the checks a public CA runs before it trusts a key (Let's Encrypt's
//! `goodkey`, CA/Browser Forum Baseline Requirements 6.1.6), applied to every key resigner
//! trusts or publishes. An RSA modulus with a small prime factor (trial division by every
//! prime below 10 000, goodkey stops at 752), one whose two primes are so close that Fermat's
//! method factors it (up to [`fermat::ROUNDS`] steps from ⌈√n⌉), one with the ROCA fingerprint
//! (CVE-2017-15361, Infineon's RSALib), an RSA exponent outside BR's range (odd, 65537 to
//! 2^256 − 1), and an EC point off its curve.
//!
//! Debian's weak-key lists (openssl-blacklist, openssh-blocklist of 2008) are not checked:
//! Debian 12 packages neither, so there is no list to use (and none is made up here).
//!
//! Callers: [`crate::keys::import`] refuses an imported key, the IdP client warns and counts,
//! the configuration refuses a weak signing key file, and [`crate::keys::signer::connect`] a weak
//! PKCS#11 or Transit key. One call costs about 3 ms for a good
//! 2048-bit RSA key (see `benches/README.md`), a microsecond for EC, nothing for Ed25519.
//!
//! May use: [`crate::keys::jwk`], [`crate::jose::alg`], num-bigint (the Fermat square roots).

mod fermat;
mod residues;

use crate::jose::alg::{Alg, Curve};
use crate::keys::jwk::KeyMaterial;

/// Why a public key is not trusted. The texts are written to follow "the key is weak: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakKey {
    #[error("the RSA modulus is divisible by {0}, so it is factored at once")]
    SmallFactor(u32),
    #[error(
        "the RSA modulus is the product of two primes too close together (Fermat's method factors it)"
    )]
    ClosePrimes,
    #[error(
        "the RSA modulus has the ROCA fingerprint (CVE-2017-15361, Infineon RSALib): it can be factored"
    )]
    Roca,
    #[error("the RSA public exponent must be odd and between 65537 and 2^256-1")]
    Exponent,
    #[error("the public key is not a valid point of its curve")]
    InvalidPoint,
}

impl WeakKey {
    /// Every [`WeakKey::reason`], for metrics that show each reason (0 included).
    pub const REASONS: [&'static str; 5] = [
        "small_factor",
        "close_primes",
        "roca",
        "exponent",
        "invalid_point",
    ];

    /// A short stable label (metrics, logs).
    pub fn reason(&self) -> &'static str {
        match self {
            WeakKey::SmallFactor(_) => "small_factor",
            WeakKey::ClosePrimes => "close_primes",
            WeakKey::Roca => "roca",
            WeakKey::Exponent => "exponent",
            WeakKey::InvalidPoint => "invalid_point",
        }
    }
}

/// Checks one public key; `Err` names the first weakness found.
pub fn check(material: &KeyMaterial) -> Result<(), WeakKey> {
    match material {
        KeyMaterial::Rsa { n, e } => {
            exponent(e)?;
            rsa_modulus(n)
        }
        KeyMaterial::Ec { curve, .. } => {
            let alg = match curve {
                Curve::P256 => Alg::ES256,
                Curve::P384 => Alg::ES384,
                Curve::P521 => Alg::ES512,
            };
            // aws-lc-rs validates the point (on the curve, not the identity) when parsing.
            material
                .parse_for(alg)
                .map(drop)
                .map_err(|_| WeakKey::InvalidPoint)
        }
        KeyMaterial::Ed25519 { .. } => Ok(()),
    }
}

/// BR 6.1.6: odd, and in 2^16+1 ..= 2^256-1 (goodkey's lower bound too).
fn exponent(e: &[u8]) -> Result<(), WeakKey> {
    let e = &e[e.iter().take_while(|b| **b == 0).count()..];
    let odd = e.last().is_some_and(|b| b & 1 == 1);
    let at_least_65537 = e.len() > 3 || (e.len() == 3 && e >= [1, 0, 1].as_slice());
    if odd && at_least_65537 && e.len() <= 32 {
        Ok(())
    } else {
        Err(WeakKey::Exponent)
    }
}

/// The modulus checks, cheapest first; `n` is big-endian.
fn rsa_modulus(n: &[u8]) -> Result<(), WeakKey> {
    let residues = residues::Residues::of(n);
    if let Some(prime) = residues.small_factor() {
        return Err(WeakKey::SmallFactor(prime));
    }
    if residues.roca_fingerprint() {
        return Err(WeakKey::Roca);
    }
    if fermat::factors(n, fermat::ROUNDS) {
        return Err(WeakKey::ClosePrimes);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
