//! Log setup: `tracing` events on stderr, filtered by `RUST_LOG` (EnvFilter syntax; default
//! `resigner=info`), as human-readable lines (`--log-format pretty`, coloured only on a
//! terminal) or one JSON object per line (`--log-format json`) with the current span and
//! its parents, so a request's lines carry its `request_id`. Tokens are never logged: a
//! token appears only as [`crate::proxy::token_fingerprint`].

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The `--log-format` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. Call once, at start-up.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "resigner=info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}
