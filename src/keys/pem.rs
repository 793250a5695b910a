//! PEM armour (RFC 7468) for PKCS#8 private keys: the on-disk format of signing keys.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Why a PEM document was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PemError {
    #[error("no \"-----BEGIN {0}-----\" block found")]
    NoBlock(&'static str),
    #[error("the PEM body is not valid base64")]
    Base64,
}

/// Extracts the DER bytes of the first `label` block (e.g. `PRIVATE KEY`).
pub fn decode(text: &str, label: &'static str) -> Result<Vec<u8>, PemError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or(PemError::NoBlock(label))? + begin.len();
    let stop = text[start..].find(&end).ok_or(PemError::NoBlock(label))? + start;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD.decode(body).map_err(|_| PemError::Base64)
}

/// Wraps DER bytes as a PEM block with 64-column lines.
pub fn encode(der: &[u8], label: &str) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let der: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        let pem = encode(&der, "PRIVATE KEY");
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        assert_eq!(decode(&pem, "PRIVATE KEY").unwrap(), der);
    }

    #[test]
    fn refuses_other_labels_and_bad_base64() {
        let pem = encode(b"abc", "RSA PRIVATE KEY");
        assert_eq!(
            decode(&pem, "PRIVATE KEY"),
            Err(PemError::NoBlock("PRIVATE KEY"))
        );
        let broken = "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n";
        assert_eq!(decode(broken, "PRIVATE KEY"), Err(PemError::Base64));
    }
}
