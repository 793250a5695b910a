//! The PKCS#11 signer API (`resigner::keys::signer::pkcs11`) on SoftHSM2, below the proxy:
//! two keys on two tokens of one module never sign for each other while one token goes away
//! and comes back (the module re-initialised under the other key), and a PIN the token
//! refuses is tried once per connect, never again until a reload.
//!
//! The module reads `SOFTHSM2_CONF` once per process, so each test re-runs itself as a child
//! process (the same test binary, filtered to that test) with its own SoftHSM directory in
//! the environment; the parent makes the tokens and keys with `resigner keys generate` and
//! fails when the child does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use resigner::jose::alg::Alg;
use resigner::keys::jwk::KeyMaterial;
use resigner::keys::signer::pkcs11::{self, Pkcs11Key, module};
use resigner::keys::signer::{Pkcs11Spec, SecretSource};
use serde_json::Value;

use crate::common::softhsm::{MODULE, PIN, SoftHsm};

const CHILD: &str = "RESIGNER_PKCS11_CHILD_DIR";

/// Runs `test` (this test's full name) again as a child with `hsm`'s environment and `vars`.
fn run_child(hsm: &SoftHsm, test: &str, vars: &[(&str, String)]) {
    let mut command = hsm.command(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, hsm.dir());
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().expect("the child test runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child {test}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn spec(dir: &Path, token: &str, key: &str) -> Pkcs11Spec {
    Pkcs11Spec {
        module: PathBuf::from(MODULE),
        token_label: token.into(),
        key_label: key.into(),
        pin: SecretSource::File(dir.join("pin")),
    }
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the parent"))
}

/// Whether `signature` of `message` verifies under the published JWK (JSON) `jwk`.
fn verifies(jwk: &str, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
    let jwk: serde_json::Map<String, Value> = serde_json::from_str(jwk).expect("JWK");
    let material = KeyMaterial::from_jwk(&jwk).expect("JWK").expect("a key");
    let parsed = material.parse_for(alg).expect("usable");
    parsed.verify_sig(message, signature).is_ok()
}

/// Signs with `key` until it works (or 10 s pass); every signature must verify under
/// `jwk` and under no other of `others`.
fn sign_checked(key: &Pkcs11Key, jwk: &str, others: &[&str], message: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match key.sign(Alg::ES256, message) {
            Ok(signature) => {
                assert!(
                    verifies(jwk, Alg::ES256, message, &signature),
                    "its own kid"
                );
                for other in others {
                    assert!(
                        !verifies(other, Alg::ES256, message, &signature),
                        "cross-key"
                    );
                }
                return;
            }
            Err(err) if Instant::now() < deadline => {
                eprintln!("not yet: {err}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(err) => panic!("the key never signed again: {err}"),
        }
    }
}

#[test]
fn two_keys_on_one_module_never_sign_for_each_other() {
    let Some(dir) = std::env::var_os(CHILD) else {
        let hsm = SoftHsm::start("tok-a");
        let b_dir = hsm.add_token("tok-b");
        let jwk_a = hsm.keys("generate", "key-a", Alg::ES256, "kid-a");
        let hsm = hsm.with_token("tok-b");
        let jwk_b = hsm.keys("generate", "key-b", Alg::ES256, "kid-b");
        // A second key on token a: an object whose handle may take an old number of b's.
        let hsm = hsm.with_token("tok-a");
        hsm.keys("generate", "key-a2", Alg::ES256, "kid-a2");
        run_child(
            &hsm,
            "pkcs11::module_level::two_keys_on_one_module_never_sign_for_each_other",
            &[
                ("JWK_A", jwk_a.to_string()),
                ("JWK_B", jwk_b.to_string()),
                ("TOKEN_B_DIR", b_dir.display().to_string()),
            ],
        );
        return;
    };
    let dir = PathBuf::from(dir);
    let (jwk_a, jwk_b) = (var("JWK_A"), var("JWK_B"));
    let token_b = PathBuf::from(var("TOKEN_B_DIR"));
    let away = dir.join("token-b.away");
    let (a, _) = pkcs11::connect(&spec(&dir, "tok-a", "key-a"), Alg::ES256).expect("a connects");
    let (b, _) = pkcs11::connect(&spec(&dir, "tok-b", "key-b"), Alg::ES256).expect("b connects");
    for round in 0..3 {
        let message = format!("round {round}");
        sign_checked(&a, &jwk_a, &[&jwk_b], message.as_bytes());
        sign_checked(&b, &jwk_b, &[&jwk_a], message.as_bytes());
    }
    let generation = module::generation(Path::new(MODULE));

    std::fs::rename(&token_b, &away).expect("token b goes away");
    // b fails and reconnects (re-initialising the module) until it gives up for a while; a
    // keeps signing, with its own key only.
    let deadline = Instant::now() + Duration::from_secs(10);
    while module::generation(Path::new(MODULE)) == generation {
        assert!(
            Instant::now() < deadline,
            "the module was never re-initialised"
        );
        if let Ok(signature) = b.sign(Alg::ES256, b"b while away") {
            assert!(verifies(&jwk_b, Alg::ES256, b"b while away", &signature));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let away_error = b.sign(Alg::ES256, b"away").expect_err("token b is away");
    assert_ne!(away_error.kind(), "failed", "{away_error}");
    assert!(b.health().is_some(), "b reports its outage");
    for round in 0..5 {
        sign_checked(&a, &jwk_a, &[&jwk_b], format!("a alone {round}").as_bytes());
    }
    assert!(a.health().is_none(), "{:?}", a.health());

    std::fs::rename(&away, &token_b).expect("token b is back");
    for round in 0..5 {
        let message = format!("both again {round}");
        sign_checked(&b, &jwk_b, &[&jwk_a], message.as_bytes());
        sign_checked(&a, &jwk_a, &[&jwk_b], message.as_bytes());
    }
    assert!(a.health().is_none() && b.health().is_none());
}

#[test]
fn a_refused_pin_is_tried_once_per_connect() {
    let Some(dir) = std::env::var_os(CHILD) else {
        let hsm = SoftHsm::start("tok-pin");
        let jwk = hsm.keys("generate", "key", Alg::ES256, "kid");
        run_child(
            &hsm,
            "pkcs11::module_level::a_refused_pin_is_tried_once_per_connect",
            &[("JWK", jwk.to_string())],
        );
        return;
    };
    let dir = PathBuf::from(dir);
    let jwk = var("JWK");
    let spec = spec(&dir, "tok-pin", "key");
    let (key, _) = pkcs11::connect(&spec, Alg::ES256).expect("connects");
    sign_checked(&key, &jwk, &[], b"before");
    assert_eq!(key.login_attempts(), 1);

    // The PIN changes under the key (a wrong pin_file), and the module is re-initialised (as
    // another key on it would after its token went away): the key must log in again.
    std::fs::write(dir.join("pin"), "0000\n").unwrap();
    let generation = module::generation(Path::new(MODULE));
    module::reinitialize(Path::new(MODULE), generation).expect("re-initialised");
    let refused = key
        .sign(Alg::ES256, b"wrong pin")
        .expect_err("the PIN is refused");
    assert_eq!(refused.kind(), "refused", "{refused}");
    assert_eq!(
        key.login_attempts(),
        2,
        "one login after the re-initialisation"
    );
    let health = key.health().expect("unhealthy");
    assert_eq!(health, pkcs11::PIN_REFUSED);
    assert!(!health.contains("0000") && !health.contains(PIN));

    // Later signatures, past the reconnect interval, and even with the right PIN back in
    // the file: refused at once, without another login, until a reload.
    std::fs::write(dir.join("pin"), format!("{PIN}\n")).unwrap();
    for _ in 0..5 {
        std::thread::sleep(pkcs11::RECONNECT_INTERVAL);
        let err = key.sign(Alg::ES256, b"again").expect_err("still refused");
        assert_eq!(err.kind(), "refused", "{err}");
    }
    assert_eq!(key.login_attempts(), 2, "no login after the refusal");

    // A reload connects the key anew, and it signs.
    let (reloaded, _) = pkcs11::connect(&spec, Alg::ES256).expect("reconnects");
    sign_checked(&reloaded, &jwk, &[], b"after reload");
    assert_eq!(reloaded.login_attempts(), 1);
}
