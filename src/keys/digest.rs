//! Hex SHA-256 digests, the one form resigner shows or stores a digest in: static management
//! tokens (`[[admin.tokens]] sha256`), migration checksums in the key store, the published
//! JWKS's fingerprint in `/admin/status`.
//!
//! May use: aws-lc-rs.

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes.as_ref())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_the_fips_180_example() {
        assert_eq!(
            super::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
