//! The published JWKS, rendered once into bytes with an ETag whenever one of its parts
//! changes, so `GET /.well-known/jwks.json` does no JSON work per request.
//! Order: the customer's keys first, then the IdP's keys (as Auth0 aggregates them).

use aws_lc_rs::digest;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::b64;

/// A rendered JWKS document and the inputs it was rendered from.
#[derive(Debug, Clone)]
pub struct RenderedJwks {
    pub body: Bytes,
    /// Strong ETag (quoted) over the body.
    pub etag: String,
    /// (config generation, IdP key generation) this rendering reflects.
    pub source: (u64, u64),
}

impl RenderedJwks {
    /// Renders `custom` keys followed by `idp` keys. Each key map must already hold public
    /// members only; `render` drops any private member defensively all the same.
    pub fn render(
        custom: &[Map<String, Value>],
        idp: &[Map<String, Value>],
        source: (u64, u64),
    ) -> Self {
        let keys: Vec<Value> = custom
            .iter()
            .chain(idp.iter())
            .map(|key| {
                let mut key = key.clone();
                for private in PRIVATE_MEMBERS {
                    key.remove(*private);
                }
                Value::Object(key)
            })
            .filter(|key| key.get("kty").is_some_and(|k| k != "oct"))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap_or_default();
        let hash = digest::digest(&digest::SHA256, &body);
        let etag = format!("\"{}\"", b64::encode(&hash.as_ref()[..16]));
        RenderedJwks {
            body: Bytes::from(body),
            etag,
            source,
        }
    }
}

/// JWK members that carry private or symmetric key material (RFC 7518 §6).
pub const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_keys_come_first_and_private_members_never_appear() {
        let custom =
            json!({"kty": "EC", "kid": "c", "d": "secret", "crv": "P-256", "x": "x", "y": "y"});
        let idp = json!({"kty": "RSA", "kid": "i", "n": "n", "e": "AQAB", "p": "secret"});
        let oct = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
        let rendered = RenderedJwks::render(
            &[custom.as_object().unwrap().clone()],
            &[
                idp.as_object().unwrap().clone(),
                oct.as_object().unwrap().clone(),
            ],
            (1, 1),
        );
        let doc: Value = serde_json::from_slice(&rendered.body).unwrap();
        let kids: Vec<&str> = doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, ["c", "i"]);
        assert!(!String::from_utf8_lossy(&rendered.body).contains("secret"));
        let again = RenderedJwks::render(&[custom.as_object().unwrap().clone()], &[], (1, 2));
        assert_ne!(again.etag, rendered.etag);
    }
}
