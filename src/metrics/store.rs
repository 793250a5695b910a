//! The key store's series, set at scrape time from [`StoreStatus`], so an operator can see
//! on every replica whether the store is reachable, which set version it serves and how it
//! learns of changes (notifications, polls, reconnects). The store keeps the counts; the
//! counters here follow them.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::keys::store::StoreStatus;

#[derive(Debug)]
pub(super) struct StoreMetrics {
    reachable: Gauge,
    has_set: Gauge,
    version: Gauge,
    last_sync: Gauge,
    notifications: Counter,
    polls: Counter,
    reconnects: Counter,
}

impl StoreMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        StoreMetrics {
            reachable: gauge(
                registry,
                "resigner_store_reachable",
                "1 when the last contact with the key store succeeded (always 1 for the file store), else 0",
            ),
            has_set: gauge(
                registry,
                "resigner_store_has_set",
                "1 when this process serves a valid custom key set (from the store or its local copy); 0 while it started with the store unreachable and no local copy, until the set it syncs passes validation",
            ),
            version: gauge(
                registry,
                "resigner_store_version",
                "Version of the custom key set this process serves (equal on every replica once converged)",
            ),
            last_sync: gauge(
                registry,
                "resigner_store_last_sync_timestamp_seconds",
                "Unix time the served set was last confirmed against the store (0 before the first)",
            ),
            notifications: counter(
                registry,
                "resigner_store_notifications",
                "Change notifications received from the store (PostgreSQL NOTIFY; outside edits of the file)",
            ),
            polls: counter(
                registry,
                "resigner_store_polls",
                "Periodic reads of the store made without a notification",
            ),
            reconnects: counter(
                registry,
                "resigner_store_reconnects",
                "Times the store's listening connection was re-established",
            ),
        }
    }

    pub(super) fn set(&self, status: &StoreStatus) {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.reachable.set(i64::from(status.reachable));
        self.has_set.set(i64::from(status.no_set.is_none()));
        self.version.set(gauge(status.version));
        self.last_sync.set(status.last_sync.unwrap_or(0));
        for (counter, total) in [
            (&self.notifications, status.notifications),
            (&self.polls, status.polls),
            (&self.reconnects, status.reconnects),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }
}
