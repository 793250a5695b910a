//! Observability: `/metrics` scraped after known traffic (exact counter values by label),
//! request ids kept, generated, forwarded and echoed, and `resigner serve --log-format json`
//! at `RUST_LOG=debug` never logging a token, its payload or a key, while every line of a
//! request carries its id.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::idp::Mode;
use crate::common::serve::ServeChild;
use crate::common::*;

/// The value of the sample `name{labels}`: exactly these labels, in any order.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<&str, &str> = labels.iter().copied().collect();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (found, labels) = match series.split_once('{') {
                Some((found, rest)) => (found, parse_labels(rest.strip_suffix('}')?)),
                None => (series, BTreeMap::new()),
            };
            let labels: BTreeMap<&str, &str> =
                labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            (found == name && labels == wanted).then(|| value.parse().ok())?
        })
}

/// `a="x",b="y"` (values may hold escaped quotes and backslashes).
fn parse_labels(text: &str) -> BTreeMap<&str, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => value.extend(chars.next().map(|(_, c)| c)),
                '"' => {
                    end = index + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(','), value);
        rest = &after[end..];
    }
    labels
}

/// Asserts `name{labels}` is exactly `expected`.
fn assert_sample(text: &str, name: &str, labels: &[(&str, &str)], expected: f64) {
    let value = sample(text, name, labels);
    assert_eq!(
        value,
        Some(expected),
        "{name}{labels:?} in:\n{}",
        text.lines()
            .filter(|l| l.contains(name))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

async fn scrape(proxy: &TestProxy) -> String {
    let reply = get(&proxy.admin_url("/metrics"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    String::from_utf8(reply.body.to_vec()).unwrap()
}

fn expired_claims(issuer: &str) -> Value {
    let now = resigner::jose::time::now_unix();
    let mut claims = claims(issuer, "https://api.test");
    claims["iat"] = json!(now - 1200);
    claims["exp"] = json!(now - 600);
    claims
}

#[tokio::test]
async fn metrics_count_known_traffic_exactly() {
    let key = IdpKey::rs256("k1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&idp)
        .idp("unknown_kid_cooldown = \"1s\"")
        .api_route(&upstream)
        .start()
        .await;
    proxy.ready().await;
    let kid = proxy.active_kid();
    let api = proxy.url("/api/orders");

    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
    assert_eq!(get_bearer(&api, &token).await.status, 200, "signed");
    assert_eq!(get_bearer(&api, &token).await.status, 200, "from the cache");
    let expired = mint(&key, &expired_claims(&idp.issuer));
    assert_eq!(get_bearer(&api, &expired).await.status, 401);
    assert_eq!(get(&api, &[]).await.status, 401, "no token");
    assert_eq!(get_bearer(&proxy.url("/nowhere"), &token).await.status, 404);
    let jwks = get(&proxy.url("/.well-known/jwks.json"), &[]).await;
    assert_eq!(jwks.status, 200);

    // An unknown kid: one refetch (ok), then the negative cache (suppressed), then after the
    // cooldown, with the IdP failing, a failed refetch.
    let stranger = mint(
        &IdpKey::rs256("stranger"),
        &claims(&idp.issuer, "https://api.test"),
    );
    assert_eq!(get_bearer(&api, &stranger).await.status, 401);
    assert_eq!(get_bearer(&api, &stranger).await.status, 401);
    idp.set_mode(Mode::Error500);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(get_bearer(&api, &stranger).await.status, 401);

    let reloads_before = proxy.counter(|m| &m.reloads_ok);
    proxy.running.state.metrics.record_reload(true);

    let text = scrape(&proxy).await;
    let requests = "resigner_requests_total";
    assert_sample(
        &text,
        requests,
        &[("route", "/api"), ("status", "200")],
        2.0,
    );
    assert_sample(
        &text,
        requests,
        &[("route", "/api"), ("status", "401")],
        5.0,
    );
    assert_sample(
        &text,
        requests,
        &[("route", "none"), ("status", "404")],
        1.0,
    );
    assert_sample(
        &text,
        requests,
        &[("route", "jwks"), ("status", "200")],
        1.0,
    );

    let failures = "resigner_verification_failures_total";
    assert_sample(&text, failures, &[("reason", "expired")], 1.0);
    assert_sample(&text, failures, &[("reason", "missing_token")], 1.0);
    assert_sample(&text, failures, &[("reason", "no_route")], 1.0);
    assert_sample(&text, failures, &[("reason", "unknown_kid")], 3.0);
    assert_eq!(sample(&text, failures, &[("reason", "signature")]), None);

    let lookups = "resigner_resign_cache_lookups_total";
    assert_sample(&text, lookups, &[("result", "hit")], 1.0);
    assert_sample(&text, lookups, &[("result", "miss")], 1.0);
    assert_sample(&text, "resigner_resign_cache_entries", &[], 1.0);
    let bytes = sample(&text, "resigner_resign_cache_weighted_bytes", &[]).unwrap();
    assert!(bytes > 160.0, "token + overhead: {bytes}");

    assert_sample(
        &text,
        "resigner_signatures_total",
        &[("kid", &kid), ("alg", "ES256")],
        1.0,
    );
    assert_sample(
        &text,
        "resigner_signature_duration_seconds_count",
        &[("alg", "ES256"), ("backend", "memory")],
        1.0,
    );
    assert_sample(&text, "resigner_upstream_duration_seconds_count", &[], 2.0);

    let fetches = "resigner_idp_jwks_fetches_total";
    // One IdP, named by default for its issuer's host and port.
    let name = proxy.running.state.idps.all()[0].name();
    assert!(idp.issuer.contains(&name), "{name}");
    let idp_label = ("idp", name.as_str());
    assert_sample(&text, fetches, &[idp_label, ("result", "ok")], 2.0);
    assert_sample(&text, fetches, &[idp_label, ("result", "suppressed")], 1.0);
    assert_sample(&text, fetches, &[idp_label, ("result", "failed")], 1.0);
    assert_sample(&text, "resigner_idp_jwks_loaded", &[idp_label], 1.0);
    assert_sample(&text, "resigner_idp_kid_collisions", &[], 0.0);
    let age = sample(&text, "resigner_idp_jwks_age_seconds", &[idp_label]).unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");

    assert_sample(
        &text,
        "resigner_admin_changes_total",
        &[("action", "put")],
        1.0,
    );
    assert_sample(
        &text,
        "resigner_config_reloads_total",
        &[("result", "ok")],
        (reloads_before + 1) as f64,
    );
    let upstream_errors = "resigner_upstream_errors_total";
    for kind in ["connect", "timeout", "other"] {
        assert_sample(&text, upstream_errors, &[("kind", kind)], 0.0);
    }

    for secret in [&token, &expired, &stranger] {
        for part in secret.split('.').skip(1) {
            assert!(!text.contains(part), "token content in /metrics");
        }
    }
    assert_eq!(proxy.counter(|m| &m.signatures), 1);
    assert_eq!(proxy.counter(|m| &m.cache_hits), 1);
}

#[tokio::test]
async fn upstream_errors_are_counted_by_kind() {
    let key = IdpKey::rs256("k1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let proxy = ProxyBuilder::new(&idp)
        .route(&format!(
            "prefix = \"/down\"\nupstream = \"http://{closed}\"\naudience = \"https://api.test\"\n"
        ))
        .route(&format!(
            "prefix = \"/slow\"\nupstream = \"{}\"\naudience = \"https://api.test\"\ntimeout = \"200ms\"\n",
            upstream.url
        ))
        .start()
        .await;
    proxy.ready().await;
    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
    assert_eq!(get_bearer(&proxy.url("/down/x"), &token).await.status, 502);
    upstream.set_delay(Duration::from_secs(2));
    assert_eq!(get_bearer(&proxy.url("/slow/x"), &token).await.status, 504);

    let text = scrape(&proxy).await;
    let errors = "resigner_upstream_errors_total";
    assert_sample(&text, errors, &[("kind", "connect")], 1.0);
    assert_sample(&text, errors, &[("kind", "timeout")], 1.0);
    assert_sample(&text, errors, &[("kind", "other")], 0.0);
    let requests = "resigner_requests_total";
    assert_sample(
        &text,
        requests,
        &[("route", "/down"), ("status", "502")],
        1.0,
    );
    assert_sample(
        &text,
        requests,
        &[("route", "/slow"), ("status", "504")],
        1.0,
    );
    assert!(
        !text.contains("reason=\"upstream"),
        "upstream failures are not verification failures"
    );
    assert_sample(&text, "resigner_upstream_duration_seconds_count", &[], 0.0);
}

fn request_id(reply: &Reply) -> String {
    reply
        .headers
        .get("x-request-id")
        .expect("X-Request-Id echoed")
        .to_str()
        .unwrap()
        .to_string()
}

fn is_generated(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[tokio::test]
async fn request_ids_are_kept_or_generated_forwarded_and_echoed() {
    let key = IdpKey::rs256("k1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&idp).api_route(&upstream).start().await;
    proxy.ready().await;
    let api = proxy.url("/api/x");
    let bearer = format!(
        "Bearer {}",
        mint(&key, &claims(&idp.issuer, "https://api.test"))
    );
    let auth = ("authorization", bearer.as_str());

    let kept = get(&api, &[auth, ("x-request-id", "client-id-42")]).await;
    assert_eq!(kept.status, 200);
    assert_eq!(request_id(&kept), "client-id-42");
    assert_eq!(
        upstream.last().header("x-request-id").as_deref(),
        Some("client-id-42"),
        "forwarded upstream"
    );
    let longest = "r".repeat(128);
    let kept = get(&api, &[auth, ("x-request-id", &longest)]).await;
    assert_eq!(request_id(&kept), longest);

    let generated = get(&api, &[auth]).await;
    let id = request_id(&generated);
    assert!(is_generated(&id), "{id}");
    assert_eq!(upstream.last().header("x-request-id"), Some(id.clone()));
    let other = request_id(&get(&api, &[auth]).await);
    assert!(is_generated(&other) && other != id, "a new id per request");

    let too_long = "z".repeat(129);
    for insane in [too_long.as_str(), "tab\there", ""] {
        let reply = get(&api, &[auth, ("x-request-id", insane)]).await;
        let id = request_id(&reply);
        assert!(is_generated(&id), "{insane:?} replaced, got {id}");
        let seen = upstream.last();
        assert_eq!(seen.header("x-request-id"), Some(id));
        assert_eq!(seen.headers.get_all("x-request-id").iter().count(), 1);
    }
    let two = get(
        &api,
        &[auth, ("x-request-id", "one"), ("x-request-id", "two")],
    )
    .await;
    assert!(is_generated(&request_id(&two)), "two ids: replaced");

    // Errors and the other endpoints echo it too.
    let forwarded = upstream.count();
    for (url, status) in [
        (api.clone(), 401),
        (proxy.url("/nowhere"), 404),
        (proxy.url("/.well-known/jwks.json"), 200),
        (proxy.admin_url("/healthz"), 200),
        (proxy.admin_url("/metrics"), 200),
    ] {
        let reply = get(&url, &[("x-request-id", "err-7")]).await;
        assert_eq!(reply.status, status, "{url}");
        assert_eq!(request_id(&reply), "err-7", "{url}");
        let reply = get(&url, &[]).await;
        assert!(is_generated(&request_id(&reply)), "{url}");
    }
    let bad = get(
        &api,
        &[("authorization", "Bearer a.b.c"), ("x-request-id", "bad-1")],
    )
    .await;
    assert_eq!(
        (bad.status.as_u16(), request_id(&bad).as_str()),
        (401, "bad-1")
    );
    assert_eq!(upstream.count(), forwarded, "nothing else was forwarded");
}

/// `resigner serve` as a child process logging JSON to `resigner.log` in `dir` under the
/// filter it is started with, its signing key published, one API route to `upstream`.
struct Logged {
    key: IdpKey,
    idp: TestIdp,
    upstream: TestUpstream,
    dir: tempfile::TempDir,
    listen: String,
    child: ServeChild,
}

impl Logged {
    async fn start(filter: &str) -> Logged {
        let key = IdpKey::rs256("k1");
        let idp = TestIdp::start(&[&key]).await;
        let upstream = TestUpstream::start().await;
        let dir = tempfile::tempdir().unwrap();
        let (listen, admin) = (free_addr(), free_addr());
        let config_path =
            ProxyBuilder::new(&idp)
                .api_route(&upstream)
                .write_config(dir.path(), &listen, &admin);
        let child = ServeChild::spawn(&config_path, &dir.path().join("resigner.log"), filter);
        child.publish_signing_key(&format!("http://{admin}")).await;
        Logged {
            key,
            idp,
            upstream,
            dir,
            listen,
            child,
        }
    }
}

#[tokio::test]
async fn json_logs_carry_request_ids_and_never_a_token_or_key() {
    let Logged {
        key,
        idp,
        upstream,
        dir,
        listen,
        child,
    } = Logged::start("debug").await;
    let log_path = dir.path().join("resigner.log");

    let api = format!("http://{listen}/api/x");
    let valid = mint(&key, &claims(&idp.issuer, "https://api.test"));
    let auth = format!("Bearer {valid}");
    let ok = get(
        &api,
        &[("authorization", &auth), ("x-request-id", "log-valid-1")],
    )
    .await;
    assert_eq!(ok.status, 200);
    let resigned = upstream.last().bearer();
    let mut forged = valid.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let bad = get(
        &api,
        &[
            ("authorization", &format!("Bearer {forged}")),
            ("x-request-id", "log-invalid-1"),
        ],
    )
    .await;
    assert_eq!(bad.status, 401);
    let expired = mint(&key, &expired_claims(&idp.issuer));
    let generated = request_id(&get_bearer(&api, &expired).await);
    drop(child);

    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 5, "{text}");
    let events: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();

    let mut secrets = vec![ADMIN_TOKEN.to_string()];
    for token in [&valid, &forged, &expired, &resigned] {
        secrets.push(token.to_string());
        secrets.extend(token.split('.').skip(1).map(str::to_string));
    }
    let pem = std::fs::read_to_string(dir.path().join("signing.pem")).unwrap();
    secrets.extend(
        pem.lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(str::to_string),
    );
    for line in &lines {
        for secret in &secrets {
            assert!(
                !line.contains(secret.as_str()),
                "secret in a log line: {line}"
            );
        }
    }

    let in_request = |id: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|event| event["span"]["request_id"] == id)
            .collect()
    };
    let message = |event: &Value| {
        event["fields"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let valid_lines = in_request("log-valid-1");
    assert!(
        valid_lines.iter().any(|e| message(e) == "token re-signed"
            && e["fields"]["token"] == resigner::proxy::token_fingerprint(&valid)),
        "the re-sign line names the token by fingerprint only: {valid_lines:?}"
    );
    assert!(valid_lines.iter().any(|e| message(e) == "response"));
    let invalid_lines = in_request("log-invalid-1");
    assert!(
        invalid_lines
            .iter()
            .any(|e| message(e) == "request rejected" && e["fields"]["reason"] == "signature"),
        "{invalid_lines:?}"
    );
    let expired_lines = in_request(&generated);
    assert!(
        expired_lines
            .iter()
            .any(|e| message(e) == "request rejected" && e["fields"]["reason"] == "expired"),
        "{expired_lines:?}"
    );
    for event in &events {
        if ["token re-signed", "request rejected"].contains(&message(event).as_str()) {
            assert!(
                event["span"]["request_id"].is_string(),
                "a request's line without its id: {event}"
            );
        }
    }
}

/// A filter on the request span alone (`[request]=debug`) writes the request's debug
/// "response" line: the proxy asks whether that line is enabled inside the span, as the line
/// is written, not before entering it.
#[tokio::test]
async fn a_filter_on_the_request_span_writes_its_response_line() {
    // Held whole: the IdP and the upstream stay up while the proxy runs.
    let logged = Logged::start("warn,[request]=debug").await;
    let (listen, child) = (&logged.listen, &logged.child);
    let reply = get(
        &format!("http://{listen}/no-route"),
        &[("x-request-id", "span-filter-1")],
    )
    .await;
    assert_eq!(reply.status, 404);
    let events = child.log_events();
    assert!(
        events.iter().any(|e| e["fields"]["message"] == "response"
            && e["span"]["request_id"] == "span-filter-1"
            && e["fields"]["status"] == 404),
        "{events:?}"
    );
}
