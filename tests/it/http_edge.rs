//! The HTTP edge, byte for byte: hand-written requests on raw sockets against the public
//! listener, each with a valid token, one named row per case. Each row asserts what the
//! client got (a status, or a close without an answer), what reached the upstream (a
//! [`RawUpstream`] that frames requests with its own strict parser, so a smuggled second
//! request or a malformed forwarded one would show), and that a normal request afterwards
//! still succeeds.
//!
//! What hyper (1.x, HTTP/1 server) does with each, as the rows pin down:
//! - `Content-Length` with `Transfer-Encoding: chunked` (either order): chunked wins, the
//!   length is dropped and the connection closes after the response (RFC 9112 §6.3), so
//!   bytes after the chunked body are never read as a request: one request, re-framed.
//! - two different lengths, a list (`5, 5`), `chunked` not last, `Transfer-Encoding` on
//!   HTTP/1.0, obs-fold, a space before the colon, a bare CR, a NUL: 400 and close.
//! - bare LF line endings: accepted (RFC 9112 §2.2 allows it); the proxy re-serialises the
//!   request with CRLF, so both hops read the same message.
//! - a URI over hyper's 65,534-byte limit: 414; a head over `max_header_bytes`: 431; more
//!   than `max_headers` fields: 431.
//! - `Transfer-Encoding: gzip, chunked` is accepted by hyper (chunked is last); the accept
//!   loop refuses any coding but `chunked` with 400 and closes, before the proxy runs, since
//!   the proxy would otherwise forward a gzip body labelled as plain (`framing.rs` checks the
//!   close with a pipelined request behind it).
//! - `Connection: Authorization, X-Forwarded-For`: the named headers are dropped before the
//!   re-signed `Authorization` and the proxy's own `X-Forwarded-For` are set, so the upstream
//!   gets those and not the client's. An absolute-form target naming another host is routed
//!   by its path to the route's upstream, never to that host.
//!
//! A client that stops reading a large response holds only its own connection: backpressure
//! stops the upstream (about 10 MB of 256 MB in socket buffers), others are served, and its
//! upstream connection closes when it goes away. There is no response write timeout, so such
//! a client holds its slot until it closes (bounded by `max_connections`). A slowloris
//! client is cut off at `header_read_timeout` in `limits.rs`
//! (`a_slowloris_client_is_cut_off_at_the_header_read_timeout`).

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::common::raw_client::exchange;
use crate::common::raw_upstream::{Answer, RawRequest, RawUpstream};
use crate::common::*;

/// A fixture with `/api` -> a raw upstream (prefix stripped), changed by `more`.
async fn setup(
    answer: Answer,
    more: impl FnOnce(FixtureBuilder) -> FixtureBuilder,
) -> (Fixture, RawUpstream) {
    let upstream = RawUpstream::start(answer).await;
    let builder = Fixture::builder()
        .await
        .route(Route::api().upstream(&upstream.url));
    (more(builder).start().await, upstream)
}

/// One row: the bytes sent, the answer the client gets, and the check of the one request
/// the upstream then receives (`None`: it receives none).
struct Case {
    name: &'static str,
    request: fn(&str) -> Vec<u8>,
    got: Got,
    forwarded: Option<fn(&RawRequest, &str)>,
}

/// Who answered, and with what status. hyper answers a request it cannot parse itself, and
/// the accept loop one with an unsupported `Transfer-Encoding` (neither has an
/// `X-Request-Id`); the handlers' answers all carry one.
#[derive(Debug, PartialEq)]
enum Got {
    Hyper(u16),
    Resigner(u16),
}
use Got::{Hyper, Resigner};

fn post(token: &str, framing: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /api/x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n{framing}\
         Connection: close\r\n\r\n{body}"
    )
    .into_bytes()
}

