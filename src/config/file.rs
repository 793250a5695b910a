//! The config file exactly as written (TOML, serde). Unknown keys are errors so a typo never
//! silently falls back to a default. `config/example.toml` documents every field; a field
//! added here is also listed in `schema.rs` (its tests fail until it is).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: ServerSection,
    #[serde(default)]
    pub admin: AdminSection,
    /// `[idp]` (one table) or `[[idp]]` (several): the schema check (`schema::normalize`)
    /// turns a single table into a list of one before this shape is read.
    pub idp: Vec<IdpSection>,
    pub signing: SigningSection,
    #[serde(default)]
    pub routes: Vec<RouteSection>,
    #[serde(default)]
    pub cache: CacheSection,
    #[serde(default)]
    pub upstream: UpstreamSection,
    #[serde(default)]
    pub keys: KeysSection,
    #[serde(default)]
    pub jwks: JwksSection,
    /// RFC 8693 token exchange at `POST /oauth/token`; absent: no token endpoint.
    pub token_exchange: Option<TokenExchangeSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeSection {
    #[serde(default)]
    pub clients: Vec<ExchangeClientSection>,
}

/// One client allowed to exchange tokens: its secret kept as hex SHA-256.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeClientSection {
    pub client_id: String,
    pub secret_sha256: String,
    /// The route prefixes it may get tokens for; default: every re-signing route.
    pub routes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: String,
    pub header_read_timeout: Option<String>,
    /// PEM certificate chain and key: the listener serves HTTPS when both are set.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub max_header_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    pub body_read_timeout: Option<String>,
    pub max_connections: Option<usize>,
    /// The accept queue of both listeners (capped by `net.core.somaxconn`).
    pub listen_backlog: Option<usize>,
    pub drain_timeout: Option<String>,
    /// Threads serving the public listener; 0 or absent: one per core.
    pub workers: Option<usize>,
    /// `per_core` or `work_stealing` (see `crate::http::workers`).
    pub scheduler: Option<String>,
    /// The public listener's own absolute base URL, for the discovery documents' `jwks_uri`.
    pub public_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    pub listen: Option<String>,
    /// `aud` that IdP access tokens must carry to use the management API.
    pub audience: Option<String>,
    #[serde(default)]
    pub tokens: Vec<StaticTokenSection>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// The IdPs (issuer or name) whose tokens the management API accepts; default: all.
    pub issuers: Option<Vec<String>>,
}

/// A static management API token, stored as the hex SHA-256 of the token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticTokenSection {
    pub name: String,
    pub sha256: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// The custom key store: a file path, or a `postgres://` URL.
    pub store: Option<String>,
    pub store_password_file: Option<String>,
    pub cache: Option<String>,
    pub poll_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSection {
    pub max_age: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpSection {
    /// The IdP's label in metrics, logs and `issuers` lists; default: the issuer's host.
    pub name: Option<String>,
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub algorithms: Option<Vec<String>>,
    pub leeway: Option<String>,
    pub require_typ: Option<String>,
    pub refresh: Option<String>,
    pub refresh_min: Option<String>,
    pub refresh_max: Option<String>,
    pub unknown_kid_cooldown: Option<String>,
    pub max_stale: Option<String>,
    pub fetch_timeout: Option<String>,
    /// Extra trust anchors (PEM) for a private IdP's HTTPS certificate.
    pub ca_file: Option<String>,
    /// The claims a token's scopes are read from (default `["scope"]`).
    pub scope_claims: Option<Vec<String>>,
    /// RFC 7662: opaque (non-JWS) tokens are checked at this IdP's introspection endpoint.
    pub introspection: Option<IntrospectionSection>,
}

/// `[idp] introspection = { endpoint, client_id, client_secret_file | client_secret_env, ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionSection {
    pub endpoint: String,
    pub client_id: String,
    pub client_secret_file: Option<String>,
    pub client_secret_env: Option<String>,
    pub timeout: Option<String>,
    /// The longest an active answer is reused (also bounded by the token's `exp`).
    pub cache_max: Option<String>,
    /// How long an inactive answer is reused.
    pub negative_ttl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningSection {
    pub issuer: String,
    pub max_ttl: Option<String>,
    pub min_published_age: Option<String>,
    pub active: Option<String>,
    #[serde(default)]
    pub keys: Vec<SigningKeySection>,
    /// Managed keys (generated, sealed, rotated by resigner): instead of `keys`.
    pub managed: Option<ManagedSection>,
}

/// `[signing.managed]`: exactly one custody, `kek_file`, `kek_env`, `pkcs11` or `transit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedSection {
    pub alg: String,
    pub kek_file: Option<String>,
    pub kek_env: Option<String>,
    pub pkcs11: Option<ManagedPkcs11Section>,
    pub transit: Option<ManagedTransitSection>,
    pub rotate_every: Option<String>,
    pub keep_previous: Option<u64>,
}

