//! The self-signed X.509 certificate of a managed key (rcgen), as Auth0's signing keys API
//! returns one per key, its fingerprint forms, and its PKCS#7 form (Auth0's `pkcs7`: a
//! certificates-only SignedData holding the one certificate). A key in memory signs its
//! certificate through rcgen's own key pair; a key on a token through [`self_signed_by`]
//! (rcgen's remote `SigningKey`: the token signs, ECDSA's `r || s` re-encoded as DER).
//!
//! May use: rcgen, `keys::{pem, der}`, `keys::signer` (to sign through a backend), aws-lc-rs digests.

use std::time::Duration;

use aws_lc_rs::digest;
use rcgen::{CertificateParams, DnType, KeyPair, PublicKeyData, SignatureAlgorithm};

use super::error::ManagedError;
use crate::jose::alg::Alg;
use crate::keys::der as asn1;
use crate::keys::{KeyMaterial, SigningKey};

/// Ten years, as certificates of signing keys are not checked for expiry by JWT verifiers.
const VALIDITY: Duration = Duration::from_secs(3650 * 86_400);

fn cert_error(e: rcgen::Error) -> ManagedError {
    ManagedError::Cert(e.to_string())
}

/// A self-signed certificate (PEM) of the PKCS#8 key `pkcs8`, named for `kid`.
pub fn self_signed(pkcs8: &[u8], kid: &str, now: i64) -> Result<String, ManagedError> {
    let pair = KeyPair::try_from(pkcs8).map_err(cert_error)?;
    Ok(params(kid, now)?
        .self_signed(&pair)
        .map_err(cert_error)?
        .pem())
}

/// A self-signed certificate (PEM) of `signer`'s key, signed through its backend (a token):
/// `signer` must sign with the certificate's algorithm: PKCS#1 v1.5 for RSA (`RS*`), ECDSA
/// (`ES*`) or Ed25519.
pub fn self_signed_by(signer: &SigningKey, kid: &str, now: i64) -> Result<String, ManagedError> {
    let remote = Remote::new(signer)?;
    Ok(params(kid, now)?
        .self_signed(&remote)
        .map_err(cert_error)?
        .pem())
}

fn params(kid: &str, now: i64) -> Result<CertificateParams, ManagedError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
    params.distinguished_name.push(
        DnType::CommonName,
        format!("resigner managed signing key {kid}"),
    );
    let start = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(now.max(0) as u64);
    params.not_before = start;
    params.not_after = start + VALIDITY;
    Ok(params)
}

/// A key rcgen signs a certificate with through our signer.
struct Remote<'a> {
    signer: &'a SigningKey,
    /// The subjectPublicKey bits: the EC point, or the PKCS#1 RSAPublicKey DER.
    public: Vec<u8>,
    algorithm: &'static SignatureAlgorithm,
}

impl<'a> Remote<'a> {
    fn new(signer: &'a SigningKey) -> Result<Self, ManagedError> {
        let algorithm = match signer.alg() {
            Alg::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Alg::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Alg::ES512 => &rcgen::PKCS_ECDSA_P521_SHA512,
            Alg::RS256 => &rcgen::PKCS_RSA_SHA256,
            Alg::RS384 => &rcgen::PKCS_RSA_SHA384,
            Alg::RS512 => &rcgen::PKCS_RSA_SHA512,
            Alg::EdDSA => &rcgen::PKCS_ED25519,
            other => {
                return Err(ManagedError::Cert(format!(
                    "a certificate cannot be signed through a backend with {}",
                    other.name()
                )));
            }
        };
        let public = match &signer.public_jwk().material {
            KeyMaterial::Ec { x, y, .. } => [&[0x04][..], x, y].concat(),
            KeyMaterial::Rsa { n, e } => asn1::sequence(&[asn1::integer(n), asn1::integer(e)]),
            KeyMaterial::Ed25519 { x } => x.clone(),
        };
        Ok(Remote {
            signer,
            public,
            algorithm,
        })
    }
}

impl PublicKeyData for Remote<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }
}

impl rcgen::SigningKey for Remote<'_> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signature = self.signer.sign_raw(message).map_err(|err| {
            tracing::warn!(kid = self.signer.kid(), error = %err, "cannot sign a managed key's certificate");
            rcgen::Error::RemoteKeyError
        })?;
        Ok(match self.signer.alg().family() {
            crate::jose::alg::KeyFamily::Ec(_) => asn1::ecdsa_signature(&signature),
            _ => signature,
        })
    }
}

