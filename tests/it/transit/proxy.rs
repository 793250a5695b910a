//! The proxy signing through OpenBao Transit, end to end: the re-signed token (ES256, RS256)
//! verifies with npm `jose` from our JWKS; a hung KMS (SIGSTOP) answers 503
//! `signing_unavailable` within the configured timeout, then fast, and 200 once it runs again;
//! a version rotated in inside OpenBao is never used: pinned, the old version keeps signing
//! across a reload; unpinned, the version read at start stays across reloads that leave the
//! key's entry as it was, and a version named before its public half is published makes the
//! proxy answer 503 (`/readyz` names the key) until it is published.
//! The CLI (`keys jwks --config`, `token resign`) reads and signs through the same backend.

use std::process::Command;
use std::time::{Duration, Instant};

use resigner::jose::alg::Alg;
use resigner::reload::Reloader;
use serde_json::{Value, json};

use crate::common::openbao::TestOpenBao;
use crate::common::*;

/// A proxy whose signing key is Transit key `k` (`key_type`) on `bao`.
async fn transit_fixture(bao: &TestOpenBao, key_type: &str, alg: Alg, extra: Value) -> Fixture {
    bao.create_key("k", key_type).await;
    Fixture::builder()
        .await
        .with_proxy(|proxy| proxy.transit_key(bao, "k", alg, "transit-1", extra))
        .start()
        .await
}

/// Verifies `token` with npm `jose` against the proxy's JWKS; returns its header and claims.
async fn jose_verify(proxy: &TestProxy, token: String, alg: Alg) -> Value {
    crate::common::jose::jose_verify(
        proxy.url("/.well-known/jwks.json"),
        token,
        AUDIENCE,
        "https://resigner.test/",
        alg,
    )
    .await
}

