//! The little DER resigner writes: definite-length TLVs, minimal unsigned integers, and
//! ECDSA's `r || s` (JOSE) as X.509's `SEQUENCE { r, s }`. Used for certificates signed
//! through a backend and PKCS#7 (`keys::managed::cert`), and by tests and benches that build
//! SubjectPublicKeyInfo. Reading DER is x509-parser's job, not this module's.
//!
//! May use: nothing but `std`.

/// `tag`, the minimal length of `content`, `content`.
pub fn tagged(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | octets.len() as u8);
        out.extend(octets);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already encoded items.
pub fn sequence(items: &[Vec<u8>]) -> Vec<u8> {
    tagged(0x30, &items.concat())
}

/// An unsigned big-endian integer as a minimal INTEGER.
pub fn integer(bytes: &[u8]) -> Vec<u8> {
    let trimmed = match bytes.iter().position(|b| *b != 0) {
        Some(first) => &bytes[first..],
        None => &[0][..],
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tagged(0x02, &content)
}

/// JOSE's ECDSA `r || s` as X.509's `SEQUENCE { r INTEGER, s INTEGER }`.
pub fn ecdsa_signature(rs: &[u8]) -> Vec<u8> {
    let (r, s) = rs.split_at(rs.len() / 2);
    sequence(&[integer(r), integer(s)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers_are_minimal() {
        assert_eq!(integer(&[0x00, 0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(&[0, 0]), [0x02, 0x01, 0x00]);
        assert_eq!(integer(&[0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(tagged(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tagged(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(
            ecdsa_signature(&[0x80, 0x01]),
            [0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01]
        );
    }
}
