//! `keys rotate`, `keys revoke KID` and `keys list --signing`: the managed signing keys'
//! calls of the management API (`POST /api/v2/keys/signing/rotate`,
//! `PUT /api/v2/keys/signing/{kid}/revoke`, `GET /api/v2/keys/signing`) for operators and
//! scripts, with the same `--admin`, token and `--if-match` handling as `keys import`. What
//! is printed on stdout is the API's JSON; a one-line summary goes to stderr.
//!
//! May use: [`super::admin_client`] and the rest of `cli`.

use http::Method;
use serde_json::Value;

use super::AdminClient;
use crate::cli::CliError;

/// The managed signing keys' path under the admin base URL.
pub const SIGNING_PATH: &str = "/api/v2/keys/signing";

/// `keys list --signing`: every managed key (revoked too), and each one's state on stderr.
pub fn list(client: &AdminClient) -> Result<(), CliError> {
    let url = format!("{}{SIGNING_PATH}", client.base());
    let (keys, etag) = crate::cli::runtime::block_on(client.call(Method::GET, &url, None))??;
    println!("{}", serde_json::to_string_pretty(&keys)?);
    for key in keys.as_array().into_iter().flatten() {
        eprintln!(
            "  {} {}",
            key["kid"].as_str().unwrap_or("(no kid)"),
            state(key)
        );
    }
    eprintln!("ETag: {}", etag.as_deref().unwrap_or("(none)"));
    Ok(())
}

/// `keys rotate`: next becomes current, current previous, a new next key is generated.
pub fn rotate(client: &AdminClient, if_match: Option<&str>) -> Result<(), CliError> {
    let url = format!("{}{SIGNING_PATH}/rotate", client.base());
    let (key, _) = crate::cli::runtime::block_on(client.call(Method::POST, &url, if_match))??;
    println!("{}", serde_json::to_string_pretty(&key)?);
    eprintln!(
        "rotated at {}: the next key is now {} (published, signing from the next rotation); \
         the former next key signs from now on",
        client.base(),
        key["kid"].as_str().unwrap_or("(no kid)")
    );
    Ok(())
}

/// `keys revoke KID`: a previous key leaves the JWKS and never signs again.
pub fn revoke(client: &AdminClient, kid: &str, if_match: Option<&str>) -> Result<(), CliError> {
    let encoded: String = kid
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = format!("{}{SIGNING_PATH}/{encoded}/revoke", client.base());
    let (key, _) = crate::cli::runtime::block_on(client.call(Method::PUT, &url, if_match))??;
    println!("{}", serde_json::to_string_pretty(&key)?);
    eprintln!(
        "revoked {kid} at {}: it is no longer published",
        client.base()
    );
    Ok(())
}

fn state(key: &Value) -> &'static str {
    ["current", "next", "previous", "revoked"]
        .into_iter()
        .find(|flag| key[*flag] == true)
        .unwrap_or("(no state)")
}
