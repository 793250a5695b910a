//! The `keys` commands of the `resigner` binary: `keys generate` ([`generate`]), `keys jwks`
//! (a public JWKS from key files, [`files`]; with `--config`, the config's signing keys under
//! their configured kids, [`configured`]), `keys import|list|delete` (through the
//! management API, [`admin_client`]) and `keys rotate|revoke|list --signing` (the managed
//! signing keys, [`signing`]). Each command prints its result on stdout; what it
//! prints never contains private key material or a token.
//!
//! May use: `config` (loading a config for `--config`), `keys`, `jose`, `http::client`, and
//! the rest of `cli`.

use http::Method;
use serde_json::Value;

use crate::cli::admin_token::{self, AdminTokenError};
use crate::cli::{AdminArgs, CliError, KeyFiles, runtime};

pub mod admin_client;
pub mod configured;
pub mod files;
pub mod generate;
pub mod pkcs11;
pub mod signing;

pub use crate::app::hints::TOKEN_ENV;
pub use admin_client::{AdminClient, KEYS_PATH, StoredKeys};
pub use files::{INFER_ORDER, public_jwks, signing_key_from_pem};
pub use generate::generate;

/// Why a key command failed. Messages never contain key material or tokens.
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
    #[error(transparent)]
    Token(#[from] AdminTokenError),
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
}

/// `keys jwks`: prints the public JWKS of the key files (or of the config's keys).
pub fn jwks(keys: &KeyFiles) -> Result<(), CliError> {
    let jwks = jwks_of(keys)?;
    println!("{}", serde_json::to_string_pretty(&jwks)?);
    Ok(())
}

/// `keys import`: replaces (or, with `keep_existing`, merges into) the stored set.
pub fn import(
    admin: AdminArgs,
    keep_existing: bool,
    if_match: Option<&str>,
    keys: &KeyFiles,
) -> Result<(), CliError> {
    let jwks = jwks_of(keys)?;
    let client = client(admin)?;
    let stored = runtime::block_on(async {
        match keep_existing {
            true => client.import_keeping(&jwks, if_match).await,
            false => client.import(&jwks, if_match).await,
        }
    })??;
    println!(
        "stored {} custom signing key(s) at {}:",
        stored.keys.len(),
        client.url()
    );
    for kid in stored.kids() {
        println!("  kid {kid}");
    }
    println!("ETag: {}", stored.etag.as_deref().unwrap_or("(none)"));
    Ok(())
}

/// `keys list`: prints the stored set as JSON, and a count and its ETag on stderr; with
/// `signing`, the managed signing keys.
pub fn list(admin: AdminArgs, signing: bool) -> Result<(), CliError> {
    let client = client(admin)?;
    if signing {
        return signing::list(&client);
    }
    let stored = runtime::block_on(client.list())??;
    println!("{}", serde_json::to_string_pretty(&stored.to_json())?);
    if stored.keys.is_empty() {
        eprintln!("no custom signing keys are stored at {}", client.url());
    } else {
        let etag = stored.etag.as_deref().unwrap_or("(none)");
        eprintln!("{} key(s); ETag: {etag}", stored.keys.len());
    }
    Ok(())
}

/// `keys rotate`: rotates the managed signing keys.
pub fn rotate(admin: AdminArgs, if_match: Option<&str>) -> Result<(), CliError> {
    signing::rotate(&client(admin)?, if_match)
}

/// `keys revoke KID`: revokes a previous managed signing key.
pub fn revoke(admin: AdminArgs, kid: &str, if_match: Option<&str>) -> Result<(), CliError> {
    signing::revoke(&client(admin)?, kid, if_match)
}

/// `keys delete`: empties the stored set.
pub fn delete(admin: AdminArgs, if_match: Option<&str>) -> Result<(), CliError> {
    let client = client(admin)?;
    runtime::block_on(client.delete(if_match))??;
    println!(
        "deleted every custom signing key at {}; the proxy cannot re-sign until its \
         signing key is imported again",
        client.url()
    );
    Ok(())
}

/// The public JWKS `keys jwks` and `keys import` publish: of the config's keys with
/// `--config`, else of the files as given.
fn jwks_of(keys: &KeyFiles) -> Result<Value, CliError> {
    if let Some(spec) = &keys.pkcs11 {
        return pkcs11::jwks(spec, keys.alg, keys.kid.clone());
    }
    if let Some(path) = &keys.config {
        let config = crate::cli::error::load_connected(path)?;
        return Ok(configured::configured_jwks(&config.signing, &keys.files)?);
    }
    Ok(public_jwks(&keys.files, keys.alg, keys.kid.as_deref())?)
}

fn client(args: AdminArgs) -> Result<AdminClient, CliError> {
    let token = admin_token::admin_token(args.token)?;
    Ok(AdminClient::new(&args.admin, &token)?)
}
