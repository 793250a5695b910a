//! The client of the management API's custom signing keys (`/api/v2/keys/custom-signing`
//! on the admin listener, http or https) behind `keys import|list|delete`, and of the
//! managed signing keys' calls ([`AdminClient::call`], for `keys rotate|revoke|list
//! --signing`): one request per
//! call with a bounded response and an overall timeout, the Auth0 error body's `message`
//! shown as the error, ETags quoted as shells lose quotes. The token header is sensitive and
//! no message contains it.
//!
//! May use: `http::client` (the connector, the error chain), `keys::import` (the body
//! limit) and [`crate::cli::admin_token`].

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::{Map, Value, json};

use super::KeysCliError;
use crate::http::client::error_chain;
use crate::keys::import::MAX_BODY_BYTES;

/// The management API path, appended to the admin base URL.
pub const KEYS_PATH: &str = "/api/v2/keys/custom-signing";

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

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
        url.parse::<Uri>().map_err(|err| KeysCliError::Url {
            url: admin.to_string(),
            reason: format!("{err}"),
        })?;
        let authorization = crate::cli::admin_token::authorization(token)?;
        let connector = crate::http::client::connector(CONNECT_TIMEOUT);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(AdminClient {
            url,
            authorization,
            client,
        })
    }

    /// The full endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin listener's base URL (the endpoint without [`KEYS_PATH`]).
    pub fn base(&self) -> &str {
        self.url.strip_suffix(KEYS_PATH).unwrap_or(&self.url)
    }

    /// A bodiless request to `url` (under [`AdminClient::base`]): the JSON body and the ETag
    /// of a 2xx answer, or the API's error.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        if_match: Option<&str>,
    ) -> Result<(Value, Option<String>), KeysCliError> {
        let reply = self.send_to(method.clone(), url, None, if_match).await?;
        if !reply.status.is_success() {
            return Err(self.api_error_at(method, url, &reply));
        }
        let body = serde_json::from_slice(&reply.body).map_err(|err| KeysCliError::Response {
            method,
            url: url.to_string(),
            message: format!("the body is not JSON: {err}"),
        })?;
        Ok((body, etag(&reply.headers)))
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
        self.send_to(method, &self.url, body, if_match).await
    }

    async fn send_to(
        &self,
        method: Method,
        url: &str,
        body: Option<Bytes>,
        if_match: Option<&str>,
    ) -> Result<Reply, KeysCliError> {
        let transport = |error: String| KeysCliError::Transport {
            method: method.clone(),
            url: url.to_string(),
            error,
        };
        let uri: Uri = url.parse().map_err(|err| transport(format!("{err}")))?;
        let mut request = Request::builder()
            .method(method.clone())
            .uri(uri)
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
        Ok(StoredKeys {
            keys,
            etag: etag(&reply.headers),
        })
    }

    fn api_error(&self, method: Method, reply: &Reply) -> KeysCliError {
        self.api_error_at(method, &self.url, reply)
    }

    fn api_error_at(&self, method: Method, url: &str, reply: &Reply) -> KeysCliError {
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
            url: url.to_string(),
            status: reply.status.as_u16(),
            code: field("errorCode"),
            message,
        }
    }
}

fn etag(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
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
}
