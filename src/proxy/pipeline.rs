//! The one way from an IdP access token to what is forwarded for it on a route:
//! verify -> authorize (the route's mode decides what follows) -> map claims -> sign.
//! [`run`] is that sequence, once; what differs between callers is only where keys come
//! from and how a signature is made, which they pass as [`Stages`]. The proxy runs it
//! through the re-sign cache ([`resign`], with [`Live`] stages: the running IdP key client
//! and the signing threads); `resigner token resign` runs it once with keys fetched for the
//! command; a token exchange endpoint would be a third caller.
//!
//! Authorize ([`super::authorize`]) runs on the verified claims inside [`run`], so only on a
//! cache miss; a hit is served only to a request the entry's authorization holds for, because
//! the cache key has the route (its rules, under the config generation) and the request's
//! method class (which method-limited rules apply), and the token digest fixes the claims.

use std::borrow::Cow;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, header};
use serde_json::{Map, Value};

use super::authorize::{self, Denied};
use super::verify::Verified;
use super::{ProxyError, claims, token_fingerprint, verify_token};
use crate::app::AppState;
use crate::cache::{CacheKey, KeyScope, LastToken, Resigned};
use crate::config::runtime::ExchangeClient;
use crate::config::{Config, Route, RouteMode};
use crate::idp::IdpClient;
use crate::keys::SigningKey;
use crate::keys::signer::{Placement, SignerError};
use crate::metrics::Metrics;

/// What the pipeline itself can fail at, between the stages.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the mapped claims cannot be serialized: {0}")]
    Payload(serde_json::Error),
    #[error("the active signing key is not connected")]
    NotConnected,
    #[error("not authorized on this route: {0}")]
    Denied(#[from] Denied),
}

/// Where the stages get what they need. Implemented by the running proxy ([`Live`]) and by
/// the `token resign` command; each says what its failures are ([`Stages::Error`]).
pub trait Stages: Sync {
    type Error: From<PipelineError> + Send;

    /// Verifies `token` for `audience`, from one of `issuers` (`None`: any configured IdP):
    /// structure and header, IdP, key, signature, claims.
    fn verify(
        &self,
        token: &str,
        audience: &str,
        issuers: Option<&[String]>,
    ) -> impl Future<Output = Result<Verified, Self::Error>> + Send;

    /// Signs `payload` (the mapped claims, JSON) with `key`, as a compact JWS.
    fn sign(
        &self,
        key: &Arc<SigningKey>,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<String, Self::Error>> + Send;
}

/// The token work a route's mode asks for; a passthrough route asks for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenWork {
    /// `mode = "verify"`: the verified IdP token is forwarded unchanged.
    Forward,
    /// `mode = "resign"`: the claims are mapped and signed with the active key.
    Resign,
}

impl TokenWork {
    /// `None` for `mode = "passthrough"`: no token work at all, so a caller forwards (or
    /// says so) before it looks for a token.
    pub fn of(route: &Route) -> Option<TokenWork> {
        match route.mode {
            RouteMode::Resign => Some(TokenWork::Resign),
            RouteMode::Verify => Some(TokenWork::Forward),
            RouteMode::Passthrough => None,
        }
    }
}

/// Who asks for the token: a proxied request (its method selects the method-limited
/// rules), a token exchange client (every rule applies; the token names it in `act`), or a
/// command with no request (every rule applies).
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    Request(&'a Method),
    Exchange(&'a ExchangeClient),
    Command,
}

impl Caller<'_> {
    fn method(&self) -> Option<&Method> {
        match self {
            Caller::Request(method) => Some(method),
            Caller::Exchange(_) | Caller::Command => None,
        }
    }

    fn actor(&self) -> Option<&str> {
        match self {
            Caller::Exchange(client) => Some(&client.client_id),
            Caller::Request(_) | Caller::Command => None,
        }
    }
}

/// The method class a token exchange's entries are cached under: every rule applies.
const ALL_RULES: u8 = u8::MAX;

