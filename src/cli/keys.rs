//! The key and token commands of the `resigner` binary, as a library: `keys jwks` (public JWKS
//! from key files), `keys import|list|delete` (a client of the management API,
//! `/api/v2/keys/custom-signing` on the admin listener) and `token hash`.
//!
//! Key files are public JWKs (validated exactly as the management API validates them, so a
//! private member is refused, never passed on) or PKCS#8 PEM private keys, of which only the
//! public JWK is ever rendered. With `--config`, [`configured`] publishes the config's signing
//! keys under their configured kids. Nothing here prints; `main.rs` does.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::{Map, Value, json};

use crate::jose::alg::Alg;
use crate::keys::SigningKey;
use crate::keys::import::{self, MAX_BODY_BYTES};
use crate::keys::pem;

pub mod configured;

/// The management API path, appended to the admin base URL.
pub const KEYS_PATH: &str = "/api/v2/keys/custom-signing";
/// The environment variable `--token` falls back to.
pub use crate::app::hints::TOKEN_ENV;
/// The order algorithms are tried in for a PEM key given without `--alg`.
pub const INFER_ORDER: [Alg; 5] = [Alg::EdDSA, Alg::ES256, Alg::ES384, Alg::ES512, Alg::RS256];

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a key or token command failed. Messages never contain key material or tokens.
#[derive(Debug, thiserror::Error)]
pub enum KeysCliError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: {message}")]
    KeyFile { path: String, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("the key set would be refused: {0}")]
    InvalidSet(String),
    #[error(
        "no management API token: pass --token or set {TOKEN_ENV} (the variable keeps it out of the process list)"
    )]
    NoToken,
    #[error("{0}")]
    BadToken(String),
    #[error("invalid admin URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("{method} {url}: {error}")]
    Transport {
        method: Method,
        url: String,
        error: String,
    },
    /// The management API answered with an error; `message` is its Auth0 body's `message`.
    #[error("{message} (HTTP {status} from {method} {url})")]
    Api {
        method: Method,
        url: String,
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("{method} {url}: unexpected response: {message}")]
    Response {
        method: Method,
        url: String,
        message: String,
    },
    #[error("reading the token from stdin: {0}")]
    Stdin(std::io::Error),
}

/// Builds the public JWKS `{"keys": [...]}` of `files`, validated as the management API
/// validates a PUT body (except for the IdP kid check, which only the server can do).
/// `alg` and `kid` override the members of every key; `kid` needs exactly one key.
pub fn public_jwks(
    files: &[PathBuf],
    alg: Option<Alg>,
    kid: Option<&str>,
) -> Result<Value, KeysCliError> {
    if files.is_empty() {
        return Err(KeysCliError::Usage("no key file given".into()));
    }
    if kid.is_some() && files.len() != 1 {
        return Err(KeysCliError::Usage(format!(
            "--kid names one key, but {} files were given; give each key its kid in its .jwk.json \
             (keys generate --kid) instead",
            files.len()
        )));
    }
    let mut keys = Vec::new();
    for path in files {
        keys.extend(keys_from_file(path, alg, kid)?);
    }
    if kid.is_some() && keys.len() != 1 {
        return Err(KeysCliError::Usage(format!(
            "--kid names one key, but {} holds {}",
            files[0].display(),
            keys.len()
        )));
    }
    validated(keys)
}

/// The JWKS `{"keys": [...]}` of `keys`, validated as a PUT body is (kids filled in).
fn validated(keys: Vec<Value>) -> Result<Value, KeysCliError> {
    let validated = import::validate_keys(&keys, &HashSet::new())
        .map_err(|err| KeysCliError::InvalidSet(err.message))?;
    let keys: Vec<Value> = validated
        .into_iter()
        .map(|k| Value::Object(k.json))
        .collect();
    Ok(json!({ "keys": keys }))
}

/// The public JWKs in one file: a JWK, a JWKS, or a PKCS#8 PEM private key.
fn keys_from_file(
    path: &Path,
    alg: Option<Alg>,
    kid: Option<&str>,
) -> Result<Vec<Value>, KeysCliError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| KeysCliError::Read {
        path: shown.clone(),
        error,
    })?;
    let fail = |message: String| KeysCliError::KeyFile {
        path: shown.clone(),
        message,
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| fail("neither a JWK (JSON) nor a PEM file (DER is not read)".into()))?;
    if text.trim_start().starts_with('{') {
        let keys = jwks_members(text).map_err(fail)?;
        let mut out = Vec::with_capacity(keys.len());
        for mut key in keys {
            if let Value::Object(map) = &mut key {
                if let Some(alg) = alg {
                    map.insert("alg".into(), Value::from(alg.name()));
                }
                if let Some(kid) = kid {
                    map.insert("kid".into(), Value::from(kid));
                }
            }
            // Checked one by one so the message names the file.
            import::validate_keys(std::slice::from_ref(&key), &HashSet::new())
                .map_err(|err| fail(err.message))?;
            out.push(key);
        }
        return Ok(out);
    }
    let key = signing_key_from_pem(text, alg, kid.map(str::to_string)).map_err(fail)?;
    Ok(vec![Value::Object(key.public_jwk().to_json())])
}

