//! What the operator is told, from the built binary: `check` says what it did not check and
//! `check --online` contacts the IdP (discovery, JWKS, kids) and every upstream (TCP, TLS),
//! naming each failure; `token resign` checks the route (and its mode) before any request
//! to the IdP; and `resigner serve`'s rejection log lines say what a token carried and what
//! was expected (`typ`, `iss`, `aud`) without the token, while the HTTP answer stays as it was.

use serde_json::Value;

use crate::cli::resigner;
use crate::common::idp::Mode;
use crate::common::serve::ServeChild;
use crate::common::tls::{TestCa, TlsFront};
use crate::common::*;

fn route(prefix: &str, upstream: &str, extra: &str) -> String {
    format!(
        "prefix = \"{prefix}\"\nupstream = \"{upstream}\"\naudience = \"https://api.test\"\n{extra}\n"
    )
}

#[tokio::test]
async fn check_says_what_it_did_not_check_and_contacts_nothing() {
    let key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&key]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ProxyBuilder::new(&idp)
        .discover()
        .route(&route("/api", "http://127.0.0.1:9", ""))
        .write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let run = resigner(&["check", "--config", config.to_str().unwrap()], "", &[]).await;
    run.ok();
    let out = &run.stdout;
    assert!(out.starts_with("config OK"), "{out}");
    for words in [
        "not checked (add --online",
        "whether the IdP answers (discovery, JWKS)",
        "each route's upstream accepts connections",
        "signing key is published in the custom key set",
    ] {
        assert!(out.contains(words), "{words:?} not in\n{out}");
    }
    assert_eq!(idp.requests(), 0, "check without --online contacts nothing");
}

#[tokio::test]
async fn check_online_reports_the_idp_keys_and_each_upstream() {
    let (k1, k2) = (IdpKey::rs256("k1"), IdpKey::es256("k2"));
    let idp = TestIdp::start(&[&k1, &k2]).await;
    let upstream = TestUpstream::start().await;
    let ca = TestCa::new("upstream CA");
    let front = TlsFront::start(upstream.addr(), &ca.server("legacy"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "upstream-ca.pem");
    let https = format!("https://127.0.0.1:{}", front.addr.port());
    let config = ProxyBuilder::new(&idp)
        .discover()
        .idp("algorithms = [\"RS256\", \"ES256\"]")
        .route(&route("/api", &upstream.url, ""))
        .route(&route(
            "/tls",
            &https,
            &format!("ca_file = \"{}\"", ca_file.display()),
        ))
        .write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let args = ["check", "--online", "--config", config.to_str().unwrap()];
    let run = resigner(&args, "", &[]).await;
    run.ok();
    let out = &run.stdout;
    let plain = &upstream.url;
    for line in [
        format!(
            "IdP: JWKS {}jwks.json (discovered from the OpenID configuration)",
            idp.issuer
        ),
        "IdP: 2 usable key(s), kids: k1, k2".to_string(),
        format!("upstream /api -> {plain}: TCP connect OK"),
        format!("upstream /tls -> {https}: TCP connect and TLS handshake OK"),
        "online check OK".to_string(),
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in\n{out}");
    }
    assert!(out.contains("not checked: whether the active signing key is published"));
    assert_eq!(upstream.count(), 0, "a connect only: no request was sent");
}

#[tokio::test]
async fn check_online_names_every_failure_and_exits_non_zero() {
    let key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&key]).await;
    idp.set_mode(Mode::Error500);
    let upstream = TestUpstream::start().await;
    let ca = TestCa::new("private CA");
    let front = TlsFront::start(upstream.addr(), &ca.server("legacy"), None).await;
    let closed = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let untrusted = format!("https://127.0.0.1:{}", front.addr.port());
    let config = ProxyBuilder::new(&idp)
        .route(&route("/api", &upstream.url, ""))
        .route(&route("/closed", &format!("http://{closed}"), ""))
        .route(&route("/untrusted", &untrusted, ""))
        .write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let args = ["check", "--online", "--config", config.to_str().unwrap()];
    let run = resigner(&args, "", &[]).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let err = &run.stderr;
    for words in [
        "online check found 3 problem(s)".to_string(),
        format!("IdP {}: {} answered HTTP 500", idp.issuer, idp.jwks_uri()),
        format!("upstream /closed -> http://{closed}: TCP connect failed"),
        format!("upstream /untrusted -> {untrusted}: TLS handshake failed"),
        "UnknownIssuer".to_string(),
    ] {
        assert!(err.contains(&words), "{words:?} not in\n{err}");
    }
    let plain = &upstream.url;
    assert!(
        run.stdout
            .contains(&format!("upstream /api -> {plain}: TCP connect OK")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("online check OK"));
}

