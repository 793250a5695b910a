//! Builders for the servers the tests run on loopback: [`Fixture`] (all of the below, started
//! together, with a token minter), [`idp::TestIdp`], [`upstream::TestUpstream`] and
//! [`TestProxy`] (the real proxy, started in-process from a real config file, built as a
//! [`ConfigDoc`], and a real key file); for failure tests, [`raw_upstream::RawUpstream`] (strict
//! framing, resets, hangs), [`gate::TcpGate`] (a server that goes down and comes back) and
//! [`raw_client`] (hand-written requests); [`serve::ServeChild`] runs `resigner serve` as a
//! child process; [`postgres::TestPostgres`], a throwaway PostgreSQL cluster for the key store;
//! [`openbao::TestOpenBao`], an OpenBao dev server for the Transit signer;
//! [`oidc_provider::OidcProvider`], a real OpenID Provider (npm oidc-provider) for opaque
//! tokens and introspection.

pub mod client;
pub mod config_doc;
pub mod fixture;
pub mod gate;
pub mod idp;
pub mod jose;
pub mod oidc_provider;
pub mod openbao;
pub mod postgres;
pub mod python;
pub mod raw_client;
pub mod raw_upstream;
pub mod replicas;
pub mod serve;
pub mod softhsm;
pub mod tls;
pub mod upstream;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resigner::jose::alg::Alg;
use resigner::keys::{SigningKey, pem};
use resigner::reload::Reloader;
use resigner::service::Running;
use serde_json::json;

pub use client::{KeepAlive, Reply, get, get_bearer, send};
pub use config_doc::{ConfigDoc, Route};
pub use fixture::{AUDIENCE, Fixture, FixtureBuilder};
pub use idp::{IdpKey, TestIdp, claims, mint, raw_token};
pub use upstream::TestUpstream;

/// Builds a proxy config document around a test IdP and starts the proxy. The typed
/// methods ([`ProxyBuilder::set`], [`ProxyBuilder::add_route`]) set keys of the document;
/// [`ProxyBuilder::server`], [`ProxyBuilder::admin`], [`ProxyBuilder::idp`] and
/// [`ProxyBuilder::route`] take TOML text, parse it and merge it in the same way.
#[derive(Clone)]
pub struct ProxyBuilder {
    doc: ConfigDoc,
    signing_alg: Alg,
    publish: bool,
    /// Fixed listen addresses (public, admin) instead of ephemeral ports.
    listen: Option<(String, String)>,
}

/// The key-encryption key of test proxies with managed keys (64 hex digits).
pub const TEST_KEK: &str = "4b454b2d666f722d7465737473206f6e6c792c206e6576657220696e2070726f";

/// The static management token every test proxy accepts (all four scopes).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The four scopes of the management API.
pub const ALL_SCOPES: [&str; 4] = [
    "read:custom_signing_keys",
    "create:custom_signing_keys",
    "update:custom_signing_keys",
    "delete:custom_signing_keys",
];

/// The three scopes of the managed signing keys' API (`/api/v2/keys/signing`).
pub const SIGNING_SCOPES: [&str; 3] = [
    "read:signing_keys",
    "create:signing_keys",
    "update:signing_keys",
];

