//! The Auth0 `SigningKeys` JSON shape of one managed key: dates ISO 8601 UTC with
//! milliseconds, absent fields omitted, `current`/`next`/`previous`/`revoked` always present.
//! May use: `keys::managed` (plain data), `keys::pem`, aws-lc-rs digests.

use serde_json::{Map, Value, json};

use crate::keys::managed::{KeyState, ManagedKey, cert};

/// One key as Auth0's list/get return it (`pkcs7`: the certificate as PKCS#7, PEM).
pub fn signing_key(key: &ManagedKey) -> Value {
    let mut out = Map::new();
    out.insert("kid".into(), json!(key.kid));
    out.insert("cert".into(), json!(key.cert));
    if let Some(der) = cert::der(&key.cert) {
        out.insert("fingerprint".into(), json!(cert::fingerprint(&der)));
        out.insert("thumbprint".into(), json!(cert::thumbprint(&der)));
        out.insert("pkcs7".into(), json!(cert::pkcs7(&der)));
    }
    out.insert("current".into(), json!(key.state == KeyState::Current));
    out.insert("next".into(), json!(key.state == KeyState::Next));
    out.insert("previous".into(), json!(key.state == KeyState::Previous));
    out.insert("revoked".into(), json!(key.state == KeyState::Revoked));
    for (name, at) in [
        ("current_since", key.current_since),
        ("current_until", key.current_until),
        ("revoked_at", key.revoked_at),
    ] {
        if let Some(at) = at {
            out.insert(name.into(), json!(iso8601(at)));
        }
    }
    Value::Object(out)
}

/// `{cert, kid}`: what rotate and revoke answer.
pub fn cert_and_kid(key: &ManagedKey) -> Value {
    json!({"cert": key.cert, "kid": key.kid})
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SS.000Z` (UTC, milliseconds as Auth0 gives them).
pub fn iso8601(unix: i64) -> String {
    let utc = crate::jose::time::format_utc(unix);
    format!("{}.000Z", utc.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso8601_utc_with_milliseconds() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_796_238_000), "2026-12-02T19:00:00.000Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn one_key_renders_as_auth0_lists_it() {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["resigner".into()])
            .unwrap()
            .self_signed(&key_pair)
            .unwrap();
        let der = cert.der().to_vec();
        let key = ManagedKey {
            kid: "kid-1".into(),
            alg: "ES256".into(),
            state: KeyState::Previous,
            public_jwk: Map::new(),
            cert: cert.pem(),
            sealed: None,
            backend_ref: None,
            created_at: 1_796_230_000,
            current_since: Some(1_796_234_400),
            current_until: Some(1_796_238_000),
            revoked_at: None,
        };
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        let hex: String = sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        let colons: Vec<String> = sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            signing_key(&key),
            json!({
                "kid": "kid-1",
                "cert": cert.pem(),
                "fingerprint": colons.join(":"),
                "thumbprint": hex,
                "pkcs7": cert::pkcs7(&der),
                "current": false, "next": false, "previous": true, "revoked": false,
                "current_since": "2026-12-02T18:00:00.000Z",
                "current_until": "2026-12-02T19:00:00.000Z",
            })
        );
        assert_eq!(hex.len(), 40);
        assert_eq!(
            cert_and_kid(&key),
            json!({"cert": cert.pem(), "kid": "kid-1"})
        );
    }
}