/// The JWK objects of a JSON document: a single JWK, or every key of a JWKS.
fn jwks_members(text: &str) -> Result<Vec<Value>, String> {
    serde_json::from_str::<Value>(text).map_err(|err| format!("not valid JSON: {err}"))?;
    let value =
        crate::jose::json::parse_value(text.as_bytes()).map_err(|err| format!("refused: {err}"))?;
    match value {
        Value::Object(mut map) if !map.contains_key("kty") && map.contains_key("keys") => {
            match map.remove("keys") {
                Some(Value::Array(keys)) if !keys.is_empty() => Ok(keys),
                _ => Err("\"keys\" must be a non-empty array of JWKs".into()),
            }
        }
        Value::Object(map) => Ok(vec![Value::Object(map)]),
        _ => Err("must be a JWK or a JWKS (a JSON object)".into()),
    }
}

/// Parses a PKCS#8 PEM private key for `alg`, or for the first algorithm of [`INFER_ORDER`]
/// that fits it.
pub fn signing_key_from_pem(
    text: &str,
    alg: Option<Alg>,
    kid: Option<String>,
) -> Result<SigningKey, String> {
    let der = pem::decode(text, "PRIVATE KEY").map_err(|err| pem_hint(text, err))?;
    if let Some(alg) = alg {
        return SigningKey::from_pkcs8(&der, alg, kid)
            .map_err(|reason| format!("not a PKCS#8 private key for {alg} ({reason})"));
    }
    let mut rsa_error = None;
    for candidate in INFER_ORDER {
        match SigningKey::from_pkcs8(&der, candidate, kid.clone()) {
            Ok(key) => return Ok(key),
            Err(reason) if candidate == Alg::RS256 => rsa_error = Some(reason),
            Err(_) => {}
        }
    }
    // An RSA key of the wrong size parses as RSA and says so; other failures say "no fit".
    match rsa_error {
        Some(reason) if reason.contains("bits") => Err(reason),
        _ => Err(
            "not a private key resigner can sign with (Ed25519, P-256, P-384, P-521 or RSA \
             2048 to 8192 bits in PKCS#8)"
                .into(),
        ),
    }
}

fn pem_hint(text: &str, err: pem::PemError) -> String {
    let hint = if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        "; the key is encrypted: decrypt it first (openssl pkcs8 -in KEY -out KEY.pem)"
    } else if text.contains("-----BEGIN RSA PRIVATE KEY-----")
        || text.contains("-----BEGIN EC PRIVATE KEY-----")
    {
        "; convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pem)"
    } else if text.contains("-----BEGIN PUBLIC KEY-----")
        || text.contains("-----BEGIN CERTIFICATE-----")
    {
        "; give the private key (PKCS#8 PEM) or the public .jwk.json instead"
    } else {
        ""
    };
    format!("neither a JWK (JSON) nor a PKCS#8 PEM private key: {err}{hint}")
}

/// The management API token: `--token`, else `$RESIGNER_ADMIN_TOKEN`.
pub fn admin_token(flag: Option<String>) -> Result<String, KeysCliError> {
    let token = match flag {
        Some(token) => token,
        None => std::env::var(TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or(KeysCliError::NoToken)?,
    };
    check_token(&token)?;
    Ok(token)
}

/// Refuses a token the management API could never accept (RFC 6750 `b64token`, as the
/// server parses it).
fn check_token(token: &str) -> Result<(), KeysCliError> {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        KeysCliError::BadToken("the token has characters an HTTP header cannot carry".into())
    })?;
    headers.insert(header::AUTHORIZATION, value);
    match crate::proxy::bearer_token(&headers) {
        Ok(parsed) if parsed == token => Ok(()),
        Ok(_) => Err(KeysCliError::BadToken(
            "the token starts with a space; the server would never see it as given".into(),
        )),
        Err(err) => Err(KeysCliError::BadToken(format!(
            "the management API would refuse this token: {err}"
        ))),
    }
}

