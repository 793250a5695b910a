//! Issue #5 "Bad key imports" rows that `keys.rs` does not hold yet, through the management
//! API: every string member given a number, null, object, array or boolean; wrong element
//! types inside `key_ops` and `x5c`; 60 KB members; duplicate members inside a key; a BOM,
//! trailing garbage and bodies that are not UTF-8. Each row asserts the status, an Auth0
//! error body whose message names the problem (and stays short: the input is not echoed),
//! and that the stored set (GET) and the published JWKS are unchanged.

use http::Method;
use resigner::jose::alg::Alg;
use serde_json::{Value, json};

use crate::common::idp::b64;
use crate::common::*;

const PATH: &str = "/api/v2/keys/custom-signing";
/// Messages name the problem in a line; a 60 KB member must not come back in full.
const MAX_MESSAGE: usize = 1024;

async fn put_raw(proxy: &TestProxy, body: &[u8]) -> Reply {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    send(Method::PUT, &proxy.admin_url(PATH), &headers, body).await
}

/// The stored set as GET returns it and the published JWKS, byte for byte.
pub(crate) async fn snapshot(proxy: &TestProxy) -> (u16, bytes::Bytes, bytes::Bytes) {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let stored = get(&proxy.admin_url(PATH), &[("authorization", &auth)]).await;
    let jwks = get(&proxy.url("/.well-known/jwks.json"), &[]).await;
    (stored.status.as_u16(), stored.body, jwks.body)
}

struct Row {
    name: String,
    body: Vec<u8>,
    status: u16,
    needle: String,
}

fn row(name: impl Into<String>, body: Value, needle: impl Into<String>) -> Row {
    raw(name, body.to_string().into_bytes(), needle)
}

fn raw(name: impl Into<String>, body: Vec<u8>, needle: impl Into<String>) -> Row {
    Row {
        name: name.into(),
        body,
        status: 400,
        needle: needle.into(),
    }
}

fn with(key: &Value, member: &str, value: Value) -> Value {
    let mut key = key.clone();
    key[member] = value;
    key
}

/// One key in a set, as a body.
fn set(key: Value) -> Value {
    json!({ "keys": [key] })
}

