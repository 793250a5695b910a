//! TLS listeners on loopback with certificates from a private test CA: the public and admin
//! listeners over HTTPS (HTTP/1.1 and HTTP/2 through ALPN, `X-Forwarded-Proto: https`), TLS
//! 1.0/1.1 refused, certificate reload (a new pair is picked up, a broken one keeps the old),
//! HTTP/2 header lists over the limit, TLS settings checked with the config, and the
//! `certs dev` output serving HTTPS. Outbound TLS is in `tls_outbound`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{Method, Version};
use resigner::http::tls::TlsError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::client::try_send;
use crate::common::tls::{Issued, TestCa, https_send, presented_cert};
use crate::common::*;

/// A fixture whose public listener serves `cert` and `key` over TLS, with the route `/api`.
async fn tls_fixture(cert: &Path, key: &Path) -> FixtureBuilder {
    Fixture::builder()
        .await
        .server("tls_cert", cert)
        .server("tls_key", key)
}

/// A fixture serving HTTPS with a certificate a test CA issued for `name`, written to `dir`
/// as `server.pem` and `server-key.pem`; `more` changes the fixture.
struct Https {
    ca: TestCa,
    dir: tempfile::TempDir,
    issued: Issued,
    cert: PathBuf,
    key: PathBuf,
    fixture: Fixture,
}

impl Https {
    async fn start(name: &str, more: impl FnOnce(FixtureBuilder) -> FixtureBuilder) -> Https {
        let ca = TestCa::new("test CA");
        let dir = tempfile::tempdir().unwrap();
        let issued = ca.server(name);
        let (cert, key) = issued.write(dir.path(), "server");
        let fixture = more(tls_fixture(&cert, &key).await).start().await;
        Https {
            ca,
            dir,
            issued,
            cert,
            key,
            fixture,
        }
    }
}

#[tokio::test]
async fn https_serves_http1_and_http2_and_forwards_proto_https() {
    let https = Https::start("resigner", |b| b).await;
    let (ca, fixture) = (&https.ca, &https.fixture);
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let port = proxy.running.public_addr.port();
    let token = fixture.token();
    let auth = format!("Bearer {token}");

    for (version, shown) in [
        (Version::HTTP_11, "HTTP/1.1"),
        (Version::HTTP_2, "HTTP/2.0"),
    ] {
        let url = format!("https://localhost:{port}/api/orders?x=1");
        let reply = https_send(
            ca.client_config(None),
            version,
            Method::POST,
            &url,
            &[("authorization", &auth)],
            b"payload",
        )
        .await
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert_eq!(reply.status, 200, "{shown}: {:?}", reply.body);
        assert_eq!(reply.headers["x-test-http-version"], shown);
        let seen = upstream.last();
        assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("https"));
        assert_eq!(seen.uri, "/orders?x=1");
        assert_eq!(seen.body, "payload");
        assert_ne!(seen.bearer(), token, "{shown}: the token is re-signed");
    }

    let jwks = format!("https://127.0.0.1:{port}/.well-known/jwks.json");
    let reply = https_send(
        ca.client_config(None),
        Version::HTTP_2,
        Method::GET,
        &jwks,
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    assert!(!reply.json()["keys"].as_array().unwrap().is_empty());

    let plain = try_send(Method::GET, &proxy.url("/.well-known/jwks.json"), &[], b"").await;
    assert!(plain.is_err(), "plain HTTP to the TLS port: {plain:?}");
    let untrusted = https_send(
        TestCa::new("another CA").client_config(None),
        Version::HTTP_11,
        Method::GET,
        &jwks,
        &[],
        b"",
    )
    .await;
    assert!(untrusted.is_err(), "{untrusted:?}");
}

#[tokio::test]
async fn the_admin_listener_serves_https_too() {
    let ca = TestCa::new("test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca.server("admin").write(dir.path(), "admin");
    let fixture = Fixture::builder()
        .await
        .unpublished()
        .admin("tls_cert", &cert)
        .admin("tls_key", &key)
        .start()
        .await;
    let proxy = &fixture.proxy;
    let url = format!(
        "https://localhost:{}/healthz",
        proxy.running.admin_addr.port()
    );
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let reply = https_send(ca.client_config(None), version, Method::GET, &url, &[], b"")
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
    }
    assert!(
        try_send(Method::GET, &proxy.admin_url("/healthz"), &[], b"")
            .await
            .is_err()
    );
    // The public listener stays plain HTTP.
    assert_eq!(
        get(&proxy.url("/.well-known/jwks.json"), &[]).await.status,
        200
    );
}

