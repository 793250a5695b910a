//! A small HTTP client and server for tests (hyper on loopback).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

/// A response read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    /// The `WWW-Authenticate` header, or "" when absent.
    pub fn www(&self) -> String {
        self.headers
            .get(http::header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

/// Sends a request with `headers` (repeated names are sent repeatedly) and an optional body.
pub async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    try_send(method, url, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Like [`send`], but a connection failure is an `Err` instead of a panic.
pub async fn try_send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, String> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// A TCP connection to the server at `url` (`http://host:port...`), for a client of its own.
pub async fn connect(url: &str) -> TokioIo<TcpStream> {
    let rest = url.trim_start_matches("http://");
    let addr = rest.split('/').next().unwrap_or(rest);
    TokioIo::new(TcpStream::connect(addr).await.unwrap())
}

/// One keep-alive HTTP/1.1 client connection: every request goes over the same connection.
pub struct KeepAlive(hyper::client::conn::http1::SendRequest<Empty<Bytes>>);

impl KeepAlive {
    /// Connects to the server at `url` (its path is ignored).
    pub async fn open(url: &str) -> KeepAlive {
        let (sender, connection) = hyper::client::conn::http1::handshake(connect(url).await)
            .await
            .unwrap();
        tokio::spawn(connection);
        KeepAlive(sender)
    }

    /// GET `path` with `token`; the status and body.
    pub async fn get(&mut self, path: &str, token: &str) -> (u16, Bytes) {
        self.0.ready().await.expect("client connection still open");
        let request = Request::get(path)
            .header("host", "proxy.test")
            .header("authorization", format!("Bearer {token}"))
            .body(Empty::new())
            .unwrap();
        let response = self.0.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    send(Method::GET, url, headers, b"").await
}

pub async fn get_bearer(url: &str, token: &str) -> Reply {
    get(url, &[("authorization", &format!("Bearer {token}"))]).await
}

/// Serves `handler` on an ephemeral loopback port for the rest of the test.
pub async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}
