//! Request-framing errors: once the end of a request is in doubt, nothing after it on that
//! connection can be trusted, so the answer is 400 with `Connection: close` and hyper closes
//! the connection after it (the bytes that follow are never parsed as another request).
//!
//! Where each error is caught: hyper refuses conflicting or invalid `Content-Length`,
//! `chunked` not last and `Transfer-Encoding` on HTTP/1.0 while parsing the head (its own 400
//! closes); the accept loop ([`crate::http::server`]) refuses every other coding list before
//! a handler runs, with [`refusal`]; a bad chunk inside a body surfaces as
//! [`crate::http::timeout_body::RequestBodyFailed`] where the proxy streams it upstream.

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use crate::http::body::{self, Body};

/// What [`refusal`] tells the client.
pub const UNSUPPORTED_CODING: &str = "Transfer-Encoding other than chunked is not supported";

/// The accept loop's answer to a request whose `Transfer-Encoding` is anything but a single
/// `chunked` ([`crate::http::headers::has_unsupported_transfer_coding`]): 400,
/// `Connection: close`.
pub fn refusal() -> Response<Body> {
    let body = json!({"error": "invalid_request", "error_description": UNSUPPORTED_CODING});
    let mut response = body::json(StatusCode::BAD_REQUEST, &body);
    mark_close(&mut response);
    response
}

/// Makes hyper close the connection once `response` is written.
pub fn mark_close<B>(response: &mut Response<B>) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}