/// A ClientHello offering only `version` (0x0301 TLS 1.0, 0x0302 TLS 1.1), with only the
/// signature_algorithms extension (rustls wants it before it looks at the version).
fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend([7u8; 32]); // random
    body.push(0); // session id
    body.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, RSA-AES128-SHA
    body.extend([0x01, 0x00]); // compression: null
    // extensions: signature_algorithms = ecdsa_secp256r1_sha256, rsa_pkcs1_sha256
    body.extend([
        0x00, 0x0a, 0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x04, 0x01,
    ]);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend((body.len() as u16).to_be_bytes());
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

#[tokio::test]
async fn tls_1_0_and_1_1_clients_are_refused_and_1_2_works() {
    let https = Https::start("resigner", |b| b).await;
    let (ca, addr) = (&https.ca, https.fixture.proxy.running.public_addr);

    for (version, name) in [([3, 1], "TLS 1.0"), ([3, 2], "TLS 1.1")] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(&legacy_client_hello(version))
            .await
            .unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer));
        let _ = read.await.expect("the server answers and closes");
        // An alert record: type 21, length 2, level fatal (2), protocol_version (70).
        assert_eq!(answer.first(), Some(&21), "{name}: {answer:?}");
        assert_eq!(&answer[3..], [0, 2, 2, 70], "{name}: {answer:?}");
    }

    let tls12 = ca.client_config_with(&[&rustls::version::TLS12], None);
    let url = format!("https://localhost:{}/.well-known/jwks.json", addr.port());
    let reply = https_send(tls12, Version::HTTP_11, Method::GET, &url, &[], b"")
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_reloaded_certificate_is_served_and_a_broken_one_keeps_the_old() {
    let Https {
        ca,
        dir,
        issued: first,
        cert,
        key,
        fixture,
    } = Https::start("first", |b| b).await;
    let addr = fixture.proxy.running.public_addr;
    let resolvers = fixture.proxy.running.cert_resolvers();
    assert_eq!(resolvers.len(), 1, "only the public listener has TLS");
    let resolver = &resolvers[0];
    assert_eq!(resolver.watched_files(), [&*cert, &*key]);
    assert_eq!(presented_cert(addr, &ca).await, first.chain()[0]);

    let second = ca.server("second");
    second.write(dir.path(), "server");
    resolver.reload().expect("a valid new pair reloads");
    assert_eq!(presented_cert(addr, &ca).await, second.chain()[0]);

    // A certificate whose key is not the one on disk: refused, the second pair stays.
    std::fs::write(&cert, ca.server("third").cert_pem).unwrap();
    let err = resolver.reload().unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("server-key.pem"), "{err}");
    assert_eq!(presented_cert(addr, &ca).await, second.chain()[0]);

    // A half-written file: refused too.
    std::fs::write(&cert, &second.cert_pem[..second.cert_pem.len() / 2]).unwrap();
    let err = resolver.reload().unwrap_err();
    assert!(err.to_string().contains("server.pem"), "{err}");
    assert_eq!(presented_cert(addr, &ca).await, second.chain()[0]);

    let url = format!("https://localhost:{}/.well-known/jwks.json", addr.port());
    let reply = https_send(
        ca.client_config(None),
        Version::HTTP_2,
        Method::GET,
        &url,
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "still serving after failed reloads");
}

