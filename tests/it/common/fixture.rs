//! One [`Fixture`] for the tests that drive the whole path: a test IdP with its signing key,
//! a test upstream, the proxy in front of it (its signing key published, the IdP's keys
//! loaded) and a minter of valid tokens. A [`FixtureBuilder`] changes what a test needs; it
//! holds the IdP and the upstream already running, so a test can set them up (or put a TLS
//! front or a gate before them) before the proxy starts.

use std::path::{Path, PathBuf};

use resigner::jose::alg::Alg;
use serde::Serialize;
use serde_json::{Value, json};

use super::{IdpKey, ProxyBuilder, Route, TestIdp, TestProxy, TestUpstream, claims, mint};

/// The audience of the fixture's routes and tokens.
pub const AUDIENCE: &str = "https://api.test";

/// IdP + signing key + upstream + a ready proxy + a token minter.
pub struct Fixture {
    pub proxy: TestProxy,
    pub upstream: TestUpstream,
    pub idp: TestIdp,
    /// The IdP key the fixture's tokens are signed with.
    pub key: IdpKey,
}

/// Valid claims for `idp` and the fixture audience, changed by `edit`, signed with `key`.
fn token_for(idp: &TestIdp, key: &IdpKey, edit: impl FnOnce(&mut Value)) -> String {
    let mut claims = claims(&idp.issuer, AUDIENCE);
    edit(&mut claims);
    mint(key, &claims)
}

impl Fixture {
    /// The default fixture: RS256 IdP key `idp-1`, ES256 signing key, route `/api`.
    pub async fn start() -> Fixture {
        Fixture::builder().await.start().await
    }

    /// Starts the IdP (key `idp-1`) and the upstream; the proxy starts with
    /// [`FixtureBuilder::start`].
    pub async fn builder() -> FixtureBuilder {
        Fixture::builder_with(IdpKey::rs256("idp-1")).await
    }

    /// [`Fixture::builder`] with an IdP serving `key` and tokens signed with it.
    pub async fn builder_with(key: IdpKey) -> FixtureBuilder {
        let idp = TestIdp::start(&[&key]).await;
        let upstream = TestUpstream::start().await;
        let proxy = ProxyBuilder::new(&idp);
        FixtureBuilder {
            idp,
            upstream,
            key,
            also_served: vec![],
            proxy,
            routes: vec![],
        }
    }

    /// Valid claims for the route audience (RFC 9068, an hour to live, a fresh `jti`).
    pub fn claims(&self) -> Value {
        claims(&self.idp.issuer, AUDIENCE)
    }

    /// A valid token for the route audience.
    pub fn token(&self) -> String {
        self.mint(|_| {})
    }

    /// A token of valid claims changed by `edit`: `fixture.mint(|c| c["exp"] = json!(1))`.
    pub fn mint(&self, edit: impl FnOnce(&mut Value)) -> String {
        token_for(&self.idp, &self.key, edit)
    }

    pub fn url(&self, path: &str) -> String {
        self.proxy.url(path)
    }

    /// Sends `token` to `path` (row `name`): asserts `status`; a 200 reached the upstream
    /// once, a refusal carries an RFC 6750 challenge containing `www`, a JSON body with the
    /// same error and description, and reached nothing.
    pub async fn expect(&self, name: &str, path: &str, token: &str, status: u16, www: &str) {
        let before = self.upstream.count();
        let reply = super::get_bearer(&self.url(path), token).await;
        assert_eq!(reply.status, status, "{name}: {:?}", reply.body);
        if status == 200 {
            assert_eq!(self.upstream.count(), before + 1, "{name}: forwarded");
            return;
        }
        let challenge = reply.www();
        assert!(
            challenge.starts_with("Bearer realm=\"resigner\""),
            "{name}: {challenge}"
        );
        assert!(challenge.contains(www), "{name}: {challenge}");
        // The JSON body says what the challenge says.
        let body = reply.json();
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            challenge.contains(&format!("error=\"{error}\"")),
            "{name}: body {body} vs {challenge}"
        );
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "{name}: {body}");
        // (The challenge's quoted-string carries `"` as `'`.)
        let quoted = description.replace('"', "'");
        assert!(challenge.contains(&quoted), "{name}: {body} vs {challenge}");
        assert_eq!(self.upstream.count(), before, "{name}: nothing forwarded");
    }

    pub fn admin_url(&self, path: &str) -> String {
        self.proxy.admin_url(path)
    }
}

/// What a test changes before the proxy starts. The IdP and the upstream are running.
pub struct FixtureBuilder {
    pub idp: TestIdp,
    pub upstream: TestUpstream,
    key: IdpKey,
    also_served: Vec<Value>,
    proxy: ProxyBuilder,
    routes: Vec<Route>,
}

