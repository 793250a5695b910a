//! The one response body type every handler returns: a streamed upstream body as it came,
//! or a small body already in memory. An enum rather than a boxed body: a proxied response
//! then costs no allocation (#16).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use hyper::body::{Frame, Incoming, SizeHint};

/// A response body (see the module doc).
#[derive(Debug)]
pub enum Body {
    /// The upstream's response body, streamed.
    Upstream(Incoming),
    /// Bytes in memory, sent as one frame (`None` once sent).
    Full(Option<Bytes>),
}

/// A body from bytes already in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    let bytes = bytes.into();
    Body::Full((!bytes.is_empty()).then_some(bytes))
}

/// An empty body.
pub fn empty() -> Body {
    Body::Full(None)
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Body::Upstream(body) => Pin::new(body).poll_frame(cx),
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Upstream(body) => body.is_end_stream(),
            Body::Full(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Upstream(body) => body.size_hint(),
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

/// A JSON response with `Cache-Control: no-store`.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

/// [`json`] for a document already serialized (a static file).
pub fn json_bytes(status: StatusCode, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use hyper::body::Body as _;

    use super::*;

    #[tokio::test]
    async fn in_memory_bodies_give_their_bytes_once_with_an_exact_size() {
        let body = full("abc");
        assert_eq!(body.size_hint().exact(), Some(3));
        assert!(!body.is_end_stream());
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abc");

        for body in [empty(), full("")] {
            assert_eq!(body.size_hint().exact(), Some(0));
            assert!(body.is_end_stream());
            assert!(body.collect().await.unwrap().to_bytes().is_empty());
        }
    }
}
