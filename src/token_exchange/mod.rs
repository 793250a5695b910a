//! RFC 8693 token exchange: an IdP access token (JWS or opaque) in, a token for one legacy
//! API out, for CLIs and batch jobs that call the API directly instead of through the proxy.
//!
//! Endpoint on the public listener, served only while `[token_exchange]` is configured:
//! - `POST /oauth/token` — `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`,
//!   `subject_token`, `subject_token_type=urn:ietf:params:oauth:token-type:access_token`,
//!   and `resource` or `audience` naming a route ([`request`]); the client authenticated by
//!   `client_secret_basic` or `client_secret_post` (`[[token_exchange.clients]]`).
//!
//! The token comes from the proxy's own pipeline and cache ([`pipeline::resign`] with
//! [`Caller::Exchange`]): the same verification, route authorization (every method-limited
//! rule applies), claim mapping (so `exp` is never later than the subject token's) and
//! signing, plus an `act` claim naming the client (RFC 8693 §4.1). The answer is §2.2's:
//! `access_token`, `issued_token_type`, `token_type: "Bearer"`, `expires_in`; no refresh
//! token. Errors are RFC 6749 §5.2 JSON ([`error`]). Uses the config snapshot and the
//! [`AppState`] the proxy uses; never a database or file.

pub mod error;
pub mod request;

use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;

use crate::app::AppState;
use crate::config::Config;
use crate::http::body::{self, Body};
use crate::proxy::pipeline::{self, Caller, TokenWork};
pub use error::ExchangeError;

pub const TOKEN_PATH: &str = crate::config::runtime::TokenExchangeSettings::PATH;
/// `route` label of requests answered here (`resigner_requests_total`).
pub const METRICS_ROUTE: &str = "token_exchange";
/// The largest form body read.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Answers `POST /oauth/token`; never fails (errors become RFC 6749 answers).
pub async fn handle(
    state: &AppState,
    config: &Config,
    request: Request<Incoming>,
) -> Response<Body> {
    let response = match try_handle(state, config, request).await {
        Ok(response) => response,
        Err(err) => {
            tracing::info!(error = %err.logged(), code = err.code(), "token exchange refused");
            error::response(&err)
        }
    };
    state
        .metrics
        .record_request(METRICS_ROUTE, response.status());
    response
}

async fn try_handle(
    state: &AppState,
    config: &Config,
    request: Request<Incoming>,
) -> Result<Response<Body>, ExchangeError> {
    let Some(settings) = &config.token_exchange else {
        return Err(ExchangeError::InvalidRequest(
            "token exchange is off".into(),
        ));
    };
    if request.method() != Method::POST {
        return Err(ExchangeError::MethodNotAllowed);
    }
    let (parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(ExchangeError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let bytes = read_body(body, config.server.body_read_timeout).await?;
    let params = request::Params::parse(&bytes)?;
    let exchange = request::read(config, settings, &parts.headers, &params)?;
    let token = exchange.subject_token.as_str();
    if token.len() > crate::proxy::verify::MAX_TOKEN_BYTES {
        let too_large = crate::proxy::verify::VerifyError::TooLarge;
        return Err(ExchangeError::Subject(too_large.into()));
    }
    let caller = Caller::Exchange(exchange.client);
    let resigned = pipeline::resign(
        state,
        config,
        exchange.route,
        TokenWork::Resign,
        token.as_bytes(),
        caller,
        None,
    )
    .await
    .map_err(ExchangeError::Subject)?
    .resigned;
    let value = resigned
        .header_value
        .to_str()
        .map_err(|_| ExchangeError::Subject(crate::proxy::ProxyError::SigningFailed))?;
    let access_token = value.strip_prefix("Bearer ").unwrap_or(value);
    let expires_in = (resigned.exp - crate::jose::time::now_unix()).max(0);
    tracing::info!(
        client = %exchange.client.client_id,
        route = %exchange.route.prefix,
        token = %crate::proxy::token_fingerprint(token),
        expires_in,
        "token exchanged"
    );
    let mut response = body::json(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "issued_token_type": exchange.issued_token_type,
            "token_type": "Bearer",
            "expires_in": expires_in,
        }),
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

async fn read_body(body: Incoming, timeout: Duration) -> Result<bytes::Bytes, ExchangeError> {
    let collected = tokio::time::timeout(timeout, Limited::new(body, MAX_BODY_BYTES).collect())
        .await
        .map_err(|_| ExchangeError::InvalidRequest("the body did not arrive in time".into()))?
        .map_err(|_| {
            ExchangeError::InvalidRequest(format!(
                "the body is larger than {MAX_BODY_BYTES} bytes or was cut short"
            ))
        })?;
    Ok(collected.to_bytes())
}
