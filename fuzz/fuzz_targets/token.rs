//! Fuzz target `token`: arbitrary bytes as the bearer token, through
//! `resigner::proxy::verify::parse` and, when that accepts the token, `verify::verify`
//! (which checks the header against the IdP settings, then signature and claims).
//!
//! Two input modes, picked by the first byte:
//! - anything else: the input (as UTF-8) is the token. It is verified against a fixed RS256
//!   key and a fixed ES256 key generated at start-up, so no input can carry a valid
//!   signature: besides "never panics", a token that verifies is a forgery and aborts.
//! - `0x01`: the rest is `header JSON` `0x00` `payload JSON`, encoded and signed here with
//!   the ES256 key, so the header checks, the claim checks and `map_claims` run on
//!   arbitrary JSON behind a valid signature. An accepted token must satisfy what the
//!   proxy relies on (issuer, audience, exp in the future, mapped exp never later).
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use resigner::jose::alg::Alg;
use resigner::jose::b64;
use resigner::config::{ClaimMapping, IdpSettings};
use resigner::keys::{SigningKey, VerifyKey};
use resigner::proxy::claims::map_claims;
use resigner::proxy::verify;
use serde_json::{Map, Value};

const NOW: i64 = 1_700_000_000;
const ISSUER: &str = "https://idp.example.com/";
const AUDIENCE: &str = "https://api.example.com";
const LEEWAY: i64 = 30;
const MAX_TTL: i64 = 300;

struct Fixture {
    idp: Arc<IdpSettings>,
    rsa: VerifyKey,
    ec: VerifyKey,
    ec_signer: SigningKey,
    mapping: ClaimMapping,
}

/// A generated key pair: the signer and the verification key built from its public JWK.
fn key_pair(alg: Alg) -> (SigningKey, VerifyKey) {
    let der = SigningKey::generate_pkcs8(alg).expect("generate key");
    let signer = SigningKey::from_pkcs8(&der, alg, Some("fuzz".into())).expect("load key");
    let jwk = signer.public_jwk().to_json();
    let key = VerifyKey::from_jwk(&jwk, &[alg])
        .expect("valid JWK")
        .expect("usable key");
    (signer, key)
}

fn fixture() -> Fixture {
    let (_, rsa) = key_pair(Alg::RS256);
    let (ec_signer, ec) = key_pair(Alg::ES256);
    let idp = Arc::new(IdpSettings {
        name: "fuzz".into(),
        issuer: ISSUER.into(),
        jwks_uri: None,
        algorithms: vec![Alg::RS256, Alg::ES256],
        leeway: Duration::from_secs(LEEWAY as u64),
        require_typ: None,
        refresh: Duration::from_secs(600),
        refresh_min: Duration::from_secs(60),
        refresh_max: Duration::from_secs(86_400),
        unknown_kid_cooldown: Duration::from_secs(30),
        max_stale: Duration::from_secs(86_400),
        fetch_timeout: Duration::from_secs(5),
        max_response_bytes: 1 << 20,
        max_keys: 100,
        scope_claims: vec!["scope".into()],
        tls: None,
        introspection: None,
    });
    let mapping = ClaimMapping {
        audience: Value::from("legacy"),
        copy: None,
        rename: vec![("scope".into(), "scp".into())],
        set: Map::new(),
        remove: vec!["email".into()],
    };
    Fixture {
        idp,
        rsa,
        ec,
        ec_signer,
        mapping,
    }
}

thread_local! {
    static FIXTURE: Fixture = fixture();
}

fuzz_target!(|data: &[u8]| {
    FIXTURE.with(|fx| match data.split_first() {
        Some((1, rest)) => signed(fx, rest),
        _ => raw(fx, data),
    })
});

/// Arbitrary token text: every path may reject, none may accept.
fn raw(fx: &Fixture, data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if verify::parse(token).is_err() {
        return;
    }
    for key in [&fx.rsa, &fx.ec] {
        let parsed = verify::parse(token).expect("parses as it did a moment ago");
        let result = verify::verify(parsed, key, &fx.idp, AUDIENCE, NOW);
        assert!(
            result.is_err(),
            "a token no key signed verified: {result:?}"
        );
    }
}

/// Arbitrary header and payload JSON behind a valid ES256 signature.
fn signed(fx: &Fixture, data: &[u8]) {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (header, payload) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let mut token = b64::encode(header);
    token.push('.');
    b64::encode_into(payload, &mut token);
    let signature = fx.ec_signer.sign_raw(token.as_bytes()).expect("sign");
    token.push('.');
    b64::encode_into(signature, &mut token);

    let Ok(parsed) = verify::parse(&token) else {
        return;
    };
    let alg = parsed.alg;
    // The RSA key never verifies an ES256 signature.
    assert!(verify::verify(parsed, &fx.rsa, &fx.idp, AUDIENCE, NOW).is_err());
    let parsed = verify::parse(&token).expect("parses as it did a moment ago");
    let Ok(verified) = verify::verify(parsed, &fx.ec, &fx.idp, AUDIENCE, NOW) else {
        return;
    };
    assert_eq!(alg, Alg::ES256);
    assert_eq!(verified.claims["iss"], ISSUER);
    let aud = &verified.claims["aud"];
    assert!(
        aud == AUDIENCE
            || aud
                .as_array()
                .is_some_and(|list| list.contains(&AUDIENCE.into()))
    );
    assert!(verified.exp > NOW - LEEWAY, "expired token accepted");
    let out = map_claims(
        &verified.claims,
        verified.exp,
        &fx.mapping,
        "https://resigner/",
        MAX_TTL,
        NOW,
    );
    let exp = out["exp"].as_i64().expect("exp is an integer");
    assert!(exp <= verified.exp && exp <= NOW + MAX_TTL, "exp extended");
    assert_eq!(out["iss"], "https://resigner/");
    assert_eq!(out["aud"], "legacy");
    assert!(!out.contains_key("email"));
}