/// Hex SHA-256, as `[[admin.tokens]] sha256` wants it.
pub fn sha256_hex(text: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ProxyBuilder {
    pub fn new(idp: &TestIdp) -> Self {
        let mut doc = ConfigDoc::default();
        doc.set("server", "listen", "127.0.0.1:0");
        doc.set("keys", "store", "keys.json");
        doc.set("keys", "poll_interval", "100ms");
        doc.set("admin", "listen", "127.0.0.1:0");
        doc.set("idp", "issuer", &idp.issuer);
        doc.set("idp", "jwks_uri", idp.jwks_uri());
        doc.set("signing", "issuer", "https://resigner.test/");
        doc.set("signing", "max_ttl", "5m");
        let key = json!({"path": "signing.pem", "alg": Alg::ES256.to_string()});
        doc.push("signing", "keys", config_doc::table(key));
        ProxyBuilder {
            doc,
            signing_alg: Alg::ES256,
            publish: true,
            listen: None,
        }
        .admin_token("tests", ADMIN_TOKEN, &ALL_SCOPES)
    }

    /// Sets `key` in `section` (`"server"`, `"idp"`, ...): `.set("server", "max_headers", 20)`.
    pub fn set(mut self, section: &str, key: &str, value: impl serde::Serialize) -> Self {
        self.doc.set(section, key, value);
        self
    }

    /// Adds a `[[routes]]` table.
    pub fn add_route(mut self, route: Route) -> Self {
        self.doc.push("", "routes", route.into_table());
        self
    }

    /// Adds an `[[admin.tokens]]` entry accepting `token` with `scopes`.
    pub fn admin_token(mut self, name: &str, token: &str, scopes: &[&str]) -> Self {
        let entry = json!({"name": name, "sha256": sha256_hex(token), "scopes": scopes});
        self.doc.push("admin", "tokens", config_doc::table(entry));
        self
    }

    /// Adds another IdP (`[idp]` becomes `[[idp]]`): `idp`'s issuer and JWKS, plus the keys
    /// of `extra` (`{"name": "partner", "algorithms": ["ES256"]}`).
    pub fn also_idp(self, idp: &TestIdp, extra: serde_json::Value) -> Self {
        let mut entry = json!({"issuer": idp.issuer, "jwks_uri": idp.jwks_uri()});
        if let (Some(entry), Some(extra)) = (entry.as_object_mut(), extra.as_object()) {
            entry.extend(extra.clone());
        }
        self.also_idp_entry(entry)
    }

    /// Adds another IdP (`[idp]` becomes `[[idp]]`) given as its whole table.
    pub fn also_idp_entry(mut self, entry: serde_json::Value) -> Self {
        self.doc.push_item("", "idp", config_doc::table(entry));
        self
    }

    /// Fetches the IdP keys from `uri` instead of the test IdP's own URL.
    pub fn jwks_uri(self, uri: &str) -> Self {
        self.set("idp", "jwks_uri", uri)
    }

    /// Adds `min_published_age` to `[signing]`.
    pub fn min_published_age(self, age: &str) -> Self {
        self.set("signing", "min_published_age", age)
    }

    /// Start without importing the signing key's public JWK (the signing guard then holds).
    pub fn unpublished(mut self) -> Self {
        self.publish = false;
        self
    }

    /// Leave `jwks_uri` out so the proxy discovers it from the OpenID configuration.
    pub fn discover(mut self) -> Self {
        self.doc.remove("idp", "jwks_uri");
        self
    }

    /// Managed signing keys of `alg` (`[signing.managed]`, sealed under a KEK in the file
    /// `kek` of the proxy's directory) instead of the configured key file.
    pub fn managed(mut self, alg: Alg) -> Self {
        self.doc.remove("signing", "keys");
        self.doc.set("signing.managed", "alg", alg.to_string());
        self.doc.set("signing.managed", "kek_file", "kek");
        self.publish = false;
        self
    }

    pub fn signing_alg(mut self, alg: Alg) -> Self {
        self.signing_alg = alg;
        self.set("signing.keys.0", "alg", alg.to_string())
    }

    pub fn max_ttl(self, ttl: &str) -> Self {
        self.set("signing", "max_ttl", ttl)
    }

    /// A route `/api` -> `upstream` for audience `https://api.test` (prefix stripped).
    pub fn api_route(self, upstream: &TestUpstream) -> Self {
        self.add_route(Route::api().upstream(&upstream.url))
    }

    /// Writes `signing.pem` and `resigner.toml` into `dir` with the given listen addresses
    /// (for running the proxy as a child process); returns the config path.
    pub fn write_config(&self, dir: &std::path::Path, listen: &str, admin_listen: &str) -> PathBuf {
        self.write(dir, listen, admin_listen).0
    }

    fn write(&self, dir: &std::path::Path, listen: &str, admin: &str) -> (PathBuf, ConfigDoc) {
        write_key(&dir.join("signing.pem"), self.signing_alg);
        std::fs::write(dir.join("kek"), TEST_KEK).expect("write kek");
        let mut doc = self.doc.clone();
        doc.set("server", "listen", listen);
        doc.set("admin", "listen", admin);
        let config_path = dir.join("resigner.toml");
        std::fs::write(&config_path, doc.render()).expect("write config");
        (config_path, doc)
    }

    /// Listens on these fixed addresses (see [`free_addr`]), so a restart keeps them.
    pub fn listen_on(mut self, public: &str, admin: &str) -> Self {
        self.listen = Some((public.to_string(), admin.to_string()));
        self
    }

    pub async fn start(self) -> TestProxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let any = "127.0.0.1:0".to_string();
        let (public, admin) = self.listen.clone().unwrap_or((any.clone(), any));
        let (config_path, doc) = self.write(dir.path(), &public, &admin);
        let config =
            resigner::load_config(&config_path).unwrap_or_else(|e| panic!("{e}\n{}", doc.render()));
        let running = resigner::start(config).await.expect("proxy starts");
        let proxy = TestProxy {
            running,
            dir,
            config_path,
            doc: Mutex::new(doc),
        };
        if self.publish {
            let jwk = proxy.active_jwk();
            let reply = proxy.put_keys(&serde_json::json!({ "keys": [jwk] })).await;
            assert_eq!(
                reply.status, 200,
                "publishing the signing key: {:?}",
                reply.body
            );
        }
        proxy
    }
}