/// Reads a token (trailing CR/LF removed) and returns the hex SHA-256 for
/// `[[admin.tokens]] sha256`.
pub fn hash_token(mut input: impl Read) -> Result<String, KeysCliError> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .map_err(KeysCliError::Stdin)?;
    let token = text.trim_end_matches(['\r', '\n']);
    if token.is_empty() {
        return Err(KeysCliError::BadToken(
            "no token on stdin (try: printf %s \"$TOKEN\" | resigner token hash)".into(),
        ));
    }
    check_token(token)?;
    Ok(crate::cli::demo::sha256_hex(token))
}

/// The stored key set as the management API returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKeys {
    /// The JWKs as stored (public members only).
    pub keys: Vec<Value>,
    /// The set's ETag (quoted), for `--if-match`; absent for an empty set.
    pub etag: Option<String>,
}

impl StoredKeys {
    pub fn kids(&self) -> Vec<&str> {
        self.keys
            .iter()
            .map(|k| k.get("kid").and_then(Value::as_str).unwrap_or("(no kid)"))
            .collect()
    }

    /// The set as a JWKS document `{"keys": [...]}`.
    pub fn to_json(&self) -> Value {
        json!({ "keys": self.keys })
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client of `/api/v2/keys/custom-signing` (http or https).
pub struct AdminClient {
    url: String,
    uri: Uri,
    authorization: HeaderValue,
    client: HttpsClient,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    /// `admin` is the admin listener's base URL (a URL already ending in the API path is
    /// accepted as is).
    pub fn new(admin: &str, token: &str) -> Result<Self, KeysCliError> {
        let url = endpoint(admin)?;
        let uri: Uri = url.parse().map_err(|err| KeysCliError::Url {
            url: admin.to_string(),
            reason: format!("{err}"),
        })?;
        check_token(token)?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| KeysCliError::BadToken("the token is not a valid header value".into()))?;
        authorization.set_sensitive(true);
        let connector = crate::http::client::connector(CONNECT_TIMEOUT);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(AdminClient {
            url,
            uri,
            authorization,
            client,
        })
    }

    /// The full endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET`: the stored set; an empty set (the API's 404 `inexistent_custom_signing_keys`)
    /// is `Ok` with no keys.
    pub async fn list(&self) -> Result<StoredKeys, KeysCliError> {
        let reply = self.send(Method::GET, None, None).await?;
        if reply.status == StatusCode::OK {
            return self.stored(Method::GET, &reply);
        }
        let error = self.api_error(Method::GET, &reply);
        match &error {
            KeysCliError::Api {
                code: Some(code), ..
            } if reply.status == StatusCode::NOT_FOUND
                && code == "inexistent_custom_signing_keys" =>
            {
                Ok(StoredKeys {
                    keys: Vec::new(),
                    etag: None,
                })
            }
            _ => Err(error),
        }
    }

    /// `PUT`: replaces the stored set with `jwks` (`{"keys": [...]}`); returns the set as stored.
    pub async fn import(
        &self,
        jwks: &Value,
        if_match: Option<&str>,
    ) -> Result<StoredKeys, KeysCliError> {
        let body = serde_json::to_vec(jwks).unwrap_or_default();
        if body.len() > MAX_BODY_BYTES {
            return Err(KeysCliError::InvalidSet(format!(
                "the JWKS is {} bytes; the management API accepts at most {MAX_BODY_BYTES}",
                body.len()
            )));
        }
        let reply = self
            .send(Method::PUT, Some(Bytes::from(body)), if_match)
            .await?;
        if reply.status != StatusCode::OK {
            return Err(self.api_error(Method::PUT, &reply));
        }
        self.stored(Method::PUT, &reply)
    }

    /// `DELETE`: empties the stored set.
    pub async fn delete(&self, if_match: Option<&str>) -> Result<(), KeysCliError> {
        let reply = self.send(Method::DELETE, None, if_match).await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(self.api_error(Method::DELETE, &reply))
        }
    }

    async fn send(
        &self,
        method: Method,
        body: Option<Bytes>,
        if_match: Option<&str>,
    ) -> Result<Reply, KeysCliError> {
        let transport = |error: String| KeysCliError::Transport {
            method: method.clone(),
            url: self.url.clone(),
            error,
        };
        let mut request = Request::builder()
            .method(method.clone())
            .uri(self.uri.clone())
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(tag) = if_match {
            let value = HeaderValue::from_str(&quote_etags(tag)).map_err(|_| {
                KeysCliError::Usage(format!("--if-match {tag:?} is not a valid ETag"))
            })?;
            request = request.header(header::IF_MATCH, value);
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|err| transport(err.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|err| transport(error_chain(&err)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|err| transport(format!("reading the response: {err}")))?
                .to_bytes();
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| transport(format!("no response within {}s", REQUEST_TIMEOUT.as_secs())))?
    }

    fn stored(&self, method: Method, reply: &Reply) -> Result<StoredKeys, KeysCliError> {
        let keys = serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|mut doc| match doc.get_mut("keys").map(Value::take) {
                Some(Value::Array(keys)) => Some(keys),
                _ => None,
            })
            .ok_or_else(|| KeysCliError::Response {
                method,
                url: self.url.clone(),
                message: "the body is not a JWKS {\"keys\": [...]}".into(),
            })?;
        let etag = reply
            .headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(StoredKeys { keys, etag })
    }

