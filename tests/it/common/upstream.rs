//! A test upstream ("legacy API") that records every request it receives and answers with a
//! configurable status after a configurable delay.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use super::client::serve;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// The token after `Bearer ` in `Authorization`.
    pub fn bearer(&self) -> String {
        let value = self
            .header("authorization")
            .expect("upstream got an Authorization header");
        value
            .strip_prefix("Bearer ")
            .expect("Bearer scheme")
            .to_string()
    }
}

struct Behaviour {
    status: StatusCode,
    delay: Duration,
}

pub struct TestUpstream {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl TestUpstream {
    pub async fn start() -> TestUpstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour {
            status: StatusCode::OK,
            delay: Duration::ZERO,
        }));
        let (record, act) = (seen.clone(), behaviour.clone());
        let addr = serve(move |request: http::Request<hyper::body::Incoming>| {
            let (record, act) = (record.clone(), act.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                record.lock().unwrap().push(Seen {
                    method: parts.method.to_string(),
                    uri: parts.uri.to_string(),
                    headers: parts.headers,
                    body: body.clone(),
                });
                let (status, delay) = {
                    let b = act.lock().unwrap();
                    (b.status, b.delay)
                };
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let mut response = Response::new(Full::new(Bytes::from(format!(
                    "upstream says {status}; body {} bytes",
                    body.len()
                ))));
                *response.status_mut() = status;
                response
                    .headers_mut()
                    .insert("x-upstream", "yes".parse().unwrap());
                response
            }
        })
        .await;
        TestUpstream {
            url: format!("http://{addr}"),
            seen,
            behaviour,
        }
    }

    /// The loopback address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url.trim_start_matches("http://").parse().expect("url")
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("upstream received a request")
    }

    pub fn set_status(&self, status: u16) {
        self.behaviour.lock().unwrap().status = StatusCode::from_u16(status).unwrap();
    }

    pub fn set_delay(&self, delay: Duration) {
        self.behaviour.lock().unwrap().delay = delay;
    }
}