/// The line form: TOML text parsed and merged into the document (no text is patched), for
/// tests written before the typed methods; new tests use [`Fixture`] or [`ProxyBuilder::set`].
#[allow(dead_code, reason = "kept for tests on other branches")]
impl ProxyBuilder {
    /// Merges `line` into `[server]`, e.g. `max_headers = 20`.
    pub fn server(self, line: &str) -> Self {
        self.merged("[server]", line)
    }

    /// Merges `line` into `[admin]`, e.g. `audience = "https://resigner.test/admin"`.
    pub fn admin(self, line: &str) -> Self {
        self.merged("[admin]", line)
    }

    /// Merges `line` into `[idp]`, e.g. `algorithms = ["RS256", "PS256"]`.
    pub fn idp(self, line: &str) -> Self {
        self.merged("[idp]", line)
    }

    /// Adds a `[[routes]]` table from TOML text: its keys (and optionally `[routes.claims]`).
    pub fn route(self, body: &str) -> Self {
        self.merged("[[routes]]", body)
    }

    fn merged(mut self, header: &str, text: &str) -> Self {
        self.doc.merge(header, text);
        self
    }
}

/// A ready proxy with `/api` -> a test upstream and the given `[server]` lines, a valid
/// token for it, and the IdP it trusts (keep it alive while the proxy runs).
#[allow(
    dead_code,
    reason = "kept for tests on other branches; new tests use Fixture"
)]
pub async fn proxy_with(lines: &[&str]) -> (TestProxy, TestUpstream, String, TestIdp) {
    let fixture = Fixture::builder()
        .await
        .with_proxy(|builder| lines.iter().fold(builder, |b, line| b.server(line)))
        .start()
        .await;
    let token = fixture.token();
    (fixture.proxy, fixture.upstream, token, fixture.idp)
}

/// The public JWK of a freshly generated key for `alg`.
pub fn public_jwk(alg: Alg) -> serde_json::Value {
    let der = SigningKey::generate_pkcs8(alg).expect("generate key");
    let key = SigningKey::from_pkcs8(&der, alg, None).expect("parse key");
    serde_json::Value::Object(key.public_jwk().to_json())
}

/// A loopback address that was free a moment ago (for child processes that need a fixed port).
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// Writes a freshly generated PKCS#8 PEM signing key.
pub fn write_key(path: &std::path::Path, alg: Alg) {
    let der = SigningKey::generate_pkcs8(alg).expect("generate key");
    std::fs::write(path, pem::encode(&der, "PRIVATE KEY")).expect("write key");
}

/// A running proxy with its temp dir (config and key files).
pub struct TestProxy {
    pub running: Running,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    /// The config as written to `config_path` (updated by [`TestProxy::rotate_signing_key`]).
    doc: Mutex<ConfigDoc>,
}

