//! The management API token as the command line handles it: taken from `--token` or
//! `$RESIGNER_ADMIN_TOKEN`, refused before sending when the server could never accept it
//! (RFC 6750 `b64token`, parsed as the server parses it), sent as a sensitive header, and
//! hashed for `[[admin.tokens]] sha256` (`token hash`, and the demo's own admin token).
//! Messages never contain the token.
//!
//! May use: `proxy::bearer_token` (the server's parser) and `app::hints::TOKEN_ENV`.

use std::io::Read;

use http::{HeaderMap, HeaderValue, header};

use crate::app::hints::TOKEN_ENV;

/// Why a management API token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error(
        "no management API token: pass --token or set {TOKEN_ENV} (the variable keeps it out of the process list)"
    )]
    Missing,
    #[error("{0}")]
    Bad(String),
    #[error("reading the token from stdin: {0}")]
    Stdin(std::io::Error),
}

/// The management API token: `--token`, else `$RESIGNER_ADMIN_TOKEN`.
pub fn admin_token(flag: Option<String>) -> Result<String, AdminTokenError> {
    let token = match flag {
        Some(token) => token,
        None => std::env::var(TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or(AdminTokenError::Missing)?,
    };
    authorization(&token)?;
    Ok(token)
}

/// The `Authorization: Bearer` value for `token` (marked sensitive), refused when the
/// management API could never accept the token.
pub fn authorization(token: &str) -> Result<HeaderValue, AdminTokenError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        AdminTokenError::Bad("the token has characters an HTTP header cannot carry".into())
    })?;
    value.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value.clone());
    match crate::proxy::bearer_token(&headers) {
        Ok(parsed) if parsed == token => Ok(value),
        Ok(_) => Err(AdminTokenError::Bad(
            "the token starts with a space; the server would never see it as given".into(),
        )),
        Err(err) => Err(AdminTokenError::Bad(format!(
            "the management API would refuse this token: {err}"
        ))),
    }
}

/// Reads a token (trailing CR/LF removed) and returns the hex SHA-256 for
/// `[[admin.tokens]] sha256`.
pub fn hash_token(mut input: impl Read) -> Result<String, AdminTokenError> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .map_err(AdminTokenError::Stdin)?;
    let token = text.trim_end_matches(['\r', '\n']);
    if token.is_empty() {
        return Err(AdminTokenError::Bad(
            "no token on stdin (try: printf %s \"$TOKEN\" | resigner token hash)".into(),
        ));
    }
    authorization(token)?;
    Ok(sha256_hex(token))
}

/// Hex SHA-256 of `text` (the form `[[admin.tokens]] sha256` takes).
pub use crate::keys::digest::sha256_hex;

#[cfg(test)]
mod tests {
    use super::*;

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
