//! The IdP client's HTTP side: discovering the JWKS URI from the OpenID configuration (unless
//! `jwks_uri` is configured), fetching with the response bounds (`max_response_bytes`,
//! `max_keys`), parsing the JWKS into usable keys, and `Cache-Control: max-age`. Split from
//! [`super`] so the refresh and start-up logic there stays readable; `resigner check
//! --online` runs the same code through [`IdpClient::probe`].

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use serde_json::Value;

use super::{IdpClient, IdpError};
use crate::jose::json;
use crate::keys::VerifyKey;

/// What `resigner check --online` learns from the IdP: the JWKS URI used and its usable keys.
#[derive(Debug)]
pub struct Probe {
    pub jwks_uri: Uri,
    /// True when the URI came from the OpenID configuration, false when configured.
    pub discovered: bool,
    pub keys: Vec<VerifyKey>,
}

impl IdpClient {
    /// Fetches the discovery document (unless `jwks_uri` is set) and the JWKS once, within
    /// `fetch_timeout`, without installing the keys or counting the fetch.
    pub async fn probe(&self) -> Result<Probe, IdpError> {
        let timeout = self.settings.load().fetch_timeout;
        let discovered = self.settings.load().jwks_uri.is_none();
        let fetch = async {
            let uri = self.jwks_uri().await?;
            let (_, body) = self.get(&uri).await?;
            let keys = self.parse_jwks(&uri, &body)?;
            Ok(Probe {
                jwks_uri: uri,
                discovered,
                keys,
            })
        };
        tokio::time::timeout(timeout, fetch)
            .await
            .unwrap_or_else(|_| Err(IdpError::Timeout("the IdP".into(), timeout)))
    }

    /// One fetch of the JWKS, installed when valid. Returns the response's max-age.
    pub(super) async fn fetch_and_install(&self) -> Result<Option<std::time::Duration>, IdpError> {
        let uri = self.jwks_uri().await?;
        tracing::debug!(jwks_uri = %uri, "fetching the IdP JWKS");
        let (headers, body) = self.get(&uri).await?;
        let keys = self.parse_jwks(&uri, &body)?;
        self.install(keys);
        Ok(max_age(&headers))
    }

    async fn jwks_uri(&self) -> Result<Uri, IdpError> {
        let settings = self.settings.load_full();
        if let Some(uri) = &settings.jwks_uri {
            return Ok(uri.clone());
        }
        let known = self.discovered.lock().ok().and_then(|d| d.clone());
        if let Some((issuer, uri)) = known
            && issuer == settings.issuer
        {
            return Ok(uri);
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            settings.issuer.trim_end_matches('/')
        );
        tracing::debug!(%url, "discovering the IdP's JWKS URI");
        let uri: Uri = url
            .parse()
            .map_err(|_| IdpError::Invalid(url.clone(), "not a URL".into()))?;
        let (_, body) = self.get(&uri).await?;
        let doc =
            json::parse_object(&body).map_err(|e| IdpError::Invalid(url.clone(), e.to_string()))?;
        if doc.get("issuer").and_then(Value::as_str) != Some(settings.issuer.as_str()) {
            return Err(IdpError::Invalid(
                url,
                "its \"issuer\" differs from idp.issuer".into(),
            ));
        }
        let jwks = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Uri>().ok())
            .filter(|u| matches!(u.scheme_str(), Some("http") | Some("https")))
            .ok_or_else(|| IdpError::Invalid(url.clone(), "no usable \"jwks_uri\"".into()))?;
        tracing::debug!(%url, jwks_uri = %jwks, "discovered the IdP's JWKS URI");
        if let Ok(mut discovered) = self.discovered.lock() {
            *discovered = Some((settings.issuer.clone(), jwks.clone()));
        }
        Ok(jwks)
    }

    async fn get(&self, uri: &Uri) -> Result<(HeaderMap, Bytes), IdpError> {
        let shown = uri.to_string();
        let request = Request::get(uri.clone())
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("resigner/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|e| IdpError::Request(shown.clone(), e.to_string()))?;
        let response =
            self.http.request(request).await.map_err(|e| {
                IdpError::Request(shown.clone(), crate::http::client::error_chain(&e))
            })?;
        if response.status() != StatusCode::OK {
            return Err(IdpError::Status(shown, response.status()));
        }
        let (parts, body) = response.into_parts();
        let limit = self.settings.load().max_response_bytes;
        // A declared length over the limit is refused before a byte of it is read.
        if hyper::body::Body::size_hint(&body).lower() > limit as u64 {
            return Err(IdpError::TooLarge(shown, limit));
        }
        let body = Limited::new(body, limit)
            .collect()
            .await
            .map_err(|_| IdpError::TooLarge(shown, limit))?;
        Ok((parts.headers, body.to_bytes()))
    }

    fn parse_jwks(&self, uri: &Uri, body: &[u8]) -> Result<Vec<VerifyKey>, IdpError> {
        let shown = uri.to_string();
        let doc = json::parse_object(body)
            .map_err(|e| IdpError::Invalid(shown.clone(), format!("JWKS is {e}")))?;
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| IdpError::Invalid(shown.clone(), "JWKS has no \"keys\" array".into()))?;
        if list.len() > self.settings.load().max_keys {
            return Err(IdpError::Invalid(
                shown,
                format!(
                    "JWKS has {} keys; at most {} are accepted",
                    list.len(),
                    self.settings.load().max_keys
                ),
            ));
        }
        let mut keys = Vec::new();
        for (index, jwk) in list.iter().enumerate() {
            let Some(jwk) = jwk.as_object() else { continue };
            match VerifyKey::from_jwk(jwk, &self.settings.load().algorithms) {
                Ok(Some(key)) => keys.push(key),
                Ok(None) => {}
                Err(err) => tracing::warn!(index, error = %err, "skipping an unusable IdP key"),
            }
        }
        if keys.is_empty() {
            return Err(IdpError::Invalid(
                shown,
                "JWKS has no key usable with idp.algorithms".into(),
            ));
        }
        Ok(keys)
    }
}

/// `Cache-Control: max-age=N` of a JWKS response (`no-store`/`no-cache` count as 0).
fn max_age(headers: &HeaderMap) -> Option<std::time::Duration> {
    let value = headers.get(header::CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').map(str::trim).find_map(|directive| {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(std::time::Duration::ZERO);
        }
        lower
            .strip_prefix("max-age=")?
            .trim_matches('"')
            .parse()
            .ok()
            .map(std::time::Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reads_max_age() {
        let mut headers = HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(
            header::CACHE_CONTROL,
            "public, max-age=120".parse().unwrap(),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(120)));
        headers.insert(header::CACHE_CONTROL, "no-store".parse().unwrap());
        assert_eq!(max_age(&headers), Some(Duration::ZERO));
    }
}
