//! From the file shape to the runtime shape: [`validate`], the one function between them.
//! Every field is checked and every problem collected, so one run reports them all; signing
//! keys and TLS files are loaded and checked here. One file per section or group:
//! `transport` (`[server]` limits and all TLS), `idp` (with the `issuers` lists), `signing`, `routes` (with `claims`
//! for a route's mapping), `admin`, `keys` and `exchange` (`[token_exchange]`); the small `[upstream]`, `[cache]` and
//! `[jwks]` sections are read here.

mod admin;
mod authorization;
mod claims;
mod exchange;
mod idp;
mod introspection;
mod keys;
mod managed;
mod routes;
mod signing;
mod transport;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::file::FileConfig;
use super::problems::Problems;
use super::runtime::{CacheSettings, Config, UpstreamSettings};

pub use keys::pg_options;

/// The shortest timeout or refresh interval accepted: zero would fail every request or
/// spin a fetch loop against the IdP.
const MIN_TIMEOUT: Duration = Duration::from_millis(50);

/// Validates the whole file; on failure returns every problem found.
pub fn validate(raw: FileConfig, base: &Path) -> Result<Config, Vec<String>> {
    let mut p = Problems::default();
    let listen = p.addr("server.listen", &raw.server.listen);
    let server_timeout = p.duration(
        "server.header_read_timeout",
        &raw.server.header_read_timeout,
        Duration::from_secs(10),
    );
    let admin_listen = p.addr(
        "admin.listen",
        raw.admin.listen.as_deref().unwrap_or("127.0.0.1:9090"),
    );
    if listen.is_some_and(|addr| addr.port() != 0) && listen == admin_listen {
        p.push("admin.listen", "must differ from server.listen");
    }
    let idps = idp::all(&raw.idp, base, &mut p);
    let server = transport::server_settings(listen, server_timeout, &raw.server, base, &mut p);
    let admin_tls = transport::listener_tls(
        "admin",
        &raw.admin.tls_cert,
        &raw.admin.tls_key,
        base,
        &mut p,
    );
    let signing = signing::settings(&raw.signing, base, &mut p);
    let upstream = UpstreamSettings {
        connect_timeout: p.duration(
            "upstream.connect_timeout",
            &raw.upstream.connect_timeout,
            Duration::from_secs(5),
        ),
        timeout: p.duration(
            "upstream.timeout",
            &raw.upstream.timeout,
            Duration::from_secs(30),
        ),
        pool_idle_timeout: p.duration(
            "upstream.pool_idle_timeout",
            &raw.upstream.pool_idle_timeout,
            Duration::from_secs(90),
        ),
    };
    let routes = routes::routes(&raw.routes, &upstream, &idps, base, &mut p);
    if raw.cache.max_bytes.is_some() && raw.cache.max_entries.is_some() {
        p.push("cache", "set max_bytes or max_entries, not both");
    }
    if raw.cache.max_bytes == Some(0) || raw.cache.max_entries == Some(0) {
        p.push(
            "cache",
            "a limit of 0 disables nothing and caches nothing; omit it or give a positive size",
        );
    }
    for route in &routes {
        if route.mode != super::runtime::RouteMode::Passthrough {
            let field = format!("routes[{}].issuers", route.id);
            introspection::one_introspecting(&mut p, &field, route.issuers.as_deref(), &idps);
        }
    }
    let mut admin = admin::settings(&raw.admin, &mut p);
    admin.issuers = idp::resolve(&mut p, "admin.issuers", &raw.admin.issuers, &idps);
    if admin.audience.is_some() {
        introspection::one_introspecting(&mut p, "admin.issuers", admin.issuers.as_deref(), &idps);
    }
    let keys = keys::settings(&raw.keys, base, &mut p);
    let jwks_max_age = p.duration("jwks.max_age", &raw.jwks.max_age, Duration::from_secs(300));
    let cache = CacheSettings {
        max_bytes: raw.cache.max_bytes,
        max_entries: raw.cache.max_entries,
    };
    let token_exchange = exchange::settings(&raw.token_exchange, &routes, &mut p);
    let problems = p.into_vec();
    match (server, admin_listen, signing, problems.is_empty()) {
        (Some(server), Some(admin_listen), Some(signing), true) => Ok(Config {
            generation: 0,
            server,
            admin_listen,
            admin_tls,
            admin,
            keys,
            jwks_max_age,
            idps: idps.into_iter().map(Arc::new).collect(),
            signing,
            routes,
            cache,
            upstream,
            token_exchange,
            source: None,
        }),
        _ => Err(problems),
    }
}