/// Auth0's `pkcs7`: the certificate as a PKCS#7 (RFC 2315) certificates-only SignedData, PEM.
pub fn pkcs7(cert_der: &[u8]) -> String {
    const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
    const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    let signed_data = asn1::sequence(&[
        asn1::integer(&[1]),
        asn1::tagged(0x31, &[]),                     // digestAlgorithms: none
        asn1::sequence(&[asn1::tagged(0x06, DATA)]), // contentInfo: data, no content
        asn1::tagged(0xa0, cert_der),                // certificates [0] IMPLICIT
        asn1::tagged(0x31, &[]),                     // signerInfos: none
    ]);
    let content_info = asn1::sequence(&[
        asn1::tagged(0x06, SIGNED_DATA),
        asn1::tagged(0xa0, &signed_data),
    ]);
    crate::keys::pem::encode(&content_info, "PKCS7")
}

/// The DER of a PEM certificate.
pub fn der(cert_pem: &str) -> Option<Vec<u8>> {
    crate::keys::pem::decode(cert_pem, "CERTIFICATE").ok()
}

/// Auth0's `fingerprint`: the SHA-1 of the DER as upper-case hex pairs joined by `:`.
pub fn fingerprint(der: &[u8]) -> String {
    sha1_hex(der)
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// Auth0's `thumbprint`: the same SHA-1 as upper-case hex without separators.
pub fn thumbprint(der: &[u8]) -> String {
    sha1_hex(der)
}

fn sha1_hex(der: &[u8]) -> String {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::alg::Alg;

    #[test]
    fn certificates_for_every_family_and_their_fingerprints() {
        for alg in [Alg::ES256, Alg::RS256, Alg::EdDSA] {
            let der = crate::keys::SigningKey::generate_pkcs8(alg).unwrap();
            let pem = self_signed(&der, "kid-1", 1_800_000_000).unwrap();
            let cert = super::der(&pem).unwrap();
            let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
            assert!(parsed.subject().to_string().contains("kid-1"), "{alg:?}");
            let fp = fingerprint(&cert);
            assert_eq!(fp.len(), 59);
            assert_eq!(fp.replace(':', ""), thumbprint(&cert));
        }
    }

    /// A certificate signed through a signer (as a token signs it) verifies with the key's
    /// public half, for ECDSA (DER re-encoded) and RSA.
    #[test]
    fn certificates_signed_through_a_signer_verify() {
        use aws_lc_rs::signature::{self, UnparsedPublicKey};
        for (alg, verify) in [
            (
                Alg::ES256,
                &signature::ECDSA_P256_SHA256_ASN1 as &dyn signature::VerificationAlgorithm,
            ),
            (Alg::ES384, &signature::ECDSA_P384_SHA384_ASN1),
            (Alg::RS256, &signature::RSA_PKCS1_2048_8192_SHA256),
            (Alg::EdDSA, &signature::ED25519),
        ] {
            let der = SigningKey::generate_pkcs8(alg).unwrap();
            let signer = SigningKey::from_pkcs8(&der, alg, None).unwrap();
            let pem = self_signed_by(&signer, signer.kid(), 1_800_000_000).unwrap();
            let cert = super::der(&pem).unwrap();
            let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
            let spki = parsed.public_key();
            let from_cert = crate::keys::x509::spki_public_key(spki.raw).unwrap();
            assert_eq!(from_cert, signer.public_jwk().material, "{alg:?}");
            UnparsedPublicKey::new(verify, &spki.subject_public_key.data)
                .verify(
                    parsed.tbs_certificate.as_ref(),
                    &parsed.signature_value.data,
                )
                .unwrap_or_else(|_| panic!("{alg:?}: the certificate's signature verifies"));
        }
    }

    #[test]
    fn pkcs7_wraps_the_one_certificate() {
        let der = SigningKey::generate_pkcs8(Alg::ES256).unwrap();
        let cert = super::der(&self_signed(&der, "kid-7", 1_800_000_000).unwrap()).unwrap();
        let pem = pkcs7(&cert);
        assert!(pem.starts_with("-----BEGIN PKCS7-----"), "{pem}");
        let body = crate::keys::pem::decode(&pem, "PKCS7").unwrap();
        assert_eq!(body[0], 0x30);
        assert!(
            body.windows(cert.len()).any(|w| w == cert.as_slice()),
            "the certificate is inside"
        );
        // signedData's OID right after the outer SEQUENCE header.
        let oid = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
        ];
        assert!(body.windows(oid.len()).any(|w| w == oid));
    }
}
