//! The listener limits, each driven over raw TCP so the test sees exactly what hyper sends:
//! a slowloris client, or one that sends nothing, is cut off at `header_read_timeout` (closed
//! without an answer); a head over `max_header_bytes` or with more than `max_headers` fields
//! gets 431; a body that stalls for `body_read_timeout` gets 408 while a slow but steady one
//! passes; beyond `max_connections` a new connection waits until a slot frees.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Reads until the peer closes or `limit` passes; returns what arrived and whether it closed.
async fn read_until_close(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (seen, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (seen, true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

fn status_of(answer: &[u8]) -> String {
    String::from_utf8_lossy(answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A fixture with one `[server]` limit set.
async fn limited(key: &str, value: impl serde::Serialize) -> Fixture {
    Fixture::builder().await.server(key, value).start().await
}

fn head(token: &str, extra: &str) -> String {
    format!("GET /api/x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n{extra}\r\n")
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_at_the_header_read_timeout() {
    let fixture = limited("header_read_timeout", "500ms").await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let stream = TcpStream::connect(proxy.running.public_addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let dribble = tokio::spawn(async move {
        writer
            .write_all(b"GET /api/x HTTP/1.1\r\nHost: t\r\n")
            .await?;
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(100)).await;
            writer.write_all(format!("X-{i}: a\r\n").as_bytes()).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut answer)).await;
    let elapsed = started.elapsed();
    assert!(read.is_ok(), "the connection was not closed");
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(3),
        "closed after {elapsed:?}"
    );
    assert!(
        answer.is_empty(),
        "hyper closes without an answer: {answer:?}"
    );
    dribble.abort();
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn a_silent_connection_or_half_a_preface_is_closed_at_the_header_read_timeout() {
    let fixture = limited("header_read_timeout", "500ms").await;
    let proxy = &fixture.proxy;
    for (name, sent) in [
        ("nothing", &b""[..]),
        ("half an HTTP/2 preface", &b"PRI * HTTP/2.0\r\n"[..]),
    ] {
        let mut stream = TcpStream::connect(proxy.running.public_addr).await.unwrap();
        stream.write_all(sent).await.unwrap();
        let started = Instant::now();
        let (answer, closed) = read_until_close(&mut stream, Duration::from_secs(5)).await;
        let elapsed = started.elapsed();
        assert!(closed, "{name}: still open");
        assert!(answer.is_empty(), "{name}: {answer:?}");
        assert!(
            elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(3),
            "{name}: closed after {elapsed:?}"
        );
    }
}

#[tokio::test]
async fn oversized_heads_and_too_many_headers_get_431() {
    let fixture = Fixture::builder()
        .await
        .server("max_header_bytes", 8192)
        .server("max_headers", 20)
        .start()
        .await;
    let (addr, upstream, token) = (
        fixture.proxy.running.public_addr,
        &fixture.upstream,
        fixture.token(),
    );
    let exchange = |request: Vec<u8>| async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&request).await.unwrap();
        read_until_close(&mut stream, Duration::from_secs(5)).await
    };

    // Just under the limit: served.
    let filler = format!("X-Fill: {}\r\n", "a".repeat(6500));
    let (answer, _) =
        exchange(head(&token, &format!("{filler}Connection: close\r\n")).into_bytes()).await;
    assert_eq!(status_of(&answer), "HTTP/1.1 200 OK");

    // 8192 bytes and still no end of the head: 431, then the connection closes.
    let mut big = head(&token, &format!("X-Big: {}", "b".repeat(9000))).into_bytes();
    big.truncate(8192);
    let (answer, closed) = exchange(big).await;
    assert_eq!(
        status_of(&answer),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert!(closed);
    // A whole 20 KB head, as a real client sends it: the same 431.
    let whole = head(&token, &format!("X-Big: {}\r\n", "b".repeat(20_000)));
    let (answer, _) = exchange(whole.into_bytes()).await;
    assert_eq!(
        status_of(&answer),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );

    // 17 fields are fine, 24 are too many.
    let fields = |n: usize| (0..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
    let (answer, _) =
        exchange(head(&token, &(fields(14) + "Connection: close\r\n")).into_bytes()).await;
    assert_eq!(status_of(&answer), "HTTP/1.1 200 OK");
    let (answer, closed) = exchange(head(&token, &fields(22)).into_bytes()).await;
    assert_eq!(
        status_of(&answer),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert!(closed);
    assert_eq!(upstream.count(), 2, "only the two requests within limits");
}

#[tokio::test]
async fn a_stalled_request_body_gets_408_and_a_steady_one_passes() {
    let fixture = limited("body_read_timeout", "400ms").await;
    let (addr, upstream, token) = (
        fixture.proxy.running.public_addr,
        &fixture.upstream,
        fixture.token(),
    );
    let post = |length: usize| {
        format!(
            "POST /api/upload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: {length}\r\n\r\n"
        )
    };

    // Steady: 6 chunks 200 ms apart (1.2 s in all, each gap under the timeout).
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(post(60).as_bytes()).await.unwrap();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stream.write_all(&[b'x'; 10]).await.unwrap();
    }
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status_of(&buf[..n]), "HTTP/1.1 200 OK");
    assert_eq!(upstream.last().body.len(), 60);

    // Stalled: 10 of 100 bytes, then nothing.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(post(100).as_bytes()).await.unwrap();
    stream.write_all(&[b'y'; 10]).await.unwrap();
    let started = Instant::now();
    let (answer, closed) = read_until_close(&mut stream, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    assert_eq!(status_of(&answer), "HTTP/1.1 408 Request Timeout");
    assert!(
        String::from_utf8_lossy(&answer).contains("request_timeout"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(closed, "the connection is closed after the 408");
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(
        upstream.seen().iter().all(|seen| seen.body.len() != 100),
        "the upstream never got a whole body for the stalled request"
    );
}

/// Connects and sends a request for the JWKS; returns the stream.
async fn jwks_request(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn beyond_max_connections_new_connections_wait_for_a_free_slot() {
    let fixture = limited("max_connections", 2).await;
    let proxy = &fixture.proxy;
    let addr = proxy.running.public_addr;
    let idle_a = TcpStream::connect(addr).await.unwrap();
    let _idle_b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut waiting = jwks_request(addr).await;
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(700), waiting.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "answered while two connections were open: {early:?}"
    );
    // The admin listener has its own slots.
    assert_eq!(get(&proxy.admin_url("/healthz"), &[]).await.status, 200);

    let freed = Instant::now();
    drop(idle_a);
    let (answer, _) = read_until_close(&mut waiting, Duration::from_secs(5)).await;
    assert_eq!(status_of(&answer), "HTTP/1.1 200 OK");
    assert!(
        freed.elapsed() < Duration::from_secs(2),
        "{:?}",
        freed.elapsed()
    );
}