/// The `signing` key entry of `/admin/status`.
async fn key_status(fixture: &Fixture) -> Value {
    let status = get(
        &fixture.admin_url("/admin/status"),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
    )
    .await
    .json();
    status["signing"]["keys"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_resigns_through_openbao_and_jose_verifies() {
    for (key_type, alg) in [("ecdsa-p256", Alg::ES256), ("rsa-2048", Alg::RS256)] {
        let bao = TestOpenBao::start().await;
        let fixture = transit_fixture(&bao, key_type, alg, json!({})).await;
        let reply = get_bearer(&fixture.url("/api/x"), &fixture.token()).await;
        assert_eq!(reply.status, 200, "{alg}: {:?}", reply.body);
        let verdict = jose_verify(&fixture.proxy, fixture.upstream.last().bearer(), alg).await;
        assert_eq!(verdict["header"]["kid"], "transit-1");
        assert_eq!(verdict["header"]["alg"], alg.name());
        assert_eq!(verdict["claims"]["sub"], "user-42");
        let status = key_status(&fixture).await;
        assert_eq!(status["backend"], "transit", "{status}");
        assert_eq!(status["key_version"], 1, "{status}");
        assert_eq!(status["healthy"], true, "{status}");
        let metrics = get(&fixture.admin_url("/metrics"), &[]).await;
        let series = format!(
            "resigner_signature_duration_seconds_count{{alg=\"{alg}\",backend=\"transit\"}} 1"
        );
        assert!(
            String::from_utf8_lossy(&metrics.body).contains(&series),
            "{series}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_kms_answers_503_within_the_timeout_and_200_when_it_runs_again() {
    let bao = TestOpenBao::start().await;
    let extra = json!({"timeout": "500ms"});
    let fixture = transit_fixture(&bao, "ecdsa-p256", Alg::ES256, extra).await;
    let url = fixture.url("/api/x");
    assert_eq!(get_bearer(&url, &fixture.token()).await.status, 200);
    bao.pause();
    for attempt in 0..4 {
        let started = Instant::now();
        let reply = get_bearer(&url, &fixture.token()).await;
        let took = started.elapsed();
        assert_eq!(reply.status, 503, "attempt {attempt}: {:?}", reply.body);
        assert!(
            String::from_utf8_lossy(&reply.body).contains("temporarily_unavailable"),
            "{:?}",
            reply.body
        );
        // Three calls wait out the 500 ms timeout (not a hang; the bound leaves room for a
        // loaded CI machine), then the circuit answers at once.
        let bound = if attempt < 3 { 3_000 } else { 300 };
        assert!(
            took < Duration::from_millis(bound),
            "attempt {attempt} took {took:?}"
        );
    }
    let status = key_status(&fixture).await;
    assert_eq!(status["healthy"], false, "{status}");
    let problem = status["backend_problem"].as_str().unwrap_or_default();
    assert!(problem.starts_with("circuit open"), "{status}");
    let metrics = get(&fixture.admin_url("/metrics"), &[]).await;
    let text = String::from_utf8_lossy(&metrics.body);
    for kind in ["timeout", "unavailable"] {
        let series =
            format!("resigner_signing_errors_total{{backend=\"transit\",kind=\"{kind}\"}}");
        assert!(
            text.lines()
                .any(|l| l.starts_with(&series) && !l.ends_with(" 0")),
            "{series}"
        );
    }
    bao.resume();
    // After the circuit's cool-down (5 s) one probe goes out and closes it.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let reply = get_bearer(&url, &fixture.token()).await;
        if reply.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {:?}", reply.body);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let verdict = jose_verify(&fixture.proxy, fixture.upstream.last().bearer(), Alg::ES256).await;
    assert_eq!(verdict["header"]["kid"], "transit-1");
    assert_eq!(key_status(&fixture).await["healthy"], true);
}

/// Reloads the proxy's config (and so reconnects its signing keys), as SIGHUP would.
async fn reload(fixture: &Fixture) {
    let reloader = Reloader::new(
        &fixture.proxy.config_path,
        fixture.proxy.running.state.clone(),
    );
    let result = tokio::task::spawn_blocking(move || reloader.reload("test"))
        .await
        .unwrap();
    assert!(result.is_ok(), "reload: {result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_version_keeps_signing_after_a_rotation_inside_openbao() {
    let bao = TestOpenBao::start().await;
    let extra = json!({"key_version": 1});
    let fixture = transit_fixture(&bao, "ecdsa-p256", Alg::ES256, extra).await;
    assert_eq!(bao.rotate("k").await, 2);
    reload(&fixture).await;
    let reply = get_bearer(&fixture.url("/api/x"), &fixture.token()).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    jose_verify(&fixture.proxy, fixture.upstream.last().bearer(), Alg::ES256).await;
    assert_eq!(key_status(&fixture).await["key_version"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpinned_key_stays_on_its_version_and_a_new_one_is_not_used_until_published() {
    let bao = TestOpenBao::start().await;
    let fixture = transit_fixture(&bao, "ecdsa-p256", Alg::ES256, json!({})).await;
    let url = fixture.url("/api/x");
    assert_eq!(get_bearer(&url, &fixture.token()).await.status, 200);
    let published = fixture.proxy.active_jwk();
    assert_eq!(bao.rotate("k").await, 2);
    // A reload that does not touch the key (here: nothing changed) keeps it connected as it
    // is: still version 1, still signing.
    reload(&fixture).await;
    assert_eq!(key_status(&fixture).await["key_version"], 1);
    assert_eq!(fixture.proxy.active_jwk(), published);
    assert_eq!(get_bearer(&url, &fixture.token()).await.status, 200);
    // The operator moves to version 2 before publishing it.
    fixture
        .proxy
        .rewrite_config(|doc| doc.set("signing.keys.0.transit", "key_version", 2));
    reload(&fixture).await;
    assert_eq!(key_status(&fixture).await["key_version"], 2);
    assert_ne!(
        fixture.proxy.active_jwk(),
        published,
        "the reload read version 2"
    );
    let forwarded = fixture.upstream.count();
    let reply = get_bearer(&url, &fixture.token()).await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(fixture.upstream.count(), forwarded, "nothing forwarded");
    let ready = get(&fixture.admin_url("/readyz"), &[]).await;
    assert_eq!(ready.status, 503);
    let reason = ready.json()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("\"transit-1\""), "{reason}");
    // Publishing version 2's public half lets it sign.
    let jwk = fixture.proxy.active_jwk();
    let put = fixture.proxy.put_keys(&json!({ "keys": [jwk] })).await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let reply = get_bearer(&url, &fixture.token()).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    jose_verify(&fixture.proxy, fixture.upstream.last().bearer(), Alg::ES256).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_jwks_and_token_resign_read_and_sign_through_openbao() {
    let bao = TestOpenBao::start().await;
    bao.create_key("k", "rsa-2048").await;
    let builder = Fixture::builder()
        .await
        .with_proxy(|proxy| proxy.transit_key(&bao, "k", Alg::RS256, "transit-1", json!({})));
    let dir = tempfile::tempdir().unwrap();
    let config = builder.write_config(dir.path(), &free_addr(), &free_addr());
    let resigner = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_resigner"))
                .args(args)
                .output()
                .expect("resigner runs")
        })
        .await
        .unwrap()
    };
    let config = config.display().to_string();
    let jwks = resigner(vec![
        "keys".into(),
        "jwks".into(),
        "--config".into(),
        config.clone(),
    ])
    .await;
    assert!(
        jwks.status.success(),
        "{}",
        String::from_utf8_lossy(&jwks.stderr)
    );
    let jwks: Value = serde_json::from_slice(&jwks.stdout).unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(
        (&jwk["kid"], &jwk["kty"]),
        (&json!("transit-1"), &json!("RSA"))
    );
    // `token resign` signs through OpenBao: its own PEM public key (read by jsonwebtoken)
    // verifies the result.
    let key = bao
        .api(http::Method::GET, "transit/keys/k", None)
        .await
        .json();
    let pem = key["data"]["keys"]["1"]["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let token = builder.token();
    let resigned = resigner(vec![
        "token".into(),
        "resign".into(),
        "--config".into(),
        config,
        "--route".into(),
        "/api".into(),
        token,
    ])
    .await;
    assert!(
        resigned.status.success(),
        "{}",
        String::from_utf8_lossy(&resigned.stderr)
    );
    let out = String::from_utf8_lossy(&resigned.stdout).to_string();
    assert!(
        out.contains("signed with kid \"transit-1\" (RS256)"),
        "{out}"
    );
    let resigned = out
        .lines()
        .last()
        .and_then(|line| line.rsplit(' ').next())
        .expect("the forwarded header")
        .to_string();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[AUDIENCE]);
    let decoding = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::decode::<Value>(&resigned, &decoding, &validation)
        .expect("the CLI's token verifies with OpenBao's public key");
}
