//! Closing after a request-framing error (issue #17, section 3): once the end of a request
//! is in doubt, nothing after it on that connection can be trusted. Each row sends a request
//! with bad framing and, in the same write, a valid pipelined request; the client must get
//! exactly one response, a 400 with `Connection: close`, then EOF, and the upstream must
//! see neither request. Where each error is caught: hyper refuses conflicting or invalid
//! `Content-Length`, `chunked` not last and `Transfer-Encoding` on HTTP/1.0 while parsing
//! the head; the accept loop refuses any other coding list (`gzip, chunked`, `chunked,
//! chunked`) before a handler runs, on both listeners; a bad chunk size is found while the
//! proxy reads the body.

use std::time::Duration;

use crate::common::raw_client::exchange;
use crate::common::raw_upstream::{Answer, RawUpstream};
use crate::common::*;

/// A valid request that must never be answered or forwarded when it follows bad framing.
const SECOND: &str = "GET /api/second HTTP/1.1\r\nHost: t\r\n\r\n";

/// A POST to `path` with `framing` headers and `body`, then [`SECOND`], in one write.
fn pipelined(token: &str, path: &str, framing: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n{framing}\r\n\
         {body}{SECOND}"
    )
    .into_bytes()
}

const HELLO_CHUNKED: &str = "5\r\nhello\r\n0\r\n\r\n";

/// (name, path, framing headers, body): every request-framing error resigner refuses.
fn cases() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    let te = "Transfer-Encoding: chunked\r\n";
    vec![
        (
            "gzip, chunked",
            "/api/x",
            "Transfer-Encoding: gzip, chunked\r\n",
            HELLO_CHUNKED,
        ),
        (
            "gzip and chunked on two lines",
            "/api/x",
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            HELLO_CHUNKED,
        ),
        (
            "chunked, chunked",
            "/api/x",
            "Transfer-Encoding: chunked, chunked\r\n",
            HELLO_CHUNKED,
        ),
        (
            "chunked, gzip",
            "/api/x",
            "Transfer-Encoding: chunked, gzip\r\n",
            HELLO_CHUNKED,
        ),
        (
            "gzip, chunked to the JWKS path",
            "/.well-known/jwks.json",
            "Transfer-Encoding: gzip, chunked\r\n",
            HELLO_CHUNKED,
        ),
        (
            "gzip, chunked with a content-length",
            "/api/x",
            "Content-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n",
            HELLO_CHUNKED,
        ),
        (
            "two different content-lengths",
            "/api/x",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "hello!",
        ),
        (
            "a content-length list",
            "/api/x",
            "Content-Length: 5, 5\r\n",
            "hello",
        ),
        (
            "a negative content-length",
            "/api/x",
            "Content-Length: -5\r\n",
            "hello",
        ),
        (
            "a non-numeric content-length",
            "/api/x",
            "Content-Length: five\r\n",
            "hello",
        ),
        (
            "a chunk size that is not hex",
            "/api/x",
            te,
            "zz\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "a chunk size with a sign",
            "/api/x",
            te,
            "+5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "a chunk size that overflows",
            "/api/x",
            te,
            "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "a chunk longer than its size",
            "/api/x",
            te,
            "3\r\nhello\r\n0\r\n\r\n",
        ),
    ]
}

#[tokio::test]
async fn after_a_framing_error_one_400_with_connection_close_then_eof() {
    let upstream = RawUpstream::start(Answer::Ok(2)).await;
    let fixture = Fixture::builder()
        .await
        .route(Route::api().upstream(&upstream.url))
        .start()
        .await;
    let (addr, token) = (fixture.proxy.running.public_addr, fixture.token());
    let mut failures = vec![];
    for (name, path, framing, body) in cases() {
        let before = upstream.requests().len();
        let request = pipelined(&token, path, framing, body);
        let reply = exchange(addr, &request, Duration::from_secs(5)).await;
        let text = String::from_utf8_lossy(&reply.bytes);
        let mut problems = vec![];
        if reply.status() != Some(400) {
            problems.push(format!("status {:?}", reply.status()));
        }
        if reply.header("connection").as_deref() != Some("close") {
            problems.push("no `connection: close`".into());
        }
        let responses = text.matches("HTTP/1.1 ").count();
        if responses != 1 {
            problems.push(format!("{responses} responses"));
        }
        if !reply.closed {
            problems.push("connection still open".into());
        }
        let forwarded = upstream.requests().len() - before;
        if forwarded != 0 {
            problems.push(format!("upstream received {forwarded} requests"));
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {} in {text:?}", problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn the_admin_listener_closes_after_a_framing_error_too() {
    let fixture = Fixture::start().await;
    let addr = fixture.proxy.running.admin_addr;
    let request = pipelined(
        "x",
        "/healthz",
        "Transfer-Encoding: gzip, chunked\r\n",
        HELLO_CHUNKED,
    );
    let reply = exchange(addr, &request, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&reply.bytes);
    assert_eq!(reply.status(), Some(400), "{text}");
    assert_eq!(
        reply.header("connection").as_deref(),
        Some("close"),
        "{text}"
    );
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
    assert!(reply.closed, "{text}");
}
