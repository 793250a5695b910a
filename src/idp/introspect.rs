//! RFC 7662 token introspection for opaque access tokens (the "phantom token" pattern: an
//! opaque token in, a JWT signed with the customer's key out). A token that is not a JWS is
//! POSTed (`token`, `token_type_hint=access_token`, form-encoded) to the IdP's introspection
//! endpoint with resigner's client credentials (`client_secret_basic`). An active answer's
//! members become the token's claims (`active` and `token_type` dropped, `iss` the IdP's
//! when the answer has none), which then pass the same audience and lifetime checks as a
//! JWT's; an inactive one (or one whose `token_type` is not a bearer access token, or a
//! 400 over the token) is a 401; an endpoint that cannot answer (down, slow, 5xx, our
//! credentials refused, not JSON, more than 64 calls in flight) is a 503, never a 401, and
//! is not cached.
//!
//! Answers are cached by the token's SHA-256 (the token itself is never kept): an active one
//! until the token's `exp` and at most `cache_max`, an inactive one for `negative_ttl`;
//! concurrent requests with the same new token make one call (moka's `try_get_with`).
//!
//! May use: `config` (the settings), `http::client` and `http::form`, `jose::json`, `metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use moka::Expiry;
use moka::future::Cache;
use serde_json::{Map, Value};

use crate::config::runtime::IntrospectionSettings;
use crate::http::client::{KmsClient, error_chain, kms_client};
use crate::http::form;
use crate::http::tls::ClientTls;
use crate::jose::json;
use crate::metrics::Metrics;

/// The largest introspection answer read.
const MAX_ANSWER: usize = 64 * 1024;
/// Answers kept at most (by token digest).
const MAX_ENTRIES: u64 = 100_000;
/// Calls to the endpoint in flight at most: a flood of made-up opaque tokens (each a call
/// until its inactive answer is cached) gets 503s beyond it instead of a flood at the IdP.
const MAX_IN_FLIGHT: usize = 64;

/// Why an opaque token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntrospectError {
    /// The IdP says the token is not active (expired, revoked, unknown).
    #[error("the token is not active")]
    Inactive,
    /// The endpoint gave no usable answer: the token's status is unknown.
    #[error("introspection failed: {0}")]
    Unavailable(String),
}

/// One cached answer.
#[derive(Debug)]
enum Answer {
    Active {
        claims: Map<String, Value>,
        until: Instant,
    },
    Inactive {
        until: Instant,
    },
}

impl Answer {
    fn until(&self) -> Instant {
        match self {
            Answer::Active { until, .. } | Answer::Inactive { until } => *until,
        }
    }
}

struct UntilPolicy;

impl Expiry<[u8; 32], Arc<Answer>> for UntilPolicy {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Answer>,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(value.until().saturating_duration_since(created_at))
    }
}

/// Introspects opaque tokens at one IdP's endpoint.
pub struct Introspector {
    settings: IntrospectionSettings,
    /// The IdP's issuer: the `iss` of an answer without one, and the only one accepted.
    issuer: String,
    /// The IdP's name, for metrics and logs.
    name: String,
    authorization: String,
    client: KmsClient,
    cache: Cache<[u8; 32], Arc<Answer>>,
    in_flight: tokio::sync::Semaphore,
    metrics: Arc<Metrics>,
}

/// An active token's claims and how much longer its answer may be relied on.
#[derive(Debug, Clone)]
pub struct Introspected {
    pub claims: Map<String, Value>,
    pub valid_for: Duration,
}

impl Introspector {
    pub fn new(
        settings: IntrospectionSettings,
        issuer: &str,
        name: &str,
        tls: Option<&ClientTls>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let authorization =
            form::client_basic(&settings.client_id, settings.client_secret.expose());
        Introspector {
            client: kms_client(settings.timeout, tls),
            cache: Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .expire_after(UntilPolicy)
                .build(),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            settings,
            issuer: issuer.to_string(),
            name: name.to_string(),
            authorization,
            metrics,
        }
    }

    /// The settings this introspector was built with (a reload compares them).
    pub fn settings(&self) -> &IntrospectionSettings {
        &self.settings
    }

