//! `resigner demo`: the whole story in one process with nothing to configure.
//!
//! - a development IdP ([`idp`]: RS256 key generated at start, minting with jsonwebtoken)
//! - an echo upstream ([`echo`]): answers every request with the headers and decoded claims
//!   it received
//! - the proxy, signing with a freshly generated ES256 customer key published in its JWKS
//!   ([`story`], which also prints the steps to follow)
//!
//! The four loopback ports are checked first ([`ports`]); the IdP and the upstream are
//! served by the demo's own small server ([`loopback`]).
//!
//! May use: `config`, `service`, `keys`, `jose`, `http::body` and the rest of `cli`.

use std::net::SocketAddr;

use crate::cli::{CliError, runtime};

pub mod echo;
pub mod idp;
mod loopback;
pub mod ports;
pub mod story;

pub use echo::start_echo_upstream;
pub use idp::{DEMO_AUDIENCE, DevIdp, parse_form, start_dev_idp};
pub use story::demo_config;

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

/// Runs the demo until Ctrl-C.
pub fn run(port: u16) -> Result<(), CliError> {
    runtime::block_on(story::run(port))??;
    Ok(())
}
