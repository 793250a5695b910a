//! The request counter a worker thread used last (#16): [`super::Metrics::record_request`]
//! resolves a route and status to their series through a read lock, a map of route names and
//! the family's own map (two SipHash lookups, ~2k instructions per request); a thread that
//! answers the same route and status again, which is most requests, finds the series here
//! instead. Keyed by the metrics instance (tests make several per thread), the route's text
//! (not its address, which a reload may reuse for another route) and the status.
//!
//! May use: prometheus-client's counter type only.

use std::cell::RefCell;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;

struct Last {
    metrics: u64,
    route: Arc<str>,
    status: u16,
    counter: Counter,
}

thread_local! {
    static LAST: RefCell<Option<Last>> = const { RefCell::new(None) };
}

/// Increments the series this thread used last when it is the one for `metrics`, `route` and
/// `status`; false when it is not (the caller resolves it and [`remember`]s it).
pub fn inc_if_last(metrics: u64, route: &str, status: u16) -> bool {
    LAST.with_borrow(|last| match last {
        Some(last) if last.metrics == metrics && last.status == status && *last.route == *route => {
            last.counter.inc();
            true
        }
        _ => false,
    })
}

/// Makes `counter` (a handle on the series of `route` and `status`) this thread's last.
pub fn remember(metrics: u64, route: Arc<str>, status: u16, counter: Counter) {
    LAST.set(Some(Last {
        metrics,
        route,
        status,
        counter,
    }));
}
