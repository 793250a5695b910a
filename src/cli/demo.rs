//! `resigner demo`: the whole story in one process with nothing to configure.
//!
//! - a development IdP (RS256 key generated at start, minting with jsonwebtoken):
//!   `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json`,
//!   `POST /oauth/token` (`grant_type=client_credentials`, optional `client_id`, `audience`)
//! - an echo upstream: answers every request with the headers and decoded claims it received
//! - the proxy, signing with a freshly generated ES256 customer key published in its JWKS

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::http::body::{self, Body};
use crate::jose::alg::Alg;
use crate::jose::b64;
use crate::keys::{SigningKey, pem};

pub mod ports;

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("key generation failed: {0}")]
    Key(String),
    #[error("cannot write the demo signing key: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Server(#[from] crate::service::ServerError),
    #[error(transparent)]
    PortInUse(#[from] ports::PortInUse),
}

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

/// Parses `application/x-www-form-urlencoded` (last value wins).
pub fn parse_form(bytes: &[u8]) -> std::collections::HashMap<String, String> {
    let text = String::from_utf8_lossy(bytes);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The echo upstream's answer: method, path, headers and the claims of the received token.
async fn echo(request: Request<Incoming>) -> Response<Body> {
    let headers: Map<String, Value> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                Value::from(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            )
        })
        .collect();
    let token = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let decode = |segment: Option<&str>| {
        segment
            .and_then(b64::decode)
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .unwrap_or(Value::Null)
    };
    let mut parts = token.map(|t| t.split('.')).into_iter().flatten();
    let header = decode(parts.next());
    let claims = decode(parts.next());
    body::json(
        StatusCode::OK,
        &json!({
            "upstream": "resigner demo echo",
            "method": request.method().as_str(),
            "path": request.uri().path(),
            "query": request.uri().query(),
            "headers": headers,
            "token_header": header,
            "token_claims": claims,
        }),
    )
}

/// Serves `handler` on `listener` until the process ends.
async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(request).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, DemoError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| DemoError::Bind(addr, e))
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

/// Starts the echo upstream on `addr`.
pub async fn start_echo_upstream(addr: SocketAddr) -> Result<SocketAddr, DemoError> {
    let listener = bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(serve(listener, echo));
    Ok(local)
}

/// The demo's proxy config, signing with the key at `key_path`.
pub fn demo_config(
    proxy: u16,
    admin: u16,
    issuer: &str,
    upstream: SocketAddr,
    key_path: &Path,
    admin_token_sha256: &str,
) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{proxy}"

[admin]
listen = "127.0.0.1:{admin}"

[[admin.tokens]]
name = "demo"
sha256 = "{admin_token_sha256}"
scopes = ["read:custom_signing_keys", "create:custom_signing_keys", "update:custom_signing_keys", "delete:custom_signing_keys"]

[idp]
issuer = "{issuer}"
algorithms = ["RS256"]
require_typ = "at+jwt"

[signing]
issuer = "https://auth.demo.example/"
max_ttl = "5m"

[[signing.keys]]
path = "{key}"
alg = "ES256"

[[routes]]
prefix = "/api"
upstream = "http://{upstream}"
audience = "{DEMO_AUDIENCE}"
strip_prefix = true

[routes.claims]
audience = "legacy-orders"
rename = {{ "https://demo.local/roles" = "roles" }}
set = {{ tenant = "demo", legacy_level = 2 }}
remove = ["gty"]
"#,
        key = key_path.display().to_string().replace('\\', "/"),
    )
}

/// Runs the demo until Ctrl-C.
pub async fn run(port: u16) -> Result<(), DemoError> {
    ports::check(port)?;
    let ip = std::net::Ipv4Addr::LOCALHOST;
    let (idp, idp_addr) = start_dev_idp((ip, port.wrapping_add(1)).into()).await?;
    let upstream = start_echo_upstream((ip, port.wrapping_add(2)).into()).await?;
    let dir = std::env::temp_dir().join(format!("resigner-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key_path = dir.join("customer-es256.pem");
    let _ = std::fs::remove_file(&key_path);
    let der = SigningKey::generate_pkcs8(Alg::ES256).map_err(|e| DemoError::Key(e.to_string()))?;
    write_private(&key_path, &pem::encode(&der, "PRIVATE KEY"))?;
    let admin_token = random_token()?;
    let text = demo_config(
        port,
        port.wrapping_add(3),
        &idp.issuer,
        upstream,
        &key_path,
        &sha256_hex(&admin_token),
    );
    let config = crate::config::parse_config(&text, &dir)?;
    publish(&config).await?;
    let running = crate::service::start(config).await?;
    running.wait_ready(std::time::Duration::from_secs(10)).await;
    let proxy = running.public_addr;
    let kid = running.state.config().signing.active.kid().to_string();
    println!(
        r#"
resigner demo is running.
  development IdP  http://{idp_addr}/   (issuer; RS256 key, kid in its JWKS)
  echo upstream    http://{upstream}/   (the "legacy API": echoes what it receives)
  proxy            http://{proxy}/      route /api -> echo upstream
  admin            http://{admin}/readyz

1. Get an access token from the IdP:
   TOKEN=$(curl -s -d grant_type=client_credentials http://{idp_addr}/oauth/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

2. Call the legacy API through the proxy:
   curl -s -H "Authorization: Bearer $TOKEN" http://{proxy}/api/orders?page=1
   Look for: "token_header" with "alg":"ES256" and "kid":"{kid}" (the customer key, not the
   IdP's), "token_claims" with "iss":"https://auth.demo.example/", "aud":"legacy-orders",
   "roles" (renamed), "tenant":"demo" and "legacy_level":2 (set), no "gty" (removed), and an
   "exp" at most 5 minutes away.

3. Fetch the aggregated JWKS that resource servers use to verify the re-signed token:
   curl -s http://{proxy}/.well-known/jwks.json
   Look for: the customer key "{kid}" first, then the IdP key.

4. See a rejection (RFC 6750):
   curl -si -H "Authorization: Bearer not.a.token" http://{proxy}/api/orders

5. The Auth0-compatible management API (admin listener) lists the imported customer keys:
   curl -s -H "Authorization: Bearer {admin_token}" http://{admin}/api/v2/keys/custom-signing

Press Ctrl-C to stop."#,
        admin = running.admin_addr,
    );
    let _ = tokio::signal::ctrl_c().await;
    running.shutdown(std::time::Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Imports the demo's signing key into the custom key store before the proxy starts, as
/// `resigner keys import` would through the management API.
async fn publish(config: &crate::config::Config) -> Result<(), DemoError> {
    use crate::keys::store::{FileStore, KeyStore};
    let store = FileStore::open(&config.keys.store).map_err(|e| DemoError::Key(e.to_string()))?;
    let current = store
        .load()
        .await
        .map_err(|e| DemoError::Key(e.to_string()))?;
    let active = &config.signing.active;
    let published_at = std::collections::BTreeMap::from([(
        active.kid().to_string(),
        crate::jose::time::now_unix(),
    )]);
    store
        .compare_and_set(
            current.version,
            vec![active.public_jwk().to_json()],
            published_at,
        )
        .await
        .map_err(|e| DemoError::Key(e.to_string()))?;
    Ok(())
}

fn random_token() -> Result<String, DemoError> {
    let mut bytes = [0u8; 24];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DemoError::Key("no randomness".into()))?;
    Ok(b64::encode(bytes))
}

/// Hex SHA-256 of `text` (the form `[[admin.tokens]] sha256` takes).
pub fn sha256_hex(text: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates a private key file readable by the owner only; an existing file is an error.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
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
