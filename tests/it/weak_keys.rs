//! Issue #17 section 4, weak public keys, with the real weak keys of `tests/data/weak-keys/`
//! (a modulus with the factor 751, one with the factor 7919, one of two close primes, one of
//! ROCA's form and two ROCA moduli published by the ROCA authors):
//! - a PUT of each is a 400 `weak_key` naming the kid and the reason; GET and the JWKS are
//!   unchanged;
//! - an IdP serving weak keys gets a warning per key and `resigner_idp_weak_keys{idp, reason}`,
//!   while the keys stay in use (no refusal);
//! - a weak signing key stops `resigner check`, `resigner serve` and a reload, naming the key
//!   and the reason.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use resigner::jose::alg::Alg;
use resigner::reload::Reloader;
use serde_json::{Value, json};

use crate::cli::resigner;
use crate::common::serve::ServeChild;
use crate::common::*;
use crate::hostile_keys::snapshot;

const WEAK_PEM: &str = "close-primes.pkcs8.pem";
const CLOSE: &str = "too close together (Fermat's method factors it)";

fn weak_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/weak-keys")
}

fn weak_jwk(file: &str) -> Value {
    let path = weak_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_put_of_a_weak_key_is_a_400_naming_kid_and_reason_and_changes_nothing() {
    let fixture = Fixture::start().await;
    let proxy = &fixture.proxy;
    let before = snapshot(proxy).await;
    assert_eq!(before.0, 200, "the signing key is published");
    let good = Value::Object(proxy.active_jwk());
    for (file, reason) in [
        (
            "small-factor.jwk.json",
            "the RSA modulus is divisible by 751",
        ),
        (
            "small-factor-7919.jwk.json",
            "the RSA modulus is divisible by 7919",
        ),
        ("close-primes.jwk.json", CLOSE),
        (
            "roca-constructed.jwk.json",
            "ROCA fingerprint (CVE-2017-15361",
        ),
        ("roca-mod03.jwk.json", "ROCA fingerprint (CVE-2017-15361"),
        ("roca-mod09.jwk.json", "ROCA fingerprint (CVE-2017-15361"),
    ] {
        let weak = weak_jwk(file);
        let kid = weak["kid"].as_str().unwrap().to_string();
        let reply = proxy.put_keys(&json!({"keys": [good, weak]})).await;
        assert_eq!(reply.status, 400, "{file}: {:?}", reply.body);
        let body = reply.json();
        assert_eq!(body["errorCode"], "weak_key", "{file}: {body}");
        assert_eq!(body["statusCode"], 400);
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "keys[1] (kid {kid:?}): the key is weak and is refused: "
            )),
            "{file}: {message}"
        );
        assert!(message.contains(reason), "{file}: {message}");
        assert_eq!(snapshot(proxy).await, before, "{file}: the set changed");
    }
}

#[tokio::test]
async fn an_idp_serving_weak_keys_is_warned_about_and_counted_not_refused() {
    let builder = Fixture::builder()
        .await
        .also_serve_jwk(weak_jwk("close-primes.jwk.json"))
        .also_serve_jwk(weak_jwk("roca-mod03.jwk.json"));
    let dir = tempfile::tempdir().unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let config = builder.write_config(dir.path(), &listen, &admin);
    let child = ServeChild::spawn(&config, &dir.path().join("serve.log"), "resigner=info");
    child.publish_signing_key(&format!("http://{admin}")).await;

    let events = child.log_events();
    let warned: Vec<&Value> = events
        .iter()
        .filter(|e| e["level"] == "WARN" && e["fields"]["reason"].is_string())
        .collect();
    let seen: Vec<(&str, &str)> = warned
        .iter()
        .map(|e| {
            let fields = &e["fields"];
            (
                fields["kid"].as_str().unwrap(),
                fields["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("weak-close-primes", "close_primes"),
            ("weak-roca-published-2048", "roca")
        ],
        "{events:#?}"
    );
    let message = warned[0]["fields"]["message"].as_str().unwrap();
    assert!(message.contains(CLOSE), "{message}");

    let metrics = get(&format!("http://{admin}/metrics"), &[]).await;
    let text = std::str::from_utf8(&metrics.body).unwrap();
    for (reason, count) in [
        ("close_primes", 1),
        ("roca", 1),
        ("small_factor", 0),
        ("exponent", 0),
        ("invalid_point", 0),
    ] {
        let line = format!(",reason=\"{reason}\"}} {count}\n");
        assert!(text.contains("resigner_idp_weak_keys{idp=\""), "{text}");
        assert!(text.contains(&line), "{line:?} not in:\n{text}");
    }
    // Warned about, not refused: the weak keys stay in the aggregated JWKS.
    let jwks = get(&format!("http://{listen}/.well-known/jwks.json"), &[])
        .await
        .json();
    let served = jwks["keys"].as_array().unwrap();
    for kid in ["weak-close-primes", "weak-roca-published-2048"] {
        assert!(
            served.iter().any(|k| k["kid"] == kid),
            "{kid} not in {jwks}"
        );
    }
}

/// A config whose only signing key (RS256) is the close-primes key.
async fn weak_signing_config(dir: &Path) -> (std::path::PathBuf, TestIdp) {
    let idp = TestIdp::start(&[&IdpKey::rs256("idp-1")]).await;
    let config = ProxyBuilder::new(&idp)
        .signing_alg(Alg::RS256)
        .write_config(dir, &free_addr(), &free_addr());
    std::fs::copy(weak_dir().join(WEAK_PEM), dir.join("signing.pem")).unwrap();
    (config, idp)
}

fn assert_names_the_weak_key(text: &str) {
    assert!(text.contains("signing.keys[0].path"), "{text}");
    assert!(text.contains("is weak and is refused"), "{text}");
    assert!(text.contains(CLOSE), "{text}");
}

#[tokio::test]
async fn a_weak_signing_key_stops_check_and_serve_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _idp) = weak_signing_config(dir.path()).await;
    let config = config.to_str().unwrap().to_string();

    let run = resigner(&["check", "--config", &config], "", &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_names_the_weak_key(&run.stderr);

    let mut serve = Command::new(env!("CARGO_BIN_EXE_resigner"))
        .args(["serve", "--config", &config])
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = serve.kill();
            let _ = serve.wait();
            panic!("resigner serve started with a weak signing key");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert_names_the_weak_key(&stderr);
}

#[tokio::test]
async fn a_reload_onto_a_weak_signing_key_is_refused_and_keeps_the_running_key() {
    let fixture = Fixture::builder()
        .await
        .signing_alg(Alg::RS256)
        .start()
        .await;
    let proxy = &fixture.proxy;
    let kid = proxy.active_kid();
    let key_file = proxy.config_path.parent().unwrap().join("signing.pem");
    std::fs::copy(weak_dir().join(WEAK_PEM), &key_file).unwrap();
    let reloader = Reloader::new(&proxy.config_path, proxy.running.state.clone());

    let problems = reloader.reload("test").unwrap_err();

    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_names_the_weak_key(&problems[0]);
    assert_eq!(proxy.active_kid(), kid, "the running signing key stays");
    let reply = get(&fixture.url("/.well-known/jwks.json"), &[]).await;
    assert_eq!(reply.status, 200);
}
