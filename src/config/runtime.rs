//! The validated runtime shape: what a running proxy reads, built only by
//! [`super::validate::validate`] (a `Config` that exists is a config that can run) and
//! swapped whole on reload. Plain data: no I/O, no behaviour beyond field access and the
//! route lookup by prefix ([`Config::route_for`]); the request path owns what is done with
//! it (claim mapping in `proxy::claims`, ...).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use http::header::HeaderName;
use http::uri::{Authority, Scheme, Uri};
use serde_json::{Map, Value};

use crate::http::tls::{ClientTls, TlsFiles};
use crate::jose::alg::Alg;
use crate::keys::SigningKey;
use crate::keys::signer::{BackendSpec, KeySpec};

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
    /// Every `[[idp]]` (at least one), in file order; issuers and names are distinct.
    pub idps: Vec<Arc<IdpSettings>>,
    pub signing: SigningSettings,
    pub routes: Vec<Route>,
    pub cache: CacheSettings,
    pub upstream: UpstreamSettings,
    /// `[token_exchange]`: `POST /oauth/token` is served when set.
    pub token_exchange: Option<TokenExchangeSettings>,
    /// The file this config was read from (set by [`super::load_config`]; `None` for text),
    /// so messages can name the command that fixes a problem.
    pub source: Option<std::path::PathBuf>,
}

/// RFC 8693 token exchange: the clients that may call `POST /oauth/token`.
#[derive(Debug, Clone)]
pub struct TokenExchangeSettings {
    pub clients: Vec<ExchangeClient>,
}

impl TokenExchangeSettings {
    /// The token endpoint's path on the public listener (also named by discovery).
    pub const PATH: &'static str = "/oauth/token";
    /// The one grant it serves.
    pub const GRANT_TYPE: &'static str = "urn:ietf:params:oauth:grant-type:token-exchange";
}

/// A token exchange client, authenticated by a secret of which only the SHA-256 is kept.
#[derive(Debug, Clone)]
pub struct ExchangeClient {
    pub client_id: String,
    /// 1-based position in the config: part of the re-sign cache key of its tokens.
    pub number: u16,
    pub secret_sha256: [u8; 32],
    /// Route ids it may get tokens for; `None`: every re-signing route.
    pub routes: Option<Vec<u32>>,
}

/// Who may use the management API.
#[derive(Debug, Clone, Default)]
pub struct AdminSettings {
    /// `aud` required of IdP access tokens; `None`: only static tokens are accepted.
    pub audience: Option<String>,
    pub tokens: Vec<StaticToken>,
    /// `[admin] issuers`, resolved to issuers: whose tokens are accepted (`None`: every IdP).
    pub issuers: Option<Vec<String>>,
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
    pub store: StoreSelection,
    /// The file store's check for outside edits, or the PostgreSQL store's periodic poll.
    pub poll_interval: Duration,
    /// The PostgreSQL store's local copy of the last set read (served while the database
    /// is down at start); unused by the file store.
    pub cache: std::path::PathBuf,
}

/// Which backend `[keys] store` selects: a path (the file store) or a `postgres://` URL.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSelection {
    File(std::path::PathBuf),
    Postgres {
        /// As written, possibly with a password: shown only through [`StoreSelection`]'s
        /// `Display`/`Debug`, which redact it.
        url: String,
        password_file: Option<std::path::PathBuf>,
    },
}

impl std::fmt::Display for StoreSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSelection::File(path) => write!(f, "{}", path.display()),
            StoreSelection::Postgres { url, .. } => {
                f.write_str(&crate::keys::store::postgres::redact_url(url))
            }
        }
    }
}

