//! Log setup: `tracing` events on stderr, filtered by `RUST_LOG` (EnvFilter syntax; default
//! `resigner=info`), as human-readable lines (`--log-format pretty`, coloured only on a
//! terminal) or one JSON object per line (`--log-format json`) with the current span and
//! its parents, so a request's lines carry its `request_id` (see [`json`]). Tokens are never
//! logged: a token appears only as [`crate::proxy::token_fingerprint`]. A command that fails
//! reports through [`fatal`], in the same format.

mod json;

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
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::JsonLines)
            .init(),
    }
}

/// Reports the error that ends the process: `resigner: ...` on stderr for people, an ERROR
/// line of the JSON log shape under `--log-format json`, so a log pipeline sees why it
/// stopped. Written directly, not through the filter: `RUST_LOG=off` still shows it.
pub fn fatal(format: LogFormat, message: &str) {
    match format {
        LogFormat::Pretty => eprintln!("resigner: {message}"),
        LogFormat::Json => eprintln!("{}", json::fatal_line(message)),
    }
}
