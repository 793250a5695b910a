//! What the admin listener says about a running proxy: `/admin/status` with the build
//! version, RFC 3339 times, uptime, bound listeners, routes, readiness and its reasons, and
//! each signing key's publication; `/metrics` with `resigner_build_info`, `resigner_ready` and
//! `resigner_signing_key_published{kid}`; `/healthz` and `/readyz` also for `HEAD`, as load
//! balancer probes send it.

use http::Method;
use serde_json::Value;

use crate::common::*;

/// `2026-12-02T06:10:03Z`.
fn is_rfc3339(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let bytes = text.as_bytes();
    bytes.len() == 20
        && bytes[4] == b'-'
        && bytes[10] == b'T'
        && bytes[19] == b'Z'
        && text[..4].parse::<u32>().is_ok_and(|year| year >= 2025)
}

/// The value of the series whose line starts with `series` (name and labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn status_names_version_listeners_routes_and_readiness_in_rfc3339() {
    let fixture = Fixture::start().await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let status = get(&proxy.admin_url("/admin/status"), &[]).await.json();

    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(is_rfc3339(&status["started_at"]), "{status:#}");
    assert!(is_rfc3339(&status["now"]), "{status:#}");
    assert!(status["uptime_seconds"].as_i64().is_some_and(|s| s >= 0));
    let listeners = &status["listeners"];
    assert_eq!(listeners["public"], proxy.running.public_addr.to_string());
    assert_eq!(listeners["admin"], proxy.running.admin_addr.to_string());
    assert_eq!(listeners["public_tls"], false);
    assert_eq!(status["routes"][0]["prefix"], "/api");
    assert_eq!(status["routes"][0]["mode"], "resign");
    assert_eq!(status["routes"][0]["upstream"], upstream.url);
    assert_eq!(status["ready"], true, "{status:#}");
    assert_eq!(status["not_ready_reasons"], serde_json::json!([]));
    // No reload yet: no time and no trigger rather than `"at": 0`.
    assert!(status["reload"]["at"].is_null(), "{status:#}");
    assert!(status["reload"]["trigger"].is_null(), "{status:#}");
    let key = &status["signing"]["keys"][0];
    assert_eq!(key["kid"], proxy.active_kid());
    assert_eq!(key["active"], true);
    assert_eq!(key["published"], true);
    assert!(is_rfc3339(&key["published_at"]), "{status:#}");
    assert!(is_rfc3339(&status["idps"][0]["fetched_at"]), "{status:#}");
}

#[tokio::test]
async fn metrics_show_build_readiness_and_each_signing_key() {
    let fixture = Fixture::start().await;
    let proxy = &fixture.proxy;
    let text =
        String::from_utf8(get(&proxy.admin_url("/metrics"), &[]).await.body.to_vec()).unwrap();
    let build = format!(
        "resigner_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &build), Some(1.0), "{text}");
    assert_eq!(sample(&text, "resigner_ready "), Some(1.0), "{text}");
    let kid = proxy.active_kid();
    let published = format!("resigner_signing_key_published{{kid=\"{kid}\"}}");
    assert_eq!(sample(&text, &published), Some(1.0), "{text}");
}

#[tokio::test]
async fn an_unpublished_signing_key_is_not_ready_with_the_reason_everywhere() {
    let fixture = Fixture::builder().await.unpublished().start().await;
    let proxy = &fixture.proxy;
    let kid = proxy.active_kid();

    let status = get(&proxy.admin_url("/admin/status"), &[]).await.json();
    assert_eq!(status["ready"], false, "{status:#}");
    let reasons = status["not_ready_reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| r.as_str().unwrap().contains(&kid)),
        "{status:#}"
    );
    assert_eq!(status["signing"]["keys"][0]["published"], false);
    assert!(status["signing"]["keys"][0]["problem"].is_string());

    let head = send(Method::HEAD, &proxy.admin_url("/readyz"), &[], b"").await;
    assert_eq!(head.status, 503, "HEAD /readyz says what GET says");
    assert!(head.body.is_empty());

    let text =
        String::from_utf8(get(&proxy.admin_url("/metrics"), &[]).await.body.to_vec()).unwrap();
    assert_eq!(sample(&text, "resigner_ready "), Some(0.0), "{text}");
    let published = format!("resigner_signing_key_published{{kid=\"{kid}\"}}");
    assert_eq!(sample(&text, &published), Some(0.0), "{text}");
}

#[tokio::test]
async fn probes_may_send_head_to_healthz_and_readyz() {
    let fixture = Fixture::start().await;
    let proxy = &fixture.proxy;
    for path in ["/healthz", "/readyz"] {
        let got = get(&proxy.admin_url(path), &[]).await;
        let head = send(Method::HEAD, &proxy.admin_url(path), &[], b"").await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(head.status, 200, "HEAD {path}");
        assert!(head.body.is_empty(), "{path}: HEAD has no body");
        assert_eq!(
            head.headers["content-length"],
            got.body.len().to_string().as_str(),
            "{path}: HEAD gives GET's length"
        );
        let post = send(Method::POST, &proxy.admin_url(path), &[], b"").await;
        assert_eq!(post.status, 405, "{path}");
        assert_eq!(post.headers["allow"], "GET, HEAD", "{path}");
    }
}