fn get_with(token: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET /api/x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n{extra}\
         Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// A POST with `Transfer-Encoding: {value}` and the body `hello` in one chunk.
fn te(token: &str, value: &str) -> Vec<u8> {
    post(
        token,
        &format!("Transfer-Encoding: {value}\r\n"),
        "5\r\nhello\r\n0\r\n\r\n",
    )
}

/// A GET for request target `uri`.
fn target(token: &str, uri: &str) -> Vec<u8> {
    let text = String::from_utf8(get_with(token, "")).unwrap();
    text.replacen("/api/x", uri, 1).into_bytes()
}

/// A POST framed by `framing`, a chunked `hello`, then a second request in the same bytes.
fn smuggle(token: &str, framing: &str) -> Vec<u8> {
    let second = "GET /api/smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    post(token, framing, &format!("5\r\nhello\r\n0\r\n\r\n{second}"))
}

/// The upstream got `hello` as a chunked body (no `Content-Length` left).
fn hello_chunked(seen: &RawRequest, _: &str) {
    assert_eq!(seen.line, "POST /x HTTP/1.1");
    assert_eq!(seen.body, b"hello");
    assert_eq!(seen.all("transfer-encoding"), ["chunked"]);
    assert!(seen.all("content-length").is_empty(), "{:?}", seen.headers);
}

/// The upstream got `GET /x` with the re-signed token (issued by resigner), not the client's.
fn plain_get(seen: &RawRequest, token: &str) {
    assert_eq!(seen.line, "GET /x HTTP/1.1");
    let auth = seen.all("authorization");
    assert_eq!(auth.len(), 1, "{:?}", seen.headers);
    let resigned = auth[0].strip_prefix("Bearer ").expect("Bearer");
    assert_ne!(resigned, token);
    let payload = resigned.split('.').nth(1).expect("a JWS");
    let claims = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    let claims: serde_json::Value = serde_json::from_slice(&claims).expect("JSON");
    assert_eq!(claims["iss"], "https://resigner.test/");
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "content-length then chunked, a smuggled request after the body",
            request: |t| smuggle(t, "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"),
            got: Resigner(200),
            forwarded: Some(hello_chunked),
        },
        Case {
            name: "chunked then content-length, a smuggled request after the body",
            request: |t| smuggle(t, "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n"),
            got: Resigner(200),
            forwarded: Some(hello_chunked),
        },
        Case {
            name: "two different content-lengths",
            request: |t| post(t, "Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"),
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "a content-length list",
            request: |t| post(t, "Content-Length: 5, 5\r\n", "hello"),
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "two equal content-lengths are merged",
            request: |t| post(t, "Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
            got: Resigner(200),
            forwarded: Some(|seen, _| {
                assert_eq!(seen.all("content-length"), ["5"]);
                assert_eq!(seen.body, b"hello");
            }),
        },
        Case {
            name: "transfer-encoding gzip, chunked",
            request: |t| te(t, "gzip, chunked"),
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "transfer-encoding gzip and chunked on two lines",
            request: |t| te(t, "gzip\r\nTransfer-Encoding: chunked"),
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "transfer-encoding chunked, chunked",
            request: |t| te(t, "chunked, chunked"),
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "transfer-encoding chunked, gzip (chunked not last)",
            request: |t| te(t, "chunked, gzip"),
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "transfer-encoding on HTTP/1.0",
            request: |t| {
                let text = String::from_utf8(smuggle(t, "Transfer-Encoding: chunked\r\n"));
                text.unwrap()
                    .replacen("HTTP/1.1", "HTTP/1.0", 1)
                    .into_bytes()
            },
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "obs-fold (a line starting with a space)",
            request: |t| get_with(t, "X-Folded: a\r\n b\r\n"),
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "obs-fold continuing Transfer-Encoding",
            request: |t| te(t, "gzip\r\n ,chunked"),
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "a space before the colon",
            request: |t| post(t, "Content-Length : 5\r\n", "hello"),
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "bare LF line endings are read and forwarded with CRLF",
            request: |t| {
                let text = String::from_utf8(get_with(t, "X-Lf: yes\r\n")).unwrap();
                text.replace("\r\n", "\n").into_bytes()
            },
            got: Resigner(200),
            forwarded: Some(|seen, token| {
                plain_get(seen, token);
                assert_eq!(seen.all("x-lf"), ["yes"]);
            }),
        },
        Case {
            name: "a bare CR inside the head",
            request: |t| get_with(t, "X-Cr: a\rb\r\n"),
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "a NUL in a header value",
            request: |t| get_with(t, "X-Nul: a\0b\r\n"),
            got: Hyper(400),
            forwarded: None,
        },
        Case {
            name: "a URI over hyper's 65534-byte limit",
            request: |t| target(t, &format!("/api/{}", "u".repeat(65_535))),
            got: Hyper(414),
            forwarded: None,
        },
        Case {
            name: "a request line over max_header_bytes",
            // Well past the limit: hyper checks the buffered length only between reads,
            // which may take it past max_header_bytes, so a line just over the limit can be
            // read whole and answered 414 (a URI over hyper's own limit) instead.
            request: |t| target(t, &format!("/api/{}", "u".repeat(300_000))),
            got: Hyper(431),
            forwarded: None,
        },
        Case {
            name: "101 header fields (max_headers = 100)",
            request: |t| {
                let fields: String = (0..98).map(|i| format!("X-{i}: v\r\n")).collect();
                get_with(t, &fields)
            },
            got: Hyper(431),
            forwarded: None,
        },
        Case {
            name: "Connection names Authorization and X-Forwarded-For",
            request: |t| {
                let extra = "X-Forwarded-For: 6.6.6.6\r\nX-Secret: s\r\nX-Kept: k\r\n\
                             Connection: Authorization, X-Forwarded-For, X-Secret\r\n";
                get_with(t, extra)
            },
            got: Resigner(200),
            forwarded: Some(|seen, token| {
                plain_get(seen, token);
                assert_eq!(
                    seen.all("x-forwarded-for"),
                    ["127.0.0.1"],
                    "client's XFF dropped"
                );
                assert!(seen.all("x-secret").is_empty(), "{:?}", seen.headers);
                assert!(seen.all("connection").iter().all(|v| !v.contains("X-")));
                assert_eq!(seen.all("x-kept"), ["k"]);
            }),
        },
        Case {
            name: "absolute-form target naming another host",
            request: |t| target(t, "http://169.254.169.254/api/x"),
            got: Resigner(200),
            forwarded: Some(plain_get),
        },
    ]
}