    fn api_error(&self, method: Method, reply: &Reply) -> KeysCliError {
        let body: Option<Map<String, Value>> = serde_json::from_slice(&reply.body).ok();
        let field = |name: &str| {
            body.as_ref()
                .and_then(|b| b.get(name))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let message = field("message").unwrap_or_else(|| {
            let reason = reply.status.canonical_reason().unwrap_or("error");
            let text = String::from_utf8_lossy(&reply.body);
            match text.lines().map(str::trim).find(|line| !line.is_empty()) {
                Some(line) if !line.starts_with('<') && !line.starts_with('{') => {
                    format!("{reason}: {}", line.chars().take(200).collect::<String>())
                }
                _ => format!(
                    "{reason} (not a management API error body; is --admin the admin listener's base URL?)"
                ),
            }
        });
        KeysCliError::Api {
            method,
            url: self.url.clone(),
            status: reply.status.as_u16(),
            code: field("errorCode"),
            message,
        }
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// `http(s)://host[:port][/prefix]` + [`KEYS_PATH`].
fn endpoint(admin: &str) -> Result<String, KeysCliError> {
    let bad = |reason: &str| KeysCliError::Url {
        url: admin.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = admin.parse().map_err(|err| bad(&format!("{err}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if uri.query().is_some() {
        return Err(bad("must not have a query"));
    }
    let base = admin.trim_end_matches('/');
    if base.ends_with(KEYS_PATH) {
        Ok(base.to_string())
    } else {
        Ok(format!("{base}{KEYS_PATH}"))
    }
}

/// ETags are quoted strings, and shells eat quotes: `abc` is sent as `"abc"`.
fn quote_etags(value: &str) -> String {
    value
        .split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(|tag| {
            if tag == "*" || tag.starts_with('"') || tag.starts_with("W/") {
                tag.to_string()
            } else {
                format!("\"{tag}\"")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An error and its sources on one line (hyper's own message is only "client error").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_etags() {
        assert_eq!(
            endpoint("http://127.0.0.1:9090/").unwrap(),
            "http://127.0.0.1:9090/api/v2/keys/custom-signing"
        );
        assert_eq!(
            endpoint("https://admin.example/api/v2/keys/custom-signing").unwrap(),
            "https://admin.example/api/v2/keys/custom-signing"
        );
        assert!(endpoint("127.0.0.1:9090").is_err());
        assert!(endpoint("ftp://host").is_err());
        assert_eq!(quote_etags("abc"), "\"abc\"");
        assert_eq!(quote_etags("\"abc\""), "\"abc\"");
        assert_eq!(quote_etags("*"), "*");
        assert_eq!(quote_etags("a, \"b\""), "\"a\", \"b\"");
    }

    #[test]
    fn pem_keys_infer_their_algorithm_and_publish_only_public_members() {
        for alg in [Alg::EdDSA, Alg::ES256, Alg::ES384, Alg::ES512, Alg::RS256] {
            let der = SigningKey::generate_pkcs8(alg).unwrap();
            let text = pem::encode(&der, "PRIVATE KEY");
            let key = signing_key_from_pem(&text, None, None).unwrap();
            assert_eq!(key.alg(), alg);
            let jwk = key.public_jwk().to_json();
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(!jwk.contains_key(private));
            }
        }
        let der = SigningKey::generate_pkcs8(Alg::ES256).unwrap();
        let text = pem::encode(&der, "PRIVATE KEY");
        assert!(
            signing_key_from_pem(&text, Some(Alg::PS256), None)
                .unwrap_err()
                .contains("PS256")
        );
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(
            signing_key_from_pem(sec1, None, None)
                .unwrap_err()
                .contains("-topk8")
        );
    }

    #[test]
    fn tokens() {
        assert_eq!(
            hash_token("abc\r\n".as_bytes()).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hash_token("\n".as_bytes()).is_err());
        assert!(hash_token("two words\n".as_bytes()).is_err());
        assert!(admin_token(Some("a b".into())).is_err());
        assert!(admin_token(Some("ok-token".into())).is_ok());
    }
}
