//! From the file shape to the runtime shape: every field checked, every problem collected and
//! reported at once, signing keys loaded. A `Config` that exists is a config that can run.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use http::uri::{Authority, Scheme, Uri};
use serde_json::Value;

use super::file::{self, FileConfig, OneOrMany};
use super::transport;
use crate::http::tls::{ClientTls, TlsFiles};
use crate::jose::alg::Alg;
use crate::jose::time::parse_duration;
use crate::keys::SigningKey;
use crate::proxy::claims::{ClaimMapping, RESERVED};

/// The validated runtime configuration. Immutable; a reload builds a new one.
#[derive(Debug)]
pub struct Config {
    /// Set when the config is installed; part of the re-sign cache key.
    pub generation: u64,
    pub server: ServerSettings,
    pub admin_listen: SocketAddr,
    /// `[admin] tls_cert`/`tls_key`: the admin listener serves HTTPS when set.
    pub admin_tls: Option<TlsFiles>,
    pub admin: AdminSettings,
    pub keys: KeysSettings,
    /// `Cache-Control: max-age` of the published JWKS.
    pub jwks_max_age: Duration,
    pub idp: Arc<IdpSettings>,
    pub signing: SigningSettings,
    pub routes: Vec<Route>,
    pub cache: CacheSettings,
    pub upstream: UpstreamSettings,
    /// The file this config was read from (set by [`super::load_config`]; `None` for text),
    /// so messages can name the command that fixes a problem.
    pub source: Option<std::path::PathBuf>,
}

/// Who may use the management API.
#[derive(Debug, Clone, Default)]
pub struct AdminSettings {
    /// `aud` required of IdP access tokens; `None`: only static tokens are accepted.
    pub audience: Option<String>,
    pub tokens: Vec<StaticToken>,
}

/// A static management token: only its SHA-256 is kept.
#[derive(Debug, Clone)]
pub struct StaticToken {
    pub name: String,
    pub sha256: [u8; 32],
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct KeysSettings {
    pub store: std::path::PathBuf,
    pub poll_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Also bounds the TLS handshake.
    pub header_read_timeout: Duration,
    /// The listener serves HTTPS when set.
    pub tls: Option<TlsFiles>,
    /// Largest HTTP/1 request head (hyper's read buffer) and HTTP/2 header list, in bytes.
    pub max_header_bytes: usize,
    /// Most header fields in an HTTP/1 request.
    pub max_headers: usize,
    /// Longest wait for the next chunk of a request body being forwarded.
    pub body_read_timeout: Duration,
    /// Open connections per listener; further connections wait to be accepted.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// How the public listener's connections map onto threads.
    pub scheduler: crate::http::workers::Scheduler,
    /// Threads serving the public listener (at least 1).
    pub workers: usize,
}

#[derive(Debug, Clone)]
pub struct IdpSettings {
    pub issuer: String,
    /// `None`: discovered from `{issuer}/.well-known/openid-configuration`.
    pub jwks_uri: Option<Uri>,
    pub algorithms: Vec<Alg>,
    pub leeway: Duration,
    pub require_typ: Option<String>,
    /// Refresh interval when the JWKS response has no `Cache-Control: max-age`.
    pub refresh: Duration,
    pub refresh_min: Duration,
    pub refresh_max: Duration,
    pub unknown_kid_cooldown: Duration,
    /// How long the last good key set keeps serving while refreshes fail.
    pub max_stale: Duration,
    pub fetch_timeout: Duration,
    pub max_response_bytes: usize,
    pub max_keys: usize,
    /// `[idp] ca_file`: extra trust anchors for the IdP's HTTPS certificate.
    pub tls: Option<Arc<ClientTls>>,
}

#[derive(Debug)]
pub struct SigningSettings {
    pub issuer: String,
    pub max_ttl: Duration,
    /// A key must have been published at least this long before it signs.
    pub min_published_age: Duration,
    pub keys: Vec<Arc<SigningKey>>,
    /// The key files, watched for hot reload.
    pub key_paths: Vec<std::path::PathBuf>,
    pub active: Arc<SigningKey>,
}

#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub max_bytes: Option<u64>,
    pub max_entries: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub pool_idle_timeout: Duration,
}

