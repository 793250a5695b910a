//! The accept queue (issue #17, section 2): with the default `[server] listen_backlog`
//! (4096), a burst of 1000 simultaneous connects to a running proxy, each then sending a
//! request, is served in full and the kernel never drops a connection from a full accept
//! queue (`ListenOverflows` in `/proc/net/netstat` does not move). With tokio's own backlog
//! of 128 (the code before the setting) the same burst moved it by hundreds.
//!
//! `ListenOverflows` counts for the whole network namespace, so a burst elsewhere on the
//! machine at the same moment would show here too; nothing else in this suite makes one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Barrier;

use crate::common::raw_client::read_until_close;
use crate::common::serve::{ServeChild, wait_for};
use crate::common::*;

const BURST: usize = 1000;

/// `TcpExt: ListenOverflows` from `/proc/net/netstat`.
fn listen_overflows() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").expect("/proc/net/netstat");
    let mut lines = text.lines().filter(|line| line.starts_with("TcpExt:"));
    let (names, values) = (lines.next().expect("names"), lines.next().expect("values"));
    let at = names
        .split_whitespace()
        .position(|name| name == "ListenOverflows")
        .expect("a ListenOverflows column");
    values
        .split_whitespace()
        .nth(at)
        .expect("a value")
        .parse()
        .expect("a number")
}

/// One client of the burst: connects when all are ready, asks for the JWKS, and returns
/// whether a 200 came back and how long the exchange took.
async fn client(addr: std::net::SocketAddr, start: Arc<Barrier>) -> (bool, Duration) {
    start.wait().await;
    let started = Instant::now();
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(20), TcpStream::connect(addr)).await
    else {
        return (false, started.elapsed());
    };
    let request = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return (false, started.elapsed());
    }
    let reply = read_until_close(&mut stream, Duration::from_secs(20)).await;
    (reply.status() == Some(200), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_connects_is_served_without_accept_queue_overflows() {
    let fixture = Fixture::start().await;
    let addr = fixture.proxy.running.public_addr;
    let start = Arc::new(Barrier::new(BURST));
    let before = listen_overflows();
    let clients: Vec<_> = (0..BURST)
        .map(|_| tokio::spawn(client(addr, start.clone())))
        .collect();
    let mut served = 0;
    let mut slowest = Duration::ZERO;
    for client in clients {
        let (ok, took) = client.await.expect("client task");
        served += usize::from(ok);
        slowest = slowest.max(took);
    }
    let overflows = listen_overflows() - before;
    eprintln!(
        "{BURST} connects: {served} served, slowest {slowest:?}, ListenOverflows +{overflows}"
    );
    assert_eq!(
        served, BURST,
        "slowest {slowest:?}, ListenOverflows +{overflows}"
    );
    assert_eq!(overflows, 0, "{served} served, slowest {slowest:?}");
}

#[tokio::test]
async fn a_backlog_above_the_kernel_cap_is_named_in_a_warning_at_start() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .expect("Linux keeps the cap here")
        .trim()
        .parse()
        .expect("a number");
    assert!(
        somaxconn < 65_535,
        "the kernel allows any backlog: nothing to warn about"
    );
    let idp = TestIdp::start(&[&IdpKey::rs256("k1")]).await;
    let dir = tempfile::tempdir().unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let config = ProxyBuilder::new(&idp)
        .server(&format!("listen_backlog = {}", somaxconn + 1))
        .write_config(dir.path(), &listen, &admin);
    let child = ServeChild::spawn(&config, &dir.path().join("serve.log"), "resigner=info");
    wait_for(&format!("http://{admin}/healthz"), 200).await;
    let events = child.log_events();
    let warned: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["fields"]["somaxconn"] == somaxconn)
        .collect();
    assert_eq!(warned.len(), 2, "one warning per listener: {events:#?}");
    for event in warned {
        assert_eq!(event["level"], "WARN", "{event}");
        assert_eq!(event["fields"]["listen_backlog"], somaxconn + 1, "{event}");
    }
}
