//! The self-signed X.509 certificate of a managed key (rcgen), as Auth0's signing keys API
//! returns one per key, and its fingerprint forms.
//!
//! May use: rcgen, `keys::pem`, aws-lc-rs digests.

use std::time::Duration;

use aws_lc_rs::digest;
use rcgen::{CertificateParams, DnType, KeyPair};

use super::error::ManagedError;

/// Ten years, as certificates of signing keys are not checked for expiry by JWT verifiers.
const VALIDITY: Duration = Duration::from_secs(3650 * 86_400);

/// A self-signed certificate (PEM) of the PKCS#8 key `pkcs8`, named for `kid`.
pub fn self_signed(pkcs8: &[u8], kid: &str, now: i64) -> Result<String, ManagedError> {
    let err = |e: rcgen::Error| ManagedError::Cert(e.to_string());
    let pair = KeyPair::try_from(pkcs8).map_err(err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    params.distinguished_name.push(
        DnType::CommonName,
        format!("resigner managed signing key {kid}"),
    );
    let start = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(now.max(0) as u64);
    params.not_before = start;
    params.not_after = start + VALIDITY;
    Ok(params.self_signed(&pair).map_err(err)?.pem())
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
}
