//! What the admin listener says about the running process: `/readyz` (ready, or the reasons
//! it is not), `/admin/status` (JSON: build, uptime, listeners, routes, readiness, config
//! generation and last reload, signing keys and whether each is published, custom key set,
//! key store and JWKS fingerprint (`store_status`), each IdP's keys and kid collisions, counters; every time RFC 3339 UTC) and the state gauges `/metrics` reads at
//! scrape time.
//!
//! May use: [`crate::app::AppState`] and the snapshots it holds; never writes state.

use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::config::RouteMode;
use crate::http::body::{self, Body};
use crate::jose::time::format_utc;
use crate::metrics::Scrape;

/// Why the proxy cannot serve re-signed tokens now; empty when it can.
pub fn readiness_reasons(state: &AppState) -> Vec<String> {
    let mut reasons = Vec::new();
    let idps = state.idps.all();
    for idp in idps.iter().filter(|idp| !idp.is_usable()) {
        let reason = idp
            .last_error()
            .unwrap_or_else(|| "keys not loaded yet".into());
        reasons.push(match idps.len() {
            1 => format!("IdP: {reason}"),
            _ => format!("IdP {}: {reason}", idp.name()),
        });
    }
    if let Err(reason) = state.signing_status(&state.config()) {
        reasons.push(reason);
    }
    reasons
}

/// `/readyz`: 200 `{"status": "ready"}`, or 503 with the reasons joined.
pub fn readiness(state: &AppState) -> Response<Body> {
    let reasons = readiness_reasons(state);
    if reasons.is_empty() {
        body::json(StatusCode::OK, &json!({"status": "ready"}))
    } else {
        body::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not ready", "reason": reasons.join("; ")}),
        )
    }
}

/// Each configured signing key's kid and whether it may sign (published, old enough).
fn signing_keys(state: &AppState) -> Vec<(Arc<str>, bool, Option<String>)> {
    let config = state.config();
    let custom = state.custom_keys();
    let min_age = config.signing.min_published_age.as_secs();
    let now = crate::jose::time::now_unix();
    config
        .signing
        .keys
        .iter()
        .map(|key| {
            let problem = custom
                .check_published(key, min_age, now)
                .err()
                .map(|err| err.to_string());
            (Arc::from(key.kid()), problem.is_none(), problem)
        })
        .collect()
}

/// The gauges `/metrics` sets from the current state.
pub async fn scrape(state: &AppState) -> Scrape {
    // Apply pending inserts and evictions so the cache size is current.
    state.cache.run_pending_tasks().await;
    Scrape {
        ready: readiness_reasons(state).is_empty(),
        signing_keys: signing_keys(state)
            .into_iter()
            .map(|(kid, published, _)| (kid, published))
            .collect(),
        idps: state
            .idps
            .all()
            .iter()
            .map(|idp| crate::metrics::IdpScrape {
                name: idp.name(),
                age: idp.age(),
                loaded: idp.is_usable(),
            })
            .collect(),
        cache_entries: state.cache.entry_count(),
        cache_weighted_bytes: state.cache.weighted_size(),
        store: state.store_status(),
    }
}

/// The route mode as the config file writes it.
fn mode_name(mode: RouteMode) -> &'static str {
    match mode {
        RouteMode::Resign => "resign",
        RouteMode::Verify => "verify",
        RouteMode::Passthrough => "passthrough",
    }
}

