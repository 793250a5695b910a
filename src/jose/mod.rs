//! The JOSE and JWT vocabulary every other module speaks, with no knowledge of resigner's
//! configuration or HTTP: algorithm names and families (`alg`), unpadded base64url (`b64`),
//! strict JSON that refuses duplicate members (`json`), and NumericDate / RFC 3339 time and
//! config durations (`time`).
//!
//! May use: the standard library and serde only; nothing of this crate outside `jose`.

pub mod alg;
pub mod b64;
pub mod json;
pub mod time;