impl TestProxy {
    /// The kid of the active signing key of the running config.
    pub fn active_kid(&self) -> String {
        self.running.state.config().signing.active_kid.clone()
    }

    /// The public JWK of the active signing key of the running config.
    pub fn active_jwk(&self) -> serde_json::Map<String, serde_json::Value> {
        self.running
            .state
            .config()
            .signing
            .active()
            .expect("the active key is connected")
            .public_jwk()
            .to_json()
    }

    /// Stops the proxy (draining in-flight requests) and starts it again from the same
    /// config file, key file and key store, as a process restart would.
    pub async fn restart(self) -> TestProxy {
        let TestProxy {
            running,
            dir,
            config_path,
            doc,
        } = self;
        running.shutdown(Duration::from_secs(5)).await;
        let config = resigner::load_config(&config_path).expect("config still valid");
        let running = resigner::start(config).await.expect("proxy restarts");
        TestProxy {
            running,
            dir,
            config_path,
            doc,
        }
    }

    /// Starts a file watcher on the config, key and certificate files, as `resigner serve`
    /// does; keep the tasks while the test runs.
    pub fn watch(&self) -> (Arc<Reloader>, Vec<tokio::task::JoinHandle<()>>) {
        let reloader = Reloader::new(&self.config_path, self.running.state.clone());
        for resolver in self.running.cert_resolvers() {
            reloader.add_cert_resolver(resolver.clone());
        }
        let tasks = reloader.spawn(resigner::reload::Hangups::register());
        (reloader, tasks)
    }

    /// Rewrites the config file: the config the proxy runs (as started, or as last rotated),
    /// changed by `edit`. Each call starts from that config again; edits do not pile up.
    pub fn rewrite_config(&self, edit: impl FnOnce(&mut ConfigDoc)) {
        let mut doc = self.doc.lock().expect("config lock").clone();
        edit(&mut doc);
        std::fs::write(&self.config_path, doc.render()).expect("write config");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.public_addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.admin_addr)
    }

    pub async fn ready(&self) {
        assert!(
            self.running.wait_ready(Duration::from_secs(10)).await,
            "IdP keys never loaded"
        );
    }

    pub fn metrics(&self) -> &resigner::metrics::Metrics {
        &self.running.state.metrics
    }

    pub fn counter(
        &self,
        pick: impl Fn(&resigner::metrics::Metrics) -> &resigner::metrics::Counter,
    ) -> u64 {
        resigner::metrics::Metrics::get(pick(self.metrics()))
    }

    /// `PUT /api/v2/keys/custom-signing` with the test admin token.
    pub async fn put_keys(&self, body: &serde_json::Value) -> client::Reply {
        client::send(
            http::Method::PUT,
            &self.admin_url("/api/v2/keys/custom-signing"),
            &[
                ("authorization", &format!("Bearer {ADMIN_TOKEN}")),
                ("content-type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
        .await
    }

    /// Replaces the signing key file with a new key, publishes its public JWK next to the old
    /// one, and installs the reloaded config, as a config reload does. Returns the new kid.
    pub async fn rotate_signing_key(&self, alg: Alg) -> String {
        let name = format!("signing-{}.pem", self.running.state.config().generation + 1);
        write_key(&self.dir.path().join(&name), alg);
        let text = {
            let mut doc = self.doc.lock().expect("config lock");
            doc.set("signing.keys.0", "path", &name);
            doc.set("signing.keys.0", "alg", alg.to_string());
            doc.render()
        };
        std::fs::write(&self.config_path, text).expect("write config");
        let config = resigner::load_config(&self.config_path).expect("reloaded config is valid");
        let kid = config.signing.active_kid.clone();
        let old = self.active_jwk();
        let new = config
            .signing
            .active()
            .expect("the active key is connected")
            .public_jwk()
            .to_json();
        let reply = self
            .put_keys(&serde_json::json!({ "keys": [old, new] }))
            .await;
        assert_eq!(
            reply.status, 200,
            "publishing the new key: {:?}",
            reply.body
        );
        self.running.state.install_config(config);
        kid
    }
}