/// Where a route forwards to: scheme and authority, plus a base path prepended to requests.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Without trailing slash; empty for the root.
    pub base_path: String,
}

#[derive(Debug)]
pub struct Route {
    /// Index in the config, part of the re-sign cache key.
    pub id: u32,
    pub mode: RouteMode,
    pub prefix: String,
    pub upstream: UpstreamTarget,
    pub audience: String,
    pub strip_prefix: bool,
    pub header: HeaderName,
    pub timeout: Duration,
    pub claims: ClaimMapping,
    /// `ca_file`/`client_cert`/`client_key`; `None`: webpki roots, no client certificate.
    pub tls: Option<Arc<ClientTls>>,
}

/// What a route does with the incoming token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMode {
    /// Verify, map the claims, re-sign with the active key, forward the new token.
    Resign,
    /// Verify and forward the IdP token unchanged (no claim mapping, no signing).
    Verify,
    /// No token work at all: the request is forwarded as it came (hop-by-hop headers aside).
    /// For public endpoints of a legacy API; never the default.
    Passthrough,
}

impl Config {
    /// The route whose prefix matches `path` on a segment boundary, longest prefix first.
    pub fn route_for(&self, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|route| prefix_matches(&route.prefix, path))
            .max_by_key(|route| route.prefix.len())
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let prefix = prefix.trim_end_matches('/');
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The shortest timeout or refresh interval accepted: zero would fail every request or
/// spin a fetch loop against the IdP.
const MIN_TIMEOUT: Duration = Duration::from_millis(50);

/// The largest incoming token accepted, in bytes.
pub const fn max_token_bytes() -> usize {
    MAX_TOKEN_BYTES
}

/// Collects problems as "field: message" lines.
#[derive(Default)]
pub(super) struct Problems(Vec<String>);

impl Problems {
    pub(super) fn push(&mut self, field: impl AsRef<str>, message: impl AsRef<str>) {
        self.0
            .push(format!("{}: {}", field.as_ref(), message.as_ref()));
    }

    pub(super) fn duration(
        &mut self,
        field: &str,
        value: &Option<String>,
        default: Duration,
    ) -> Duration {
        match value.as_deref().map(parse_duration) {
            None => default,
            Some(Ok(duration)) => duration,
            Some(Err(message)) => {
                self.push(field, message);
                default
            }
        }
    }

    /// Like [`Problems::duration`], and at least `min`.
    pub(super) fn duration_min(
        &mut self,
        field: &str,
        value: &Option<String>,
        default: Duration,
        min: Duration,
    ) -> Duration {
        let duration = self.duration(field, value, default);
        if duration < min {
            self.push(field, format!("must be at least {min:?}"));
        }
        duration
    }

