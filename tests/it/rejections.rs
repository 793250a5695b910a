//! Every rejection of issue #2, one named row each, through the running proxy: the status,
//! the RFC 6750 challenge, and that the upstream received nothing.

use aws_lc_rs::hmac;
use serde_json::{Value, json};

use crate::common::idp::b64;
use crate::common::*;

/// What a row sends.
enum Send {
    /// `Authorization: Bearer <token>`.
    Token(String),
    /// Raw `Authorization` header values (several = several headers), or none.
    Headers(Vec<String>),
}

struct Row {
    name: &'static str,
    send: Send,
    status: u16,
    /// `Some(code)`: challenge with `error="code"`; `None`: challenge without error code.
    error: Option<&'static str>,
}

fn row(name: &'static str, token: String) -> Row {
    Row {
        name,
        send: Send::Token(token),
        status: 401,
        error: Some("invalid_token"),
    }
}

fn with_claim(base: &Value, name: &str, value: Value) -> Value {
    let mut claims = base.clone();
    claims[name] = value;
    claims
}

fn without(base: &Value, name: &str) -> Value {
    let mut claims = base.clone();
    claims.as_object_mut().unwrap().remove(name);
    claims
}

/// The proxy both token tables (here and `hostile_tokens`) run against: RS256, PS256 and
/// ES256 allowed, `typ` required, the IdP serving `idp-1` (RSA), `ec` and what `more` adds.
pub async fn strict_fixture(
    ec: &IdpKey,
    more: impl FnOnce(FixtureBuilder) -> FixtureBuilder,
) -> Fixture {
    let builder = Fixture::builder()
        .await
        .also_serve(ec)
        .idp("algorithms", ["RS256", "PS256", "ES256"])
        .idp("require_typ", "at+jwt");
    more(builder).start().await
}

