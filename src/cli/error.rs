//! Why a command failed: the one error type every command function returns, so the binary
//! has one thing to turn into its line on stderr and exit code 1. A command's own error is
//! shown as it is (transparent: its text and its sources, unchanged); what several commands
//! share (the config file, the async runtime, a token on stdin) has a variant of its own.
//!
//! May use: the error types of `config`, `service` and the `cli` modules; nothing else.

/// Loads the config at `path` and connects its signing keys (PKCS#11, Transit: see
/// [`crate::keys::signer`]), for the commands that sign or publish with them.
pub fn load_connected(path: &std::path::Path) -> Result<crate::Config, CliError> {
    let mut config = crate::load_config(path)?;
    let keys =
        crate::keys::signer::connect_all(&config.signing.specs).map_err(CliError::Signers)?;
    config.signing.attach(keys);
    Ok(config)
}

use crate::cli::admin_token::AdminTokenError;
use crate::cli::certs::CertsError;
use crate::cli::check::OnlineProblems;
use crate::cli::demo::DemoError;
use crate::cli::keys::KeysCliError;
use crate::cli::keys::generate::GenerateError;
use crate::cli::store::StoreCliError;
use crate::cli::token::TokenCliError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot connect the signing keys:\n  - {}", .0.join("\n  - "))]
    Signers(Vec<String>),
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("reading the token from stdin")]
    Stdin(#[source] std::io::Error),
    #[error(transparent)]
    Server(#[from] crate::service::ServerError),
    #[error(transparent)]
    Demo(#[from] DemoError),
    #[error(transparent)]
    Certs(#[from] CertsError),
    #[error(transparent)]
    Check(#[from] OnlineProblems),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error(transparent)]
    Keys(#[from] KeysCliError),
    #[error(transparent)]
    AdminToken(#[from] AdminTokenError),
    #[error(transparent)]
    Token(#[from] TokenCliError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreCliError),
}
