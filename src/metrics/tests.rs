//! Unit tests of the registry: names, labels and values as Prometheus sees them.

use super::*;

fn lines(metrics: &Metrics) -> Vec<String> {
    metrics
        .render(&Scrape::default())
        .lines()
        .map(str::to_string)
        .collect()
}

fn has(lines: &[String], line: &str) -> bool {
    lines.iter().any(|l| l == line)
}

#[test]
fn the_last_series_is_per_instance_route_and_status() {
    let (one, two) = (Metrics::new(), Metrics::new());
    for _ in 0..3 {
        one.record_request("/api", StatusCode::OK);
        two.record_request("/api", StatusCode::OK);
        one.record_request("/api", StatusCode::OK);
        one.record_request("/apix", StatusCode::OK);
        one.record_request("/api", StatusCode::NOT_FOUND);
    }
    let (one, two) = (lines(&one), lines(&two));
    for expected in [
        "resigner_requests_total{route=\"/api\",status=\"200\"} 6",
        "resigner_requests_total{route=\"/apix\",status=\"200\"} 3",
        "resigner_requests_total{route=\"/api\",status=\"404\"} 3",
    ] {
        assert!(has(&one, expected), "{expected}");
    }
    assert!(has(
        &two,
        "resigner_requests_total{route=\"/api\",status=\"200\"} 3"
    ));
}

#[test]
fn families_render_with_their_labels() {
    let metrics = Metrics::new();
    metrics.record_request("/api", StatusCode::OK);
    metrics.record_request("/api", StatusCode::OK);
    metrics.record_request(NO_ROUTE, StatusCode::NOT_FOUND);
    metrics.record_failure("expired");
    metrics.record_signature("key-1", Alg::ES256, "memory", Duration::from_micros(60));
    metrics.record_signature("key-1", Alg::ES256, "memory", Duration::from_micros(60));
    metrics.record_signature("key-2", Alg::RS256, "memory", Duration::from_millis(3));
    metrics.record_signing_error("pkcs11", "unavailable");
    metrics.record_upstream_error(UpstreamError::Timeout);
    metrics.record_admin_change(AdminAction::Delete);
    metrics.record_reload(false);
    Metrics::inc(&metrics.cache_hits);
    let series = metrics.idp_series("corp");
    series.ok(&metrics);
    series.ok(&metrics);
    metrics.idp_series("partner").failed(&metrics);
    metrics.set_idp_kid_collisions(1);
    let lines = lines(&metrics);
    for expected in [
        "resigner_requests_total{route=\"/api\",status=\"200\"} 2",
        "resigner_requests_total{route=\"none\",status=\"404\"} 1",
        "resigner_verification_failures_total{reason=\"expired\"} 1",
        "resigner_signatures_total{kid=\"key-1\",alg=\"ES256\"} 2",
        "resigner_signatures_total{kid=\"key-2\",alg=\"RS256\"} 1",
        "resigner_signature_duration_seconds_count{alg=\"ES256\",backend=\"memory\"} 2",
        "resigner_signing_errors_total{backend=\"pkcs11\",kind=\"unavailable\"} 1",
        "resigner_upstream_errors_total{kind=\"timeout\"} 1",
        "resigner_upstream_errors_total{kind=\"connect\"} 0",
        "resigner_admin_changes_total{action=\"delete\"} 1",
        "resigner_config_reloads_total{result=\"failed\"} 1",
        "resigner_config_reloads_total{result=\"ok\"} 0",
        "resigner_resign_cache_lookups_total{result=\"hit\"} 1",
        "resigner_idp_jwks_fetches_total{idp=\"corp\",result=\"ok\"} 2",
        "resigner_idp_jwks_fetches_total{idp=\"corp\",result=\"suppressed\"} 0",
        "resigner_idp_jwks_fetches_total{idp=\"partner\",result=\"failed\"} 1",
        "resigner_idp_kid_collisions 1",
        "# TYPE resigner_upstream_duration_seconds histogram",
    ] {
        assert!(
            has(&lines, expected),
            "{expected} missing from:\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(Metrics::get(&metrics.signatures), 3);
    assert_eq!(Metrics::get(&metrics.requests), 3);
    assert_eq!(
        Metrics::get(&metrics.idp_fetch_ok),
        2,
        "totals count every IdP"
    );
    assert_eq!(Metrics::get(&metrics.idp_fetch_failed), 1);
}

#[test]
fn scrape_state_sets_the_gauges() {
    let metrics = Metrics::new();
    let text = metrics.render(&Scrape {
        idps: vec![
            IdpScrape {
                name: "corp".into(),
                age: Some(Duration::from_millis(1500)),
                loaded: true,
            },
            IdpScrape {
                name: "partner".into(),
                age: None,
                loaded: false,
            },
        ],
        cache_entries: 3,
        cache_weighted_bytes: 700,
        ready: true,
        signing_keys: vec![("a".into(), true), ("b".into(), false)],
        store: crate::keys::store::StoreStatus {
            reachable: true,
            version: 7,
            last_sync: Some(1_700_000_000),
            notifications: 4,
            polls: 2,
            reconnects: 1,
            ..Default::default()
        },
    });
    for expected in [
        "resigner_ready 1",
        "resigner_signing_key_published{kid=\"a\"} 1",
        "resigner_signing_key_published{kid=\"b\"} 0",
        "resigner_idp_jwks_age_seconds{idp=\"corp\"} 1.5",
        "resigner_idp_jwks_loaded{idp=\"corp\"} 1",
        "resigner_idp_jwks_age_seconds{idp=\"partner\"} NaN",
        "resigner_idp_jwks_loaded{idp=\"partner\"} 0",
        "resigner_resign_cache_entries 3",
        "resigner_resign_cache_weighted_bytes 700",
        "resigner_store_reachable 1",
        "resigner_store_version 7",
        "resigner_store_last_sync_timestamp_seconds 1700000000",
        "resigner_store_notifications_total 4",
        "resigner_store_polls_total 2",
        "resigner_store_reconnects_total 1",
    ] {
        assert!(text.lines().any(|l| l == expected), "{expected}:\n{text}");
    }
    // A key that left the config (reload) has no series after the next scrape.
    let text = metrics.render(&Scrape {
        signing_keys: vec![("b".into(), true)],
        ..Scrape::default()
    });
    assert!(!text.contains("kid=\"a\""), "{text}");
    assert!(!text.contains("resigner_idp_jwks_loaded{"), "{text}");
    assert!(text.contains("resigner_store_reachable 0\n"), "{text}");
    assert!(
        text.contains("resigner_store_notifications_total 4\n"),
        "a counter keeps its total: {text}"
    );
    assert!(
        text.contains("resigner_signing_key_published{kid=\"b\"} 1"),
        "{text}"
    );
}