#[tokio::test]
async fn every_bad_token_is_rejected_and_never_forwarded() {
    let ec = IdpKey::es256("ec-1");
    let impostor = IdpKey::rs256("idp-1");
    let Fixture {
        proxy,
        upstream,
        idp,
        key,
    } = strict_fixture(&ec, |builder| builder).await;

    let now = resigner::jose::time::now_unix();
    let good = claims(&idp.issuer, "https://api.test");
    let payload = good.to_string();
    let hdr =
        |extra: &str| format!("{{\"alg\":\"RS256\",\"kid\":\"idp-1\",\"typ\":\"at+jwt\"{extra}}}");
    let signed = |header: &str| raw_token(&key, header, &payload);
    let claims_token = |claims: &Value| mint(&key, claims);
    let valid = mint(&key, &good);
    let (input, _) = valid.rsplit_once('.').unwrap();
    let hs256 = {
        let header = b64(r#"{"alg":"HS256","kid":"idp-1","typ":"at+jwt"}"#);
        let input = format!("{header}.{}", b64(&payload));
        let mac = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &key.public_bytes()),
            input.as_bytes(),
        );
        format!("{input}.{}", b64(mac.as_ref()))
    };
    let canary = format!("http://{}/canary", idp.addr);
    let dup_payload = payload.replacen('{', "{\"aud\":\"https://api.test\",", 1);
    let dup_custom = payload.replacen('{', "{\"level\":99,", 1);
    let dup_exp = payload.replacen('{', &format!("{{\"exp\":{},", now + 10), 1);
    let big = with_claim(&good, "padding", Value::from("x".repeat(17 * 1024)));

    let rows = vec![
        row(
            "alg none",
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none","kid":"idp-1"}"#),
                b64(&payload)
            ),
        ),
        row(
            "alg none with signature",
            raw_token(
                &key,
                r#"{"alg":"none","kid":"idp-1","typ":"at+jwt"}"#,
                &payload,
            ),
        ),
        row(
            "alg None",
            signed(r#"{"alg":"None","kid":"idp-1","typ":"at+jwt"}"#),
        ),
        row(
            "alg empty",
            signed(r#"{"alg":"","kid":"idp-1","typ":"at+jwt"}"#),
        ),
        row("alg missing", signed(r#"{"kid":"idp-1","typ":"at+jwt"}"#)),
        row(
            "alg not a string",
            signed(r#"{"alg":["RS256"],"kid":"idp-1","typ":"at+jwt"}"#),
        ),
        row("HS256 keyed with the IdP public key", hs256),
        row(
            "RS384 outside the allow-list",
            signed(r#"{"alg":"RS384","kid":"idp-1","typ":"at+jwt"}"#),
        ),
        row(
            "PS256 with a key pinned to RS256",
            signed(r#"{"alg":"PS256","kid":"idp-1","typ":"at+jwt"}"#),
        ),
        row(
            "ES256 header on an RSA key",
            signed(r#"{"alg":"ES256","kid":"idp-1","typ":"at+jwt"}"#),
        ),
        row(
            "RS256 header on an EC key",
            raw_token(
                &ec,
                r#"{"alg":"RS256","kid":"ec-1","typ":"at+jwt"}"#,
                &payload,
            ),
        ),
        row("crit unknown", signed(&hdr(r#","crit":["exp"],"exp":1"#))),
        row("crit empty", signed(&hdr(r#","crit":[]"#))),
        row("b64 false", signed(&hdr(r#","b64":false,"crit":["b64"]"#))),
        row("b64 false without crit", signed(&hdr(r#","b64":false"#))),
        row("cty JWT (nested)", signed(&hdr(r#","cty":"JWT""#))),
        row(
            "jku to loopback",
            signed(&hdr(&format!(r#","jku":"{canary}-jku""#))),
        ),
        row(
            "x5u to loopback",
            signed(&hdr(&format!(r#","x5u":"{canary}-x5u""#))),
        ),
        row(
            "embedded jwk",
            signed(&hdr(&format!(r#","jwk":{}"#, key.jwk))),
        ),
        row("embedded x5c", signed(&hdr(r#","x5c":["MIIB"]"#))),
        row(
            "kid unknown",
            signed(r#"{"alg":"RS256","kid":"nope","typ":"at+jwt"}"#),
        ),
        row(
            "kid path traversal",
            signed(r#"{"alg":"RS256","kid":"../idp-1","typ":"at+jwt"}"#),
        ),
        row(
            "kid with NUL",
            signed(r#"{"alg":"RS256","kid":"idp-1\u0000","typ":"at+jwt"}"#),
        ),
        row(
            "kid not a string",
            signed(r#"{"alg":"RS256","kid":1,"typ":"at+jwt"}"#),
        ),
        row(
            "kid missing with several keys",
            signed(r#"{"alg":"RS256","typ":"at+jwt"}"#),
        ),
        row(
            "signature by another key with the same kid",
            mint(&impostor, &good),
        ),
        row(
            "payload tampered",
            format!(
                "{}.{}.{}",
                input.split('.').next().unwrap(),
                b64(good.to_string().replace("user-42", "admin")),
                valid.rsplit('.').next().unwrap()
            ),
        ),
        row("signature empty", format!("{input}.")),
        row("two segments", input.to_string()),
        row("four segments", format!("{valid}.x")),
        row("five segments (JWE)", format!("{valid}.x.y")),
        row("padding", format!("{valid}=")),
        row(
            "'+' from the standard base64 alphabet",
            format!("{input}.+{}", &valid.rsplit('.').next().unwrap()[1..]),
        ),
        row(
            "'/' from the standard base64 alphabet",
            format!("{input}./{}", &valid.rsplit('.').next().unwrap()[1..]),
        ),
        row(
            "header repeats alg",
            signed(r#"{"alg":"RS256","alg":"RS256","kid":"idp-1","typ":"at+jwt"}"#),
        ),
        row(
            "header repeats kid",
            signed(r#"{"alg":"RS256","kid":"idp-1","kid":"ec-1","typ":"at+jwt"}"#),
        ),
        row(
            "payload repeats aud",
            raw_token(&key, &hdr(""), &dup_payload),
        ),
        row("payload repeats exp", raw_token(&key, &hdr(""), &dup_exp)),
        row(
            "payload repeats a custom claim",
            raw_token(&key, &hdr(""), &dup_custom),
        ),
        row("payload not an object", raw_token(&key, &hdr(""), "[1,2]")),
        row("payload not JSON", raw_token(&key, &hdr(""), "not json")),
        row("exp missing", claims_token(&without(&good, "exp"))),
        row(
            "exp in the past",
            claims_token(&with_claim(&good, "exp", json!(now - 120))),
        ),
        row(
            "exp a string",
            claims_token(&with_claim(&good, "exp", json!((now + 600).to_string()))),
        ),
        row(
            "exp null",
            claims_token(&with_claim(&good, "exp", Value::Null)),
        ),
        row(
            "exp negative",
            claims_token(&with_claim(&good, "exp", json!(-1))),
        ),
        row(
            "nbf in the future",
            claims_token(&with_claim(&good, "nbf", json!(now + 600))),
        ),
        row(
            "iat in the future",
            claims_token(&with_claim(&good, "iat", json!(now + 600))),
        ),
        row(
            "iat a string",
            claims_token(&with_claim(&good, "iat", json!("yesterday"))),
        ),
        row("iss missing", claims_token(&without(&good, "iss"))),
        row(
            "iss an array",
            claims_token(&with_claim(&good, "iss", json!([idp.issuer]))),
        ),
        row(
            "iss a number",
            claims_token(&with_claim(&good, "iss", json!(1))),
        ),
        row(
            "iss another issuer",
            claims_token(&with_claim(&good, "iss", json!("https://evil.test/"))),
        ),
        row("aud missing", claims_token(&without(&good, "aud"))),
        row(
            "aud a number",
            claims_token(&with_claim(&good, "aud", json!(1))),
        ),
        row(
            "aud an object",
            claims_token(&with_claim(&good, "aud", json!({"a": "https://api.test"}))),
        ),
        row(
            "aud another audience",
            claims_token(&with_claim(&good, "aud", json!(["https://other.test"]))),
        ),
        row(
            "aud array with a non-string",
            claims_token(&with_claim(&good, "aud", json!(["https://api.test", 1]))),
        ),
        row(
            "sub a number",
            claims_token(&with_claim(&good, "sub", json!(42))),
        ),
        row(
            "typ JWT when at+jwt is required",
            signed(r#"{"alg":"RS256","kid":"idp-1","typ":"JWT"}"#),
        ),
        row(
            "typ missing when required",
            signed(r#"{"alg":"RS256","kid":"idp-1"}"#),
        ),
        row("token over 16 KiB", claims_token(&big)),
        Row {
            name: "no Authorization header",
            send: Send::Headers(vec![]),
            status: 401,
            error: None,
        },
        Row {
            name: "Basic scheme",
            send: Send::Headers(vec!["Basic dXNlcjpwYXNz".into()]),
            status: 401,
            error: None,
        },
        Row {
            name: "two Authorization headers",
            send: Send::Headers(vec![format!("Bearer {valid}"), format!("Bearer {valid}")]),
            status: 400,
            error: Some("invalid_request"),
        },
        Row {
            name: "Bearer without token",
            send: Send::Headers(vec!["Bearer ".into()]),
            status: 400,
            error: Some("invalid_request"),
        },
        Row {
            name: "token with a space inside",
            send: Send::Headers(vec![format!("Bearer {} x", valid)]),
            status: 400,
            error: Some("invalid_request"),
        },
    ];

    let total = rows.len();
    for row in rows {
        let headers: Vec<String> = match &row.send {
            Send::Token(token) => vec![format!("Bearer {token}")],
            Send::Headers(values) => values.clone(),
        };
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|v| ("authorization", v.as_str()))
            .collect();
        let reply = get(&proxy.url("/api/orders"), &pairs).await;
        assert_eq!(reply.status, row.status, "{}: {:?}", row.name, reply.body);
        let www = reply.www();
        assert!(
            www.starts_with("Bearer realm=\"resigner\""),
            "{}: {www}",
            row.name
        );
        match row.error {
            Some(code) => assert!(
                www.contains(&format!("error=\"{code}\"")),
                "{}: {www}",
                row.name
            ),
            None => assert!(!www.contains("error="), "{}: {www}", row.name),
        }
        let body = reply.json();
        assert!(
            body["error"].is_string() && body["error_description"].is_string(),
            "{}",
            row.name
        );
        assert_eq!(upstream.count(), 0, "{} was forwarded", row.name);
    }
    assert!(total >= 60);
    assert!(
        idp.other_requests().is_empty(),
        "a token header was dereferenced: {:?}",
        idp.other_requests()
    );

    // The same valid token with a lower-case scheme is accepted (RFC 6750 schemes are
    // case-insensitive), proving the rows above failed for their own reason.
    let ok = get(
        &proxy.url("/api/orders"),
        &[("authorization", &format!("bearer {valid}"))],
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(upstream.count(), 1);
}