    fn addr(&mut self, field: &str, value: &str) -> Option<SocketAddr> {
        match value.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.push(
                    field,
                    format!("{value:?} is not an address like \"127.0.0.1:8080\""),
                );
                None
            }
        }
    }
}

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
    let mut idp = idp_settings(&raw.idp, &mut p);
    if let Some(ca_file) = raw.idp.ca_file.as_deref() {
        idp.tls = transport::client_tls("idp", Some(ca_file), None, base, &mut p);
    }
    let server = transport::server_settings(listen, server_timeout, &raw.server, base, &mut p);
    let admin_tls = transport::listener_tls(
        "admin",
        &raw.admin.tls_cert,
        &raw.admin.tls_key,
        base,
        &mut p,
    );
    let signing = signing_settings(&raw.signing, base, &mut p);
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
    let routes = routes(&raw.routes, &upstream, base, &mut p);
    if raw.cache.max_bytes.is_some() && raw.cache.max_entries.is_some() {
        p.push("cache", "set max_bytes or max_entries, not both");
    }
    if raw.cache.max_bytes == Some(0) || raw.cache.max_entries == Some(0) {
        p.push(
            "cache",
            "a limit of 0 disables nothing and caches nothing; omit it or give a positive size",
        );
    }
    let admin = admin_settings(&raw.admin, &mut p);
    let keys = KeysSettings {
        store: base.join(raw.keys.store.as_deref().unwrap_or("custom-keys.json")),
        poll_interval: p.duration_min(
            "keys.poll_interval",
            &raw.keys.poll_interval,
            Duration::from_secs(1),
            MIN_TIMEOUT,
        ),
    };
    let jwks_max_age = p.duration("jwks.max_age", &raw.jwks.max_age, Duration::from_secs(300));
    let cache = CacheSettings {
        max_bytes: raw.cache.max_bytes,
        max_entries: raw.cache.max_entries,
    };
    match (server, admin_listen, signing, p.0.is_empty()) {
        (Some(server), Some(admin_listen), Some(signing), true) => Ok(Config {
            generation: 0,
            server,
            admin_listen,
            admin_tls,
            admin,
            keys,
            jwks_max_age,
            idp: Arc::new(idp),
            signing,
            routes,
            cache,
            upstream,
            source: None,
        }),
        _ => Err(p.0),
    }
}

/// Scopes the management API knows (Auth0's names).
pub const ADMIN_SCOPES: [&str; 4] = [
    "read:custom_signing_keys",
    "create:custom_signing_keys",
    "update:custom_signing_keys",
    "delete:custom_signing_keys",
];

fn admin_settings(raw: &file::AdminSection, p: &mut Problems) -> AdminSettings {
    if raw.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
        p.push("admin.audience", "must not be empty");
    }
    let mut tokens = Vec::new();
    for (index, token) in raw.tokens.iter().enumerate() {
        let field = format!("admin.tokens[{index}]");
        if token.name.trim().is_empty() {
            p.push(format!("{field}.name"), "must not be empty");
        }
        let hex = token.sha256.trim().to_ascii_lowercase();
        // Hex digits checked first: slicing a non-ASCII string by byte index can panic (found
        // by fuzz/ target config), and from_str_radix would take "+f" as a digit pair.
        let is_hex = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        let bytes: Option<Vec<u8>> = is_hex
            .then(|| {
                (0..32)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                    .collect()
            })
            .flatten();
        let Some(bytes) = bytes else {
            p.push(
                format!("{field}.sha256"),
                "must be 64 hex digits (resigner token hash prints them)",
            );
            continue;
        };
        for scope in &token.scopes {
            if !ADMIN_SCOPES.contains(&scope.as_str()) {
                p.push(
                    format!("{field}.scopes"),
                    format!(
                        "unknown scope {scope:?} (known: {})",
                        ADMIN_SCOPES.join(", ")
                    ),
                );
            }
        }
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&bytes);
        tokens.push(StaticToken {
            name: token.name.clone(),
            sha256,
            scopes: token.scopes.clone(),
        });
    }
    AdminSettings {
        audience: raw.audience.clone(),
        tokens,
    }
}

