//! The signer backends' series: `resigner_signer_duration_seconds{backend}` (one signature,
//! as the backend took it, retries included) and `resigner_signer_errors_total{backend,
//! kind}`. A backend holds a [`SignerObserver`], cheap handles onto its own series resolved
//! once, so recording is lock-free; [`SignerObserver::detached`] records into series no
//! registry exports (CLI commands, tests).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `{backend}`: `memory`, `pkcs11`, `transit`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct BackendLabel {
    pub backend: &'static str,
}

/// `{backend, kind}` of a failed signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct BackendKind {
    pub backend: &'static str,
    pub kind: &'static str,
}

type Seconds = Family<BackendLabel, Histogram, fn() -> Histogram>;

fn histogram() -> Histogram {
    // 50 µs .. ~1.6 s: an in-memory ECDSA signature at the bottom, a remote KMS near 1-50 ms.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

#[derive(Debug)]
pub(super) struct SignerMetrics {
    seconds: Seconds,
    errors: Family<BackendKind, Counter>,
}

impl SignerMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let seconds = Seconds::new_with_constructor(histogram);
        registry.register(
            "resigner_signer_duration_seconds",
            "Time a signer backend took for one signature (retries included), by backend",
            seconds.clone(),
        );
        let errors = Family::<BackendKind, Counter>::default();
        registry.register(
            "resigner_signer_errors",
            "Signatures a backend could not make, by backend and kind (connect, timeout, status, denied, invalid, mismatch, circuit_open)",
            errors.clone(),
        );
        SignerMetrics { seconds, errors }
    }

    pub(super) fn observer(&self, backend: &'static str) -> SignerObserver {
        SignerObserver {
            backend,
            seconds: self.seconds.get_or_create_owned(&BackendLabel { backend }),
            errors: self.errors.clone(),
        }
    }
}

/// One backend's handles onto its series.
#[derive(Debug, Clone)]
pub struct SignerObserver {
    backend: &'static str,
    seconds: Histogram,
    errors: Family<BackendKind, Counter>,
}

impl crate::keys::observe::SignObserver for SignerObserver {
    fn signed(&self, elapsed: std::time::Duration) {
        SignerObserver::signed(self, elapsed);
    }

    fn failed(&self, kind: &'static str) {
        SignerObserver::failed(self, kind);
    }
}

impl SignerObserver {
    /// Series of their own, exported nowhere.
    pub fn detached(backend: &'static str) -> Self {
        SignerMetrics {
            seconds: Seconds::new_with_constructor(histogram),
            errors: Family::default(),
        }
        .observer(backend)
    }

    /// One signature made in `elapsed`.
    pub fn signed(&self, elapsed: std::time::Duration) {
        self.seconds.observe(elapsed.as_secs_f64());
    }

    /// One signature that failed with `kind`.
    pub fn failed(&self, kind: &'static str) {
        self.errors
            .get_or_create(&BackendKind {
                backend: self.backend,
                kind,
            })
            .inc();
    }

    /// Failures of `kind` so far.
    pub fn failures(&self, kind: &'static str) -> u64 {
        self.errors
            .get_or_create(&BackendKind {
                backend: self.backend,
                kind,
            })
            .get()
    }
}
