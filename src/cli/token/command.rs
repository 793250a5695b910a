//! The `token` commands as the binary runs them: where the token comes from (the argument,
//! or stdin for `-`), the config `token resign` loads, and what is printed. What is computed
//! lives beside it: [`super::inspect`] and [`super::resign`], and for `token hash`
//! [`crate::cli::admin_token::hash_token`].
//!
//! May use: `config` (loading) and the rest of `cli`.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::cli::{CliError, admin_token, runtime};

/// `token hash`: prints the hex SHA-256 of the token on stdin.
pub fn hash() -> Result<(), CliError> {
    println!("{}", admin_token::hash_token(std::io::stdin().lock())?);
    Ok(())
}

/// `token inspect`: prints the token's header and claims, decoded and NOT verified.
pub fn inspect(token: String) -> Result<(), CliError> {
    let token = token_argument(token)?;
    print!("{}", super::inspect(&token, crate::jose::time::now_unix())?);
    Ok(())
}

/// `token resign`: prints what the proxy would forward for the token on `route`.
pub fn resign(config: &Path, route: &str, no_verify: bool, token: String) -> Result<(), CliError> {
    let config = Arc::new(crate::cli::error::load_connected(config)?);
    let token = token_argument(token)?;
    let out = runtime::block_on(super::resign(config, route, &token, !no_verify))??;
    print!("{out}");
    Ok(())
}

/// A token argument, or stdin when it is `-`.
fn token_argument(token: String) -> Result<String, CliError> {
    if token != "-" {
        return Ok(token);
    }
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .read_to_string(&mut text)
        .map_err(CliError::Stdin)?;
    Ok(text.trim().to_string())
}