fn idp_settings(raw: &file::IdpSection, p: &mut Problems) -> IdpSettings {
    if raw.issuer.trim().is_empty() {
        p.push("idp.issuer", "must not be empty");
    }
    let jwks_uri = match &raw.jwks_uri {
        Some(text) => http_url(p, "idp.jwks_uri", text),
        None => {
            if http_url(p, "idp.issuer", &raw.issuer).is_none() {
                p.push(
                    "idp.jwks_uri",
                    "is required when idp.issuer is not an http(s) URL to discover it from",
                );
            }
            None
        }
    };
    let names = raw
        .algorithms
        .clone()
        .unwrap_or_else(|| vec!["RS256".into()]);
    if names.is_empty() {
        p.push("idp.algorithms", "must list at least one algorithm");
    }
    let mut algorithms = Vec::new();
    for name in &names {
        match Alg::parse(name) {
            Some(alg) if !algorithms.contains(&alg) => algorithms.push(alg),
            Some(_) => {}
            None if name.eq_ignore_ascii_case("none") => {
                p.push("idp.algorithms", "\"none\" is never accepted (RFC 8725 §3.2)")
            }
            None if name.starts_with("HS") => p.push(
                "idp.algorithms",
                format!("{name:?}: HMAC algorithms are not accepted; IdP tokens are verified with public keys"),
            ),
            None => p.push(
                "idp.algorithms",
                format!("unknown algorithm {name:?} (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA)"),
            ),
        }
    }
    let leeway = p.duration("idp.leeway", &raw.leeway, Duration::from_secs(30));
    if leeway > Duration::from_secs(300) {
        p.push(
            "idp.leeway",
            "more than 5 minutes of clock skew is not accepted",
        );
    }
    let refresh = p.duration("idp.refresh", &raw.refresh, Duration::from_secs(600));
    let refresh_min = p.duration_min(
        "idp.refresh_min",
        &raw.refresh_min,
        Duration::from_secs(60),
        MIN_TIMEOUT,
    );
    let refresh_max = p.duration(
        "idp.refresh_max",
        &raw.refresh_max,
        Duration::from_secs(86_400),
    );
    if refresh_min > refresh_max {
        p.push("idp.refresh_min", "must not exceed idp.refresh_max");
    }
    IdpSettings {
        issuer: raw.issuer.clone(),
        jwks_uri,
        algorithms,
        leeway,
        require_typ: raw.require_typ.clone(),
        refresh,
        refresh_min,
        refresh_max,
        unknown_kid_cooldown: p.duration(
            "idp.unknown_kid_cooldown",
            &raw.unknown_kid_cooldown,
            Duration::from_secs(30),
        ),
        max_stale: p.duration_min(
            "idp.max_stale",
            &raw.max_stale,
            Duration::from_secs(86_400),
            Duration::from_secs(1),
        ),
        fetch_timeout: p.duration(
            "idp.fetch_timeout",
            &raw.fetch_timeout,
            Duration::from_secs(5),
        ),
        max_response_bytes: 1024 * 1024,
        max_keys: 100,
        tls: None,
    }
}

fn signing_settings(
    raw: &file::SigningSection,
    base: &Path,
    p: &mut Problems,
) -> Option<SigningSettings> {
    if raw.issuer.trim().is_empty() {
        p.push("signing.issuer", "must not be empty");
    }
    let max_ttl = p.duration("signing.max_ttl", &raw.max_ttl, Duration::from_secs(300));
    if max_ttl.is_zero() {
        p.push("signing.max_ttl", "must be positive");
    }
    if raw.keys.is_empty() {
        p.push(
            "signing.keys",
            "at least one [[signing.keys]] entry is required",
        );
    }
    let mut keys: Vec<Arc<SigningKey>> = Vec::new();
    let mut key_paths = Vec::new();
    for (index, entry) in raw.keys.iter().enumerate() {
        let field = format!("signing.keys[{index}]");
        let Some(alg) = Alg::parse(&entry.alg) else {
            p.push(
                format!("{field}.alg"),
                format!("unknown algorithm {:?}", entry.alg),
            );
            continue;
        };
        let path = base.join(&entry.path);
        key_paths.push(path.clone());
        match SigningKey::load(&path, alg, entry.kid.clone()) {
            Ok(key) if keys.iter().any(|k| k.kid() == key.kid()) => p.push(
                format!("{field}.kid"),
                format!("kid {:?} is used by another key", key.kid()),
            ),
            Ok(key) => keys.push(Arc::new(key)),
            Err(err) => p.push(format!("{field}.path"), err.to_string()),
        }
    }
    let active = match (&raw.active, keys.len()) {
        (Some(kid), _) => match keys.iter().find(|k| k.kid() == kid) {
            Some(key) => Some(key.clone()),
            None => {
                if keys.len() == raw.keys.len() {
                    p.push("signing.active", format!("no signing key has kid {kid:?}"));
                }
                None
            }
        },
        (None, 1) => keys.first().cloned(),
        (None, 0) => None,
        (None, _) => {
            p.push(
                "signing.active",
                "several signing keys are configured: name the active kid",
            );
            None
        }
    };
    let min_published_age = p.duration(
        "signing.min_published_age",
        &raw.min_published_age,
        Duration::ZERO,
    );
    active.map(|active| SigningSettings {
        issuer: raw.issuer.clone(),
        max_ttl,
        min_published_age,
        keys,
        key_paths,
        active,
    })
}