#[tokio::test]
async fn hostile_key_imports_are_refused_and_change_nothing() {
    let fixture = Fixture::start().await;
    let proxy = &fixture.proxy;
    let before = snapshot(proxy).await;
    assert_eq!(before.0, 200, "the signing key is published");

    let ec = public_jwk(Alg::ES256);
    let rsa = public_jwk(Alg::RS256);
    let ec_text = ec.to_string();
    let mut rows = vec![];

    // Every string member with a value of each other JSON type (keys.rs has "kty" as an
    // array and "kid" as a number already).
    let types = [
        ("a number", json!(7)),
        ("null", Value::Null),
        ("an object", json!({"value": "ES256"})),
        ("an array", json!(["ES256"])),
        ("a boolean", json!(true)),
    ];
    let members = [
        (&ec, "kty"),
        (&ec, "kid"),
        (&ec, "use"),
        (&ec, "alg"),
        (&ec, "crv"),
        (&ec, "x"),
        (&ec, "y"),
        (&ec, "x5t"),
        (&ec, "x5t#S256"),
        (&rsa, "n"),
        (&rsa, "e"),
    ];
    for (base, member) in members {
        for (label, value) in &types {
            if (member, *label) == ("kty", "an array") || (member, *label) == ("kid", "a number") {
                continue;
            }
            rows.push(row(
                format!("{member} {label}"),
                set(with(base, member, value.clone())),
                format!("member \"{member}\" must be a string"),
            ));
        }
    }
    let type_rows = rows.len();

    let cert = "MIIBszCCAVmgAwIBAgIUQ";
    let arrays: Vec<(&str, Value, &str)> = vec![
        (
            "key_ops null",
            with(&ec, "key_ops", Value::Null),
            "\"key_ops\" must be an array",
        ),
        (
            "key_ops [1]",
            with(&ec, "key_ops", json!([1])),
            "\"key_ops\" must be [\"verify\"]",
        ),
        (
            "key_ops nested",
            with(&ec, "key_ops", json!([["verify"]])),
            "\"key_ops\" must be [\"verify\"]",
        ),
        (
            "key_ops verify twice",
            with(&ec, "key_ops", json!(["verify", "verify"])),
            "\"key_ops\" must be [\"verify\"]",
        ),
        (
            "x5c a string",
            with(&ec, "x5c", json!(cert)),
            "\"x5c\" must be an array of 1 to 10",
        ),
        (
            "x5c empty",
            with(&ec, "x5c", json!([])),
            "\"x5c\" must be an array of 1 to 10",
        ),
        (
            "x5c of 11 entries",
            with(&ec, "x5c", json!(vec![cert; 11])),
            "\"x5c\" must be an array of 1 to 10",
        ),
        (
            "x5c [number]",
            with(&ec, "x5c", json!([7])),
            "\"x5c\" must hold base64",
        ),
        (
            "x5c [null]",
            with(&ec, "x5c", json!([null])),
            "\"x5c\" must hold base64",
        ),
        (
            "x5c [object]",
            with(&ec, "x5c", json!([{"cert": cert}])),
            "\"x5c\" must hold base64",
        ),
        (
            "x5c [array]",
            with(&ec, "x5c", json!([[cert]])),
            "\"x5c\" must hold base64",
        ),
    ];
    for (name, key, needle) in arrays {
        rows.push(row(name, set(key), needle));
    }
    rows.push(row(
        "keys null",
        json!({"keys": null}),
        "\"keys\" must be an array",
    ));
    rows.push(row(
        "keys a string",
        json!({"keys": ec_text}),
        "\"keys\" must be an array",
    ));
    rows.push(row(
        "keys [null]",
        json!({"keys": [null]}),
        "keys[0]: must be a JSON object",
    ));
    rows.push(row(
        "keys [[key]]",
        json!({"keys": [[ec]]}),
        "keys[0]: must be a JSON object",
    ));

    // Huge members: 60 KB each, inside the 64 KiB body limit.
    let big = 60_000;
    let huge: Vec<(&str, Value, &str)> = vec![
        (
            "kid of 60 KB",
            with(&ec, "kid", json!("k".repeat(big))),
            "\"kid\" must be 1 to 256",
        ),
        (
            "alg of 60 KB",
            with(&ec, "alg", json!("A".repeat(big))),
            "\"alg\" must be one of",
        ),
        (
            "x of 60 KB",
            with(&ec, "x", json!("A".repeat(big))),
            "wrong length",
        ),
        (
            "x5t of 60 KB",
            with(&ec, "x5t", json!("A".repeat(big))),
            "20-byte thumbprint",
        ),
        (
            "x5c entry of 60 KB",
            with(&ec, "x5c", json!(["QUFB".repeat(big / 4)])),
            "\"x5c\" leaf certificate",
        ),
        (
            "n of 60 KB",
            with(&rsa, "n", json!(b64(vec![0xc1u8; big * 3 / 4]))),
            "2048 to 8192",
        ),
        (
            "member name of 60 KB",
            with(&ec, &"m".repeat(big), json!(1)),
            "is not an allowed JWK member",
        ),
    ];
    for (name, key, needle) in huge {
        rows.push(row(name, set(key), needle));
    }
    let oversized = set(with(&rsa, "n", json!(b64(vec![0xc1u8; 1 << 20]))));
    rows.push(Row {
        status: 413,
        ..row("n of 1 MB (over the body limit)", oversized, "larger than")
    });
    let top = format!("{{\"keys\":[{ec_text}],\"{}\":1}}", "t".repeat(big));
    rows.push(raw(
        "top-level member name of 60 KB",
        top.into_bytes(),
        "unknown top-level member",
    ));

    // Duplicate members inside a key, and text that is not one UTF-8 JSON document.
    let inner = &ec_text[1..];
    let dup = |prefix: &str| format!("{{\"keys\":[{{{prefix},{inner}]}}").into_bytes();
    let body = set(ec.clone()).to_string();
    let (open, close) = body.split_at(body.len() - 2);
    let mut latin1 = body.replace("\"kid\":\"", "\"kid\":\"\u{1}").into_bytes();
    let at = latin1.iter().position(|b| *b == 1).unwrap();
    latin1[at] = 0xe9;
    let utf16: Vec<u8> = body.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let lone_surrogate = body.replace("\"kid\":\"", "\"kid\":\"\\ud800");
    let long_dup = format!("\"{}\":1,\"{0}\":2", "d".repeat(big / 2));
    let text_rows: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "kty twice in a key (EC, RSA)",
            dup("\"kty\":\"RSA\""),
            "member \"kty\" appears more than once",
        ),
        (
            "kid twice in a key",
            dup("\"kid\":\"other\""),
            "member \"kid\" appears more than once",
        ),
        (
            "x twice in a key",
            dup(&format!("\"x\":\"{}\"", b64([1u8; 32]))),
            "member \"x\" appears more than once",
        ),
        (
            "a 30 KB member name twice in a key",
            dup(&long_dup),
            "appears more than once",
        ),
        (
            "UTF-8 byte order mark",
            [&b"\xef\xbb\xbf"[..], body.as_bytes()].concat(),
            "not valid JSON",
        ),
        (
            "trailing garbage",
            format!("{body} x").into_bytes(),
            "not valid JSON",
        ),
        (
            "two documents",
            format!("{body}{body}").into_bytes(),
            "not valid JSON",
        ),
        (
            "trailing NUL",
            format!("{body}\0").into_bytes(),
            "not valid JSON",
        ),
        (
            "trailing comma in keys",
            format!("{open},{close}").into_bytes(),
            "not valid JSON",
        ),
        ("Latin-1 byte in a string", latin1, "not valid JSON"),
        (
            "invalid UTF-8 outside strings",
            [body.as_bytes(), &b"\xff"[..]].concat(),
            "not valid JSON",
        ),
        ("UTF-16LE body", utf16, "not valid JSON"),
        (
            "lone surrogate escape in kid",
            lone_surrogate.into_bytes(),
            "not valid JSON",
        ),
        ("empty body", vec![], "not valid JSON"),
    ];
    for (name, body, needle) in text_rows {
        rows.push(raw(name, body, needle));
    }

    let total = rows.len();
    for row in rows {
        let name = &row.name;
        let reply = put_raw(proxy, &row.body).await;
        assert_eq!(reply.status, row.status, "{name}: {:?}", reply.body);
        let body = reply.json();
        assert_eq!(body["statusCode"], row.status, "{name}");
        assert!(
            body["error"].is_string() && body["errorCode"].is_string(),
            "{name}: {body}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&row.needle),
            "{name}: {:?} not in {message:?}",
            row.needle
        );
        assert!(
            reply.body.len() <= MAX_MESSAGE,
            "{name}: {} byte answer echoes the input",
            reply.body.len()
        );
        assert_eq!(
            snapshot(proxy).await,
            before,
            "{name} changed the stored set or the JWKS"
        );
    }
    println!("hostile key imports: {total} rows refused ({type_rows} type rows)");
    assert!(total >= 90, "{total}");
}