/// What [`run`] produced for one token on one route.
#[derive(Debug)]
pub struct Outcome {
    /// The output header's value: `Bearer <token>` for `Authorization`, else the bare token.
    pub value: String,
    /// The forwarded token's `exp`.
    pub exp: i64,
    /// Whether the token was verified with its IdP's keys (a JWS), not introspected: only
    /// then does a cached answer depend on those keys staying usable.
    pub verified_with_keys: bool,
    /// How long it may be served: the forwarded token's remaining life minus the leeway.
    pub ttl: Duration,
    /// The claims that were signed; `None` when the IdP token is forwarded unchanged.
    pub claims: Option<Map<String, Value>>,
}

/// verify -> authorize -> map -> sign for `token` on `route` under `config`, uncached.
/// The `caller`'s method selects the method-limited rules (no method: all of them); a token
/// exchange client is named in an `act` claim (RFC 8693 §4.1) around any `act` the token
/// already had. `active` is the key that signs (`AppState::active_key`: the managed current
/// key or the configured active one).
pub async fn run<S: Stages>(
    stages: &S,
    config: &Config,
    route: &Route,
    work: TokenWork,
    token: &str,
    caller: Caller<'_>,
    active: Option<&Arc<SigningKey>>,
) -> Result<Outcome, S::Error> {
    let (method, actor) = (caller.method(), caller.actor());
    let verified = stages
        .verify(token, &route.audience, route.issuers.as_deref())
        .await?;
    authorize::authorize(
        &verified.claims,
        &verified.idp.scope_claims,
        &route.authorization,
        method,
    )
    .map_err(PipelineError::from)?;
    let leeway = verified.idp.leeway.as_secs() as i64;
    let verified_for = verified.valid_for;
    let now = crate::jose::time::now_unix();
    let (forwarded, exp, claims) = match work {
        TokenWork::Forward => (Cow::Borrowed(token), verified.exp, None),
        TokenWork::Resign => {
            let signing = &config.signing;
            // An introspected token's answer may be relied on for `valid_for` only: the
            // re-signed token expires then at the latest, so revocation reaches it.
            let bound = match verified_for {
                Some(valid_for) => verified.exp.min(now + valid_for.as_secs() as i64),
                None => verified.exp,
            };
            let mut claims = claims::map_claims(
                &verified.claims,
                bound,
                &route.claims,
                &signing.issuer,
                signing.max_ttl.as_secs() as i64,
                now,
            );
            if let Some(actor) = actor {
                let mut act = Map::new();
                act.insert("sub".into(), Value::String(actor.to_string()));
                if let Some(prior) = claims.remove("act") {
                    act.insert("act".into(), prior);
                }
                claims.insert("act".into(), Value::Object(act));
            }
            let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
            let payload = serde_json::to_vec(&claims).map_err(PipelineError::Payload)?;
            let active = active.ok_or(PipelineError::NotConnected)?;
            let signed = stages.sign(active, payload).await?;
            tracing::debug!(token = %token_fingerprint(token), route = %route.prefix, kid = active.kid(), "token re-signed");
            (Cow::Owned(signed), exp, Some(claims))
        }
    };
    let value = if route.header == header::AUTHORIZATION {
        format!("Bearer {forwarded}")
    } else {
        forwarded.into_owned()
    };
    let mut ttl = Duration::from_secs((exp - now - leeway).max(0) as u64);
    if let Some(valid_for) = verified_for {
        // An introspected token: never cached past the answer's own reuse limit.
        ttl = ttl.min(valid_for);
    }
    Ok(Outcome {
        value,
        exp,
        verified_with_keys: verified_for.is_none(),
        ttl,
        claims,
    })
}

/// The proxy's stages: keys from the running client of the IdP the token names (with its
/// refetch on an unknown kid), RSA signatures on the signing threads, each signature counted.
pub struct Live<'a> {
    pub state: &'a AppState,
    /// The client of the IdP whose key verified the token, once verified.
    pub verified_by: OnceLock<Arc<IdpClient>>,
}