#[tokio::test]
async fn tls_settings_are_checked_with_the_config() {
    let ca = TestCa::new("test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = ca.server("a").write(dir.path(), "a");
    let (_, other_key) = ca.server("b").write(dir.path(), "b");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let route = |prefix, upstream| Route::new(prefix).upstream(upstream).set("audience", "a");
    let builder = tls_fixture(&cert, &other_key)
        .await
        .admin("tls_cert", &cert)
        .route(route("/plain", "http://127.0.0.1:1").set("ca_file", &ca_file))
        .route(route("/half", "https://127.0.0.1:1").set("client_cert", &cert))
        .idp("ca_file", "missing-ca.pem");
    let config_dir = tempfile::tempdir().unwrap();
    let path = builder.write_config(config_dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let err = resigner::load_config(&path).unwrap_err();
    let problems = err.problems().join("\n");
    for expected in [
        "server.tls_key: ",
        "does not belong to the certificate",
        "admin.tls_key: is required with tls_cert",
        "routes[0].upstream: ca_file, client_cert and client_key need an https:// upstream",
        "routes[1].client_key: is required with client_cert",
        "idp.ca_file: cannot read ",
        "missing-ca.pem",
    ] {
        assert!(problems.contains(expected), "{expected:?} in\n{problems}");
    }
}

#[tokio::test]
async fn http2_header_lists_over_max_header_bytes_get_431() {
    let https = Https::start("resigner", |b| b.server("max_header_bytes", 16384)).await;
    let (ca, proxy, upstream) = (&https.ca, &https.fixture.proxy, &https.fixture.upstream);
    let url = format!(
        "https://localhost:{}/.well-known/jwks.json",
        proxy.running.public_addr.port()
    );
    let small = "a".repeat(8_000);
    let big = "b".repeat(20_000);
    let send = |value: String| {
        let (config, url) = (ca.client_config(None), url.clone());
        async move {
            https_send(
                config,
                Version::HTTP_2,
                Method::GET,
                &url,
                &[("x-fill", &value)],
                b"",
            )
            .await
        }
    };
    let reply = send(small).await.unwrap();
    assert_eq!(reply.status, 200);
    // h2 answers 431 on the stream (HTTP/1 gets the same status; see limits.rs).
    let reply = send(big).await.unwrap();
    assert_eq!(reply.status, 431);
    assert_eq!(reply.headers["x-test-http-version"], "HTTP/2.0");
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn certs_dev_writes_a_ca_and_a_localhost_certificate_that_serve_https() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let run = |out: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_resigner"))
                .args(["certs", "dev", "--out"])
                .arg(out)
                .env("RUST_LOG", "off")
                .output()
                .unwrap()
        })
    };
    let first = run(out.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{stdout}");
    assert!(
        stdout.contains("tls_cert = ") && stdout.contains("--cacert"),
        "{stdout}"
    );
    let (ca, cert, key) = (
        out.join("dev-ca.pem"),
        out.join("localhost.pem"),
        out.join("localhost-key.pem"),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let before = std::fs::read(&key).unwrap();
    let second = run(out.clone()).await.unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&key).unwrap(), before);

    let fixture = tls_fixture(&cert, &key).await.start().await;
    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = std::fs::read(&ca).unwrap();
    for der in CertificateDer::pem_slice_iter(&ca_pem) {
        roots.add(der.unwrap()).unwrap();
    }
    for host in ["localhost", "127.0.0.1"] {
        let client = rustls::ClientConfig::builder_with_provider(resigner::http::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        let port = fixture.proxy.running.public_addr.port();
        let url = format!("https://{host}:{port}/.well-known/jwks.json");
        let reply = https_send(client, Version::HTTP_2, Method::GET, &url, &[], b"")
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(reply.status, 200, "{host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_watcher_reloads_a_rewritten_certificate() {
    let Https {
        ca,
        dir,
        issued: first,
        key,
        fixture,
        ..
    } = Https::start("first", |b| b).await;
    let (reloader, _tasks) = fixture.proxy.watch();
    let addr = fixture.proxy.running.public_addr;
    assert_eq!(presented_cert(addr, &ca).await, first.chain()[0]);

    let second = ca.server("second");
    second.write(dir.path(), "server");
    let mut served = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if reloader.status().succeeded >= 1 {
            served = Some(presented_cert(addr, &ca).await);
            break;
        }
    }
    assert_eq!(
        served,
        Some(second.chain()[0].clone()),
        "{:?}",
        reloader.status()
    );

    // A key that does not match the certificate fails the reload; the old pair keeps serving.
    std::fs::write(&key, ca.server("third").key_pem).unwrap();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if reloader.status().failed >= 1 {
            break;
        }
    }
    let status = reloader.status();
    assert_eq!(status.failed, 1, "{status:?}");
    assert!(
        status
            .errors
            .iter()
            .any(|e| e.contains("server.tls_key") && e.contains("does not belong")),
        "{status:?}"
    );

    assert_eq!(presented_cert(addr, &ca).await, second.chain()[0]);
}
