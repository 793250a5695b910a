//! A client connection's own upstream connection (`src/http/bound.rs`, #16), seen from a
//! real upstream that records which of its connections (the proxy's source port) carried
//! each request: a keep-alive client's requests after its first share one upstream
//! connection of their own; an upstream that closes it gets a new one; requests for another
//! upstream on the same client connection still reach it; HTTP/2 streams in parallel all
//! get answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::common::client::connect;
use crate::common::{Fixture, KeepAlive, Route};

/// One request as the recording upstream saw it: its path and the proxy's source port.
#[derive(Debug, Clone, PartialEq)]
struct Hop {
    path: String,
    port: u16,
}

/// An upstream that records each request's connection and answers `Connection: close`
/// to the paths that end in `/close`.
struct Recording {
    addr: SocketAddr,
    hops: Arc<Mutex<Vec<Hop>>>,
}

impl Recording {
    async fn start() -> Recording {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hops = Arc::new(Mutex::new(Vec::new()));
        let record = hops.clone();
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let record = record.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let path = request.uri().path().to_string();
                    let close = path.ends_with("/close");
                    record.lock().unwrap().push(Hop {
                        path,
                        port: peer.port(),
                    });
                    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                    if close {
                        response
                            .headers_mut()
                            .insert("connection", "close".parse().unwrap());
                    }
                    async move { Ok::<_, Infallible>(response) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Recording { addr, hops }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The source port of each request whose path is `path`, in order.
    fn ports(&self, path: &str) -> Vec<u16> {
        let hops = self.hops.lock().unwrap();
        hops.iter()
            .filter(|h| h.path == path)
            .map(|h| h.port)
            .collect()
    }
}

/// A new TCP connection to the proxy's public listener.
async fn fixture(one: &Recording, two: &Recording) -> Fixture {
    Fixture::builder()
        .await
        .route(Route::new("/one").upstream(one.url()))
        .route(Route::new("/two").upstream(two.url()))
        .start()
        .await
}

#[tokio::test]
async fn a_keep_alive_client_keeps_one_upstream_connection_of_its_own() {
    let (one, two) = (Recording::start().await, Recording::start().await);
    let fixture = fixture(&one, &two).await;
    let token = fixture.token();
    let (mut a, mut b) = (
        KeepAlive::open(&fixture.proxy.url("")).await,
        KeepAlive::open(&fixture.proxy.url("")).await,
    );
    for _ in 0..5 {
        assert_eq!(a.get("/one/a", &token).await, (200, Bytes::from("ok")));
        assert_eq!(b.get("/one/b", &token).await, (200, Bytes::from("ok")));
    }
    let (a_ports, b_ports) = (one.ports("/one/a"), one.ports("/one/b"));
    assert_eq!((a_ports.len(), b_ports.len()), (5, 5));
    // The first request of each went through the pool; every later one over the client
    // connection's own upstream connection, one per client connection.
    assert!(
        a_ports[1..].iter().all(|p| *p == a_ports[1]),
        "client a: {a_ports:?}"
    );
    assert!(
        b_ports[1..].iter().all(|p| *p == b_ports[1]),
        "client b: {b_ports:?}"
    );
    assert_ne!(a_ports[1], b_ports[1], "each client connection has its own");
}

#[tokio::test]
async fn an_upstream_that_closes_the_connection_gets_a_new_one_and_other_upstreams_are_reached() {
    let (one, two) = (Recording::start().await, Recording::start().await);
    let fixture = fixture(&one, &two).await;
    let token = fixture.token();
    let mut client = KeepAlive::open(&fixture.proxy.url("")).await;
    for path in ["/one/x", "/one/x", "/one/close", "/one/x", "/one/x"] {
        assert_eq!(client.get(path, &token).await.0, 200, "{path}");
    }
    let (kept, closed) = (one.ports("/one/x"), one.ports("/one/close"));
    // Requests 2 and 3 (the closing one) share the held connection; 4 and 5 share a new one.
    assert_eq!(closed, vec![kept[1]], "{kept:?} {closed:?}");
    assert_eq!(kept[2], kept[3], "{kept:?}");
    assert_ne!(
        kept[2], kept[1],
        "a closed upstream connection is not reused: {kept:?}"
    );

    // The same client connection alternating between two upstreams: every request reaches
    // the upstream its route names.
    for _ in 0..3 {
        assert_eq!(client.get("/two/y", &token).await.0, 200);
        assert_eq!(client.get("/one/z", &token).await.0, 200);
    }
    assert_eq!(
        (two.ports("/two/y").len(), one.ports("/one/z").len()),
        (3, 3)
    );
    assert!(two.ports("/one/z").is_empty() && one.ports("/two/y").is_empty());
}

#[tokio::test]
async fn http2_streams_in_parallel_on_one_connection_all_get_answers() {
    let (one, two) = (Recording::start().await, Recording::start().await);
    let fixture = fixture(&one, &two).await;
    let token = fixture.token();
    let (sender, connection) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        connect(&fixture.proxy.url("")).await,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let mut streams = tokio::task::JoinSet::new();
    for i in 0..20 {
        let mut sender = sender.clone();
        let token = token.clone();
        streams.spawn(async move {
            let request = Request::get(format!("http://proxy.test/one/h2/{i}"))
                .header("authorization", format!("Bearer {token}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, body)
        });
    }
    let answers = streams.join_all().await;
    assert!(
        answers.iter().all(|a| *a == (200, Bytes::from("ok"))),
        "{answers:?}"
    );
    assert_eq!(one.hops.lock().unwrap().len(), 20);
}