impl Stages for Live<'_> {
    type Error = ProxyError;

    async fn verify(
        &self,
        token: &str,
        audience: &str,
        issuers: Option<&[String]>,
    ) -> Result<Verified, ProxyError> {
        let (verified, client) = verify_token(self.state, token, audience, issuers).await?;
        let _ = self.verified_by.set(client);
        Ok(verified)
    }

    async fn sign(&self, key: &Arc<SigningKey>, payload: Vec<u8>) -> Result<String, ProxyError> {
        let started = std::time::Instant::now();
        let signed = match key.placement() {
            Placement::Inline => key.sign_compact(&payload),
            // RSA and blocking backends: on the signing threads, below the workers' priority
            // (see `signing_pool`); in a miss storm the signatures queue there instead of
            // delaying the hits.
            Placement::Threads => {
                let signer = key.clone();
                self.state
                    .signing_pool
                    .run(move || signer.sign_compact(&payload))
                    .await
                    .ok_or(ProxyError::SigningFailed)?
            }
            Placement::Remote => key.sign_compact_async(&payload).await,
        };
        let metrics = &self.state.metrics;
        match signed {
            Ok(signed) => {
                metrics.record_signature(key.kid(), key.alg(), key.backend(), started.elapsed());
                Ok(signed)
            }
            Err(err) => {
                metrics.record_signing_error(key.backend(), err.kind());
                tracing::warn!(
                    kid = key.kid(),
                    backend = key.backend(),
                    kind = err.kind(),
                    "signature failed: {err}"
                );
                Err(ProxyError::from(err))
            }
        }
    }
}

impl From<PipelineError> for ProxyError {
    fn from(err: PipelineError) -> Self {
        match err {
            PipelineError::NotConnected => ProxyError::SigningUnavailable,
            PipelineError::Payload(_) => ProxyError::SigningFailed,
            PipelineError::Denied(denied) => ProxyError::Forbidden(denied),
        }
    }
}

impl From<SignerError> for ProxyError {
    /// Unavailable, timed out or refused: 503 (may work later); failed: 500.
    fn from(err: SignerError) -> Self {
        match err {
            SignerError::Failed(_) => ProxyError::SigningFailed,
            _ => ProxyError::SigningUnavailable,
        }
    }
}

/// The output header value for `token` on `route`, from the cache or by running the
/// pipeline (once, however many requests carry the same new token). A cache hit costs what
/// it did before the pipeline existed: the IdP generation load, the publication check, the
/// cache key hash and the lookup (plus the method class: a scan of the few methods the
/// route's rules name, none for most routes) and the check that the IdP which verified the
/// entry still has usable keys; the [`Live`] stages are built on a miss only.
///
/// `last` is a proxied request's connection memo ([`LastToken`]) and the request's start: a
/// token the connection's previous request carried, in the same scope, is served from it
/// without the key's SHA-256 or the lookup; every answer served is remembered there. The
/// proxy runs the steps itself ([`scope`], [`recall`], then [`lookup`] boxed), so that a
/// remembered token's request has no cache lookup's future in its own.
pub async fn resign(
    state: &AppState,
    config: &Config,
    route: &Route,
    work: TokenWork,
    token: &[u8],
    caller: Caller<'_>,
    last: Option<(&LastToken, Instant)>,
) -> Result<Served, ProxyError> {
    let scope = scope(state, config, route, work, caller)?;
    if let Some((last, now)) = last
        && let Some(recalled) = recall(state, last, token, &scope, now)
    {
        return recalled;
    }
    let last = last.map(|(last, _)| last);
    lookup(state, config, route, work, token, caller, scope, last).await
}

/// The scope of the cache key for a token on `route` asked by `caller` (the generations
/// now, the method class); refused when the route re-signs and the signing key is not
/// published.
pub fn scope(
    state: &AppState,
    config: &Config,
    route: &Route,
    work: TokenWork,
    caller: Caller<'_>,
) -> Result<KeyScope, ProxyError> {
    if work == TokenWork::Resign
        && let Err(reason) = state.signing_status(config)
    {
        tracing::debug!(%reason, "signing key not published");
        return Err(ProxyError::SigningUnavailable);
    }
    let (class, client) = match caller {
        Caller::Request(method) => (authorize::method_class(&route.authorization, method), 0),
        Caller::Exchange(client) => (ALL_RULES, client.number),
        Caller::Command => (ALL_RULES, 0),
    };
    Ok(
        KeyScope::new(route.id, config.generation, state.idps.generation())
            .with_method_class(class)
            .with_client(client)
            .with_signing_generation(state.managed_generation(config)),
    )
}

/// The answer `last` remembers for `token` in `scope` at `now`, served as a cache hit (see
/// [`hit`]); `None` when it remembers none.
pub fn recall(
    state: &AppState,
    last: &LastToken,
    token: &[u8],
    scope: &KeyScope,
    now: Instant,
) -> Option<Result<Served, ProxyError>> {
    let resigned = last.get(token, scope, now)?;
    Some(hit(state, resigned).map(|resigned| Served {
        resigned,
        fresh: false,
    }))
}