/// The token managed keys are generated on (labels are chosen by resigner).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedPkcs11Section {
    pub module: String,
    pub token_label: String,
    pub pin_file: Option<String>,
    pub pin_env: Option<String>,
}

/// The Vault/OpenBao Transit engine managed keys are created in (names chosen by resigner).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedTransitSection {
    pub address: String,
    /// Default `transit`.
    pub mount: Option<String>,
    pub token_file: Option<String>,
    pub token_env: Option<String>,
    pub ca_file: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeySection {
    /// Exactly one of `path` (a PKCS#8 PEM file: the in-memory backend), `pkcs11`, `transit`.
    pub path: Option<String>,
    pub pkcs11: Option<Pkcs11Section>,
    pub transit: Option<TransitSection>,
    pub alg: String,
    /// Defaults to the RFC 7638 thumbprint for `path`; required for the other backends.
    pub kid: Option<String>,
}

/// A key on a PKCS#11 token: the module, the token and key labels, and where the user PIN is
/// (exactly one of `pin_file`, `pin_env`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Section {
    pub module: String,
    pub token_label: String,
    pub key_label: String,
    pub pin_file: Option<String>,
    pub pin_env: Option<String>,
}

/// A Vault / OpenBao Transit key (exactly one of `token_file`, `token_env`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitSection {
    pub address: String,
    /// Default `transit`.
    pub mount: Option<String>,
    pub key: String,
    pub token_file: Option<String>,
    pub token_env: Option<String>,
    /// Extra trust anchors (PEM) for an https address.
    pub ca_file: Option<String>,
    /// Default: the latest version when the key is connected.
    pub key_version: Option<u64>,
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub prefix: String,
    pub upstream: String,
    /// `resign` (default), `verify` or `passthrough`.
    pub mode: Option<String>,
    /// Required unless `mode = "passthrough"`.
    pub audience: Option<String>,
    #[serde(default)]
    pub strip_prefix: bool,
    pub header: Option<String>,
    pub timeout: Option<String>,
    /// Outbound TLS: extra trust anchors, and a client certificate for mTLS.
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    #[serde(default)]
    pub claims: ClaimsSection,
    /// Scopes a token must all have (read from `[idp] scope_claims`).
    pub required_scopes: Option<Vec<String>>,
    /// The IdPs (issuer or name) whose tokens this route accepts; default: all.
    pub issuers: Option<Vec<String>>,
    /// `[[routes.require]]`: claim rules a token must all pass.
    #[serde(default)]
    pub require: Vec<RequireSection>,
}

/// One claim rule: `claim` and exactly one of `equals`, `one_of`, `contains`; optionally
/// limited to `methods`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequireSection {
    pub claim: String,
    pub equals: Option<String>,
    pub one_of: Option<Vec<String>>,
    pub contains: Option<String>,
    pub methods: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsSection {
    pub audience: Option<OneOrMany>,
    pub copy: Option<Vec<String>>,
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    #[serde(default)]
    pub set: Map<String, Value>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// A string or a list of strings (the JWT `aud` shape).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    pub max_bytes: Option<u64>,
    pub max_entries: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    pub connect_timeout: Option<String>,
    pub timeout: Option<String>,
    pub pool_idle_timeout: Option<String>,
}
