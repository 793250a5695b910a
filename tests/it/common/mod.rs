//! Builders for the servers the tests run on loopback: [`idp::TestIdp`],
//! [`upstream::TestUpstream`] and [`TestProxy`] (the real proxy, started in-process from a real
//! config file and a real key file); for failure tests, [`raw_upstream::RawUpstream`] (strict
//! framing, resets, hangs), [`gate::TcpGate`] (a server that goes down and comes back) and
//! [`raw_client`] (hand-written requests); [`postgres::TestPostgres`], a throwaway PostgreSQL
//! cluster for the key store.

pub mod client;
pub mod gate;
pub mod idp;
pub mod postgres;
pub mod raw_client;
pub mod raw_upstream;
pub mod tls;
pub mod upstream;

use std::path::PathBuf;
use std::time::Duration;

use resigner::alg::Alg;
use resigner::keys::{SigningKey, pem};
use resigner::server::Running;

pub use client::{Reply, get, get_bearer, send};
pub use idp::{IdpKey, TestIdp, claims, mint, raw_token};
pub use upstream::TestUpstream;

/// Builds a proxy config file around a test IdP and starts the proxy.
pub struct ProxyBuilder {
    issuer: String,
    jwks_uri: Option<String>,
    idp_lines: Vec<String>,
    signing_alg: Alg,
    routes: Vec<String>,
    max_ttl: String,
    publish: bool,
    admin_lines: Vec<String>,
    min_published_age: Option<String>,
    server_lines: Vec<String>,
}

/// The static management token every test proxy accepts (all four scopes).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

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
        ProxyBuilder {
            issuer: idp.issuer.clone(),
            jwks_uri: Some(idp.jwks_uri()),
            idp_lines: vec![],
            signing_alg: Alg::ES256,
            routes: vec![],
            max_ttl: "5m".into(),
            publish: true,
            admin_lines: vec![],
            min_published_age: None,
            server_lines: vec![],
        }
    }

    /// Adds a line to `[server]`, e.g. `max_headers = 20`.
    pub fn server(mut self, line: &str) -> Self {
        self.server_lines.push(line.to_string());
        self
    }

    /// Fetches the IdP keys from `uri` instead of the test IdP's own URL.
    pub fn jwks_uri(mut self, uri: &str) -> Self {
        self.jwks_uri = Some(uri.to_string());
        self
    }

    /// Adds `min_published_age` to `[signing]`.
    pub fn min_published_age(mut self, age: &str) -> Self {
        self.min_published_age = Some(age.to_string());
        self
    }

    /// Start without importing the signing key's public JWK (the signing guard then holds).
    pub fn unpublished(mut self) -> Self {
        self.publish = false;
        self
    }

    /// Adds a line to `[admin]`, e.g. `audience = "https://resigner.test/admin"`.
    pub fn admin(mut self, line: &str) -> Self {
        self.admin_lines.push(line.to_string());
        self
    }

    /// Leave `jwks_uri` out so the proxy discovers it from the OpenID configuration.
    pub fn discover(mut self) -> Self {
        self.jwks_uri = None;
        self
    }

    /// Adds a line to `[idp]`, e.g. `algorithms = ["RS256", "PS256"]`.
    pub fn idp(mut self, line: &str) -> Self {
        self.idp_lines.push(line.to_string());
        self
    }

    pub fn signing_alg(mut self, alg: Alg) -> Self {
        self.signing_alg = alg;
        self
    }

    pub fn max_ttl(mut self, ttl: &str) -> Self {
        self.max_ttl = ttl.into();
        self
    }

    /// Adds a `[[routes]]` table; `body` holds its keys (and optionally `[routes.claims]`).
    pub fn route(mut self, body: &str) -> Self {
        self.routes.push(body.to_string());
        self
    }

    /// A route `/api` -> `upstream` for audience `https://api.test` (prefix stripped).
    pub fn api_route(self, upstream: &TestUpstream) -> Self {
        let body = format!(
            "prefix = \"/api\"\nupstream = \"{}\"\naudience = \"https://api.test\"\nstrip_prefix = true\n",
            upstream.url
        );
        self.route(&body)
    }

    /// Writes `signing.pem` and `resigner.toml` into `dir` with the given listen addresses
    /// (for running the proxy as a child process); returns the config path.
    pub fn write_config(&self, dir: &std::path::Path, listen: &str, admin_listen: &str) -> PathBuf {
        write_key(&dir.join("signing.pem"), self.signing_alg);
        let text = self
            .config_text("signing.pem")
            .replacen("listen = \"127.0.0.1:0\"", "listen = \"@PUBLIC@\"", 1)
            .replacen("listen = \"127.0.0.1:0\"", "listen = \"@ADMIN@\"", 1)
            .replace("@PUBLIC@", listen)
            .replace("@ADMIN@", admin_listen);

        let config_path = dir.join("resigner.toml");
        std::fs::write(&config_path, &text).expect("write config");
        config_path
    }

    pub async fn start(self) -> TestProxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = self.write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
        let text = std::fs::read_to_string(&config_path).unwrap();
        let config = resigner::load_config(&config_path).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let running = resigner::start(config).await.expect("proxy starts");
        let proxy = TestProxy {
            running,
            dir,
            config_path,
            builder_text: text,
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

    fn config_text(&self, key_file: &str) -> String {
        let mut text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{}\n[keys]\nstore = \"keys.json\"\npoll_interval = \"100ms\"\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n{}\n[[admin.tokens]]\nname = \"tests\"\nsha256 = \"{}\"\n\
             scopes = [\"read:custom_signing_keys\", \"create:custom_signing_keys\", \"update:custom_signing_keys\", \"delete:custom_signing_keys\"]\n\
             [idp]\nissuer = \"{}\"\n",
            self.server_lines.join("\n"),
            self.admin_lines.join("\n"),
            sha256_hex(ADMIN_TOKEN),
            self.issuer
        );
        if let Some(uri) = &self.jwks_uri {
            text.push_str(&format!("jwks_uri = \"{uri}\"\n"));
        }
        for line in &self.idp_lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!(
            "[signing]\nissuer = \"https://resigner.test/\"\nmax_ttl = \"{}\"\n",
            self.max_ttl
        ));
        if let Some(age) = &self.min_published_age {
            text.push_str(&format!("min_published_age = \"{age}\"\n"));
        }
        text.push_str(&format!(
            "[[signing.keys]]\npath = \"{key_file}\"\nalg = \"{}\"\n",
            self.signing_alg
        ));

        for route in &self.routes {
            text.push_str("[[routes]]\n");
            text.push_str(route);
            text.push('\n');
        }
        text
    }
}