impl FixtureBuilder {
    /// The IdP serves `key` too (after the signing key and any added before).
    pub fn also_serve(self, key: &IdpKey) -> Self {
        self.also_serve_jwk(key.jwk.clone())
    }

    /// The IdP serves `jwk` too, as given (a weak or foreign key it should not use).
    pub fn also_serve_jwk(mut self, jwk: Value) -> Self {
        self.also_served.push(jwk);
        self.serve()
    }

    /// The IdP key the fixture's tokens will be signed with.
    pub fn key(&self) -> &IdpKey {
        &self.key
    }

    fn serve(self) -> Self {
        let mut keys = vec![self.key.jwk.clone()];
        keys.extend(self.also_served.iter().cloned());
        self.idp.set_jwks(json!({ "keys": keys }));
        self
    }

    /// A route of the proxy (the first replaces the default `/api`); one without an upstream
    /// goes to the fixture's upstream.
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route.on(&self.upstream.url));
        self
    }

    /// Sets `key` in `section` of the config: `.set("signing", "max_ttl", "1h")`.
    pub fn set(self, section: &str, key: &str, value: impl Serialize) -> Self {
        self.with_proxy(|proxy| proxy.set(section, key, value))
    }

    /// Sets a `[server]` key: `.server("max_headers", 20)`.
    pub fn server(self, key: &str, value: impl Serialize) -> Self {
        self.set("server", key, value)
    }

    /// Sets an `[admin]` key: `.admin("audience", "https://resigner.test/api/v2/")`.
    pub fn admin(self, key: &str, value: impl Serialize) -> Self {
        self.set("admin", key, value)
    }

    /// Sets an `[idp]` key: `.idp("refresh", "100ms")`.
    pub fn idp(self, key: &str, value: impl Serialize) -> Self {
        self.set("idp", key, value)
    }

    /// Another `[[admin.tokens]]` entry accepting `token` with `scopes`.
    pub fn admin_token(self, name: &str, token: &str, scopes: &[&str]) -> Self {
        self.with_proxy(|proxy| proxy.admin_token(name, token, scopes))
    }

    pub fn signing_alg(self, alg: Alg) -> Self {
        self.with_proxy(|proxy| proxy.signing_alg(alg))
    }

    pub fn max_ttl(self, ttl: &str) -> Self {
        self.with_proxy(|proxy| proxy.max_ttl(ttl))
    }

    pub fn min_published_age(self, age: &str) -> Self {
        self.with_proxy(|proxy| proxy.min_published_age(age))
    }

    /// The signing key's public JWK is not imported (the signing guard holds).
    pub fn unpublished(self) -> Self {
        self.with_proxy(ProxyBuilder::unpublished)
    }

    /// No `jwks_uri`: the proxy discovers it from the OpenID configuration.
    pub fn discover(self) -> Self {
        self.with_proxy(ProxyBuilder::discover)
    }

    /// The proxy fetches the IdP keys from `uri` (a gate or a TLS front before the IdP).
    pub fn jwks_uri(self, uri: &str) -> Self {
        self.with_proxy(|proxy| proxy.jwks_uri(uri))
    }

    /// Anything else the [`ProxyBuilder`] offers.
    pub fn with_proxy(mut self, edit: impl FnOnce(ProxyBuilder) -> ProxyBuilder) -> Self {
        self.proxy = edit(self.proxy);
        self
    }

    /// A valid token from the IdP's signing key (for tests that run `resigner serve`).
    pub fn token(&self) -> String {
        self.mint(|_| {})
    }

    /// A token of valid claims changed by `edit`, as [`Fixture::mint`].
    pub fn mint(&self, edit: impl FnOnce(&mut Value)) -> String {
        token_for(&self.idp, &self.key, edit)
    }

    /// The proxy builder with the routes (or the default `/api`).
    fn proxy_builder(&self) -> ProxyBuilder {
        let proxy = self.proxy.clone();
        if self.routes.is_empty() {
            return proxy.api_route(&self.upstream);
        }
        self.routes
            .iter()
            .cloned()
            .fold(proxy, ProxyBuilder::add_route)
    }

    /// Writes the key and the config into `dir` for `resigner serve`; returns the config path.
    pub fn write_config(&self, dir: &Path, listen: &str, admin_listen: &str) -> PathBuf {
        self.proxy_builder().write_config(dir, listen, admin_listen)
    }

    /// Starts the proxy and waits until it has the IdP's keys.
    pub async fn start(self) -> Fixture {
        let fixture = self.start_not_ready().await;
        fixture.proxy.ready().await;
        fixture
    }

    /// Starts the proxy without waiting for the IdP's keys (a test of what happens before).
    pub async fn start_not_ready(self) -> Fixture {
        let proxy = self.proxy_builder().start().await;
        Fixture {
            proxy,
            upstream: self.upstream,
            idp: self.idp,
            key: self.key,
        }
    }
}