impl std::fmt::Debug for StoreSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreSelection({self})")
    }
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
    /// The listen backlog of both listeners: connections the kernel queues for `accept`.
    pub listen_backlog: u32,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// How the public listener's connections map onto threads.
    pub scheduler: crate::http::workers::Scheduler,
    /// Threads serving the public listener (at least 1).
    pub workers: usize,
    /// `[server] public_url` without a trailing `/`: an absolute http(s) URL with no query or
    /// fragment. `None`: no discovery documents are served (see [`crate::discovery`]).
    pub public_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IdpSettings {
    /// The label in metrics (`idp="..."`), logs and `/admin/status`.
    pub name: String,
    /// Compared exactly with a token's `iss`, which selects this IdP.
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
    /// `[idp] scope_claims`: where a token's scopes are (a space-separated string or an
    /// array of strings in each); the union of all of them is the token's scope set.
    pub scope_claims: Vec<String>,
    /// `[idp] introspection`: where opaque tokens are checked (RFC 7662); `None`: opaque
    /// tokens are refused as not being a JWS.
    pub introspection: Option<IntrospectionSettings>,
}

/// An IdP's RFC 7662 introspection endpoint and resigner's client credentials for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionSettings {
    pub endpoint: Uri,
    pub client_id: String,
    /// Read when the config is loaded (from the file or the environment variable).
    pub client_secret: Secret,
    /// `client_secret_file`, watched for hot reload like a key file.
    pub secret_file: Option<std::path::PathBuf>,
    /// One call, connect included.
    pub timeout: Duration,
    /// The longest an active answer is reused (never past the token's `exp`).
    pub cache_max: Duration,
    /// How long an inactive answer is reused.
    pub negative_ttl: Duration,
}

/// A secret read from a file or the environment: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: String) -> Self {
        Secret(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug)]
pub struct SigningSettings {
    pub issuer: String,
    pub max_ttl: Duration,
    /// A key must have been published at least this long before it signs.
    pub min_published_age: Duration,
    /// Every `[[signing.keys]]` entry, in file order: plain data until connected (see
    /// [`crate::keys::signer`]).
    pub specs: Vec<KeySpec>,
    /// The kid of the key that signs (one of `specs`).
    pub active_kid: String,
    /// The connected keys, in `specs` order: set by [`SigningSettings::attach`]. Validation
    /// attaches them itself when every key is in memory (nothing to connect).
    pub keys: Vec<Arc<SigningKey>>,
    active: Option<Arc<SigningKey>>,
    /// The files the signing keys are read from (key files; a backend's PIN or token file
    /// and CA), watched for hot reload.
    pub key_paths: Vec<std::path::PathBuf>,
    /// `[signing.managed]`: the managed current key signs (`specs` is empty, `active_kid`
    /// too); see [`crate::keys::managed`].
    pub managed: Option<crate::keys::managed::ManagedSpec>,
}

impl SigningSettings {
    pub(super) fn new(
        issuer: String,
        max_ttl: Duration,
        min_published_age: Duration,
        specs: Vec<KeySpec>,
        active_kid: String,
        key_paths: Vec<std::path::PathBuf>,
    ) -> Self {
        let mut settings = SigningSettings {
            issuer,
            max_ttl,
            min_published_age,
            specs,
            active_kid,
            keys: Vec::new(),
            active: None,
            key_paths,
            managed: None,
        };
        let memory: Option<Vec<Arc<SigningKey>>> = settings
            .specs
            .iter()
            .map(|spec| match &spec.backend {
                BackendSpec::Memory(key) => Some(key.clone()),
                _ => None,
            })
            .collect();
        if let Some(keys) = memory {
            settings.attach(keys);
        }
        settings
    }

    /// Installs the connected keys (from [`crate::keys::signer::connect_all`] over `specs`).
    pub fn attach(&mut self, keys: Vec<Arc<SigningKey>>) {
        self.active = keys.iter().find(|k| k.kid() == self.active_kid).cloned();
        self.keys = keys;
    }

    /// Whether every spec has its connected key.
    pub fn is_connected(&self) -> bool {
        self.keys.len() == self.specs.len() && self.active.is_some()
    }

    /// The key that signs; `None` until the keys are connected.
    pub fn active(&self) -> Option<&Arc<SigningKey>> {
        self.active.as_ref()
    }
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
    /// The `Host` header sent upstream: the authority.
    pub host: http::HeaderValue,
}