fn routes(
    raw: &[file::RouteSection],
    upstream: &UpstreamSettings,
    base: &Path,
    p: &mut Problems,
) -> Vec<Route> {
    let mut seen = HashSet::new();
    let mut routes = Vec::new();
    for (index, route) in raw.iter().enumerate() {
        let field = format!("routes[{index}]");
        if !route.prefix.starts_with('/') {
            p.push(format!("{field}.prefix"), "must start with '/'");
        } else if !seen.insert(route.prefix.trim_end_matches('/').to_string()) {
            p.push(
                format!("{field}.prefix"),
                format!("{:?} is used by another route", route.prefix),
            );
        }
        let target = http_url(p, &format!("{field}.upstream"), &route.upstream).and_then(|uri| {
            let parts = uri.into_parts();
            if parts
                .path_and_query
                .as_ref()
                .is_some_and(|pq| pq.query().is_some())
            {
                p.push(format!("{field}.upstream"), "must not have a query string");
                return None;
            }
            Some(UpstreamTarget {
                scheme: parts.scheme?,
                authority: parts.authority?,
                base_path: parts
                    .path_and_query
                    .map(|pq| pq.path().trim_end_matches('/').to_string())
                    .unwrap_or_default(),
            })
        });
        let mode = match route.mode.as_deref().unwrap_or("resign") {
            "resign" => RouteMode::Resign,
            "verify" => RouteMode::Verify,
            "passthrough" => RouteMode::Passthrough,
            other => {
                p.push(
                    format!("{field}.mode"),
                    format!("{other:?}: must be \"resign\", \"verify\" or \"passthrough\""),
                );
                RouteMode::Resign
            }
        };
        let audience = route.audience.clone().unwrap_or_default();
        if mode == RouteMode::Passthrough {
            if route.audience.is_some()
                || route.claims.audience.is_some()
                || route.claims.copy.is_some()
                || !route.claims.rename.is_empty()
                || !route.claims.set.is_empty()
                || !route.claims.remove.is_empty()
            {
                p.push(
                    format!("{field}.mode"),
                    "a passthrough route does no token work: remove its audience and claims",
                );
            }
        } else if audience.trim().is_empty() {
            p.push(
                format!("{field}.audience"),
                "is required (the \"aud\" incoming tokens must contain) and must not be empty",
            );
        }
        let header = output_header(
            p,
            &field,
            route.header.as_deref().unwrap_or("Authorization"),
        );
        let timeout = p.duration(
            &format!("{field}.timeout"),
            &route.timeout,
            upstream.timeout,
        );
        let claims = claim_mapping(p, &field, &route.claims, &audience);
        let https = target.as_ref().is_none_or(|t| t.scheme == Scheme::HTTPS);
        let tls = transport::route_tls(&field, route, https, base, p);
        if let (Some(upstream), Some(header)) = (target, header) {
            routes.push(Route {
                id: index as u32,
                prefix: route.prefix.clone(),
                upstream,
                audience,
                mode,
                strip_prefix: route.strip_prefix,
                header,
                timeout,
                claims,
                tls,
            });
        }
    }
    routes
}

