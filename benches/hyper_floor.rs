//! The floor of a hyper-based proxy (#16): the least a reverse proxy built on hyper, tokio
//! and hyper-util can do per request, to put beside nginx and resigner in one run of
//! `COMPARE=1 benches/load.sh`. No token work, no limits, no logging, no metrics: one
//! single-threaded runtime; per client connection one upstream HTTP/1 connection (its
//! task spawned), requests rewritten to origin form with the upstream's `Host` and sent
//! over it; bodies streamed. Not a benchmark of resigner and never run by `cargo test`.
//!
//! Usage: `hyper_floor LISTEN UPSTREAM`, e.g. `hyper_floor 127.0.0.1:28086 127.0.0.1:28081`.
//!
//! May use: hyper, hyper-util, tokio, http, http-body-util; nothing of resigner.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use http::{HeaderValue, Request, Uri, header};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [listen, upstream] = args.as_slice() else {
        // `cargo test --all-targets` runs bench targets with no arguments, or with just the
        // test filter given to it: nothing to do.
        eprintln!(
            "hyper_floor: a measurement tool for benches/load.sh (LISTEN UPSTREAM); nothing done"
        );
        return;
    };
    let listen: SocketAddr = listen.parse().expect("LISTEN is host:port");
    let upstream: SocketAddr = upstream.parse().expect("UPSTREAM is host:port");
    let host = HeaderValue::from_str(&upstream.to_string()).expect("a header value");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::bind(listen).await.expect("bind LISTEN");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let host = host.clone();
            tokio::task::spawn_local(async move {
                if let Err(err) = serve(stream, upstream, host).await {
                    eprintln!("connection: {err}");
                }
            });
        }
    });
}

type Body = BoxBody<Bytes, hyper::Error>;

async fn serve(
    stream: TcpStream,
    upstream: SocketAddr,
    host: HeaderValue,
) -> Result<(), Box<dyn std::error::Error>> {
    stream.set_nodelay(true)?;
    let up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    let (sender, connection) = client::handshake::<_, Incoming>(TokioIo::new(up)).await?;
    tokio::task::spawn_local(connection);
    let sender = Rc::new(RefCell::new(sender));
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let sender = sender.clone();
        let host = host.clone();
        async move {
            let origin = request.uri().path_and_query().cloned();
            *request.uri_mut() = origin.map_or_else(|| Uri::from_static("/"), Uri::from);
            request.headers_mut().insert(header::HOST, host);
            let sent = sender.borrow_mut().send_request(request);
            let response = sent.await?;
            Ok::<_, hyper::Error>(response.map(|body| -> Body { body.boxed() }))
        }
    });
    server::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await?;
    Ok(())
}