#[derive(Debug)]
pub struct Route {
    /// Index in the config, part of the re-sign cache key.
    pub id: u32,
    pub mode: RouteMode,
    pub prefix: String,
    pub upstream: UpstreamTarget,
    /// Which upstream a client connection's held connection goes to (built once, compared
    /// by pointer first on every request: [`crate::http::bound`]).
    pub bound_key: Arc<crate::http::bound::UpstreamKey>,
    pub audience: String,
    pub strip_prefix: bool,
    pub header: HeaderName,
    pub timeout: Duration,
    pub claims: ClaimMapping,
    /// `required_scopes` and `[[routes.require]]`, checked after verification.
    pub authorization: Authorization,
    /// `issuers`, resolved to issuers: the IdPs whose tokens the route accepts (`None`: all).
    pub issuers: Option<Vec<String>>,
    /// `ca_file`/`client_cert`/`client_key`; `None`: webpki roots, no client certificate.
    pub tls: Option<Arc<ClientTls>>,
}

impl Config {
    /// Files besides the config whose change reloads it: the signing keys' files and the
    /// IdPs' introspection client secrets.
    pub fn watched_files(&self) -> Vec<std::path::PathBuf> {
        let mut files = self.signing.key_paths.clone();
        files.extend(
            self.idps
                .iter()
                .filter_map(|idp| idp.introspection.as_ref())
                .filter_map(|introspection| introspection.secret_file.clone()),
        );
        files
    }

    /// The route whose prefix matches `path` on a segment boundary, longest prefix first:
    /// the one route lookup (the router's, and a token exchange's `resource`).
    pub fn route_for(&self, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|route| prefix_matches(&route.prefix, path))
            .max_by_key(|route| route.prefix.len())
    }

    /// The IdP whose issuer is exactly `iss`.
    pub fn idp_for(&self, iss: &str) -> Option<&Arc<IdpSettings>> {
        self.idps.iter().find(|idp| idp.issuer == iss)
    }
}

/// `prefix` matches `path` on a segment boundary (`/api` matches `/api` and `/api/x`, not
/// `/apix`); `/` matches everything.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let prefix = prefix.trim_end_matches('/');
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether `issuer` is among `accepted` (`None`: every configured IdP is).
pub fn accepts(accepted: Option<&[String]>, issuer: &str) -> bool {
    accepted.is_none_or(|list| list.iter().any(|i| i == issuer))
}

/// A route's authorization, validated when the config loads (evaluated by
/// `proxy::authorize`). Empty: every verified token is authorized.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Authorization {
    /// Scopes the token must all have.
    pub required_scopes: Vec<String>,
    /// `required_scopes` joined by spaces: the `scope` of the 403 challenge.
    pub scope_text: String,
    pub rules: Vec<ClaimRule>,
    /// Every method some rule is limited to, once each. A request's method class is its
    /// position here plus one (0: any other method): requests of one class meet the same
    /// rules, so the class is part of the re-sign cache key.
    pub methods: Vec<Method>,
}

/// One `[[routes.require]]` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRule {
    /// Its position in the route's `require` list (named in the 403 answer).
    pub index: usize,
    pub claim: String,
    pub test: ClaimTest,
    /// The methods it applies to; empty: all.
    pub methods: Vec<Method>,
}

/// What a claim rule asks of the claim's value.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimTest {
    /// The claim is this string.
    Equals(String),
    /// The claim is one of these strings.
    OneOf(Vec<String>),
    /// The claim is an array holding this string.
    Contains(String),
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

/// Claims the mapping may not `set`, `rename` into or `remove`: resigner owns them.
pub const RESERVED: [&str; 5] = ["iss", "aud", "exp", "iat", "nbf"];

/// A route's mapping, validated when the config loads.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimMapping {
    /// `aud` of the re-signed token (a string or an array of strings).
    pub audience: Value,
    /// Claims copied from the incoming token; `None` copies all of them.
    pub copy: Option<Vec<String>>,
    /// `(from, to)` pairs, applied after copying (a renamed claim need not be in `copy`).
    pub rename: Vec<(String, String)>,
    /// Claims set to fixed JSON values.
    pub set: Map<String, Value>,
    /// Claims dropped.
    pub remove: Vec<String>,
}