fn output_header(p: &mut Problems, field: &str, name: &str) -> Option<HeaderName> {
    let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
        p.push(
            format!("{field}.header"),
            format!("{name:?} is not a valid header name"),
        );
        return None;
    };
    if crate::http::headers::is_hop_by_hop(&header) || header == http::header::HOST {
        p.push(
            format!("{field}.header"),
            format!("{name:?} is a hop-by-hop or Host header"),
        );
        return None;
    }
    Some(header)
}

fn claim_mapping(
    p: &mut Problems,
    field: &str,
    raw: &file::ClaimsSection,
    route_audience: &str,
) -> ClaimMapping {
    let audience = match &raw.audience {
        None => Value::from(route_audience),
        Some(OneOrMany::One(aud)) => Value::from(aud.clone()),
        Some(OneOrMany::Many(list)) => {
            if list.is_empty() {
                p.push(
                    format!("{field}.claims.audience"),
                    "must not be an empty list",
                );
            }
            Value::from(list.clone())
        }
    };
    for (name, value) in &raw.set {
        if value.to_string().contains("$__toml_private_datetime") {
            p.push(
                format!("{field}.claims.set"),
                format!("{name:?} is a TOML date/time; JWT claims have no such type (quote it as a string, or use a number)"),
            );
        }
        if RESERVED.contains(&name.as_str()) {
            p.push(
                format!("{field}.claims.set"),
                format!("{name:?} is set by resigner itself and cannot be overwritten"),
            );
        }
    }
    let mut targets = HashSet::new();
    for (from, to) in &raw.rename {
        if !targets.insert(to) {
            p.push(
                format!("{field}.claims.rename"),
                format!("two claims are renamed to {to:?}"),
            );
        }
        if RESERVED.contains(&from.as_str()) || RESERVED.contains(&to.as_str()) {
            p.push(
                format!("{field}.claims.rename"),
                format!("{from:?} -> {to:?} touches a reserved claim (iss, aud, exp, iat, nbf)"),
            );
        }
    }
    for name in &raw.remove {
        if RESERVED.contains(&name.as_str()) && name != "nbf" {
            p.push(
                format!("{field}.claims.remove"),
                format!("{name:?} is always present in a re-signed token"),
            );
        }
    }
    ClaimMapping {
        audience,
        copy: raw.copy.clone(),
        rename: raw
            .rename
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect(),
        set: raw.set.clone(),
        remove: raw.remove.clone(),
    }
}

fn http_url(p: &mut Problems, field: &str, text: &str) -> Option<Uri> {
    match text.parse::<Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http") | Some("https"))
                && uri.authority().is_some() =>
        {
            Some(uri)
        }
        _ => {
            p.push(field, format!("{text:?} is not an http:// or https:// URL"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/x"));
        assert!(prefix_matches("/api/", "/api/x"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(prefix_matches("/", "/anything"));
    }

    #[test]
    fn admin_token_hash_must_be_ascii_hex() {
        // Found by fuzz/ (target config): a 64-byte value with a multi-byte character at an
        // odd offset panicked when sliced into digit pairs; "+f" parsed as a hex pair.
        let hashes = [format!("{}\u{49c}f", "e".repeat(61)), "+f".repeat(32)];
        for sha256 in hashes {
            let text = format!(
                "[server]\nlisten = \"127.0.0.1:1\"\n[idp]\nissuer = \"https://idp/\"\n\
                 [signing]\nissuer = \"https://me/\"\n\
                 [[admin.tokens]]\nname = \"t\"\nsha256 = \"{sha256}\"\nscopes = []\n"
            );
            let err = crate::config::parse_config(&text, Path::new("/nonexistent")).unwrap_err();
            let problems = err.problems();
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with("admin.tokens[0].sha256: must be 64 hex digits")),
                "{sha256:?}: {problems:#?}"
            );
        }
    }
}
