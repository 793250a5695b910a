//! Issue #5 "Bad tokens" rows that `rejections.rs` does not hold yet, through the running
//! proxy: a 1024-bit RSA key the IdP publishes, ECDSA r/s edge values and DER signatures,
//! hostile kids, whitespace inside the token, the JWS JSON serialization as a bearer, HMAC
//! keyed with the IdP key's PEM, and EdDSA outside the allow-list. Each row asserts status,
//! challenge and that the upstream saw nothing; the IdP must see no request but its JWKS.

use std::process::Command;
use std::time::Duration;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use resigner::keys::pem;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::idp::b64;
use crate::common::*;
use crate::rejections::strict_fixture;

/// The order of P-256, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// How a row's credentials travel.
enum Send {
    /// `Authorization: Bearer <token>`.
    Token(String),
    /// A raw request written to the socket (for bytes no HTTP client will send).
    Raw(String),
}

/// What the answer must carry.
enum Challenge {
    /// An RFC 6750 challenge with this `error` code, and an `error_description` (in the JSON
    /// body) containing the second text: the reason the row is refused for.
    Code(&'static str, &'static str),
    /// Refused by the HTTP layer before resigner sees the request: no challenge.
    Http,
}

struct Row {
    name: &'static str,
    send: Send,
    status: u16,
    challenge: Challenge,
}

const SIG: &str = "signature verification failed";
const KID: &str = "no key with this kid";
const ALG: &str = "algorithm not allowed";
const JWS: &str = "not a compact JWS";

fn bad(name: &'static str, why: &'static str, token: String) -> Row {
    Row {
        name,
        send: Send::Token(token),
        status: 401,
        challenge: Challenge::Code("invalid_token", why),
    }
}

fn malformed(name: &'static str, token: String) -> Row {
    Row {
        name,
        send: Send::Token(token),
        status: 400,
        challenge: Challenge::Code("invalid_request", "b64token"),
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        len @ 0..=127 => out.push(len as u8),
        len @ 128..=255 => out.extend([0x81, len as u8]),
        len => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER for an unsigned big-endian value.
fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    let mut value = bytes[zeros.min(bytes.len() - 1)..].to_vec();
    if value[0] & 0x80 != 0 {
        value.insert(0, 0);
    }
    der(0x02, &value)
}

/// SubjectPublicKeyInfo: `algorithm` (OID and parameters, DER) and the key bits.
fn spki(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let bits = [&[0u8][..], key].concat();
    der(0x30, &[der(0x30, algorithm), der(0x03, &bits)].concat())
}

fn rsa_spki(jwk: &Value) -> (Vec<u8>, Vec<u8>) {
    let decode = |m: &str| resigner::jose::b64::decode(jwk[m].as_str().unwrap()).unwrap();
    let pkcs1 = der(
        0x30,
        &[der_uint(&decode("n")), der_uint(&decode("e"))].concat(),
    );
    let rsa_oid = [
        0x06, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    (spki(&rsa_oid, &pkcs1), pkcs1)
}

fn ec_spki(jwk: &Value) -> Vec<u8> {
    let decode = |m: &str| resigner::jose::b64::decode(jwk[m].as_str().unwrap()).unwrap();
    let point = [&[4u8][..], &decode("x"), &decode("y")].concat();
    let oids = [
        0x06, 7, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // id-ecPublicKey
        0x06, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // prime256v1
    ];
    spki(&oids, &point)
}

/// An HMAC token whose key is `secret` (the key-confusion attack).
fn hmac_token(alg: &str, kid: &str, secret: &[u8], payload: &str) -> String {
    let header = format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"at+jwt"}}"#);
    let input = format!("{}.{}", b64(header), b64(payload));
    let algorithm = if alg == "HS512" {
        hmac::HMAC_SHA512
    } else {
        hmac::HMAC_SHA256
    };
    let mac = hmac::sign(&hmac::Key::new(algorithm, secret), input.as_bytes());
    format!("{input}.{}", b64(mac.as_ref()))
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI makes the 1024-bit RSA key aws-lc-rs refuses to make");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    out.stdout
}

/// A real 1024-bit RSA key from the openssl CLI: its public JWK and an RS256 signer.
struct WeakRsa {
    dir: tempfile::TempDir,
    jwk: Value,
}

