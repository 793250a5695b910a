//! Signature vectors through resigner's own verification code: Wycheproof (RSA PKCS#1 v1.5,
//! RSA-PSS, ECDSA P-256/P-384 in P1363 form, Ed25519) with each group's key built as a JWK by
//! `VerifyKey::from_jwk`, and the RFC 7515 / RFC 7520 / RFC 7797 / RFC 8037 examples in
//! `tests/data` (copied from the RFCs and the JOSE cookbook; sources and licences in
//! `tests/data/README.md`) through `verify::parse` and `verify::verify`. `verify` checks the
//! signature before any claim, so an example that fails on a claim (their `exp` is from 2011,
//! they have no `aud`, some payloads are not JSON) has passed the signature check; each such
//! row also checks the signature alone with `VerifyKey::for_alg(..).verify_sig` and proves a
//! flipped signature bit fails with `VerifyError::Signature`.

use std::time::Duration;

use resigner::config::IdpSettings;
use resigner::jose::alg::{Alg, KeyFamily};
use resigner::keys::VerifyKey;
use resigner::keys::jwk::JwkError;
use resigner::proxy::verify::{self, VerifyError};
use serde_json::{Map, Value, json};
use wycheproof::TestResult;

use crate::common::idp::b64;

/// One Wycheproof vector, whatever its suite.
struct Vector {
    tc_id: usize,
    msg: Vec<u8>,
    sig: Vec<u8>,
    result: TestResult,
    flags: String,
}

/// One Wycheproof test group: the key as a JWK, its size in bits and its vectors.
struct Group {
    jwk: Map<String, Value>,
    bits: usize,
    vectors: Vec<Vector>,
}

/// Every suite's `Test` has the same fields; one macro turns a group's tests into vectors.
macro_rules! vectors {
    ($tests:expr) => {
        $tests
            .iter()
            .map(|t| Vector {
                tc_id: t.tc_id,
                msg: t.msg.to_vec(),
                sig: t.sig.to_vec(),
                result: t.result,
                flags: format!("{:?}", t.flags),
            })
            .collect()
    };
}

fn trimmed(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    b64(&bytes[zeros.min(bytes.len().saturating_sub(1))..])
}

fn rsa_jwk(n: &[u8], e: &[u8], alg: Alg, tag: String) -> Map<String, Value> {
    let jwk = json!({"kty": "RSA", "kid": tag, "use": "sig", "alg": alg.name(), "n": trimmed(n), "e": trimmed(e)});
    jwk.as_object().unwrap().clone()
}

fn rsa_pkcs1() -> Vec<Group> {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let set = TestSet::load(TestName::Rsa2048Sha256).unwrap();
    let groups = set.test_groups.iter().enumerate();
    groups
        .map(|(i, g)| Group {
            jwk: rsa_jwk(&g.key.n, &g.key.e, Alg::RS256, format!("pkcs1-{i}")),
            bits: g.key_size,
            vectors: vectors!(g.tests),
        })
        .collect()
}

fn rsa_pss() -> Vec<Group> {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let set = TestSet::load(TestName::RsaPss2048Sha256Mgf1SaltLen32).unwrap();
    let groups = set.test_groups.iter().enumerate();
    groups
        .map(|(i, g)| {
            assert_eq!(
                (g.salt_size, g.mgf_hash),
                (32, Some(wycheproof::HashFunction::Sha2_256))
            );
            Group {
                jwk: rsa_jwk(&g.key.n, &g.key.e, Alg::PS256, format!("pss-{i}")),
                bits: g.key_size,
                vectors: vectors!(g.tests),
            }
        })
        .collect()
}

fn ecdsa(name: wycheproof::ecdsa::TestName, crv: &str) -> Vec<Group> {
    let set = wycheproof::ecdsa::TestSet::load(name).unwrap();
    let groups = set.test_groups.iter().enumerate();
    groups
        .map(|(i, g)| {
            // The uncompressed point 04 || x || y has exact-length coordinates (wx/wy may not).
            let point = &g.key.key[1..];
            let (x, y) = point.split_at(point.len() / 2);
            let jwk = json!({"kty": "EC", "kid": format!("ec-{i}"), "crv": crv, "x": b64(x), "y": b64(y)});
            Group {
                jwk: jwk.as_object().unwrap().clone(),
                bits: g.key.key_size,
                vectors: vectors!(g.tests),
            }
        })
        .collect()
}

