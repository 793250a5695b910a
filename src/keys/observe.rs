//! What a signer backend reports about each signature, as a trait so `keys` does not depend
//! on `metrics` (which depends on `keys`): [`crate::metrics::SignerObserver`] implements it
//! with the `resigner_signer_*{backend}` series; [`NoObserver`] records nothing.
//!
//! May use: std only.

use std::time::Duration;

/// Receives one event per signature a backend attempted.
pub trait SignObserver: Send + Sync + std::fmt::Debug {
    /// One signature made in `elapsed` (retries included).
    fn signed(&self, elapsed: Duration);
    /// One signature that failed; `kind` is the error's stable label.
    fn failed(&self, kind: &'static str);
}

/// Records nothing (CLI commands that sign once).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl SignObserver for NoObserver {
    fn signed(&self, _: Duration) {}
    fn failed(&self, _: &'static str) {}
}
