//! The JWS algorithms resigner accepts (RFC 7518 §3, RFC 8037) and how each maps onto a key
//! type and an aws-lc-rs primitive. `none` and the HMAC family are deliberately absent: a
//! name that does not parse here can never select a verification path (RFC 8725 §3.1–3.2).

use std::fmt;

use aws_lc_rs::signature::{self, VerificationAlgorithm};

/// A JWS `alg` value resigner can verify or sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

/// The key family an algorithm needs, with the curve for EC keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    Ec(Curve),
    Ed25519,
}

/// Named curves (JWK `crv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            "P-521" => Some(Self::P521),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    /// Length in bytes of one coordinate (and of `r`/`s` in a JWS signature).
    pub fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }
}

impl Alg {
    pub const ALL: [Alg; 10] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::EdDSA,
    ];

    /// Exact, case-sensitive match (RFC 7515 §4.1.1): `rs256` or `None` are not algorithms.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn family(self) -> KeyFamily {
        match self {
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                KeyFamily::Rsa
            }
            Alg::ES256 => KeyFamily::Ec(Curve::P256),
            Alg::ES384 => KeyFamily::Ec(Curve::P384),
            Alg::ES512 => KeyFamily::Ec(Curve::P521),
            Alg::EdDSA => KeyFamily::Ed25519,
        }
    }

    /// The aws-lc-rs verification primitive. RSA variants refuse moduli under 2048 bits;
    /// ECDSA variants take the fixed-length `r || s` form JWS uses, never DER.
    pub fn verification(self) -> &'static dyn VerificationAlgorithm {
        if let Some(rsa) = self.rsa_parameters() {
            return rsa;
        }
        match self {
            Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
            Alg::ES512 => &signature::ECDSA_P521_SHA512_FIXED,
            // EdDSA; every RSA variant was answered by `rsa_parameters` above.
            _ => &signature::ED25519,
        }
    }

    /// RSA verification parameters, for building a parsed key from `n`/`e`.
    pub fn rsa_parameters(self) -> Option<&'static signature::RsaParameters> {
        Some(match self {
            Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_exact_and_has_no_none_or_hmac() {
        for alg in Alg::ALL {
            assert_eq!(Alg::parse(alg.name()), Some(alg));
        }
        for bad in [
            "none", "None", "NONE", "", "HS256", "rs256", "RS256 ", "ES256K",
        ] {
            assert_eq!(Alg::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn families_match_curves() {
        assert_eq!(Alg::ES384.family(), KeyFamily::Ec(Curve::P384));
        assert_eq!(Alg::PS512.family(), KeyFamily::Rsa);
        assert_eq!(Alg::EdDSA.family(), KeyFamily::Ed25519);
        assert_eq!(Curve::P521.coordinate_len(), 66);
    }
}
