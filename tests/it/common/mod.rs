//! Builders for the servers the tests run on loopback: [`idp::TestIdp`],
//! [`upstream::TestUpstream`] and [`TestProxy`] (the real proxy, started in-process from a real
//! config file and a real key file).

pub mod client;
pub mod idp;
pub mod upstream;

use std::path::PathBuf;
use std::time::Duration;

use resigner::alg::Alg;
use resigner::keys::{SigningKey, pem};
use resigner::server::Running;

pub use client::{get, get_bearer, send};
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
        }
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

    pub async fn start(self) -> TestProxy {
        let dir = tempfile::tempdir().expect("temp dir");
        write_key(&dir.path().join("signing.pem"), self.signing_alg);
        let text = self.config_text("signing.pem");
        let config_path = dir.path().join("resigner.toml");
        std::fs::write(&config_path, &text).expect("write config");
        let config = resigner::load_config(&config_path).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let running = resigner::start(config).await.expect("proxy starts");
        TestProxy {
            running,
            dir,
            config_path,
            builder_text: text,
        }
    }

    fn config_text(&self, key_file: &str) -> String {
        let mut text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[idp]\nissuer = \"{}\"\n",
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
            "[signing]\nissuer = \"https://resigner.test/\"\nmax_ttl = \"{}\"\n[[signing.keys]]\npath = \"{key_file}\"\nalg = \"{}\"\n",
            self.max_ttl, self.signing_alg
        ));
        for route in &self.routes {
            text.push_str("[[routes]]\n");
            text.push_str(route);
            text.push('\n');
        }
        text
    }
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
        pick: impl Fn(&resigner::metrics::Metrics) -> &std::sync::atomic::AtomicU64,
    ) -> u64 {
        resigner::metrics::Metrics::get(pick(self.metrics()))
    }

    /// Replaces the signing key file with a new key and installs the reloaded config, as a
    /// config reload does. Returns the new active kid.
    pub fn rotate_signing_key(&self, alg: Alg) -> String {
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
        self.running.state.install_config(config);
        kid
    }
}