/// The output header value for `token` in `scope` from the re-sign cache, or by running
/// the pipeline; remembered in `last` when given.
#[allow(clippy::too_many_arguments)]
pub async fn lookup(
    state: &AppState,
    config: &Config,
    route: &Route,
    work: TokenWork,
    token: &[u8],
    caller: Caller<'_>,
    scope: KeyScope,
    last: Option<&LastToken>,
) -> Result<Served, ProxyError> {
    let active = match work {
        TokenWork::Resign => state.active_key(config),
        TokenWork::Forward => None,
    };
    let key = CacheKey::of(token, scope);
    // A hit is a plain lookup; the miss path (verify, sign, insert) is boxed, so the future
    // of every proxied request is not as large as the miss's (it is moved several times per
    // request: large futures cost a memcpy of their size each time, #16). A miss runs the
    // pipeline once per key, however many requests wait for it; one that finds the entry
    // made meanwhile is served it as a hit.
    let (resigned, fresh) = match state.cache.get(&key).await {
        Some(resigned) => (resigned, false),
        None => {
            Box::pin(async {
                let stages = Live {
                    state,
                    verified_by: OnceLock::new(),
                };
                let entry = state
                    .cache
                    .entry(key)
                    .or_try_insert_with(async {
                        // Not checked before the lookup (see `proxy::bearer_unchecked`): a
                        // token that is not a b64token never makes an entry, so it never
                        // hits one either.
                        let token = super::check_b64token(token)?;
                        let outcome =
                            run(&stages, config, route, work, token, caller, active.as_ref())
                                .await?;
                        let header_value = HeaderValue::try_from(outcome.value)
                            .map_err(|_| ProxyError::SigningFailed)?;
                        let idp = stages
                            .verified_by
                            .get()
                            .cloned()
                            .ok_or(ProxyError::IdpUnavailable)?;
                        Ok(Arc::new(Resigned {
                            header_value,
                            expires_at: Instant::now() + outcome.ttl,
                            exp: outcome.exp,
                            verified_with_keys: outcome.verified_with_keys,
                            idp,
                        }))
                    })
                    .await
                    .map_err(|err: Arc<ProxyError>| (*err).clone())?;
                let fresh = entry.is_fresh();
                Ok::<_, ProxyError>((entry.into_value(), fresh))
            })
            .await?
        }
    };
    let resigned = if fresh {
        Metrics::inc(&state.metrics.cache_misses);
        resigned
    } else {
        hit(state, resigned)?
    };
    if let Some(last) = last {
        last.remember(token, &scope, &resigned);
    }
    Ok(Served { resigned, fresh })
}

/// A cached answer, served unless its IdP's keys went stale beyond max_stale (then no
/// answer of it is, cached or not); counted as a hit.
fn hit(state: &AppState, resigned: Arc<Resigned>) -> Result<Arc<Resigned>, ProxyError> {
    if resigned.verified_with_keys && !resigned.idp.is_usable() {
        return Err(ProxyError::IdpUnavailable);
    }
    Metrics::inc(&state.metrics.cache_hits);
    Ok(resigned)
}

/// What [`resign`] served.
pub struct Served {
    pub resigned: Arc<Resigned>,
    /// Whether this request ran the pipeline (a miss): its verification and signature took
    /// time since the request started.
    pub fresh: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_signature_is_signing_failed_and_every_other_kind_signing_unavailable() {
        let failed = ProxyError::from(SignerError::Failed("bad mechanism".into()));
        // (error.rs tests the statuses: signing_failed is 500, signing_unavailable 503.)
        assert_eq!(failed, ProxyError::SigningFailed);
        assert_eq!(failed.reason(), "signing_failed");
        for err in [
            SignerError::Unavailable("token away".into()),
            SignerError::Timeout("slow".into()),
            SignerError::Refused("PIN refused".into()),
        ] {
            let kind = err.kind();
            let mapped = ProxyError::from(err);
            assert_eq!(mapped, ProxyError::SigningUnavailable, "{kind}");
            assert_eq!(mapped.reason(), "signing_unavailable", "{kind}");
        }
    }
}
