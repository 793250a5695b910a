//! The `resigner` binary: parses the command line, sets up logging, runs a subcommand and
//! turns errors into one line on stderr and a non-zero exit code. The only place `anyhow`
//! lives.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use resigner::alg::Alg;
use resigner::cli::{AdminArgs, Cli, Command, KeyFiles, KeysCommand, TokenCommand};
use resigner::keys::{SigningKey, pem};
use resigner::keys_cli::{self, AdminClient};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "resigner=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("resigner: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let config = resigner::load_config(&config)?;
            runtime()?.block_on(async {
                let running = resigner::start(config).await?;
                shutdown_signal().await;
                tracing::info!("shutting down");
                running.shutdown(std::time::Duration::from_secs(30)).await;
                anyhow::Ok(())
            })
        }
        Command::Demo { port } => runtime()?
            .block_on(resigner::demo::run(port))
            .map_err(Into::into),
        Command::Check { config } => {
            let config = resigner::load_config(&config)?;
            println!(
                "config OK: {} route(s), active signing key {} ({})",
                config.routes.len(),
                config.signing.active.kid(),
                config.signing.active.alg()
            );
            Ok(())
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
            resigner::demo::write_private(&pem_path, &pem::encode(&der, "PRIVATE KEY"))
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
                    if_match,
                    keys,
                },
        } => {
            let jwks = public_jwks(&keys)?;
            let client = admin_client(admin)?;
            let stored = runtime()?.block_on(client.import(&jwks, if_match.as_deref()))?;
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
    }
}

fn public_jwks(keys: &KeyFiles) -> anyhow::Result<serde_json::Value> {
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