    /// The answer for `token`, from the cache or the endpoint (one call however many
    /// requests carry the same new token).
    pub async fn introspect(&self, token: &str) -> Result<Introspected, IntrospectError> {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        let answer = self
            .cache
            .try_get_with(key, self.ask(token))
            .await
            .map_err(|err: Arc<IntrospectError>| (*err).clone())?;
        match &*answer {
            Answer::Active { claims, until } => {
                let valid_for = until.saturating_duration_since(Instant::now());
                if valid_for.is_zero() {
                    return Err(IntrospectError::Inactive);
                }
                Ok(Introspected {
                    claims: claims.clone(),
                    valid_for,
                })
            }
            Answer::Inactive { .. } => Err(IntrospectError::Inactive),
        }
    }

    async fn ask(&self, token: &str) -> Result<Arc<Answer>, IntrospectError> {
        let Ok(_permit) = self.in_flight.try_acquire() else {
            self.metrics.record_introspection(&self.name, "failed");
            return Err(IntrospectError::Unavailable(format!(
                "{MAX_IN_FLIGHT} introspection calls are already in flight"
            )));
        };
        let result = tokio::time::timeout(self.settings.timeout, self.call(token))
            .await
            .unwrap_or_else(|_| {
                Err(IntrospectError::Unavailable(format!(
                    "no answer within {:?}",
                    self.settings.timeout
                )))
            });
        let outcome = match &result {
            Ok(answer) => match **answer {
                Answer::Active { .. } => "active",
                Answer::Inactive { .. } => "inactive",
            },
            Err(err) => {
                tracing::warn!(idp = %self.name, endpoint = %self.settings.endpoint, "{err}");
                "failed"
            }
        };
        self.metrics.record_introspection(&self.name, outcome);
        result
    }

    async fn call(&self, token: &str) -> Result<Arc<Answer>, IntrospectError> {
        let body = form::encode(&[("token", token), ("token_type_hint", "access_token")]);
        let mut authorization = HeaderValue::from_str(&self.authorization)
            .map_err(|err| IntrospectError::Unavailable(err.to_string()))?;
        authorization.set_sensitive(true);
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.settings.endpoint.clone())
            .header(header::AUTHORIZATION, authorization)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("resigner/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| IntrospectError::Unavailable(err.to_string()))?;
        let unavailable = IntrospectError::Unavailable;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|err| unavailable(error_chain(&err)))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|err| unavailable(format!("reading the answer: {err}")))?
            .to_bytes();
        let now = Instant::now();
        match status {
            StatusCode::OK => {}
            // The endpoint refused the request over the token itself (RFC 7662 §2.3 answers
            // an invalid token with active=false, but some servers say 400): not active.
            StatusCode::BAD_REQUEST => {
                return Ok(Arc::new(Answer::Inactive {
                    until: now + self.settings.negative_ttl,
                }));
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(unavailable(format!(
                    "the endpoint refused resigner's client credentials (HTTP {status}): check \
                     introspection client_id and the client secret"
                )));
            }
            other => return Err(unavailable(format!("the endpoint answered HTTP {other}"))),
        }
        let mut claims = json::parse_object(&bytes)
            .map_err(|err| unavailable(format!("the answer is not a JSON object: {err}")))?;
        // Only a bearer access token stands in for a JWT; a refresh token or a
        // sender-constrained (DPoP) token is not accepted as one.
        let bearer = claims.get("token_type").is_none_or(|kind| {
            kind.as_str().is_some_and(|kind| {
                kind.eq_ignore_ascii_case("bearer") || kind.eq_ignore_ascii_case("access_token")
            })
        });
        if !bearer {
            tracing::info!(idp = %self.name, token_type = %claims["token_type"], "introspected token is not a bearer access token");
        }
        if !bearer || claims.get("active") != Some(&Value::Bool(true)) {
            return Ok(Arc::new(Answer::Inactive {
                until: now + self.settings.negative_ttl,
            }));
        }
        claims.remove("active");
        claims.remove("token_type");
        claims
            .entry("iss")
            .or_insert_with(|| Value::String(self.issuer.clone()));
        // Never past the token's own exp (the claim checks refuse a missing or past one).
        let exp = claims.get("exp").and_then(Value::as_i64);
        let left = exp.map_or(self.settings.cache_max, |exp| {
            Duration::from_secs(exp.saturating_sub(crate::jose::time::now_unix()).max(0) as u64)
        });
        let until = now + left.min(self.settings.cache_max);
        Ok(Arc::new(Answer::Active { claims, until }))
    }
}
