//! The command line: the clap types (here), and one function per command that the binary's
//! `main` calls, each returning [`CliError`]: [`serve::run`], [`demo::run`], [`check::run`],
//! [`certs::dev`], `keys generate|jwks|import|list|delete` ([`keys`]), `token hash|inspect|
//! resign` ([`token::command`]) and [`completions`]. Shared by several commands: the
//! management API token ([`admin_token`]), private key files ([`files`]) and the runtime a
//! one-shot command runs on ([`runtime`]).
//!
//! May use: every module of the crate (the command line composes them); nothing of the
//! crate may use `cli`.

pub mod admin_token;
pub mod certs;
pub mod check;
pub mod demo;
mod error;
pub mod files;
pub mod keys;
pub mod runtime;
pub mod serve;
pub mod store;
pub mod token;

pub use error::CliError;

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::jose::alg::Alg;

#[derive(Debug, Parser)]
#[command(name = "resigner", version, about = "Token re-signing reverse proxy")]
pub struct Cli {
    /// Log format on stderr: `pretty` lines or one JSON object per line (filter with RUST_LOG).
    #[arg(long, global = true, value_enum, default_value_t = crate::logging::LogFormat::Pretty)]
    pub log_format: crate::logging::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy with a config file (reloaded when it changes).
    Serve {
        /// The config file (TOML; see config/example.toml). Relative paths inside it are
        /// resolved from its directory.
        #[arg(long, short, default_value = "config/resigner.toml")]
        config: PathBuf,
    },
    /// Run the whole story in one process: a development IdP, an echo upstream and the proxy.
    Demo {
        /// Port of the proxy; the IdP, the upstream and the admin listener take the next three.
        #[arg(long, default_value_t = 8080, value_parser = clap::value_parser!(u16).range(1..=65532))]
        port: u16,
    },
    /// Validate a config file and print every problem.
    Check {
        /// The config file to check (TOML; see config/example.toml). Relative paths inside it are
        /// resolved from its directory.
        #[arg(long, short, default_value = "config/resigner.toml")]
        config: PathBuf,
        /// Also fetch the IdP's discovery document and JWKS and connect to each upstream.
        #[arg(long)]
        online: bool,
    },
    /// Key management helpers.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// TLS certificate helpers.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Token helpers: inspect, dry-run re-signing, hash a management token.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Key store helpers (PostgreSQL).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Apply the PostgreSQL key store's schema migrations and exit (replicas also do this at
    /// start, under the same advisory lock).
    Migrate {
        /// The config file whose `[keys] store` names the database.
        #[arg(long, short, default_value = "config/resigner.toml")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a signing key: writes OUT.pem (PKCS#8, mode 0600) and OUT.jwk.json (public);
    /// with --pkcs11, generates the pair on the token instead and prints its public JWK.
    Generate {
        #[arg(long, default_value = "ES256")]
        alg: String,
        #[arg(long, required_unless_present = "pkcs11")]
        out: Option<PathBuf>,
        /// Generate on a PKCS#11 token (private half sensitive, never extractable).
        #[arg(long, value_name = PKCS11_SPEC, conflicts_with = "out")]
        pkcs11: Option<String>,
        /// kid (default: the RFC 7638 thumbprint)
        #[arg(long)]
        kid: Option<String>,
    },
    /// Print the public JWKS {"keys": [...]} of key files, ready for `keys import` or a PUT.
    /// Never prints private key material.
    Jwks {
        #[command(flatten)]
        keys: KeyFiles,
    },
    /// Replace the stored custom signing keys with the public JWKs of FILE... or of the
    /// config's signing keys (PUT /api/v2/keys/custom-signing). The whole set is replaced
    /// unless --keep-existing is given.
    Import {
        #[command(flatten)]
        admin: AdminArgs,
        /// Keep the stored keys whose kid is not imported: read the set, add or replace the
        /// imported keys, and write it back only if nobody changed it in between (If-Match).
        #[arg(long)]
        keep_existing: bool,
        /// Only replace the set if its ETag (as printed by `keys list` or `keys import`)
        /// still matches; the quotes of the ETag may be left out.
        #[arg(long, value_name = "ETAG", allow_hyphen_values = true)]
        if_match: Option<String>,
        #[command(flatten)]
        keys: KeyFiles,
    },
    /// Print the stored custom signing keys as JSON (GET /api/v2/keys/custom-signing); with
    /// --signing, the managed signing keys (GET /api/v2/keys/signing).
    List {
        #[command(flatten)]
        admin: AdminArgs,
        /// The managed signing keys (current, next, previous, revoked) instead.
        #[arg(long)]
        signing: bool,
    },
    /// Rotate the managed signing keys (POST /api/v2/keys/signing/rotate): next becomes
    /// current, current previous, a new next key is generated and published.
    Rotate {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only rotate if the managed keys' ETag (`keys list --signing`) still matches.
        #[arg(long, value_name = "ETAG", allow_hyphen_values = true)]
        if_match: Option<String>,
    },
    /// Revoke a previous managed signing key (PUT /api/v2/keys/signing/KID/revoke): it leaves
    /// the JWKS at once and never signs again.
    Revoke {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only revoke if the managed keys' ETag still matches.
        #[arg(long, value_name = "ETAG", allow_hyphen_values = true)]
        if_match: Option<String>,
        /// The kid (an RFC 7638 thumbprint may begin with `-`: it is still the kid).
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Delete every stored custom signing key (DELETE /api/v2/keys/custom-signing). The
    /// proxy cannot re-sign until its signing key is imported again.
    Delete {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only delete if the set's ETag still matches; the quotes may be left out.
        #[arg(long, value_name = "ETAG", allow_hyphen_values = true)]
        if_match: Option<String>,
    },
}

/// Key files (or a config's signing keys) turned into a public JWKS.
#[derive(Debug, Args)]
pub struct KeyFiles {
    /// Public JWK files (`*.jwk.json`; a JWKS {"keys": [...]} works too) or PKCS#8 PEM
    /// private keys ("-----BEGIN PRIVATE KEY-----"), whose algorithm is inferred (RSA: RS256).
    #[arg(required_unless_present_any = ["config", "pkcs11"], value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A resigner config: publish its [[signing.keys]] under their configured kid and alg,
    /// as `serve` signs with them. Without FILE: every configured key; with FILE: a file
    /// holding a configured key gets that key's kid and alg, any other file its own.
    #[arg(long, short, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// The algorithm to publish, e.g. PS256 for an RSA key that signs PS256; it must fit
    /// every key given.
    #[arg(long, value_parser = parse_alg, conflicts_with = "config")]
    pub alg: Option<Alg>,
    /// The kid to publish (one key only; default: the JWK's kid, else the RFC 7638
    /// thumbprint; a key listed in the config with its own kid needs --config instead).
    #[arg(long, conflicts_with = "config")]
    pub kid: Option<String>,
    /// The key pair on a PKCS#11 token, read from it (needs --alg): the fields of a
    /// `pkcs11 = {...}` signing key.
    #[arg(long, value_name = PKCS11_SPEC, conflicts_with_all = ["config", "files"])]
    pub pkcs11: Option<String>,
}

/// The value of `--pkcs11`.
const PKCS11_SPEC: &str = "module=PATH,token_label=L,key_label=K,pin_file=PATH|pin_env=NAME";

/// Where the management API is and how to authenticate to it.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Base URL of the admin listener, e.g. http://127.0.0.1:9090.
    #[arg(long, value_name = "URL")]
    pub admin: String,
    /// Management API bearer token (default: $RESIGNER_ADMIN_TOKEN; prefer the variable,
    /// since command-line arguments are visible to other local users).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Read a token on stdin (a trailing newline is ignored) and print the hex SHA-256 that
    /// `[[admin.tokens]] sha256` wants.
    Hash,
    /// Decode a token's header and claims WITHOUT verifying it; times shown in human form.
    Inspect {
        /// The token, or `-` to read it from stdin.
        token: String,
    },
    /// Dry run: what the proxy would forward for TOKEN on a route (verified against the IdP's
    /// keys, claims mapped, signed with the configured active key).
    Resign {
        /// The config file whose IdP, route and active signing key are used.
        #[arg(long, short, default_value = "config/resigner.toml")]
        config: PathBuf,
        /// The route's `prefix`, exactly as in the config.
        #[arg(long)]
        route: String,
        /// Skip verification (map and sign the claims as given; the output says so).
        #[arg(long)]
        no_verify: bool,
        /// The token, or `-` to read it from stdin.
        token: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write a development CA (dev-ca.pem) and a certificate for localhost, 127.0.0.1 and ::1
    /// (localhost.pem, localhost-key.pem, mode 0600) into OUT, for trying HTTPS locally.
    /// Never overwrites; the CA's private key is not kept. Not for production.
    Dev {
        #[arg(long, default_value = "certs")]
        out: PathBuf,
    },
}

fn parse_alg(name: &str) -> Result<Alg, String> {
    Alg::parse(name).ok_or_else(|| {
        format!(
            "unknown algorithm {name:?}; one of {}",
            Alg::ALL.map(|a| a.name()).join(", ")
        )
    })
}

/// `resigner completions SHELL`: prints the shell's completion script.
pub fn completions(shell: clap_complete::Shell) {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "resigner",
        &mut std::io::stdout(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unquoted ETag is base64url and may begin with `-`: it is the value of `--if-match`,
    /// never read as a flag.
    #[test]
    fn an_etag_that_begins_with_a_hyphen_is_a_value() {
        for sub in ["import", "delete"] {
            let mut args = vec!["resigner", "keys", sub, "--admin", "http://127.0.0.1:1"];
            args.extend(["--if-match", "-Zq3v"]);
            if sub == "import" {
                args.push("key.pem");
            }
            let parsed = Cli::try_parse_from(&args).unwrap_or_else(|err| panic!("{sub}: {err}"));
            let Command::Keys { command } = parsed.command else {
                panic!("{sub}: not a keys command");
            };
            let if_match = match command {
                KeysCommand::Import { if_match, .. } | KeysCommand::Delete { if_match, .. } => {
                    if_match
                }
                other => panic!("{sub}: parsed as {other:?}"),
            };
            assert_eq!(if_match.as_deref(), Some("-Zq3v"), "{sub}");
        }
    }

    /// A kid is a base64url thumbprint and may begin with `-`.
    #[test]
    fn a_kid_that_begins_with_a_hyphen_is_the_kid() {
        let args = [
            "resigner",
            "keys",
            "revoke",
            "-Zq3v",
            "--admin",
            "http://127.0.0.1:1",
        ];
        let parsed = Cli::try_parse_from(args).unwrap();
        let Command::Keys {
            command: KeysCommand::Revoke { kid, .. },
        } = parsed.command
        else {
            panic!("not keys revoke");
        };
        assert_eq!(kid, "-Zq3v");
    }
}