impl WeakRsa {
    fn new(kid: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("weak.pem");
        let pem = pem.to_str().unwrap();
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            pem,
        ]);
        let modulus =
            String::from_utf8(openssl(&["rsa", "-in", pem, "-noout", "-modulus"])).unwrap();
        let hex = modulus.trim().strip_prefix("Modulus=").unwrap();
        let n: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(n.len() * 8, 1024);
        let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(&n), "e": "AQAB"});
        // Cross-check the DER builder used for the PEM-keyed HMAC rows against openssl.
        let public = openssl(&["pkey", "-in", pem, "-pubout", "-outform", "DER"]);
        assert_eq!(rsa_spki(&jwk).0, public, "SPKI builder");
        WeakRsa { dir, jwk }
    }

    fn token(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let file = self.dir.path().join("input");
        std::fs::write(&file, &input).unwrap();
        let key = self.dir.path().join("weak.pem");
        let sig = openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            key.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert_eq!(sig.len(), 128);
        format!("{input}.{}", b64(sig))
    }
}

/// Writes `request` on a fresh connection and returns the status code of the answer.
async fn raw_status(addr: std::net::SocketAddr, request: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn hostile_tokens_are_rejected_and_never_forwarded() {
    let ec = IdpKey::es256("ec-1");
    let weak = WeakRsa::new("weak-1");
    let ed = Ed25519KeyPair::generate().unwrap();
    let ed_jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "use": "sig", "alg": "EdDSA", "x": b64(ed.public_key().as_ref())});
    let Fixture {
        proxy,
        upstream,
        idp,
        key,
    } = strict_fixture(&ec, |builder| {
        // The IdP publishes the weak key and the Ed25519 key too: resigner must skip both.
        builder
            .also_serve_jwk(weak.jwk.clone())
            .also_serve_jwk(ed_jwk)
    })
    .await;

    let payload = claims(&idp.issuer, "https://api.test").to_string();
    let rs_header = |kid: &str| json!({"alg": "RS256", "kid": kid, "typ": "at+jwt"}).to_string();
    let valid = raw_token(&key, &rs_header("idp-1"), &payload);
    let valid_ec = mint(&ec, &serde_json::from_str(&payload).unwrap());
    let (ec_input, ec_sig) = valid_ec.rsplit_once('.').unwrap();
    let ec_sig = resigner::jose::b64::decode(ec_sig).unwrap();
    let (r, s) = ec_sig.split_at(32);
    let with_sig = |sig: Vec<u8>| format!("{ec_input}.{}", b64(sig));
    let der_sig = der(0x30, &[der_uint(r), der_uint(s)].concat());

    let mut parts = valid.split('.');
    let (h, p, sig) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mid = p.len() / 2;
    let flattened = json!({"protected": h, "payload": p, "signature": sig}).to_string();
    let general =
        json!({"payload": p, "signatures": [{"protected": h, "signature": sig}]}).to_string();
    let (spki_der, pkcs1_der) = rsa_spki(&key.jwk);
    let spki_pem = pem::encode(&spki_der, "PUBLIC KEY");
    let pkcs1_pem = pem::encode(&pkcs1_der, "RSA PUBLIC KEY");
    let ec_pem = pem::encode(&ec_spki(&ec.jwk), "PUBLIC KEY");
    let ed_input = format!(
        "{}.{}",
        b64(r#"{"alg":"EdDSA","kid":"ed-1","typ":"at+jwt"}"#),
        b64(&payload)
    );
    let ed_token = format!("{ed_input}.{}", b64(ed.sign(ed_input.as_bytes())));
    let raw = |name, token: String| {
        let request = format!(
            "GET /api/orders HTTP/1.1\r\nHost: resigner.test\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        Row {
            name,
            send: Send::Raw(request),
            status: 400,
            challenge: Challenge::Http,
        }
    };

    let rows = vec![
        bad(
            "RS256 by a 1024-bit key the IdP publishes",
            KID,
            weak.token(&rs_header("weak-1"), &payload),
        ),
        bad(
            "RS256 by a 1024-bit key under the IdP key's kid",
            SIG,
            weak.token(&rs_header("idp-1"), &payload),
        ),
        bad("ES256 r=0 s=0", SIG, with_sig(vec![0; 64])),
        bad("ES256 r=n", SIG, with_sig([&P256_N[..], s].concat())),
        bad("ES256 s=n", SIG, with_sig([r, &P256_N[..]].concat())),
        bad("ES256 r=n s=n", SIG, with_sig([P256_N, P256_N].concat())),
        bad("ES256 DER-encoded signature", SIG, with_sig(der_sig)),
        bad(
            "ES256 signature with a zero byte appended",
            SIG,
            with_sig([&ec_sig[..], &[0]].concat()),
        ),
        bad(
            "kid with CR/LF",
            KID,
            raw_token(&key, &rs_header("idp-1\r\n"), &payload),
        ),
        bad(
            "kid with CR/LF and a header after it",
            KID,
            raw_token(&key, &rs_header("idp-1\r\nX-Injected: yes"), &payload),
        ),
        bad(
            "kid of 10 kB",
            KID,
            raw_token(&key, &rs_header(&"k".repeat(10_000)), &payload),
        ),
        malformed(
            "space inside a segment",
            format!("{h}.{} {}.{sig}", &p[..mid], &p[mid..]),
        ),
        malformed(
            "tab inside a segment",
            format!("{h}.{}\t{}.{sig}", &p[..mid], &p[mid..]),
        ),
        malformed("space after a dot", format!("{h}. {p}.{sig}")),
        raw(
            "newline (obs-fold) inside the token",
            format!("{h}.{}\r\n {}.{sig}", &p[..mid], &p[mid..]),
        ),
        raw(
            "bare LF inside the token",
            format!("{h}.{}\n{}.{sig}", &p[..mid], &p[mid..]),
        ),
        malformed("JWS JSON serialization (flattened)", flattened.clone()),
        malformed("JWS JSON serialization (general)", general),
        bad(
            "JWS JSON serialization, base64url-encoded",
            JWS,
            b64(&flattened),
        ),
        bad(
            "HS256 keyed with the IdP key's SPKI PEM",
            ALG,
            hmac_token("HS256", "idp-1", spki_pem.as_bytes(), &payload),
        ),
        bad(
            "HS256 keyed with the SPKI PEM without its last newline",
            ALG,
            hmac_token("HS256", "idp-1", spki_pem.trim_end().as_bytes(), &payload),
        ),
        bad(
            "HS256 keyed with the IdP key's PKCS#1 PEM",
            ALG,
            hmac_token("HS256", "idp-1", pkcs1_pem.as_bytes(), &payload),
        ),
        bad(
            "HS256 keyed with the IdP key's SPKI DER",
            ALG,
            hmac_token("HS256", "idp-1", &spki_der, &payload),
        ),
        bad(
            "HS512 keyed with the IdP key's SPKI PEM",
            ALG,
            hmac_token("HS512", "idp-1", spki_pem.as_bytes(), &payload),
        ),
        bad(
            "HS256 keyed with the EC key's SPKI PEM",
            ALG,
            hmac_token("HS256", "ec-1", ec_pem.as_bytes(), &payload),
        ),
        bad(
            "EdDSA when only RS256, PS256 and ES256 are allowed",
            ALG,
            ed_token,
        ),
    ];

    let total = rows.len();
    for row in rows {
        let name = row.name;
        let status = match &row.send {
            Send::Token(token) => {
                let reply = get_bearer(&proxy.url("/api/orders"), token).await;
                let Challenge::Code(code, why) = row.challenge else {
                    panic!("{name}: a token row has a code")
                };
                let www = reply.www();
                assert!(
                    www.starts_with("Bearer realm=\"resigner\""),
                    "{name}: {www}"
                );
                assert!(www.contains(&format!("error=\"{code}\"")), "{name}: {www}");
                let body = reply.json();
                let description = body["error_description"].as_str().unwrap_or_default();
                assert!(description.contains(why), "{name}: {body}");
                // Token content is never echoed: the 10 kB kid and the CR/LF kid stay out.
                let echoed = format!("{www}{body}");
                assert!(
                    echoed.len() < 1024 && !echoed.contains("Injected"),
                    "{name}: {echoed}"
                );
                reply.status.as_u16()
            }
            Send::Raw(request) => raw_status(proxy.running.public_addr, request).await,
        };
        assert_eq!(status, row.status, "{name}");
        assert_eq!(upstream.count(), 0, "{name} was forwarded");
    }
    assert!(
        idp.other_requests().is_empty(),
        "the IdP saw requests other than the JWKS: {:?}",
        idp.other_requests()
    );

    // Positive controls: the same keys' genuine tokens pass, so each row failed for its reason.
    for (name, token) in [("RS256", &valid), ("ES256", &valid_ec)] {
        let ok = get_bearer(&proxy.url("/api/orders"), token).await;
        assert_eq!(ok.status, 200, "{name} control: {:?}", ok.body);
    }
    assert_eq!(upstream.count(), 2);
    println!("hostile tokens: {total} rows rejected, 2 controls accepted");
}
