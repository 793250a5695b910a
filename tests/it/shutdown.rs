//! Graceful shutdown with a slow upstream: once shutdown starts, new connections are refused
//! while the request in flight completes; the drain timeout bounds the wait; and `resigner
//! serve` run as a child process drains on SIGTERM and exits 0. Both schedulers (per-core
//! workers, work stealing) serve concurrent connections and drain.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use tokio::net::TcpStream;

use crate::common::client::try_send;
use crate::common::*;

/// Starts a request to `/api/slow` that the upstream answers after its delay.
fn in_flight(url: String, token: &str) -> tokio::task::JoinHandle<Result<Reply, String>> {
    let auth = format!("Bearer {token}");
    tokio::spawn(async move { try_send(Method::GET, &url, &[("authorization", &auth)], b"").await })
}

async fn refused(addr: std::net::SocketAddr) -> bool {
    matches!(
        TcpStream::connect(addr).await,
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Both schedulers (`[server] scheduler`): concurrent connections are all served with
/// re-signed tokens, and a request in flight when shutdown starts still completes. In process,
/// `work_stealing` serves on the test's own runtime (`workers` sizes the runtime only in
/// `resigner serve`); per-core workers start their own threads either way.
#[tokio::test]
async fn per_core_workers_and_the_shared_runtime_serve_concurrent_connections_and_drain() {
    for (scheduler, workers) in [("per_core", 3), ("work_stealing", 2)] {
        let fixture = Fixture::builder()
            .await
            .server("scheduler", scheduler)
            .server("workers", workers)
            .start()
            .await;
        let (proxy, upstream, token) = (&fixture.proxy, &fixture.upstream, fixture.token());
        let requests: Vec<_> = (0..24)
            .map(|i| in_flight(proxy.url(&format!("/api/{i}")), &token))
            .collect();
        for request in requests {
            let reply = request.await.unwrap().expect("answered");
            assert_eq!(reply.status, 200, "{scheduler}");
        }
        assert_eq!(upstream.count(), 24, "{scheduler}");
        let forwarded = upstream.last().header("authorization").expect("a token");
        assert!(forwarded.starts_with("Bearer ey"), "{scheduler}");
        assert_ne!(
            forwarded,
            format!("Bearer {token}"),
            "{scheduler}: re-signed"
        );

        upstream.set_delay(Duration::from_millis(800));
        let slow = in_flight(proxy.url("/api/slow"), &token);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let addr = proxy.running.public_addr;
        let shutdown = tokio::spawn(fixture.proxy.running.shutdown(Duration::from_secs(10)));
        let reply = slow
            .await
            .unwrap()
            .expect("the in-flight request completes");
        assert_eq!(reply.status, 200, "{scheduler}");
        shutdown.await.unwrap();
        assert!(
            refused(addr).await,
            "{scheduler}: every worker closed the socket"
        );
    }
}

#[tokio::test]
async fn in_flight_requests_finish_after_shutdown_starts_and_new_connections_are_refused() {
    let fixture = Fixture::start().await;
    let (upstream, token) = (&fixture.upstream, fixture.token());
    upstream.set_delay(Duration::from_millis(1500));
    let request = in_flight(fixture.url("/api/slow"), &token);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(upstream.count(), 1, "the request is at the upstream");

    let addr = fixture.proxy.running.public_addr;
    let started = Instant::now();
    let shutdown = tokio::spawn(fixture.proxy.running.shutdown(Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        refused(addr).await,
        "new connections are refused while draining"
    );

    let reply = request
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(reply.status, 200);
    shutdown.await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(5),
        "shutdown waited for the request, not for the drain timeout: {took:?}"
    );
}

/// A client that connected and sent nothing yet (a browser's preconnect, a balancer's spare
/// connection) neither holds the drain nor outlives it: it is closed when the drain starts,
/// not at `header_read_timeout`.
#[tokio::test]
async fn a_connection_that_sent_nothing_is_closed_by_the_drain_at_once() {
    use tokio::io::AsyncReadExt;
    let fixture = Fixture::builder()
        .await
        .server("header_read_timeout", "30s")
        .start()
        .await;
    let mut silent = TcpStream::connect(fixture.proxy.running.public_addr)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    fixture
        .proxy
        .running
        .shutdown(Duration::from_secs(20))
        .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the drain waited for it: {took:?}"
    );
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "closed by the drain: {read:?}"
    );
}

#[tokio::test]
async fn the_drain_timeout_bounds_the_wait() {
    let fixture = Fixture::start().await;
    fixture.upstream.set_delay(Duration::from_secs(10));
    let request = in_flight(fixture.url("/api/slow"), &fixture.token());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    fixture
        .proxy
        .running
        .shutdown(Duration::from_millis(400))
        .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let outcome = tokio::time::timeout(Duration::from_secs(2), request)
        .await
        .expect("the request ends with the drain timeout")
        .unwrap();
    assert!(outcome.is_err(), "closed, not answered: {outcome:?}");
}

/// A child process killed (and reaped) when dropped, so a failed test leaves none behind.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `resigner serve` and waits until it is ready (IdP keys loaded, key published).
async fn serve_ready(config: &std::path::Path, admin: &str) -> Serve {
    let child = Serve(
        Command::new(env!("CARGO_BIN_EXE_resigner"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("resigner serve starts"),
    );
    let jwk = resigner::load_config(config)
        .unwrap()
        .signing
        .active()
        .expect("the active key is connected")
        .public_jwk()
        .to_json();
    let body = serde_json::json!({ "keys": [jwk] }).to_string();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let admin = format!("http://{admin}");
    let mut published = false;
    for _ in 0..400 {
        if !published {
            let put = try_send(
                Method::PUT,
                &format!("{admin}/api/v2/keys/custom-signing"),
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body.as_bytes(),
            )
            .await;
            published = put.is_ok_and(|reply| reply.status == 200);
        } else if try_send(Method::GET, &format!("{admin}/readyz"), &[], b"")
            .await
            .is_ok_and(|reply| reply.status == 200)
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("resigner serve did not become ready");
}

#[tokio::test]
async fn resigner_serve_drains_on_sigterm_and_exits_0() {
    let servers = Fixture::builder().await.server("drain_timeout", "20s");
    let upstream = &servers.upstream;
    let dir = tempfile::tempdir().unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let config = servers.write_config(dir.path(), &listen, &admin);
    let mut child = serve_ready(&config, &admin).await;
    let pid = child.0.id().to_string();
    let token = servers.token();
    upstream.set_delay(Duration::from_millis(1500));
    let request = in_flight(format!("http://{listen}/api/slow"), &token);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(upstream.count(), 1, "the request is at the upstream");

    let started = Instant::now();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        refused(listen.parse().unwrap()).await,
        "new connections are refused after SIGTERM"
    );
    let reply = request
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(reply.status, 200);

    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap()
    .expect("resigner exits after draining");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}