#[tokio::test]
async fn token_resign_checks_the_route_and_its_mode_before_contacting_the_idp() {
    let key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let public = format!(
        "prefix = \"/public\"\nmode = \"passthrough\"\nupstream = \"{}\"\n",
        upstream.url
    );
    let config = ProxyBuilder::new(&idp)
        .route(&route("/api", &upstream.url, ""))
        .route(&public)
        .route(&route("/verify", &upstream.url, "mode = \"verify\""))
        .write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let path = config.to_str().unwrap();
    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
    let dry_run = |route: &'static str, token: String| {
        let args = ["token", "resign", "--config", path, "--route", route];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(token);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            resigner(&args, "", &[]).await
        }
    };

    let nope = dry_run("/nope", token.clone()).await;
    assert_eq!(nope.code, Some(1));
    assert!(
        nope.stderr
            .contains("no route has prefix \"/nope\" (routes: /api, /public, /verify)"),
        "{}",
        nope.stderr
    );
    let passthrough = dry_run("/public", token.clone()).await;
    passthrough.ok();
    assert!(
        passthrough.stdout.contains("mode = \"passthrough\"")
            && !passthrough.stdout.contains("authorization: Bearer"),
        "{}",
        passthrough.stdout
    );
    assert_eq!(idp.requests(), 0, "no request to the IdP so far");

    let slash = dry_run("/api/", token.clone()).await;
    slash.ok();
    assert!(slash.stdout.starts_with("verified against the IdP keys"));
    let verify = dry_run("/verify", token.clone()).await;
    verify.ok();
    assert!(
        verify.stdout.contains("forwarded unchanged")
            && verify
                .stdout
                .contains(&format!("authorization: Bearer {token}\n")),
        "{}",
        verify.stdout
    );
    let foreign = mint(&key, &claims("https://evil.example/", "https://api.test"));
    let rejected = dry_run("/api", foreign).await;
    assert_eq!(rejected.code, Some(1));
    let expected = format!(
        "issuer not accepted: iss \"https://evil.example/\", expected \"{}\"",
        idp.issuer
    );
    assert!(rejected.stderr.contains(&expected), "{}", rejected.stderr);
}

#[tokio::test]
async fn rejection_logs_say_what_came_and_what_was_expected_never_the_token() {
    let key = IdpKey::rs256("k1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let config = ProxyBuilder::new(&idp)
        .discover()
        .idp("require_typ = \"at+jwt\"")
        .api_route(&upstream)
        .write_config(dir.path(), &listen, &admin);
    let child = ServeChild::spawn(&config, &dir.path().join("serve.log"), "resigner=debug");
    child.publish_signing_key(&format!("http://{admin}")).await;

    let api = format!("http://{listen}/api/x");
    let good = claims(&idp.issuer, "https://api.test");
    let jwt_typ = raw_token(
        &key,
        r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
        &good.to_string(),
    );
    let foreign = mint(&key, &claims("https://evil.example/", "https://api.test"));
    let other_aud = mint(&key, &claims(&idp.issuer, "https://other.test"));
    let cases = [
        (
            &jwt_typ,
            "typ",
            "token type not accepted: typ \"JWT\", expected \"at+jwt\"",
        ),
        (
            &foreign,
            "issuer",
            &format!(
                "issuer not accepted: iss \"https://evil.example/\", expected \"{}\"",
                idp.issuer
            ) as &str,
        ),
        (
            &other_aud,
            "audience",
            "audience not accepted: aud \"https://other.test\", expected \"https://api.test\"",
        ),
    ];
    for (token, _, _) in &cases {
        let reply = get_bearer(&api, token).await;
        assert_eq!(reply.status, 401);
        let description = reply.json()["error_description"].clone();
        assert!(
            !description.as_str().unwrap().contains("expected"),
            "the client is told no more than before: {description}"
        );
    }
    assert_eq!(upstream.count(), 0);
    let events = child.log_events();
    drop(child);
    let rejected: Vec<&Value> = events
        .iter()
        .filter(|e| e["fields"]["message"] == "request rejected")
        .collect();
    for (_, reason, error) in &cases {
        assert!(
            rejected
                .iter()
                .any(|e| e["fields"]["reason"] == *reason && e["fields"]["error"] == *error),
            "no {reason} line saying {error:?}: {rejected:#?}"
        );
    }
    let discovered = events.iter().any(|e| {
        e["fields"]["message"] == "discovered the IdP's JWKS URI"
            && e["fields"]["jwks_uri"] == idp.jwks_uri()
    });
    assert!(discovered, "no debug line naming the discovered jwks_uri");
    let text = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    for token in [&jwt_typ, &foreign, &other_aud] {
        for part in token.split('.') {
            assert!(!text.contains(part), "a token segment in the log");
        }
    }
}
