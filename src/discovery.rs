//! Discovery metadata for resigner's own issuer (`[signing] issuer`), so resource servers and
//! gateways that find keys from an issuer (AWS API Gateway JWT authorizers, Spring's
//! `issuer-uri`, PyJWT/`openid-client` users) verify re-signed tokens unchanged.
//!
//! Endpoints on the public listener, served only while `[server] public_url` is set:
//! - `GET|HEAD /.well-known/openid-configuration` — OpenID Connect Discovery 1.0 metadata
//! - `GET|HEAD /.well-known/oauth-authorization-server` — RFC 8414 metadata
//!
//! Without `public_url` there is no absolute `jwks_uri` to publish (the proxy cannot know the
//! URL clients reach it by), so resigner claims neither path: they are routed like any other
//! path (to a `[[routes]]` prefix that matches, else 404 `not_found`), as before this module.
//!
//! The documents say only what is true of a server that issues tokens by re-signing and has
//! no authorization or token endpoint (yet):
//! - `issuer`: `[signing] issuer`, byte for byte (clients compare it with `iss` and with the
//!   URL they discovered from);
//! - `jwks_uri`: `{public_url}/.well-known/jwks.json`;
//! - `response_types_supported`: `[]` — REQUIRED by both specifications, and resigner supports
//!   no `response_type` at all (it has no authorization endpoint; `["token"]` would advertise
//!   an implicit flow that does not exist). `authorization_endpoint` is absent for the same
//!   reason (RFC 8414 allows that; OIDC Discovery calls it REQUIRED for OpenID Providers,
//!   which resigner is not: it issues no ID tokens);
//! - with `[token_exchange]`: `token_endpoint` (`{public_url}/oauth/token`),
//!   `grant_types_supported` (the RFC 8693 grant only) and
//!   `token_endpoint_auth_methods_supported` (`client_secret_basic`, `client_secret_post`);
//! - `id_token_signing_alg_values_supported`: the algorithms of the configured signing keys
//!   (`[[signing.keys]] alg`, in file order, each once), the only algorithms resigner signs
//!   with; RFC 8414 admits OIDC metadata names, so both documents carry it;
//! - `subject_types_supported`: `["public"]` (openid-configuration only, REQUIRED there): `sub`
//!   is passed through from the IdP, the same for every audience.
//!
//! Both bodies are rendered once per config generation ([`DiscoveryCache`]); a request clones
//! `Bytes`. `Cache-Control` is the JWKS's (`[jwks] max_age`). Uses the config snapshot only.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::config::Config;
use crate::http::body::{self, Body};

pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub const OAUTH_AUTHORIZATION_SERVER_PATH: &str = "/.well-known/oauth-authorization-server";
/// `route` label of requests answered here (`resigner_requests_total`).
pub const METRICS_ROUTE: &str = "discovery";

/// Which metadata document a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    OpenidConfiguration,
    OauthAuthorizationServer,
}

impl Document {
    /// The document served at `path`, if any.
    pub fn for_path(path: &str) -> Option<Document> {
        match path {
            OPENID_CONFIGURATION_PATH => Some(Document::OpenidConfiguration),
            OAUTH_AUTHORIZATION_SERVER_PATH => Some(Document::OauthAuthorizationServer),
            _ => None,
        }
    }
}

/// Both documents of one config generation; `None` while `public_url` is unset.
#[derive(Debug, Default)]
pub struct Rendered {
    generation: u64,
    bodies: Option<(Bytes, Bytes)>,
}

impl Rendered {
    /// Renders the documents of `config`; the JWKS is served at `jwks_path` on the public
    /// listener.
    pub fn render(config: &Config, jwks_path: &str) -> Rendered {
        let bodies = config.server.public_url.as_deref().map(|base| {
            let mut algs: Vec<&str> = Vec::new();
            for spec in &config.signing.specs {
                if !algs.contains(&spec.alg.name()) {
                    algs.push(spec.alg.name());
                }
            }
            let mut doc = json!({
                "issuer": config.signing.issuer,
                "jwks_uri": format!("{base}{jwks_path}"),
                "response_types_supported": [],
                "id_token_signing_alg_values_supported": algs,
            });
            if config.token_exchange.is_some()
                && let Value::Object(map) = &mut doc
            {
                use crate::config::runtime::TokenExchangeSettings;
                let token_path = TokenExchangeSettings::PATH;
                map.insert(
                    "token_endpoint".into(),
                    json!(format!("{base}{token_path}")),
                );
                map.insert(
                    "grant_types_supported".into(),
                    json!([TokenExchangeSettings::GRANT_TYPE]),
                );
                map.insert(
                    "token_endpoint_auth_methods_supported".into(),
                    json!(["client_secret_basic", "client_secret_post"]),
                );
            }
            let oauth = serde_json::to_vec(&doc).unwrap_or_default();
            if let Value::Object(map) = &mut doc {
                map.insert("subject_types_supported".into(), json!(["public"]));
            }
            let openid = serde_json::to_vec(&doc).unwrap_or_default();
            (Bytes::from(openid), Bytes::from(oauth))
        });
        Rendered {
            generation: config.generation,
            bodies,
        }
    }

