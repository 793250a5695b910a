//! The async runtime a one-shot command (`demo`, `check --online`, `keys import|list|delete`,
//! `token resign`) runs its network work on: multi-threaded, with I/O and timers, built for
//! the call and dropped after it. `serve` builds its own from `[server]`
//! ([`crate::http::workers::process_runtime`]).
//!
//! May use: tokio and [`crate::cli::CliError`].

use std::future::Future;

use crate::cli::CliError;

/// Runs `future` to completion on a fresh runtime.
pub fn block_on<F: Future>(future: F) -> Result<F::Output, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    Ok(runtime.block_on(future))
}