fn ed25519() -> Vec<Group> {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let groups = set.test_groups.iter().enumerate();
    groups
        .map(|(i, g)| {
            let jwk = json!({"kty": "OKP", "kid": format!("ed-{i}"), "crv": "Ed25519", "x": b64(&*g.key.pk)});
            Group {
                jwk: jwk.as_object().unwrap().clone(),
                bits: 256,
                vectors: vectors!(g.tests),
            }
        })
        .collect()
}

/// The decision for every "acceptable" vector, so a change in the crypto library shows up:
/// (suite, tcId, accepted). RSA PKCS#1 tcId 8 omits the NULL parameter of the DigestInfo;
/// resigner (aws-lc) refuses it: the stricter choice, as RFC 8017 §9.2 encodes it with NULL.
const ACCEPTABLE: [(&str, usize, bool); 1] = [("RSA PKCS#1 v1.5 2048 SHA-256", 8, false)];

#[test]
fn wycheproof_vectors_through_verify_key() {
    type Load = fn() -> Vec<Group>;
    let suites: [(&str, Alg, Load); 5] = [
        ("RSA PKCS#1 v1.5 2048 SHA-256", Alg::RS256, rsa_pkcs1),
        (
            "RSA-PSS 2048 SHA-256 MGF1-SHA-256 salt 32",
            Alg::PS256,
            rsa_pss,
        ),
        ("ECDSA P-256 SHA-256 P1363", Alg::ES256, || {
            ecdsa(
                wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363,
                "P-256",
            )
        }),
        ("ECDSA P-384 SHA-384 P1363", Alg::ES384, || {
            ecdsa(
                wycheproof::ecdsa::TestName::EcdsaSecp384r1Sha384P1363,
                "P-384",
            )
        }),
        ("Ed25519", Alg::EdDSA, ed25519),
    ];
    let mut failures = vec![];
    for (suite, alg, load) in suites {
        let groups = load();
        let (mut valid, mut invalid, mut acceptable, mut small_keys, mut refused) = (0, 0, 0, 0, 0);
        for group in &groups {
            let key = match VerifyKey::from_jwk(&group.jwk, &[alg]) {
                Ok(Some(key)) => key,
                other => {
                    let small = group.bits < 2048 && alg.family() == KeyFamily::Rsa;
                    if small {
                        assert_eq!(other.unwrap_err(), JwkError::RsaSize(group.bits), "{suite}");
                        small_keys += 1;
                    } else if let Some(v) = group
                        .vectors
                        .iter()
                        .find(|v| v.result != TestResult::Invalid)
                    {
                        failures.push(format!("{suite} tcId {}: key refused ({other:?})", v.tc_id));
                    }
                    refused += group.vectors.len();
                    continue;
                }
            };
            let public = key.for_alg(alg).expect("key parsed for the suite's alg");
            for v in &group.vectors {
                let accepted = public.verify_sig(&v.msg, &v.sig).is_ok();
                let expected = match v.result {
                    TestResult::Valid => {
                        valid += 1;
                        true
                    }
                    TestResult::Invalid => {
                        invalid += 1;
                        false
                    }
                    TestResult::Acceptable => {
                        acceptable += 1;
                        let decision = ACCEPTABLE
                            .iter()
                            .find(|(s, id, _)| *s == suite && *id == v.tc_id)
                            .map(|(_, _, accepted)| *accepted);
                        match decision {
                            Some(decision) => decision,
                            None => {
                                failures.push(format!(
                                    "{suite} tcId {} is acceptable ({}) and has no recorded decision; resigner {}",
                                    v.tc_id,
                                    v.flags,
                                    if accepted { "accepts it" } else { "rejects it" }
                                ));
                                continue;
                            }
                        }
                    }
                };
                if accepted != expected {
                    failures.push(format!(
                        "{suite} tcId {} ({:?}, {}): accepted = {accepted}",
                        v.tc_id, v.result, v.flags
                    ));
                }
            }
        }
        println!(
            "wycheproof {suite}: {} keys, {} vectors: {valid} valid accepted, {invalid} invalid \
             rejected, {acceptable} acceptable as recorded; {small_keys} keys under 2048 bits \
             refused by from_jwk ({refused} vectors not run)",
            groups.len(),
            valid + invalid + acceptable + refused,
        );
        assert!(valid > 0 && invalid > 0, "{suite} ran no vectors");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn testdata(path: &str) -> Value {
    let path = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The JWK as an IdP would publish it: private members removed.
fn public_part(jwk: &Value) -> Map<String, Value> {
    let mut jwk = jwk.as_object().unwrap().clone();
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        jwk.remove(private);
    }
    jwk
}

fn idp_settings(algorithms: Vec<Alg>) -> std::sync::Arc<IdpSettings> {
    std::sync::Arc::new(IdpSettings {
        name: "joe".into(),
        issuer: "joe".into(),
        jwks_uri: None,
        algorithms,
        leeway: Duration::from_secs(30),
        require_typ: None,
        refresh: Duration::from_secs(600),
        refresh_min: Duration::from_secs(60),
        refresh_max: Duration::from_secs(86_400),
        unknown_kid_cooldown: Duration::from_secs(30),
        max_stale: Duration::from_secs(86_400),
        fetch_timeout: Duration::from_secs(5),
        max_response_bytes: 1024 * 1024,
        max_keys: 100,
        scope_claims: vec!["scope".into()],
        tls: None,
        introspection: None,
    })
}

/// What an RFC example must do.
enum Expect {
    /// The signature verifies; `verify` then stops at this claim error (2011 `exp`, no `aud`,
    /// or a payload that is not a JSON object).
    SignatureThen(VerifyError),
    /// `parse` refuses the token before any key is chosen.
    Refused(VerifyError),
}

/// RFC 7515 A.2's `exp` is 1300819380 (2011-03-22); "now" is just before it.
const RFC_NOW: i64 = 1_300_819_000;

#[test]
fn rfc_examples_verify_or_are_refused() {
    let rfc = testdata("rfc_appendix_examples.json");
    let a = &rfc["rfc7515"];
    let cookbook = |name: &str| testdata(&format!("jose-cookbook/{name}"));
    let from_cookbook = |doc: Value| {
        let compact = doc["output"]["compact"].as_str().unwrap().to_string();
        (compact, doc["input"]["key"].clone())
    };
    // RFC 7797's unencoded payload "$.02" holds a dot: four segments once made compact.
    let rfc7797 = cookbook("rfc7797/4.2.hmac-sha2_b64_false.json");
    let flat = &rfc7797["output"]["json_flat"];
    let b64_false = format!(
        "{}.{}.{}",
        flat["protected"].as_str().unwrap(),
        flat["payload"].as_str().unwrap(),
        flat["signature"].as_str().unwrap()
    );
    let a5 = a["A5"]["compact"].as_str().unwrap();
    let claim = |name| Expect::SignatureThen(VerifyError::MissingClaim(name));
    let not_json = || Expect::SignatureThen(VerifyError::Json("payload"));
    let example = |id: &str| {
        let compact = a[id]["compact"].as_str().unwrap().to_string();
        (compact, a[id]["jwk"].clone())
    };
    let rows: Vec<(&str, (String, Value), Expect)> = vec![
        (
            "RFC 7515 A.1 (HS256)",
            example("A1"),
            Expect::Refused(VerifyError::AlgNotAllowed),
        ),
        ("RFC 7515 A.2 (RS256)", example("A2"), claim("aud")),
        ("RFC 7515 A.3 (ES256)", example("A3"), claim("aud")),
        ("RFC 7515 A.4 (ES512)", example("A4"), not_json()),
        // The unsecured JWS ends in an empty signature segment: refused as structure first.
        (
            "RFC 7515 A.5 (none)",
            example("A5"),
            Expect::Refused(VerifyError::Structure),
        ),
        (
            "RFC 7515 A.5 (none) with a signature appended",
            (format!("{a5}c2ln"), Value::Null),
            Expect::Refused(VerifyError::AlgNotAllowed),
        ),
        (
            "RFC 7520 4.1 (RS256)",
            from_cookbook(cookbook("jws/4_1.rsa_v15_signature.json")),
            not_json(),
        ),
        (
            "RFC 7520 4.2 (PS384)",
            from_cookbook(cookbook("jws/4_2.rsa-pss_signature.json")),
            not_json(),
        ),
        (
            "RFC 7520 4.3 (ES512)",
            from_cookbook(cookbook("jws/4_3.ecdsa_signature.json")),
            not_json(),
        ),
        (
            "RFC 7520 4.4 (HS256)",
            from_cookbook(cookbook("jws/4_4.hmac-sha2_integrity_protection.json")),
            Expect::Refused(VerifyError::AlgNotAllowed),
        ),
        (
            "RFC 7520 4.5 (HS256, detached payload)",
            from_cookbook(cookbook("jws/4_5.signature_with_detached_content.json")),
            Expect::Refused(VerifyError::Structure),
        ),
        (
            "RFC 7797 4.2 (HS256, b64 false)",
            (b64_false, Value::Null),
            Expect::Refused(VerifyError::Structure),
        ),
        (
            "RFC 8037 A.4 (EdDSA)",
            from_cookbook(cookbook("curve25519/jws.json")),
            not_json(),
        ),
    ];
    let all = idp_settings(Alg::ALL.to_vec());
    let (mut verified, mut refused) = (0, 0);
    for (name, (compact, jwk), expect) in rows {
        let parsed = verify::parse(&compact).and_then(|parsed| {
            verify::check_header(&parsed, &all)?;
            Ok(parsed)
        });
        match expect {
            Expect::Refused(error) => {
                assert_eq!(parsed.unwrap_err(), error, "{name}");
                if jwk["kty"] == "oct" {
                    let key = VerifyKey::from_jwk(&public_part(&jwk), &Alg::ALL);
                    assert!(matches!(key, Ok(None)), "{name}: an oct key is never used");
                }
                refused += 1;
            }
            Expect::SignatureThen(error) => {
                let parsed = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
                let alg = parsed.alg;
                let key = VerifyKey::from_jwk(&public_part(&jwk), &Alg::ALL)
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
                    .unwrap_or_else(|| panic!("{name}: key skipped"));
                let (input, sig) = compact.rsplit_once('.').unwrap();
                let sig = resigner::jose::b64::decode(sig).unwrap();
                let public = key.for_alg(alg).unwrap();
                assert!(public.verify_sig(input.as_bytes(), &sig).is_ok(), "{name}");
                let result = verify::verify(parsed, &key, &all, "https://api.test", RFC_NOW);
                assert_eq!(
                    result.unwrap_err(),
                    error,
                    "{name}: signature accepted, then"
                );

                let mut flipped = sig.clone();
                flipped[sig.len() / 2] ^= 0x01;
                let tampered = format!("{input}.{}", b64(&flipped));
                let parsed = verify::parse(&tampered).unwrap();
                let result = verify::verify(parsed, &key, &all, "https://api.test", RFC_NOW);
                assert_eq!(
                    result.unwrap_err(),
                    VerifyError::Signature,
                    "{name} tampered"
                );

                let others: Vec<Alg> = Alg::ALL.into_iter().filter(|a| *a != alg).collect();
                let narrow = idp_settings(others);
                let parsed = verify::parse(&compact).unwrap();
                let refused = verify::check_header(&parsed, &narrow).unwrap_err();
                assert_eq!(
                    refused,
                    VerifyError::AlgNotAllowed,
                    "{name} outside the allow-list"
                );
                verified += 1;
            }
        }
    }
    println!("RFC examples: {verified} signatures verified, {refused} tokens refused");
    assert_eq!((verified, refused), (7, 6));
}