#[tokio::test]
async fn hand_written_requests_are_refused_or_forwarded_once_and_well_formed() {
    let (fixture, upstream) = setup(Answer::Ok(2), |b| b.server("max_header_bytes", 131072)).await;
    let (proxy, token) = (&fixture.proxy, fixture.token());
    let addr = proxy.running.public_addr;
    let mut failures = vec![];
    for case in cases() {
        let before = upstream.requests().len();
        let reply = exchange(addr, &(case.request)(&token), Duration::from_secs(5)).await;
        let requests = upstream.requests();
        let forwarded = &requests[before..];
        let mut problems = vec![];
        let got = match (reply.status(), reply.header("x-request-id")) {
            (Some(status), None) => Some(Hyper(status)),
            (Some(status), Some(_)) => Some(Resigner(status)),
            (None, _) => None,
        };
        if got.as_ref() != Some(&case.got) {
            problems.push(format!("client got {got:?}: {:?}", reply.head()));
        }
        if !reply.closed {
            problems.push("connection still open".into());
        }
        match (case.forwarded, forwarded) {
            (None, []) => {}
            (Some(check), [one]) => {
                let caught = std::panic::catch_unwind(|| check(one, &token));
                if caught.is_err() {
                    problems.push(format!("forwarded request: {one:?}"));
                }
            }
            (_, seen) => problems.push(format!("upstream received {seen:?}")),
        }
        if !upstream.malformed().is_empty() {
            problems.push(format!(
                "malformed upstream bytes: {:?}",
                upstream.malformed()
            ));
        }
        // Still healthy: a normal request right after.
        let health = get_bearer(&proxy.url("/api/health"), &token).await;
        if health.status != 200 || upstream.requests().len() != requests.len() + 1 {
            problems.push(format!("proxy unhealthy afterwards: {}", health.status));
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn a_client_that_stops_reading_a_large_response_holds_only_its_own_connection() {
    const LARGE: usize = 256 * 1024 * 1024;
    let (fixture, upstream) = setup(Answer::Ok(LARGE), |b| b).await;
    let (proxy, token) = (&fixture.proxy, fixture.token());
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut stalled = socket.connect(proxy.running.public_addr).await.unwrap();
    let request =
        format!("GET /api/big HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n");
    stalled.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 64];
    stalled.read_exact(&mut head).await.unwrap();
    assert!(
        head.starts_with(b"HTTP/1.1 200 OK"),
        "{:?}",
        String::from_utf8_lossy(&head)
    );

    // The client reads no more: the upstream's writes stop once the buffers are full.
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let written = upstream.written();
        if written == last {
            break;
        }
        last = written;
    }
    eprintln!("a stalled client: {last} of {LARGE} bytes left the upstream");
    assert!(
        last < 64 * 1024 * 1024,
        "the proxy holds back: only {last} of {LARGE} bytes left the upstream"
    );

    // Meanwhile everyone else is served, on other connections.
    upstream.set_answer(Answer::Ok(2));
    for round in 0..10 {
        let started = Instant::now();
        let reply = get_bearer(&proxy.url("/api/x"), &token).await;
        assert_eq!(reply.status, 200, "round {round}");
        assert!(started.elapsed() < Duration::from_secs(2), "round {round}");
    }
    assert_eq!(
        get(&proxy.url("/.well-known/jwks.json"), &[]).await.status,
        200
    );
    let pooled = upstream.open() - 1;
    assert!(pooled <= 2, "{pooled} pooled besides the stalled one");

    // The client goes away: its upstream connection is closed, not kept.
    drop(stalled);
    let open = upstream
        .wait_open_at_most(pooled, Duration::from_secs(5))
        .await;
    assert!(open <= pooled, "{open} upstream connections still open");
    assert!(
        upstream.malformed().is_empty(),
        "{:?}",
        upstream.malformed()
    );
}
