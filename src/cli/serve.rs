//! `resigner serve`: loads the config, starts the service ([`crate::service::start`]) on the
//! runtime `[server]` asks for, starts the reloader (file watch and SIGHUP) beside it, and on
//! SIGTERM or Ctrl-C drains for `[server] drain_timeout`; a second signal exits at once.
//!
//! May use: `config`, `service`, `reload`, `http::workers`.

use std::path::Path;

use crate::cli::CliError;
use crate::reload::{Hangups, Reloader};

/// Serves with the config at `path` until a signal ends it.
pub fn run(path: &Path) -> Result<(), CliError> {
    let config = crate::load_config(path)?;
    let server = &config.server;
    let runtime = crate::http::workers::process_runtime(server.scheduler, server.workers)
        .map_err(CliError::Runtime)?;
    runtime.block_on(async {
        // Both signals are caught before the listeners open, so one sent the moment the
        // process answers is a reload or a drain, never the default action (exit at once).
        let hangups = Hangups::register();
        let mut stop = Termination::register();
        let running = crate::start(config).await?;
        let reloader = Reloader::new(path, running.state.clone());
        for resolver in running.cert_resolvers() {
            reloader.add_cert_resolver(resolver.clone());
        }
        let _reload_tasks = reloader.spawn(hangups);
        stop.recv().await;
        tracing::info!("shutting down");
        let drain = running.state.config().server.drain_timeout;
        tokio::select! {
            _ = running.shutdown(drain) => {}
            _ = stop.recv() => tracing::warn!("second signal: exiting without draining"),
        }
        Ok(())
    })
}

/// SIGTERM or Ctrl-C (Ctrl-C only where there are no Unix signals), SIGTERM caught from
/// [`Termination::register`] on.
struct Termination {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Termination {
    fn register() -> Termination {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let term = signal(SignalKind::terminate())
                .inspect_err(|err| tracing::error!(error = %err, "cannot listen for SIGTERM"))
                .ok();
            Termination { term }
        }
        #[cfg(not(unix))]
        Termination {}
    }

    /// The next SIGTERM or Ctrl-C.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            let term = async {
                match &mut self.term {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = term => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