/// A ready proxy with `/api` -> a test upstream and the given `[server]` lines, a valid
/// token for it, and the IdP it trusts (keep it alive while the proxy runs).
pub async fn proxy_with(lines: &[&str]) -> (TestProxy, TestUpstream, String, TestIdp) {
    let key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let mut builder = ProxyBuilder::new(&idp).api_route(&upstream);
    for line in lines {
        builder = builder.server(line);
    }
    let proxy = builder.start().await;
    proxy.ready().await;
    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
    (proxy, upstream, token, idp)
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
    builder_text: String,
}

impl TestProxy {
    /// The kid of the active signing key of the running config.
    pub fn active_kid(&self) -> String {
        self.running.state.config().signing.active.kid().to_string()
    }

    /// The public JWK of the active signing key of the running config.
    pub fn active_jwk(&self) -> serde_json::Map<String, serde_json::Value> {
        self.running
            .state
            .config()
            .signing
            .active
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
            builder_text,
        } = self;
        running.shutdown(Duration::from_secs(5)).await;
        let config = resigner::load_config(&config_path).expect("config still valid");
        let running = resigner::start(config).await.expect("proxy restarts");
        TestProxy {
            running,
            dir,
            config_path,
            builder_text,
        }
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
        let text = self
            .builder_text
            .replace("path = \"signing.pem\"", &format!("path = \"{name}\""));
        let text = text.replace(
            &format!(
                "alg = \"{}\"",
                self.running.state.config().signing.active.alg()
            ),
            &format!("alg = \"{alg}\""),
        );
        std::fs::write(&self.config_path, text).expect("write config");
        let config = resigner::load_config(&self.config_path).expect("reloaded config is valid");
        let kid = config.signing.active.kid().to_string();
        let old = self
            .running
            .state
            .config()
            .signing
            .active
            .public_jwk()
            .to_json();
        let new = config.signing.active.public_jwk().to_json();
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
