//! Strict base64url (RFC 7515 §2): URL-safe alphabet, no padding, no whitespace.
//! One place so every JOSE decode in the crate applies the same rules.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends unpadded base64url of `bytes` to `out` (no intermediate allocation).
pub fn encode_into(bytes: impl AsRef<[u8]>, out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out)
}

/// Decodes unpadded base64url; padding, `+`, `/` and whitespace are errors.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()
}
