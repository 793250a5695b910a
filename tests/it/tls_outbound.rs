//! Outbound TLS on loopback, each server behind a [`TlsFront`] with a private test CA: an
//! https upstream verified with a route's `ca_file` (and refused without it), mTLS to an
//! upstream that requires a client certificate (the route's `client_cert`/`client_key`; no or
//! a foreign certificate gets 502), and the IdP's keys over https with `[idp] ca_file`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::common::tls::{TestCa, TlsFront};
use crate::common::*;

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// A route `prefix` -> `front` over https (prefix stripped).
fn https_route(prefix: &str, front: SocketAddr) -> Route {
    Route::new(prefix)
        .upstream(format!("https://127.0.0.1:{}", front.port()))
        .set("strip_prefix", true)
}

#[tokio::test]
async fn https_upstreams_are_verified_with_the_route_ca_file() {
    let builder = Fixture::builder().await;
    let upstream_ca = TestCa::new("upstream CA");
    let legacy = upstream_ca.server("legacy");
    let front = TlsFront::start(addr_of(&builder.upstream.url), &legacy, None).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = upstream_ca.write(dir.path(), "upstream-ca.pem");
    let fixture = builder
        .route(https_route("/private", front.addr).set("ca_file", &ca_file))
        .route(https_route("/public-roots", front.addr))
        .start()
        .await;
    let (proxy, upstream, token) = (&fixture.proxy, &fixture.upstream, fixture.token());

    let reply = get_bearer(&proxy.url("/private/orders"), &token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let seen = upstream.last();
    assert_eq!(seen.uri, "/orders");
    assert_ne!(seen.bearer(), token);

    let before = upstream.count();
    let reply = get_bearer(&proxy.url("/public-roots/orders"), &token).await;
    assert_eq!(
        reply.status, 502,
        "a private CA is not trusted without ca_file"
    );
    assert_eq!(upstream.count(), before, "nothing reached the upstream");
}

#[tokio::test]
async fn mtls_upstreams_get_the_route_client_certificate() {
    let builder = Fixture::builder().await;
    let server_ca = TestCa::new("upstream CA");
    let client_ca = TestCa::new("client CA");
    let front = TlsFront::start(
        addr_of(&builder.upstream.url),
        &server_ca.server("legacy"),
        Some(&client_ca),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = server_ca.write(dir.path(), "upstream-ca.pem");
    let (client_cert, client_key) = client_ca.client("resigner").write(dir.path(), "client");
    let (stranger_cert, stranger_key) = TestCa::new("stranger CA")
        .client("resigner")
        .write(dir.path(), "stranger");
    let trusting = |prefix| https_route(prefix, front.addr).set("ca_file", &ca_file);
    let identity = |prefix, cert: &Path, key: &Path| {
        trusting(prefix)
            .set("client_cert", cert)
            .set("client_key", key)
    };
    let fixture = builder
        .route(identity("/mtls", &client_cert, &client_key))
        .route(trusting("/no-cert"))
        .route(identity("/wrong-cert", &stranger_cert, &stranger_key))
        .start()
        .await;
    let (proxy, upstream, token) = (&fixture.proxy, &fixture.upstream, fixture.token());

    for _ in 0..3 {
        let reply = get_bearer(&proxy.url("/mtls/orders"), &token).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    assert_eq!(upstream.count(), 3);
    assert_eq!(
        front
            .failed_handshakes
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );

    for path in ["/no-cert/orders", "/wrong-cert/orders"] {
        let reply = get_bearer(&proxy.url(path), &token).await;
        assert_eq!(reply.status, 502, "{path}");
    }
    assert_eq!(
        upstream.count(),
        3,
        "nothing reached the upstream without a cert"
    );
    assert!(
        front
            .failed_handshakes
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 2
    );
}

#[tokio::test]
async fn idp_keys_are_fetched_over_https_with_the_idp_ca_file() {
    let builder = Fixture::builder().await;
    let idp_ca = TestCa::new("IdP CA");
    let front = TlsFront::start(builder.idp.addr, &idp_ca.server("idp"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = idp_ca.write(dir.path(), "idp-ca.pem");
    let jwks_uri = format!("https://127.0.0.1:{}/jwks.json", front.addr.port());

    let fixture = builder
        .jwks_uri(&jwks_uri)
        .idp("ca_file", &ca_file)
        .start()
        .await;
    let token = fixture.token();
    assert_eq!(get_bearer(&fixture.url("/api/x"), &token).await.status, 200);

    let untrusting = ProxyBuilder::new(&fixture.idp)
        .jwks_uri(&jwks_uri)
        .api_route(&fixture.upstream)
        .start()
        .await;
    assert!(
        !untrusting
            .running
            .wait_ready(Duration::from_millis(1500))
            .await,
        "without ca_file the IdP's private certificate is not trusted"
    );
    let error = untrusting.running.state.idps.all()[0]
        .last_error()
        .unwrap_or_default();
    assert!(
        error.contains("invalid peer certificate: UnknownIssuer"),
        "{error}"
    );
}
