//! The command line (clap derive): `serve`, `demo`, `check`, `keys generate`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "resigner", version, about = "Token re-signing reverse proxy")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy with a config file.
    Serve {
        #[arg(long, short, default_value = "config/resigner.toml")]
        config: PathBuf,
    },
    /// Run the whole story in one process: a development IdP, an echo upstream and the proxy.
    Demo {
        /// Port of the proxy; the IdP, the upstream and the admin listener take the next three.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Validate a config file and print every problem.
    Check {
        #[arg(long, short, default_value = "config/resigner.toml")]
        config: PathBuf,
    },
    /// Key management helpers.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a signing key: writes OUT.pem (PKCS#8, mode 0600) and OUT.jwk.json (public).
    Generate {
        #[arg(long, default_value = "ES256")]
        alg: String,
        #[arg(long)]
        out: PathBuf,
        /// kid (default: the RFC 7638 thumbprint)
        #[arg(long)]
        kid: Option<String>,
    },
}