/// The `/admin/status` document.
pub fn status(state: &AppState) -> Value {
    let config = state.config();
    let custom = state.custom_keys();
    let reasons = readiness_reasons(state);
    let now = crate::jose::time::now_unix();
    let reload = state.reload_status();
    let listeners = state.listeners();
    let routes: Vec<Value> = config
        .routes
        .iter()
        .map(|route| {
            json!({
                "prefix": route.prefix,
                "mode": mode_name(route.mode),
                "upstream": format!(
                    "{}://{}{}",
                    route.upstream.scheme, route.upstream.authority, route.upstream.base_path
                ),
                "audience": route.audience,
                "issuers": route.issuers,
            })
        })
        .collect();
    let keys: Vec<Value> = signing_keys(state)
        .into_iter()
        .zip(config.signing.keys.iter())
        .map(|((kid, published, problem), key)| {
            json!({
                "kid": &*kid,
                "alg": key.alg().name(),
                "active": key.kid() == config.signing.active_kid,
                "backend": key.backend(),
                "healthy": key.health().is_none(),
                "backend_problem": key.health(),
                "key_version": key.key_version(),
                "published": published,
                "problem": problem,
                "published_at": custom.published_at.get(key.kid()).map(|at| format_utc(*at)),
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "now": format_utc(now),
        "started_at": format_utc(state.started_at),
        "uptime_seconds": (now - state.started_at).max(0),
        "listeners": listeners.map(|l| json!({
            "public": l.public.to_string(),
            "public_tls": l.public_tls,
            "admin": l.admin.to_string(),
            "admin_tls": l.admin_tls,
        })),
        "ready": reasons.is_empty(),
        "not_ready_reasons": reasons,
        "config_generation": config.generation,
        "reload": {
            "generation": reload.generation,
            "at": (reload.at > 0).then(|| format_utc(reload.at)),
            "trigger": (!reload.trigger.is_empty()).then_some(&reload.trigger),
            "ok": reload.ok,
            "errors": reload.errors,
            "needs_restart": reload.needs_restart,
            "succeeded": reload.succeeded,
            "failed": reload.failed,
        },
        "routes": routes,
        "signing": {
            "active_kid": state.active_key(&config).map(|key| key.kid().to_string()),
            "alg": state.active_key(&config).map(|key| key.alg().name()),
            "backend": state.active_key(&config).map(|key| key.backend()),
            "managed": managed_status(state, &config),
            "published": state.signing_status(&config).err().map_or(json!(true), |reason| json!(reason)),
            "keys": keys,
        },
        "custom_keys": {"version": custom.version, "kids": custom.keys.iter().map(|k| &k.kid).collect::<Vec<_>>()},
        "store": super::store_status::store(state),
        "jwks": super::store_status::jwks(state),
        "idps": state.idps.all().iter().map(|client| {
            let keys = client.current();
            json!({
                "name": client.name(),
                "issuer": client.settings().issuer,
                "loaded": keys.is_some(),
                "fetched_at": client.age().map(|age| format_utc(now - age.as_secs() as i64)),
                "age_seconds": client.age().map(|age| age.as_secs()),
                "kids": keys.as_ref().map(|k| k.kids()),
                "last_error": client.last_error(),
            })
        }).collect::<Vec<_>>(),
        "idp_kid_collisions": &*state.idps.collisions(),
        "cache_entries": state.cache.entry_count(),
        "counters": state.metrics.snapshot(),
    })
}

/// `signing.managed` of `/admin/status`: the managed keys' version, their kids by state and
/// when a scheduled rotation is due; `null` without `[signing.managed]`.
fn managed_status(state: &AppState, config: &crate::config::Config) -> serde_json::Value {
    let Some(spec) = &config.signing.managed else {
        return serde_json::Value::Null;
    };
    let managed = state.managed();
    let kids = |wanted: crate::keys::managed::KeyState| {
        managed
            .state
            .keys
            .iter()
            .filter(|k| k.state == wanted)
            .map(|k| k.kid.clone())
            .collect::<Vec<_>>()
    };
    use crate::keys::managed::KeyState;
    json!({
        "version": managed.state.version,
        "alg": spec.alg.name(),
        "current": kids(KeyState::Current).first(),
        "next": kids(KeyState::Next).first(),
        "previous": kids(KeyState::Previous),
        "revoked": kids(KeyState::Revoked),
        "rotate_every_seconds": spec.rotate_every.map(|every| every.as_secs()),
    })
}