    /// The body of `document`; `None` while discovery is off.
    pub fn body(&self, document: Document) -> Option<&Bytes> {
        self.bodies.as_ref().map(|(openid, oauth)| match document {
            Document::OpenidConfiguration => openid,
            Document::OauthAuthorizationServer => oauth,
        })
    }
}

/// The rendered documents of the last config generation asked for.
#[derive(Debug, Default)]
pub struct DiscoveryCache(ArcSwap<Rendered>);

impl DiscoveryCache {
    /// The documents of `config`, rendered only when its generation changed.
    pub fn current(&self, config: &Config, jwks_path: &str) -> Arc<Rendered> {
        let current = self.0.load_full();
        if current.generation == config.generation {
            return current;
        }
        let rendered = Arc::new(Rendered::render(config, jwks_path));
        self.0.store(rendered.clone());
        rendered
    }
}

/// The response for `document` from `body` (pre-rendered): GET and HEAD only.
pub fn response<B>(
    config: &Config,
    request: &Request<B>,
    document: Document,
    rendered: &Rendered,
) -> Option<Response<Body>> {
    let bytes = rendered.body(document)?;
    let mut response = match *request.method() {
        Method::GET => Response::new(body::full(bytes.clone())),
        Method::HEAD => Response::new(body::empty()),
        _ => {
            let mut response = Response::new(body::empty());
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Some(response);
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let max_age = config.jwks_max_age.as_secs();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &str = "/.well-known/jwks.json";

    #[test]
    fn only_the_two_metadata_paths_are_documents() {
        assert_eq!(
            Document::for_path("/.well-known/openid-configuration"),
            Some(Document::OpenidConfiguration)
        );
        assert_eq!(
            Document::for_path("/.well-known/oauth-authorization-server"),
            Some(Document::OauthAuthorizationServer)
        );
        assert_eq!(
            Document::for_path("/.well-known/openid-configuration/x"),
            None
        );
        assert_eq!(Document::for_path("/.well-known/jwks.json"), None);
    }

    #[test]
    fn documents_name_the_issuer_the_jwks_and_each_signing_algorithm_once() {
        let (_tmp, mut config) = crate::config::example_tests::load_example();
        assert!(
            Rendered::render(&config, JWKS).bodies.is_none(),
            "off without public_url"
        );
        config.server.public_url = Some("https://api.example.com/base".into());
        config.generation = 7;
        let rendered = Rendered::render(&config, JWKS);
        let parse =
            |d| -> Value { serde_json::from_slice(rendered.body(d).expect("rendered")).unwrap() };
        let openid = parse(Document::OpenidConfiguration);
        let oauth = parse(Document::OauthAuthorizationServer);
        assert_eq!(openid["issuer"], config.signing.issuer.as_str());
        assert_eq!(
            openid["jwks_uri"],
            "https://api.example.com/base/.well-known/jwks.json"
        );
        // The example configures two ES256 keys: the algorithm is listed once.
        assert_eq!(
            openid["id_token_signing_alg_values_supported"],
            json!(["ES256"])
        );
        assert_eq!(openid["subject_types_supported"], json!(["public"]));
        assert_eq!(openid["response_types_supported"], json!([]));
        let mut without_subjects = openid.clone();
        without_subjects
            .as_object_mut()
            .unwrap()
            .remove("subject_types_supported");
        assert_eq!(oauth, without_subjects);
        let cache = DiscoveryCache::default();
        assert!(Arc::ptr_eq(
            &cache.current(&config, JWKS),
            &cache.current(&config, JWKS)
        ));
    }
}
