//! The demo's development IdP: a fresh RS256 key per run, minting RFC 9068 access tokens
//! with jsonwebtoken (an implementation independent of ours, so the demo shows interop):
//! `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json` and
//! `POST /oauth/token` (`grant_type=client_credentials`, optional `client_id`, `audience`).
//!
//! May use: `keys` (key generation, PEM), `jose`, `http::body` and [`super::loopback`].

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value, json};

use super::DemoError;
use super::loopback::{bind, serve};
use crate::http::body::{self, Body};
use crate::jose::alg::Alg;
use crate::jose::b64;
use crate::keys::{SigningKey, pem};

/// The development IdP's signing state.
pub struct DevIdp {
    pub issuer: String,
    kid: String,
    key: EncodingKey,
    jwk: Map<String, Value>,
}

/// Audience the demo IdP puts in tokens by default (the demo route's audience).
pub const DEMO_AUDIENCE: &str = "https://api.demo.local";

impl DevIdp {
    /// Generates a fresh RS256 key for an IdP at `issuer`.
    pub fn generate(issuer: String) -> Result<Self, DemoError> {
        let der =
            SigningKey::generate_pkcs8(Alg::RS256).map_err(|e| DemoError::Key(e.to_string()))?;
        let public = SigningKey::from_pkcs8(&der, Alg::RS256, None).map_err(DemoError::Key)?;
        let kid = format!("dev-idp-{}", &public.kid()[..8]);
        let mut jwk = public.public_jwk().material.members();
        jwk.insert("kid".into(), Value::from(kid.clone()));
        jwk.insert("use".into(), Value::from("sig"));
        jwk.insert("alg".into(), Value::from("RS256"));
        let key = EncodingKey::from_rsa_pem(pem::encode(&der, "PRIVATE KEY").as_bytes())
            .map_err(|e| DemoError::Key(e.to_string()))?;
        Ok(DevIdp {
            issuer,
            kid,
            key,
            jwk,
        })
    }

    /// Mints an RFC 9068 access token for `client_id` and `audience`.
    pub fn mint(&self, client_id: &str, audience: &str) -> Result<String, String> {
        let now = crate::jose::time::now_unix();
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| "no randomness".to_string())?;
        let claims = json!({
            "iss": self.issuer, "sub": format!("{client_id}@clients"), "aud": audience,
            "iat": now, "exp": now + 3600, "jti": b64::encode(jti),
            "client_id": client_id, "scope": "read:orders write:orders", "gty": "client-credentials",
            "https://demo.local/roles": ["admin", "auditor"],
        });
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/.well-known/openid-configuration") => body::json(
                StatusCode::OK,
                &json!({
                    "issuer": self.issuer,
                    "jwks_uri": format!("{}.well-known/jwks.json", self.issuer),
                    "token_endpoint": format!("{}oauth/token", self.issuer),
                    "grant_types_supported": ["client_credentials"],
                }),
            ),
            (&Method::GET, "/.well-known/jwks.json") => {
                body::json(StatusCode::OK, &json!({"keys": [self.jwk]}))
            }
            (&Method::POST, "/oauth/token") => {
                let form = match Limited::new(request.into_body(), 16 * 1024).collect().await {
                    Ok(body) => parse_form(&body.to_bytes()),
                    Err(_) => return oauth_error("invalid_request", "body too large"),
                };
                if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
                    return oauth_error(
                        "unsupported_grant_type",
                        "only client_credentials is supported",
                    );
                }
                let client = form.get("client_id").map_or("demo-client", String::as_str);
                let audience = form.get("audience").map_or(DEMO_AUDIENCE, String::as_str);
                match self.mint(client, audience) {
                    Ok(token) => body::json(
                        StatusCode::OK,
                        &json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
                    ),
                    Err(err) => body::json(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &json!({"error": "server_error", "error_description": err}),
                    ),
                }
            }
            _ => body::json(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
        }
    }
}

fn oauth_error(code: &str, description: &str) -> Response<Body> {
    body::json(
        StatusCode::BAD_REQUEST,
        &json!({"error": code, "error_description": description}),
    )
}

/// Parses `application/x-www-form-urlencoded` ([`crate::http::form::parse`]); a body it
/// refuses (a repeated parameter, not UTF-8) is an empty form.
pub fn parse_form(bytes: &[u8]) -> std::collections::HashMap<String, String> {
    crate::http::form::parse(bytes)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Starts the development IdP on `addr`; returns its issuer URL.
pub async fn start_dev_idp(addr: SocketAddr) -> Result<(Arc<DevIdp>, SocketAddr), DemoError> {
    let listener = bind(addr).await?;
    let local = listener.local_addr()?;
    let idp = Arc::new(DevIdp::generate(format!("http://{local}/"))?);
    let shared = idp.clone();
    tokio::spawn(serve(listener, move |request| {
        let idp = shared.clone();
        async move { idp.handle(request).await }
    }));
    Ok((idp, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let form =
            parse_form(b"grant_type=client_credentials&audience=https%3A%2F%2Fa.b&x=a+b&bad=%zz");
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["audience"], "https://a.b");
        assert_eq!(form["x"], "a b");
        assert_eq!(form["bad"], "%zz");
    }
}
