//! The `resigner` binary: parses the command line, sets up logging, runs a subcommand and
//! turns errors into one line on stderr and a non-zero exit code. The only place `anyhow`
//! lives.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use resigner::cli::keys::{self as keys_cli, AdminClient};
use resigner::cli::{AdminArgs, Cli, Command, KeyFiles, KeysCommand, TokenCommand};
use resigner::jose::alg::Alg;
use resigner::keys::{SigningKey, pem};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.log_format;
    resigner::logging::init(format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            resigner::logging::fatal(format, &error_chain(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `outer: inner: ...`, leaving out a cause whose text the message
/// before it already contains (our error types often say their source in their own text).
fn error_chain(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config: path } => {
            let config = resigner::load_config(&path)?;
            let server = &config.server;
            resigner::http::workers::process_runtime(server.scheduler, server.workers)
                .context("starting the async runtime")?
                .block_on(async {
                let running = resigner::start(config).await?;
                let reloader = resigner::reload::Reloader::new(&path, running.state.clone());
                for resolver in running.cert_resolvers() {
                    reloader.add_cert_resolver(resolver.clone());
                }
                let _reload_tasks = reloader.spawn();
                shutdown_signal().await;
                tracing::info!("shutting down");
                let drain = running.state.config().server.drain_timeout;
                tokio::select! {
                    _ = running.shutdown(drain) => {}
                    _ = shutdown_signal() => tracing::warn!("second signal: exiting without draining"),
                }
                anyhow::Ok(())
            })
        }
        Command::Certs {
            command: resigner::cli::CertsCommand::Dev { out },
        } => {
            let files = resigner::cli::certs::write_dev_certs(&out)?;
            let absolute = |path: &std::path::Path| {
                std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
            };
            println!(
                "wrote {} (development CA), {} and {} (localhost certificate and key, 0600)\n\n\
                 Serve HTTPS: in [server] (or [admin]; relative paths would be resolved from \
                 the config file's directory)\n  \
                 tls_cert = \"{}\"\n  tls_key = \"{}\"\n\
                 Then trust the CA in clients, for example:\n  \
                 curl --cacert {} https://localhost:8080/.well-known/jwks.json\n\
                 Development only: do not add this CA to a system trust store you keep.",
                files.ca.display(),
                files.cert.display(),
                files.key.display(),
                absolute(&files.cert).display(),
                absolute(&files.key).display(),
                files.ca.display(),
            );
            Ok(())
        }
        Command::Demo { port } => runtime()?
            .block_on(resigner::cli::demo::run(port))
            .map_err(Into::into),
        Command::Check { config, online } => {
            let config = resigner::load_config(&config)?;
            println!(
                "config OK: {} route(s), active signing key {} ({})",
                config.routes.len(),
                config.signing.active.kid(),
                config.signing.active.alg()
            );
            if !online {
                println!("{}", resigner::cli::check::NOT_CHECKED_OFFLINE);
                return Ok(());
            }
            let report = runtime()?.block_on(resigner::cli::check::online(&config));
            report.lines.iter().for_each(|line| println!("{line}"));
            Ok(report.result()?)
        }
        Command::Keys {
            command: KeysCommand::Generate { alg, out, kid },
        } => {
            let alg = Alg::parse(&alg).with_context(|| format!("unknown algorithm {alg:?}"))?;
            let der = SigningKey::generate_pkcs8(alg)?;
            let key = SigningKey::from_pkcs8(&der, alg, kid).map_err(anyhow::Error::msg)?;
            let pem_path = std::path::PathBuf::from(format!("{}.pem", out.display()));
            let jwk_path = std::path::PathBuf::from(format!("{}.jwk.json", out.display()));
            for path in [&pem_path, &jwk_path] {
                anyhow::ensure!(
                    !path.exists(),
                    "{} exists; refusing to overwrite a key (move it away first)",
                    path.display()
                );
            }
            if let Some(parent) = pem_path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            resigner::cli::demo::write_private(&pem_path, &pem::encode(&der, "PRIVATE KEY"))
                .with_context(|| format!("writing {}", pem_path.display()))?;
            let jwk = serde_json::to_string_pretty(&key.public_jwk().to_json())?;
            std::fs::write(&jwk_path, jwk + "\n")
                .with_context(|| format!("writing {}", jwk_path.display()))?;
            println!(
                "wrote {} (private, 0600) and {} (public JWK), kid {}",
                pem_path.display(),
                jwk_path.display(),
                key.kid()
            );
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Jwks { keys },
        } => {
            let jwks = public_jwks(&keys)?;
            println!("{}", serde_json::to_string_pretty(&jwks)?);
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Import {
                    admin,
                    keep_existing,
                    if_match,
                    keys,
                },
        } => {
            let jwks = public_jwks(&keys)?;
            let client = admin_client(admin)?;
            let if_match = if_match.as_deref();
            let stored = runtime()?.block_on(async {
                match keep_existing {
                    true => client.import_keeping(&jwks, if_match).await,
                    false => client.import(&jwks, if_match).await,
                }
            })?;
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
        Command::Keys {
            command: KeysCommand::List { admin },
        } => {
            let client = admin_client(admin)?;
            let stored = runtime()?.block_on(client.list())?;
            println!("{}", serde_json::to_string_pretty(&stored.to_json())?);
            if stored.keys.is_empty() {
                eprintln!("no custom signing keys are stored at {}", client.url());
            } else {
                let etag = stored.etag.as_deref().unwrap_or("(none)");
                eprintln!("{} key(s); ETag: {etag}", stored.keys.len());
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Delete { admin, if_match },
        } => {
            let client = admin_client(admin)?;
            runtime()?.block_on(client.delete(if_match.as_deref()))?;
            println!(
                "deleted every custom signing key at {}; the proxy cannot re-sign until its \
                 signing key is imported again",
                client.url()
            );
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Hash,
        } => {
            println!("{}", keys_cli::hash_token(std::io::stdin().lock())?);
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Inspect { token },
        } => {
            let token = token_argument(token)?;
            print!(
                "{}",
                resigner::cli::token::inspect(&token, resigner::jose::time::now_unix())?
            );
            Ok(())
        }
        Command::Token {
            command:
                TokenCommand::Resign {
                    config,
                    route,
                    no_verify,
                    token,
                },
        } => {
            let config = std::sync::Arc::new(resigner::load_config(&config)?);
            let token = token_argument(token)?;
            let out = runtime()?.block_on(resigner::cli::token::resign(
                config, &route, &token, !no_verify,
            ))?;
            print!("{out}");
            Ok(())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "resigner",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

/// A token argument, or stdin when it is `-`.
fn token_argument(token: String) -> anyhow::Result<String> {
    if token != "-" {
        return Ok(token);
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
        .context("reading the token from stdin")?;
    Ok(text.trim().to_string())
}

fn public_jwks(keys: &KeyFiles) -> anyhow::Result<serde_json::Value> {
    if let Some(path) = &keys.config {
        let config = resigner::load_config(path)?;
        return Ok(keys_cli::configured::configured_jwks(
            &config.signing,
            &keys.files,
        )?);
    }
    Ok(keys_cli::public_jwks(
        &keys.files,
        keys.alg,
        keys.kid.as_deref(),
    )?)
}

fn admin_client(args: AdminArgs) -> anyhow::Result<AdminClient> {
    let token = keys_cli::admin_token(args.token)?;
    Ok(AdminClient::new(&args.admin, &token)?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
