//! The `resigner` binary: parses the command line, sets up logging, runs one command of
//! [`resigner::cli`] and turns its error into one line on stderr (the error and its causes)
//! and exit code 1; clap exits with 2 on a usage error. The only place `anyhow` lives.

use std::process::ExitCode;

use clap::Parser;
use resigner::cli::{self, CertsCommand, Cli, Command, KeysCommand, TokenCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.log_format;
    resigner::logging::init(format);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let message = resigner::http::client::error_chain(err.as_ref());
            resigner::logging::fatal(format, &message);
            ExitCode::FAILURE
        }
    }
}

/// Calls the command's function.
fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { config } => cli::serve::run(&config)?,
        Command::Demo { port } => cli::demo::run(port)?,
        Command::Check { config, online } => cli::check::run(&config, online)?,
        Command::Certs {
            command: CertsCommand::Dev { out },
        } => cli::certs::dev(&out)?,
        Command::Keys { command } => keys(command)?,
        Command::Token { command } => token(command)?,
        Command::Completions { shell } => cli::completions(shell),
        Command::Store {
            command: cli::StoreCommand::Migrate { config },
        } => cli::store::migrate(&config)?,
    }
    Ok(())
}

fn keys(command: KeysCommand) -> Result<(), cli::CliError> {
    match command {
        KeysCommand::Generate {
            alg,
            out,
            pkcs11,
            kid,
        } => cli::keys::generate(&alg, out.as_deref(), pkcs11.as_deref(), kid),
        KeysCommand::Jwks { keys } => cli::keys::jwks(&keys),
        KeysCommand::Import {
            admin,
            keep_existing,
            if_match,
            keys,
        } => cli::keys::import(admin, keep_existing, if_match.as_deref(), &keys),
        KeysCommand::List { admin, signing } => cli::keys::list(admin, signing),
        KeysCommand::Rotate { admin, if_match } => cli::keys::rotate(admin, if_match.as_deref()),
        KeysCommand::Revoke {
            admin,
            if_match,
            kid,
        } => cli::keys::revoke(admin, &kid, if_match.as_deref()),
        KeysCommand::Delete { admin, if_match } => cli::keys::delete(admin, if_match.as_deref()),
    }
}

fn token(command: TokenCommand) -> Result<(), cli::CliError> {
    match command {
        TokenCommand::Hash => cli::token::command::hash(),
        TokenCommand::Inspect { token } => cli::token::command::inspect(token),
        TokenCommand::Resign {
            config,
            route,
            no_verify,
            token,
        } => cli::token::command::resign(&config, &route, no_verify, token),
    }
}
