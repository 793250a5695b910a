//! The demo's echo upstream, standing in for the legacy API: it answers every request with
//! its method, path, query, headers and the decoded header and claims of the token it
//! received, so the demo shows what the proxy forwards.
//!
//! May use: `jose::b64`, `http::body` and [`super::loopback`].

use std::net::SocketAddr;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use super::DemoError;
use super::loopback::{bind, serve};
use crate::http::body::{self, Body};
use crate::jose::b64;

/// The echo upstream's answer: method, path, headers and the claims of the received token.
async fn echo(request: Request<Incoming>) -> Response<Body> {
    let headers: Map<String, Value> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                Value::from(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            )
        })
        .collect();
    let token = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let decode = |segment: Option<&str>| {
        segment
            .and_then(b64::decode)
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .unwrap_or(Value::Null)
    };
    let mut parts = token.map(|t| t.split('.')).into_iter().flatten();
    let header = decode(parts.next());
    let claims = decode(parts.next());
    body::json(
        StatusCode::OK,
        &json!({
            "upstream": "resigner demo echo",
            "method": request.method().as_str(),
            "path": request.uri().path(),
            "query": request.uri().query(),
            "headers": headers,
            "token_header": header,
            "token_claims": claims,
        }),
    )
}

/// Starts the echo upstream on `addr`.
pub async fn start_echo_upstream(addr: SocketAddr) -> Result<SocketAddr, DemoError> {
    let listener = bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(serve(listener, echo));
    Ok(local)
}
