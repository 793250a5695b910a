//! `resigner serve`: loads the config, starts the service ([`crate::service::start`]) on the
//! runtime `[server]` asks for, starts the reloader (file watch and SIGHUP) beside it, and on
//! SIGTERM or Ctrl-C drains for `[server] drain_timeout`; a second signal exits at once.
//!
//! May use: `config`, `service`, `reload`, `http::workers`.

use std::path::Path;

use crate::cli::CliError;
use crate::reload::Reloader;

/// Serves with the config at `path` until a signal ends it.
pub fn run(path: &Path) -> Result<(), CliError> {
    let config = crate::load_config(path)?;
    let server = &config.server;
    let runtime = crate::http::workers::process_runtime(server.scheduler, server.workers)
        .map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let running = crate::start(config).await?;
        let reloader = Reloader::new(path, running.state.clone());
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
        Ok(())
    })
}

/// SIGTERM or Ctrl-C (Ctrl-C only where there are no Unix signals).
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
